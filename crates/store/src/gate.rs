//! What the gate index reads: a system and its facts (freeze windows, blocking incidents, gating
//! conditions, emergency changes, last approval), its live change requests in pages, and the
//! change requests covering some content. Rows come back as the plain structs below or as domain
//! types; deciding what they mean stays with the domain and the app's index.

use crate::StoreError;
use crate::entity::{
    change_request as cr, cr_subject, freeze_window, incident, remediation, system,
};
use crate::types::Text;
use changegate_domain::change::Severity;
use changegate_domain::gate::{Freeze, FreezeSpan, IncidentStatus, parse_cron};
use changegate_domain::remediation::{RemediationKind, RemediationState};
use changegate_domain::{ChangeKind, CrState, EnvName};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};

/// The columns of a change request the index reads, as [`ChangeRow`] holds them.
const CHANGE_COLS: [cr::Column; 8] = [
    cr::Column::Id,
    cr::Column::State,
    cr::Column::Kind,
    cr::Column::Environments,
    cr::Column::ValidUntil,
    cr::Column::EmergencyUntil,
    cr::Column::ApprovedAt,
    cr::Column::RemediatesIncident,
];

/// [`CHANGE_COLS`] as sea-orm reads them.
type ChangeTuple = (
    i64,
    Text<CrState>,
    Text<ChangeKind>,
    String,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<i64>,
);

/// What the gate needs of a change request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRow {
    /// Id.
    pub id: i64,
    /// State.
    pub state: CrState,
    /// Kind.
    pub kind: ChangeKind,
    /// Its environments as stored: a JSON array of names, parsed by whoever needs them (the
    /// index keeps one mask per distinct text).
    pub environments: String,
    /// When its approval ends.
    pub valid_until: Option<DateTime<Utc>>,
    /// For an emergency change: until when it may deploy without sign-off.
    pub emergency_until: Option<DateTime<Utc>>,
    /// When it was approved.
    pub approved_at: Option<DateTime<Utc>>,
    /// For an emergency change: the incident it remediates.
    pub remediates_incident: Option<i64>,
}

impl From<ChangeTuple> for ChangeRow {
    fn from(t: ChangeTuple) -> Self {
        ChangeRow {
            id: t.0,
            state: *t.1,
            kind: *t.2,
            environments: t.3,
            valid_until: t.4,
            emergency_until: t.5,
            approved_at: t.6,
            remediates_incident: t.7,
        }
    }
}

/// The columns of a subject [`SubjectRow`] holds, as sea-orm reads them.
type SubjectTuple = (i64, Option<String>, Option<String>, Option<String>);

/// The content one subject of a change request names, as stored (hex ids, `sha256:` digest).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectRow {
    /// The change request it belongs to.
    pub change_request_id: i64,
    /// Git commit id.
    pub commit_id: Option<String>,
    /// Git tree id.
    pub tree_id: Option<String>,
    /// Artifact digest.
    pub digest: Option<String>,
}

/// Content to find the change requests of, written as the subjects store it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Content {
    /// A git commit id (hex).
    Commit(String),
    /// A git tree id (hex).
    Tree(String),
    /// An artifact digest (`sha256:` and hex).
    Digest(String),
}

/// A remediation condition that closes the gate once overdue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GatingCondition {
    /// Id.
    pub id: i64,
    /// Its due date.
    pub due: NaiveDate,
}

/// An emergency change of a system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmergencyRow {
    /// Change request id.
    pub id: i64,
    /// Until when it may deploy without sign-off.
    pub until: DateTime<Utc>,
    /// When it was approved, if it was.
    pub approved_at: Option<DateTime<Utc>>,
}

/// The system with code `code`.
pub async fn system_by_code(
    db: &impl ConnectionTrait,
    code: &str,
) -> Result<Option<system::Model>, StoreError> {
    Ok(system::Entity::find()
        .filter(system::Column::Code.eq(code))
        .one(db)
        .await?)
}

