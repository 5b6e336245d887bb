//! The `cr_subjects` table.

use crate::types::Text;
use changegate_domain::ids::SubjectKind;
use sea_orm::entity::prelude::*;

/// A row of `cr_subjects`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "cr_subjects")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub change_request_id: i64,
    pub system_id: i64,
    pub kind: Text<SubjectKind>,
    pub commit_id: Option<String>,
    pub tree_id: Option<String>,
    pub digest: Option<String>,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
