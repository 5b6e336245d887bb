//! Two real `changegate serve` processes on one database: every job slot runs exactly once
//! between them, and a write through one is seen by the gate of the other. Runs on PostgreSQL
//! (the deployment for several replicas) when `CHANGEGATE_TEST_DATABASE_URL` is set, and on one
//! SQLite file shared by the two processes otherwise (the same claims, across processes).

use crate::process::{Server, seed};
use crate::sink::eventually;
use changegate_app::App;
use changegate_app::jobs::Job;
use changegate_tests::*;
use chrono::{DateTime, Utc};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// Every job every 2 seconds; the scheduler logs the slots another replica ran.
const EVERY_TWO_SECONDS: &str = "log_level = \"info,changegate_server::scheduler=debug\"\n[jobs]\nreview_sweep = \"*/2 * * * * *\"\nexpire_approvals = \"*/2 * * * * *\"\ndispatch_notifications = \"*/2 * * * * *\"\nbackup = \"*/2 * * * * *\"\n";

#[tokio::test]
async fn two_replicas_run_each_job_slot_once_and_see_each_others_writes() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(&dir).await;
    let tokens = seed(&url).await;
    let config = dir.path().join("changegate.toml");
    std::fs::write(&config, EVERY_TWO_SECONDS).unwrap();
    let (dir_a, dir_b) = (dir.path().join("a"), dir.path().join("b"));
    std::fs::create_dir_all(&dir_a).unwrap();
    std::fs::create_dir_all(&dir_b).unwrap();
    // The binary is built (when a test first needs it) before the clock of the slots starts.
    let _ = crate::cli::changegate_bin();
    let started = Utc::now();
    let mut a = Server::start(&dir_a, &url, Some(&config)).await;
    let mut b = Server::start(&dir_b, &url, Some(&config)).await;
    let pids = [a.child.id().unwrap(), b.child.id().unwrap()];

    // A change approved through replica A is allowed by replica B's gate within a second.
    let commit = random_oid();
    let owner = a.client(&tokens.owner);
    let c = ok(owner
        .file_change(&change(
            "TTHC",
            &["production"],
            vec![git(&commit, &random_oid())],
        ))
        .await);
    ok(owner.submit(c.id).await);
    let ci_b = b.client(&tokens.ci);
    let ask = ask_commit("TTHC", "production", &commit);
    assert_eq!(ok(ci_b.gate(&ask).await).codes(), ["pending_evaluation"]);
    let c = ok(owner.change(c.id).await);
    ok(
        Reviewer::new(a.client(&tokens.reviewer), tokens.reviewer_factor.clone())
            .sign_off(c.id, &sign_off_all(&c, "pass"))
            .await,
    );
    let signed = Instant::now();
    eventually(
        "replica B's gate to allow the change approved through A",
        Duration::from_secs(1),
        || async { ok(ci_b.gate(&ask).await).allowed().then_some(()) },
    )
    .await;
    eprintln!(
        "replica B allowed {:?} after the sign-off on A",
        signed.elapsed()
    );

    // Both run their schedules for about 8 seconds.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let ended = Utc::now();
    for (name, s) in [("A", &mut a), ("B", &mut b)] {
        assert!(s.running(), "replica {name} stopped; log: {}", s.log());
        ok(s.client(&tokens.ci).health().await);
    }

    let app = App::open(&url, pack()).await.unwrap();
    let mut runners = BTreeSet::new();
    for job in Job::ALL {
        let runs = app.job_runs(job).await.unwrap();
        let slots: Vec<DateTime<Utc>> = runs
            .iter()
            .map(|r| r.slot.parse().unwrap_or_else(|e| panic!("{r:?}: {e}")))
            .collect();
        let distinct: BTreeSet<DateTime<Utc>> = slots.iter().copied().collect();
        assert_eq!(
            distinct.len(),
            slots.len(),
            "{job}: a slot ran twice: {runs:?}"
        );
        // Every slot of the schedule from the first to the last ran: none was lost between the
        // replicas, and about as many as 8 seconds hold.
        let (first, last) = (
            *distinct
                .first()
                .unwrap_or_else(|| panic!("{job} never ran")),
            *distinct.last().unwrap(),
        );
        let expected: BTreeSet<DateTime<Utc>> = (0..)
            .map(|i| first + chrono::Duration::seconds(2 * i))
            .take_while(|s| *s <= last)
            .collect();
        assert_eq!(distinct, expected, "{job}: {runs:?}");
        assert!(
            first <= started + chrono::Duration::seconds(2),
            "{job}: {runs:?}"
        );
        assert!(
            last >= ended - chrono::Duration::seconds(3),
            "{job} ran until the end: {runs:?}"
        );
        assert!(distinct.len() >= 5, "{job}: {runs:?}");
        for r in &runs {
            assert!(
                pids.iter().any(|p| r.runner.ends_with(&format!(":{p}"))),
                "{job}: run by a replica: {r:?}"
            );
            assert!(
                !r.outcome
                    .as_deref()
                    .unwrap_or_default()
                    .starts_with("failed"),
                "{job}: {r:?}"
            );
            runners.insert(r.runner.clone());
        }
    }
    // Both competed for the slots: each ran some, or found them run by the other.
    for (name, s, pid) in [("A", &a, pids[0]), ("B", &b, pids[1])] {
        let ran = runners.iter().any(|r| r.ends_with(&format!(":{pid}")));
        let lost = s.log().contains("slot already run by another replica");
        assert!(ran || lost, "replica {name} took no part; log: {}", s.log());
    }
    eprintln!("job slots were run by {runners:?}");
}
