//! Test harness for the end-to-end tests: a real server on `127.0.0.1:0`, a fresh database per
//! test (a temporary SQLite file, or a fresh schema on PostgreSQL when
//! `CHANGEGATE_TEST_DATABASE_URL` is set), and typed helpers that drive it through the real
//! `changegate-api` client.

// Test support: a failed set-up step should stop the test loudly.
#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

pub mod browser;
pub mod html;

use changegate_api::{
    ChangeRequest, GateParams, ItemAnswer, NewChangeRequest, NewOrganisation, NewSignOff,
    NewSystem, NewToken, NewUser, Problem, WireSubject,
};
use changegate_app::{App, Principal, totp};
use changegate_client::{Client, ClientError};
use changegate_domain::PolicyPack;
pub use changegate_server::config::Config;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
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
    /// The second factors of the reviewers made by [`TestApp::reviewer`], by username.
    factors: Mutex<HashMap<String, Arc<SecondFactor>>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(s) = self.shutdown.take() {
            let _ = s.send(());
        }
    }
}

/// The configuration of a test server: the database at `database_url`, the signing key in
/// `dir`, everything else as built in.
pub fn config(dir: &std::path::Path, database_url: &str) -> Config {
    Config {
        data_dir: dir.to_owned(),
        database_url: Some(database_url.to_owned()),
        ..Config::default()
    }
}

/// A server built from `config` through the production path ([`changegate_server::build`]),
/// served on `127.0.0.1:0` until the returned sender is dropped. Its app and base URL.
pub async fn serve(config: &Config) -> (Arc<App>, String, tokio::sync::oneshot::Sender<()>) {
    let server = changegate_server::build(config)
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let app = server.app.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = format!(
        "http://{}",
        listener.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = server
            .serve(listener, async move {
                let _ = rx.await;
            })
            .await;
    });
    (app, url, tx)
}

/// Starts a server on a fresh database, with one admin (organisation `SO-TTTT`, inspector kind).
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts a server like [`spawn_app`], its configuration first changed by `change`.
pub async fn spawn_app_with(change: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let database_url = fresh_database_url(&dir).await;
    let mut cfg = config(dir.path(), &database_url);
    change(&mut cfg);
    let (app, url, tx) = serve(&cfg).await;
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
        factors: Mutex::default(),
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
        self.user_and_password(username, display_name, org, role)
            .await
            .0
    }

    /// Creates a PA05 reviewer at `org` who has enrolled a second factor, and a token for them.
    pub async fn reviewer(&self, username: &str, display_name: &str, org: &str) -> Reviewer {
        let (client, otp) = self
            .user_and_password(username, display_name, org, "reviewer")
            .await;
        let factor = SecondFactor::enrol(&self.app, username, &otp).await;
        self.factors
            .lock()
            .unwrap()
            .insert(username.to_owned(), factor.clone());
        Reviewer::new(client, factor)
    }

    /// Reviewer `username` (made by [`TestApp::reviewer`]) through another server at `url`,
    /// with a fresh token and the same authenticator.
    pub async fn reviewer_on(&self, url: &str, username: &str) -> Reviewer {
        let factor = self
            .factors
            .lock()
            .unwrap()
            .get(username)
            .cloned()
            .unwrap_or_else(|| panic!("{username} is not a reviewer made by TestApp::reviewer"));
        let tok = self
            .app
            .create_token(
                &Principal::operator(),
                username,
                NewToken {
                    name: "replica".into(),
                    expires_in_days: Some(1),
                },
            )
            .await
            .unwrap_or_else(|e| panic!("create token {username}: {e}"));
        Reviewer::new(
            Client::new(url, Some(tok.token)).unwrap_or_else(|e| panic!("{e}")),
            factor,
        )
    }

    /// Creates a user and a token for them: a client that acts as them, and their one-time
    /// password.
    async fn user_and_password(
        &self,
        username: &str,
        display_name: &str,
        org: &str,
        role: &str,
    ) -> (Client, String) {
        let op = Principal::operator();
        let created = self
            .app
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
        (self.anon.with_token(t.token), created.one_time_password)
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
        let reviewer = self.reviewer("tran.thi.hoa", "Trần Thị Hoa", "PA05").await;
        let reviewer2 = self.reviewer("do.minh.duc", "Đỗ Minh Đức", "PA05").await;
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
    /// PA05 reviewer (`tran.thi.hoa`), second factor enrolled.
    pub reviewer: Reviewer,
    /// Second PA05 reviewer (`do.minh.duc`), second factor enrolled.
    pub reviewer2: Reviewer,
    /// Auditor at SO-TTTT (`vu.thanh.tra`).
    pub auditor: Client,
    /// CI of STNMT (`ci.stnmt`).
    pub ci: Client,
}

