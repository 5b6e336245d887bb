//! The `deliveries` table.

use crate::types::Text;
use changegate_domain::notify::DeliveryStatus;
use sea_orm::entity::prelude::*;

/// A row of `deliveries`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deliveries")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub webhook_id: i64,
    /// The `webhook-id`: the same on every retry.
    #[sea_orm(unique)]
    pub msg_id: String,
    pub event: String,
    /// The exact body sent.
    pub payload: String,
    /// pending, delivered or failed.
    pub status: Text<DeliveryStatus>,
    pub attempts: i32,
    pub next_attempt_at: DateTimeUtc,
    pub locked_until: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    pub created_at: DateTimeUtc,
    pub delivered_at: Option<DateTimeUtc>,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
