//! Scheduled jobs. Each run is for one slot (the scheduled time it stands for) and is claimed in
//! the database first (a unique `(job, slot)` row), so that several replicas run each slot once.
//! Jobs take their facts from the database, never from in-memory timers, and are idempotent:
//! reminders are recorded once per (subject, due date, offset).

use crate::auth::Principal;
use crate::{App, AppError, AppResult};
use changegate_domain::change::Command;
use changegate_domain::{CrState, Role, SecurityLevel};
use changegate_store::entity::{change_request as cr, incident, job_run, reminder, system};
use changegate_store::sea_orm::sea_query::Expr;
use changegate_store::sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QuerySelect, SqlErr,
};
use chrono::{DateTime, Duration, Utc};
use std::fmt;
use tracing::instrument;

/// A scheduled job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    /// Re-review reminders and overdue notices; the breach clock.
    ReviewSweep,
    /// Marks lapsed approvals expired; warns before approvals expire.
    ExpireApprovals,
    /// Delivers queued notifications (the server's dispatcher also runs continuously).
    DispatchNotifications,
}

impl Job {
    /// Every job.
    pub const ALL: [Job; 3] = [
        Job::ReviewSweep,
        Job::ExpireApprovals,
        Job::DispatchNotifications,
    ];

    /// The job's name (`review-sweep`).
    pub fn name(self) -> &'static str {
        match self {
            Job::ReviewSweep => "review-sweep",
            Job::ExpireApprovals => "expire-approvals",
            Job::DispatchNotifications => "dispatch-notifications",
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

fn slot_text(slot: DateTime<Utc>) -> String {
    slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl App {
    /// Claims `(job, slot)`; false if it was already claimed.
    pub async fn claim_slot(&self, job: Job, slot: &str, runner: &str) -> AppResult<bool> {
        let row = job_run::ActiveModel {
            job: Set(job.name().to_owned()),
            slot: Set(slot.to_owned()),
            runner: Set(runner.to_owned()),
            started_at: Set(crate::now()),
            finished_at: Set(None),
            outcome: Set(None),
            ..Default::default()
        };
        match job_run::Entity::insert(row)
            .exec_without_returning(&self.db)
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Ok(false)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Records how a claimed run ended.
    pub async fn finish_slot(&self, job: Job, slot: &str, outcome: &str) -> AppResult<()> {
        job_run::Entity::update_many()
            .col_expr(job_run::Column::FinishedAt, Expr::value(Some(crate::now())))
            .col_expr(
                job_run::Column::Outcome,
                Expr::value(Some(outcome.chars().take(1000).collect::<String>())),
            )
            .filter(job_run::Column::Job.eq(job.name()))
            .filter(job_run::Column::Slot.eq(slot))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// How many runs of `job` are recorded (for tests and diagnostics).
    pub async fn job_runs(&self, job: Job) -> AppResult<Vec<job_run::Model>> {
        Ok(job_run::Entity::find()
            .filter(job_run::Column::Job.eq(job.name()))
            .all(&self.db)
            .await?)
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
            Err(e) => format!("failed: {e}"),
        };
        self.finish_slot(job, &slot, &text).await?;
        outcome.map(JobOutcome::Ran)
    }

    /// Sends a reminder once: the reminder row, its notification and its audit event commit
    /// together or not at all, so a failure leaves it to the next sweep instead of losing it.
    /// `reminder` is (kind, subject, due, offset). True when it was sent now.
    async fn announce_once(
        &self,
        reminder: (&str, String, DateTime<Utc>, i32),
        action: &str,
        entity: &str,
        system_id: Option<i64>,
        event: &str,
        data: serde_json::Value,
    ) -> AppResult<bool> {
        let (kind, subject, due, offset) = reminder;
        let tx = self.begin().await?;
        // Writers are serialised by the chain head taken in `begin`: check, then insert.
        let sent = reminder::Entity::find()
            .filter(reminder::Column::Kind.eq(kind))
            .filter(reminder::Column::Subject.eq(&subject))
            .filter(reminder::Column::Due.eq(slot_text(due)))
            .filter(reminder::Column::OffsetDays.eq(offset))
            .one(&tx.txn)
            .await?;
        if sent.is_some() {
            return Ok(false);
        }
        reminder::ActiveModel {
            kind: Set(kind.to_owned()),
            subject: Set(subject.clone()),
            due: Set(slot_text(due)),
            offset_days: Set(offset),
            sent_at: Set(tx.at()),
            ..Default::default()
        }
        .insert(&tx.txn)
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
    async fn service_user(&self, tx: &crate::WriteTx<'_>) -> AppResult<i64> {
        use crate::registry::{SERVICE_ORG, SERVICE_USER};
        use changegate_store::entity::{organisation, user};
        if let Some(u) = user::Entity::find()
            .filter(user::Column::Username.eq(SERVICE_USER))
            .one(&tx.txn)
            .await?
        {
            return Ok(u.id);
        }
        let org = match organisation::Entity::find()
            .filter(organisation::Column::Code.eq(SERVICE_ORG))
            .one(&tx.txn)
            .await?
        {
            Some(o) => o,
            None => {
                organisation::ActiveModel {
                    code: Set(SERVICE_ORG.into()),
                    name: Set("changegate – việc định kỳ / scheduled jobs".into()),
                    kind: Set("inspector".into()),
                    allowed_ips: Set(None),
                    created_at: Set(tx.at()),
                    ..Default::default()
                }
                .insert(&tx.txn)
                .await?
            }
        };
        let u = user::ActiveModel {
            username: Set(SERVICE_USER.into()),
            display_name: Set("changegate (việc định kỳ)".into()),
            org_id: Set(org.id),
            role: Set("auditor".into()),
            // Not a PHC string: no password ever verifies against it.
            password_hash: Set("!".into()),
            must_change_password: Set(false),
            active: Set(false),
            created_at: Set(tx.at()),
            ..Default::default()
        }
        .insert(&tx.txn)
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

    /// Opens the periodic re-review of a system (kind `re_review`, submitted for PA05) unless
    /// one is already open. Returns its id when it opened one.
    async fn open_re_review(
        &self,
        s: &system::Model,
        due: DateTime<Utc>,
    ) -> AppResult<Option<i64>> {
        let tx = self.begin().await?;
        // Checked inside the transaction: writers are serialised, so two sweeps cannot both open one.
        let open = cr::Entity::find()
            .filter(cr::Column::SystemId.eq(s.id))
            .filter(cr::Column::Kind.eq("re_review"))
            .filter(cr::Column::State.is_in([CrState::Draft.as_str(), CrState::Submitted.as_str()]))
            .one(&tx.txn)
            .await?;
        if open.is_some() {
            return Ok(None);
        }
        let filer = self.service_user(&tx).await?;
        let due_day = due.with_timezone(&self.tz).format("%d/%m/%Y").to_string();
        let row = cr::ActiveModel {
            system_id: Set(s.id),
            kind: Set("re_review".into()),
            title: Set(format!("Kiểm tra, đánh giá lại định kỳ – hạn {due_day} / Periodic re-review – due {due_day}")),
            description: Set("Mở tự động theo lịch kiểm tra, đánh giá lại định kỳ (Chỉ thị 14/CT-TTg). / Opened by the periodic re-review schedule.".into()),
            state: Set(CrState::Submitted.as_str().into()),
            environments: Set(s.environments.clone()),
            components: Set("[]".into()),
            filed_by: Set(filer),
            editors: Set(crate::to_json(&[filer])),
            round: Set(0),
            approved_at: Set(None),
            valid_until: Set(None),
            created_at: Set(tx.at()),
            updated_at: Set(tx.at()),
            ..Default::default()
        }
        .insert(&tx.txn)
        .await?;
        let data = serde_json::json!({
            "id": row.id, "system": s.code, "system_name": s.name, "level": s.level, "kind": "re_review",
            "title": row.title, "actor": "changegate", "due": due,
        });
        tx.notify("change_request.submitted", data.clone()).await?;
        tx.audit(crate::event(
            None,
            "change_request.open_re_review",
            "change_request",
            row.id,
            Some(s.id),
            None,
            Some(data),
        ))
        .await?;
        tx.commit().await?;
        Ok(Some(row.id))
    }

    /// Re-review reminders (at the pack's offsets before the due date), the overdue notice, and
    /// the breach clock. Idempotent.
    #[instrument(skip_all, err)]
    pub async fn review_sweep(&self, now: DateTime<Utc>) -> AppResult<String> {
        let (mut reminded, mut overdue, mut breach, mut opened) = (0, 0, 0, 0);
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
        let systems = system::Entity::find()
            .filter(system::Column::NextReviewDue.lte(horizon))
            .all(&self.db)
            .await?;
        for s in systems {
            let Some(due) = s.next_review_due else {
                continue;
            };
            // The re-review is opened when it falls within the first reminder (or is overdue), so
            // that PA05 has the reminder period to evaluate it.
            if now >= due - Duration::days(i64::from(first_offset))
                && self.open_re_review(&s, due).await?.is_some()
            {
                opened += 1;
            }
            let level = SecurityLevel::new(i64::from(s.level))
                .map_err(|e| AppError::Internal(e.to_string()))?;
            let data = |days_left: i64| serde_json::json!({ "system": s.code, "system_name": s.name, "level": level.get(), "due": due, "days_left": days_left });
            if due <= now {
                let reminder = ("re_review", s.code.clone(), due, 0);
                if self
                    .announce_once(
                        reminder,
                        "system.re_review_overdue",
                        "system",
                        Some(s.id),
                        "re_review.overdue",
                        data(0),
                    )
                    .await?
                {
                    overdue += 1;
                }
                continue;
            }
            let days_left = (due - now).num_days();
            // Only the nearest offset that has been reached: a sweep after a long stop sends one
            // reminder, not all of them.
            let offsets = &self.pack.reminders.days_before;
            let Some(offset) = offsets
                .iter()
                .copied()
                .filter(|o| now >= due - Duration::days(i64::from(*o)))
                .min()
            else {
                continue;
            };
            let reminder = (
                "re_review",
                s.code.clone(),
                due,
                i32::try_from(offset).unwrap_or(i32::MAX),
            );
            if self
                .announce_once(
                    reminder,
                    "system.re_review_due",
                    "system",
                    Some(s.id),
                    "re_review.due",
                    data(days_left),
                )
                .await?
            {
                reminded += 1;
            }
        }
        breach += self.breach_clock(now).await?;
        Ok(format!(
            "{opened} re-review(s) opened, {reminded} re-review reminder(s), {overdue} overdue notice(s), {breach} breach-clock reminder(s)"
        ))
    }

    /// Reminders of the 72-hour A05 notification of a personal-data breach: 24, 6 and 1 hours
    /// before the deadline, and once when it has passed, until the notification is recorded.
    async fn breach_clock(&self, now: DateTime<Utc>) -> AppResult<u32> {
        let open = incident::Entity::find()
            .filter(incident::Column::Kind.eq("data_breach"))
            .filter(incident::Column::A05NotifiedAt.is_null())
            .all(&self.db)
            .await?;
        let hours = i64::from(self.pack.incidents.breach_notify_hours);
        let mut sent = 0;
        for i in open {
            let deadline = i.reported_at + Duration::hours(hours);
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
            let sys = system::Entity::find_by_id(i.system_id)
                .one(&self.db)
                .await?;
            let data = serde_json::json!({
                "id": i.id, "system": sys.as_ref().map(|s| s.code.clone()), "system_name": sys.as_ref().map(|s| s.name.clone()),
                "reported_at": i.reported_at, "deadline": deadline, "hours_left": left.num_hours().max(0), "overdue": offset == 0,
            });
            let reminder = (
                "breach",
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

    /// Marks lapsed approvals expired (audited), and warns 7 and 1 days before an approval
    /// expires. Idempotent.
    #[instrument(skip_all, err)]
    pub async fn expire_approvals(&self, now: DateTime<Utc>) -> AppResult<String> {
        // Only approvals that lapsed or lapse within the warning period, and only the columns
        // used: a database of many approvals is not read into memory.
        let approved: Vec<(i64, i64, String, Option<DateTime<Utc>>)> = cr::Entity::find()
            .select_only()
            .columns([
                cr::Column::Id,
                cr::Column::SystemId,
                cr::Column::Title,
                cr::Column::ValidUntil,
            ])
            .filter(cr::Column::State.eq(CrState::Approved.as_str()))
            .filter(cr::Column::ValidUntil.lte(now + Duration::days(7)))
            .into_tuple()
            .all(&self.db)
            .await?;
        let (mut expired, mut warned) = (0, 0);
        for (id, system_id, title, until) in approved {
            let Some(until) = until else { continue };
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
            let sys = system::Entity::find_by_id(system_id).one(&self.db).await?;
            let data = serde_json::json!({
                "id": id, "title": title, "system": sys.as_ref().map(|s| s.code.clone()),
                "system_name": sys.as_ref().map(|s| s.name.clone()), "valid_until": until, "days_left": (until - now).num_days(),
            });
            let reminder = (
                "approval",
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
        let i = incident::Entity::find_by_id(id)
            .one(&tx.txn)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("incident {id}")))?;
        let sys = system::Entity::find_by_id(i.system_id)
            .one(&tx.txn)
            .await?
            .ok_or_else(|| AppError::Internal("incident without system".into()))?;
        if !crate::registry::may_see_org(who, sys.owner_org_id) {
            return Err(AppError::NotFound(format!("incident {id}")));
        }
        if i.kind != "data_breach" {
            return Err(AppError::Conflict(
                "illegal_transition",
                format!("incident {id} is not a personal-data breach"),
            ));
        }
        if i.a05_notified_at.is_some() {
            return Err(AppError::Conflict(
                "illegal_transition",
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
        let mut am: incident::ActiveModel = i.into();
        am.a05_notified_at = Set(Some(at));
        let i = am.update(&tx.txn).await?;
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
