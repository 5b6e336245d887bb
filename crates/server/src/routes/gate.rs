//! `GET /api/v1/gate`: may this exact content deploy to this system and environment now?
//! `GET /api/v1/keys`: the keys that verify its signed answers.

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Actor, Query};
use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use changegate_api::attestation::Keys;
use changegate_api::{GateDecision, GateParams, Problem};
use utoipa_axum::{router::OpenApiRouter, routes};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(gate))
        .routes(routes!(keys))
}

/// Asks the gate. The answer carries a signed attestation (DSSE envelope of an in-toto
/// statement). With `wait`, the request is held until the decision changes or the time is up.
/// Any failure denies: a 503 problem with `"decision": "deny"`.
#[utoipa::path(get, path = "/api/v1/gate", tag = "gate",
    // The fields of `GateParams`, in the query (spelled out: the document would otherwise put
    // them in the path, as its derive does not know it is read by a query extractor).
    params(
        ("system" = String, Query, description = "System code.", example = "TTHC-TINH"),
        ("env" = String, Query, description = "Environment.", example = "production"),
        ("commit" = Option<String>, Query, description = "Git commit id (40 hex digits).",
            example = "5a6cf30966b4cd3413164e475e8a6f37ee125f8e"),
        ("tree" = Option<String>, Query, description = "Git tree id (40 hex digits)."),
        ("artifact" = Option<String>, Query, description = "Artifact digest (`sha256:` + 64 hex digits)."),
        ("wait" = Option<u32>, Query, description = "Long-poll: hold the request up to this many seconds (at most 60) and answer as soon as the decision changes."),
    ),
    responses((status = 200, body = GateDecision), (status = 400, body = Problem, content_type = "application/problem+json"), (status = 401, body = Problem, content_type = "application/problem+json"),
              (status = 422, body = Problem, content_type = "application/problem+json"), (status = 503, body = Problem, content_type = "application/problem+json")))]
async fn gate(
    State(app): State<AppState>,
    Actor(who): Actor,
    Query(p): Query<GateParams>,
) -> Result<Response, ApiError> {
    let started = std::time::Instant::now();
    let answer = app
        .gate_decision_waiting(&who, &p)
        .await
        .map_err(|e| ApiError::from(e).as_gate_denial());
    // Metrics: the decision, its reason codes and (unless it long-polled) its latency.
    match &answer {
        Ok(d) => {
            let codes: Vec<&str> = d.reasons.iter().map(|r| r.code.as_str()).collect();
            let timed = p.wait.unwrap_or(0) == 0;
            crate::metrics::gate_answered(
                d.decision.as_str(),
                &codes,
                timed.then(|| started.elapsed()),
            );
        }
        Err(e) => crate::metrics::gate_failed(e.status().as_u16()),
    }
    // A reused answer is sent as the JSON text made when it was first sent.
    let body = answer?
        .json()
        .map_err(|e| ApiError::from(e).as_gate_denial())?;
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// The public keys that verify signed gate decisions.
#[utoipa::path(get, path = "/api/v1/keys", tag = "gate", security(()), responses((status = 200, body = Keys)))]
async fn keys(State(app): State<AppState>) -> Result<Json<Keys>, ApiError> {
    Ok(Json(app.keys().await?))
}
