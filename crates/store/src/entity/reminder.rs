//! The `reminders` table.

use crate::types::Text;
use changegate_domain::notify::ReminderKind;
use sea_orm::entity::prelude::*;

/// A row of `reminders`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "reminders")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub kind: Text<ReminderKind>,
    pub subject: String,
    pub due: String,
    pub offset_days: i32,
    pub sent_at: DateTimeUtc,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
