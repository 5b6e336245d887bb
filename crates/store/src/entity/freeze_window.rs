//! The `freeze_windows` table.

use sea_orm::entity::prelude::*;

/// A row of `freeze_windows`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "freeze_windows")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub system_id: i64,
    /// None: every environment.
    pub environment: Option<String>,
    pub starts_at: Option<DateTimeUtc>,
    pub ends_at: Option<DateTimeUtc>,
    /// Recurring window: a cron expression for its start, in the configured time zone.
    pub cron: Option<String>,
    pub duration_minutes: Option<i32>,
    pub reason: String,
    pub created_by: i64,
    pub created_at: DateTimeUtc,
    pub active: bool,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
