//! Test harness for the end-to-end tests: a real server on `127.0.0.1:0`, a fresh database per
//! test (a temporary SQLite file, or a fresh schema on PostgreSQL when
//! `CHANGEGATE_TEST_DATABASE_URL` is set), and typed helpers that drive it through the real
//! `changegate-api` client.

// Test support: a failed set-up step should stop the test loudly.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod browser;

use changegate_api::{
    ChangeRequest, Client, ClientError, GateParams, ItemAnswer, NewChangeRequest, NewOrganisation,
    NewSignOff, NewSystem, NewToken, NewUser, Problem, WireSubject,
};
use changegate_app::{App, Principal};
use changegate_domain::PolicyPack;
use std::sync::Arc;
use tempfile::TempDir;

/// The backend the tests run against, for messages.
pub fn backend() -> &'static str {
    match std::env::var("CHANGEGATE_TEST_DATABASE_URL") {
        Ok(u) if u.starts_with("postgres") => "postgres",
        _ => "sqlite",
    }
}

/// A database URL for one test: a file in `dir`, or a fresh PostgreSQL schema.
pub async fn fresh_database_url(dir: &TempDir) -> String {
    match std::env::var("CHANGEGATE_TEST_DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => {
            let schema = format!("t_{}", hex::encode(rand::random::<[u8; 8]>()));
            let db = changegate_store::connect(&url)
                .await
                .unwrap_or_else(|e| panic!("cannot reach {url}: {e}"));
            use changegate_store::sea_orm::ConnectionTrait;
            db.execute_unprepared(&format!("CREATE SCHEMA {schema}"))
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}options=-c%20search_path%3D{schema}")
        }
        _ => format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("changegate.db").display()
        ),
    }
}

/// The default policy pack.
pub fn pack() -> PolicyPack {
    PolicyPack::parse("population-db.toml", changegate_app::DEFAULT_PACK)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A running server.
pub struct TestApp {
    /// Base URL.
    pub url: String,
    /// The database URL it uses.
    pub database_url: String,
    /// The app behind it (for direct checks).
    pub app: Arc<App>,
    /// A client without a token.
    pub anon: Client,
    /// A client with an admin's token.
    pub admin: Client,
    /// The temporary directory (SQLite file); removed on drop.
    pub dir: TempDir,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
    }
}

