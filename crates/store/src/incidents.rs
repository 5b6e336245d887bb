//! Incidents and the notices sent about them: reporting and resolving one, its notices and its
//! breach record, the names its view shows, and the filtered list. Who may see or act on an
//! incident, and when a notice is due, are the app's and the domain's questions.

use crate::StoreError;
use crate::entity::{incident, incident_notice, organisation};
use crate::search::contains_all;
use crate::types::Text;
use changegate_domain::Severity;
use changegate_domain::gate::IncidentStatus;
use changegate_domain::incident::{BreachRecord, IncidentKind, NoticeKind};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

/// The incident `id`, if it exists.
pub async fn incident(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<incident::Model>, StoreError> {
    Ok(incident::Entity::find_by_id(id).one(db).await?)
}

/// The notices recorded about incident `incident_id`, in the order they were recorded.
pub async fn notices(
    db: &impl ConnectionTrait,
    incident_id: i64,
) -> Result<Vec<incident_notice::Model>, StoreError> {
    Ok(incident_notice::Entity::find()
        .filter(incident_notice::Column::IncidentId.eq(incident_id))
        .order_by_asc(incident_notice::Column::Id)
        .all(db)
        .await?)
}

/// Whether a notice of `kind` is recorded about incident `incident_id`.
pub async fn notice_recorded(
    db: &impl ConnectionTrait,
    incident_id: i64,
    kind: NoticeKind,
) -> Result<bool, StoreError> {
    Ok(incident_notice::Entity::find()
        .filter(incident_notice::Column::IncidentId.eq(incident_id))
        .filter(incident_notice::Column::Kind.eq(Text(kind)))
        .one(db)
        .await?
        .is_some())
}

/// A notice sent about an incident, to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotice {
    /// The incident.
    pub incident_id: i64,
    /// Which notice.
    pub kind: NoticeKind,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
    /// To whom.
    pub recipient: String,
    /// How.
    pub channel: String,
    /// Its document number, if it has one.
    pub document_number: Option<String>,
    /// Who records it.
    pub recorded_by: i64,
    /// When.
    pub recorded_at: DateTime<Utc>,
}

