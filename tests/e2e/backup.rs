//! `changegate backup` and `changegate restore` on the embedded SQLite database, with the real
//! binary: a backup taken while the server runs verifies and restores; an existing file is not
//! replaced without --force; a non-empty data directory, a truncated and a tampered backup are
//! refused (the tampered one naming the first bad event), and nothing is restored then.

use crate::cli::{changegate_bin, outcome, run};
use crate::process::Server;
use changegate_store::sea_orm::ConnectionTrait;
use std::path::Path;
use std::process::Command;

async fn cg(dir: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut c = Command::new(changegate_bin());
    c.current_dir(dir).args(args).env_remove("DATABASE_URL");
    outcome(&run(c).await)
}

/// A data directory holding the upgrade fixture (every kind of row), migrated.
async fn data_dir(root: &Path) -> std::path::PathBuf {
    let data = root.join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(
        crate::cli::workspace().join("tests/fixtures/upgrade/373a14d.sqlite"),
        data.join("changegate.db"),
    )
    .unwrap();
    let (code, out, err) = cg(root, &["migrate", "--data-dir", "data"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    data
}

fn events_in(out: &str) -> u64 {
    let words: Vec<&str> = out.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[1] == "audit")
        .and_then(|w| w[0].parse().ok())
        .unwrap_or_else(|| panic!("no event count in {out:?}"))
}

#[tokio::test]
async fn a_backup_taken_while_the_server_runs_verifies_and_restores() {
    let root = tempfile::tempdir().unwrap();
    let data = data_dir(root.path()).await;
    let url = format!("sqlite://{}?mode=rwc", data.join("changegate.db").display());
    let server = Server::start(&data, &url, None).await;

    // A write while the server runs, then the backup, with the server still up.
    let (code, out, err) = cg(
        root.path(),
        &[
            "admin",
            "create-token",
            "--data-dir",
            "data",
            "--username",
            "ci.stnmt",
            "--name",
            "during-backup",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    let (code, out, err) = cg(
        root.path(),
        &["backup", "--data-dir", "data", "--to", "copy.db"],
    )
    .await;
    assert_eq!(code, Some(0), "backup: {out}{err}");
    assert!(out.contains("hash chain verified"), "{out}");
    let size = std::fs::metadata(root.path().join("copy.db"))
        .unwrap()
        .len();
    assert!(out.contains(&format!("{size} bytes")), "{out}");
    let events = events_in(&out);
    assert!(events > 68, "{out}");
    let health = reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap();
    assert!(health.status().is_success());

    // The same file again: refused without --force, replaced with it.
    let (code, _, err) = cg(
        root.path(),
        &["backup", "--data-dir", "data", "--to", "copy.db"],
    )
    .await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("--force"), "{err}");
    let (code, out, err) = cg(
        root.path(),
        &["backup", "--data-dir", "data", "--to", "copy.db", "--force"],
    )
    .await;
    assert_eq!(code, Some(0), "backup --force: {out}{err}");
    drop(server);

    // Restored into an empty directory: the same events, verified by `audit verify`.
    let (code, out, err) = cg(
        root.path(),
        &["restore", "--data-dir", "restored", "--from", "copy.db"],
    )
    .await;
    assert_eq!(code, Some(0), "restore: {out}{err}");
    assert_eq!(events_in(&out), events, "{out}");
    let (code, out, err) = cg(root.path(), &["audit", "verify", "--data-dir", "restored"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&format!("{events} events")), "{out}");

    // Not into a directory that holds anything.
    let (code, _, err) = cg(
        root.path(),
        &["restore", "--data-dir", "restored", "--from", "copy.db"],
    )
    .await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not empty"), "{err}");
}

#[tokio::test]
async fn a_truncated_or_tampered_backup_is_refused_and_nothing_is_restored() {
    let root = tempfile::tempdir().unwrap();
    data_dir(root.path()).await;
    let (code, out, err) = cg(
        root.path(),
        &["backup", "--data-dir", "data", "--to", "copy.db"],
    )
    .await;
    assert_eq!(code, Some(0), "{out}{err}");
    let bytes = std::fs::read(root.path().join("copy.db")).unwrap();

    // Truncated: cut at half and a page before its end.
    for cut in [bytes.len() / 2, bytes.len() - 4096] {
        std::fs::write(root.path().join("cut.db"), &bytes[..cut]).unwrap();
        let (code, _, err) = cg(
            root.path(),
            &["restore", "--data-dir", "r-cut", "--from", "cut.db"],
        )
        .await;
        assert_eq!(
            code,
            Some(1),
            "a backup cut at {cut} bytes was restored: {err}"
        );
        assert!(err.contains("damaged or truncated"), "{err}");
        assert!(!root.path().join("r-cut/changegate.db").exists());
    }

    // Tampered: one event of the copy rewritten.
    let tampered = root.path().join("tampered.db");
    std::fs::write(&tampered, &bytes).unwrap();
    let db = changegate_store::connect(&format!("sqlite://{}?mode=rw", tampered.display()))
        .await
        .unwrap();
    db.execute_unprepared("UPDATE audit_events SET actor = 'cli:khac' WHERE seq = 7")
        .await
        .unwrap();
    db.close().await.unwrap();
    let (code, _, err) = cg(
        root.path(),
        &[
            "restore",
            "--data-dir",
            "r-tampered",
            "--from",
            "tampered.db",
        ],
    )
    .await;
    assert_eq!(code, Some(1), "a tampered backup was restored: {err}");
    assert!(err.contains("does not verify: event 7 "), "{err}");
    assert!(!root.path().join("r-tampered/changegate.db").exists());
}

#[tokio::test]
async fn backup_of_a_postgresql_database_says_to_use_pg_dump() {
    let root = tempfile::tempdir().unwrap();
    let (code, _, err) = cg(
        root.path(),
        &[
            "backup",
            "--database-url",
            "postgres://postgres@127.0.0.1:1/none",
            "--to",
            "x.db",
        ],
    )
    .await;
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("pg_dump"), "{err}");
    assert!(!root.path().join("x.db").exists());
}

/// The job's copies in `dir`, sorted.
fn job_copies(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("changegate-") && n.ends_with(".db"))
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn the_scheduled_backup_keeps_the_newest_copies_and_reports_a_failure() {
    let root = tempfile::tempdir().unwrap();
    let data = data_dir(root.path()).await;
    std::fs::write(
        root.path().join("cg.toml"),
        "data_dir = \"data\"\n[backup]\ndir = \"backups\"\nkeep = 2\n",
    )
    .unwrap();
    let job = ["admin", "run-job", "backup", "--config", "cg.toml"];

    // Three slots (a slot is a second): two copies kept, the oldest removed.
    let mut written = vec![];
    for _ in 0..3 {
        let (code, out, err) = cg(root.path(), &job).await;
        assert_eq!(code, Some(0), "run-job backup: {out}{err}");
        assert!(out.contains("audit events verified"), "{out}");
        written.push(
            job_copies(&root.path().join("backups"))
                .last()
                .cloned()
                .unwrap(),
        );
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    }
    let kept = job_copies(&root.path().join("backups"));
    assert_eq!(kept, written[1..], "the two newest copies are kept");
    // Owner-only (the copy holds password and token digests), and a copy restores.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(root.path().join("backups").join(&kept[1]))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
    }
    let from = format!("backups/{}", kept[1]);
    let (code, out, err) = cg(
        root.path(),
        &["restore", "--data-dir", "restored", "--from", &from],
    )
    .await;
    assert_eq!(code, Some(0), "restore: {out}{err}");

    // A directory that cannot be made (a file stands in its place): the run fails, says why,
    // and the failure is audited and queued for the webhook that subscribed to it.
    std::fs::write(root.path().join("blocked"), b"not a directory").unwrap();
    std::fs::write(
        root.path().join("cg.toml"),
        "data_dir = \"data\"\n[backup]\ndir = \"blocked\"\nkeep = 2\n",
    )
    .unwrap();
    let db = changegate_store::connect(&format!(
        "sqlite://{}?mode=rw",
        data.join("changegate.db").display()
    ))
    .await
    .unwrap();
    // A webhook subscribed to the event, as an operator would add one.
    db.execute_unprepared(
        "INSERT INTO webhooks (url, secret, events, active, created_by, created_at) \
         SELECT 'http://127.0.0.1:9/ops', 'whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3', \
         '[\"backup.failed\"]', 1, MIN(id), '2026-12-02T00:00:00+00:00' FROM users",
    )
    .await
    .unwrap();
    let (code, out, err) = cg(root.path(), &job).await;
    assert_eq!(
        code,
        Some(1),
        "a failed backup must fail the run: {out}{err}"
    );
    assert!(err.contains("backup failed"), "{err}");
    let row = db
        .query_one_raw(changegate_store::sea_orm::Statement::from_string(
            changegate_store::sea_orm::DbBackend::Sqlite,
            "SELECT entity_id FROM audit_events WHERE action = 'backup.failed'",
        ))
        .await
        .unwrap()
        .expect("the failure is audited");
    let file: String = row.try_get_by_index(0).unwrap();
    assert!(file.starts_with("blocked/changegate-"), "{file}");
    let row = db
        .query_one_raw(changegate_store::sea_orm::Statement::from_string(
            changegate_store::sea_orm::DbBackend::Sqlite,
            "SELECT payload FROM deliveries WHERE event = 'backup.failed'",
        ))
        .await
        .unwrap()
        .expect("the failure is queued for the subscribed webhook");
    let payload: String = row.try_get_by_index(0).unwrap();
    assert!(
        payload.contains("Sao lưu định kỳ thất bại") && payload.contains("blocked/changegate-"),
        "{payload}"
    );
}
