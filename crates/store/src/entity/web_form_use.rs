//! The `web_form_uses` table: one row per one-time form id used (issue 17).

use sea_orm::entity::prelude::*;

/// A row of `web_form_uses`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "web_form_uses")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// SHA-256 (hex) of the session token and the form id.
    #[sea_orm(unique)]
    pub form_key: String,
    /// Where the first submission sent the browser; empty while it runs.
    pub outcome: String,
    pub created_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
