//! Git facts for changegate, read with git2 (libgit2) from a local repository.
//!
//! This crate owns what changegate learns from git: the commit and tree ids of
//! HEAD, whether the working tree holds uncommitted changes to tracked files,
//! and the facts of a range `A..B` (its commits, and the diffstat of the change
//! from the merge base of `A` and `B` to `B`).
//!
//! It must not touch the network (git2 is built without its HTTPS and SSH
//! transports) and must not write to the repository: no fetch, no index
//! refresh, no ref or config update. It knows nothing of the gate's rules.
//!
//! The API is synchronous; async callers run it in `spawn_blocking`.
//! Errors are a `thiserror` enum whose variants name the ref or path at fault.

use std::path::Path;

use git2::{
    Commit, Delta, DiffOptions, ErrorCode, Oid, Patch, Repository, Sort, Status, StatusOptions,
};
use serde::{Deserialize, Serialize};

/// At most this many commits are listed in [`RangeFacts::commits`].
pub const MAX_COMMITS: usize = 500;
/// At most this many files are listed in [`RangeFacts::files`].
pub const MAX_FILES: usize = 2000;

/// Why git facts could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    /// Neither the directory nor any parent holds a git repository.
    #[error("{path} is not in a git repository")]
    NotARepository { path: String },
    /// A revision that does not resolve to a commit.
    #[error("unknown revision '{name}'")]
    UnknownRef { name: String },
    /// A shallow clone that lacks the base of the range (or the history down to it).
    #[error(
        "the base '{name}' is not in this shallow clone: fetch the full history \
         (`git fetch --unshallow`, or `fetch-depth: 0` with actions/checkout)"
    )]
    MissingBase { name: String },
    /// `range(None)` on a branch with no upstream configured.
    #[error("branch '{branch}' has no upstream branch: name the range with --range A..B")]
    NoUpstream { branch: String },
    /// A range spec that is not `A..B` or `A..`.
    #[error("'{spec}' is not a range of the form A..B (or A.. for A..HEAD)")]
    BadRange { spec: String },
    /// `range(None)` while HEAD is detached, so there is no branch and no upstream.
    #[error("HEAD is detached, so it has no upstream: name the range with --range A..B")]
    DetachedHead,
    /// Any other failure of git, with what was being done.
    #[error("git: {0}")]
    Git(String),
}

/// HEAD's commit and tree, each 40 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub commit: String,
    pub tree: String,
}

/// The facts of a range `A..B`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeFacts {
    /// The range as resolved, e.g. `main..feature` or `origin/main..HEAD`.
    pub range: String,
    /// Commit id of `A`.
    pub base: String,
    /// Commit id of `B`.
    pub head: String,
    /// Tree id of `B`.
    pub head_tree: String,
    /// Commits reachable from `B` and not from `A`, `B` first (like `git log A..B`),
    /// at most [`MAX_COMMITS`].
    pub commits: Vec<CommitInfo>,
    /// True when `commits` or `files` was cut at its cap.
    pub truncated: bool,
    /// Per-file diffstat of tree(merge-base(A, B)) → tree(B), sorted by path,
    /// at most [`MAX_FILES`]. Renames are not detected: a rename is a deletion and an addition.
    pub files: Vec<FileStat>,
    /// Totals over the whole diff, including files past the cap.
    pub files_changed: u32,
    pub insertions: u32,
    pub deletions: u32,
}

/// One commit of a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitInfo {
    /// Commit id, 40 lowercase hex digits.
    pub id: String,
    /// First paragraph of the message, on one line.
    pub summary: String,
    /// `Name <email>` of the author.
    pub author: String,
    /// Author time, unix seconds.
    pub time: i64,
}

/// Lines added and removed in one file. Binary files count no lines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileStat {
    pub path: String,
    pub added: u32,
    pub removed: u32,
    pub binary: bool,
}

/// A local git repository, opened read-only in intent.
pub struct Repo {
    repo: Repository,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo")
            .field("path", &self.repo.path())
            .finish()
    }
}

impl Repo {
    /// Opens the repository containing `dir` (discover upwards).
    pub fn open(dir: &Path) -> Result<Repo, GitError> {
        match Repository::discover(dir) {
            Ok(repo) => Ok(Repo { repo }),
            Err(e) if e.code() == ErrorCode::NotFound => Err(GitError::NotARepository {
                path: dir.display().to_string(),
            }),
            Err(e) => Err(git(
                &format!("opening the repository at {}", dir.display()),
                &e,
            )),
        }
    }