/// Inserts a notice.
pub async fn insert_notice(
    db: &impl ConnectionTrait,
    n: NewNotice,
) -> Result<incident_notice::Model, StoreError> {
    Ok(incident_notice::ActiveModel {
        incident_id: Set(n.incident_id),
        kind: Set(Text(n.kind)),
        sent_at: Set(n.sent_at),
        recipient: Set(n.recipient),
        channel: Set(n.channel),
        document_number: Set(n.document_number),
        recorded_by: Set(n.recorded_by),
        recorded_at: Set(n.recorded_at),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// Records that A05 was notified of `i` at `at`.
pub async fn record_a05_notified(
    db: &impl ConnectionTrait,
    i: incident::Model,
    at: DateTime<Utc>,
) -> Result<incident::Model, StoreError> {
    let mut am: incident::ActiveModel = i.into();
    am.a05_notified_at = Set(Some(at));
    Ok(am.update(db).await?)
}

/// Replaces the breach record of `i` with `b`, exactly as given.
pub async fn record_breach(
    db: &impl ConnectionTrait,
    i: incident::Model,
    b: &BreachRecord,
) -> Result<incident::Model, StoreError> {
    let mut am: incident::ActiveModel = i.into();
    am.breach_description = Set(b.description.clone());
    am.breach_data_categories = Set(b.data_categories.clone());
    am.breach_subjects = Set(b.subjects);
    am.breach_consequences = Set(b.consequences.clone());
    am.breach_measures = Set(b.measures.clone());
    am.breach_confirmation_ref = Set(b.confirmation_ref.clone());
    Ok(am.update(db).await?)
}

/// The name of organisation `id`, if it exists.
pub async fn org_name(db: &impl ConnectionTrait, id: i64) -> Result<Option<String>, StoreError> {
    Ok(organisation::Entity::find_by_id(id)
        .one(db)
        .await?
        .map(|o| o.name))
}

/// An incident to record as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewIncident {
    /// The system it happened on.
    pub system_id: i64,
    /// Kind.
    pub kind: IncidentKind,
    /// Severity.
    pub severity: Severity,
    /// What happened.
    pub summary: String,
    /// The status it starts in.
    pub status: IncidentStatus,
    /// Who reports it.
    pub reported_by: i64,
    /// When.
    pub reported_at: DateTime<Utc>,
    /// When it was detected.
    pub detected_at: Option<DateTime<Utc>>,
    /// Whether it touches national security or public order.
    pub national_security: bool,
}

/// Inserts an incident, not resolved.
pub async fn insert(
    db: &impl ConnectionTrait,
    n: NewIncident,
) -> Result<incident::Model, StoreError> {
    Ok(incident::ActiveModel {
        system_id: Set(n.system_id),
        kind: Set(n.kind.into()),
        severity: Set(n.severity.into()),
        summary: Set(n.summary),
        status: Set(n.status.into()),
        reported_by: Set(n.reported_by),
        reported_at: Set(n.reported_at),
        resolved_by: Set(None),
        resolved_at: Set(None),
        detected_at: Set(n.detected_at),
        national_security: Set(n.national_security),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// Records that `by` resolved `i` at `at`.
pub async fn mark_resolved(
    db: &impl ConnectionTrait,
    i: incident::Model,
    by: i64,
    at: DateTime<Utc>,
) -> Result<incident::Model, StoreError> {
    let mut am: incident::ActiveModel = i.into();
    am.status = Set(IncidentStatus::Resolved.into());
    am.resolved_by = Set(Some(by));
    am.resolved_at = Set(Some(at));
    Ok(am.update(db).await?)
}

/// Which incidents the list shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncidentFilter {
    /// Only incidents of these systems.
    pub systems: Vec<i64>,
    /// Only open or only resolved ones.
    pub status: Option<IncidentStatus>,
    /// Only of this kind.
    pub kind: Option<IncidentKind>,
    /// Only of this severity.
    pub severity: Option<Severity>,
    /// Reported at or after.
    pub reported_from: Option<DateTime<Utc>>,
    /// Reported before.
    pub reported_before: Option<DateTime<Utc>>,
    /// Words that must all occur in the summary's search text (normalised as it is).
    pub words: Vec<String>,
}

/// A page of incidents and how many there are in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncidentPage {
    /// The incidents of the page.
    pub items: Vec<incident::Model>,
    /// How many incidents match, on every page.
    pub total: u64,
}

/// Page `page` (from 1) of `per_page` incidents matching `f`: open ones first, then the newest.
pub async fn page(
    db: &impl ConnectionTrait,
    f: &IncidentFilter,
    page: u64,
    per_page: u64,
) -> Result<IncidentPage, StoreError> {
    let mut q =
        incident::Entity::find().filter(incident::Column::SystemId.is_in(f.systems.clone()));
    if let Some(st) = f.status {
        q = q.filter(incident::Column::Status.eq(Text(st)));
    }
    if let Some(k) = f.kind {
        q = q.filter(incident::Column::Kind.eq(Text(k)));
    }
    if let Some(sev) = f.severity {
        q = q.filter(incident::Column::Severity.eq(Text(sev)));
    }
    if let Some(a) = f.reported_from {
        q = q.filter(incident::Column::ReportedAt.gte(a));
    }
    if let Some(b) = f.reported_before {
        q = q.filter(incident::Column::ReportedAt.lt(b));
    }
    for w in contains_all(incident::Column::SearchText, &f.words) {
        q = q.filter(w);
    }
    // `open` sorts before `resolved`.
    let q = q
        .order_by_asc(incident::Column::Status)
        .order_by_desc(incident::Column::Id);
    let total = q.clone().count(db).await?;
    let items = q
        .paginate(db, per_page)
        .fetch_page(page.saturating_sub(1))
        .await?;
    Ok(IncidentPage { items, total })
}

/// The personal-data breaches whose notification of A05 is not recorded.
pub async fn breaches_without_a05_notice(
    db: &impl ConnectionTrait,
) -> Result<Vec<incident::Model>, StoreError> {
    Ok(incident::Entity::find()
        .filter(incident::Column::Kind.eq(Text(IncidentKind::DataBreach)))
        .filter(incident::Column::A05NotifiedAt.is_null())
        .all(db)
        .await?)
}

/// The incidents reported at or after `since`, in the order they were reported.
pub async fn reported_since(
    db: &impl ConnectionTrait,
    since: DateTime<Utc>,
) -> Result<Vec<incident::Model>, StoreError> {
    Ok(incident::Entity::find()
        .filter(incident::Column::ReportedAt.gte(since))
        .order_by_asc(incident::Column::Id)
        .all(db)
        .await?)
}

/// The kinds of the notices recorded about incident `incident_id`.
pub async fn notice_kinds(
    db: &impl ConnectionTrait,
    incident_id: i64,
) -> Result<Vec<NoticeKind>, StoreError> {
    Ok(incident_notice::Entity::find()
        .filter(incident_notice::Column::IncidentId.eq(incident_id))
        .all(db)
        .await?
        .into_iter()
        .map(|n| n.kind.0)
        .collect())
}

/// The incidents of any of `system_ids`, in the order they were reported.
pub async fn of_systems(
    db: &impl ConnectionTrait,
    system_ids: Vec<i64>,
) -> Result<Vec<incident::Model>, StoreError> {
    Ok(incident::Entity::find()
        .filter(incident::Column::SystemId.is_in(system_ids))
        .order_by_asc(incident::Column::Id)
        .all(db)
        .await?)
}

/// The incidents of any of `system_ids`, only those with status `status` when given, newest
/// first: the `limit` newest, or all.
pub async fn newest_of_systems(
    db: &impl ConnectionTrait,
    system_ids: Vec<i64>,
    status: Option<IncidentStatus>,
    limit: Option<u64>,
) -> Result<Vec<incident::Model>, StoreError> {
    let mut q = incident::Entity::find()
        .filter(incident::Column::SystemId.is_in(system_ids))
        .order_by_desc(incident::Column::Id)
        .limit(limit);
    if let Some(st) = status {
        q = q.filter(incident::Column::Status.eq(Text(st)));
    }
    Ok(q.all(db).await?)
}

/// The notices recorded about any of `incident_ids`.
pub async fn notices_of(
    db: &impl ConnectionTrait,
    incident_ids: &[i64],
) -> Result<Vec<incident_notice::Model>, StoreError> {
    Ok(incident_notice::Entity::find()
        .filter(incident_notice::Column::IncidentId.is_in(incident_ids.iter().copied()))
        .all(db)
        .await?)
}
