//! Tests on real repositories made with git2 in a `TempDir`; signatures are
//! explicit, so no git configuration is needed. The shallow-clone test uses the
//! `git` command, because libgit2's local transport cannot fetch shallow.

use std::fs;
use std::path::Path;
use std::process::Command;

use git2::{Oid, Repository, RepositoryInitOptions, Signature, Time};
use tempfile::TempDir;

use super::*;

const PNG_BYTES: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\x01\0\0";

/// A fresh non-bare repository whose initial branch is `main`.
fn init() -> (TempDir, Repository) {
    let dir = TempDir::new().unwrap();
    let mut opts = RepositoryInitOptions::new();
    opts.initial_head("main");
    let repo = Repository::init_opts(dir.path(), &opts).unwrap();
    (dir, repo)
}

/// Commits a snapshot holding exactly `files`, with `parents`, and points `refname` at it.
fn commit(
    repo: &Repository,
    refname: &str,
    parents: &[Oid],
    files: &[(&str, &[u8])],
    message: &str,
    time: i64,
) -> Oid {
    let tree = repo.find_tree(write_tree(repo, files)).unwrap();
    let author = Signature::new("Nguyễn Văn An", "an@example.vn", &Time::new(time, 420)).unwrap();
    let parents: Vec<_> = parents
        .iter()
        .map(|id| repo.find_commit(*id).unwrap())
        .collect();
    let parent_refs: Vec<_> = parents.iter().collect();
    let id = repo
        .commit(None, &author, &author, message, &tree, &parent_refs)
        .unwrap();
    repo.reference(refname, id, true, "test").unwrap();
    id
}

/// Writes a tree holding `files` (paths may have directories).
fn write_tree(repo: &Repository, files: &[(&str, &[u8])]) -> Oid {
    let mut builder = repo.treebuilder(None).unwrap();
    let mut dirs: Vec<&str> = Vec::new();
    for (path, data) in files {
        match path.split_once('/') {
            None => {
                builder
                    .insert(*path, repo.blob(data).unwrap(), 0o100644)
                    .unwrap();
            }
            Some((dir, _)) if !dirs.contains(&dir) => dirs.push(dir),
            Some(_) => {}
        }
    }
    for dir in dirs {
        let inner: Vec<(&str, &[u8])> = files
            .iter()
            .filter_map(|(p, d)| {
                p.strip_prefix(dir)?
                    .strip_prefix('/')
                    .map(|rest| (rest, *d))
            })
            .collect();
        builder
            .insert(dir, write_tree(repo, &inner), 0o040000)
            .unwrap();
    }
    builder.write().unwrap()
}

/// The history the range tests use:
///
/// ```text
/// c1 (main~1) ── c4 (main)
///   └── c2 ── c3 (feature)
/// ```
struct History {
    dir: TempDir,
    repo: Repository,
    c1: Oid,
    c2: Oid,
    c3: Oid,
    c4: Oid,
}

fn history() -> History {
    let (dir, repo) = init();
    let c1 = commit(
        &repo,
        "refs/heads/main",
        &[],
        &[
            ("a.txt", b"1\n2\n3\n"),
            ("docs/b.txt", b"x\ny\n"),
            ("logo.png", PNG_BYTES),
        ],
        "Initial layout",
        1_700_000_000,
    );
    let c2 = commit(
        &repo,
        "refs/heads/feature",
        &[c1],
        &[
            ("a.txt", b"1\nTWO\n3\n4\n5\n"),
            ("docs/b.txt", b"x\ny\n"),
            ("logo.png", PNG_BYTES),
        ],
        "Rework a\n\nLonger body that is not part of the summary.",
        1_700_000_100,
    );
    let c3 = commit(
        &repo,
        "refs/heads/feature",
        &[c2],
        &[
            ("a.txt", b"1\nTWO\n3\n4\n5\n"),
            ("logo.png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\x02\0\0"),
            (
                "src/new.rs",
                b"fn a() {}\nfn b() {}\nfn c() {}\nfn d() {}\n",
            ),
        ],
        "Add new.rs, drop b.txt, new logo",
        1_700_000_200,
    );
    let c4 = commit(
        &repo,
        "refs/heads/main",
        &[c1],
        &[
            ("a.txt", b"1\n2\n3\n"),
            ("docs/b.txt", b"x\ny\n"),
            ("logo.png", PNG_BYTES),
            ("z.txt", b"main only\n"),
        ],
        "Main moves on",
        1_700_000_300,
    );
    History {
        dir,
        repo,
        c1,
        c2,
        c3,
        c4,
    }
}

