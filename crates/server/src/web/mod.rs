//! The web UI: server-rendered pages (minijinja templates embedded in the binary), Vietnamese by
//! default with an English switch, plain HTML forms with CSRF tokens.
//!
//! Handlers are thin: they read the form, call one use case of the app crate (which holds every
//! rule: visibility, separation of duties, validation), and render a page or redirect. A form
//! with a bad field is shown again (422) with the message next to the field and the values kept;
//! another organisation's system or change is "not found" and names nothing.

mod account;
mod admin;
mod annual;
mod audit;
mod changes;
pub mod client_ip;
pub mod cookies;
pub mod csrf;
mod documents;
pub mod errors;
mod evaluate;
mod export;
pub mod extract;
mod forms;
pub mod i18n;
mod incidents;
mod login;
pub mod msg;
mod pages;
mod people;
mod query;
mod remediations;
pub mod render;
pub mod reply;
pub mod session;
#[cfg(test)]
mod tests;
mod tokens;

use crate::AppState;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use errors::ErrorPage;

const STYLE: &str = include_str!("../../static/style.css");

/// The routes of the pages.
pub fn router(state: AppState) -> Router<AppState> {
    Router::new()
        .route("/static/style.css", get(style))
        .route("/static/print/{file}", get(documents::print_css))
        .route("/about/rules", get(documents::about_rules))
        .route(
            "/incidents/{id}/breach-notice",
            get(documents::breach_notice),
        )
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
        .route("/systems/{code}/edit", post(pages::edit_system))
        .route("/systems/{code}/retire", post(pages::retire_system))
        .route("/changes", get(changes::list).post(changes::file))
        .route("/changes/new", get(changes::new_form))
        .route("/changes/{id}", get(changes::show))
        .route(
            "/changes/{id}/edit",
            get(changes::edit_form).post(changes::edit),
        )
        .route("/changes/{id}/submit", post(changes::submit))
        .route(
            "/changes/{id}/external-assessment",
            post(changes::external_assessment),
        )
        .route(
            "/changes/{id}/withdraw",
            get(changes::confirm_withdraw).post(changes::withdraw),
        )
        .route(
            "/changes/{id}/evaluate",
            get(evaluate::form).post(evaluate::submit),
        )
        .route("/changes/{id}/report", get(evaluate::report))
        .route("/remediations", get(remediations::list))
        .route("/remediations/{id}", get(remediations::show))
        .route("/remediations/{id}/fulfil", post(remediations::fulfil))
        .route("/remediations/{id}/verify", post(remediations::verify))
        .route("/incidents", get(incidents::list))
        .route(
            "/incidents/new",
            get(incidents::new_form).post(incidents::report),
        )
        .route("/incidents/{id}", get(incidents::show))
        .route(
            "/incidents/{id}/resolve",
            get(incidents::confirm_resolve).post(incidents::resolve),
        )
        .route("/incidents/{id}/notices", post(incidents::notice))
        .route("/audit", get(audit::search))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{id}/revoke", post(tokens::revoke))
        .route("/account", get(account::show))
        .route("/account/password", post(account::change_password))
        .route("/admin/users", get(admin::users).post(admin::create_user))
        .route("/admin/users/{username}", get(people::show))
        .route(
            "/admin/users/{username}/deactivate",
            post(people::deactivate),
        )
        .route(
            "/admin/users/{username}/reactivate",
            post(people::reactivate),
        )
        .route("/admin/users/{username}/edit", post(people::edit))
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
        .route(
            "/systems/{code}/level-record",
            get(annual::level_record).post(annual::save_level_record),
        )
        .route("/systems/{code}/relevel", post(annual::relevel))
        .route("/organisations", get(annual::organisations))
        .route(
            "/organisations/{code}",
            get(annual::organisation).post(annual::save_organisation),
        )
        .route("/reports/annual", get(annual::report))
        .route("/reports/annual/print", get(annual::print))
        .route("/reports/annual.csv", get(annual::csv))
        .route("/export/systems.csv", get(export::systems))
        .route("/export/changes.csv", get(export::changes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            forms::guard,
        ))
        .layer(axum::middleware::from_fn_with_state(state, render_errors))
}

/// What every HTML page may do: its own style sheet and forms, no script at all (the pages work
/// without JavaScript), never inside a frame.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Security headers on every HTML answer (pages, error pages, the fallback): the content
/// security policy, no framing, no type sniffing, no referrer beyond the site, and HSTS when
/// the server is behind TLS.
pub async fn security_headers(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    let h = res.headers_mut();
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    if html {
        // A printable document that carries its own style sheet sets a policy of its own
        // (allowing exactly that sheet, by hash); every other page gets this one.
        h.entry(header::CONTENT_SECURITY_POLICY)
            .or_insert(header::HeaderValue::from_static(CONTENT_SECURITY_POLICY));
        h.insert(
            header::X_FRAME_OPTIONS,
            header::HeaderValue::from_static("DENY"),
        );
        h.insert(
            header::REFERRER_POLICY,
            header::HeaderValue::from_static("same-origin"),
        );
        if app.edge.behind_tls {
            h.insert(
                header::STRICT_TRANSPORT_SECURITY,
                header::HeaderValue::from_static("max-age=31536000"),
            );
        }
    }
    res
}

/// Turns the error answers of the handlers into pages in the request's language, with the
/// navigation of the signed-in person and a way back to what the page was about.
async fn render_errors(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let lang = cookies::lang_of(req.headers());
    let (parts, body) = req.into_parts();
    let mut res = next.run(Request::from_parts(parts.clone(), body)).await;
    match res.extensions_mut().remove::<ErrorPage>() {
        Some(page) => {
            let signed = signed_session(&app, &parts).await;
            errors::error_page(lang, app.tz.name(), page, signed.as_ref(), parts.uri.path())
        }
        None => res,
    }
}

/// The signed-in (active) session of a request, if any.
async fn signed_session(
    app: &AppState,
    parts: &axum::http::request::Parts,
) -> Option<changegate_app::sessions::WebSession> {
    let token = cookies::get(&parts.headers, changegate_app::sessions::SESSION_COOKIE)
        .filter(|t| !t.is_empty())?;
    let ip = client_ip::peer_ip(parts, &app.edge.trusted_proxies);
    app.web_session(token, ip)
        .await
        .ok()
        .filter(|s| s.stage == changegate_app::sessions::Stage::Active)
}

/// The answer to a path nobody serves: a page for a browser, a problem document for the API.
pub async fn fallback(State(app): State<AppState>, req: Request) -> Response {
    let wants_html = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/html"));
    if wants_html && !req.uri().path().starts_with("/api/") {
        let lang = cookies::lang_of(req.headers());
        let page = errors::WebError::NotFound.page();
        let (parts, _) = req.into_parts();
        let signed = signed_session(&app, &parts).await;
        return errors::error_page(lang, app.tz.name(), page, signed.as_ref(), "/");
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
