//! GitHub custom deployment protection rule (a GitHub App the province installs).
//!
//! GitHub sends `deployment_protection_rule` to `POST /integrations/github/webhook`, signed with
//! the app's webhook secret (`X-Hub-Signature-256`, checked in constant time). The delivery is
//! recorded (a replayed delivery id is answered once) and answered at once; the decision follows
//! in the background: an installation token (app JWT, RS256), the commit's tree
//! (`GET /repos/{o}/{r}/git/commits/{sha}`), the gate for the mapped system and environment, and
//! a callback `approved` or `rejected`. A denial that may clear (an evaluation pending, an
//! incident open, a freeze) leaves the request pending; it is decided again whenever the gate's
//! index changes (the wake-up of `check --wait`) and at least every 30 seconds.

use super::Target;
use crate::auth::Principal;
use crate::{App, AppError, AppResult, event};
use changegate_api as wire;
use changegate_domain::enforce::GithubReviewState;
use changegate_domain::gate::{Decision, ReasonCode};
use changegate_domain::{CommitId, OrgKind, Role};
use changegate_store::entity::github_pending;
use changegate_store::{enforce as store, gate};
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Deserialize;
use sha2::Sha256;
use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// The event decided here.
pub const EVENT: &str = "deployment_protection_rule";
/// How often pending requests are decided again without a wake-up.
const RECHECK: Duration = Duration::from_secs(30);

/// The method of a call to GitHub's API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiMethod {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
}

/// One call to GitHub's API, as the app decides it; [`GithubHttp`] sends it.
#[derive(Debug, Clone)]
pub struct ApiRequest {
    /// The method.
    pub method: ApiMethod,
    /// The full URL.
    pub url: String,
    /// The bearer token: the app's JWT or an installation token.
    pub bearer: String,
    /// Headers GitHub asks for (`Accept`, `X-GitHub-Api-Version`).
    pub headers: Vec<(&'static str, &'static str)>,
    /// A JSON body.
    pub json: Option<serde_json::Value>,
}

/// What GitHub answered: the status and the body.
#[derive(Debug, Clone)]
pub struct ApiResponse {
    /// The HTTP status code.
    pub status: u16,
    /// The body.
    pub body: Vec<u8>,
}

/// A future that [`GithubHttp::send`] returns.
pub type ApiFuture<'a> = Pin<Box<dyn Future<Output = Result<ApiResponse, String>> + Send + 'a>>;

/// Sends calls to GitHub's API over HTTP. The server gives its HTTP client (with a timeout of
/// [`API_TIMEOUT`] and the user agent `changegate`); the app crate makes no HTTP call itself.
/// An error is one of transport (no connection, timeout), as text.
pub trait GithubHttp: Send + Sync {
    /// Sends `req`.
    fn send(&self, req: ApiRequest) -> ApiFuture<'_>;
}

/// How long one call to GitHub's API may take.
pub const API_TIMEOUT: Duration = Duration::from_secs(10);

/// GitHub App settings.
pub struct GithubSettings {
    /// The app's id (the JWT's `iss`).
    pub app_id: String,
    key: jsonwebtoken::EncodingKey,
    secret: Vec<u8>,
    /// `https://api.github.com` or a GitHub Enterprise Server's `https://HOST/api/v3`, without a
    /// trailing slash.
    pub api_url: String,
    /// `owner/repo` (lowercase) and GitHub environment → system and environment.
    pub environments: BTreeMap<(String, String), Target>,
    http: Arc<dyn GithubHttp>,
    tokens: tokio::sync::Mutex<BTreeMap<i64, (String, DateTime<Utc>)>>,
}

impl std::fmt::Debug for GithubSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubSettings")
            .field("app_id", &self.app_id)
            .field("api_url", &self.api_url)
            .finish_non_exhaustive()
    }
}

impl GithubSettings {
    /// Settings from the app id, the PEM private key, the webhook secret, the API URL, the
    /// mapping and the HTTP client that calls GitHub. Fails when the key is not an RSA private
    /// key.
    pub fn new(
        app_id: String,
        private_key_pem: &str,
        webhook_secret: String,
        api_url: String,
        environments: BTreeMap<(String, String), Target>,
        http: Arc<dyn GithubHttp>,
    ) -> Result<Self, String> {
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(private_key_pem.as_bytes())
            .map_err(|e| format!("not an RSA private key in PEM: {e}"))?;
        Ok(Self {
            app_id,
            key,
            secret: webhook_secret.into_bytes(),
            api_url,
            environments,
            http,
            tokens: tokio::sync::Mutex::default(),
        })
    }

