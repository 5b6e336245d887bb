//! Incidents.

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Actor, Json, Path};
use axum::extract::State;
use axum::http::StatusCode;
use changegate_api::{
    A05Notified, BreachRecord, Incident, NewIncident, NewIncidentNotice, Problem,
};
use utoipa_axum::{router::OpenApiRouter, routes};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(report))
        .routes(routes!(resolve))
        .routes(routes!(a05_notified))
        .routes(routes!(notice))
        .routes(routes!(breach))
}

/// Records a notice sent about an incident (owners of the system's organisation, PA05
/// reviewers): `initial`, `report`, `interim`, `final` or `a05`, when, to whom, how, its document
/// number. The incident's `deadlines` then show it sent; each notice but an interim report is
/// recorded once.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/notices", tag = "incidents", params(("id" = i64, Path, example = 1)), request_body(content = NewIncidentNotice, example = super::examples::incident_notice),
    responses((status = 200, body = Incident), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn notice(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(id): Path<i64>,
    Json(n): Json<NewIncidentNotice>,
) -> Result<axum::Json<Incident>, ApiError> {
    Ok(axum::Json(app.record_incident_notice(&who, id, n).await?))
}

/// Records the fields of a personal-data breach's notice to A05 (Decree 356/2025: description,
/// data categories, approximate number of data subjects, consequences, measures taken) and the
/// confirmation record's reference (owners of the system's organisation, PA05 reviewers). It
/// replaces the record before; texts are kept exactly as given.
#[utoipa::path(put, path = "/api/v1/incidents/{id}/breach", tag = "incidents", params(("id" = i64, Path, example = 1)), request_body(content = BreachRecord, example = super::examples::breach_record),
    responses((status = 200, body = Incident), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn breach(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(id): Path<i64>,
    Json(b): Json<BreachRecord>,
) -> Result<axum::Json<Incident>, ApiError> {
    Ok(axum::Json(app.record_breach(&who, id, b).await?))
}

/// Reports an incident on a system; an open high or critical one closes the gate.
#[utoipa::path(post, path = "/api/v1/systems/{code}/incidents", tag = "incidents", params(("code" = String, Path, example = "TTHC-TINH")), request_body(content = NewIncident, example = super::examples::new_incident),
    responses((status = 201, body = Incident), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn report(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(code): Path<String>,
    Json(n): Json<NewIncident>,
) -> Result<(StatusCode, axum::Json<Incident>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.report_incident(&who, &code, n).await?),
    ))
}

/// Resolves an incident (reviewer, admin).
#[utoipa::path(post, path = "/api/v1/incidents/{id}/resolve", tag = "incidents", params(("id" = i64, Path, example = 1)),
    responses((status = 200, body = Incident), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn resolve(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(id): Path<i64>,
) -> Result<axum::Json<Incident>, ApiError> {
    Ok(axum::Json(app.resolve_incident(&who, id).await?))
}

/// Records when A05 was notified of a personal-data breach; stops the 72-hour reminders.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/a05-notified", tag = "incidents", params(("id" = i64, Path, example = 1)), request_body(content = A05Notified, example = super::examples::a05_notified),
    responses((status = 200, body = Incident), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn a05_notified(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(id): Path<i64>,
    Json(n): Json<A05Notified>,
) -> Result<axum::Json<Incident>, ApiError> {
    Ok(axum::Json(
        app.record_a05_notified(&who, id, n.notified_at).await?,
    ))
}
