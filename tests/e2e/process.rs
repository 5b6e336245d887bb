//! Real `changegate serve` processes for the reliability tests: a database seeded from the test
//! process, a server started on it (its address read from its first line of output), killed or
//! restarted at will.

use crate::cli::changegate_bin;
use changegate_api::{NewOrganisation, NewSystem, NewToken, NewUser};
use changegate_app::{App, Principal};
use changegate_client::Client;
use changegate_tests::{SecondFactor, pack};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// API tokens of the seeded users.
pub struct Seeded {
    /// Admin (`quan.tri`, SO-TTTT).
    pub admin: String,
    /// Owner at STNMT (`nguyen.van.an`).
    pub owner: String,
    /// PA05 reviewer (`tran.thi.hoa`).
    pub reviewer: String,
    /// The reviewer's enrolled second factor.
    pub reviewer_factor: Arc<SecondFactor>,
    /// CI of STNMT (`ci.stnmt`).
    pub ci: String,
}

/// Migrates `database_url` and seeds the organisations, users and system `TTHC` (level 3,
/// production, quorum 1) directly, as `changegate admin` would.
pub async fn seed(database_url: &str) -> Seeded {
    let app = App::open(database_url, pack()).await.unwrap();
    let op = Principal::operator();
    for (code, name, kind) in [
        ("SO-TTTT", "Sở Thông tin và Truyền thông", "inspector"),
        ("STNMT", "Sở Tài nguyên và Môi trường", "owner"),
        ("PA05", "Công an tỉnh – Phòng PA05", "reviewer"),
    ] {
        app.create_organisation(
            &op,
            NewOrganisation {
                code: code.into(),
                name: name.into(),
                kind: kind.into(),
            },
        )
        .await
        .unwrap();
    }
    let mut tokens = vec![];
    let mut reviewer_factor = None;
    for (username, display_name, org, role) in [
        ("quan.tri", "Trần Quản Trị", "SO-TTTT", "admin"),
        ("nguyen.van.an", "Nguyễn Văn An", "STNMT", "owner"),
        ("tran.thi.hoa", "Trần Thị Hoa", "PA05", "reviewer"),
        ("ci.stnmt", "CI Sở TN&MT", "STNMT", "ci"),
    ] {
        let created = app
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
            .unwrap();
        if role == "reviewer" {
            reviewer_factor =
                Some(SecondFactor::enrol(&app, username, &created.one_time_password).await);
        }
        let t = app
            .create_token(
                &op,
                username,
                NewToken {
                    name: "test".into(),
                    expires_in_days: Some(1),
                },
            )
            .await
            .unwrap();
        tokens.push(t.token);
    }
    app.create_system(
        &op,
        NewSystem {
            code: "TTHC".into(),
            name: "Hệ thống thông tin giải quyết thủ tục hành chính".into(),
            owner_org: "STNMT".into(),
            operating_unit: "Trung tâm Công nghệ thông tin".into(),
            level: 3,
            population_db: true,
            environments: vec!["production".into()],
            components: vec![],
            last_review: None,
        },
    )
    .await
    .unwrap();
    app.db.clone().close().await.unwrap();
    let mut t = tokens.into_iter();
    Seeded {
        admin: t.next().unwrap(),
        owner: t.next().unwrap(),
        reviewer: t.next().unwrap(),
        reviewer_factor: reviewer_factor.unwrap(),
        ci: t.next().unwrap(),
    }
}

/// A running `changegate serve`.
pub struct Server {
    /// Its base URL.
    pub url: String,
    /// The process (killed when dropped).
    pub child: tokio::process::Child,
    /// Where its log (stderr) goes.
    pub log: PathBuf,
}

impl Server {
    /// Starts `changegate serve` on `database_url` in `dir` (its data directory, signing key and
    /// log live there), with the configuration file `config` if given, listening on a free port.
    pub async fn start(dir: &Path, database_url: &str, config: Option<&Path>) -> Server {
        Self::start_limited(dir, database_url, config, None).await
    }

    /// Like [`Server::start`], the process limited to `open_files` open files (`ulimit -n`)
    /// when given.
    pub async fn start_limited(
        dir: &Path,
        database_url: &str,
        config: Option<&Path>,
        open_files: Option<u32>,
    ) -> Server {
        let log = dir.join(format!("serve-{}.log", rand::random::<u32>()));
        let mut cmd = match open_files {
            None => tokio::process::Command::new(changegate_bin()),
            Some(n) => {
                let mut c = tokio::process::Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(changegate_bin());
                c
            }
        };
        cmd.current_dir(dir)
            .arg("serve")
            .args(["--database-url", database_url, "--listen", "127.0.0.1:0"])
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true);
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        let mut child = cmd.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("serve did not start within 60 s; log: {}", read(&log)))
            .unwrap()
            .unwrap_or_else(|| panic!("serve stopped at start; log: {}", read(&log)));
        // "changegate listening on http://127.0.0.1:PORT (… database, ready in … ms)"
        let url = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
            .to_owned();
        // Keep reading its output so that it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Server { url, child, log }
    }

    /// A client of this server with `token`.
    pub fn client(&self, token: &str) -> Client {
        Client::new(&self.url, Some(token.to_owned())).unwrap()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().unwrap().is_none()
    }

    /// Its log so far.
    pub fn log(&self) -> String {
        read(&self.log)
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}