    /// Whether `header` (`sha256=<hex>`) is the HMAC-SHA256 of `body` with the webhook secret;
    /// compared in constant time.
    pub fn signature_valid(&self, header: Option<&str>, body: &[u8]) -> bool {
        let Some(sig) = header
            .and_then(|h| h.strip_prefix("sha256="))
            .and_then(|h| hex::decode(h).ok())
        else {
            return false;
        };
        let Ok(mut mac) = <Hmac<Sha256> as Mac>::new_from_slice(&self.secret) else {
            return false;
        };
        mac.update(body);
        mac.verify_slice(&sig).is_ok()
    }

    /// The app's JWT: RS256, `iss` the app id, `iat` a minute ago, `exp` in nine minutes.
    fn jwt(&self) -> Result<String, String> {
        #[derive(serde::Serialize)]
        struct Claims<'a> {
            iat: i64,
            exp: i64,
            iss: &'a str,
        }
        let now = Utc::now().timestamp();
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &Claims {
                iat: now - 60,
                exp: now + 540,
                iss: &self.app_id,
            },
            &self.key,
        )
        .map_err(|e| format!("cannot sign the app JWT: {e}"))
    }

    /// Calls GitHub's API: a success status answers the body, anything else an error naming
    /// the call.
    async fn api(
        &self,
        method: ApiMethod,
        url: &str,
        bearer: &str,
        json: Option<serde_json::Value>,
    ) -> Result<Vec<u8>, String> {
        let name = match method {
            ApiMethod::Get => "GET",
            ApiMethod::Post => "POST",
        };
        let r = self
            .http
            .send(ApiRequest {
                method,
                url: url.to_owned(),
                bearer: bearer.to_owned(),
                headers: vec![
                    ("Accept", "application/vnd.github+json"),
                    ("X-GitHub-Api-Version", "2022-11-28"),
                ],
                json,
            })
            .await
            .map_err(|e| format!("{name} {url}: {e}"))?;
        if !(200..300).contains(&r.status) {
            return Err(format!("{name} {url}: HTTP status {}", r.status));
        }
        Ok(r.body)
    }

    /// An installation token (cached until five minutes before it expires).
    async fn installation_token(&self, installation: i64) -> Result<String, String> {
        let mut cache = self.tokens.lock().await;
        if let Some((t, until)) = cache.get(&installation)
            && *until > Utc::now() + chrono::Duration::minutes(5)
        {
            return Ok(t.clone());
        }
        #[derive(Deserialize)]
        struct Token {
            token: String,
            expires_at: DateTime<Utc>,
        }
        let url = format!(
            "{}/app/installations/{installation}/access_tokens",
            self.api_url
        );
        let body = self.api(ApiMethod::Post, &url, &self.jwt()?, None).await?;
        let t: Token = serde_json::from_slice(&body).map_err(|e| format!("POST {url}: {e}"))?;
        cache.insert(installation, (t.token.clone(), t.expires_at));
        Ok(t.token)
    }

    /// The tree of a commit.
    async fn tree_of(&self, token: &str, repo: &str, sha: &str) -> Result<String, String> {
        #[derive(Deserialize)]
        struct Tree {
            sha: String,
        }
        #[derive(Deserialize)]
        struct Commit {
            tree: Tree,
        }
        let url = format!("{}/repos/{repo}/git/commits/{sha}", self.api_url);
        let body = self.api(ApiMethod::Get, &url, token, None).await?;
        let c: Commit = serde_json::from_slice(&body).map_err(|e| format!("GET {url}: {e}"))?;
        CommitId::parse(&c.tree.sha)
            .map(|t| t.to_string())
            .map_err(|e| format!("GET {url}: {e}"))
    }

    async fn callback(
        &self,
        token: &str,
        p: &github_pending::Model,
        state: GithubReviewState,
        comment: &str,
    ) -> Result<(), String> {
        self.api(
            ApiMethod::Post,
            &p.callback_url,
            token,
            Some(serde_json::json!({
                "environment_name": p.environment_name, "state": state, "comment": comment,
            })),
        )
        .await
        .map(|_| ())
    }
}

/// What the webhook answers (2xx).
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct Ack {
    /// `queued` (decided in the background), `duplicate` (this delivery was answered before) or
    /// `ignored` (another event or action).
    pub status: &'static str,
    /// The pending request's id when queued.
    pub id: Option<i64>,
}

#[derive(Deserialize)]
struct Named {
    full_name: String,
}

#[derive(Deserialize)]
struct Installation {
    id: i64,
}

