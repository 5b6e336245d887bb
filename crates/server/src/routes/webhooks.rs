//! Webhooks and their deliveries (admin).

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Actor, Json, Query};
use axum::extract::State;
use axum::http::StatusCode;
use changegate_api::{Delivery, NewWebhook, Problem, Webhook};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(deliveries))
}

/// Filter of the delivery list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DeliveryParams {
    /// pending, delivered or failed.
    status: Option<String>,
}

/// Registers a webhook; deliveries are signed per the Standard Webhooks specification.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "notifications", request_body(content = NewWebhook, example = super::examples::new_webhook),
    responses((status = 201, body = Webhook), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create(
    State(app): State<AppState>,
    Actor(who): Actor,
    Json(n): Json<NewWebhook>,
) -> Result<(StatusCode, axum::Json<Webhook>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_webhook(&who, n).await?),
    ))
}

/// Registered webhooks.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "notifications", responses((status = 200, body = Vec<Webhook>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(app): State<AppState>,
    Actor(who): Actor,
) -> Result<axum::Json<Vec<Webhook>>, ApiError> {
    Ok(axum::Json(app.list_webhooks(&who).await?))
}

/// Deliveries, newest first; failed ones are kept here after a day of retries.
#[utoipa::path(get, path = "/api/v1/webhooks/deliveries", tag = "notifications", params(DeliveryParams),
    responses((status = 200, body = Vec<Delivery>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn deliveries(
    State(app): State<AppState>,
    Actor(who): Actor,
    Query(q): Query<DeliveryParams>,
) -> Result<axum::Json<Vec<Delivery>>, ApiError> {
    Ok(axum::Json(
        app.list_deliveries(&who, q.status.as_deref()).await?,
    ))
}
