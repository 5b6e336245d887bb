//! The `webhooks` table.

use crate::types::JsonText;
use sea_orm::entity::prelude::*;

/// A row of `webhooks`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webhooks")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub url: String,
    /// The Standard Webhooks signing secret (`whsec_…`). The HMAC needs it, so it cannot be
    /// hashed; it is never returned by the API.
    pub secret: String,
    /// JSON array of event types, or `["*"]`.
    pub events: JsonText<Vec<String>>,
    pub active: bool,
    pub created_by: i64,
    pub created_at: DateTimeUtc,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
