//! changegate-client: a typed HTTP client (reqwest) for the changegate API, used by the CLI
//! and the end-to-end tests. The wire types it sends and reads are `changegate-api`'s.

use changegate_api::*;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// What can go wrong talking to the server.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a problem document.
    #[error("{} ({}): {}", .0.title, .0.code, .0.detail.as_deref().unwrap_or(""))]
    Problem(Box<Problem>),
    /// The server could not be reached or answered something unreadable.
    #[error("could not talk to the changegate server: {0}")]
    Transport(String),
}

impl ClientError {
    /// The problem's code, if the server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Problem(p) => Some(p.code.as_str()),
            ClientError::Transport(_) => None,
        }
    }
    /// The HTTP status, if the server answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Problem(p) => Some(p.status),
            ClientError::Transport(_) => None,
        }
    }
}

/// A client bound to one server and one token.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Client {
    /// A client for `base` (`http://127.0.0.1:8080`), authenticating with `token`.
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        Ok(Self {
            base: base.trim_end_matches('/').to_owned(),
            token,
            http,
        })
    }

    /// The same server with another token.
    pub fn with_token(&self, token: impl Into<String>) -> Self {
        Self {
            base: self.base.clone(),
            token: Some(token.into()),
            http: self.http.clone(),
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
    ) -> Result<T, ClientError> {
        self.send_within(method, path, query, body, None).await
    }

    /// `send` with a request timeout other than the client's (a long-polled request is held
    /// longer than the default).
    async fn send_within<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&B>,
        timeout: Option<Duration>,
    ) -> Result<T, ClientError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .query(query);
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|e| ClientError::Transport(format!("unreadable answer: {e}")));
        }
        match serde_json::from_slice::<Problem>(&bytes) {
            Ok(p) => Err(ClientError::Problem(Box::new(p))),
            Err(_) => Err(ClientError::Transport(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&bytes)
                    .chars()
                    .take(200)
                    .collect::<String>()
            ))),
        }
    }

    async fn get<T: DeserializeOwned>(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, ClientError> {
        self.send::<(), T>(Method::GET, path, query, None).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.send(Method::POST, path, &[], Some(body)).await
    }

    /// `GET /healthz`.
    pub async fn health(&self) -> Result<Health, ClientError> {
        self.get("/healthz", &[]).await
    }

    /// `GET /api/v1/gate`. A 503 `gate_unavailable` comes back as an error: the caller fails closed.
    /// With `wait`, the server holds the request up to that many seconds.
    pub async fn gate(&self, p: &GateParams) -> Result<GateDecision, ClientError> {
        let mut q = vec![("system", p.system.clone()), ("env", p.env.clone())];
        for (k, v) in [
            ("commit", &p.commit),
            ("tree", &p.tree),
            ("artifact", &p.artifact),
            ("nonce", &p.nonce),
        ] {
            if let Some(v) = v {
                q.push((k, v.clone()));
            }
        }
        match p.wait {
            // The server holds the request up to `wait` seconds: allow for that.
            Some(w) => {
                q.push(("wait", w.to_string()));
                let timeout = Duration::from_secs(u64::from(w) + 30);
                self.send_within::<(), _>(Method::GET, "/api/v1/gate", &q, None, Some(timeout))
                    .await
            }
            None => self.get("/api/v1/gate", &q).await,
        }
    }

    /// `GET /api/v1/keys`.
    pub async fn keys(&self) -> Result<crate::attestation::Keys, ClientError> {
        self.get("/api/v1/keys", &[]).await
    }

    /// `POST /api/v1/deployments`.
    pub async fn record_deployment(&self, d: &NewDeployment) -> Result<Deployment, ClientError> {
        self.post("/api/v1/deployments", d).await
    }

    /// `POST /api/v1/observations`.
    pub async fn observe(
        &self,
        o: &crate::NewObservation,
    ) -> Result<crate::Observation, ClientError> {
        self.post("/api/v1/observations", o).await
    }

    /// `GET /api/v1/observations/sources`.
    pub async fn observation_sources(&self) -> Result<Vec<crate::ObservationSource>, ClientError> {
        self.get("/api/v1/observations/sources", &[]).await
    }

    /// `GET /api/v1/deployments`.
    pub async fn deployments(&self, flagged_only: bool) -> Result<Vec<Deployment>, ClientError> {
        self.get(
            "/api/v1/deployments",
            &[("flagged", flagged_only.to_string())],
        )
        .await
    }

    /// `POST /api/v1/systems/{code}/freeze-windows`.
    pub async fn create_freeze_window(
        &self,
        system: &str,
        f: &NewFreezeWindow,
    ) -> Result<FreezeWindow, ClientError> {
        self.post(&format!("/api/v1/systems/{system}/freeze-windows"), f)
            .await
    }

    /// `POST /api/v1/freeze-windows/{id}/remove`.
    pub async fn remove_freeze_window(&self, id: i64) -> Result<FreezeWindow, ClientError> {
        self.post(
            &format!("/api/v1/freeze-windows/{id}/remove"),
            &serde_json::json!({}),
        )
        .await
    }

    /// `POST /api/v1/webhooks`.
    pub async fn create_webhook(&self, w: &NewWebhook) -> Result<Webhook, ClientError> {
        self.post("/api/v1/webhooks", w).await
    }

    /// `GET /api/v1/webhooks/deliveries`.
    pub async fn deliveries(&self, status: Option<&str>) -> Result<Vec<Delivery>, ClientError> {
        let q: Vec<(&str, String)> = status
            .map(|s| vec![("status", s.to_owned())])
            .unwrap_or_default();
        self.get("/api/v1/webhooks/deliveries", &q).await
    }

    /// `GET /api/v1/me`.
    pub async fn me(&self) -> Result<Me, ClientError> {
        self.get("/api/v1/me", &[]).await
    }

    /// `POST /api/v1/organisations`.
    pub async fn create_organisation(
        &self,
        o: &NewOrganisation,
    ) -> Result<Organisation, ClientError> {
        self.post("/api/v1/organisations", o).await
    }

    /// `POST /api/v1/users`.
    pub async fn create_user(&self, u: &NewUser) -> Result<CreatedUser, ClientError> {
        self.post("/api/v1/users", u).await
    }

    /// `POST /api/v1/tokens`.
    pub async fn create_token(&self, t: &NewToken) -> Result<CreatedToken, ClientError> {
        self.post("/api/v1/tokens", t).await
    }

    /// `GET /api/v1/tokens`.
    pub async fn tokens(&self) -> Result<Vec<TokenInfo>, ClientError> {
        self.get("/api/v1/tokens", &[]).await
    }

    /// `POST /api/v1/tokens/{id}/revoke`.
    pub async fn revoke_token(&self, id: &str) -> Result<TokenInfo, ClientError> {
        self.post(
            &format!("/api/v1/tokens/{id}/revoke"),
            &serde_json::json!({}),
        )
        .await
    }

    /// `POST /api/v1/systems`.
    pub async fn create_system(&self, s: &NewSystem) -> Result<System, ClientError> {
        self.post("/api/v1/systems", s).await
    }

    /// `GET /api/v1/systems/{code}`.
    pub async fn system(&self, code: &str) -> Result<System, ClientError> {
        self.get(&format!("/api/v1/systems/{code}"), &[]).await
    }

    /// `GET /api/v1/systems` with filters (`org`, `level`, `status`, `review_due_before`,
    /// `page`).
    pub async fn systems(&self, query: &[(&str, String)]) -> Result<SystemList, ClientError> {
        self.get("/api/v1/systems", query).await
    }

    /// `PATCH /api/v1/systems/{code}`.
    pub async fn edit_system(&self, code: &str, e: &EditSystem) -> Result<System, ClientError> {
        self.send(
            Method::PATCH,
            &format!("/api/v1/systems/{code}"),
            &[],
            Some(e),
        )
        .await
    }

    /// `POST /api/v1/systems/{code}/retire`.
    pub async fn retire_system(&self, code: &str, reason: &str) -> Result<System, ClientError> {
        let body = Retirement {
            reason: reason.into(),
        };
        self.post(&format!("/api/v1/systems/{code}/retire"), &body)
            .await
    }

    /// `POST /api/v1/change-requests`.
    pub async fn file_change(&self, c: &NewChangeRequest) -> Result<ChangeRequest, ClientError> {
        self.post("/api/v1/change-requests", c).await
    }

    /// `GET /api/v1/change-requests/{id}`.
    pub async fn change(&self, id: i64) -> Result<ChangeRequest, ClientError> {
        self.get(&format!("/api/v1/change-requests/{id}"), &[])
            .await
    }

    /// `GET /api/v1/change-requests`.
    pub async fn changes(
        &self,
        system: Option<&str>,
        state: Option<&str>,
    ) -> Result<ChangeRequestList, ClientError> {
        let mut q = vec![];
        if let Some(s) = system {
            q.push(("system", s.to_owned()));
        }
        if let Some(s) = state {
            q.push(("state", s.to_owned()));
        }
        self.get("/api/v1/change-requests", &q).await
    }

    /// `GET /api/v1/change-requests` with any filters (`system`, `org`, `state`, `kind`,
    /// `from`, `to`, `q`, `page`, `limit`).
    pub async fn changes_where(
        &self,
        query: &[(&str, String)],
    ) -> Result<ChangeRequestList, ClientError> {
        self.get("/api/v1/change-requests", query).await
    }

    /// `PATCH /api/v1/change-requests/{id}`.
    pub async fn edit_change(
        &self,
        id: i64,
        e: &EditChangeRequest,
    ) -> Result<ChangeRequest, ClientError> {
        self.send(
            Method::PATCH,
            &format!("/api/v1/change-requests/{id}"),
            &[],
            Some(e),
        )
        .await
    }

    async fn act(
        &self,
        id: i64,
        action: &str,
        body: serde_json::Value,
    ) -> Result<ChangeRequest, ClientError> {
        self.post(&format!("/api/v1/change-requests/{id}/{action}"), &body)
            .await
    }

    /// `POST .../submit`.
    pub async fn submit(&self, id: i64) -> Result<ChangeRequest, ClientError> {
        self.act(id, "submit", serde_json::json!({})).await
    }

    /// `POST .../withdraw`.
    pub async fn withdraw(&self, id: i64) -> Result<ChangeRequest, ClientError> {
        self.act(id, "withdraw", serde_json::json!({})).await
    }

    /// `POST .../request-changes`.
    pub async fn request_changes(&self, id: i64, note: &str) -> Result<ChangeRequest, ClientError> {
        self.act(id, "request-changes", serde_json::json!({ "note": note }))
            .await
    }

    /// `POST .../request-changes` with findings.
    pub async fn request_changes_with(
        &self,
        id: i64,
        n: &Note,
    ) -> Result<ChangeRequest, ClientError> {
        self.post(&format!("/api/v1/change-requests/{id}/request-changes"), n)
            .await
    }

    /// `GET /api/v1/remediations` with filters (`system`, `org`, `change_request`, `state`,
    /// `kind`, `overdue`, `page`).
    pub async fn remediations(
        &self,
        query: &[(&str, String)],
    ) -> Result<RemediationList, ClientError> {
        self.get("/api/v1/remediations", query).await
    }

    /// `GET /api/v1/remediations/{id}`.
    pub async fn remediation(&self, id: i64) -> Result<Remediation, ClientError> {
        self.get(&format!("/api/v1/remediations/{id}"), &[]).await
    }

    /// `POST /api/v1/remediations/{id}/fulfil`.
    pub async fn fulfil(&self, id: i64, evidence: &str) -> Result<Remediation, ClientError> {
        let body = Fulfilment {
            evidence: evidence.to_owned(),
        };
        self.post(&format!("/api/v1/remediations/{id}/fulfil"), &body)
            .await
    }

    /// `POST /api/v1/remediations/{id}/verify`.
    pub async fn verify(
        &self,
        id: i64,
        accepted: bool,
        note: &str,
    ) -> Result<Remediation, ClientError> {
        let body = Verification {
            accepted,
            note: note.to_owned(),
        };
        self.post(&format!("/api/v1/remediations/{id}/verify"), &body)
            .await
    }

    /// `POST /api/v1/incidents/{id}/notices`.
    pub async fn record_notice(
        &self,
        id: i64,
        n: &NewIncidentNotice,
    ) -> Result<Incident, ClientError> {
        self.post(&format!("/api/v1/incidents/{id}/notices"), n)
            .await
    }

    /// `PUT /api/v1/incidents/{id}/breach`.
    pub async fn record_breach(&self, id: i64, b: &BreachRecord) -> Result<Incident, ClientError> {
        self.send(
            Method::PUT,
            &format!("/api/v1/incidents/{id}/breach"),
            &[],
            Some(b),
        )
        .await
    }

    /// `POST /api/v1/change-requests/{id}/external-assessment`.
    pub async fn record_external_assessment(
        &self,
        id: i64,
        n: &NewExternalAssessment,
    ) -> Result<ChangeRequest, ClientError> {
        self.post(
            &format!("/api/v1/change-requests/{id}/external-assessment"),
            n,
        )
        .await
    }

    /// `POST .../revoke`.
    pub async fn revoke(&self, id: i64, reason: &str) -> Result<ChangeRequest, ClientError> {
        self.act(id, "revoke", serde_json::json!({ "reason": reason }))
            .await
    }

    /// `POST .../sign-off`.
    pub async fn sign_off(&self, id: i64, s: &NewSignOff) -> Result<ChangeRequest, ClientError> {
        self.post(&format!("/api/v1/change-requests/{id}/sign-off"), s)
            .await
    }

    /// `POST /api/v1/systems/{code}/incidents`.
    pub async fn report_incident(
        &self,
        system: &str,
        i: &NewIncident,
    ) -> Result<Incident, ClientError> {
        self.post(&format!("/api/v1/systems/{system}/incidents"), i)
            .await
    }

    /// `POST /api/v1/incidents/{id}/resolve`.
    pub async fn resolve_incident(&self, id: i64) -> Result<Incident, ClientError> {
        self.post(
            &format!("/api/v1/incidents/{id}/resolve"),
            &serde_json::json!({}),
        )
        .await
    }

    /// `POST /api/v1/incidents/{id}/a05-notified`.
    pub async fn record_a05_notified(
        &self,
        id: i64,
        at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Incident, ClientError> {
        self.post(
            &format!("/api/v1/incidents/{id}/a05-notified"),
            &A05Notified { notified_at: at },
        )
        .await
    }

    /// `GET /api/v1/audit`.
    pub async fn audit(&self, after: i64, limit: u32) -> Result<AuditPage, ClientError> {
        self.get(
            "/api/v1/audit",
            &[("after", after.to_string()), ("limit", limit.to_string())],
        )
        .await
    }

    /// `GET /api/v1/users` with filters (`org`, `role`, `status`, `q`, `page`, `limit`).
    pub async fn users(&self, query: &[(&str, String)]) -> Result<UserList, ClientError> {
        self.get("/api/v1/users", query).await
    }

    /// `GET /api/v1/users/{username}`.
    pub async fn user(&self, username: &str) -> Result<UserSummary, ClientError> {
        self.get(&format!("/api/v1/users/{username}"), &[]).await
    }

    /// `PATCH /api/v1/users/{username}`.
    pub async fn edit_user(
        &self,
        username: &str,
        e: &EditUser,
    ) -> Result<UserSummary, ClientError> {
        self.send(
            Method::PATCH,
            &format!("/api/v1/users/{username}"),
            &[],
            Some(e),
        )
        .await
    }

    /// `PUT /api/v1/systems/{code}/level-record`.
    pub async fn put_level_record(
        &self,
        code: &str,
        r: &LevelRecord,
    ) -> Result<System, ClientError> {
        self.send(
            Method::PUT,
            &format!("/api/v1/systems/{code}/level-record"),
            &[],
            Some(r),
        )
        .await
    }

    /// `POST /api/v1/systems/{code}/relevel`.
    pub async fn relevel(&self, code: &str, r: &Relevel) -> Result<Relevelled, ClientError> {
        self.send(
            Method::POST,
            &format!("/api/v1/systems/{code}/relevel"),
            &[],
            Some(r),
        )
        .await
    }

    /// `GET /api/v1/organisations`.
    pub async fn organisations(&self) -> Result<Vec<OrganisationDetails>, ClientError> {
        self.get("/api/v1/organisations", &[]).await
    }

    /// `GET /api/v1/organisations/{code}`.
    pub async fn organisation(&self, code: &str) -> Result<OrganisationDetails, ClientError> {
        self.get(&format!("/api/v1/organisations/{code}"), &[])
            .await
    }

    /// `PATCH /api/v1/organisations/{code}`.
    pub async fn edit_organisation(
        &self,
        code: &str,
        e: &EditOrganisation,
    ) -> Result<OrganisationDetails, ClientError> {
        self.send(
            Method::PATCH,
            &format!("/api/v1/organisations/{code}"),
            &[],
            Some(e),
        )
        .await
    }

    /// `POST /api/v1/users/{username}/deactivate`.
    pub async fn deactivate_user(
        &self,
        username: &str,
        reason: &str,
    ) -> Result<UserSummary, ClientError> {
        let body = Deactivation {
            reason: reason.into(),
        };
        self.post(&format!("/api/v1/users/{username}/deactivate"), &body)
            .await
    }

    /// `POST /api/v1/users/{username}/reactivate`.
    pub async fn reactivate_user(&self, username: &str) -> Result<UserSummary, ClientError> {
        self.post(
            &format!("/api/v1/users/{username}/reactivate"),
            &serde_json::json!({}),
        )
        .await
    }

    /// `GET /api/v1/incidents` with filters (`state`, `system`, `org`, `kind`, `severity`,
    /// `from`, `to`, `q`, `page`, `limit`).
    pub async fn incidents(&self, query: &[(&str, String)]) -> Result<IncidentList, ClientError> {
        self.get("/api/v1/incidents", query).await
    }

    /// `GET /api/v1/reports/annual?year=…[&org=…]` as JSON.
    pub async fn annual_report(
        &self,
        year: i32,
        org: Option<&str>,
    ) -> Result<AnnualReport, ClientError> {
        let mut q = vec![("year", year.to_string())];
        if let Some(o) = org {
            q.push(("org", o.to_owned()));
        }
        self.get("/api/v1/reports/annual", &q).await
    }

    /// `GET /api/v1/reports/annual?year=…[&org=…]&format=…`: the answer's bytes (CSV, HTML or
    /// JSON), or the problem.
    pub async fn annual_report_as(
        &self,
        year: i32,
        org: Option<&str>,
        format: &str,
    ) -> Result<Vec<u8>, ClientError> {
        let mut q = vec![("year", year.to_string()), ("format", format.to_owned())];
        if let Some(o) = org {
            q.push(("org", o.to_owned()));
        }
        let mut req = self
            .http
            .get(format!("{}/api/v1/reports/annual", self.base))
            .query(&q);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        if status.is_success() {
            return Ok(bytes.to_vec());
        }
        match serde_json::from_slice::<Problem>(&bytes) {
            Ok(p) => Err(ClientError::Problem(Box::new(p))),
            Err(_) => Err(ClientError::Transport(format!("HTTP {status}"))),
        }
    }

    /// A raw request, for tests of bad input: returns status, content type and body.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> Result<(StatusCode, String, Vec<u8>), ClientError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .body(body);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(ct) = content_type {
            req = req.header(reqwest::header::CONTENT_TYPE, ct);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        let status = resp.status();
        let ct = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| ClientError::Transport(e.to_string()))?;
        Ok((status, ct, bytes.to_vec()))
    }
}
