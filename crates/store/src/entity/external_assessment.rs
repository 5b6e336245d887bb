//! The `external_assessments` table.

use sea_orm::entity::prelude::*;

/// A row of `external_assessments`: the assessment of a major change by a licensed or
/// designated external organisation (Decree 331/2026 Art. 31.2.c), one per change request.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "external_assessments")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub change_request_id: i64,
    pub organisation: String,
    pub licence: String,
    pub report_ref: String,
    pub assessed_on: Date,
    pub recorded_by: i64,
    pub recorded_at: DateTimeUtc,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
