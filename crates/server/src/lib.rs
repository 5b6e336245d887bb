//! changegate-server: the HTTP edge. axum routes (thin: extract, call one use case, map the
//! result), problem+json errors, and the OpenAPI document generated from the same handlers
//! (utoipa-axum), so routes and documentation cannot drift.
//!
//! It holds no business rules: rights, separation of duties and validation live in the domain
//! and app crates.

pub mod dispatch;
pub mod error;
pub mod extract;
mod routes;
pub mod scheduler;
pub mod web;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use changegate_app::App;
use std::future::Future;
use std::sync::Arc;
use tokio::net::TcpListener;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;

/// Shared state of every handler.
pub type AppState = Arc<App>;

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
        .merge(web::router())
        .fallback(web::fallback)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(CatchPanicLayer::custom(error::panic_response))
        .with_state(app);
    (router, api)
}

/// The router.
pub fn router(app: AppState) -> Router {
    router_and_openapi(app).0
}

/// Serves on an already bound listener until `shutdown` completes. Starts the gate's audit-log
/// poller.
pub async fn serve(
    listener: TcpListener,
    app: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let poller = app.spawn_poller();
    let dispatcher = dispatch::spawn_dispatcher(&app);
    let result = axum::serve(
        listener,
        router(app).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await;
    poller.abort();
    dispatcher.abort();
    result
}
