//! Backups of the embedded SQLite database: a consistent copy while the server runs, checked
//! before it is kept, and the scheduled `backup` job with its retention.
//!
//! A backup is SQLite's `VACUUM INTO`: one read transaction, so the copy is consistent while the
//! server keeps writing (WAL readers do not block writers). It is written next to its file under
//! a temporary name, made readable by its owner only (it holds password and token digests),
//! checked (SQLite's integrity check, then the audit chain), and only then renamed into place: a
//! failed backup never leaves a file that looks like one. PostgreSQL is backed up with
//! `pg_dump`. `changegate backup` and `restore` (the CLI) use the same functions.

use crate::audit::{Verified, verify_db};
use crate::{App, AppError, AppResult};
use changegate_store::backup as store;
use changegate_store::sea_orm::DatabaseConnection;
use chrono::{DateTime, Utc};
use std::path::{Path, PathBuf};

/// A backup that could not be made or a copy that does not check: why, for a person.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackupError(pub String);

fn fail<T>(msg: impl Into<String>) -> Result<T, BackupError> {
    Err(BackupError(msg.into()))
}

/// What a checked copy holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Audit events, all verified.
    pub events: i64,
    /// Bytes.
    pub size: u64,
}

/// Settings of the scheduled backup job (`[backup]` in the configuration).
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// The SQLite file to copy; `None` when the database is PostgreSQL.
    pub source: Option<PathBuf>,
    /// The directory the job writes into; `None`: the job does nothing.
    pub dir: Option<PathBuf>,
    /// How many of the job's backups to keep (older ones are removed after a good one).
    pub keep: u32,
}

/// The advice for PostgreSQL, where these commands do not apply.
pub const PG_ADVICE: &str = "the database is PostgreSQL: back it up with pg_dump, e.g. \
`pg_dump --format=custom --file changegate.dump \"$DATABASE_URL\"`, and restore with \
`pg_restore --dbname \"$DATABASE_URL\" changegate.dump` into an empty database (see the README); \
then `changegate audit verify`";

/// The prefix and suffix of the job's files: `changegate-20261202T013000Z.db`.
const JOB_PREFIX: &str = "changegate-";
const JOB_SUFFIX: &str = ".db";

/// A connection to the SQLite file `path`, which must exist (never creates one).
async fn open_sqlite(path: &Path) -> Result<DatabaseConnection, BackupError> {
    if !path.is_file() {
        return fail(format!("there is no database at {}", path.display()));
    }
    changegate_store::connect(&format!("sqlite://{}?mode=rw", path.display()))
        .await
        .map_err(|e| BackupError(format!("cannot open {}: {e}", path.display())))
}

/// Checks the SQLite file at `path`: SQLite's own integrity check (a truncated or damaged file
/// fails it), then the audit chain, naming the first bad event.
pub async fn check_copy(path: &Path) -> Result<Checked, BackupError> {
    let size = std::fs::metadata(path)
        .map_err(|e| BackupError(format!("cannot read {}: {e}", path.display())))?
        .len();
    let mut head = [0u8; 16];
    {
        use std::io::Read;
        let mut f = std::fs::File::open(path)
            .map_err(|e| BackupError(format!("cannot read {}: {e}", path.display())))?;
        if f.read_exact(&mut head).is_err() || &head != b"SQLite format 3\0" {
            return fail(format!(
                "{} is not a changegate backup (not an SQLite database)",
                path.display()
            ));
        }
    }
    let db = open_sqlite(path)
        .await
        .map_err(|e| BackupError(format!("the file is damaged or truncated ({e})")))?;
    let verdict = async {
        let check = store::integrity_check(&db)
            .await
            .map_err(|e| BackupError(format!("the file is damaged or truncated: {e}")))?;
        let problems: Vec<String> = check
            .messages
            .into_iter()
            .filter(|s| s != "ok")
            .take(3)
            .collect();
        if !problems.is_empty() || check.rows == 0 {
            return fail(format!(
                "the file is damaged or truncated (SQLite integrity check: {})",
                problems.join("; ")
            ));
        }
        match verify_db(&db)
            .await
            .map_err(|e| BackupError(format!("cannot read its audit log: {e}")))?
        {
            Verified::Intact(events) => Ok(Checked { events, size }),
            Verified::Broken(b) => fail(format!("its audit log does not verify: {b}")),
        }
    }
    .await;
    let _ = db.close().await;
    verdict
}

/// A temporary name next to `file`.
pub fn partial(file: &Path) -> PathBuf {
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "backup".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    file.with_file_name(format!(".{name}.partial-{}-{nanos}", std::process::id()))
}

/// Removes the journal files SQLite may leave beside `p`, and `p` itself when `itself`.
pub fn remove_db_files(p: &Path, itself: bool) {
    let own = if itself { &[""][..] } else { &[][..] };
    for suffix in own.iter().chain(["-wal", "-shm", "-journal"].iter()) {
        let mut s = p.as_os_str().to_owned();
        s.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(s));
    }
}

/// Makes `p` readable and writable by its owner only.
fn owner_only(p: &Path) -> Result<(), BackupError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o600))
            .map_err(|e| BackupError(format!("cannot restrict {}: {e}", p.display())))?;
    }
    Ok(())
}

