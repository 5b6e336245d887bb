//! The `security_signals` table: what admins are shown (an account used from two addresses at
//! once), one row per account, kind, detail and day.

use crate::types::Text;
use changegate_domain::roles::SignalKind;
use sea_orm::entity::prelude::*;

/// A row of `security_signals`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "security_signals")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    /// `shared_account`.
    pub kind: Text<SignalKind>,
    /// For `shared_account`: the two addresses, sorted, separated by a space.
    pub detail: String,
    /// The day (UTC, `YYYY-MM-DD`) it was raised: at most one row per detail and day.
    pub day: String,
    pub created_at: DateTimeUtc,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
