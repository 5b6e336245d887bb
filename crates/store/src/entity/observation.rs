//! The `observations` table: content observed running on a system (`POST /api/v1/observations`).

use crate::types::JsonText;
use changegate_api::ObservedSubject;
use sea_orm::entity::prelude::*;

/// A row of `observations`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "observations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub system_id: i64,
    pub environment: String,
    /// Who reported it (a host name, a cluster).
    pub source: String,
    /// JSON list of the subjects, each with the gate's verdict.
    pub subjects: JsonText<Vec<ObservedSubject>>,
    /// Some subject was not covered by a valid approval.
    pub unapproved: bool,
    /// The `unapproved_content` incident this observation opened or matched.
    pub incident_id: Option<i64>,
    pub observed_at: DateTimeUtc,
    pub recorded_by: i64,
    pub recorded_at: DateTimeUtc,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