/// Writes a checked copy of the SQLite database `src` to `to` (replacing it only when `force`).
pub async fn backup_sqlite(src: &Path, to: &Path, force: bool) -> Result<Checked, BackupError> {
    if to.exists() && !force {
        return fail(format!(
            "{} exists; choose another file or add --force to replace it",
            to.display()
        ));
    }
    if to.is_dir() {
        return fail(format!("{} is a directory", to.display()));
    }
    let tmp = partial(to);
    let db = open_sqlite(src).await?;
    let made = store::vacuum_into(&db, &tmp)
        .await
        .map_err(|e| BackupError(format!("cannot write {}: {e}", tmp.display())));
    let _ = db.close().await;
    if let Err(e) = made.and_then(|_| owner_only(&tmp)) {
        remove_db_files(&tmp, true);
        return Err(e);
    }
    let checked = match check_copy(&tmp).await {
        Ok(c) => c,
        Err(e) => {
            remove_db_files(&tmp, true);
            return fail(format!("the copy did not verify; nothing was written: {e}"));
        }
    };
    remove_db_files(&tmp, false);
    if let Err(e) = std::fs::rename(&tmp, to) {
        remove_db_files(&tmp, true);
        return fail(format!("cannot write {}: {e}", to.display()));
    }
    Ok(checked)
}

/// The job's file for the slot `at`.
pub fn job_file(dir: &Path, at: DateTime<Utc>) -> PathBuf {
    dir.join(format!(
        "{JOB_PREFIX}{}{JOB_SUFFIX}",
        at.format("%Y%m%dT%H%M%SZ")
    ))
}

/// Whether `name` is one of the job's files (`changegate-YYYYMMDDTHHMMSSZ.db`). Nothing else in
/// the directory is ever removed.
fn is_job_file(name: &str) -> bool {
    name.strip_prefix(JOB_PREFIX)
        .and_then(|r| r.strip_suffix(JOB_SUFFIX))
        .is_some_and(|stamp| {
            stamp.len() == 16
                && chrono::NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").is_ok()
        })
}

/// Removes the job's files beyond the newest `keep` (their names sort by time). Returns how
/// many were removed.
pub fn prune(dir: &Path, keep: u32) -> Result<usize, BackupError> {
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| BackupError(format!("cannot read {}: {e}", dir.display())))?
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| is_job_file(n))
        .collect();
    files.sort();
    let excess = files.len().saturating_sub(keep.max(1) as usize);
    for name in &files[..excess] {
        std::fs::remove_file(dir.join(name))
            .map_err(|e| BackupError(format!("cannot remove the old backup {name}: {e}")))?;
    }
    Ok(excess)
}

impl App {
    /// The scheduled backup: a checked copy into `[backup] dir`, then the older ones beyond
    /// `keep` removed. A failure is audited and sent through the outbox (`backup.failed`), and
    /// the job run records it.
    pub async fn scheduled_backup(&self, slot: DateTime<Utc>) -> AppResult<String> {
        let Some(dir) = self.backup.dir.clone() else {
            return Ok("off ([backup] dir is not set)".into());
        };
        let file = job_file(&dir, slot);
        let made = async {
            let Some(src) = self.backup.source.clone() else {
                return fail(PG_ADVICE);
            };
            std::fs::create_dir_all(&dir)
                .map_err(|e| BackupError(format!("cannot create {}: {e}", dir.display())))?;
            let checked = backup_sqlite(&src, &file, false).await?;
            let removed = prune(&dir, self.backup.keep)?;
            Ok((checked, removed))
        }
        .await;
        match made {
            Ok((c, removed)) => Ok(format!(
                "{}: {} bytes, {} audit events verified; {removed} older backup(s) removed",
                file.display(),
                c.size,
                c.events
            )),
            Err(e) => {
                let data = serde_json::json!({
                    "file": file.display().to_string(),
                    "error": e.to_string(),
                    "at": slot,
                });
                let tx = self.begin().await?;
                tx.notify("backup.failed", data.clone()).await?;
                tx.audit(crate::event(
                    None,
                    "backup.failed",
                    "backup",
                    file.display().to_string(),
                    None,
                    None,
                    Some(data),
                ))
                .await?;
                tx.commit().await?;
                Err(AppError::Internal(format!("backup failed: {e}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_jobs_own_files_are_pruned_oldest_first() {
        let dir = tempfile::tempdir().unwrap();
        let at = |h| {
            DateTime::parse_from_rfc3339(&format!("2026-12-0{h}T01:30:00Z"))
                .unwrap()
                .with_timezone(&Utc)
        };
        for d in 1..=5 {
            std::fs::write(job_file(dir.path(), at(d)), b"x").unwrap();
        }
        for other in ["notes.txt", "changegate-latest.db", "changegate-2026.db"] {
            std::fs::write(dir.path().join(other), b"keep me").unwrap();
        }
        assert_eq!(prune(dir.path(), 3).unwrap(), 2);
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                "changegate-2026.db",
                "changegate-20261203T013000Z.db",
                "changegate-20261204T013000Z.db",
                "changegate-20261205T013000Z.db",
                "changegate-latest.db",
                "notes.txt"
            ]
        );
        // keep = 0 is read as 1: the newest good backup is never removed.
        assert_eq!(prune(dir.path(), 0).unwrap(), 2);
        assert!(job_file(dir.path(), at(5)).exists());
    }
}
