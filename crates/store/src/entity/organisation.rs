//! The `organisations` table.

use crate::types::{JsonText, Text};
use changegate_domain::OrgKind;
use changegate_domain::annual::OrgDetails;
use sea_orm::entity::prelude::*;

/// A row of `organisations`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "organisations")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub code: String,
    pub name: String,
    pub kind: Text<OrgKind>,
    pub allowed_ips: Option<JsonText<Vec<String>>>,
    pub created_at: DateTimeUtc,
    /// Form 08 section 2 details (JSON); none until recorded.
    pub details: Option<JsonText<OrgDetails>>,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
