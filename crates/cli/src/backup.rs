//! `changegate backup --to FILE` and `changegate restore --from FILE` (embedded SQLite).
//!
//! A backup is SQLite's `VACUUM INTO`: one read transaction, so the copy is consistent while the
//! server keeps writing (WAL readers do not block writers). It is written next to FILE under a
//! temporary name, its audit chain verified, and only then renamed to FILE: a failed backup
//! never leaves a file that looks like one. A restore checks the copy the same way (SQLite's
//! integrity check, then the audit chain) before it puts it in place, in an empty data
//! directory only. PostgreSQL is backed up with `pg_dump` (see the README); both commands say so.

use crate::DbOpts;
use crate::config;
use anyhow::{Context, bail};
use changegate_app::audit::{Verified, verify_db};
use changegate_store::sea_orm::{ConnectionTrait, DbBackend, Statement};
use clap::Args;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// `changegate backup`.
#[derive(Args)]
pub struct BackupArgs {
    #[command(flatten)]
    db: DbOpts,
    /// The file to write.
    #[arg(long)]
    to: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    force: bool,
}

/// `changegate restore`.
#[derive(Args)]
pub struct RestoreArgs {
    #[command(flatten)]
    db: DbOpts,
    /// A file written by `changegate backup`.
    #[arg(long)]
    from: PathBuf,
}

const PG_ADVICE: &str = "the database is PostgreSQL: back it up with pg_dump, e.g. \
`pg_dump --format=custom --file changegate.dump \"$DATABASE_URL\"`, and restore with \
`pg_restore --dbname \"$DATABASE_URL\" changegate.dump` into an empty database (see the README); \
then `changegate audit verify`";

/// What a checked copy holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// Audit events, all verified.
    pub events: i64,
    /// Bytes.
    pub size: u64,
}

/// The SQLite file of the configuration, or the PostgreSQL advice.
fn sqlite_file(cfg: &config::Config) -> anyhow::Result<PathBuf> {
    match &cfg.database_url {
        None => Ok(cfg.data_dir.join("changegate.db")),
        Some(u) if u.starts_with("sqlite:") => {
            let rest = u.trim_start_matches("sqlite:").trim_start_matches("//");
            let path = rest.split('?').next().unwrap_or(rest);
            Ok(PathBuf::from(path))
        }
        Some(_) => bail!("{PG_ADVICE}"),
    }
}

/// A connection to the SQLite file `path`, which must exist (never creates one).
async fn open_sqlite(path: &Path) -> anyhow::Result<changegate_store::sea_orm::DatabaseConnection> {
    if !path.is_file() {
        bail!("there is no database at {}", path.display());
    }
    changegate_store::connect(&format!("sqlite://{}?mode=rw", path.display()))
        .await
        .with_context(|| format!("cannot open {}", path.display()))
}

/// Checks the SQLite file at `path`: SQLite's own integrity check (a truncated or damaged file
/// fails it), then the audit chain, naming the first bad event.
pub async fn check_copy(path: &Path) -> anyhow::Result<Checked> {
    let size = std::fs::metadata(path)
        .with_context(|| format!("cannot read {}", path.display()))?
        .len();
    let mut head = [0u8; 16];
    {
        use std::io::Read;
        let mut f =
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        if f.read_exact(&mut head).is_err() || &head != b"SQLite format 3\0" {
            bail!(
                "{} is not a changegate backup (not an SQLite database)",
                path.display()
            );
        }
    }
    let db = open_sqlite(path)
        .await
        .map_err(|e| anyhow::anyhow!("the file is damaged or truncated ({})", e.root_cause()))?;
    let verdict = async {
        let rows = db
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "PRAGMA integrity_check",
            ))
            .await
            .map_err(|e| anyhow::anyhow!("the file is damaged or truncated: {e}"))?;
        let problems: Vec<String> = rows
            .iter()
            .filter_map(|r| r.try_get_by_index::<String>(0).ok())
            .filter(|s| s != "ok")
            .take(3)
            .collect();
        if !problems.is_empty() || rows.is_empty() {
            bail!(
                "the file is damaged or truncated (SQLite integrity check: {})",
                problems.join("; ")
            );
        }
        match verify_db(&db)
            .await
            .map_err(|e| anyhow::anyhow!("cannot read its audit log: {e}"))?
        {
            Verified::Intact(events) => Ok(Checked { events, size }),
            Verified::Broken(b) => bail!("its audit log does not verify: {b}"),
        }
    }
    .await;
    let _ = db.close().await;
    verdict
}

