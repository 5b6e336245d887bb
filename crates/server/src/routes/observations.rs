//! Observed content (issue 13): what runs on servers deployed by hand.

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Actor, Json};
use axum::extract::State;
use axum::http::StatusCode;
use changegate_api::{NewObservation, Observation, ObservationSource, Problem};
use utoipa_axum::{router::OpenApiRouter, routes};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(observe))
        .routes(routes!(sources))
}

/// Reports content observed running (ci, observer). Content no valid approval covers opens one
/// `unapproved_content` incident (high), which closes the gate; the same content again opens no
/// second one.
#[utoipa::path(post, path = "/api/v1/observations", tag = "gate", request_body(content = NewObservation, example = json!({"system": "TTHC-TINH", "env": "production", "source": "web01.tthc.local", "subjects": [{"type": "artifact", "digest": "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"}]})),
    responses((status = 201, body = Observation), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn observe(
    State(app): State<AppState>,
    Actor(who): Actor,
    Json(n): Json<NewObservation>,
) -> Result<(StatusCode, axum::Json<Observation>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.record_observation(&who, n).await?),
    ))
}

/// The sources of observations visible to the caller, silent ones first.
#[utoipa::path(get, path = "/api/v1/observations/sources", tag = "gate",
    responses((status = 200, body = Vec<ObservationSource>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn sources(
    State(app): State<AppState>,
    Actor(who): Actor,
) -> Result<axum::Json<Vec<ObservationSource>>, ApiError> {
    Ok(axum::Json(app.observation_sources(&who).await?))
}
