//! Where a sign-in stands: the session a request's cookie names, the stage page it must go to
//! next, and the page asked for before signing in (the `cg_next` cookie), gone to once the
//! stages are done.

use super::client_ip::peer_ip;
use super::cookies;
use super::errors::WebError;
use super::reply::{local_path, see_other};
use crate::AppState;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::response::Response;
use changegate_app::AppError;
use changegate_app::sessions::{self as acct, Stage, WebSession};

/// The page to come back to once the sign-in's stages are done (URL-encoded local path).
pub const NEXT_COOKIE: &str = "cg_next";

/// The page a finished sign-in goes to: `next` when it is a local path, else the dashboard.
/// Clears the [`NEXT_COOKIE`].
pub fn after_sign_in(secure: bool, next: Option<&str>) -> Response {
    let mut res = see_other(&local_path(next.unwrap_or("/")));
    res.headers_mut().append(
        header::SET_COOKIE,
        cookies::set(secure, NEXT_COOKIE, "", Some(0)),
    );
    res
}

/// The [`NEXT_COOKIE`]'s page, if it is a local path.
pub fn next_of(headers: &HeaderMap) -> Option<String> {
    let raw = cookies::get(headers, NEXT_COOKIE)?;
    let decoded: String = url::form_urlencoded::parse(format!("n={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    let p = local_path(&decoded);
    (p != "/").then_some(p)
}

/// The stage page a session must go to next.
pub fn stage_path(stage: Stage) -> &'static str {
    match stage {
        Stage::ChangePassword => "/login/password",
        Stage::EnrolSecondFactor => "/login/totp",
        Stage::SecondFactor => "/login/otp",
        Stage::Active => "/",
    }
}

/// The session the request's cookie names, at any stage. Without one: 303 to `/login`.
pub async fn load(parts: &Parts, app: &AppState) -> Result<WebSession, WebError> {
    let to_login = || WebError::Redirect("/login".into());
    let token = cookies::get(&parts.headers, acct::SESSION_COOKIE)
        .filter(|t| !t.is_empty())
        .ok_or_else(to_login)?;
    match app
        .web_session(token, peer_ip(parts, &app.edge.trusted_proxies))
        .await
    {
        Ok(s) => Ok(s),
        Err(AppError::Internal(m)) => {
            tracing::error!(cause = %m, "a session could not be read");
            Err(WebError::Internal)
        }
        Err(AppError::Unavailable(_)) => Err(WebError::Unavailable),
        Err(_) => Err(to_login()),
    }
}
