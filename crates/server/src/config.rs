//! Configuration, layered: built-in defaults, then the configuration file
//! (`config/changegate.toml` when present, or `--config`), then `CHANGEGATE_*` environment
//! variables, then command-line flags. An unknown key is an error that names it. Read by
//! `changegate serve` and by the tests alike; [`crate::build`] turns it into a server.

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
    /// session cookie is then marked `Secure` and pages carry `Strict-Transport-Security`.
    /// `CHANGEGATE_BEHIND_TLS=1` (or `true`, `yes`, `on`; `0`, `false`, `no`, `off`) sets it too.
    #[serde(deserialize_with = "flexible_bool")]
    pub behind_tls: bool,
    /// Reverse proxies (load balancers) whose `X-Forwarded-For` header names the client, as
    /// CIDRs or addresses. The client's address is what the IP allow-lists, the shared-account
    /// signal and the audit log see. Empty: the header is ignored. Name the balancers only (any
    /// host listed could name any client address). In the environment, a TOML array:
    /// `CHANGEGATE_TRUSTED_PROXIES='["10.0.5.10"]'`.
    pub trusted_proxies: Vec<String>,
    /// `[metrics]`: the Prometheus `/metrics` listener (off unless `listen` is set).
    #[serde(default)]
    pub metrics: crate::metrics::MetricsConfig,
    /// `[k8s]`: the Kubernetes admission webhook (issue 13).
    #[serde(default)]
    pub k8s: crate::enforce::K8sConfig,
    /// `[github]`: the GitHub App of the deployment protection rule (issue 13).
    pub github: Option<crate::enforce::GithubConfig>,
    /// `[tls]`: serve HTTPS natively with this certificate and key (issue 13).
    pub tls: Option<crate::tls::TlsConfig>,
    /// `[audit]`: signed checkpoints of the audit log (issue 16).
    #[serde(default)]
    pub audit: AuditConfig,
    /// `[server]`: header-read and idle timeouts, the bound on open connections, the shutdown
    /// deadline (issue 16).
    #[serde(default)]
    pub server: crate::conn::ServerConfig,
    /// `[backup]`: the scheduled backup of the embedded SQLite database (when `[jobs] backup`
    /// runs).
    #[serde(default)]
    pub backup: BackupConfig,
    /// `[web]`: how the web pages name things (issue 17).
    #[serde(default)]
    pub web: WebConfig,
    /// `[documents]`: who issues the printed documents (the evaluation record) and where.
    #[serde(default)]
    pub documents: DocumentsConfig,
}

/// `[documents]`: the issuing body, unit and place printed on official documents (the
/// evaluation record, biên bản). An empty value prints a dotted line to fill in by hand; names
/// of organisations are data, never code.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DocumentsConfig {
    /// The province in the place-and-date line (`Lâm Đồng`).
    pub province: String,
    /// The issuing body, over the unit in the letterhead (`CÔNG AN TỈNH LÂM ĐỒNG`).
    pub issuing_body: String,
    /// The unit that issues the record (`PHÒNG AN NINH MẠNG VÀ PHÒNG, CHỐNG TỘI PHẠM SỬ DỤNG
    /// CÔNG NGHỆ CAO`).
    pub unit: String,
    /// The unit's abbreviation in the document number, `Số: 12/BB-<unit_abbrev>` (`PA05`).
    pub unit_abbrev: String,
    /// The title of the unit's head over the signature (`TRƯỞNG PHÒNG`).
    pub head_title: String,
    /// The head's full name under the signature; empty: written by hand.
    pub head_name: String,
}

/// `[web]`: how the web pages name things.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebConfig {
    /// The display name of each environment on Vietnamese pages, by its id
    /// (`production = "Vận hành chính thức"`). An environment not named here shows the built-in
    /// name of a common id (production, staging, test, development, dr), or its id.
    pub environment_names: std::collections::BTreeMap<String, String>,
}

/// `[backup]`: where the scheduled `backup` job writes and how many copies it keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BackupConfig {
    /// The directory of the job's copies (`changegate-YYYYMMDDTHHMMSSZ.db`, mode 0600). Unset:
    /// the job does nothing. Put it on another disk than `data_dir`. Only for the embedded
    /// SQLite database: PostgreSQL is backed up with `pg_dump`.
    pub dir: Option<PathBuf>,
    /// How many of the job's copies to keep; older ones are removed after a good one is written.
    pub keep: u32,
}

impl Default for BackupConfig {
    fn default() -> Self {
        Self {
            dir: None,
            keep: 14,
        }
    }
}

/// `[audit]`: signed checkpoints of the audit log.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// The signing key signs the chain's head every this many events (and at every job slot).
    pub checkpoint_every: u32,
    /// When the log does not hold what was signed, at start: `refuse` to serve, or serve
    /// `read_only` (every write refused, said loudly in the log).
    pub on_break: changegate_app::audit::checkpoints::OnBreak,
}

impl Default for AuditConfig {
    fn default() -> Self {
        Self {
            checkpoint_every: changegate_app::audit::checkpoints::DEFAULT_EVERY as u32,
            on_break: Default::default(),
        }
    }
}