#[derive(Deserialize)]
struct Payload {
    action: String,
    environment: String,
    sha: String,
    deployment_callback_url: String,
    installation: Installation,
    repository: Named,
}

/// The principal the GitHub App decides as: reads every organisation's systems, writes nothing
/// but its own records.
fn github_principal() -> Principal {
    Principal {
        user_id: 0,
        username: "github-app".into(),
        display_name: "GitHub deployment protection rule".into(),
        org_id: 0,
        org_code: String::new(),
        org_kind: OrgKind::Inspector,
        role: Role::Auditor,
        token_id: None,
    }
}

/// Whether a denial will not clear by itself (reject now) rather than wait for a sign-off, the
/// end of an incident or of a freeze.
fn final_denial(d: &Decision) -> bool {
    d.reasons.iter().any(|r| {
        matches!(
            r.code,
            ReasonCode::UnknownSystem
                | ReasonCode::SystemRetired
                | ReasonCode::EvaluationFailed
                | ReasonCode::ApprovalRevoked
                | ReasonCode::ApprovalExpired
                | ReasonCode::EnvironmentNotCovered
        )
    })
}

fn comment(d: &Decision) -> String {
    let text = if d.allow {
        format!(
            "changegate: allowed by change request {}",
            d.change_request.map(|c| c.to_string()).unwrap_or_default()
        )
    } else {
        format!(
            "changegate: denied: {}",
            d.reasons
                .iter()
                .map(|r| format!("{} ({})", r.code.as_str(), r.message))
                .collect::<Vec<_>>()
                .join("; ")
        )
    };
    changegate_domain::enforce::cut(&text, 1000)
}

impl App {
    /// Receives a GitHub webhook delivery. Unauthorized (nothing done) when the signature does
    /// not verify; NotFound when no GitHub App is configured.
    pub async fn github_webhook(
        &self,
        event_name: Option<&str>,
        delivery: Option<&str>,
        signature: Option<&str>,
        body: &[u8],
    ) -> AppResult<Ack> {
        let Some(gh) = &self.enforce.github else {
            return Err(AppError::NotFound("the GitHub integration".into()));
        };
        if !gh.signature_valid(signature, body) {
            return Err(AppError::Unauthorized(
                "X-Hub-Signature-256 is missing or is not the HMAC-SHA256 of the body with the webhook secret".into(),
            ));
        }
        if event_name != Some(EVENT) {
            return Ok(Ack {
                status: "ignored",
                id: None,
            });
        }
        let delivery = match delivery {
            Some(d) if !d.is_empty() && d.len() <= 100 => d.to_owned(),
            _ => {
                return Err(AppError::invalid(
                    "X-GitHub-Delivery",
                    "missing or longer than 100 characters",
                ));
            }
        };
        let p: Payload = serde_json::from_slice(body).map_err(|e| {
            AppError::invalid(
                "body",
                format!("not a deployment_protection_rule payload: {e}"),
            )
        })?;
        if p.action != "requested" {
            return Ok(Ack {
                status: "ignored",
                id: None,
            });
        }
        let sha = CommitId::parse(&p.sha).map_err(|e| AppError::parse("sha", e))?;
        // The installation token goes only to the configured API.
        if !p
            .deployment_callback_url
            .starts_with(&format!("{}/repos/", gh.api_url))
        {
            return Err(AppError::invalid(
                "deployment_callback_url",
                format!("not under the configured GitHub API {}", gh.api_url),
            ));
        }
        let repo = p.repository.full_name.to_ascii_lowercase();
        let target = gh.environments.get(&(repo.clone(), p.environment.clone()));
        let tx = self.begin().await?;
        if store::github_delivery_seen(&tx.txn, &delivery).await? {
            return Ok(Ack {
                status: "duplicate",
                id: None,
            });
        }
        store::record_github_delivery(&tx.txn, &delivery, EVENT, tx.at()).await?;
        let sys = match target {
            Some(t) => gate::system_by_code(&tx.txn, t.system.as_str()).await?,
            None => None,
        };
        // A repository or environment that is not mapped, or maps to an unknown system, is
        // rejected at once (it will not clear by itself).
        let decided = match sys {
            Some(_) => None,
            None => Some((
                GithubReviewState::Rejected,
                format!(
                    "changegate: {}/{} is not mapped to a registered system",
                    p.repository.full_name, p.environment
                ),
            )),
        };
        let row = store::add_github_request(
            &tx.txn,
            store::NewGithubRequest {
                delivery_id: delivery.clone(),
                installation_id: p.installation.id,
                repository: changegate_domain::enforce::cut(&p.repository.full_name, 200),
                environment_name: changegate_domain::enforce::cut(&p.environment, 255),
                system_id: sys.as_ref().map(|s| s.id),
                environment: target.map(|t| t.env.to_string()).unwrap_or_default(),
                sha: sha.to_string(),
                callback_url: p.deployment_callback_url.clone(),
                at: tx.at(),
                decided,
            },
        )
        .await?;
        tx.audit(event(
            None,
            "github.deployment_requested",
            "github_pending",
            row.id,
            None,
            None,
            Some(serde_json::json!({
                "delivery": delivery, "repository": row.repository, "environment": row.environment_name,
                "sha": row.sha, "system": target.map(|t| t.system.to_string()), "env": row.environment,
                "installation": row.installation_id,
            })),
        ))
        .await?;
        tx.commit().await?;
        self.enforce.wake.notify_one();
        Ok(Ack {
            status: "queued",
            id: Some(row.id),
        })
    }

