//! changegate-server: the HTTP edge. axum routes (thin: extract, call one use case, map the
//! result), problem+json errors, and the OpenAPI document generated from the same handlers
//! (utoipa-axum), so routes and documentation cannot drift.
//!
//! It holds no business rules: rights, separation of duties and validation live in the domain
//! and app crates.

pub mod annual_doc;
pub mod config;
pub mod conn;
pub mod dispatch;
pub mod enforce;
pub mod error;
pub mod extract;
pub mod metrics;
pub mod request_id;
mod routes;
pub mod scheduler;
pub mod tls;
pub mod web;

use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use changegate_app::App;
use changegate_app::sessions::IpNet;
use std::future::Future;
use std::ops::Deref;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;

/// Shared state of every handler: the app and the edge's own settings. Dereferences to the app.
#[derive(Clone)]
pub struct AppState {
    /// The use cases.
    pub app: Arc<App>,
    /// How the edge meets the network.
    pub edge: Arc<Edge>,
    /// What official documents print (`[documents]`).
    pub documents: Arc<config::DocumentsConfig>,
}

impl Deref for AppState {
    type Target = App;

    fn deref(&self) -> &App {
        &self.app
    }
}

/// The edge's settings, from the configuration.
#[derive(Debug, Clone, Default)]
pub struct Edge {
    /// Browsers reach the server over HTTPS: cookies are marked `Secure`.
    pub behind_tls: bool,
    /// The reverse proxies whose `X-Forwarded-For` header names the client.
    pub trusted_proxies: Vec<IpNet>,
    /// Display names of environments on Vietnamese pages (`[web] environment_names`).
    pub environment_names: std::collections::BTreeMap<String, String>,
    /// Who issues the printed documents, and where.
    pub documents: config::DocumentsConfig,
}

impl AppState {
    /// The state of a server with these settings.
    pub fn new(app: Arc<App>, edge: Edge) -> Self {
        Self {
            app,
            edge: Arc::new(edge),
            documents: Arc::default(),
        }
    }

    /// The same state, printing documents with these settings.
    pub fn with_documents(mut self, documents: config::DocumentsConfig) -> Self {
        self.documents = Arc::new(documents);
        self
    }
}

/// Largest request body accepted (1 MiB); larger ones get 413.
pub const BODY_LIMIT: usize = 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(title = "changegate", description = "Change-management gate for information systems connected to the National Population Database."),
    components(schemas(changegate_api::Problem)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{
            HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme,
        };
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// The router and the OpenAPI document, from one source.
pub fn router_and_openapi(app: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, api) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::router())
        .split_for_parts();
    // Serialised once: each answer hands out a cheap clone of the bytes.
    let doc = axum::body::Bytes::from(serde_json::to_vec(&api).unwrap_or_default());
    let router = router
        .route(
            "/api/openapi.json",
            axum::routing::get(move || {
                std::future::ready((
                    [(axum::http::header::CONTENT_TYPE, "application/json")],
                    doc.clone(),
                ))
            }),
        )
        .merge(web::router(app.clone()))
        .fallback(web::fallback)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            app.clone(),
            web::security_headers,
        ))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .layer(axum::middleware::from_fn(request_id::layer))
        .with_state(app);
    (router, api)
}

/// The router.
pub fn router(app: AppState) -> Router {
    router_and_openapi(app).0
}

/// A server built from its configuration, not yet serving: what `changegate serve` runs and
/// what the tests start.
pub struct Server {
    /// The app (for the demo seed and the tests' direct checks).
    pub app: Arc<App>,
    /// The handlers' state.
    pub state: AppState,
    /// The job schedule.
    pub schedule: scheduler::Schedule,
    /// Native TLS (`[tls]`), or plain HTTP.
    pub tls: Option<tls::Tls>,
    /// `[server]`: timeouts and the bound on connections.
    pub limits: conn::ServerConfig,
}

