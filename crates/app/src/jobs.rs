//! Scheduled jobs. Each run is for one slot (the scheduled time it stands for) and is claimed in
//! the database first (a unique `(job, slot)` row), so that several replicas run each slot once.
//! Jobs take their facts from the database, never from in-memory timers, and are idempotent:
//! reminders are recorded once per (subject, due date, offset).

use crate::identity::tokens::Principal;
use crate::{App, AppError, AppResult};
use changegate_api as wire;
use changegate_domain::ChangeKind;
use changegate_domain::change::Command;
use changegate_domain::notify::ReminderKind;
use changegate_domain::{CrState, Role, SecurityLevel};
use changegate_store::entity::{job_run, system};
use changegate_store::jobs::{self as store, NewJobChange, NewReminder, SentReminder};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::fmt;
use tracing::instrument;

/// How the outcome of a job run that failed begins (the rest is the error); `/metrics` counts
/// the runs whose outcome begins so.
pub const FAILED: &str = "failed: ";

/// A scheduled job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    /// Re-review reminders and overdue notices; the breach clock.
    ReviewSweep,
    /// Marks lapsed approvals expired; warns before approvals expire.
    ExpireApprovals,
    /// Delivers queued notifications (the server's dispatcher also runs continuously).
    DispatchNotifications,
    /// Copies the embedded SQLite database into `[backup] dir`, keeping the newest copies.
    Backup,
}

impl Job {
    /// Every job.
    pub const ALL: [Job; 4] = [
        Job::ReviewSweep,
        Job::ExpireApprovals,
        Job::DispatchNotifications,
        Job::Backup,
    ];

    /// The job's name (`review-sweep`).
    pub fn name(self) -> &'static str {
        match self {
            Job::ReviewSweep => "review-sweep",
            Job::ExpireApprovals => "expire-approvals",
            Job::DispatchNotifications => "dispatch-notifications",
            Job::Backup => "backup",
        }
    }

    /// Parses a job name.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|j| j.name() == s)
            .ok_or_else(|| {
                format!(
                    "{s:?} is not a job; the jobs are {}",
                    Self::ALL.map(Job::name).join(", ")
                )
            })
    }
}

