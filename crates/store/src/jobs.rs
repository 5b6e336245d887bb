//! Scheduled jobs' rows: the claimed `(job, slot)` runs, the reminders sent once, the systems and
//! approvals the sweeps look at, the change requests opened in the scheduled-jobs account's name
//! (re-reviews, reclassifications) and that account.
//! When a job runs, what it reminds of and when, are the app's and the domain's questions.

use crate::StoreError;
use crate::entity::{change_request as cr, job_run, reminder, system};
use crate::types::{JsonText, Text};
use changegate_domain::notify::ReminderKind;
use changegate_domain::{ChangeKind, CrState};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, SqlErr, Statement,
};
use std::collections::HashSet;

// Job runs.

/// Claims the run of job `job` for slot `slot` by `runner`, started at `at`: false if the slot
/// was already claimed (its row is unique).
pub async fn claim_slot(
    db: &impl ConnectionTrait,
    job: &str,
    slot: &str,
    runner: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let row = job_run::ActiveModel {
        job: Set(job.to_owned()),
        slot: Set(slot.to_owned()),
        runner: Set(runner.to_owned()),
        started_at: Set(at),
        finished_at: Set(None),
        outcome: Set(None),
        ..Default::default()
    };
    match job_run::Entity::insert(row)
        .exec_without_returning(db)
        .await
    {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Records that the run of job `job` for slot `slot` finished at `at` with `outcome`.
pub async fn finish_slot(
    db: &impl ConnectionTrait,
    job: &str,
    slot: &str,
    outcome: String,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    job_run::Entity::update_many()
        .col_expr(job_run::Column::FinishedAt, Expr::value(Some(at)))
        .col_expr(job_run::Column::Outcome, Expr::value(Some(outcome)))
        .filter(job_run::Column::Job.eq(job))
        .filter(job_run::Column::Slot.eq(slot))
        .exec(db)
        .await?;
    Ok(())
}

/// The recorded runs of job `job`.
pub async fn runs_of(
    db: &impl ConnectionTrait,
    job: &str,
) -> Result<Vec<job_run::Model>, StoreError> {
    Ok(job_run::Entity::find()
        .filter(job_run::Column::Job.eq(job))
        .all(db)
        .await?)
}

// Reminders.

/// A reminder sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewReminder {
    /// What it reminds of.
    pub kind: ReminderKind,
    /// Of which subject (a system code, an incident's or an item's id).
    pub subject: String,
    /// The due time it is for (RFC 3339, UTC, seconds).
    pub due: String,
    /// How many days (or hours) before the due time; 0: the overdue notice.
    pub offset: i32,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
}

impl NewReminder {
    fn into_row(self) -> reminder::ActiveModel {
        reminder::ActiveModel {
            kind: Set(Text(self.kind)),
            subject: Set(self.subject),
            due: Set(self.due),
            offset_days: Set(self.offset),
            sent_at: Set(self.sent_at),
            ..Default::default()
        }
    }
}

/// Whether the reminder of `kind` about `subject` for `due` at `offset` was sent.
pub async fn reminder_sent(
    db: &impl ConnectionTrait,
    kind: ReminderKind,
    subject: &str,
    due: &str,
    offset: i32,
) -> Result<bool, StoreError> {
    Ok(reminder::Entity::find()
        .filter(reminder::Column::Kind.eq(Text(kind)))
        .filter(reminder::Column::Subject.eq(subject))
        .filter(reminder::Column::Due.eq(due))
        .filter(reminder::Column::OffsetDays.eq(offset))
        .one(db)
        .await?
        .is_some())
}

/// Records reminder `r` as sent.
pub async fn record_reminder(db: &impl ConnectionTrait, r: NewReminder) -> Result<(), StoreError> {
    r.into_row().insert(db).await?;
    Ok(())
}

/// Records reminders `rs` as sent, in one statement (the caller keeps it under the backend's
/// limit of bound values).
pub async fn record_reminders(
    db: &impl ConnectionTrait,
    rs: Vec<NewReminder>,
) -> Result<(), StoreError> {
    reminder::Entity::insert_many(rs.into_iter().map(NewReminder::into_row))
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Which reminder of a subject was sent: for what due time, at which offset.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SentReminder {
    /// The subject.
    pub subject: String,
    /// The due time (RFC 3339, UTC, seconds).
    pub due: String,
    /// The offset.
    pub offset: i32,
}

/// The reminders of `kind` sent about any of `subjects`.
pub async fn sent_reminders(
    db: &impl ConnectionTrait,
    kind: ReminderKind,
    subjects: &[&str],
) -> Result<HashSet<SentReminder>, StoreError> {
    let rows: Vec<(String, String, i32)> = reminder::Entity::find()
        .select_only()
        .columns([
            reminder::Column::Subject,
            reminder::Column::Due,
            reminder::Column::OffsetDays,
        ])
        .filter(reminder::Column::Kind.eq(Text(kind)))
        .filter(reminder::Column::Subject.is_in(subjects.iter().copied()))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(subject, due, offset)| SentReminder {
            subject,
            due,
            offset,
        })
        .collect())
}

// The review sweep.

