//! Accounts over their life (list, deactivate, reactivate, another role or organisation) and
//! the list of incidents (issue 11). `GET /api/v1/users` sits in `registry` beside
//! `POST /api/v1/users` (one path, one entry of the OpenAPI document).

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Actor, Json, Path, Query};
use axum::extract::State;
use changegate_api::*;
use changegate_app::identity::accounts::UserFilter;
use changegate_app::incident_list::IncidentFilter;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

type Answer<T> = Result<axum::Json<T>, ApiError>;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(get_user, edit_user))
        .routes(routes!(deactivate))
        .routes(routes!(reactivate))
        .routes(routes!(list_incidents))
}

/// Filters of the list of accounts.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserParams {
    /// Organisation code.
    #[param(example = "STNMT")]
    org: Option<String>,
    /// Role.
    #[param(example = "owner")]
    role: Option<String>,
    /// `active`, `inactive` or `locked`.
    #[param(example = "inactive")]
    status: Option<String>,
    /// Words of the username or full name, with or without diacritics (`nguyen van` finds
    /// "Nguyễn Văn An").
    #[param(example = "nguyen van")]
    q: Option<String>,
    /// Page, from 1.
    page: Option<u64>,
    /// Items per page (1-500, default 50).
    limit: Option<u64>,
}

impl From<UserParams> for UserFilter {
    fn from(q: UserParams) -> Self {
        UserFilter {
            org: q.org,
            role: q.role,
            status: q.status,
            q: q.q,
            page: q.page,
            limit: q.limit,
        }
    }
}

/// One account (admin).
#[utoipa::path(get, path = "/api/v1/users/{username}", tag = "registry", params(("username" = String, Path, example = "le.van.cuong")),
    responses((status = 200, body = UserSummary), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_user(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(username): Path<String>,
) -> Answer<UserSummary> {
    Ok(axum::Json(app.get_user(&who, &username).await?))
}

/// Gives an account another role, another organisation, or both (admin). Its sessions and API
/// tokens end. Refused for one's own account (`own_account`), for the last active admin
/// (`last_admin`) and for an inactive account (`account_inactive`).
#[utoipa::path(patch, path = "/api/v1/users/{username}", tag = "registry", params(("username" = String, Path, example = "le.van.cuong")),
    request_body(content = EditUser, example = super::examples::edit_user),
    responses((status = 200, body = UserSummary), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn edit_user(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(username): Path<String>,
    Json(e): Json<EditUser>,
) -> Answer<UserSummary> {
    Ok(axum::Json(app.edit_user(&who, &username, e).await?))
}

/// Deactivates an account (admin), with a reason: from that instant its sessions and API tokens
/// are refused on every replica and it cannot sign in; what it did stays attributed to it.
/// Refused for one's own account (`own_account`), the last active admin (`last_admin`) and an
/// inactive account (`already_inactive`).
#[utoipa::path(post, path = "/api/v1/users/{username}/deactivate", tag = "registry", params(("username" = String, Path, example = "le.van.cuong")),
    request_body(content = Deactivation, example = super::examples::deactivation),
    responses((status = 200, body = UserSummary), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn deactivate(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(username): Path<String>,
    Json(d): Json<Deactivation>,
) -> Answer<UserSummary> {
    Ok(axum::Json(
        app.deactivate_user(&who, &username, &d.reason).await?,
    ))
}

/// Reactivates a deactivated account (admin). Its old sessions and tokens stay ended.
#[utoipa::path(post, path = "/api/v1/users/{username}/reactivate", tag = "registry", params(("username" = String, Path, example = "le.van.cuong")),
    responses((status = 200, body = UserSummary), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn reactivate(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(username): Path<String>,
) -> Answer<UserSummary> {
    Ok(axum::Json(app.reactivate_user(&who, &username).await?))
}

/// Filters of the list of incidents.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct IncidentParams {
    /// `open` or `resolved`.
    #[param(example = "open")]
    state: Option<String>,
    /// System code.
    #[param(example = "TTHC-TINH")]
    system: Option<String>,
    /// Owner organisation code.
    #[param(example = "STNMT")]
    org: Option<String>,
    /// Kind.
    #[param(example = "abnormal_access")]
    kind: Option<String>,
    /// Severity.
    #[param(example = "high")]
    severity: Option<String>,
    /// Reported on or after this day (YYYY-MM-DD, the server's time zone).
    #[param(example = "2026-12-01")]
    from: Option<String>,
    /// Reported on or before this day.
    #[param(example = "2026-12-31")]
    to: Option<String>,
    /// Words of the summary, with or without diacritics (`truy cap` finds "Truy cập").
    #[param(example = "truy cap")]
    q: Option<String>,
    /// Page, from 1.
    page: Option<u64>,
    /// Items per page (1-500, default 50).
    limit: Option<u64>,
}

/// Incidents of the systems visible to the caller: open ones first, then the newest.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", params(IncidentParams),
    responses((status = 200, body = IncidentList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_incidents(
    State(app): State<AppState>,
    Actor(who): Actor,
    Query(q): Query<IncidentParams>,
) -> Answer<IncidentList> {
    let f = IncidentFilter {
        state: q.state,
        system: q.system,
        org: q.org,
        kind: q.kind,
        severity: q.severity,
        from: q.from,
        to: q.to,
        q: q.q,
        page: q.page,
        limit: q.limit,
    };
    Ok(axum::Json(app.list_incidents(&who, &f).await?))
}
