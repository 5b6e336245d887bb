//! The `sign_offs` table.

use crate::types::Text;
use changegate_domain::Conclusion;
use sea_orm::entity::prelude::*;

/// A row of `sign_offs`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sign_offs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub change_request_id: i64,
    pub round: i32,
    pub reviewer_id: i64,
    pub conclusion: Text<Conclusion>,
    /// JSON array of item results.
    pub checklist: String,
    /// JSON array of findings.
    pub findings: String,
    /// JSON array of conditions.
    pub conditions: String,
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
