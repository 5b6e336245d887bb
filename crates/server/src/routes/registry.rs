//! Organisations, users, tokens, systems, and who am I.

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Actor, Json, Path};
use axum::extract::State;
use axum::http::StatusCode;
use changegate_api::*;
use utoipa_axum::{router::OpenApiRouter, routes};

type Created<T> = Result<(StatusCode, axum::Json<T>), ApiError>;
type Answer<T> = Result<axum::Json<T>, ApiError>;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(me))
        .routes(routes!(create_organisation))
        .routes(routes!(create_user))
        .routes(routes!(create_token, list_tokens))
        .routes(routes!(revoke_token))
        .routes(routes!(create_system))
        .routes(routes!(get_system))
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