impl World {
    /// A change of `system` (every environment, fresh git content) filed and submitted by the
    /// owner.
    pub async fn submitted(&self, system: &str) -> ChangeRequest {
        let cr = ok(self
            .owner
            .file_change(&change(
                system,
                &[],
                vec![git(&random_oid(), &random_oid())],
            ))
            .await);
        ok(self.owner.submit(cr.id).await)
    }
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
        second_factor_code: None,
    }
}

/// A person's enrolled second factor, as their authenticator app holds it: it gives each code
/// once, as the server accepts each once.
pub struct SecondFactor {
    key: Vec<u8>,
    /// The last step whose code was given.
    last_step: tokio::sync::Mutex<i64>,
}

impl SecondFactor {
    /// Enrols a second factor for `username` the way a person does in the web UI: signs in
    /// with the one-time password, sets a password, enrols and confirms a code.
    pub async fn enrol(app: &App, username: &str, one_time_password: &str) -> Arc<SecondFactor> {
        let local = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let s = app
            .sign_in(username, one_time_password, local, "harness")
            .await
            .unwrap_or_else(|e| panic!("sign in {username}: {e}"))
            .session;
        let s = app
            .change_password(&s, None, "Mật khẩu riêng của người kiểm tra 2026")
            .await
            .unwrap_or_else(|e| panic!("set a password for {username}: {e}"));
        let e = app
            .totp_enrolment(&s)
            .await
            .unwrap_or_else(|e| panic!("enrol {username}: {e}"));
        let key = totp::base32_decode(&e.secret_base32).unwrap_or_else(|| panic!("base32"));
        // The code of the step before now (accepted within one step either way), so that the
        // next two steps' codes are usable at once.
        // On a loaded machine the step can turn between reading the clock and the server's
        // check, leaving that code two steps behind: then once more with the new step.
        let mut step = totp::step_at(unix_now()) - 1;
        let mut retried = false;
        loop {
            match app.confirm_totp(&s, &totp::code_at_step(&key, step)).await {
                Ok(_) => break,
                Err(_) if !retried && totp::step_at(unix_now()) - 1 != step => {
                    step = totp::step_at(unix_now()) - 1;
                    retried = true;
                }
                Err(e) => panic!("confirm the second factor of {username}: {e}"),
            }
        }
        Arc::new(SecondFactor {
            key,
            last_step: tokio::sync::Mutex::new(step),
        })
    }

    /// A code not given before that the server accepts now (of the current step or the next);
    /// waits for the clock when those are used up.
    pub async fn next_code(&self) -> String {
        self.next_step_and_code().await.1
    }

