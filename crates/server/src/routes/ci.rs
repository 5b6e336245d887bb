//! Deployment records and freeze windows.

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Actor, Json, Path, Query};
use axum::extract::State;
use axum::http::StatusCode;
use changegate_api::{Deployment, FreezeWindow, NewDeployment, NewFreezeWindow, Problem};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(record, list))
        .routes(routes!(create_freeze, list_freezes))
        .routes(routes!(remove_freeze))
}

/// Filter of the deployment list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeploymentParams {
    /// Only deployments the gate did not allow.
    flagged: Option<bool>,
}

/// Records a deployment (ci, owner); one the gate does not allow is flagged and audited.
#[utoipa::path(post, path = "/api/v1/deployments", tag = "gate", request_body(content = NewDeployment, example = super::examples::new_deployment),
    responses((status = 201, body = Deployment), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn record(
    State(app): State<AppState>,
    Actor(who): Actor,
    Json(n): Json<NewDeployment>,
) -> Result<(StatusCode, axum::Json<Deployment>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.record_deployment(&who, n).await?),
    ))
}

/// Recorded deployments visible to the caller, newest first.
#[utoipa::path(get, path = "/api/v1/deployments", tag = "gate", params(DeploymentParams),
    responses((status = 200, body = Vec<Deployment>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(app): State<AppState>,
    Actor(who): Actor,
    Query(q): Query<DeploymentParams>,
) -> Result<axum::Json<Vec<Deployment>>, ApiError> {
    Ok(axum::Json(
        app.list_deployments(&who, q.flagged.unwrap_or(false))
            .await?,
    ))
}

/// Declares a freeze window on a system: nothing but emergency changes deploys during it.
#[utoipa::path(post, path = "/api/v1/systems/{code}/freeze-windows", tag = "gate", params(("code" = String, Path, example = "TTHC-TINH")), request_body(content = NewFreezeWindow, example = super::examples::new_freeze_window),
    responses((status = 201, body = FreezeWindow), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create_freeze(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(code): Path<String>,
    Json(n): Json<NewFreezeWindow>,
) -> Result<(StatusCode, axum::Json<FreezeWindow>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_freeze_window(&who, &code, n).await?),
    ))
}

/// Freeze windows of a system in force.
#[utoipa::path(get, path = "/api/v1/systems/{code}/freeze-windows", tag = "gate", params(("code" = String, Path, example = "TTHC-TINH")),
    responses((status = 200, body = Vec<FreezeWindow>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_freezes(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(code): Path<String>,
) -> Result<axum::Json<Vec<FreezeWindow>>, ApiError> {
    Ok(axum::Json(app.list_freeze_windows(&who, &code).await?))
}

/// Removes a freeze window.
#[utoipa::path(post, path = "/api/v1/freeze-windows/{id}/remove", tag = "gate", params(("id" = i64, Path, example = 1)),
    responses((status = 200, body = FreezeWindow), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn remove_freeze(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(id): Path<i64>,
) -> Result<axum::Json<FreezeWindow>, ApiError> {
    Ok(axum::Json(app.remove_freeze_window(&who, id).await?))
}