    /// Decides every unanswered request once; returns how many were answered.
    pub async fn github_decide_pending(&self) -> AppResult<usize> {
        let Some(gh) = &self.enforce.github else {
            return Ok(0);
        };
        let rows = store::unanswered_github_requests(&self.db).await?;
        let mut answered = 0;
        for p in rows {
            match self.github_decide_one(gh, p).await {
                Ok(true) => answered += 1,
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "GitHub deployment request not decided yet"),
            }
        }
        Ok(answered)
    }

    async fn github_decide_one(
        &self,
        gh: &GithubSettings,
        p: github_pending::Model,
    ) -> Result<bool, String> {
        let token = gh.installation_token(p.installation_id).await?;
        let (state, text) = match (&p.state, &p.comment) {
            // Rejected on arrival (not mapped): only the callback is left.
            (Some(s), Some(c)) => (**s, c.clone()),
            _ => {
                let tree = match &p.tree_id {
                    Some(t) => t.clone(),
                    None => gh.tree_of(&token, &p.repository, &p.sha).await?,
                };
                let code = match p.system_id {
                    Some(id) => gate::system_by_id(&self.db, id)
                        .await
                        .map_err(|e| e.to_string())?
                        .map(|s| s.code)
                        .unwrap_or_default(),
                    None => String::new(),
                };
                let q = wire::GateParams {
                    system: code,
                    env: p.environment.clone(),
                    commit: Some(p.sha.clone()),
                    tree: Some(tree.clone()),
                    ..wire::GateParams::default()
                };
                let (d, _) = self
                    .decide(&github_principal(), &q)
                    .await
                    .map_err(|e| e.to_string())?;
                if p.tree_id.is_none() {
                    store::set_github_tree(&self.db, p.clone(), tree)
                        .await
                        .map_err(|e| e.to_string())?;
                }
                if !d.allow && !final_denial(&d) {
                    return Ok(false);
                }
                (GithubReviewState::of(&d), comment(&d))
            }
        };
        gh.callback(&token, &p, state, &text).await?;
        let tx = self.begin().await.map_err(|e| e.to_string())?;
        store::answer_github_request(&tx.txn, p.clone(), state, text.clone(), tx.at())
            .await
            .map_err(|e| e.to_string())?;
        tx.audit(event(
            None,
            if state == GithubReviewState::Approved {
                "github.deployment_approved"
            } else {
                "github.deployment_rejected"
            },
            "github_pending",
            p.id,
            None,
            None,
            Some(serde_json::json!({
                "repository": p.repository, "environment": p.environment_name, "sha": p.sha,
                "state": state, "comment": text,
            })),
        ))
        .await
        .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())?;
        Ok(true)
    }

    /// Decides pending GitHub requests whenever the gate's index changes, a request arrives, or
    /// 30 seconds pass, until the app is dropped.
    pub fn spawn_github_waiter(self: &Arc<Self>) -> Option<tokio::task::JoinHandle<()>> {
        self.enforce.github.as_ref()?;
        let app = self.clone();
        // Aborted by the server when it stops serving.
        Some(tokio::spawn(async move {
            loop {
                let changed = app.gate.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if let Err(e) = app.github_decide_pending().await {
                    tracing::warn!(error = %e, "pending GitHub deployment requests not decided");
                }
                let woken = app.enforce.wake.notified();
                tokio::pin!(woken);
                tokio::select! {
                    () = &mut changed => {}
                    () = &mut woken => {}
                    () = tokio::time::sleep(RECHECK) => {}
                }
            }
        }))
    }
}