impl fmt::Display for Job {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Parses a job's cron expression the way the scheduler does: 6 fields, seconds first.
pub fn parse_job_cron(s: &str) -> Result<croner::Cron, String> {
    croner::parser::CronParser::builder()
        .seconds(croner::parser::Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(s)
        .map_err(|e| format!("{s:?} is not a cron expression of 6 fields (second minute hour day-of-month month day-of-week): {e}"))
}

/// The slot a run at `now` stands for: the latest scheduled time not after `now`.
pub fn slot_at(
    cron: &croner::Cron,
    tz: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    cron.find_previous_occurrence(&now.with_timezone(&tz), true)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// What a job run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOutcome {
    /// Ran, with a summary.
    Ran(String),
    /// Another run (or replica) already claimed this slot.
    AlreadyRun,
}

/// Systems read, and acted on in one transaction, per page of the review sweep.
const SWEEP_PAGE: u64 = 1000;
/// Rows per multi-row insert of the review sweep.
const SWEEP_PAGE_ROWS: usize = 1000;
/// SQLite page cache of a review sweep's transaction, in KiB.
const SWEEP_CACHE_KIB: i64 = 16 * 1024;

/// What a review sweep did.
#[derive(Debug, Default)]
struct Swept {
    opened: u32,
    reminded: u32,
    overdue: u32,
}

fn slot_text(slot: DateTime<Utc>) -> String {
    slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl App {
    /// Claims `(job, slot)`; false if it was already claimed.
    pub async fn claim_slot(&self, job: Job, slot: &str, runner: &str) -> AppResult<bool> {
        Ok(store::claim_slot(&self.db, job.name(), slot, runner, crate::now()).await?)
    }

    /// Records how a claimed run ended.
    pub async fn finish_slot(&self, job: Job, slot: &str, outcome: &str) -> AppResult<()> {
        store::finish_slot(
            &self.db,
            job.name(),
            slot,
            outcome.chars().take(1000).collect(),
            crate::now(),
        )
        .await?;
        Ok(())
    }

    /// How many runs of `job` are recorded (for tests and diagnostics).
    pub async fn job_runs(&self, job: Job) -> AppResult<Vec<job_run::Model>> {
        Ok(store::runs_of(&self.db, job.name()).await?)
    }

    /// Runs the database work of a job for a slot, once across replicas. The dispatch job's
    /// delivery is the server's; here it only claims.
    pub async fn run_claimed<F, Fut>(
        &self,
        job: Job,
        slot: DateTime<Utc>,
        runner: &str,
        body: F,
    ) -> AppResult<JobOutcome>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = AppResult<String>>,
    {
        let slot = slot_text(slot);
        if !self.claim_slot(job, &slot, runner).await? {
            return Ok(JobOutcome::AlreadyRun);
        }
        let outcome = body().await;
        let text = match &outcome {
            Ok(s) => s.clone(),
            Err(e) => format!("{FAILED}{e}"),
        };
        self.finish_slot(job, &slot, &text).await?;
        // At every job slot, the key outside the database signs the chain's head.
        if let Err(e) = self.checkpoint_audit().await {
            tracing::warn!(error = %e, "could not sign an audit checkpoint at the job slot");
        }
        outcome.map(JobOutcome::Ran)
    }

    /// Sends a reminder once: the reminder row, its notification and its audit event commit
    /// together or not at all, so a failure leaves it to the next sweep instead of losing it.
    /// `reminder` is (kind, subject, due, offset). True when it was sent now.
    pub(crate) async fn announce_once(
        &self,
        reminder: (ReminderKind, String, DateTime<Utc>, i32),
        action: &str,
        entity: &str,
        system_id: Option<i64>,
        event: &str,
        data: serde_json::Value,
    ) -> AppResult<bool> {
        let (kind, subject, due, offset) = reminder;
        let tx = self.begin().await?;
        // Writers are serialised by the chain head taken in `begin`: check, then insert.
        if store::reminder_sent(&tx.txn, kind, &subject, &slot_text(due), offset).await? {
            return Ok(false);
        }
        store::record_reminder(
            &tx.txn,
            NewReminder {
                kind,
                subject: subject.clone(),
                due: slot_text(due),
                offset,
                sent_at: tx.at(),
            },
        )
        .await?;
        tx.notify(event, data.clone()).await?;
        tx.audit(crate::event(
            None,
            action,
            entity,
            &subject,
            system_id,
            None,
            Some(data),
        ))
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The service account of scheduled jobs, created (inactive, audited) on first need.
    pub(crate) async fn service_user(&self, tx: &crate::WriteTx<'_>) -> AppResult<i64> {
        use crate::registry::{SERVICE_ORG, SERVICE_USER};
        if let Some(u) = changegate_store::identity::user_by_username(&tx.txn, SERVICE_USER).await?
        {
            return Ok(u.id);
        }
        let org =
            match changegate_store::registry::organisation_by_code(&tx.txn, SERVICE_ORG).await? {
                Some(o) => o,
                None => {
                    changegate_store::registry::create_organisation(
                        &tx.txn,
                        changegate_store::registry::NewOrganisation {
                            code: SERVICE_ORG.into(),
                            name: "changegate – việc định kỳ / scheduled jobs".into(),
                            kind: changegate_domain::OrgKind::Inspector,
                            at: tx.at(),
                        },
                    )
                    .await?
                }
            };
        let u = changegate_store::identity::create_service_account(
            &tx.txn,
            changegate_store::identity::NewUser {
                username: SERVICE_USER.into(),
                display_name: "changegate (việc định kỳ)".into(),
                org_id: org.id,
                role: Role::Auditor,
                password_hash: String::new(),
                at: tx.at(),
            },
        )
        .await?;
        tx.audit(crate::event(
            None,
            "user.create_service_account",
            "user",
            SERVICE_USER,
            None,
            None,
            Some(serde_json::json!({ "username": SERVICE_USER, "active": false })),
        ))
        .await?;
        Ok(u.id)
    }

    /// Re-review reminders (at the pack's offsets before the due date), the overdue notice, and
    /// the breach clock. Idempotent.
    ///
    /// The systems whose re-review is within the first reminder or overdue are read in pages of
    /// [`SWEEP_PAGE`] and each page is acted on in one transaction (see [`App::sweep_page`]), so
    /// that a sweep over many systems costs a few statements per page, not several transactions
    /// per system.
    #[instrument(skip_all, err)]
    pub async fn review_sweep(&self, now: DateTime<Utc>) -> AppResult<String> {
        let first_offset = self
            .pack
            .reminders
            .days_before
            .iter()
            .copied()
            .max()
            .unwrap_or(0);
        // Only the systems whose re-review is within the first reminder or overdue.
        let horizon = now + Duration::days(i64::from(first_offset));
        let mut done = Swept::default();
        let mut after = 0i64;
        loop {
            let systems =
                store::systems_due_for_review(&self.db, horizon, after, SWEEP_PAGE).await?;
            let Some(last) = systems.last().map(|s| s.id) else {
                break;
            };
            after = last;
            let page = self.sweep_page(&systems, now, first_offset).await?;
            done.opened += page.opened;
            done.reminded += page.reminded;
            done.overdue += page.overdue;
        }
        let breach = self.breach_clock(now).await?;
        let (due_soon, overdue) = self.remediation_clock(now).await?;
        let (notice_soon, notice_late) = self.notice_clock(now).await?;
        let annual = self.annual_report_clock(now).await?;
        Ok(format!(
            "{} re-review(s) opened, {} re-review reminder(s), {} overdue notice(s), {breach} breach-clock reminder(s), {due_soon} remediation reminder(s), {overdue} overdue remediation notice(s), {notice_soon} incident notice reminder(s), {notice_late} overdue incident notice(s), {annual} annual report reminder(s)",
            done.opened, done.reminded, done.overdue
        ))
    }

    /// Remediation items: a reminder at the pack's offsets before the due date (the nearest
    /// offset reached, while the item waits for its owner) and one overdue notice once it is past
    /// due and not verified. Each is sent once (the reminder row is claimed in the transaction
    /// that sends it, across replicas). Returns (reminders, overdue notices) sent now.
    async fn remediation_clock(&self, now: DateTime<Utc>) -> AppResult<(u32, u32)> {
        use changegate_domain::remediation::overdue_at;
        let offsets = &self.pack.remediation.reminder_days_before;
        let today = now.with_timezone(&self.tz).date_naive();
        let horizon = today + Duration::days(i64::from(offsets.iter().copied().max().unwrap_or(0)));
        let items = changegate_store::remediation::unverified_due_by(&self.db, horizon).await?;
        let (mut soon, mut late) = (0, 0);
        for r in items {
            let left = (r.due - today).num_days();
            let offset = if r.due < today {
                Some(0)
            } else if r.state.awaits_owner() {
                offsets
                    .iter()
                    .copied()
                    .filter(|d| left <= i64::from(*d))
                    .min()
                    .and_then(|d| i32::try_from(d).ok())
            } else {
                None
            };
            let Some(offset) = offset else { continue };
            let mut data = self.notice(&self.db, &r).await?;
            data["days_left"] = serde_json::json!(left.max(0));
            let event = if offset == 0 {
                "remediation.overdue"
            } else {
                "remediation.due_soon"
            };
            let reminder = (
                ReminderKind::Remediation,
                r.id.to_string(),
                overdue_at(r.due, self.tz),
                offset,
            );
            if self
                .announce_once(
                    reminder,
                    &format!("{event}_notice"),
                    "remediation",
                    Some(r.system_id),
                    event,
                    data,
                )
                .await?
            {
                if offset == 0 { late += 1 } else { soon += 1 }
            }
        }
        Ok((soon, late))
    }

    /// One page of the review sweep, in one transaction. For each system in turn: the periodic
    /// re-review is opened (kind `re_review`, submitted for PA05, in the name of the
    /// scheduled-jobs account) when it falls within the first reminder or is overdue, unless one
    /// is open already; then the overdue notice, or the reminder of the nearest offset reached
    /// (a sweep after a long stop sends one reminder, not all of them), unless it was sent. Each
    /// with its notification and audit event, in that order. What was opened or sent is checked
    /// inside the transaction: writers are serialised by the chain head, so overlapping sweeps
    /// open one re-review and send each reminder once.
    async fn sweep_page(
        &self,
        systems: &[system::Model],
        now: DateTime<Utc>,
        first_offset: u32,
    ) -> AppResult<Swept> {
        let tx = self.begin().await?;
        // SQLite: a page's inserts touch more index pages than the pool's small page cache holds,
        // which then spills them to the log again and again within the transaction. A larger
        // cache for this transaction only; the usual one is put back before the commit, which
        // frees the pages above it once they are written.
        let cache = store::sqlite_cache_size(&tx.txn).await?;
        if cache.is_some() {
            store::set_sqlite_cache_size(&tx.txn, -SWEEP_CACHE_KIB).await?;
        }
        let done = self.sweep_page_in(&tx, systems, now, first_offset).await;
        if let Some(size) = cache {
            store::set_sqlite_cache_size(&tx.txn, size).await?;
        }
        // Nothing to write: the transaction is dropped, which rolls it back.
        let Some(done) = done? else {
            return Ok(Swept::default());
        };
        tx.commit().await?;
        Ok(done)
    }

    async fn sweep_page_in(
        &self,
        tx: &crate::WriteTx<'_>,
        systems: &[system::Model],
        now: DateTime<Utc>,
        first_offset: u32,
    ) -> AppResult<Option<Swept>> {
        let ids: Vec<i64> = systems.iter().map(|s| s.id).collect();
        let open = store::systems_with_open_re_review(&tx.txn, &ids).await?;
        let codes: Vec<&str> = systems.iter().map(|s| s.code.as_str()).collect();
        let sent = store::sent_reminders(&tx.txn, ReminderKind::ReReview, &codes).await?;
        // What to do, per system in order: open its re-review?, and which reminder.
        struct Todo<'a> {
            s: &'a system::Model,
            due: DateTime<Utc>,
            open: bool,
            reminder: Option<Announce>,
        }
        struct Announce {
            offset: i32,
            action: &'static str,
            event: &'static str,
            data: serde_json::Value,
        }
        let mut todo = vec![];
        for s in systems {
            let Some(due) = s.next_review_due else {
                continue;
            };
            // The re-review is opened when it falls within the first reminder (or is overdue),
            // so that PA05 has the reminder period to evaluate it.
            let open =
                now >= due - Duration::days(i64::from(first_offset)) && !open.contains(&s.id);
            let level = SecurityLevel::new(i64::from(s.level))
                .map_err(|e| AppError::Internal(e.to_string()))?;
            let data = |days_left: i64| serde_json::json!({ "system": s.code, "system_name": s.name, "level": level.get(), "due": due, "days_left": days_left });
            let reminder = if due <= now {
                Some(Announce {
                    offset: 0,
                    action: "system.re_review_overdue",
                    event: "re_review.overdue",
                    data: data(0),
                })
            } else {
                // Only the nearest offset that has been reached.
                self.pack
                    .reminders
                    .days_before
                    .iter()
                    .copied()
                    .filter(|o| now >= due - Duration::days(i64::from(*o)))
                    .min()
                    .map(|offset| Announce {
                        offset: i32::try_from(offset).unwrap_or(i32::MAX),
                        action: "system.re_review_due",
                        event: "re_review.due",
                        data: data((due - now).num_days()),
                    })
            };
            let reminder = reminder.filter(|r| {
                !sent.contains(&SentReminder {
                    subject: s.code.clone(),
                    due: slot_text(due),
                    offset: r.offset,
                })
            });
            if open || reminder.is_some() {
                todo.push(Todo {
                    s,
                    due,
                    open,
                    reminder,
                });
            }
        }
        if todo.is_empty() {
            return Ok(None);
        }
        // The re-reviews, inserted together; ids are handed out in row order.
        let to_open: Vec<&Todo<'_>> = todo.iter().filter(|t| t.open).collect();
        let mut opened: HashMap<i64, (i64, String)> = HashMap::new();
        if !to_open.is_empty() {
            const RE_REVIEW_TEXT: &str = "Mở tự động theo lịch kiểm tra, đánh giá lại định kỳ (Chỉ thị 14/CT-TTg). / Opened by the periodic re-review schedule.";
            let filer = self.service_user(tx).await?;
            let titles: Vec<String> = to_open
                .iter()
                .map(|t| {
                    let due_day = t.due.with_timezone(&self.tz).format("%d/%m/%Y").to_string();
                    format!("Kiểm tra, đánh giá lại định kỳ – hạn {due_day} / Periodic re-review – due {due_day}")
                })
                .collect();
            let rows: Vec<NewJobChange> = to_open
                .iter()
                .zip(&titles)
                .map(|(t, title)| NewJobChange {
                    system_id: t.s.id,
                    kind: ChangeKind::ReReview,
                    title: title.clone(),
                    search_text: changegate_domain::change::search_text(title, RE_REVIEW_TEXT),
                    description: RE_REVIEW_TEXT.into(),
                    state: CrState::Submitted,
                    environments: t.s.environments.clone(),
                    filed_by: filer,
                    editors: vec![filer],
                    at: tx.at(),
                })
                .collect();
            // 15 columns a row: 1,000 rows stay under SQLite's 32,766 variables.
            let mut ids = Vec::with_capacity(rows.len());
            let mut rows = rows;
            while !rows.is_empty() {
                let rest = rows.split_off(SWEEP_PAGE_ROWS.min(rows.len()));
                let n = rows.len();
                // Ids are handed out in row order, and come back sorted.
                let keys = store::insert_job_changes(&tx.txn, rows).await?;
                if keys.len() != n {
                    return Err(AppError::Internal(format!(
                        "{} ids returned for {n} re-reviews",
                        keys.len()
                    )));
                }
                ids.extend(keys);
                rows = rest;
            }
            for ((t, id), title) in to_open.iter().zip(ids).zip(titles) {
                opened.insert(t.s.id, (id, title));
            }
        }
        let mut done = Swept::default();
        let mut reminders = vec![];
        let mut notes = vec![];
        let mut events = vec![];
        for t in todo {
            let s = t.s;
            if let Some((id, title)) = opened.remove(&s.id) {
                let data = serde_json::json!({
                    "id": id, "system": s.code, "system_name": s.name, "level": s.level, "kind": ChangeKind::ReReview,
                    "title": title, "actor": "changegate", "due": t.due,
                });
                notes.push(("change_request.submitted", data.clone()));
                events.push(crate::event(
                    None,
                    "change_request.open_re_review",
                    "change_request",
                    id,
                    Some(s.id),
                    None,
                    Some(data),
                ));
                done.opened += 1;
            }
            if let Some(r) = t.reminder {
                reminders.push(NewReminder {
                    kind: ReminderKind::ReReview,
                    subject: s.code.clone(),
                    due: slot_text(t.due),
                    offset: r.offset,
                    sent_at: tx.at(),
                });
                notes.push((r.event, r.data.clone()));
                events.push(crate::event(
                    None,
                    r.action,
                    "system",
                    &s.code,
                    Some(s.id),
                    None,
                    Some(r.data),
                ));
                if r.offset == 0 {
                    done.overdue += 1;
                } else {
                    done.reminded += 1;
                }
            }
        }
        while !reminders.is_empty() {
            let rest = reminders.split_off(SWEEP_PAGE_ROWS.min(reminders.len()));
            store::record_reminders(&tx.txn, reminders).await?;
            reminders = rest;
        }
        tx.notify_many(notes).await?;
        tx.audit_many(events).await?;
        Ok(Some(done))
    }

    /// Reminders of the 72-hour A05 notification of a personal-data breach: 24, 6 and 1 hours
    /// before the deadline, and once when it has passed, until the notification is recorded.
    async fn breach_clock(&self, now: DateTime<Utc>) -> AppResult<u32> {
        let open = changegate_store::incidents::breaches_without_a05_notice(&self.db).await?;
        let hours = i64::from(self.pack.incidents.breach_notify_hours);
        let mut sent = 0;
        for i in open {
            // Decree 356/2025: the 72 hours count from the breach's detection.
            let detected = i.detected_at.unwrap_or(i.reported_at);
            let deadline = detected + Duration::hours(hours);
            let left = deadline - now;
            let mark = [24i64, 6, 1]
                .into_iter()
                .filter(|h| left <= Duration::hours(*h))
                .min();
            let offset = if left <= Duration::zero() {
                Some(0)
            } else {
                mark
            };
            let Some(offset) = offset else { continue };
            let sys = changegate_store::gate::system_by_id(&self.db, i.system_id).await?;
            let data = serde_json::json!({
                "id": i.id, "system": sys.as_ref().map(|s| s.code.clone()), "system_name": sys.as_ref().map(|s| s.name.clone()),
                "reported_at": i.reported_at, "detected_at": detected, "deadline": deadline, "hours_left": left.num_hours().max(0), "overdue": offset == 0,
            });
            let reminder = (
                ReminderKind::Breach,
                i.id.to_string(),
                deadline,
                i32::try_from(offset).unwrap_or(0),
            );
            if self
                .announce_once(
                    reminder,
                    "incident.breach_clock",
                    "incident",
                    Some(i.system_id),
                    "breach.clock",
                    data,
                )
                .await?
            {
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// The notice clocks of incidents (Decree 331/2026, Art. 31.2.d): a reminder at the pack's
    /// `notice_reminder_hours` before an initial notice or a report falls due (the nearest offset
    /// reached), and one overdue notice once it has passed unsent; each once. Incidents reported
    /// in the last 30 days are looked at (every deadline falls within days of the detection).
    /// Returns (reminders, overdue notices) sent now.
    pub async fn notice_clock(&self, now: DateTime<Utc>) -> AppResult<(u32, u32)> {
        use changegate_domain::incident::{NoticeKind, deadlines};
        let recent =
            changegate_store::incidents::reported_since(&self.db, now - Duration::days(30)).await?;
        let (mut soon, mut late) = (0, 0);
        for i in recent {
            let sent = changegate_store::incidents::notice_kinds(&self.db, i.id).await?;
            for d in deadlines(&self.clock_facts(&i), &self.pack) {
                // The A05 notice of a breach has its own clock (`breach_clock`).
                if d.kind == NoticeKind::A05 || sent.contains(&d.kind) {
                    continue;
                }
                let left = d.due - now;
                let offset = if left <= Duration::zero() {
                    Some(0)
                } else {
                    self.pack
                        .incidents
                        .notice_reminder_hours
                        .iter()
                        .copied()
                        .filter(|h| left <= Duration::hours(i64::from(*h)))
                        .min()
                        .and_then(|h| i32::try_from(h).ok())
                };
                let Some(offset) = offset else { continue };
                let sys = changegate_store::gate::system_by_id(&self.db, i.system_id).await?;
                let data = serde_json::json!({
                    "id": i.id, "system": sys.as_ref().map(|s| s.code.clone()),
                    "system_name": sys.as_ref().map(|s| s.name.clone()), "severity": i.severity,
                    "severity_vi": crate::remediation::severity_vi(*i.severity),
                    "notice": d.kind.as_str(), "detected_at": i.detected_at.unwrap_or(i.reported_at),
                    "deadline": d.due, "minutes_left": left.num_minutes().max(0), "overdue": offset == 0,
                    "national_security": i.national_security,
                });
                let (event, action) = if offset == 0 {
                    ("incident.notice_overdue", "incident.notice_overdue")
                } else {
                    ("incident.notice_due", "incident.notice_reminder")
                };
                let reminder = (
                    if d.kind == NoticeKind::Initial {
                        ReminderKind::IncidentInitial
                    } else {
                        ReminderKind::IncidentReport
                    },
                    i.id.to_string(),
                    d.due,
                    offset,
                );
                if self
                    .announce_once(reminder, action, "incident", Some(i.system_id), event, data)
                    .await?
                {
                    if offset == 0 { late += 1 } else { soon += 1 }
                }
            }
        }
        Ok((soon, late))
    }

    /// Marks lapsed approvals expired (audited), and warns 7 and 1 days before an approval
    /// expires. Idempotent.
    #[instrument(skip_all, err)]
    pub async fn expire_approvals(&self, now: DateTime<Utc>) -> AppResult<String> {
        // Only approvals that lapsed or lapse within the warning period, and only the columns
        // used: a database of many approvals is not read into memory.
        let approved = store::approvals_lapsing_by(&self.db, now + Duration::days(7)).await?;
        let (mut expired, mut warned) = (0, 0);
        for a in approved {
            let (id, system_id, title) = (a.id, a.system_id, a.title);
            let Some(until) = a.valid_until else { continue };
            if until <= now {
                match self.act_on_change(None, id, Command::Expire).await {
                    Ok(_) => expired += 1,
                    // Changed meanwhile (revoked, or another replica expired it): nothing to do.
                    Err(AppError::Conflict(..)) => {}
                    Err(e) => return Err(e),
                }
                continue;
            }
            let Some(offset) = [7i64, 1]
                .into_iter()
                .filter(|d| now >= until - Duration::days(*d))
                .min()
            else {
                continue;
            };
            let sys = changegate_store::gate::system_by_id(&self.db, system_id).await?;
            let data = serde_json::json!({
                "id": id, "title": title, "system": sys.as_ref().map(|s| s.code.clone()),
                "system_name": sys.as_ref().map(|s| s.name.clone()), "valid_until": until, "days_left": (until - now).num_days(),
            });
            let reminder = (
                ReminderKind::Approval,
                id.to_string(),
                until,
                i32::try_from(offset).unwrap_or(0),
            );
            if self
                .announce_once(
                    reminder,
                    "change_request.approval_expiring",
                    "change_request",
                    Some(system_id),
                    "approval.expiring",
                    data,
                )
                .await?
            {
                warned += 1;
            }
        }
        Ok(format!(
            "{expired} approval(s) expired, {warned} expiry warning(s)"
        ))
    }

    /// Records when A05 was notified of a personal-data breach (the owner's organisation, a
    /// reviewer, an admin). Stops the breach clock.
    pub async fn record_a05_notified(
        &self,
        who: &Principal,
        id: i64,
        at: Option<DateTime<Utc>>,
    ) -> AppResult<changegate_api::Incident> {
        who.require(
            &[Role::Owner, Role::Reviewer, Role::Admin],
            "recording the notification of A05",
        )?;
        let tx = self.begin().await?;
        let i = changegate_store::incidents::incident(&tx.txn, id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("incident {id}")))?;
        let sys = changegate_store::gate::system_by_id(&tx.txn, i.system_id)
            .await?
            .ok_or_else(|| AppError::Internal("incident without system".into()))?;
        if !crate::registry::may_see_org(who, sys.owner_org_id) {
            return Err(AppError::NotFound(format!("incident {id}")));
        }
        if !i.kind.is_breach() {
            return Err(AppError::Conflict(
                wire::ProblemCode::IllegalTransition,
                format!("incident {id} is not a personal-data breach"),
            ));
        }
        if i.a05_notified_at.is_some() {
            return Err(AppError::Conflict(
                wire::ProblemCode::IllegalTransition,
                format!("the notification of A05 for incident {id} is already recorded"),
            ));
        }
        let at = at.unwrap_or(tx.at());
        if at > tx.at() + Duration::minutes(5) || at < i.reported_at {
            return Err(AppError::invalid(
                "notified_at",
                "must be between the report and now",
            ));
        }
        let i = changegate_store::incidents::record_a05_notified(&tx.txn, i, at).await?;
        tx.audit(crate::event(
            Some(who),
            "incident.a05_notified",
            "incident",
            id,
            Some(sys.id),
            None,
            Some(serde_json::json!({ "a05_notified_at": at })),
        ))
        .await?;
        tx.commit().await?;
        self.incident_view(&i, &sys.code).await
    }
}