    /// HEAD's commit id and tree id (40 lowercase hex each).
    pub fn head(&self) -> Result<Head, GitError> {
        let commit = self.resolve_commit("HEAD")?;
        Ok(Head {
            commit: commit.id().to_string(),
            tree: commit.tree_id().to_string(),
        })
    }

    /// Tracked files with uncommitted changes (staged or in the working tree), sorted; untracked
    /// files are not counted (the gate judges committed content). Empty = clean.
    /// A bare repository has no working tree and is always clean.
    pub fn uncommitted_changes(&self) -> Result<Vec<String>, GitError> {
        if self.repo.is_bare() {
            return Ok(Vec::new());
        }
        let mut opts = StatusOptions::new();
        opts.include_untracked(false)
            .include_ignored(false)
            .include_unmodified(false);
        let statuses = self
            .repo
            .statuses(Some(&mut opts))
            .map_err(|e| git("reading the status", &e))?;
        let changed = Status::INDEX_NEW
            | Status::INDEX_MODIFIED
            | Status::INDEX_DELETED
            | Status::INDEX_RENAMED
            | Status::INDEX_TYPECHANGE
            | Status::WT_MODIFIED
            | Status::WT_DELETED
            | Status::WT_RENAMED
            | Status::WT_TYPECHANGE
            | Status::CONFLICTED;
        let mut paths: Vec<String> = statuses
            .iter()
            .filter(|entry| entry.status().intersects(changed))
            .map(|entry| String::from_utf8_lossy(entry.path_bytes()).into_owned())
            .collect();
        paths.sort();
        paths.dedup();
        Ok(paths)
    }

    /// Facts of a range "A..B" (B defaults to HEAD when the spec is "A.."), or, with None, of
    /// the current branch's upstream..HEAD.
    pub fn range(&self, spec: Option<&str>) -> Result<RangeFacts, GitError> {
        let (base_name, head_name) = match spec {
            Some(spec) => parse_range(spec)?,
            None => (self.upstream_name()?, "HEAD".to_owned()),
        };
        let head = self.resolve_commit(&head_name)?;
        let base = match self.resolve_commit(&base_name) {
            Err(GitError::UnknownRef { name }) if self.repo.is_shallow() => {
                return Err(GitError::MissingBase { name });
            }
            other => other?,
        };
        // In a shallow clone, history cut short shows up as a missing object or merge base.
        let missing = |e: git2::Error, doing: &str| {
            if self.repo.is_shallow() && e.code() == ErrorCode::NotFound {
                GitError::MissingBase {
                    name: base_name.clone(),
                }
            } else {
                git(doing, &e)
            }
        };

        let (commits, commits_cut) = self
            .commits_between(base.id(), head.id())
            .map_err(|e| missing(e, &format!("walking {base_name}..{head_name}")))?;

        let merge_base = self.repo.merge_base(base.id(), head.id()).map_err(|e| {
            if e.code() == ErrorCode::NotFound && !self.repo.is_shallow() {
                GitError::Git(format!(
                    "'{base_name}' and '{head_name}' have no common history"
                ))
            } else {
                missing(
                    e,
                    &format!("finding the merge base of {base_name} and {head_name}"),
                )
            }
        })?;
        let diff = self
            .diffstat(merge_base, &head)
            .map_err(|e| missing(e, &format!("diffing {base_name}...{head_name}")))?;

        Ok(RangeFacts {
            range: format!("{base_name}..{head_name}"),
            base: base.id().to_string(),
            head: head.id().to_string(),
            head_tree: head.tree_id().to_string(),
            commits,
            truncated: commits_cut || diff.cut,
            files: diff.files,
            files_changed: diff.files_changed,
            insertions: diff.insertions,
            deletions: diff.deletions,
        })
    }

    /// The short name of the current branch's upstream, e.g. `origin/main`.
    fn upstream_name(&self) -> Result<String, GitError> {
        let head_ref = match self.repo.head() {
            Ok(r) => r,
            Err(e) if e.code() == ErrorCode::UnbornBranch => {
                return Err(GitError::UnknownRef {
                    name: "HEAD".to_owned(),
                });
            }
            Err(e) => return Err(git("reading HEAD", &e)),
        };
        if !head_ref.is_branch() {
            return Err(GitError::DetachedHead);
        }
        let refname = head_ref
            .name()
            .map_err(|_| GitError::Git("HEAD's branch name is not UTF-8".to_owned()))?;
        let branch = refname
            .strip_prefix("refs/heads/")
            .unwrap_or(refname)
            .to_owned();
        let upstream = match self.repo.branch_upstream_name(refname) {
            Ok(buf) => buf,
            Err(e) if e.code() == ErrorCode::NotFound => {
                return Err(GitError::NoUpstream { branch });
            }
            Err(e) => {
                return Err(git(
                    &format!("reading the upstream of branch '{branch}'"),
                    &e,
                ));
            }
        };
        let upstream = upstream.as_str().map_err(|_| {
            GitError::Git(format!("the upstream of branch '{branch}' is not UTF-8"))
        })?;
        let short = upstream
            .strip_prefix("refs/remotes/")
            .or_else(|| upstream.strip_prefix("refs/heads/"))
            .unwrap_or(upstream);
        Ok(short.to_owned())
    }