/// A boolean as people write it in the environment or a file: `true`/`false`, `1`/`0`,
/// `yes`/`no`, `on`/`off` (any case).
fn flexible_bool<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    struct V;
    impl serde::de::Visitor<'_> for V {
        type Value = bool;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a boolean: true or false, 1 or 0, yes or no, on or off")
        }
        fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<bool, E> {
            Ok(v)
        }
        fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<bool, E> {
            match v {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(E::invalid_value(serde::de::Unexpected::Unsigned(v), &self)),
            }
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<bool, E> {
            match v {
                0 => Ok(false),
                1 => Ok(true),
                _ => Err(E::invalid_value(serde::de::Unexpected::Signed(v), &self)),
            }
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<bool, E> {
            match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => Ok(true),
                "0" | "false" | "no" | "off" => Ok(false),
                _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
            }
        }
    }
    d.deserialize_any(V)
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
    /// The backup into `[backup] dir` (does nothing when it is not set).
    pub backup: String,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            review_sweep: "0 0 7 * * *".into(),
            expire_approvals: "0 */10 * * * *".into(),
            dispatch_notifications: "*/30 * * * * *".into(),
            backup: "0 30 1 * * *".into(),
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
            metrics: Default::default(),
            k8s: Default::default(),
            github: None,
            tls: None,
            audit: AuditConfig::default(),
            server: Default::default(),
            backup: BackupConfig::default(),
            web: WebConfig::default(),
            documents: DocumentsConfig::default(),
        }
    }
}

/// What the command line says about where the configuration and the database are; it wins
/// over the file and the environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Configuration file (default: `config/changegate.toml` when present).
    pub config: Option<PathBuf>,
    /// Directory of the embedded SQLite database.
    pub data_dir: Option<PathBuf>,
    /// Database URL.
    pub database_url: Option<String>,
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
pub fn load(db: &Overrides) -> anyhow::Result<Config> {
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
    if let Err(bad) = crate::web::client_ip::parse_trusted_proxies(&cfg.trusted_proxies) {
        bail!(
            "configuration ({source}): trusted_proxies: {bad:?} is neither an IP address nor a CIDR range such as 10.0.0.0/8"
        );
    }
    cfg.server
        .validate()
        .map_err(|e| anyhow::anyhow!("configuration ({source}): {e}"))?;
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
    pub fn schedule(&self) -> Result<crate::scheduler::Schedule, String> {
        use changegate_app::jobs::Job;
        let tz: chrono_tz::Tz = self.time_zone.parse().map_err(|_| {
            format!(
                "time_zone: {:?} is not a time zone name such as Asia/Ho_Chi_Minh",
                self.time_zone
            )
        })?;
        let s = crate::scheduler::Schedule {
            tz,
            jobs: vec![
                (Job::ReviewSweep, self.jobs.review_sweep.clone()),
                (Job::ExpireApprovals, self.jobs.expire_approvals.clone()),
                (
                    Job::DispatchNotifications,
                    self.jobs.dispatch_notifications.clone(),
                ),
                (Job::Backup, self.jobs.backup.clone()),
            ],
        };
        crate::scheduler::validate(&s)?;
        Ok(s)
    }

    /// The embedded SQLite database's file, or `None` when the database is PostgreSQL.
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        match &self.database_url {
            None => Some(self.data_dir.join("changegate.db")),
            Some(u) if u.starts_with("sqlite:") => {
                let rest = u.trim_start_matches("sqlite:").trim_start_matches("//");
                let path = rest.split('?').next().unwrap_or(rest);
                Some(PathBuf::from(path))
            }
            Some(_) => None,
        }
    }

    /// The settings of the scheduled backup; `[backup] dir` with a PostgreSQL database is an
    /// error that says to use pg_dump.
    pub fn backup_settings(&self) -> anyhow::Result<changegate_app::backup::Settings> {
        let source = self.sqlite_file();
        if self.backup.dir.is_some() && source.is_none() {
            bail!(
                "configuration: backup.dir is for the embedded SQLite database; {}",
                changegate_app::backup::PG_ADVICE
            );
        }
        if self.backup.keep == 0 {
            bail!("configuration: backup.keep must be at least 1");
        }
        Ok(changegate_app::backup::Settings {
            source,
            dir: self.backup.dir.clone(),
            keep: self.backup.keep,
        })
    }

    /// The file that keeps the latest signed audit checkpoint outside the database.
    pub fn audit_anchor_path(&self) -> PathBuf {
        self.data_dir.join("audit-checkpoint.json")
    }

    /// Where the signing key lives.
    pub fn signing_key_path(&self) -> PathBuf {
        self.signing_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("signing.key"))
    }

    /// Where the key of API token digests lives: `token.key` beside the signing key (replicas
    /// share it, as they share the database).
    pub fn token_key_path(&self) -> PathBuf {
        self.signing_key_path().with_file_name("token.key")
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

#[cfg(test)]
mod tests {
    use super::*;

    fn behind_tls(toml: &str) -> Result<bool, String> {
        Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(toml))
            .extract::<Config>()
            .map(|c| c.behind_tls)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn behind_tls_takes_the_usual_spellings_of_a_boolean() {
        for (v, want) in [
            ("true", true),
            ("1", true),
            ("\"1\"", true),
            ("\"yes\"", true),
            ("\"On\"", true),
            ("false", false),
            ("0", false),
            ("\"0\"", false),
            ("\"no\"", false),
            ("\"FALSE\"", false),
        ] {
            assert_eq!(behind_tls(&format!("behind_tls = {v}")), Ok(want), "{v}");
        }
        assert!(behind_tls("behind_tls = 2").is_err());
        assert!(behind_tls("behind_tls = \"maybe\"").is_err());
    }

    #[test]
    fn the_shipped_configuration_names_environments_for_the_pages() {
        let cfg = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(include_str!(
                "../../../config/changegate.toml"
            )))
            .extract::<Config>()
            .map_err(|e| e.to_string());
        let names = cfg.map(|c| c.web.environment_names);
        assert_eq!(
            names
                .as_ref()
                .ok()
                .and_then(|n| n.get("production"))
                .map(String::as_str),
            Some("Vận hành chính thức"),
            "{names:?}"
        );
        let unknown = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string("[web]\nenvironment_name = {}"))
            .extract::<Config>();
        assert!(unknown.is_err(), "an unknown key of [web] is an error");
    }
}
