//! The scheduled jobs, run as the scheduler runs them (`scheduler::run_job` for a slot): re-review
//! reminders and the overdue notice, expiring approvals, the 72-hour breach clock, each slot run
//! once; and the jobs' command line and configuration through the real binary.

use crate::cli::{changegate_bin, outcome, run};
use crate::sink::{Sink, eventually, hook};
use changegate_api::NewIncident;
use changegate_app::jobs::{Job, JobOutcome};
use changegate_server::scheduler::run_job;
use changegate_store::entity::{change_request as cr, incident, system};
use changegate_store::sea_orm::sea_query::Expr;
use changegate_store::sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use changegate_tests::*;
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::process::Command;
use std::sync::atomic::{AtomicI64, Ordering};

/// Runs `job` now for a slot no run has claimed yet, as the scheduler does; returns its summary.
async fn run_now(t: &TestApp, job: Job) -> String {
    static NEXT: AtomicI64 = AtomicI64::new(0);
    let slot = Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap()
        + Duration::seconds(NEXT.fetch_add(1, Ordering::SeqCst));
    match run_job(&t.app, job, slot, "test").await {
        Ok(JobOutcome::Ran(summary)) => summary,
        other => panic!("{job} for a fresh slot: {other:?}"),
    }
}

/// Sets a system's re-review due date directly in the database.
async fn review_due(t: &TestApp, code: &str, due: DateTime<Utc>) {
    let n = system::Entity::update_many()
        .col_expr(system::Column::NextReviewDue, Expr::value(Some(due)))
        .filter(system::Column::Code.eq(code))
        .exec(&t.app.db)
        .await
        .unwrap()
        .rows_affected;
    assert_eq!(n, 1, "system {code}");
}

/// The outbox's deliveries of event `event`, as an admin sees them.
async fn queued(t: &TestApp, event: &str) -> Vec<changegate_api::Delivery> {
    ok(t.admin.deliveries(None).await)
        .into_iter()
        .filter(|d| d.event == event)
        .collect()
}

fn data_breach() -> NewIncident {
    NewIncident {
        detected_at: None,
        national_security: false,
        kind: "data_breach".into(),
        severity: "high".into(),
        summary: "Lộ dữ liệu cá nhân của công dân qua API tra cứu".into(),
    }
}

#[tokio::test]
async fn a_re_review_due_in_five_days_is_reminded_once_and_announced_overdue_once_it_passes() {
    let t = spawn_app().await;
    let _w = t.world().await;
    let sink = Sink::start().await;
    ok(t.admin.create_webhook(&hook(&sink.url)).await);
    review_due(&t, "TTHC", Utc::now() + Duration::days(5)).await;

    run_now(&t, Job::ReviewSweep).await;
    let due = eventually(
        "the re-review reminder",
        std::time::Duration::from_secs(10),
        || async {
            let got = sink.of("re_review.due");
            (!got.is_empty()).then_some(got)
        },
    )
    .await;
    assert_eq!(due.len(), 1, "{due:?}");
    assert_eq!(due[0].body["data"]["system"], "TTHC");

    // A second sweep reminds nobody again: nothing more is queued or received.
    run_now(&t, Job::ReviewSweep).await;
    assert_eq!(queued(&t, "re_review.due").await.len(), 1);
    assert!(queued(&t, "re_review.overdue").await.is_empty());

    // The due date passes: one overdue notice, and only one however often the sweep runs.
    review_due(&t, "TTHC", Utc::now() - Duration::hours(1)).await;
    run_now(&t, Job::ReviewSweep).await;
    run_now(&t, Job::ReviewSweep).await;
    let overdue = eventually(
        "the overdue notice",
        std::time::Duration::from_secs(10),
        || async {
            let got = sink.of("re_review.overdue");
            (!got.is_empty()).then_some(got)
        },
    )
    .await;
    assert_eq!(overdue.len(), 1, "{overdue:?}");
    assert_eq!(overdue[0].body["data"]["system"], "TTHC");
    assert_eq!(queued(&t, "re_review.overdue").await.len(), 1);
    assert_eq!(sink.of("re_review.due").len(), 1);
}

