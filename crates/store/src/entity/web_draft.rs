//! The `web_drafts` table: a form's fields sent after its session ended, kept through the
//! sign-in (issue 17).

use sea_orm::entity::prelude::*;

/// A row of `web_drafts`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "web_drafts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// SHA-256 (hex) of the draft's random id.
    #[sea_orm(unique)]
    pub draft_hash: String,
    /// The page the form was on.
    pub page: String,
    /// The fields, URL-encoded.
    #[sea_orm(column_type = "Text")]
    pub fields: String,
    pub created_at: DateTimeUtc,
}

/// No relations.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
