//! The `systems` table.

use crate::types::{JsonText, Text};
use changegate_api::Component;
use changegate_domain::annual::LevelRecord;
use changegate_domain::gate::SystemStatus;
use sea_orm::entity::prelude::*;

/// A row of `systems`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "systems")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub code: String,
    pub name: String,
    pub owner_org_id: i64,
    pub operating_unit: String,
    pub level: i16,
    pub population_db: bool,
    /// JSON array of environment names.
    pub environments: JsonText<Vec<String>>,
    /// JSON array of inventory components.
    pub components: JsonText<Vec<Component>>,
    pub status: Text<SystemStatus>,
    pub last_evaluated_on: Option<Date>,
    pub next_review_due: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Form 08 columns 5–11 (JSON); none until recorded.
    pub level_record: Option<JsonText<LevelRecord>>,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
