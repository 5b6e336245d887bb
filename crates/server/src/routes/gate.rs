//! `GET /api/v1/gate`: may this exact content deploy to this system and environment now?

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Actor, Query};
use axum::Json;
use axum::extract::State;
use changegate_api::{GateDecision, GateParams, GateReason, Problem};
use utoipa_axum::{router::OpenApiRouter, routes};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(gate))
}

/// Asks the gate. Any failure denies: a 503 problem with `"decision": "deny"`.
#[utoipa::path(get, path = "/api/v1/gate", tag = "gate", params(GateParams),
    responses((status = 200, body = GateDecision), (status = 400, body = Problem), (status = 401, body = Problem),
              (status = 422, body = Problem), (status = 503, body = Problem)))]
async fn gate(
    State(app): State<AppState>,
    Actor(_who): Actor,
    Query(p): Query<GateParams>,
) -> Result<Json<GateDecision>, ApiError> {
    let (d, at) = app
        .decide(&p)
        .await
        .map_err(|e| ApiError::from(e).as_gate_denial())?;
    Ok(Json(GateDecision {
        decision: if d.allow { "allow" } else { "deny" }.into(),
        reasons: d
            .reasons
            .into_iter()
            .map(|r| GateReason {
                code: r.code.as_str().into(),
                message: r.message,
            })
            .collect(),
        change_request: d.change_request,
        valid_until: d.valid_until,
        system: p.system,
        environment: p.env,
        decided_at: at,
    }))
}
