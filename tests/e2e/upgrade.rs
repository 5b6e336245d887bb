//! Upgrades: a database written by this release's predecessor (commit 373a14d, with every kind
//! of row its schema has: see tests/fixtures/upgrade/make.sh) opens with this release's binary,
//! migrates, passes `audit verify`, and its gate answers as before: the demo's approved content
//! may deploy, other content may not. SQLite always; PostgreSQL (from a plain SQL dump) when
//! `CHANGEGATE_TEST_DATABASE_URL` is set.

use crate::cli::{changegate_bin, outcome, run};
use crate::process::Server;
use changegate_store::sea_orm::ConnectionTrait;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The demo's approved content of `TTHC-TINH` (production).
const APPROVED: (&str, &str) = (
    "5a6cf30966b4cd3413164e475e8a6f37ee125f8e",
    "a08585ecb240d748d3fe14c558fba56e2bbea45a",
);
/// The fixture's audit log holds this many events.
const FIXTURE_EVENTS: u64 = 68;

pub(crate) fn fixture(name: &str) -> PathBuf {
    crate::cli::workspace()
        .join("tests/fixtures/upgrade")
        .join(name)
}

/// `changegate ARGS --database-url URL` run in `dir`.
async fn cg(dir: &Path, url: &str, args: &[&str]) -> (Option<i32>, String, String) {
    let mut c = Command::new(changegate_bin());
    c.current_dir(dir)
        .args(args)
        .args(["--database-url", url])
        .env_remove("DATABASE_URL");
    outcome(&run(c).await)
}

/// Migrates, verifies, then asks the gate of a server on the upgraded database.
async fn upgrade_and_check(dir: &Path, url: &str) {
    let (code, out, err) = cg(dir, url, &["migrate"]).await;
    assert_eq!(code, Some(0), "migrate: {out}{err}");

    let (code, out, err) = cg(dir, url, &["audit", "verify"]).await;
    assert_eq!(code, Some(0), "audit verify: {out}{err}");
    assert!(out.contains("hash chain verified"), "{out}");
    let events: u64 = out
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_else(|| panic!("no event count in {out:?}"));
    assert!(
        events >= FIXTURE_EVENTS,
        "{events} events after the upgrade, the fixture has {FIXTURE_EVENTS}"
    );

    // A fresh token of the demo's pipeline account, issued by this release.
    let (code, out, err) = cg(
        dir,
        url,
        &[
            "admin",
            "create-token",
            "--username",
            "ci.stnmt",
            "--name",
            "upgrade",
            "--expires-in",
            "1d",
        ],
    )
    .await;
    assert_eq!(code, Some(0), "create-token: {out}{err}");
    let token = out.lines().last().unwrap().trim().to_owned();

    let server = Server::start(dir, url, None).await;
    // The keys of the upgraded server, trusted on first use and pinned for the second check.
    let pinned = dir.join("pinned-keys.json");
    let check = |commit: &str, tree: &str| {
        let mut c = Command::new(changegate_bin());
        c.args([
            "check",
            "--system",
            "TTHC-TINH",
            "--env",
            "production",
            "--commit",
            commit,
            "--tree",
            tree,
        ])
        .env("CHANGEGATE_URL", &server.url)
        .env("CHANGEGATE_TOKEN", &token)
        .env("CHANGEGATE_TRUST_ON_FIRST_USE", &pinned);
        c
    };
    let (code, out, err) = outcome(&run(check(APPROVED.0, APPROVED.1)).await);
    assert_eq!(
        code,
        Some(0),
        "the approved content is refused after the upgrade: {out}{err}\n{}",
        server.log()
    );
    assert!(err.contains("trust on first use"), "{err}");
    let (code, out, err) = outcome(
        &run(check(
            "3333333333333333333333333333333333333333",
            "4444444444444444444444444444444444444444",
        ))
        .await,
    );
    assert_eq!(code, Some(1), "other content: {out}{err}");
    assert!(out.contains("no_approved_change"), "{out}");
    assert!(
        !err.contains("trust on first use"),
        "pinned after the first use: {err}"
    );
    // The new search column was filled for the rows the old release wrote.
    let client = changegate_client::Client::new(&server.url, Some(token.clone())).unwrap();
    let found = client
        .changes_where(&[("q", "nang cap mo-dun tra cuu cong dan".into())])
        .await
        .unwrap_or_else(|e| panic!("search after the upgrade: {e}"));
    assert!(
        found.items.iter().any(|c| c
            .title
            .starts_with("Nâng cấp mô-đun tra cứu thông tin công dân")),
        "the old change is not found by a search without diacritics: {found:?}"
    );
    drop(server);

    // Still intact after the server's writes.
    let (code, out, err) = cg(dir, url, &["audit", "verify"]).await;
    assert_eq!(code, Some(0), "audit verify after serving: {out}{err}");
}

#[tokio::test]
async fn a_sqlite_database_of_the_previous_release_opens_migrates_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("changegate.db");
    std::fs::copy(fixture("373a14d.sqlite"), &db).unwrap();
    let url = format!("sqlite://{}?mode=rwc", db.display());
    upgrade_and_check(dir.path(), &url).await;
}

#[tokio::test]
async fn a_postgresql_dump_of_the_previous_release_opens_migrates_and_verifies() {
    let Ok(base) = std::env::var("CHANGEGATE_TEST_DATABASE_URL") else {
        println!("SKIPPED: CHANGEGATE_TEST_DATABASE_URL is not set (the PostgreSQL upgrade)");
        return;
    };
    if !base.starts_with("postgres") {
        println!("SKIPPED: CHANGEGATE_TEST_DATABASE_URL is not PostgreSQL");
        return;
    }
    // The dump (pg_dump --inserts of schema `fixture_upgrade`) restored into a fresh schema:
    // its psql meta-commands (`\restrict`) dropped, the schema renamed.
    let schema = format!("u_{}", hex::encode(rand::random::<[u8; 8]>()));
    let dump = std::fs::read_to_string(fixture("373a14d.sql")).unwrap();
    let sql: String = dump
        .lines()
        .filter(|l| !l.starts_with('\\'))
        .collect::<Vec<_>>()
        .join("\n")
        .replace("fixture_upgrade", &schema);
    let db = changegate_store::connect(&base).await.unwrap();
    db.execute_unprepared(&sql)
        .await
        .unwrap_or_else(|e| panic!("restoring the dump: {e}"));
    db.close().await.unwrap();
    let sep = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{sep}options=-c%20search_path%3D{schema}");
    let dir = tempfile::tempdir().unwrap();
    upgrade_and_check(dir.path(), &url).await;
}
