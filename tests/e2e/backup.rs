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
