//! What `/metrics` reads from the database at scrape time (so that every replica reports the
//! same): the audit log's head and an event's time, the outbox by status, job runs, locked
//! accounts, open incidents and overdue re-reviews. Counts and times only; what they mean and
//! which labels they get is the server's.

use crate::StoreError;
use crate::entity::{audit_event, delivery, incident, job_run, system, user};
use crate::types::Text;
use changegate_domain::Severity;
use changegate_domain::gate::{IncidentStatus, SystemStatus};
use changegate_domain::incident::IncidentKind;
use changegate_domain::notify::DeliveryStatus;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter,
    QuerySelect,
};

/// When audit event `seq` happened, if the log holds it and its time parses.
pub async fn event_time(
    db: &impl ConnectionTrait,
    seq: i64,
) -> Result<Option<DateTime<Utc>>, StoreError> {
    let at: Option<String> = audit_event::Entity::find()
        .select_only()
        .column(audit_event::Column::At)
        .filter(audit_event::Column::Seq.eq(seq))
        .into_tuple()
        .one(db)
        .await?;
    Ok(at
        .and_then(|s| DateTime::parse_from_rfc3339(&s).ok())
        .map(|d| d.with_timezone(&Utc)))
}

/// How many webhook deliveries are in `status`.
pub async fn deliveries_in(
    db: &impl ConnectionTrait,
    status: DeliveryStatus,
) -> Result<u64, StoreError> {
    Ok(delivery::Entity::find()
        .filter(delivery::Column::Status.eq(Text(status)))
        .count(db)
        .await?)
}

/// The runs of one job recorded in the database.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct JobRuns {
    /// The job's name.
    pub job: String,
    /// Its runs.
    pub runs: i64,
    /// Those whose outcome starts with the failure prefix.
    pub failed: i64,
}

/// The runs of every job that ran, counting as failed those whose outcome starts with
/// `failed_prefix`.
pub async fn job_runs(
    db: &impl ConnectionTrait,
    failed_prefix: &str,
) -> Result<Vec<JobRuns>, StoreError> {
    let failed = Expr::case(
        Expr::col(job_run::Column::Outcome).like(
            LikeExpr::new(format!("{}%", crate::search::like_escape(failed_prefix))).escape('\\'),
        ),
        1,
    )
    .finally(0);
    Ok(job_run::Entity::find()
        .select_only()
        .column(job_run::Column::Job)
        .column_as(job_run::Column::Id.count(), "runs")
        .column_as(Expr::expr(failed).sum(), "failed")
        .group_by(job_run::Column::Job)
        .into_model::<JobRuns>()
        .all(db)
        .await?)
}

/// The last finished run of every job that finished one.
pub async fn last_finished_runs(
    db: &impl ConnectionTrait,
) -> Result<Vec<job_run::Model>, StoreError> {
    let last = Query::select()
        .expr(job_run::Column::Id.max())
        .from(job_run::Entity)
        .and_where(job_run::Column::FinishedAt.is_not_null())
        .group_by_col(job_run::Column::Job)
        .to_owned();
    Ok(job_run::Entity::find()
        .filter(job_run::Column::Id.in_subquery(last))
        .all(db)
        .await?)
}

/// How many accounts are locked after failed sign-ins at `now`.
pub async fn accounts_locked(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(user::Entity::find()
        .filter(user::Column::LockedUntil.gt(now))
        .count(db)
        .await?)
}

/// An open incident as the gauges read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIncident {
    /// Its severity.
    pub severity: Severity,
    /// Its kind.
    pub kind: IncidentKind,
    /// When it was detected, if recorded.
    pub detected_at: Option<DateTime<Utc>>,
    /// When it was reported.
    pub reported_at: DateTime<Utc>,
    /// When A05 was notified, if it was.
    pub a05_notified_at: Option<DateTime<Utc>>,
}

type OpenIncidentTuple = (
    Text<Severity>,
    Text<IncidentKind>,
    Option<DateTime<Utc>>,
    DateTime<Utc>,
    Option<DateTime<Utc>>,
);

/// Every open incident.
pub async fn open_incidents(db: &impl ConnectionTrait) -> Result<Vec<OpenIncident>, StoreError> {
    let rows: Vec<OpenIncidentTuple> = incident::Entity::find()
        .select_only()
        .columns([
            incident::Column::Severity,
            incident::Column::Kind,
            incident::Column::DetectedAt,
            incident::Column::ReportedAt,
            incident::Column::A05NotifiedAt,
        ])
        .filter(incident::Column::Status.eq(Text(IncidentStatus::Open)))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(s, k, detected_at, reported_at, a05_notified_at)| OpenIncident {
                severity: *s,
                kind: *k,
                detected_at,
                reported_at,
                a05_notified_at,
            },
        )
        .collect())
}

/// How many active systems' periodic re-review was due before `now`.
pub async fn re_reviews_overdue(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(system::Entity::find()
        .filter(system::Column::Status.eq(Text(SystemStatus::Active)))
        .filter(system::Column::NextReviewDue.is_not_null())
        .filter(system::Column::NextReviewDue.lt(now))
        .count(db)
        .await?)
}
