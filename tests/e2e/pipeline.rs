//! The CI templates and the real binary against a real server and real git repositories.

use crate::cli::{GitRepo, changegate_bin, closed_port, keys_file, outcome, run, token, workspace};
use changegate_tests::*;
use std::path::Path;
use std::process::Command;

/// `workflows/ci/changegate-check.sh`, run in `repo` as a pipeline runs it.
fn check_script(repo: &Path, url: &str, token: &str, keys: &Path) -> Command {
    let mut c = Command::new(workspace().join("workflows/ci/changegate-check.sh"));
    c.current_dir(repo)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CHANGEGATE_BIN", changegate_bin())
        .env("CHANGEGATE_URL", url)
        .env("CHANGEGATE_TOKEN", token)
        .env("CHANGEGATE_SYSTEM", "TTHC")
        .env("CHANGEGATE_ENV", "production")
        .env("CHANGEGATE_PUBLIC_KEYS", keys);
    c
}

#[tokio::test]
async fn the_shell_template_holds_a_deployment_until_pa05_signs_off_that_exact_content() {
    let t = spawn_app().await;
    let w = t.world().await;
    let ci = token(&t, "ci.stnmt").await;
    let pinned = tempfile::tempdir().unwrap();
    let keys = keys_file(&t, pinned.path()).await;
    let repo = GitRepo::new();
    repo.commit(
        "src/tra_cuu.py",
        "def tra_cuu(so_dinh_danh):\n    return None\n",
        "Thêm mô-đun tra cứu",
    );
    let (head, tree) = (repo.head(), repo.tree());
    let cr = ok(w
        .owner
        .file_change(&change("TTHC", &["production"], vec![git(&head, &tree)]))
        .await);
    ok(w.owner.submit(cr.id).await);

    // Submitted, not yet evaluated: denied, with the reason.
    let o = run(check_script(repo.path(), &t.url, &ci, &keys)).await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(1), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("pending_evaluation"), "{out}");
    assert!(ok(w.reviewer.deployments(false).await).is_empty());

    // PA05 signs off: the same step now allows, and records the deployment.
    let cr = ok(w.owner.change(cr.id).await);
    ok(w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
    let o = run(check_script(repo.path(), &t.url, &ci, &keys)).await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("ALLOWED"), "{out}");
    let deps = ok(w.reviewer.deployments(false).await);
    assert_eq!(deps.len(), 1, "{deps:?}");
    assert_eq!(deps[0].commit.as_deref(), Some(head.as_str()));
    assert_eq!(deps[0].tree.as_deref(), Some(tree.as_str()));
    assert_eq!(deps[0].environment, "production");
    assert_eq!(deps[0].change_request, Some(cr.id));
    assert_eq!(deps[0].recorded_by, "ci.stnmt");
    assert!(!deps[0].flagged, "{deps:?}");
    assert!(ok(w.reviewer.deployments(true).await).is_empty());

    // New content is a new subject: denied, and nothing is recorded.
    repo.commit(
        "src/tra_cuu.py",
        "def tra_cuu(so_dinh_danh):\n    return query(so_dinh_danh)\n",
        "Truy vấn CSDL dân cư",
    );
    let o = run(check_script(repo.path(), &t.url, &ci, &keys)).await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(1), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("no_approved_change"), "{out}");
    assert_eq!(ok(w.reviewer.deployments(false).await).len(), 1);

    // Uncommitted changes: the gate judges committed content, so it cannot decide.
    repo.write("src/tra_cuu.py", "print('sửa tay trên máy chủ')\n");
    let o = run(check_script(repo.path(), &t.url, &ci, &keys)).await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(2), "stdout: {out}\nstderr: {err}");
    assert!(err.contains("uncommitted"), "{err}");
    assert!(err.contains("src/tra_cuu.py"), "{err}");

    // Back to the approved content, but nobody answers: never 0.
    repo.git(&["checkout", "--quiet", "--", "."]);
    repo.git(&["checkout", "--quiet", &head]);
    let o = run(check_script(
        repo.path(),
        &format!("http://127.0.0.1:{}", closed_port()),
        &ci,
        &keys,
    ))
    .await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(2), "stdout: {out}\nstderr: {err}");
    assert!(err.contains("could not decide"), "{err}");

    // The server that allowed this content stops: never 0 either.
    let url = t.url.clone();
    drop(t);
    let o = run(check_script(repo.path(), &url, &ci, &keys)).await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(2), "stdout: {out}\nstderr: {err}");
}