fn is_lower_hex_40(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[test]
fn head_reports_the_commit_and_tree_git_reports() {
    let h = history();
    let repo = Repo::open(h.dir.path()).unwrap();
    let head = repo.head().unwrap();

    let expected = h.repo.find_commit(h.c4).unwrap();
    assert_eq!(head.commit, h.c4.to_string());
    assert_eq!(head.tree, expected.tree_id().to_string());
    assert!(is_lower_hex_40(&head.commit), "{}", head.commit);
    assert!(is_lower_hex_40(&head.tree), "{}", head.tree);
}

#[test]
fn open_discovers_the_repository_from_a_subdirectory() {
    let h = history();
    let sub = h.dir.path().join("deep/er");
    fs::create_dir_all(&sub).unwrap();

    let head = Repo::open(&sub).unwrap().head().unwrap();

    assert_eq!(head.commit, h.c4.to_string());
}

#[test]
fn head_of_an_empty_repository_is_an_unknown_revision() {
    let (dir, _repo) = init();

    let err = Repo::open(dir.path()).unwrap().head().unwrap_err();

    assert!(
        matches!(&err, GitError::UnknownRef { name } if name == "HEAD"),
        "{err:?}"
    );
}

#[test]
fn not_a_repository_error_names_the_path() {
    let dir = TempDir::new().unwrap();
    let path = dir.path().join("nowhere");
    fs::create_dir(&path).unwrap();

    let err = Repo::open(&path).unwrap_err();

    assert!(
        matches!(&err, GitError::NotARepository { path: p } if Path::new(p) == path),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&path.display().to_string()),
        "{err}"
    );
}

#[test]
fn a_clean_checkout_has_no_uncommitted_changes() {
    let h = history();
    h.repo
        .checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .unwrap();

    let changes = Repo::open(h.dir.path())
        .unwrap()
        .uncommitted_changes()
        .unwrap();

    assert_eq!(changes, Vec::<String>::new());
}

#[test]
fn modified_and_staged_tracked_files_are_reported_untracked_are_not() {
    let h = history();
    h.repo
        .checkout_head(Some(git2::build::CheckoutBuilder::new().force()))
        .unwrap();
    let root = h.dir.path();
    // Modified in the working tree only.
    fs::write(root.join("a.txt"), "1\n2\n3\nmore\n").unwrap();
    // Modified and staged.
    fs::write(root.join("docs/b.txt"), "staged\n").unwrap();
    // Deleted from the working tree.
    fs::remove_file(root.join("z.txt")).unwrap();
    // A new file, staged: it is tracked now.
    fs::write(root.join("added.txt"), "new\n").unwrap();
    // Untracked: the gate judges committed content, so it does not count.
    fs::write(root.join("scratch.txt"), "notes\n").unwrap();
    let mut index = h.repo.index().unwrap();
    index.add_path(Path::new("docs/b.txt")).unwrap();
    index.add_path(Path::new("added.txt")).unwrap();
    index.write().unwrap();

    let changes = Repo::open(root).unwrap().uncommitted_changes().unwrap();

    assert_eq!(changes, ["a.txt", "added.txt", "docs/b.txt", "z.txt"]);
}

#[test]
fn a_bare_repository_has_no_uncommitted_changes() {
    let dir = TempDir::new().unwrap();
    let bare = Repository::init_bare(dir.path()).unwrap();
    let id = commit(
        &bare,
        "refs/heads/master",
        &[],
        &[("a.txt", b"a\n")],
        "One",
        1_700_000_000,
    );
    bare.set_head("refs/heads/master").unwrap();

    let repo = Repo::open(dir.path()).unwrap();

    assert_eq!(repo.uncommitted_changes().unwrap(), Vec::<String>::new());
    assert_eq!(repo.head().unwrap().commit, id.to_string());
}

#[test]
fn range_lists_commits_newest_first_and_the_diffstat_from_the_merge_base() {
    let h = history();

    let facts = Repo::open(h.dir.path())
        .unwrap()
        .range(Some("main..feature"))
        .unwrap();

    assert_eq!(facts.range, "main..feature");
    assert_eq!(facts.base, h.c4.to_string());
    assert_eq!(facts.head, h.c3.to_string());
    assert_eq!(
        facts.head_tree,
        h.repo.find_commit(h.c3).unwrap().tree_id().to_string()
    );
    let ids: Vec<_> = facts.commits.iter().map(|c| c.id.clone()).collect();
    assert_eq!(ids, [h.c3.to_string(), h.c2.to_string()]);
    assert_eq!(facts.commits[1].summary, "Rework a");
    assert_eq!(facts.commits[1].author, "Nguyễn Văn An <an@example.vn>");
    assert_eq!(facts.commits[1].time, 1_700_000_100);
    assert!(!facts.truncated);
    // z.txt changed on main only, after the merge base: it is not part of the change.
    let stat = |path: &str, added, removed, binary| FileStat {
        path: path.into(),
        added,
        removed,
        binary,
    };
    assert_eq!(
        facts.files,
        [
            stat("a.txt", 3, 1, false),
            stat("docs/b.txt", 0, 2, false),
            stat("logo.png", 0, 0, true),
            stat("src/new.rs", 4, 0, false),
        ]
    );
    assert_eq!(
        (facts.files_changed, facts.insertions, facts.deletions),
        (4, 7, 3)
    );
}

