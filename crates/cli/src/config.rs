//! Configuration, layered: built-in defaults, then the configuration file
//! (`config/changegate.toml` when present, or `--config`), then `CHANGEGATE_*` environment
//! variables, then command-line flags. An unknown key is an error that names it.

use crate::DbOpts;
use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The server's configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: String,
    /// Directory of the embedded SQLite database.
    pub data_dir: PathBuf,
    /// Database URL; when set, `data_dir` is not used for the database.
    pub database_url: Option<String>,
    /// A policy pack file instead of the built-in `population-db` pack.
    pub policy_pack: Option<PathBuf>,
    /// `human` or `json` logs.
    pub log_format: String,
    /// Log filter (`info`, `changegate=debug`, …).
    pub log_level: String,
    /// The ed25519 key that signs gate decisions (default `<data_dir>/signing.key`, generated
    /// at first start with mode 0600). Replicas may share one key or each have their own: every
    /// key in use is published at `/api/v1/keys`.
    pub signing_key_file: Option<PathBuf>,
    /// Time zone of the job schedule and of recurring freeze windows.
    pub time_zone: String,
    /// When the scheduled jobs run: cron expressions of 6 fields (second minute hour
    /// day-of-month month day-of-week) in `time_zone`.
    pub jobs: JobsConfig,
    /// Whether browsers reach the server over HTTPS (through a TLS-terminating proxy): the
    /// session cookie is then marked `Secure`. `CHANGEGATE_BEHIND_TLS=true` sets it too.
    pub behind_tls: bool,
    /// Reverse proxies (load balancers) whose `X-Forwarded-For` header names the client, as
    /// CIDRs or addresses. The client's address is what the IP allow-lists, the shared-account
    /// signal and the audit log see. Empty: the header is ignored. Name the balancers only (any
    /// host listed could name any client address). In the environment, a TOML array:
    /// `CHANGEGATE_TRUSTED_PROXIES='["10.0.5.10"]'`.
    pub trusted_proxies: Vec<String>,
}

/// The schedule of the jobs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    /// Re-review reminders and overdue notices, the breach clock.
    pub review_sweep: String,
    /// Expiring approvals.
    pub expire_approvals: String,
    /// Retries of webhook deliveries (the dispatcher also runs continuously).
    pub dispatch_notifications: String,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            review_sweep: "0 0 7 * * *".into(),
            expire_approvals: "0 */10 * * * *".into(),
            dispatch_notifications: "*/30 * * * * *".into(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            policy_pack: None,
            log_format: "human".into(),
            log_level: "info".into(),
            signing_key_file: None,
            time_zone: "Asia/Ho_Chi_Minh".into(),
            jobs: JobsConfig::default(),
            behind_tls: false,
            trusted_proxies: vec![],
        }
    }
}

const KEYS: [&str; 10] = [
    "listen",
    "data_dir",
    "database_url",
    "policy_pack",
    "log_format",
    "log_level",
    "signing_key_file",
    "time_zone",
    "behind_tls",
    "trusted_proxies",
];

/// Loads the configuration for server-side commands.
pub fn load(db: &DbOpts) -> anyhow::Result<Config> {
    let mut fig = Figment::from(Serialized::defaults(Config::default()));
    let default_file = Path::new("config/changegate.toml");
    let file = match &db.config {
        Some(f) if !f.exists() => bail!("configuration file {} does not exist", f.display()),
        Some(f) => Some(f.as_path()),
        None if default_file.exists() => Some(default_file),
        None => None,
    };
    if let Some(f) = file {
        fig = fig.merge(Toml::file_exact(f));
    }
    let source = file.map_or_else(
        || "defaults and environment".to_owned(),
        |f| f.display().to_string(),
    );
    fig = fig.merge(Env::prefixed("CHANGEGATE_").only(&KEYS));
    if let Ok(url) = std::env::var("DATABASE_URL") {
        fig = fig.merge(Serialized::default("database_url", url));
    }
    if let Some(d) = &db.data_dir {
        fig = fig
            .merge(Serialized::default("data_dir", d))
            .merge(Serialized::default("database_url", Option::<String>::None));
    }
    if let Some(u) = &db.database_url {
        fig = fig.merge(Serialized::default("database_url", u));
    }
    let cfg: Config = fig
        .extract()
        .map_err(|e| anyhow::anyhow!("configuration ({source}): {e}"))?;
    cfg.schedule()
        .map_err(|e| anyhow::anyhow!("configuration ({source}): {e}"))?;
    if let Err(bad) = changegate_server::web::session::parse_trusted_proxies(&cfg.trusted_proxies) {
        bail!(
            "configuration ({source}): trusted_proxies: {bad:?} is neither an IP address nor a CIDR range such as 10.0.0.0/8"
        );
    }
    if cfg.log_format != "human" && cfg.log_format != "json" {
        bail!(
            "configuration: log_format must be \"human\" or \"json\", not {:?}",
            cfg.log_format
        );
    }
    Ok(cfg)
}

impl Config {
    /// The database URL: the configured one, or SQLite in `data_dir` (created when missing).
    pub fn database_url(&self) -> anyhow::Result<String> {
        if let Some(u) = &self.database_url {
            if !(u.starts_with("postgres://")
                || u.starts_with("postgresql://")
                || u.starts_with("sqlite:"))
            {
                bail!("database URL {u:?} is neither postgres://… nor sqlite://…");
            }
            return Ok(u.clone());
        }
        std::fs::create_dir_all(&self.data_dir).with_context(|| {
            format!(
                "cannot create the data directory {}",
                self.data_dir.display()
            )
        })?;
        Ok(format!(
            "sqlite://{}?mode=rwc",
            self.data_dir.join("changegate.db").display()
        ))
    }

    /// The job schedule, validated: the time zone and each cron expression parse.
    pub fn schedule(&self) -> Result<changegate_server::scheduler::Schedule, String> {
        use changegate_app::jobs::Job;
        let tz: chrono_tz::Tz = self.time_zone.parse().map_err(|_| {
            format!(
                "time_zone: {:?} is not a time zone name such as Asia/Ho_Chi_Minh",
                self.time_zone
            )
        })?;
        let s = changegate_server::scheduler::Schedule {
            tz,
            jobs: vec![
                (Job::ReviewSweep, self.jobs.review_sweep.clone()),
                (Job::ExpireApprovals, self.jobs.expire_approvals.clone()),
                (
                    Job::DispatchNotifications,
                    self.jobs.dispatch_notifications.clone(),
                ),
            ],
        };
        changegate_server::scheduler::validate(&s)?;
        Ok(s)
    }

    /// Where the signing key lives.
    pub fn signing_key_path(&self) -> PathBuf {
        self.signing_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("signing.key"))
    }

    /// The policy pack: the configured file, or the built-in one.
    pub fn pack(&self) -> anyhow::Result<changegate_domain::PolicyPack> {
        match &self.policy_pack {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read the policy pack {}", p.display()))?;
                Ok(changegate_domain::PolicyPack::parse(
                    &p.display().to_string(),
                    &text,
                )?)
            }
            None => Ok(changegate_domain::PolicyPack::parse(
                "workflows/population-db.toml (built in)",
                changegate_app::DEFAULT_PACK,
            )?),
        }
    }
}

/// Starts logging to stderr.
pub fn init_logging(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_new(&cfg.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if cfg.log_format == "json" {
        b.json().try_init()
    } else {
        b.try_init()
    };
}