/// The system with id `id`.
pub async fn system_by_id(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<system::Model>, StoreError> {
    Ok(system::Entity::find_by_id(id).one(db).await?)
}

/// The active freeze windows of a system, recurring ones read in `tz`. A window that is neither
/// a date range nor a valid cron pattern with a duration is corrupt; an environment name that
/// does not parse is read as none.
pub async fn active_freezes(
    db: &impl ConnectionTrait,
    system_id: i64,
    tz: chrono_tz::Tz,
) -> Result<Vec<Freeze>, StoreError> {
    let rows = freeze_window::Entity::find()
        .filter(freeze_window::Column::SystemId.eq(system_id))
        .filter(freeze_window::Column::Active.eq(true))
        .all(db)
        .await?;
    rows.into_iter()
        .map(|w| {
            let bad = |what: &str| StoreError::Corrupt {
                what: "freeze window",
                detail: format!("{} has {what}", w.id),
            };
            let span = match (w.starts_at, w.ends_at, &w.cron, w.duration_minutes) {
                (Some(starts), Some(ends), None, None) => FreezeSpan::Fixed { starts, ends },
                (None, None, Some(c), Some(m)) => FreezeSpan::Recurring {
                    cron: Box::new(parse_cron(c).map_err(|_| bad("an invalid cron pattern"))?),
                    duration: chrono::Duration::minutes(i64::from(m)),
                    tz,
                },
                _ => {
                    return Err(bad(
                        "neither a date range nor a cron pattern with a duration",
                    ));
                }
            };
            Ok(Freeze {
                id: w.id,
                environment: w
                    .environment
                    .as_deref()
                    .and_then(|e| EnvName::parse(e).ok()),
                span,
                reason: w.reason,
            })
        })
        .collect()
}

/// The ids of a system's open incidents of one of `severities`.
pub async fn open_incidents(
    db: &impl ConnectionTrait,
    system_id: i64,
    severities: impl IntoIterator<Item = Severity>,
) -> Result<Vec<i64>, StoreError> {
    Ok(incident::Entity::find()
        .select_only()
        .column(incident::Column::Id)
        .filter(incident::Column::SystemId.eq(system_id))
        .filter(incident::Column::Status.eq(Text(IncidentStatus::Open)))
        .filter(incident::Column::Severity.is_in(severities.into_iter().map(Text)))
        .into_tuple()
        .all(db)
        .await?)
}

/// A system's conditions not yet verified of one of `severities`.
pub async fn unverified_conditions(
    db: &impl ConnectionTrait,
    system_id: i64,
    severities: impl IntoIterator<Item = Severity>,
) -> Result<Vec<GatingCondition>, StoreError> {
    let rows: Vec<(i64, NaiveDate)> = remediation::Entity::find()
        .select_only()
        .column(remediation::Column::Id)
        .column(remediation::Column::Due)
        .filter(remediation::Column::SystemId.eq(system_id))
        .filter(remediation::Column::Kind.eq(Text(RemediationKind::Condition)))
        .filter(remediation::Column::State.ne(Text(RemediationState::Verified)))
        .filter(remediation::Column::Severity.is_in(severities.into_iter().map(Text)))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, due)| GatingCondition { id, due })
        .collect())
}

/// When a change request of the system was last approved.
pub async fn last_approval_at(
    db: &impl ConnectionTrait,
    system_id: i64,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let last: Option<Option<DateTime<Utc>>> = cr::Entity::find()
        .select_only()
        .column(cr::Column::ApprovedAt)
        .filter(cr::Column::SystemId.eq(system_id))
        .filter(cr::Column::ApprovedAt.is_not_null())
        .order_by_desc(cr::Column::ApprovedAt)
        .limit(1)
        .into_tuple()
        .one(db)
        .await?;
    Ok(last.flatten())
}

