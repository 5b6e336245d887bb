//! Support for tests that run the real `changegate` binary and real git repositories: the
//! binary (built once per test run), repositories made with the `git` command line, tokens.

use changegate_api::NewToken;
use changegate_app::Principal;
use changegate_tests::TestApp;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use tempfile::TempDir;

/// The workspace's root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace")
        .to_path_buf()
}

/// The `changegate` binary, built once per test run with `cargo build -p changegate`.
pub fn changegate_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = workspace();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let built = Command::new(cargo)
            .args(["build", "-p", "changegate", "--quiet"])
            .current_dir(&root)
            .output()
            .expect("cargo runs");
        assert!(
            built.status.success(),
            "cargo build -p changegate failed:\n{}",
            String::from_utf8_lossy(&built.stderr)
        );
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let bin = target.join("debug").join("changegate");
        assert!(bin.is_file(), "no binary at {}", bin.display());
        bin
    })
    .clone()
}

/// Runs a command off the async runtime (the server under test runs on it) and returns its
/// output.
pub async fn run(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output().expect("the command starts"))
        .await
        .expect("the command's thread")
}

/// The exit code, stdout and stderr of an output, for assertions and messages.
pub fn outcome(o: &Output) -> (Option<i32>, String, String) {
    (
        o.status.code(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// A fresh API token of an existing user, as a CI system would hold it in its secrets.
pub async fn token(t: &TestApp, username: &str) -> String {
    t.app
        .create_token(
            &Principal::operator(),
            username,
            NewToken {
                name: "pipeline".into(),
                expires_in_days: Some(1),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("token of {username}: {e}"))
        .token
}

/// The server's public keys saved in a file, as an operator pins them for `changegate check`
/// (`curl $CHANGEGATE_URL/api/v1/keys > keys.json`), in `dir`.
pub async fn keys_file(t: &TestApp, dir: &Path) -> PathBuf {
    let (status, _, body) = t
        .anon
        .raw(reqwest::Method::GET, "/api/v1/keys", None, vec![])
        .await
        .expect("GET /api/v1/keys");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let file = dir.join("keys.json");
    std::fs::write(&file, &body).expect("write keys.json");
    file
}

/// A port on 127.0.0.1 where nothing listens.
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("address").port()
}

/// A git repository in a temporary directory, driven through the `git` command line.
pub struct GitRepo {
    /// The directory (removed on drop).
    pub dir: TempDir,
}

impl GitRepo {
    /// `git init` on branch `main`, with one commit.
    pub fn new() -> Self {
        let r = GitRepo {
            dir: tempfile::tempdir().expect("temp dir"),
        };
        r.git(&["init", "--quiet", "--initial-branch=main"]);
        r.commit("README.md", "# Cổng dịch vụ công\n", "Khởi tạo dự án");
        r
    }

    /// The repository's path.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs git in the repository; panics when it fails; returns its trimmed stdout.
    pub fn git(&self, args: &[&str]) -> String {
        let o = Command::new("git")
            .args([
                "-c",
                "user.name=Nguyễn Văn An",
                "-c",
                "user.email=an@stnmt.example.gov.vn",
                "-c",
                "commit.gpgsign=false",
            ])
            .args(args)
            .current_dir(self.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .output()
            .expect("git runs");
        assert!(
            o.status.success(),
            "git {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).trim().to_owned()
    }

    /// Writes `file` and commits it with `message`; returns the new commit id.
    pub fn commit(&self, file: &str, content: &str, message: &str) -> String {
        self.write(file, content);
        self.git(&["add", file]);
        self.git(&["commit", "--quiet", "-m", message]);
        self.head()
    }

    /// Writes a file in the working tree without committing it.
    pub fn write(&self, file: &str, content: &str) {
        let p = self.path().join(file);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).expect("mkdir");
        }
        std::fs::write(p, content).expect("write");
    }

    /// HEAD's commit id.
    pub fn head(&self) -> String {
        self.git(&["rev-parse", "HEAD"])
    }

    /// HEAD's tree id.
    pub fn tree(&self) -> String {
        self.git(&["rev-parse", "HEAD^{tree}"])
    }
}
