//! Remediation items: findings and conditions tracked to closure.

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Actor, Json, Path, Query};
use axum::extract::State;
use changegate_api::{Fulfilment, Problem, Remediation, RemediationList, Verification};
use changegate_app::remediation::RemediationFilter;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(get))
        .routes(routes!(fulfil))
        .routes(routes!(verify))
}

/// Filters of the list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListParams {
    /// System code.
    #[param(example = "TTHC-TINH")]
    system: Option<String>,
    /// Owner organisation code.
    #[param(example = "STNMT")]
    org: Option<String>,
    /// Change request id.
    change_request: Option<i64>,
    /// `open`, `fulfilled`, `verified` or `reopened`.
    #[param(example = "open")]
    state: Option<String>,
    /// `finding` or `condition`.
    kind: Option<String>,
    /// `true`: only items past their due date and not verified; `false`: only the others.
    overdue: Option<bool>,
    /// Page, from 1 (50 items a page).
    page: Option<u64>,
}

/// Remediation items visible to the caller (owners: their organisation's; reviewers, auditors
/// and admins: all), soonest due first.
#[utoipa::path(get, path = "/api/v1/remediations", tag = "remediation", params(ListParams),
    responses((status = 200, body = RemediationList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(app): State<AppState>,
    Actor(who): Actor,
    Query(p): Query<ListParams>,
) -> Result<axum::Json<RemediationList>, ApiError> {
    let f = RemediationFilter {
        system: p.system,
        org: p.org,
        change_request: p.change_request,
        state: p.state,
        kind: p.kind,
        overdue: p.overdue,
        page: p.page,
    };
    Ok(axum::Json(app.list_remediations(&who, &f).await?))
}

/// One remediation item with its history.
#[utoipa::path(get, path = "/api/v1/remediations/{id}", tag = "remediation", params(("id" = i64, Path, example = 1)),
    responses((status = 200, body = Remediation), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(id): Path<i64>,
) -> Result<axum::Json<Remediation>, ApiError> {
    Ok(axum::Json(app.get_remediation(&who, id).await?))
}

/// Reports an item done, with evidence (an owner of the system's organisation); it then waits
/// for PA05's verification.
#[utoipa::path(post, path = "/api/v1/remediations/{id}/fulfil", tag = "remediation", params(("id" = i64, Path, example = 1)), request_body(content = Fulfilment, example = super::examples::fulfilment),
    responses((status = 200, body = Remediation), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn fulfil(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(id): Path<i64>,
    Json(f): Json<Fulfilment>,
) -> Result<axum::Json<Remediation>, ApiError> {
    Ok(axum::Json(
        app.fulfil_remediation(&who, id, f.evidence).await?,
    ))
}

/// Verifies a fulfilled item (a PA05 reviewer who did not fulfil it): accepted closes it; not
/// accepted reopens it with the note.
#[utoipa::path(post, path = "/api/v1/remediations/{id}/verify", tag = "remediation", params(("id" = i64, Path, example = 1)), request_body(content = Verification, example = super::examples::verification),
    responses((status = 200, body = Remediation), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn verify(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(id): Path<i64>,
    Json(v): Json<Verification>,
) -> Result<axum::Json<Remediation>, ApiError> {
    Ok(axum::Json(
        app.verify_remediation(&who, id, v.accepted, v.note).await?,
    ))
}
