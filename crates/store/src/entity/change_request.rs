//! The `change_requests` table.

use crate::types::{JsonText, Text};
use changegate_api::{ComponentChange, GitFacts};
use changegate_domain::{ChangeKind, CrState, MajorAspect};
use sea_orm::entity::prelude::*;

/// A row of `change_requests`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "change_requests")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub system_id: i64,
    pub kind: Text<ChangeKind>,
    pub title: String,
    pub description: String,
    pub state: Text<CrState>,
    /// JSON array of environment names.
    pub environments: JsonText<Vec<String>>,
    /// JSON array of affected components, before and after.
    pub components: JsonText<Vec<ComponentChange>>,
    pub filed_by: i64,
    /// JSON array of the ids of everyone who filed or edited it.
    pub editors: JsonText<Vec<i64>>,
    pub round: i32,
    pub approved_at: Option<DateTimeUtc>,
    pub valid_until: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// JSON of the git facts (commits, changed files) attached by `changegate request --repo`.
    pub git_facts: Option<JsonText<GitFacts>>,
    /// For a submitted emergency change: until when it may deploy without sign-off.
    pub emergency_until: Option<DateTimeUtc>,
    /// For an emergency change: the incident it remediates.
    pub remediates_incident: Option<i64>,
    /// Title and description normalised for search (lower case, no diacritics); kept by
    /// [`ActiveModelBehavior::before_save`].
    pub search_text: String,
    /// What makes it a major change (Decree 331/2026 Art. 31.2.c); empty: not one.
    pub major_change: JsonText<Vec<MajorAspect>>,
    /// The year of its evaluation record's number (assigned when the evaluation concludes).
    pub record_year: Option<i32>,
    /// The evaluation record's number within that year.
    pub record_number: Option<i32>,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

#[async_trait::async_trait]
impl ActiveModelBehavior for ActiveModel {
    async fn before_save<C>(mut self, _db: &C, _insert: bool) -> Result<Self, DbErr>
    where
        C: ConnectionTrait,
    {
        use sea_orm::ActiveValue::Set;
        if let (Some(t), Some(d)) = (self.title.try_as_ref(), self.description.try_as_ref()) {
            self.search_text = Set(changegate_domain::change::search_text(t, d));
        }
        Ok(self)
    }
}