/// Starts a server on a fresh database, with one admin (organisation `SO-TTTT`, inspector kind).
pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let database_url = fresh_database_url(&dir).await;
    let app = App::open(&database_url, pack())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    app.publish_signing_key()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let app = Arc::new(app);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = format!(
        "http://{}",
        listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let served = app.clone();
    tokio::spawn(async move {
        let _ = changegate_server::serve(listener, served, async move {
            let _ = rx.await;
        })
        .await;
    });
    let anon = Client::new(&url, None).unwrap_or_else(|e| panic!("{e}"));
    let op = Principal::operator();
    app.create_organisation(
        &op,
        NewOrganisation {
            code: "SO-TTTT".into(),
            name: "Sở Thông tin và Truyền thông".into(),
            kind: "inspector".into(),
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut t = TestApp {
        url,
        database_url,
        app,
        anon: anon.clone(),
        admin: anon,
        dir,
        shutdown: Some(tx),
    };
    t.admin = t
        .user("quan.tri", "Trần Quản Trị", "SO-TTTT", "admin")
        .await;
    t
}

impl TestApp {
    /// Creates an organisation (through the API, as the admin).
    pub async fn org(&self, code: &str, name: &str, kind: &str) {
        self.admin
            .create_organisation(&NewOrganisation {
                code: code.into(),
                name: name.into(),
                kind: kind.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("create org {code}: {e}"));
    }

    /// Creates a user and a token for them; returns a client that acts as them.
    pub async fn user(&self, username: &str, display_name: &str, org: &str, role: &str) -> Client {
        let op = Principal::operator();
        self.app
            .create_user(
                &op,
                NewUser {
                    username: username.into(),
                    display_name: display_name.into(),
                    org: org.into(),
                    role: role.into(),
                },
            )
            .await
            .unwrap_or_else(|e| panic!("create user {username}: {e}"));
        let t = self
            .app
            .create_token(
                &op,
                username,
                NewToken {
                    name: "test".into(),
                    expires_in_days: Some(30),
                },
            )
            .await
            .unwrap_or_else(|e| panic!("create token {username}: {e}"));
        self.anon.with_token(t.token)
    }

    /// Registers a system (as the admin).
    pub async fn system(&self, code: &str, owner_org: &str, level: i64, envs: &[&str]) {
        self.admin
            .create_system(&NewSystem {
                code: code.into(),
                name: format!("Hệ thống {code}"),
                owner_org: owner_org.into(),
                operating_unit: "Trung tâm Công nghệ thông tin".into(),
                level,
                population_db: true,
                environments: envs.iter().map(|s| s.to_string()).collect(),
                components: vec![],
                last_review: None,
            })
            .await
            .unwrap_or_else(|e| panic!("create system {code}: {e}"));
    }

    /// The standard cast: see [`World`].
    pub async fn world(&self) -> World {
        self.org("STNMT", "Sở Tài nguyên và Môi trường", "owner")
            .await;
        self.org("CUCTHUE", "Cục Thuế tỉnh", "owner").await;
        self.org("PA05", "Công an tỉnh – Phòng PA05", "reviewer")
            .await;
        let owner = self
            .user("nguyen.van.an", "Nguyễn Văn An", "STNMT", "owner")
            .await;
        let owner2 = self
            .user("le.thi.binh", "Lê Thị Bình", "STNMT", "owner")
            .await;
        let other_owner = self
            .user("pham.thue", "Phạm Văn Thuế", "CUCTHUE", "owner")
            .await;
        let reviewer = self
            .user("tran.thi.hoa", "Trần Thị Hoa", "PA05", "reviewer")
            .await;
        let reviewer2 = self
            .user("do.minh.duc", "Đỗ Minh Đức", "PA05", "reviewer")
            .await;
        let auditor = self
            .user("vu.thanh.tra", "Vũ Thanh Tra", "SO-TTTT", "auditor")
            .await;
        let ci = self.user("ci.stnmt", "CI Sở TN&MT", "STNMT", "ci").await;
        self.system("TTHC", "STNMT", 3, &["production", "staging"])
            .await;
        self.system("DAT-DAI", "STNMT", 4, &["production"]).await;
        World {
            owner,
            owner2,
            other_owner,
            reviewer,
            reviewer2,
            auditor,
            ci,
        }
    }
}

/// The standard cast of a test. Organisations: `STNMT` and `CUCTHUE` (owners), `PA05`
/// (reviewer), `SO-TTTT` (inspector, the admin's). Systems of `STNMT`: `TTHC` (level 3,
/// production and staging) and `DAT-DAI` (level 4, production).
pub struct World {
    /// Owner at STNMT (`nguyen.van.an`).
    pub owner: Client,
    /// Second owner at STNMT (`le.thi.binh`).
    pub owner2: Client,
    /// Owner at CUCTHUE (`pham.thue`).
    pub other_owner: Client,
    /// PA05 reviewer (`tran.thi.hoa`).
    pub reviewer: Client,
    /// Second PA05 reviewer (`do.minh.duc`).
    pub reviewer2: Client,
    /// Auditor at SO-TTTT (`vu.thanh.tra`).
    pub auditor: Client,
    /// CI of STNMT (`ci.stnmt`).
    pub ci: Client,
}

/// A sign-off answering every checklist item of `cr` with `pass` (or `fail` on the first item
/// when `conclusion` is `fail`).
pub fn sign_off_all(cr: &ChangeRequest, conclusion: &str) -> NewSignOff {
    NewSignOff {
        conclusion: conclusion.into(),
        checklist: cr
            .checklist
            .iter()
            .enumerate()
            .map(|(i, it)| ItemAnswer {
                item: it.item.clone(),
                result: if conclusion == "fail" && i == 0 {
                    "fail".into()
                } else {
                    "pass".into()
                },
                note: if conclusion == "fail" && i == 0 {
                    "Tài khoản quản trị còn dùng mật khẩu mặc định".into()
                } else {
                    String::new()
                },
            })
            .collect(),
        findings: vec![],
        conditions: vec![],
    }
}

/// A random 40-hex-digit id.
pub fn random_oid() -> String {
    hex::encode(rand::random::<[u8; 20]>())
}

/// A random artifact digest.
pub fn random_digest() -> String {
    format!("sha256:{}", hex::encode(rand::random::<[u8; 32]>()))
}

/// A git subject.
pub fn git(commit: &str, tree: &str) -> WireSubject {
    WireSubject::GitCommit {
        commit: commit.into(),
        tree: tree.into(),
    }
}

/// An artifact subject.
pub fn artifact(digest: &str) -> WireSubject {
    WireSubject::Artifact {
        digest: digest.into(),
    }
}

/// A software change request of `system` for `envs` covering `subjects`.
pub fn change(system: &str, envs: &[&str], subjects: Vec<WireSubject>) -> NewChangeRequest {
    NewChangeRequest {
        system: system.into(),
        kind: "software".into(),
        title: "Nâng cấp mô-đun tra cứu".into(),
        description: "Cập nhật phiên bản".into(),
        environments: envs.iter().map(|s| s.to_string()).collect(),
        subjects,
        components: vec![],
        git: None,
        remediates_incident: None,
    }
}

/// A gate question without content; fill in `commit`, `tree` or `artifact`.
pub fn ask(system: &str, env: &str) -> GateParams {
    GateParams {
        wait: None,
        system: system.into(),
        env: env.into(),
        ..GateParams::default()
    }
}

/// A gate question about one commit.
pub fn ask_commit(system: &str, env: &str, commit: &str) -> GateParams {
    GateParams {
        wait: None,
        commit: Some(commit.into()),
        ..ask(system, env)
    }
}

/// The answer of a call that must succeed.
pub fn ok<T>(r: Result<T, ClientError>) -> T {
    r.unwrap_or_else(|e| panic!("expected success, got {e}"))
}

/// The problem of a call that must fail with a problem document.
pub fn problem<T: std::fmt::Debug>(r: Result<T, ClientError>) -> Problem {
    match r {
        Ok(v) => panic!("expected a problem, got success: {v:?}"),
        Err(ClientError::Problem(p)) => *p,
        Err(e) => panic!("expected a problem document, got {e}"),
    }
}

impl TestApp {
    /// Files `n` as the owner, submits it and has as many PA05 reviewers sign it off `pass` as
    /// its quorum needs. Returns the approved change request.
    pub async fn approved(&self, w: &World, n: &NewChangeRequest) -> ChangeRequest {
        let cr = ok(w.owner.file_change(n).await);
        ok(w.owner.submit(cr.id).await);
        let mut last = cr.clone();
        for r in [&w.reviewer, &w.reviewer2]
            .into_iter()
            .take(cr.quorum as usize)
        {
            last = ok(r.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
        }
        assert_eq!(last.state, "approved", "{last:?}");
        last
    }

    /// The seq of the audit chain's head.
    pub async fn audit_seq(&self) -> i64 {
        changegate_store::audit::head(&self.app.db)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .0
    }
}
