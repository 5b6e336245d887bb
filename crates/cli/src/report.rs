//! `changegate report annual`: the annual report on Form 08 (Decree 331/2026), fetched from the
//! server like the other client commands (reads `CHANGEGATE_URL` and `CHANGEGATE_TOKEN`), written
//! to stdout or a file.

use crate::client::Conn;
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

/// `changegate report …`.
#[derive(Subcommand)]
pub enum ReportCmd {
    /// The annual report on Form 08 (data from 15-12 of the previous year to 14-12).
    Annual(AnnualArgs),
}

/// A format of the report.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Format {
    /// JSON.
    Json,
    /// CSV of the systems table (UTF-8 with a BOM).
    Csv,
    /// The printable document.
    Html,
}

/// `changegate report annual`.
#[derive(Args)]
pub struct AnnualArgs {
    #[command(flatten)]
    conn: Conn,
    /// Report year.
    #[arg(long)]
    year: i32,
    /// Owner organisation code (default: the whole province; an owner gets its own).
    #[arg(long)]
    org: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value = "json")]
    format: Format,
    /// Write to this file instead of stdout.
    #[arg(long, short)]
    output: Option<PathBuf>,
}

/// Runs a `report` command.
pub async fn run(cmd: ReportCmd) -> anyhow::Result<()> {
    match cmd {
        ReportCmd::Annual(a) => {
            let format = match a.format {
                Format::Json => "json",
                Format::Csv => "csv",
                Format::Html => "html",
            };
            let bytes = a
                .conn
                .client()?
                .annual_report_as(a.year, a.org.as_deref(), format)
                .await?;
            match &a.output {
                Some(path) => std::fs::write(path, &bytes)
                    .with_context(|| format!("cannot write {}", path.display()))?,
                None => std::io::stdout()
                    .write_all(&bytes)
                    .context("cannot write the report")?,
            }
            Ok(())
        }
    }
}