/// A temporary name next to `file`.
fn partial(file: &Path) -> PathBuf {
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
fn remove_db_files(p: &Path, itself: bool) {
    let own = if itself { &[""][..] } else { &[][..] };
    for suffix in own.iter().chain(["-wal", "-shm", "-journal"].iter()) {
        let mut s = p.as_os_str().to_owned();
        s.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(s));
    }
}

/// Writes a verified copy of the SQLite database `src` to `to` (replacing it only when `force`).
pub async fn backup_sqlite(src: &Path, to: &Path, force: bool) -> anyhow::Result<Checked> {
    if to.exists() && !force {
        bail!(
            "{} exists; choose another file or add --force to replace it",
            to.display()
        );
    }
    if to.is_dir() {
        bail!("{} is a directory", to.display());
    }
    let tmp = partial(to);
    let db = open_sqlite(src).await?;
    let path = tmp.to_string_lossy().replace('\'', "''");
    let made = db
        .execute_unprepared(&format!("VACUUM INTO '{path}'"))
        .await
        .with_context(|| format!("cannot write {}", tmp.display()));
    let _ = db.close().await;
    if let Err(e) = made {
        remove_db_files(&tmp, true);
        return Err(e);
    }
    let checked = match check_copy(&tmp).await {
        Ok(c) => c,
        Err(e) => {
            remove_db_files(&tmp, true);
            return Err(e.context("the copy did not verify; nothing was written"));
        }
    };
    remove_db_files(&tmp, false);
    if let Err(e) = std::fs::rename(&tmp, to) {
        remove_db_files(&tmp, true);
        return Err(e).with_context(|| format!("cannot write {}", to.display()));
    }
    Ok(checked)
}

/// `changegate backup --to FILE [--force]`.
pub async fn backup(a: BackupArgs) -> anyhow::Result<()> {
    let cfg = config::load(&a.db)?;
    let src = sqlite_file(&cfg)?;
    let started = Instant::now();
    let c = backup_sqlite(&src, &a.to, a.force).await?;
    println!(
        "backup written to {}: {} bytes ({:.1} MiB), {} audit events, hash chain verified, in {} ms",
        a.to.display(),
        c.size,
        c.size as f64 / 1_048_576.0,
        c.events,
        started.elapsed().as_millis()
    );
    Ok(())
}

/// `changegate restore --from FILE`: into an empty data directory.
pub async fn restore(a: RestoreArgs) -> anyhow::Result<()> {
    let cfg = config::load(&a.db)?;
    if cfg.database_url.is_some() {
        // A URL names a database elsewhere: restoring goes into the data directory only.
        sqlite_file(&cfg)?;
        bail!("restore writes into the data directory (--data-dir); a database URL is configured");
    }
    let dir = &cfg.data_dir;
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir)
            .with_context(|| format!("cannot read the data directory {}", dir.display()))?;
        if entries.next().is_some() {
            bail!(
                "the data directory {} is not empty; restore into an empty one (move the current one aside first)",
                dir.display()
            );
        }
    } else {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    }
    if !a.from.is_file() {
        bail!("there is no backup at {}", a.from.display());
    }
    let started = Instant::now();
    let target = dir.join("changegate.db");
    let tmp = partial(&target);
    std::fs::copy(&a.from, &tmp)
        .with_context(|| format!("cannot copy {} to {}", a.from.display(), tmp.display()))?;
    // The copy is checked, not the source: the source is never written.
    let c = match check_copy(&tmp).await {
        Ok(c) => c,
        Err(e) => {
            remove_db_files(&tmp, true);
            return Err(e.context(format!(
                "{} refused; nothing was restored",
                a.from.display()
            )));
        }
    };
    remove_db_files(&tmp, false);
    std::fs::rename(&tmp, &target).with_context(|| format!("cannot write {}", target.display()))?;
    println!(
        "restored {} into {}: {} audit events, hash chain verified, in {} ms; start the server with --data-dir {} (it applies any newer migrations)",
        a.from.display(),
        target.display(),
        c.events,
        started.elapsed().as_millis(),
        dir.display()
    );
    Ok(())
}