#[tokio::test]
async fn a_lapsed_approval_is_expired_by_the_job_audited_and_denied_as_approval_expired() {
    let t = spawn_app().await;
    let w = t.world().await;
    let c = random_oid();
    let approved = t
        .approved(
            &w,
            &change("TTHC", &["production"], vec![git(&c, &random_oid())]),
        )
        .await;
    assert!(
        ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await).allowed(),
        "approved and valid: allowed"
    );
    cr::Entity::update_many()
        .col_expr(
            cr::Column::ValidUntil,
            Expr::value(Some(Utc::now() - Duration::minutes(1))),
        )
        .filter(cr::Column::Id.eq(approved.id))
        .exec(&t.app.db)
        .await
        .unwrap();
    let before = t.audit_seq().await;

    run_now(&t, Job::ExpireApprovals).await;

    assert_eq!(ok(w.owner.change(approved.id).await).state, "expired");
    let events = ok(w.auditor.audit(before, 100).await).events;
    assert!(
        events
            .iter()
            .any(|e| e.action == "change_request.expire" && e.entity_id == approved.id.to_string()),
        "{events:?}"
    );
    let d = ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await);
    assert!(!d.allowed(), "{d:?}");
    assert_eq!(d.codes(), ["approval_expired"]);
    // A second run has nothing left to expire and audits nothing.
    let seq = t.audit_seq().await;
    run_now(&t, Job::ExpireApprovals).await;
    assert_eq!(t.audit_seq().await, seq);
}

#[tokio::test]
async fn an_approval_expiring_in_five_days_is_warned_once() {
    let t = spawn_app().await;
    let w = t.world().await;
    let sink = Sink::start().await;
    ok(t.admin.create_webhook(&hook(&sink.url)).await);
    let approved = t
        .approved(
            &w,
            &change(
                "TTHC",
                &["production"],
                vec![git(&random_oid(), &random_oid())],
            ),
        )
        .await;
    cr::Entity::update_many()
        .col_expr(
            cr::Column::ValidUntil,
            Expr::value(Some(Utc::now() + Duration::days(5))),
        )
        .filter(cr::Column::Id.eq(approved.id))
        .exec(&t.app.db)
        .await
        .unwrap();
    run_now(&t, Job::ExpireApprovals).await;
    run_now(&t, Job::ExpireApprovals).await;
    let warned = queued(&t, "approval.expiring").await;
    assert_eq!(warned.len(), 1, "{warned:?}");
    let got = eventually(
        "the expiry warning",
        std::time::Duration::from_secs(10),
        || async {
            let got = sink.of("approval.expiring");
            (!got.is_empty()).then_some(got)
        },
    )
    .await;
    assert_eq!(got[0].body["data"]["id"], approved.id);
    assert_eq!(ok(w.owner.change(approved.id).await).state, "approved");
}

