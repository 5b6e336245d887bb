//! Configuration of the enforcement points beyond the pipeline file (issue 13): the `[k8s]` and
//! `[github]` sections of the configuration, checked and turned into the app's settings at
//! start-up. A bad value stops the server with a message naming it.

use anyhow::{Context, bail};
use changegate_app::enforce::github::{
    API_TIMEOUT, ApiFuture, ApiMethod, ApiRequest, ApiResponse, GithubHttp, GithubSettings,
};
use changegate_app::enforce::{Enforcement, K8sSettings, Target, Unmapped};
use changegate_domain::{Code, EnvName};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The app's calls to GitHub's API over reqwest: a timeout of [`API_TIMEOUT`], the user agent
/// `changegate`.
struct ReqwestGithub(reqwest::Client);

impl GithubHttp for ReqwestGithub {
    fn send(&self, req: ApiRequest) -> ApiFuture<'_> {
        Box::pin(async move {
            let mut b = match req.method {
                ApiMethod::Get => self.0.get(&req.url),
                ApiMethod::Post => self.0.post(&req.url),
            }
            .bearer_auth(&req.bearer);
            for (k, v) in req.headers {
                b = b.header(k, v);
            }
            if let Some(json) = &req.json {
                b = b.json(json);
            }
            let r = b.send().await.map_err(|e| e.to_string())?;
            let status = r.status().as_u16();
            let body = r.bytes().await.map_err(|e| e.to_string())?.to_vec();
            Ok(ApiResponse { status, body })
        })
    }
}

/// A system and environment, as written in the configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct TargetConfig {
    /// System code.
    pub system: String,
    /// Environment of that system.
    pub env: String,
}

/// `[k8s]`: the Kubernetes validating admission webhook (`POST /k8s/validate`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct K8sConfig {
    /// An object whose labels name no system and whose namespace is not mapped: `deny` (the
    /// default) or `allow`.
    pub unmapped: UnmappedConfig,
    /// Namespace name → system and environment, for objects without `changegate.io/system` and
    /// `changegate.io/env` labels.
    pub namespaces: BTreeMap<String, TargetConfig>,
}

/// What to do with an unmapped object.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum UnmappedConfig {
    /// Refuse it.
    #[default]
    Deny,
    /// Let it through with a warning.
    Allow,
}

/// `[github]`: the GitHub App of the custom deployment protection rule. Absent: the webhook
/// answers 404.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GithubConfig {
    /// The GitHub App's id.
    pub app_id: String,
    /// The app's private key (PEM), a file readable by the server's account only (mode 0600).
    pub private_key_file: PathBuf,
    /// A file holding the webhook secret set in the app's settings (mode 0600).
    pub webhook_secret_file: PathBuf,
    /// `https://api.github.com` (default) or a GitHub Enterprise Server's `https://HOST/api/v3`.
    #[serde(default = "default_api_url")]
    pub api_url: String,
    /// Which repository and GitHub environment deploy to which system and environment.
    #[serde(default)]
    pub environments: Vec<GithubEnvironment>,
}

fn default_api_url() -> String {
    "https://api.github.com".into()
}

/// One `[[github.environments]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GithubEnvironment {
    /// `owner/name`.
    pub repository: String,
    /// The GitHub environment's name.
    pub environment: String,
    /// System code.
    pub system: String,
    /// Environment of that system.
    pub env: String,
}

fn target(what: &str, t: &TargetConfig) -> anyhow::Result<Target> {
    Ok(Target {
        system: Code::parse(&t.system).map_err(|e| anyhow::anyhow!("{what}.system: {e}"))?,
        env: EnvName::parse(&t.env).map_err(|e| anyhow::anyhow!("{what}.env: {e}"))?,
    })
}

/// Reads a secret file, refusing one that others may read.
pub fn read_secret_file(what: &str, p: &std::path::Path) -> anyhow::Result<String> {
    let m = std::fs::metadata(p)
        .with_context(|| format!("configuration: {what}: cannot read {}", p.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = m.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "configuration: {what}: {} has mode {mode:o}; make it readable by the server's account only (chmod 600)",
                p.display()
            );
        }
    }
    #[cfg(not(unix))]
    let _ = m;
    std::fs::read_to_string(p)
        .with_context(|| format!("configuration: {what}: cannot read {}", p.display()))
}

/// The app's settings from the `[k8s]` and `[github]` sections.
pub fn settings(k8s: &K8sConfig, github: Option<&GithubConfig>) -> anyhow::Result<Enforcement> {
    let mut namespaces = BTreeMap::new();
    for (ns, t) in &k8s.namespaces {
        namespaces.insert(
            ns.clone(),
            target(&format!("configuration: k8s.namespaces.{ns}"), t)?,
        );
    }
    let github = match github {
        None => None,
        Some(g) => {
            if g.app_id.trim().is_empty() || !g.app_id.trim().bytes().all(|b| b.is_ascii_digit()) {
                bail!(
                    "configuration: github.app_id: {:?} is not a GitHub App id (digits)",
                    g.app_id
                );
            }
            let api = url::Url::parse(&g.api_url).with_context(|| {
                format!(
                    "configuration: github.api_url: {:?} is not a URL",
                    g.api_url
                )
            })?;
            if !matches!(api.scheme(), "https" | "http") {
                bail!(
                    "configuration: github.api_url: {:?} is not an http(s) URL",
                    g.api_url
                );
            }
            let key = read_secret_file("github.private_key_file", &g.private_key_file)?;
            let secret = read_secret_file("github.webhook_secret_file", &g.webhook_secret_file)?;
            let secret = secret.trim().to_owned();
            if secret.len() < 16 {
                bail!(
                    "configuration: github.webhook_secret_file: the secret is shorter than 16 characters"
                );
            }
            let mut environments = BTreeMap::new();
            for (i, e) in g.environments.iter().enumerate() {
                let t = target(
                    &format!("configuration: github.environments[{i}]"),
                    &TargetConfig {
                        system: e.system.clone(),
                        env: e.env.clone(),
                    },
                )?;
                environments.insert(
                    (e.repository.to_ascii_lowercase(), e.environment.clone()),
                    t,
                );
            }
            let http = reqwest::Client::builder()
                .timeout(API_TIMEOUT)
                .user_agent("changegate")
                .build()
                .context("configuration: github: the HTTP client")?;
            Some(
                GithubSettings::new(
                    g.app_id.trim().to_owned(),
                    &key,
                    secret,
                    g.api_url.trim_end_matches('/').to_owned(),
                    environments,
                    Arc::new(ReqwestGithub(http)),
                )
                .map_err(|e| anyhow::anyhow!("configuration: github.private_key_file: {e}"))?,
            )
        }
    };
    Ok(Enforcement {
        k8s: K8sSettings {
            namespaces,
            unmapped: match k8s.unmapped {
                UnmappedConfig::Deny => Unmapped::Deny,
                UnmappedConfig::Allow => Unmapped::Allow,
            },
        },
        github,
        wake: tokio::sync::Notify::new(),
    })
}