    async fn next_step_and_code(&self) -> (i64, String) {
        let mut last = self.last_step.lock().await;
        let step = (*last + 1).max(totp::step_at(unix_now()));
        while totp::step_at(unix_now()) + 1 < step {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        *last = step;
        (step, totp::code_at_step(&self.key, step))
    }

    /// A well-formed code that no step within two of now has: a wrong guess, for sure.
    pub fn wrong_code(&self, n: u32) -> String {
        let now = totp::step_at(unix_now());
        let valid: Vec<String> = (now - 2..=now + 2)
            .map(|st| totp::code_at_step(&self.key, st))
            .collect();
        (n..)
            .map(|i| format!("{:06}", (i.wrapping_mul(7919)) % 1_000_000))
            .find(|c| !valid.contains(c))
            .unwrap_or_else(|| panic!("no wrong code"))
    }

    /// The code of `step` may not have been used by the server (the sign-off was refused): give
    /// it again next time if it was the last. (If it was used, the server refuses it as used,
    /// without counting a failure, and [`Reviewer::sign_off`] takes the next.)
    async fn unused(&self, step: i64) {
        let mut last = self.last_step.lock().await;
        if *last == step {
            *last = step - 1;
        }
    }
}

fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// A PA05 reviewer's API client (one token) with their authenticator at hand:
/// [`Reviewer::sign_off`] carries a second-factor code when the server needs one. Everything else
/// is the [`Client`].
#[derive(Clone)]
pub struct Reviewer {
    client: Client,
    factor: Arc<SecondFactor>,
    /// When a code sent with this token last opened the server's step-up window (the window is
    /// the token's).
    stepped_up: Arc<Mutex<Option<Instant>>>,
}

impl std::ops::Deref for Reviewer {
    type Target = Client;
    fn deref(&self) -> &Client {
        &self.client
    }
}

impl Reviewer {
    /// `client` (a reviewer's token) with their second factor.
    pub fn new(client: Client, factor: Arc<SecondFactor>) -> Reviewer {
        Reviewer {
            client,
            factor,
            stepped_up: Arc::default(),
        }
    }

    /// The plain client: its `sign_off` sends the body as it is, code or none.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The second factor.
    pub fn factor(&self) -> &Arc<SecondFactor> {
        &self.factor
    }

    /// Signs off through the API with a second-factor code when the step-up window is not open
    /// (the code `s` carries, if any, is sent as it is). A code of its own that the server did
    /// not use (the sign-off was refused before) is given again next time; one the server
    /// refuses as used is replaced by a fresh one, once.
    pub async fn sign_off(&self, id: i64, s: &NewSignOff) -> Result<ChangeRequest, ClientError> {
        if s.second_factor_code.is_some() {
            return self.client.sign_off(id, s).await;
        }
        let mut s = s.clone();
        let mut retried = false;
        loop {
            // Within the server's 5-minute window (4 of them, to stay clear of its end) no code.
            let open = self
                .stepped_up
                .lock()
                .unwrap()
                .is_some_and(|t| t.elapsed() < Duration::from_secs(240));
            let mut step = None;
            s.second_factor_code = if open {
                None
            } else {
                let (st, code) = self.factor.next_step_and_code().await;
                step = Some(st);
                Some(code)
            };
            let sent = Instant::now();
            let r = self.client.sign_off(id, &s).await;
            let Some(step) = step else { return r };
            match &r {
                Ok(_) => {
                    // The code opened (or renewed) the window no earlier than it was sent.
                    let mut at = self.stepped_up.lock().unwrap();
                    if at.is_none_or(|t| t < sent) {
                        *at = Some(sent);
                    }
                }
                Err(ClientError::Problem(p))
                    if !retried && p.errors.iter().any(|e| e.field == "second_factor_code") =>
                {
                    retried = true;
                    continue;
                }
                Err(_) => self.factor.unused(step).await,
            }
            return r;
        }
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
        major_change: vec![],
    }
}

/// A gate question without content; fill in `commit`, `tree` or `artifact`.
pub fn ask(system: &str, env: &str) -> GateParams {
    GateParams {
        wait: None,
        nonce: None,
        system: system.into(),
        env: env.into(),
        ..GateParams::default()
    }
}

/// A gate question about one commit.
pub fn ask_commit(system: &str, env: &str, commit: &str) -> GateParams {
    GateParams {
        wait: None,
        nonce: None,
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