    /// Resolves a revision to a commit; a revision that does not resolve is `UnknownRef`.
    fn resolve_commit(&self, name: &str) -> Result<Commit<'_>, GitError> {
        let object = match self.repo.revparse_single(name) {
            Ok(object) => object,
            Err(e)
                if matches!(
                    e.code(),
                    ErrorCode::NotFound
                        | ErrorCode::UnbornBranch
                        | ErrorCode::InvalidSpec
                        | ErrorCode::Ambiguous
                ) =>
            {
                return Err(GitError::UnknownRef {
                    name: name.to_owned(),
                });
            }
            Err(e) => return Err(git(&format!("resolving '{name}'"), &e)),
        };
        object
            .peel_to_commit()
            .map_err(|_| GitError::Git(format!("'{name}' does not name a commit")))
    }

    /// Commits reachable from `head` and not from `base`, newest first, capped.
    fn commits_between(
        &self,
        base: Oid,
        head: Oid,
    ) -> Result<(Vec<CommitInfo>, bool), git2::Error> {
        let mut walk = self.repo.revwalk()?;
        walk.set_sorting(Sort::TOPOLOGICAL | Sort::TIME)?;
        walk.push(head)?;
        walk.hide(base)?;
        let mut commits = Vec::new();
        for id in walk {
            let id = id?;
            if commits.len() == MAX_COMMITS {
                return Ok((commits, true));
            }
            let commit = self.repo.find_commit(id)?;
            let author = commit.author();
            commits.push(CommitInfo {
                id: id.to_string(),
                summary: commit.summary_bytes().map(lossy).unwrap_or_default(),
                author: format!(
                    "{} <{}>",
                    String::from_utf8_lossy(author.name_bytes()),
                    String::from_utf8_lossy(author.email_bytes())
                ),
                time: author.when().seconds(),
            });
        }
        Ok((commits, false))
    }

    /// Diffstat of tree(`from`) → tree(`to`).
    fn diffstat(&self, from: Oid, to: &Commit<'_>) -> Result<DiffStat, git2::Error> {
        let old_tree = self.repo.find_commit(from)?.tree()?;
        let new_tree = to.tree()?;
        let mut opts = DiffOptions::new();
        let diff =
            self.repo
                .diff_tree_to_tree(Some(&old_tree), Some(&new_tree), Some(&mut opts))?;
        let stats = diff.stats()?;
        let mut files = Vec::new();
        for idx in 0..diff.deltas().len().min(MAX_FILES) {
            let Some(patch) = Patch::from_diff(&diff, idx)? else {
                continue;
            };
            let delta = patch.delta();
            let file = if delta.status() == Delta::Deleted {
                delta.old_file()
            } else {
                delta.new_file()
            };
            let path = file.path_bytes().map(lossy).unwrap_or_default();
            let binary = delta.flags().is_binary();
            let (_, added, removed) = patch.line_stats()?;
            files.push(FileStat {
                path,
                added: to_u32(added),
                removed: to_u32(removed),
                binary,
            });
        }
        files.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(DiffStat {
            cut: diff.deltas().len() > MAX_FILES,
            files,
            files_changed: to_u32(stats.files_changed()),
            insertions: to_u32(stats.insertions()),
            deletions: to_u32(stats.deletions()),
        })
    }
}

struct DiffStat {
    files: Vec<FileStat>,
    cut: bool,
    files_changed: u32,
    insertions: u32,
    deletions: u32,
}

/// Splits `A..B` (or `A..`, meaning `A..HEAD`) into its two revisions.
fn parse_range(spec: &str) -> Result<(String, String), GitError> {
    let bad = || GitError::BadRange {
        spec: spec.to_owned(),
    };
    let (base, head) = spec.split_once("..").ok_or_else(bad)?;
    // `A...B` (symmetric difference) and anything with a second `..` are not ranges we take.
    if base.is_empty() || head.starts_with('.') || head.contains("..") {
        return Err(bad());
    }
    let head = if head.is_empty() { "HEAD" } else { head };
    Ok((base.to_owned(), head.to_owned()))
}

fn git(doing: &str, e: &git2::Error) -> GitError {
    GitError::Git(format!("{doing}: {}", e.message()))
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests;
