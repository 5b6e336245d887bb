//! The `unapproved_contents` table: content observed without a valid approval, once per system, environment and subject (the incident it opened).

use sea_orm::entity::prelude::*;

/// A row of `unapproved_contents`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "unapproved_contents")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub system_id: i64,
    pub environment: String,
    /// `git:<commit>:<tree>` or `sha256:<hex>`.
    pub subject: String,
    pub incident_id: i64,
    pub first_observed_at: DateTimeUtc,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
