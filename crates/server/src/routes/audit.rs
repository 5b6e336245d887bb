//! The audit log.

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Actor, Query};
use axum::extract::State;
use changegate_api::{AuditPage, Problem};
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(page))
}

/// Paging.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct PageParams {
    /// Events after this seq (default 0).
    after: Option<i64>,
    /// At most this many (1-1000, default 100).
    limit: Option<u64>,
}

/// A page of the hash-chained audit log (reviewer, auditor, admin).
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(PageParams),
    responses((status = 200, body = AuditPage), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn page(
    State(app): State<AppState>,
    Actor(who): Actor,
    Query(q): Query<PageParams>,
) -> Result<axum::Json<AuditPage>, ApiError> {
    Ok(axum::Json(
        app.audit_page(&who, q.after.unwrap_or(0), q.limit.unwrap_or(100))
            .await?,
    ))
}
