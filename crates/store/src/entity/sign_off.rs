//! The `sign_offs` table.

use crate::types::{JsonText, Text};
use changegate_api::{ItemAnswer, WireCondition, WireFinding};
use changegate_domain::Conclusion;
use sea_orm::entity::prelude::*;

/// A row of `sign_offs`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sign_offs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub change_request_id: i64,
    pub round: i32,
    pub reviewer_id: i64,
    pub conclusion: Text<Conclusion>,
    /// JSON array of item results.
    pub checklist: JsonText<Vec<ItemAnswer>>,
    /// JSON array of findings.
    pub findings: JsonText<Vec<WireFinding>>,
    /// JSON array of conditions.
    pub conditions: JsonText<Vec<WireCondition>>,
    pub created_at: DateTimeUtc,
    /// The policy pack it was made under (rows written before version 2: version 1).
    pub pack_id: String,
    /// That pack's version.
    pub pack_version: i32,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
