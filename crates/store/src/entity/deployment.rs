//! The `deployments` table.

use crate::types::{JsonText, Text};
use changegate_api::GateReason;
use changegate_domain::gate::Verdict;
use sea_orm::entity::prelude::*;

/// A row of `deployments`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "deployments")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub system_id: i64,
    pub environment: String,
    pub commit_id: Option<String>,
    pub tree_id: Option<String>,
    pub digest: Option<String>,
    /// The gate decision for this content at record time.
    pub decision: Text<Verdict>,
    /// JSON of the reasons of a denial.
    pub reasons: JsonText<Vec<GateReason>>,
    pub change_request_id: Option<i64>,
    /// Deployed without the gate allowing it.
    pub flagged: bool,
    pub recorded_by: i64,
    pub deployed_at: DateTimeUtc,
    pub recorded_at: DateTimeUtc,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
