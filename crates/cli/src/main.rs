//! `changegate`: the server (`serve`, `migrate`, `admin …`, `audit …`) and the client commands
//! that CI pipelines run (`request`, `check`). `anyhow` is used here, at the edge; every error
//! names the bad value and exits non-zero.

mod admin;
mod backup;
mod client;
mod config;
mod observe;
mod report;
mod serve;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "changegate",
    version,
    about = "Change-management gate: no change deploys until PA05 has evaluated and signed it off."
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

/// How server-side commands find their configuration and database.
#[derive(Args, Clone, Debug, Default)]
pub struct DbOpts {
    /// Configuration file (default: config/changegate.toml when present).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Directory of the embedded SQLite database (default ./data).
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL (postgres://… or sqlite://…); also DATABASE_URL.
    #[arg(long, global = true)]
    pub database_url: Option<String>,
}

#[derive(Subcommand)]
enum Cmd {
    /// Runs the server.
    Serve(serve::ServeArgs),
    /// Applies database migrations.
    Migrate {
        #[command(flatten)]
        db: DbOpts,
    },
    /// Administration on the server's database.
    Admin {
        #[command(flatten)]
        db: DbOpts,
        #[command(subcommand)]
        cmd: admin::AdminCmd,
    },
    /// The audit log.
    Audit {
        #[command(flatten)]
        db: DbOpts,
        #[command(subcommand)]
        cmd: admin::AuditCmd,
    },
    /// Files a change request (reads CHANGEGATE_URL and CHANGEGATE_TOKEN).
    Request(client::RequestArgs),
    /// Asks the gate whether content may deploy: exit 0 allowed, 1 denied, 2 could not decide.
    Check(client::CheckArgs),
    /// Reports the content running on this server (reads CHANGEGATE_URL and CHANGEGATE_TOKEN):
    /// exit 0 covered by an approval, 1 not.
    Observe(observe::ObserveArgs),
    /// Prints the reproducible digest of a deployed directory (sorted relative paths, file modes
    /// and contents), to name in a change request before deploying.
    Digest(observe::DigestArgs),
    /// Reports drafted from the data (reads CHANGEGATE_URL and CHANGEGATE_TOKEN).
    Report {
        #[command(subcommand)]
        cmd: report::ReportCmd,
    },
    /// Writes a verified copy of the (SQLite) database while the server runs.
    Backup(backup::BackupArgs),
    /// Restores a backup into an empty data directory, after verifying it.
    Restore(backup::RestoreArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    rt.block_on(async move {
        match cli.command {
            // `check` has its own exit codes: 2 for anything that is not a decision.
            Cmd::Check(a) => client::check(a).await,
            other => match run(other).await {
                Ok(code) => code,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            },
        }
    })
}

async fn run(cmd: Cmd) -> anyhow::Result<ExitCode> {
    match cmd {
        Cmd::Serve(a) => serve::serve(a).await.map(|()| ExitCode::SUCCESS),
        Cmd::Migrate { db } => {
            let cfg = config::load(&db)?;
            config::init_logging(&cfg);
            let db = changegate_store::connect(&cfg.database_url()?).await?;
            changegate_store::migrate(&db).await?;
            println!(
                "migrations applied ({})",
                changegate_store::backend_name(&db)
            );
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Admin { db, cmd } => admin::run(db, cmd).await.map(|()| ExitCode::SUCCESS),
        Cmd::Audit { db, cmd } => admin::audit(db, cmd).await,
        Cmd::Request(a) => client::request(a).await.map(|()| ExitCode::SUCCESS),
        Cmd::Check(_) => Ok(ExitCode::from(2)),
        Cmd::Observe(a) => observe::observe(a).await,
        Cmd::Digest(a) => observe::digest(a),
        Cmd::Report { cmd } => report::run(cmd).await.map(|()| ExitCode::SUCCESS),
        Cmd::Backup(a) => backup::backup(a).await.map(|()| ExitCode::SUCCESS),
        Cmd::Restore(a) => backup::restore(a).await.map(|()| ExitCode::SUCCESS),
    }
}
