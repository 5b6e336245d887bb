//! `changegate backup --to FILE` and `changegate restore --from FILE` (embedded SQLite).
//!
//! The copy and its checks are `changegate_app::backup`'s (the scheduled `backup` job uses the
//! same). A restore checks the copy (SQLite's integrity check, then the audit chain) before it
//! puts it in place, in an empty data directory only. PostgreSQL is backed up with `pg_dump`
//! (see the README); both commands say so.

use crate::DbOpts;
use crate::config;
use anyhow::{Context, bail};
use changegate_app::backup::{PG_ADVICE, backup_sqlite, check_copy, partial, remove_db_files};
use clap::Args;
use std::path::PathBuf;
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

/// The SQLite file of the configuration, or the PostgreSQL advice.
fn sqlite_file(cfg: &config::Config) -> anyhow::Result<PathBuf> {
    cfg.sqlite_file()
        .ok_or_else(|| anyhow::anyhow!("{PG_ADVICE}"))
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
            return Err(anyhow::Error::new(e).context(format!(
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
