//! The `incident_notices` table.

use crate::types::Text;
use changegate_domain::incident::NoticeKind;
use sea_orm::entity::prelude::*;

/// A row of `incident_notices`: one notice sent about an incident.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "incident_notices")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub incident_id: i64,
    pub kind: Text<NoticeKind>,
    pub sent_at: DateTimeUtc,
    pub recipient: String,
    pub channel: String,
    pub document_number: Option<String>,
    pub recorded_by: i64,
    pub recorded_at: DateTimeUtc,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
