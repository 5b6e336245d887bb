//! One's own account: change password, sessions, sign out everywhere.

use super::errors::WebError;
use super::extract::{FormData, Signed};
use super::login::{check_new_password, password_errors};
use super::msg::Errors;
use super::reply::see_other;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use minijinja::Value;

async fn page(
    app: &AppState,
    s: &Signed,
    status: StatusCode,
    errors: Errors,
) -> Result<Response, WebError> {
    let sessions = app.list_sessions(&s.s).await?;
    s.page(
        status,
        "account.html",
        minijinja::context! {
        sessions => Value::from_serialize(&sessions), errors => errors },
    )
}

/// `GET /account`.
pub async fn show(State(app): State<AppState>, s: Signed) -> Result<Response, WebError> {
    page(&app, &s, StatusCode::OK, Errors::new()).await
}

/// `POST /account/password` (`current_password`, `new_password`, `confirm_password`).
pub async fn change_password(
    State(app): State<AppState>,
    s: Signed,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    let username = s.who().username.clone();
    let mut errors = check_new_password(s.lang, &username, &f);
    if f.get("current_password").is_empty() {
        super::msg::add(&mut errors, s.lang, "current_password");
    }
    if errors.is_empty() {
        let current = Some(f.get("current_password"));
        match app
            .change_password(&s.s, current, f.get("new_password"))
            .await
        {
            Ok(_) => return Ok(see_other("/account?ok=password_changed")),
            Err(e) => errors = password_errors(s.lang, e, &username, f.get("new_password"))?,
        }
    }
    page(&app, &s, StatusCode::UNPROCESSABLE_ENTITY, errors).await
}
