//! The command line's side of the configuration: the flags that override it, and logging. The
//! configuration itself (keys, layering, validation) lives in `changegate_server::config`.

use crate::DbOpts;
pub use changegate_server::config::Config;

/// Loads the configuration for server-side commands.
pub fn load(db: &DbOpts) -> anyhow::Result<Config> {
    changegate_server::config::load(&changegate_server::config::Overrides {
        config: db.config.clone(),
        data_dir: db.data_dir.clone(),
        database_url: db.database_url.clone(),
    })
}

/// Starts logging to stderr, in colour only when stderr is a terminal (a file or the journal
/// gets plain text).
pub fn init_logging(cfg: &Config) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let _ = if cfg.log_format == "json" {
        b.json().try_init()
    } else {
        b.try_init()
    };
}
