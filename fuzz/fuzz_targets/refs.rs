//! Revision ranges (`changegate request --range A..B`), read by `changegate_git::Repo::range` on
//! a small real repository that the target builds once in a temporary directory (the range
//! splitter itself is private to the git crate, so it is reached through the public API, with
//! libgit2's revision parser behind it).
//!
//! Checked: a range is refused as malformed exactly when it is not `A..B` or `A..` (no `...`, no
//! second `..`, `A` not empty); an accepted one resolves `A` and `B` to the commits libgit2
//! resolves them to on its own, names itself `A..B` (`A..HEAD` for `A..`), lists ids of 40
//! lowercase hex digits with `B` first, nothing reachable from `A`, files sorted and totals that
//! match the per-file counts.
#![no_main]

use changegate_git::{GitError, MAX_COMMITS, MAX_FILES, Repo};
use git2::{Oid, Repository, Signature, Time};
use libfuzzer_sys::fuzz_target;
use std::path::PathBuf;
use std::sync::OnceLock;

struct Fixture {
    /// Kept for the life of the process (the fuzzer's); removed by the OS's temp cleaning.
    _dir: tempfile::TempDir,
    path: PathBuf,
}

fn commit(repo: &Repository, files: &[(&str, &[u8])], msg: &str, parents: &[Oid], at: i64) -> Oid {
    let mut tb = repo.treebuilder(None).unwrap_or_else(|e| panic!("{e}"));
    for (name, content) in files {
        let blob = repo.blob(content).unwrap_or_else(|e| panic!("{e}"));
        tb.insert(name, blob, 0o100644)
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let tree_id = tb.write().unwrap_or_else(|e| panic!("{e}"));
    let tree = repo.find_tree(tree_id).unwrap_or_else(|e| panic!("{e}"));
    let sig = Signature::new("Nguyễn An", "an@example.vn", &Time::new(at, 420))
        .unwrap_or_else(|e| panic!("{e}"));
    let parents: Vec<_> = parents
        .iter()
        .map(|p| repo.find_commit(*p).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    let parents: Vec<_> = parents.iter().collect();
    repo.commit(None, &sig, &sig, msg, &tree, &parents)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// main: c1 → c2 → c3 (merge of c2 and feature's f1); feature: c1 → f1; tag v1 (annotated) on c2;
/// an unrelated root commit on `orphan`; HEAD on main.
fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let dir = tempfile::Builder::new()
            .prefix("changegate-fuzz-refs-")
            .tempdir()
            .unwrap_or_else(|e| panic!("{e}"));
        let repo = Repository::init(dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let c1 = commit(
            &repo,
            &[("a.txt", b"one\ntwo\n"), ("b.bin", b"\0\x01\x02")],
            "first\n\nbody",
            &[],
            1_700_000_000,
        );
        let c2 = commit(
            &repo,
            &[("a.txt", b"one\n2\nthree\n"), ("b.bin", b"\0\x01\x03")],
            "second",
            &[c1],
            1_700_000_100,
        );
        let f1 = commit(
            &repo,
            &[("a.txt", b"one\ntwo\n"), ("c.txt", b"feature\n")],
            "feature work",
            &[c1],
            1_700_000_200,
        );
        let c3 = commit(
            &repo,
            &[("a.txt", b"one\n2\nthree\n"), ("c.txt", b"feature\n")],
            "merge feature",
            &[c2, f1],
            1_700_000_300,
        );
        let orphan = commit(&repo, &[("z.txt", b"z\n")], "unrelated", &[], 1_700_000_400);
        let find = |id| repo.find_commit(id).unwrap_or_else(|e| panic!("{e}"));
        for (name, id) in [("main", c3), ("feature", f1), ("orphan", orphan)] {
            repo.branch(name, &find(id), true)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        let sig = Signature::new("An", "an@example.vn", &Time::new(1_700_000_500, 0))
            .unwrap_or_else(|e| panic!("{e}"));
        repo.tag("v1", find(c2).as_object(), &sig, "release 1", false)
            .unwrap_or_else(|e| panic!("{e}"));
        repo.set_head("refs/heads/main")
            .unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().to_path_buf();
        Fixture { _dir: dir, path }
    })
}

fn well_formed(spec: &str) -> Option<(&str, &str)> {
    let (a, b) = spec.split_once("..")?;
    (!a.is_empty() && !b.starts_with('.') && !b.contains(".."))
        .then_some((a, if b.is_empty() { "HEAD" } else { b }))
}

fn resolve(repo: &Repository, name: &str) -> Option<Oid> {
    repo.revparse_single(name)
        .ok()?
        .peel_to_commit()
        .ok()
        .map(|c| c.id())
}

fn hex40(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

thread_local! {
    /// The repository as changegate opens it, and as libgit2 opens it for the independent checks.
    static REPOS: (Repo, Repository) = {
        let path = &fixture().path;
        (
            Repo::open(path).unwrap_or_else(|e| panic!("{e}")),
            Repository::open(path).unwrap_or_else(|e| panic!("{e}")),
        )
    };
}

fn check(repo: &Repo, raw: &Repository, spec: &str) {
    let result = repo.range(Some(spec));
    let Some((a, b)) = well_formed(spec) else {
        assert!(
            matches!(result, Err(GitError::BadRange { .. })),
            "{spec:?} is not A..B but gave {result:?}"
        );
        return;
    };
    let r = match result {
        Ok(r) => r,
        Err(GitError::BadRange { .. }) => panic!("{spec:?} is A..B but was refused as malformed"),
        Err(GitError::NoUpstream { .. } | GitError::DetachedHead) => {
            panic!("{spec:?}: an explicit range asked for the upstream")
        }
        Err(GitError::UnknownRef { .. } | GitError::Git(_) | GitError::MissingBase { .. }) => {
            return;
        }
        Err(e) => panic!("{spec:?}: {e}"),
    };
    assert_eq!(r.range, format!("{a}..{b}"));
    let base = resolve(raw, a).unwrap_or_else(|| panic!("{a:?} resolved only through range"));
    let head = resolve(raw, b).unwrap_or_else(|| panic!("{b:?} resolved only through range"));
    assert_eq!(r.base, base.to_string(), "{spec:?}: base");
    assert_eq!(r.head, head.to_string(), "{spec:?}: head");
    let tree = raw.find_commit(head).map(|c| c.tree_id().to_string()).ok();
    assert_eq!(Some(r.head_tree.clone()), tree);
    assert!(hex40(&r.base) && hex40(&r.head) && hex40(&r.head_tree));
    assert!(r.commits.len() <= MAX_COMMITS && r.files.len() <= MAX_FILES);
    if let Some(first) = r.commits.first() {
        assert_eq!(first.id, r.head, "{spec:?}: B is not listed first");
    }
    for c in &r.commits {
        assert!(hex40(&c.id));
        let id = Oid::from_str(&c.id).unwrap_or_else(|e| panic!("{e}"));
        let from_base = id == base || raw.graph_descendant_of(base, id).unwrap_or(false);
        assert!(!from_base, "{spec:?}: {} is reachable from A", c.id);
    }
    assert!(
        r.files.windows(2).all(|w| w[0].path <= w[1].path),
        "files not sorted"
    );
    if !r.truncated {
        assert_eq!(r.files_changed as usize, r.files.len());
        let added: u32 = r.files.iter().map(|f| f.added).sum();
        let removed: u32 = r.files.iter().map(|f| f.removed).sum();
        assert_eq!(
            (added, removed),
            (r.insertions, r.deletions),
            "{spec:?}: totals"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = std::str::from_utf8(data) else {
        return;
    };
    // A command-line argument: a few hundred bytes are plenty.
    if spec.len() > 300 {
        return;
    }
    REPOS.with(|(repo, raw)| check(repo, raw, spec));
});
