//! Organisations, users, tokens, systems, and who am I.

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Actor, Json, Path, Query};
use axum::extract::State;
use axum::http::StatusCode;
use changegate_api::*;
use changegate_app::systems::SystemFilter;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

type Created<T> = Result<(StatusCode, axum::Json<T>), ApiError>;
type Answer<T> = Result<axum::Json<T>, ApiError>;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(create_organisation, list_organisations))
        .routes(routes!(create_user, list_users))
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(revoke_token))
        .routes(routes!(create_system, list_systems))
        .routes(routes!(get_system, edit_system))
        .routes(routes!(retire_system))
}

/// Who the token belongs to.
#[utoipa::path(get, path = "/api/v1/me", tag = "registry", responses((status = 200, body = Me), (status = 401, body = Problem, content_type = "application/problem+json")))]
async fn me(State(app): State<AppState>, Actor(who): Actor) -> Answer<Me> {
    Ok(axum::Json(app.me(&who)))
}

/// Creates an organisation (admin).
#[utoipa::path(post, path = "/api/v1/organisations", tag = "registry", request_body(content = NewOrganisation, example = super::examples::new_organisation),
    responses((status = 201, body = Organisation), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create_organisation(
    State(app): State<AppState>,
    Actor(who): Actor,
    Json(n): Json<NewOrganisation>,
) -> Created<Organisation> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_organisation(&who, n).await?),
    ))
}

/// The organisations the caller may see (owners: their own), with their Form 08 details.
#[utoipa::path(get, path = "/api/v1/organisations", tag = "registry",
    responses((status = 200, body = Vec<OrganisationDetails>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_organisations(
    State(app): State<AppState>,
    Actor(who): Actor,
) -> Answer<Vec<OrganisationDetails>> {
    Ok(axum::Json(app.organisation_details(&who).await?))
}

/// Creates a user (admin); the answer holds the one-time password, shown once.
#[utoipa::path(post, path = "/api/v1/users", tag = "registry", request_body(content = NewUser, example = super::examples::new_user),
    responses((status = 201, body = CreatedUser), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create_user(
    State(app): State<AppState>,
    Actor(who): Actor,
    Json(n): Json<NewUser>,
) -> Created<CreatedUser> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_user(&who, n).await?),
    ))
}

/// Accounts (admin), by username, filtered by organisation, role, status (`active`,
/// `inactive`, `locked`) and words of the username or full name; paged.
#[utoipa::path(get, path = "/api/v1/users", tag = "registry", params(super::people::UserParams),
    responses((status = 200, body = UserList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_users(
    State(app): State<AppState>,
    Actor(who): Actor,
    Query(q): Query<super::people::UserParams>,
) -> Answer<UserList> {
    Ok(axum::Json(app.users_page(&who, &q.into()).await?))
}

/// Issues a token for oneself; the secret is shown once.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "registry", request_body(content = NewToken, example = super::examples::new_token),
    responses((status = 201, body = CreatedToken), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create_token(
    State(app): State<AppState>,
    Actor(who): Actor,
    Json(n): Json<NewToken>,
) -> Created<CreatedToken> {
    let username = who.username.clone();
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_token(&who, &username, n).await?),
    ))
}

/// One's own tokens.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "registry", responses((status = 200, body = Vec<TokenInfo>), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_tokens(State(app): State<AppState>, Actor(who): Actor) -> Answer<Vec<TokenInfo>> {
    Ok(axum::Json(app.list_tokens(&who).await?))
}

/// Revokes a token (one's own; any, for an admin).
#[utoipa::path(post, path = "/api/v1/tokens/{id}/revoke", tag = "registry", params(("id" = String, Path)),
    responses((status = 200, body = TokenInfo), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn revoke_token(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(id): Path<String>,
) -> Answer<TokenInfo> {
    Ok(axum::Json(app.revoke_token(&who, &id).await?))
}

/// Registers a system (admin).
#[utoipa::path(post, path = "/api/v1/systems", tag = "registry", request_body(content = NewSystem, example = super::examples::new_system),
    responses((status = 201, body = System), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn create_system(
    State(app): State<AppState>,
    Actor(who): Actor,
    Json(n): Json<NewSystem>,
) -> Created<System> {
    Ok((
        StatusCode::CREATED,
        axum::Json(app.create_system(&who, n).await?),
    ))
}

/// A system.
#[utoipa::path(get, path = "/api/v1/systems/{code}", tag = "registry", params(("code" = String, Path, example = "TTHC-TINH")),
    responses((status = 200, body = System), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_system(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(code): Path<String>,
) -> Answer<System> {
    Ok(axum::Json(app.get_system(&who, &code).await?))
}

/// Filters of the list of systems.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct SystemParams {
    /// Owner organisation code.
    #[param(example = "STNMT")]
    org: Option<String>,
    /// Security level, 1-5.
    #[param(example = "3")]
    level: Option<String>,
    /// `active`, `suspended` or `retired`.
    #[param(example = "active")]
    status: Option<String>,
    /// Only systems whose re-review falls due before this date.
    #[param(example = "2027-01-01")]
    review_due_before: Option<String>,
    /// Page, from 1 (50 a page).
    page: Option<u64>,
}

/// Systems visible to the caller (owners: their organisation's), by code, 50 a page.
#[utoipa::path(get, path = "/api/v1/systems", tag = "registry", params(SystemParams),
    responses((status = 200, body = SystemList), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn list_systems(
    State(app): State<AppState>,
    Actor(who): Actor,
    Query(p): Query<SystemParams>,
) -> Answer<SystemList> {
    let f = SystemFilter {
        org: p.org,
        level: p.level,
        status: p.status,
        review_due_before: p.review_due_before,
        page: p.page,
    };
    Ok(axum::Json(app.list_systems(&who, &f).await?))
}

/// Edits a system's name, operating unit, environments or population-database flag (admin).
#[utoipa::path(patch, path = "/api/v1/systems/{code}", tag = "registry", params(("code" = String, Path, example = "TTHC-TINH")),
    request_body(content = EditSystem, example = json!({"operating_unit": "Trung tâm Chuyển đổi số", "environments": ["production", "staging"]})),
    responses((status = 200, body = System), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn edit_system(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(code): Path<String>,
    Json(e): Json<EditSystem>,
) -> Answer<System> {
    Ok(axum::Json(app.edit_system(&who, &code, e).await?))
}

/// Retires a system (admin): the gate then denies it with `system_retired`; its history stays.
#[utoipa::path(post, path = "/api/v1/systems/{code}/retire", tag = "registry", params(("code" = String, Path, example = "TTHC-TINH")),
    request_body(content = Retirement, example = json!({"reason": "Thay thế bởi hệ thống mới"})),
    responses((status = 200, body = System), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn retire_system(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(code): Path<String>,
    Json(r): Json<Retirement>,
) -> Answer<System> {
    Ok(axum::Json(app.retire_system(&who, &code, r).await?))
}
