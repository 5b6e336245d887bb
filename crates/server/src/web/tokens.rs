//! One's own API tokens: create (shown once), list, revoke.

use super::errors::WebError;
use super::extract::{FormData, Seg, Signed};
use super::msg::{self, Errors};
use super::reply::see_other;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use changegate_api::NewToken;
use changegate_app::AppError;
use minijinja::Value;

async fn page(
    app: &AppState,
    s: &Signed,
    status: StatusCode,
    ctx: Value,
) -> Result<Response, WebError> {
    let tokens = app.list_tokens(s.who()).await?;
    s.page(
        status,
        "tokens.html",
        minijinja::context! { tokens => Value::from_serialize(&tokens), ..ctx },
    )
}

/// `GET /tokens`.
pub async fn list(State(app): State<AppState>, s: Signed) -> Result<Response, WebError> {
    page(
        &app,
        &s,
        StatusCode::OK,
        minijinja::context! { errors => Errors::new(), name => "", expires_days => "90" },
    )
    .await
}

/// `POST /tokens` (`name`, `expires_days`): the new token is shown once.
pub async fn create(
    State(app): State<AppState>,
    s: Signed,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    let (name, days) = (
        f.get("name").to_owned(),
        f.get("expires_days").trim().to_owned(),
    );
    let mut errors = Errors::new();
    let expires_in_days = match days.as_str() {
        "" => None,
        d => match d.parse::<u32>() {
            Ok(n) => Some(n),
            Err(_) => {
                msg::add(&mut errors, s.lang, "expires_days");
                None
            }
        },
    };
    if errors.is_empty() {
        let username = s.who().username.clone();
        match app
            .create_token(
                s.who(),
                &username,
                NewToken {
                    name: name.clone(),
                    expires_in_days,
                },
            )
            .await
        {
            Ok(created) => {
                return page(
                    &app,
                    &s,
                    StatusCode::OK,
                    minijinja::context! {
                    errors => errors, name => "", expires_days => "90",
                    new_token => created.token, new_token_name => created.info.name },
                )
                .await;
            }
            Err(AppError::Invalid(errs)) => {
                for (field, _) in &errs {
                    let ff = if field == "name" {
                        "name"
                    } else {
                        "expires_days"
                    };
                    msg::add(&mut errors, s.lang, ff);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    page(
        &app,
        &s,
        StatusCode::UNPROCESSABLE_ENTITY,
        minijinja::context! {
        errors => errors, name => name, expires_days => days },
    )
    .await
}

/// `POST /tokens/{id}/revoke`.
pub async fn revoke(
    State(app): State<AppState>,
    s: Signed,
    id: Seg,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    app.revoke_token(s.who(), &id.0).await?;
    Ok(see_other("/tokens?ok=token_revoked"))
}
