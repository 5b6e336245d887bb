//! Change requests and their transitions.

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Actor, Json, Path, PeerIp, Query};
use axum::extract::State;
use axum::http::StatusCode;
use changegate_api::*;
use changegate_app::changes::ChangeFilter;
use changegate_domain::change::Command;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

type Answer = Result<axum::Json<ChangeRequest>, ApiError>;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(file, list))
        .routes(routes!(get, edit))
        .routes(routes!(submit))
        .routes(routes!(withdraw))
        .routes(routes!(request_changes))
        .routes(routes!(revoke))
        .routes(routes!(sign_off))
        .routes(routes!(external_assessment))
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
    /// State.
    #[param(example = "submitted")]
    state: Option<String>,
    /// Kind.
    #[param(example = "software")]
    kind: Option<String>,
    /// Filed on or after this day (YYYY-MM-DD, the server's time zone).
    #[param(example = "2026-12-01")]
    from: Option<String>,
    /// Filed on or before this day.
    #[param(example = "2026-12-31")]
    to: Option<String>,
    /// Words of the title or description, with or without diacritics (`nang cap` finds
    /// "Nâng cấp").
    #[param(example = "nang cap")]
    q: Option<String>,
    /// Page, from 1.
    page: Option<u64>,
    /// Items per page (1-500, default 50).
    limit: Option<u64>,
}

/// Files a change request (owner); it starts as a draft.
#[utoipa::path(post, path = "/api/v1/change-requests", tag = "change requests", request_body(content = NewChangeRequest, example = super::examples::new_change_request),
    responses((status = 201, body = ChangeRequest), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn file(
    State(app): State<AppState>,
    Actor(who): Actor,
    Json(n): Json<NewChangeRequest>,
) -> Result<(StatusCode, axum::Json<ChangeRequest>), ApiError> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.file_change(&who, n).await?),
    ))
}

/// Change requests visible to the caller, newest first.
#[utoipa::path(get, path = "/api/v1/change-requests", tag = "change requests", params(ListParams),
    responses((status = 200, body = ChangeRequestList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list(
    State(app): State<AppState>,
    Actor(who): Actor,
    Query(q): Query<ListParams>,
) -> Result<axum::Json<ChangeRequestList>, ApiError> {
    let f = ChangeFilter {
        system: q.system,
        org: q.org,
        state: q.state,
        kind: q.kind,
        from: q.from,
        to: q.to,
        q: q.q,
        page: q.page,
        limit: q.limit,
    };
    Ok(axum::Json(app.list_changes(&who, &f).await?))
}

/// A change request with its state, subjects, sign-offs and the checklist to answer.
#[utoipa::path(get, path = "/api/v1/change-requests/{id}", tag = "change requests", params(("id" = i64, Path, example = 3)),
    responses((status = 200, body = ChangeRequest), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get(State(app): State<AppState>, Actor(who): Actor, Path(id): Path<i64>) -> Answer {
    Ok(axum::Json(app.get_change(&who, id).await?))
}

/// Edits a draft (owner).
#[utoipa::path(patch, path = "/api/v1/change-requests/{id}", tag = "change requests", params(("id" = i64, Path, example = 3)), request_body(content = EditChangeRequest, example = super::examples::edit_change_request),
    responses((status = 200, body = ChangeRequest), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn edit(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(id): Path<i64>,
    Json(e): Json<EditChangeRequest>,
) -> Answer {
    Ok(axum::Json(app.edit_change(&who, id, e).await?))
}

/// Submits a draft for the PA05 evaluation (owner).
#[utoipa::path(post, path = "/api/v1/change-requests/{id}/submit", tag = "change requests", params(("id" = i64, Path, example = 3)),
    responses((status = 200, body = ChangeRequest), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn submit(State(app): State<AppState>, Actor(who): Actor, Path(id): Path<i64>) -> Answer {
    Ok(axum::Json(
        app.act_on_change(Some(&who), id, Command::Submit).await?,
    ))
}

/// Withdraws a draft or submitted change (owner).
#[utoipa::path(post, path = "/api/v1/change-requests/{id}/withdraw", tag = "change requests", params(("id" = i64, Path, example = 3)),
    responses((status = 200, body = ChangeRequest), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn withdraw(State(app): State<AppState>, Actor(who): Actor, Path(id): Path<i64>) -> Answer {
    Ok(axum::Json(
        app.act_on_change(Some(&who), id, Command::Withdraw).await?,
    ))
}

/// Sends a submitted change back to its owner (reviewer), with a note and findings
/// (`{severity, text, item?}`); each finding becomes a remediation item of the owner's
/// organisation. The change is a draft again, in a new evaluation round.
#[utoipa::path(post, path = "/api/v1/change-requests/{id}/request-changes", tag = "change requests", params(("id" = i64, Path, example = 2)), request_body(content = Note, example = super::examples::note),
    responses((status = 200, body = ChangeRequest), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn request_changes(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(id): Path<i64>,
    Json(n): Json<Note>,
) -> Answer {
    Ok(axum::Json(app.request_changes(&who, id, n).await?))
}

/// Revokes an approval (reviewer).
#[utoipa::path(post, path = "/api/v1/change-requests/{id}/revoke", tag = "change requests", params(("id" = i64, Path, example = 1)), request_body(content = RevokeReason, example = super::examples::revoke_reason),
    responses((status = 200, body = ChangeRequest), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn revoke(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(id): Path<i64>,
    Json(r): Json<RevokeReason>,
) -> Answer {
    Ok(axum::Json(
        app.act_on_change(Some(&who), id, Command::Revoke { reason: r.reason })
            .await?,
    ))
}

/// Records the external assessment of a major change (Decree 331/2026 Art. 31.2.c; the owner of
/// its system's organisation or a PA05 reviewer): the organisation, its licence or designation,
/// the report's reference and the day, not in the future nor after the change's sign-off. A
/// major change passes its sign-off only once this is recorded. Recorded once.
#[utoipa::path(post, path = "/api/v1/change-requests/{id}/external-assessment", tag = "change requests", params(("id" = i64, Path, example = 2)), request_body(content = NewExternalAssessment, example = super::examples::external_assessment),
    responses((status = 200, body = ChangeRequest), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn external_assessment(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(id): Path<i64>,
    Json(n): Json<NewExternalAssessment>,
) -> Answer {
    Ok(axum::Json(
        app.record_external_assessment(&who, id, n).await?,
    ))
}

/// Records an evaluation and sign-off (reviewer of PA05, outside the owner organisation, who
/// neither filed nor edited the change). The body carries `second_factor_code`, a current code
/// from the reviewer's authenticator (enrolled in the web UI): a token alone cannot sign off.
#[utoipa::path(post, path = "/api/v1/change-requests/{id}/sign-off", tag = "change requests", params(("id" = i64, Path, example = 2)), request_body(content = NewSignOff, example = super::examples::sign_off),
    responses((status = 200, body = ChangeRequest), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn sign_off(
    State(app): State<AppState>,
    Actor(who): Actor,
    PeerIp(ip): PeerIp,
    Path(id): Path<i64>,
    Json(s): Json<NewSignOff>,
) -> Answer {
    Ok(axum::Json(app.sign_off_with_code(&who, id, s, ip).await?))
}
