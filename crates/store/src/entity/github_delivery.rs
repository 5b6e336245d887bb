//! The `github_deliveries` table: GitHub webhook deliveries already answered (replay protection).

use sea_orm::entity::prelude::*;

/// A row of `github_deliveries`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "github_deliveries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `X-GitHub-Delivery`.
    pub delivery_id: String,
    pub event: String,
    pub received_at: DateTimeUtc,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
