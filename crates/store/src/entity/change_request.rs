//! The `change_requests` table.

use sea_orm::entity::prelude::*;

/// A row of `change_requests`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "change_requests")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub system_id: i64,
    pub kind: String,
    pub title: String,
    pub description: String,
    pub state: String,
    /// JSON array of environment names.
    pub environments: String,
    /// JSON array of affected components, before and after.
    pub components: String,
    pub filed_by: i64,
    /// JSON array of the ids of everyone who filed or edited it.
    pub editors: String,
    pub round: i32,
    pub approved_at: Option<DateTimeUtc>,
    pub valid_until: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// JSON of the git facts (commits, changed files) attached by `changegate request --repo`.
    pub git_facts: Option<String>,
    /// For a submitted emergency change: until when it may deploy without sign-off.
    pub emergency_until: Option<DateTimeUtc>,
    /// For an emergency change: the incident it remediates.
    pub remediates_incident: Option<i64>,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