/// Up to `limit` systems whose next re-review is due at or before `horizon`, of ids above
/// `after`, by id.
pub async fn systems_due_for_review(
    db: &impl ConnectionTrait,
    horizon: DateTime<Utc>,
    after: i64,
    limit: u64,
) -> Result<Vec<system::Model>, StoreError> {
    Ok(system::Entity::find()
        .filter(system::Column::NextReviewDue.lte(horizon))
        .filter(system::Column::Id.gt(after))
        .order_by_asc(system::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// Which of `system_ids` have a re-review in draft or submitted.
pub async fn systems_with_open_re_review(
    db: &impl ConnectionTrait,
    system_ids: &[i64],
) -> Result<HashSet<i64>, StoreError> {
    let ids: Vec<i64> = cr::Entity::find()
        .select_only()
        .column(cr::Column::SystemId)
        .filter(cr::Column::SystemId.is_in(system_ids.iter().copied()))
        .filter(cr::Column::Kind.eq(Text(ChangeKind::ReReview)))
        .filter(cr::Column::State.is_in([Text(CrState::Draft), Text(CrState::Submitted)]))
        .into_tuple()
        .all(db)
        .await?;
    Ok(ids.into_iter().collect())
}

/// A change request opened in the scheduled-jobs account's name, not yet in any round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewJobChange {
    /// Its system.
    pub system_id: i64,
    /// Its kind.
    pub kind: ChangeKind,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Title and description normalised for search.
    pub search_text: String,
    /// The state it starts in.
    pub state: CrState,
    /// Its environments.
    pub environments: JsonText<Vec<String>>,
    /// Who files it.
    pub filed_by: i64,
    /// The ids of those who filed or edited it.
    pub editors: Vec<i64>,
    /// When (also its last update).
    pub at: DateTime<Utc>,
}

impl NewJobChange {
    fn into_row(self) -> cr::ActiveModel {
        cr::ActiveModel {
            system_id: Set(self.system_id),
            kind: Set(self.kind.into()),
            title: Set(self.title),
            search_text: Set(self.search_text),
            description: Set(self.description),
            state: Set(self.state.into()),
            environments: Set(self.environments),
            components: Set(JsonText(vec![])),
            filed_by: Set(self.filed_by),
            editors: Set(JsonText(self.editors)),
            round: Set(0),
            approved_at: Set(None),
            valid_until: Set(None),
            created_at: Set(self.at),
            updated_at: Set(self.at),
            ..Default::default()
        }
    }
}

/// Inserts `n`; returns its row.
pub async fn insert_job_change(
    db: &impl ConnectionTrait,
    n: NewJobChange,
) -> Result<cr::Model, StoreError> {
    Ok(n.into_row().insert(db).await?)
}

/// Inserts `rows` in one statement (the caller keeps it under the backend's limit of bound
/// values) and returns their ids, sorted: ids are handed out in row order.
pub async fn insert_job_changes(
    db: &impl ConnectionTrait,
    rows: Vec<NewJobChange>,
) -> Result<Vec<i64>, StoreError> {
    let rows = rows.into_iter().map(NewJobChange::into_row);
    let mut keys = cr::Entity::insert_many(rows)
        .exec_with_returning_keys(db)
        .await?;
    // The order of RETURNING is not promised.
    keys.sort_unstable();
    Ok(keys)
}

/// An approval that lapses: the columns the expiry job uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LapsingApproval {
    /// The change request.
    pub id: i64,
    /// Its system.
    pub system_id: i64,
    /// Its title.
    pub title: String,
    /// Until when it is valid.
    pub valid_until: Option<DateTime<Utc>>,
}

/// The approved change requests valid until `by` at the latest.
pub async fn approvals_lapsing_by(
    db: &impl ConnectionTrait,
    by: DateTime<Utc>,
) -> Result<Vec<LapsingApproval>, StoreError> {
    let rows: Vec<(i64, i64, String, Option<DateTime<Utc>>)> = cr::Entity::find()
        .select_only()
        .columns([
            cr::Column::Id,
            cr::Column::SystemId,
            cr::Column::Title,
            cr::Column::ValidUntil,
        ])
        .filter(cr::Column::State.eq(Text(CrState::Approved)))
        .filter(cr::Column::ValidUntil.lte(by))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, system_id, title, valid_until)| LapsingApproval {
            id,
            system_id,
            title,
            valid_until,
        })
        .collect())
}

/// SQLite's page cache size of this connection (`PRAGMA cache_size`), if it is SQLite and says.
pub async fn sqlite_cache_size(db: &impl ConnectionTrait) -> Result<Option<i64>, StoreError> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return Ok(None);
    }
    Ok(db
        .query_one_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA cache_size",
        ))
        .await?
        .and_then(|r| r.try_get_by_index::<i64>(0).ok()))
}

/// Sets SQLite's page cache size of this connection (`PRAGMA cache_size`: pages, or KiB when
/// negative).
pub async fn set_sqlite_cache_size(db: &impl ConnectionTrait, size: i64) -> Result<(), StoreError> {
    db.execute_unprepared(&format!("PRAGMA cache_size = {size}"))
        .await?;
    Ok(())
}

// The scheduled-jobs account.
