//! The `incidents` table.

use crate::types::Text;
use changegate_domain::Severity;
use changegate_domain::gate::IncidentStatus;
use changegate_domain::incident::IncidentKind;
use sea_orm::entity::prelude::*;

/// A row of `incidents`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "incidents")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub system_id: i64,
    pub kind: Text<IncidentKind>,
    pub severity: Text<Severity>,
    pub summary: String,
    pub status: Text<IncidentStatus>,
    pub reported_by: i64,
    pub reported_at: DateTimeUtc,
    pub resolved_by: Option<i64>,
    pub resolved_at: Option<DateTimeUtc>,
    /// When A05 (Ministry of Public Security) was notified of a personal-data breach.
    pub a05_notified_at: Option<DateTimeUtc>,
    /// When it was detected (None: reported before this was recorded; the report's time).
    pub detected_at: Option<DateTimeUtc>,
    /// It touches national security or public order: its initial notice is due at once.
    pub national_security: bool,
    /// The summary normalised for search (lower case, no diacritics); kept by
    /// [`ActiveModelBehavior::before_save`].
    pub search_text: String,
    /// Decree 356/2025 notice of a personal-data breach: what happened.
    pub breach_description: Option<String>,
    /// The categories of personal data concerned.
    pub breach_data_categories: Option<String>,
    /// About how many data subjects.
    pub breach_subjects: Option<i64>,
    /// The likely consequences.
    pub breach_consequences: Option<String>,
    /// The measures taken.
    pub breach_measures: Option<String>,
    /// The confirmation record's (biên bản xác nhận) reference.
    pub breach_confirmation_ref: Option<String>,
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
        if let Some(s) = self.summary.try_as_ref() {
            self.search_text = Set(changegate_domain::incident::search_text(s));
        }
        Ok(self)
    }
}