/// The emergency changes of a system (those with a break-glass window), by id.
pub async fn emergency_changes(
    db: &impl ConnectionTrait,
    system_id: i64,
) -> Result<Vec<EmergencyRow>, StoreError> {
    let rows: Vec<(i64, DateTime<Utc>, Option<DateTime<Utc>>)> = cr::Entity::find()
        .select_only()
        .columns([
            cr::Column::Id,
            cr::Column::EmergencyUntil,
            cr::Column::ApprovedAt,
        ])
        .filter(cr::Column::SystemId.eq(system_id))
        .filter(cr::Column::EmergencyUntil.is_not_null())
        .order_by_asc(cr::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, until, approved_at)| EmergencyRow {
            id,
            until,
            approved_at,
        })
        .collect())
}

/// A page of a system's submitted and approved change requests: at most `limit` with ids above
/// `after`, by id.
pub async fn live_changes_page(
    db: &impl ConnectionTrait,
    system_id: i64,
    after: i64,
    limit: u64,
) -> Result<Vec<ChangeRow>, StoreError> {
    let rows: Vec<ChangeTuple> = cr::Entity::find()
        .select_only()
        .columns(CHANGE_COLS)
        .filter(cr::Column::SystemId.eq(system_id))
        .filter(cr::Column::State.is_in([Text(CrState::Submitted), Text(CrState::Approved)]))
        .filter(cr::Column::Id.gt(after))
        .order_by_asc(cr::Column::Id)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(ChangeRow::from).collect())
}

/// The subjects of the change requests `ids` (one `IN` list: the caller bounds its length).
pub async fn subjects_of(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = i64>,
) -> Result<Vec<SubjectRow>, StoreError> {
    let rows: Vec<SubjectTuple> = cr_subject::Entity::find()
        .select_only()
        .columns([
            cr_subject::Column::ChangeRequestId,
            cr_subject::Column::CommitId,
            cr_subject::Column::TreeId,
            cr_subject::Column::Digest,
        ])
        .filter(cr_subject::Column::ChangeRequestId.is_in(ids))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(change_request_id, commit_id, tree_id, digest)| SubjectRow {
                change_request_id,
                commit_id,
                tree_id,
                digest,
            },
        )
        .collect())
}

/// The ids of a system's change requests with a subject naming `content` (from the subjects'
/// indexes; a change may be listed once per such subject).
pub async fn changes_covering(
    db: &impl ConnectionTrait,
    system_id: i64,
    content: &Content,
) -> Result<Vec<i64>, StoreError> {
    let col = match content {
        Content::Commit(c) => cr_subject::Column::CommitId.eq(c.as_str()),
        Content::Tree(t) => cr_subject::Column::TreeId.eq(t.as_str()),
        Content::Digest(d) => cr_subject::Column::Digest.eq(d.as_str()),
    };
    Ok(cr_subject::Entity::find()
        .select_only()
        .column(cr_subject::Column::ChangeRequestId)
        .filter(cr_subject::Column::SystemId.eq(system_id))
        .filter(col)
        .into_tuple()
        .all(db)
        .await?)
}

/// The change requests `ids` of a system that are neither drafts nor withdrawn, by id (one `IN`
/// list: the caller bounds its length).
pub async fn filed_changes(
    db: &impl ConnectionTrait,
    system_id: i64,
    ids: impl IntoIterator<Item = i64>,
) -> Result<Vec<ChangeRow>, StoreError> {
    let rows: Vec<ChangeTuple> = cr::Entity::find()
        .select_only()
        .columns(CHANGE_COLS)
        .filter(cr::Column::Id.is_in(ids))
        .filter(cr::Column::SystemId.eq(system_id))
        .filter(cr::Column::State.is_not_in([Text(CrState::Draft), Text(CrState::Withdrawn)]))
        .order_by_asc(cr::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows.into_iter().map(ChangeRow::from).collect())
}

/// The change request `id`, if it exists.
pub async fn change_row(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<ChangeRow>, StoreError> {
    let row: Option<ChangeTuple> = cr::Entity::find()
        .select_only()
        .columns(CHANGE_COLS)
        .filter(cr::Column::Id.eq(id))
        .into_tuple()
        .one(db)
        .await?;
    Ok(row.map(ChangeRow::from))
}
