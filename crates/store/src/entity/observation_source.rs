//! The `observation_sources` table: each source that reports observed content, and when it last did.

use sea_orm::entity::prelude::*;

/// A row of `observation_sources`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "observation_sources")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub system_id: i64,
    pub environment: String,
    pub source: String,
    pub last_observed_at: DateTimeUtc,
    pub last_recorded_by: i64,
    /// When its silence was signalled (cleared when it reports again).
    pub silent_since: Option<DateTimeUtc>,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