/// Builds the server from its configuration: the policy pack, the database (connected and
/// migrated), the signing key (published), the time zone, the job schedule and the edge's
/// settings. Every error names what is wrong.
pub async fn build(cfg: &config::Config) -> anyhow::Result<Server> {
    let pack = cfg.pack()?;
    let url = cfg.database_url()?;
    let signer = changegate_app::signer::Signer::load_or_create(&cfg.signing_key_path())?;
    let schedule = cfg
        .schedule()
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    let trusted_proxies =
        web::client_ip::parse_trusted_proxies(&cfg.trusted_proxies).map_err(|bad| {
            anyhow::anyhow!("configuration: trusted_proxies: {bad:?} is not an IP address or CIDR")
        })?;
    let mut app = App::open_with(&url, pack, signer)
        .await
        .with_context(|| format!("cannot open the database {}", redact(&url)))?;
    app.tz = schedule.tz;
    app.auth.key = Some(changegate_app::auth::TokenKey::load_or_create(
        &cfg.token_key_path(),
    )?);
    app.enforce = enforce::settings(&cfg.k8s, cfg.github.as_ref())?;
    app.checkpoints = changegate_app::audit::checkpoints::Settings {
        every: i64::from(cfg.audit.checkpoint_every.max(1)),
        anchor: Some(cfg.audit_anchor_path()),
    };
    app.backup = cfg.backup_settings()?;
    verify_audit(&app, cfg.audit.on_break).await?;
    let tls = match &cfg.tls {
        Some(t) => Some(tls::prepare(t, &app.db).await.context("configuration")?),
        None => None,
    };
    if app.read_only.get().is_none() {
        app.publish_signing_key().await?;
    }
    let app = Arc::new(app);
    let edge = Edge {
        behind_tls: cfg.behind_tls,
        trusted_proxies,
        environment_names: cfg.web.environment_names.clone(),
        documents: cfg.documents.clone(),
    };
    Ok(Server {
        state: AppState::new(app.clone(), edge).with_documents(cfg.documents.clone()),
        app,
        schedule,
        tls,
        limits: cfg.server.clone(),
    })
}

/// Verifies the audit log from its last signed checkpoint to the head before serving; on a break
/// refuses to start, or (`[audit] on_break = "read_only"`) serves reads only.
async fn verify_audit(
    app: &App,
    on_break: changegate_app::audit::checkpoints::OnBreak,
) -> anyhow::Result<()> {
    use changegate_app::audit::checkpoints::OnBreak;
    match app.verify_audit_at_start().await? {
        Ok(from) => {
            tracing::info!(
                from_checkpoint = from,
                "audit log verified from its last signed checkpoint to the head"
            );
            Ok(())
        }
        Err(b) => match on_break {
            OnBreak::Refuse => anyhow::bail!(
                "the audit log does not hold what this server signed: {b}. Refusing to serve: \
                 run `changegate audit verify`, restore a backup, or set [audit] on_break = \
                 \"read_only\" to serve reads only"
            ),
            OnBreak::ReadOnly => {
                tracing::error!(
                    "AUDIT LOG TAMPERED: {b}. Serving READ-ONLY: every write is refused until \
                     the log is restored"
                );
                let _ = app
                    .read_only
                    .set(format!("the audit log was tampered with ({b})"));
                Ok(())
            }
        },
    }
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}

impl Server {
    /// The router.
    pub fn router(&self) -> Router {
        router(self.state.clone())
    }

    /// Starts the scheduled jobs (after running the slots missed while no replica was up) in
    /// the background. Keep the handle; the scheduler stops when it is dropped or shut down.
    pub fn spawn_jobs(
        &self,
    ) -> tokio::task::JoinHandle<Result<tokio_cron_scheduler::JobScheduler, String>> {
        let (app, schedule) = (self.app.clone(), self.schedule.clone());
        tokio::spawn(async move { scheduler::start(app, schedule).await })
    }

    /// Serves on an already bound listener until `shutdown` completes (then requests in flight
    /// get `[server] shutdown_timeout_secs` to finish). Starts the gate's audit-log poller and
    /// the webhook dispatcher.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let poller = self.app.spawn_poller();
        let dispatcher = dispatch::spawn_dispatcher(&self.app);
        let silence_watch = self.app.spawn_silence_watch();
        let github_waiter = self.app.spawn_github_waiter();
        let result = match self.tls {
            Some(tls) => tls::serve(listener, router(self.state), tls, self.limits, shutdown).await,
            None => conn::serve(listener, router(self.state), None, self.limits, shutdown).await,
        };
        poller.abort();
        dispatcher.abort();
        silence_watch.abort();
        if let Some(w) = github_waiter {
            w.abort();
        }
        result
    }
}
