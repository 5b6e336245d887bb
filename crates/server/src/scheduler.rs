//! Scheduled jobs on tokio-cron-scheduler. Every firing computes the slot it stands for (the
//! latest scheduled time not after now, from the same cron expression) and runs the job only if
//! it claims that slot in the database, so several replicas run each slot once. At start, the
//! latest slot of each job is run if no replica ran it: a slot missed while every server was down
//! runs once at the next start.

use crate::dispatch;
use changegate_app::jobs::{Job, JobOutcome, parse_job_cron, slot_at};
use changegate_app::{App, AppError, AppResult};
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio_cron_scheduler::JobScheduler;

/// The jobs' cron expressions (6 fields, seconds first) and their time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Time zone of the expressions.
    pub tz: chrono_tz::Tz,
    /// Each job and its expression.
    pub jobs: Vec<(Job, String)>,
}

/// Who runs: host and process, for the job_runs table.
pub fn runner_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "host".into());
    format!("{host}:{}", std::process::id())
}

async fn dispatch_all(app: &Arc<App>) -> AppResult<String> {
    let http = reqwest::Client::builder()
        .timeout(dispatch::ATTEMPT_TIMEOUT)
        .build()
        .map_err(|e| AppError::Internal(format!("webhook HTTP client: {e}")))?;
    let in_flight = dispatch::InFlight::new();
    let mut started = 0;
    loop {
        let n = dispatch::dispatch_once(app, &http, &in_flight).await?;
        if n == 0 {
            break;
        }
        started += n;
    }
    // Wait for the deliveries in flight to finish and record their outcome.
    in_flight.drained().await?;
    Ok(format!("{started} delivery attempt(s)"))
}

/// Runs one job for one slot, if no run (in any replica) claimed it.
pub async fn run_job(
    app: &Arc<App>,
    job: Job,
    slot: DateTime<Utc>,
    runner: &str,
) -> AppResult<JobOutcome> {
    let now = Utc::now();
    match job {
        Job::ReviewSweep => {
            app.run_claimed(job, slot, runner, || app.review_sweep(now))
                .await
        }
        Job::ExpireApprovals => {
            app.run_claimed(job, slot, runner, || app.expire_approvals(now))
                .await
        }
        Job::DispatchNotifications => {
            app.run_claimed(job, slot, runner, || dispatch_all(app))
                .await
        }
        Job::Backup => {
            app.run_claimed(job, slot, runner, || app.scheduled_backup(slot))
                .await
        }
    }
}

/// Checks the schedule: each expression parses.
pub fn validate(s: &Schedule) -> Result<(), String> {
    for (job, cron) in &s.jobs {
        parse_job_cron(cron).map_err(|e| format!("jobs.{}: {e}", job.name().replace('-', "_")))?;
    }
    Ok(())
}

/// Runs missed slots, then starts the scheduler. Keep the returned scheduler alive.
pub async fn start(app: Arc<App>, schedule: Schedule) -> Result<JobScheduler, String> {
    validate(&schedule)?;
    let runner = runner_name();
    for (job, cron) in &schedule.jobs {
        let cron = parse_job_cron(cron)?;
        if let Some(slot) = slot_at(&cron, schedule.tz, Utc::now()) {
            match run_job(&app, *job, slot, &runner).await {
                Ok(JobOutcome::Ran(summary)) => {
                    tracing::info!(job = %job, %slot, %summary, "ran a missed slot at start")
                }
                Ok(JobOutcome::AlreadyRun) => {}
                Err(e) => {
                    tracing::warn!(job = %job, error = %e, "could not run a missed slot at start")
                }
            }
        }
    }
    let sched = JobScheduler::new()
        .await
        .map_err(|e| format!("scheduler: {e}"))?;
    for (job, expr) in schedule.jobs {
        let cron = parse_job_cron(&expr)?;
        let (app, runner, tz) = (app.clone(), runner.clone(), schedule.tz);
        let task = tokio_cron_scheduler::Job::new_async_tz(expr.as_str(), tz, move |_id, _lock| {
            let (app, runner, cron) = (app.clone(), runner.clone(), cron.clone());
            Box::pin(async move {
                let Some(slot) = slot_at(&cron, tz, Utc::now()) else {
                    return;
                };
                match run_job(&app, job, slot, &runner).await {
                    Ok(JobOutcome::Ran(summary)) => {
                        tracing::info!(job = %job, %slot, %summary, "job ran")
                    }
                    Ok(JobOutcome::AlreadyRun) => {
                        tracing::debug!(job = %job, %slot, "slot already run by another replica")
                    }
                    Err(e) => tracing::warn!(job = %job, %slot, error = %e, "job failed"),
                }
            })
        })
        .map_err(|e| format!("jobs.{}: {e}", job.name().replace('-', "_")))?;
        sched
            .add(task)
            .await
            .map_err(|e| format!("scheduler: {e}"))?;
    }
    sched.start().await.map_err(|e| format!("scheduler: {e}"))?;
    Ok(sched)
}