#[tokio::test]
async fn the_shell_template_cannot_decide_without_its_variables() {
    let repo = GitRepo::new();
    let mut c = check_script(
        repo.path(),
        "http://127.0.0.1:9",
        "",
        Path::new("keys.json"),
    );
    c.env_remove("CHANGEGATE_SYSTEM");
    let o = run(c).await;
    let (code, _, err) = outcome(&o);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("CHANGEGATE_TOKEN"), "{err}");
    assert!(err.contains("CHANGEGATE_SYSTEM"), "{err}");
}

/// `changegate request`, as an owner.
fn request(url: &str, token: &str, args: &[&str]) -> Command {
    let mut c = Command::new(changegate_bin());
    c.arg("request")
        .args(args)
        .env_clear()
        .env("CHANGEGATE_URL", url)
        .env("CHANGEGATE_TOKEN", token);
    c
}

#[tokio::test]
async fn request_with_a_range_shows_the_reviewer_its_commits_and_changed_files() {
    let t = spawn_app().await;
    let w = t.world().await;
    let owner = token(&t, "nguyen.van.an").await;
    let repo = GitRepo::new();
    let base = repo.head();
    let first = repo.commit(
        "src/tra_cuu.py",
        "def tra_cuu(so):\n    return so\n",
        "Thêm mô-đun tra cứu",
    );
    let second = repo.commit(
        "config/ip_allowlist.txt",
        "10.0.0.0/8\n172.16.0.0/12\n192.168.0.0/16\n",
        "Giới hạn IP truy cập",
    );
    let dir = repo.path().to_string_lossy().into_owned();
    let range = format!("{base}..HEAD");
    let o = run(request(
        &t.url,
        &owner,
        &[
            "--system",
            "TTHC",
            "--kind",
            "software",
            "--title",
            "Tra cứu và giới hạn IP",
            "--repo",
            &dir,
            "--range",
            &range,
            "--submit",
        ],
    ))
    .await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    let id: i64 = out
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("the last line is not an id: {out:?}"));

    let cr = ok(w.reviewer.change(id).await);
    assert_eq!(cr.state, "submitted");
    assert_eq!(cr.subjects, vec![git(&second, &repo.tree())]);
    let g = cr.git.expect("git facts attached");
    let commits: Vec<(&str, &str)> = g
        .commits
        .iter()
        .map(|c| (c.id.as_str(), c.summary.as_str()))
        .collect();
    assert_eq!(
        commits,
        [
            (second.as_str(), "Giới hạn IP truy cập"),
            (first.as_str(), "Thêm mô-đun tra cứu")
        ]
    );
    let mut files: Vec<(&str, u32, u32)> = g
        .files
        .iter()
        .map(|f| (f.path.as_str(), f.added, f.removed))
        .collect();
    files.sort();
    assert_eq!(
        files,
        [("config/ip_allowlist.txt", 3, 0), ("src/tra_cuu.py", 2, 0)]
    );
    assert_eq!((g.files_changed, g.insertions, g.deletions), (2, 5, 0));

    // A base that does not exist is named, and nothing is filed.
    let o = run(request(
        &t.url,
        &owner,
        &[
            "--system",
            "TTHC",
            "--kind",
            "software",
            "--title",
            "Sai phạm vi",
            "--repo",
            &dir,
            "--range",
            "nosuch..HEAD",
        ],
    ))
    .await;
    let (code, out, err) = outcome(&o);
    assert_ne!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(err.contains("nosuch"), "{err}");
    let filed = ok(w.reviewer.changes(Some("TTHC"), None).await);
    assert_eq!(filed.items.len(), 1, "{filed:?}");
}