#[tokio::test]
async fn the_breach_clock_reminds_before_72_hours_and_stops_once_a05_is_notified() {
    let t = spawn_app().await;
    let w = t.world().await;
    let sink = Sink::start().await;
    ok(t.admin.create_webhook(&hook(&sink.url)).await);
    let breach = ok(w.owner.report_incident("TTHC", &data_breach()).await);
    let reported = |hours: i64| {
        let db = &t.app.db;
        async move {
            // Detected and reported then: the 72 hours count from the detection (Decree 356/2025).
            let then = Utc::now() - Duration::hours(hours);
            incident::Entity::update_many()
                .col_expr(incident::Column::ReportedAt, Expr::value(then))
                .col_expr(incident::Column::DetectedAt, Expr::value(then))
                .filter(incident::Column::Id.eq(breach.id))
                .exec(db)
                .await
                .unwrap();
        }
    };

    // Just reported: 72 hours left, no reminder yet.
    run_now(&t, Job::ReviewSweep).await;
    assert!(queued(&t, "breach.clock").await.is_empty());

    // Reported 70 hours ago: two hours left, one reminder.
    reported(70).await;
    run_now(&t, Job::ReviewSweep).await;
    let got = eventually(
        "the breach-clock reminder",
        std::time::Duration::from_secs(10),
        || async {
            let got = sink.of("breach.clock");
            (!got.is_empty()).then_some(got)
        },
    )
    .await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].body["data"]["id"], breach.id);
    assert_eq!(got[0].body["data"]["overdue"], false);
    run_now(&t, Job::ReviewSweep).await;
    assert_eq!(queued(&t, "breach.clock").await.len(), 1);

    // A05 is notified; even once the 72 hours have passed the clock stays silent.
    let i = ok(w.owner.record_a05_notified(breach.id, None).await);
    assert!(i.a05_notified_at.is_some(), "{i:?}");
    reported(73).await;
    run_now(&t, Job::ReviewSweep).await;
    assert_eq!(queued(&t, "breach.clock").await.len(), 1);

    // Without the notification the same sweep would have said so: another breach, detected
    // 73 hours ago (and reported just now: the clock counts from the detection).
    let mut n = data_breach();
    n.detected_at = Some(Utc::now() - Duration::hours(73));
    let late = ok(w.owner.report_incident("TTHC", &n).await);
    incident::Entity::update_many()
        .col_expr(
            incident::Column::ReportedAt,
            Expr::value(Utc::now() - Duration::hours(1)),
        )
        .filter(incident::Column::Id.eq(late.id))
        .exec(&t.app.db)
        .await
        .unwrap();
    run_now(&t, Job::ReviewSweep).await;
    let clock = queued(&t, "breach.clock").await;
    assert_eq!(clock.len(), 2, "{clock:?}");
    let late_got = eventually(
        "the overdue breach reminder",
        std::time::Duration::from_secs(10),
        || async {
            sink.of("breach.clock")
                .into_iter()
                .find(|r| r.body["data"]["id"] == late.id)
        },
    )
    .await;
    assert_eq!(late_got.body["data"]["overdue"], true);
}

#[tokio::test]
async fn recording_the_a05_notification_of_an_incident_that_is_no_breach_is_a_conflict() {
    let t = spawn_app().await;
    let w = t.world().await;
    let malware = ok(w
        .owner
        .report_incident(
            "TTHC",
            &NewIncident {
                detected_at: None,
                national_security: false,
                kind: "malware".into(),
                severity: "high".into(),
                summary: "Phát hiện mã độc trên máy chủ ứng dụng".into(),
            },
        )
        .await);
    let p = problem(w.owner.record_a05_notified(malware.id, None).await);
    assert_eq!(p.status, 409, "{p:?}");
    // Recording it twice for a breach is refused too.
    let breach = ok(w.owner.report_incident("TTHC", &data_breach()).await);
    ok(w.owner.record_a05_notified(breach.id, None).await);
    let p = problem(w.owner.record_a05_notified(breach.id, None).await);
    assert_eq!(p.status, 409, "{p:?}");
}

#[tokio::test]
async fn the_same_slot_never_runs_twice_even_from_another_replica() {
    let t = spawn_app().await;
    let slot = Utc.with_ymd_and_hms(2031, 6, 1, 7, 0, 0).unwrap();
    let first = run_job(&t.app, Job::ReviewSweep, slot, "replica-a")
        .await
        .unwrap();
    assert!(matches!(first, JobOutcome::Ran(_)), "{first:?}");
    for runner in ["replica-a", "replica-b"] {
        let again = run_job(&t.app, Job::ReviewSweep, slot, runner)
            .await
            .unwrap();
        assert_eq!(again, JobOutcome::AlreadyRun, "{runner}");
    }
    // The next slot runs; another job's same slot runs too.
    let next = run_job(
        &t.app,
        Job::ReviewSweep,
        slot + Duration::days(1),
        "replica-b",
    )
    .await
    .unwrap();
    assert!(matches!(next, JobOutcome::Ran(_)), "{next:?}");
    let other = run_job(&t.app, Job::ExpireApprovals, slot, "replica-b")
        .await
        .unwrap();
    assert!(matches!(other, JobOutcome::Ran(_)), "{other:?}");

    let runs = t.app.job_runs(Job::ReviewSweep).await.unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    let first_run = runs
        .iter()
        .find(|r| r.slot == "2031-06-01T07:00:00Z")
        .unwrap_or_else(|| panic!("{runs:?}"));
    assert_eq!(first_run.runner, "replica-a");
    assert!(first_run.finished_at.is_some(), "{first_run:?}");
}