#[test]
fn a_range_of_revision_expressions_resolves_them() {
    let h = history();

    let facts = Repo::open(h.dir.path())
        .unwrap()
        .range(Some("feature~2..feature~1"))
        .unwrap();

    assert_eq!(facts.base, h.c1.to_string());
    assert_eq!(facts.head, h.c2.to_string());
    assert_eq!(facts.commits.len(), 1);
    assert_eq!(
        facts.files,
        [FileStat {
            path: "a.txt".into(),
            added: 3,
            removed: 1,
            binary: false
        }]
    );
}

#[test]
fn open_ended_range_defaults_to_head() {
    let h = history();
    h.repo.set_head("refs/heads/feature").unwrap();

    let facts = Repo::open(h.dir.path())
        .unwrap()
        .range(Some("main.."))
        .unwrap();

    assert_eq!(facts.range, "main..HEAD");
    assert_eq!(facts.base, h.c4.to_string());
    assert_eq!(facts.head, h.c3.to_string());
    assert_eq!(facts.commits.len(), 2);
}

#[test]
fn without_a_spec_the_range_is_upstream_to_head() {
    let h = history();
    h.repo
        .remote("origin", "file:///nonexistent/origin.git")
        .unwrap();
    // What a fetch would have left: origin/main at main's commit.
    h.repo
        .reference("refs/remotes/origin/main", h.c4, true, "test")
        .unwrap();
    let mut config = h.repo.config().unwrap();
    config.set_str("branch.feature.remote", "origin").unwrap();
    config
        .set_str("branch.feature.merge", "refs/heads/main")
        .unwrap();
    h.repo.set_head("refs/heads/feature").unwrap();

    let facts = Repo::open(h.dir.path()).unwrap().range(None).unwrap();

    assert_eq!(facts.range, "origin/main..HEAD");
    assert_eq!(facts.base, h.c4.to_string());
    assert_eq!(facts.head, h.c3.to_string());
    assert_eq!(facts.commits.len(), 2);
}

#[test]
fn a_local_upstream_branch_is_named_by_its_short_name() {
    let h = history();
    let mut config = h.repo.config().unwrap();
    config.set_str("branch.feature.remote", ".").unwrap();
    config
        .set_str("branch.feature.merge", "refs/heads/main")
        .unwrap();
    h.repo.set_head("refs/heads/feature").unwrap();

    let facts = Repo::open(h.dir.path()).unwrap().range(None).unwrap();

    assert_eq!(facts.range, "main..HEAD");
    assert_eq!(facts.base, h.c4.to_string());
}

#[test]
fn a_branch_without_upstream_is_refused_with_its_name() {
    let h = history();
    h.repo.set_head("refs/heads/feature").unwrap();

    let err = Repo::open(h.dir.path()).unwrap().range(None).unwrap_err();

    assert!(
        matches!(&err, GitError::NoUpstream { branch } if branch == "feature"),
        "{err:?}"
    );
    assert!(err.to_string().contains("--range"), "{err}");
}

#[test]
fn a_detached_head_has_no_upstream() {
    let h = history();
    h.repo.set_head_detached(h.c3).unwrap();

    let err = Repo::open(h.dir.path()).unwrap().range(None).unwrap_err();

    assert!(matches!(err, GitError::DetachedHead), "{err:?}");
}

