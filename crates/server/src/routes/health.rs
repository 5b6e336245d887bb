//! Liveness and readiness.

use crate::AppState;
use crate::error::ApiError;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use changegate_api::Health;
use changegate_api::ProblemCode;
use utoipa_axum::{router::OpenApiRouter, routes};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
}

/// The process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()), responses((status = 200, body = Health)))]
async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()), responses((status = 200, body = Health), (status = 503, body = changegate_api::Problem, content_type = "application/problem+json")))]
async fn readyz(State(app): State<AppState>) -> Result<Json<Health>, ApiError> {
    changegate_store::ping(&app.db)
        .await
        .map(|()| {
            Json(Health {
                status: "ok".into(),
            })
        })
        .map_err(|_| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ProblemCode::NotReady,
                "Not ready",
                "the database does not answer",
            )
        })
}
