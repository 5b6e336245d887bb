//! The `github_pending` table: GitHub deployment protection rule requests, answered or waiting for a sign-off.

use crate::types::Text;
use changegate_domain::enforce::GithubReviewState;
use sea_orm::entity::prelude::*;

/// A row of `github_pending`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "github_pending")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub delivery_id: String,
    pub installation_id: i64,
    /// `owner/name`.
    pub repository: String,
    /// The GitHub environment's name.
    pub environment_name: String,
    /// None when the repository and environment map to no registered system.
    pub system_id: Option<i64>,
    /// changegate's environment.
    pub environment: String,
    pub sha: String,
    pub tree_id: Option<String>,
    pub callback_url: String,
    pub created_at: DateTimeUtc,
    /// When GitHub was called back.
    pub answered_at: Option<DateTimeUtc>,
    /// `approved` or `rejected`.
    pub state: Option<Text<GithubReviewState>>,
    pub comment: Option<String>,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