#[test]
fn an_unknown_ref_is_named_in_the_error() {
    let h = history();
    let repo = Repo::open(h.dir.path()).unwrap();

    let err = repo.range(Some("release/9..feature")).unwrap_err();
    assert!(
        matches!(&err, GitError::UnknownRef { name } if name == "release/9"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "unknown revision 'release/9'");

    let err = repo.range(Some("main..nope")).unwrap_err();
    assert!(
        matches!(&err, GitError::UnknownRef { name } if name == "nope"),
        "{err:?}"
    );

    let missing = "0123456789abcdef0123456789abcdef01234567";
    let err = repo.range(Some(&format!("{missing}..main"))).unwrap_err();
    assert!(
        matches!(&err, GitError::UnknownRef { name } if name == missing),
        "{err:?}"
    );
}

#[test]
fn specs_that_are_not_a_range_are_refused() {
    let h = history();
    let repo = Repo::open(h.dir.path()).unwrap();

    for spec in ["main", "..main", "..", "main...feature", "a..b..c", ""] {
        let err = repo.range(Some(spec)).unwrap_err();
        assert!(
            matches!(&err, GitError::BadRange { spec: s } if s == spec),
            "{spec}: {err:?}"
        );
    }
}

#[test]
fn long_ranges_are_capped_and_flagged_truncated() {
    let (dir, repo) = init();
    let base = commit(
        &repo,
        "refs/heads/main",
        &[],
        &[("n.txt", b"0\n")],
        "base",
        1_700_000_000,
    );
    let mut tip = base;
    for i in 1..=MAX_COMMITS + 1 {
        let text = format!("{i}\n");
        tip = commit(
            &repo,
            "refs/heads/main",
            &[tip],
            &[("n.txt", text.as_bytes())],
            &format!("c{i}"),
            1_700_000_000 + i as i64,
        );
    }

    let facts = Repo::open(dir.path())
        .unwrap()
        .range(Some(&format!("{base}..main")))
        .unwrap();

    assert!(facts.truncated);
    assert_eq!(facts.commits.len(), MAX_COMMITS);
    assert_eq!(facts.commits[0].id, tip.to_string());
    assert_eq!(facts.commits[0].summary, format!("c{}", MAX_COMMITS + 1));
    assert_eq!(
        (facts.files_changed, facts.insertions, facts.deletions),
        (1, 1, 1)
    );
}

#[test]
fn a_shallow_clone_missing_the_base_says_so() {
    let h = history();
    let clones = TempDir::new().unwrap();
    let url = format!("file://{}", h.dir.path().display());
    let clone = |name: &str, extra: &[&str]| {
        let dest = clones.path().join(name);
        let out = Command::new("git")
            .args(["clone", "--quiet", "--depth", "1", "--branch", "feature"])
            .args(extra)
            .arg(&url)
            .arg(&dest)
            .output()
            .expect("the git command runs");
        assert!(
            out.status.success(),
            "git clone: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dest
    };

    // Single branch, as CI checkouts do: the base ref and commit are absent.
    let single = Repo::open(&clone("single", &[])).unwrap();
    assert!(single.repo.is_shallow());
    let err = single.range(Some("origin/main..HEAD")).unwrap_err();
    assert!(
        matches!(&err, GitError::MissingBase { name } if name == "origin/main"),
        "{err:?}"
    );
    assert!(err.to_string().contains("git fetch --unshallow"), "{err}");
    let base = h.c1.to_string();
    let err = single.range(Some(&format!("{base}..HEAD"))).unwrap_err();
    assert!(
        matches!(&err, GitError::MissingBase { name } if *name == base),
        "{err:?}"
    );

    // All branches, one commit deep: the base is there, the history down to the merge base is not.
    let wide = Repo::open(&clone("wide", &["--no-single-branch"])).unwrap();
    let err = wide.range(Some("origin/main..HEAD")).unwrap_err();
    assert!(
        matches!(&err, GitError::MissingBase { name } if name == "origin/main"),
        "{err:?}"
    );

    // HEAD itself is still known in a shallow clone.
    assert_eq!(single.head().unwrap().commit, h.c3.to_string());
}

#[test]
fn wide_diffs_list_the_first_files_and_count_them_all() {
    let (dir, repo) = init();
    let base = commit(
        &repo,
        "refs/heads/main",
        &[],
        &[("keep.txt", b"k\n")],
        "base",
        1_700_000_000,
    );
    let names: Vec<String> = (0..=MAX_FILES).map(|i| format!("f{i:05}.txt")).collect();
    let mut files: Vec<(&str, &[u8])> = names
        .iter()
        .map(|n| (n.as_str(), b"line\n".as_slice()))
        .collect();
    files.push(("keep.txt", b"k\n"));
    commit(
        &repo,
        "refs/heads/main",
        &[base],
        &files,
        "many files",
        1_700_000_001,
    );

    let facts = Repo::open(dir.path())
        .unwrap()
        .range(Some(&format!("{base}..main")))
        .unwrap();

    assert!(facts.truncated);
    assert_eq!(facts.files.len(), MAX_FILES);
    assert_eq!(facts.files[0].path, "f00000.txt");
    assert_eq!(facts.files_changed as usize, MAX_FILES + 1);
    assert_eq!(
        (facts.insertions as usize, facts.deletions),
        (MAX_FILES + 1, 0)
    );
    assert_eq!(facts.commits.len(), 1);
}
