//! The `remediations` table.

use crate::types::Text;
use changegate_domain::change::Severity;
use changegate_domain::remediation::{RemediationKind, RemediationState};
use sea_orm::entity::prelude::*;

/// A row of `remediations`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "remediations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub kind: Text<RemediationKind>,
    pub system_id: i64,
    pub owner_org_id: i64,
    pub change_request_id: i64,
    pub round: i32,
    pub severity: Text<Severity>,
    pub text: String,
    pub item: Option<String>,
    pub due: Date,
    pub state: Text<RemediationState>,
    pub raised_by: i64,
    pub raised_at: DateTimeUtc,
    pub evidence: Option<String>,
    pub fulfilled_by: Option<i64>,
    pub fulfilled_at: Option<DateTimeUtc>,
    pub verified_by: Option<i64>,
    pub verified_at: Option<DateTimeUtc>,
    pub verify_note: Option<String>,
    pub updated_at: DateTimeUtc,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