#[tokio::test]
async fn run_job_with_an_unknown_name_exits_non_zero_naming_it_and_a_known_one_runs() {
    let t = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let admin = |job: &str| {
        let mut c = Command::new(changegate_bin());
        c.current_dir(dir.path()).args([
            "admin",
            "run-job",
            job,
            "--database-url",
            &t.database_url,
        ]);
        c
    };
    let (code, out, err) = outcome(&run(admin("nosuch")).await);
    assert_ne!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(err.contains("\"nosuch\""), "{err}");
    assert!(
        err.contains("review-sweep"),
        "names the jobs there are: {err}"
    );

    let (code, out, err) = outcome(&run(admin("expire-approvals")).await);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.starts_with("expire-approvals: "), "{out}");
    assert_eq!(t.app.job_runs(Job::ExpireApprovals).await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_bad_cron_expression_or_time_zone_stops_serve_naming_the_file_and_the_field() {
    let t = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    for (file, text, field) in [
        (
            "cron.toml",
            "[jobs]\nreview_sweep = \"0 0 7 * *\"\n",
            "jobs.review_sweep",
        ),
        ("tz.toml", "time_zone = \"Asia/Ha_Noi\"\n", "time_zone"),
    ] {
        let path = dir.path().join(file);
        std::fs::write(&path, text).unwrap();
        let mut serve = tokio::process::Command::new(changegate_bin());
        serve
            .current_dir(dir.path())
            .args(["serve", "--config"])
            .arg(&path)
            .args(["--database-url", &t.database_url, "--listen", "127.0.0.1:0"])
            .kill_on_drop(true);
        let out = tokio::time::timeout(std::time::Duration::from_secs(30), serve.output())
            .await
            .unwrap_or_else(|_| panic!("serve with {file} did not stop within 30 s"))
            .unwrap();
        let (code, out, err) = outcome(&out);
        assert_ne!(code, Some(0), "{file}: stdout: {out}\nstderr: {err}");
        assert!(
            err.contains(&path.display().to_string()) && err.contains(field),
            "{file}: {err}"
        );
        assert!(!out.contains("listening"), "{file}: {out}");
    }
}

#[tokio::test]
async fn a_slot_missed_while_no_server_ran_runs_once_at_the_next_start_and_not_again() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(&dir).await;
    crate::process::seed(&url).await;
    // The sweep runs at midnight (Asia/Ho_Chi_Minh, UTC+7, no summer time), long past; the
    // dispatch every second shows when a server has finished its start-up runs.
    let config = dir.path().join("changegate.toml");
    std::fs::write(
        &config,
        "[jobs]\nreview_sweep = \"0 0 0 * * *\"\ndispatch_notifications = \"* * * * * *\"\n",
    )
    .unwrap();
    let vn = chrono::FixedOffset::east_opt(7 * 3600).unwrap();
    let midnight = Utc::now()
        .with_timezone(&vn)
        .date_naive()
        .and_hms_opt(0, 0, 0)
        .unwrap()
        .and_local_timezone(vn)
        .unwrap()
        .with_timezone(&Utc)
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let app = changegate_app::App::open(&url, pack()).await.unwrap();
    let started_up = |pid: u32| {
        let app = &app;
        async move {
            app.job_runs(Job::DispatchNotifications)
                .await
                .unwrap()
                .iter()
                .any(|r| r.runner.ends_with(&format!(":{pid}")))
                .then_some(())
        }
    };
    let mut runners = vec![];
    for start in ["first", "second"] {
        let mut s = crate::process::Server::start(dir.path(), &url, Some(&config)).await;
        let pid = s.child.id().unwrap();
        crate::sink::eventually(
            &format!("the {start} server's start-up runs"),
            std::time::Duration::from_secs(20),
            || started_up(pid),
        )
        .await;
        assert!(s.running(), "log: {}", s.log());
        s.child.kill().await.unwrap();
        runners.push(format!(":{pid}"));
    }
    let runs = app.job_runs(Job::ReviewSweep).await.unwrap();
    assert_eq!(runs.len(), 1, "{runs:?}");
    assert_eq!(runs[0].slot, midnight, "{runs:?}");
    assert!(runs[0].runner.ends_with(&runners[0]), "{runs:?}");
}
