//! The web UI: server-rendered pages (minijinja templates embedded in the binary), Vietnamese by
//! default with an English switch, plain HTML forms with CSRF tokens.
//!
//! Handlers are thin: they read the form, call one use case of the app crate (which holds every
//! rule: visibility, separation of duties, validation), and render a page or redirect. A form
//! with a bad field is shown again (422) with the message next to the field and the values kept;
//! another organisation's system or change is "not found" and names nothing.

mod account;
mod admin;
mod audit;
mod changes;
mod evaluate;
mod export;
pub mod i18n;
mod incidents;
mod login;
pub mod msg;
mod pages;
pub mod render;
pub mod session;
#[cfg(test)]
mod tests;
mod tokens;

use crate::AppState;
use axum::Router;
use axum::extract::Request;
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use session::ErrorPage;

const STYLE: &str = include_str!("../../static/style.css");

/// The routes of the pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/static/style.css", get(style))
        .route("/lang", post(login::set_lang))
        .route("/login", get(login::form).post(login::submit))
        .route(
            "/login/password",
            get(login::password_form).post(login::password_submit),
        )
        .route(
            "/login/totp",
            get(login::totp_form).post(login::totp_submit),
        )
        .route("/login/otp", get(login::otp_form).post(login::otp_submit))
        .route("/logout", post(login::logout))
        .route("/", get(pages::dashboard))
        .route("/systems", get(pages::systems))
        .route("/systems/{code}", get(pages::system))
        .route("/changes", get(changes::list).post(changes::file))
        .route("/changes/new", get(changes::new_form))
        .route("/changes/{id}", get(changes::show))
        .route("/changes/{id}/submit", post(changes::submit))
        .route("/changes/{id}/withdraw", post(changes::withdraw))
        .route(
            "/changes/{id}/evaluate",
            get(evaluate::form).post(evaluate::submit),
        )
        .route("/changes/{id}/report", get(evaluate::report))
        .route("/incidents", get(incidents::list))
        .route(
            "/incidents/new",
            get(incidents::new_form).post(incidents::report),
        )
        .route("/incidents/{id}/resolve", post(incidents::resolve))
        .route("/audit", get(audit::search))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}/revoke", post(tokens::revoke))
        .route("/account", get(account::show))
        .route("/account/password", post(account::change_password))
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/users/{username}/unlock", post(admin::unlock))
        .route(
            "/admin/users/{username}/reset-password",
            post(admin::reset_password),
        )
        .route(
            "/admin/users/{username}/reset-second-factor",
            post(admin::reset_second_factor),
        )
        .route("/admin/signals", get(admin::signals))
        .route("/export/systems.csv", get(export::systems))
        .route("/export/changes.csv", get(export::changes))
        .layer(axum::middleware::from_fn(render_errors))
}

/// Turns the error answers of the handlers into pages in the request's language.
async fn render_errors(req: Request, next: Next) -> Response {
    let lang = session::lang_of(req.headers());
    let mut res = next.run(req).await;
    match res.extensions_mut().remove::<ErrorPage>() {
        Some(page) => session::error_response(lang, "Asia/Ho_Chi_Minh", page),
        None => res,
    }
}

/// The answer to a path nobody serves: a page for a browser, a problem document for the API.
pub async fn fallback(req: Request) -> Response {
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html && !req.uri().path().starts_with("/api/") {
        let lang = session::lang_of(req.headers());
        let page = session::WebError::NotFound.page();
        return session::error_response(lang, "Asia/Ho_Chi_Minh", page);
    }
    crate::error::not_found().await.into_response()
}

async fn style() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        STYLE,
    )
        .into_response()
}
