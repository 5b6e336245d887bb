//! Nothing typed is lost, nothing is done twice (issue 17), for every form of the signed-in
//! pages, in one layer around them:
//!
//! - a page asked for without a session goes to the sign-in with `next`, the page, so the
//!   sign-in comes back to it;
//! - a form sent after its session ended keeps its fields in a draft (see
//!   [`changegate_app::identity::forms`]); the sign-in comes back to the page the form was on,
//!   which shows them again;
//! - a form's one-time `form_id` acts once: a second submission (a double click, a retry, the
//!   back button) is sent where the first one went.

use super::cookies;
use super::csrf::random_token;
use super::errors::WebError;
use super::reply::{local_path, see_other};
use crate::AppState;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use changegate_app::identity::forms::{FormClaim, draft_fields};
use changegate_app::sessions::SESSION_COOKIE;
use std::time::Duration;

/// The largest form body read (the API's own limit is the same order).
const MAX_FORM: usize = 2 * 1024 * 1024;
/// Changed after every form that acted (see [`guard`]).
const ACTED_COOKIE: &str = "cg_acted";
/// How long a second submission waits for the first to finish.
const WAIT_FIRST: Duration = Duration::from_secs(15);

/// The sign-in page, coming back to `next` (a local path) afterwards.
pub fn login_with_next(next: &str) -> String {
    let next = local_path(next);
    if next == "/" {
        return "/login".into();
    }
    let enc: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
    format!("/login?next={enc}")
}

fn goes_to_login(res: &Response) -> bool {
    res.status() == StatusCode::SEE_OTHER
        && res
            .headers()
            .get(header::LOCATION)
            .is_some_and(|l| l.as_bytes() == b"/login")
}

fn location(res: &Response) -> Option<String> {
    (res.status() == StatusCode::SEE_OTHER)
        .then(|| res.headers().get(header::LOCATION))
        .flatten()
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned)
}

/// The page a form was sent from: the `Referer`'s path and query when it is this site's (the
/// pages send it within the site only), else `fallback`. Without any `draft` it carried.
fn page_of(req: &Request, fallback: &str) -> String {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok());
    let from = req
        .headers()
        .get(header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| url::Url::parse(r).ok())
        .filter(|u| {
            let authority = match u.port() {
                Some(p) => format!("{}:{p}", u.host_str().unwrap_or("")),
                None => u.host_str().unwrap_or("").to_owned(),
            };
            host == Some(authority.as_str())
        })
        .map(|u| {
            let query: Vec<(String, String)> = u
                .query_pairs()
                .filter(|(k, _)| k != "draft" && k != "ok" && k != "err")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let mut p = u.path().to_owned();
            if !query.is_empty() {
                p.push('?');
                p.push_str(
                    &url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(query)
                        .finish(),
                );
            }
            p
        });
    local_path(&from.unwrap_or_else(|| fallback.to_owned()))
}

/// Paths whose forms are not a signed-in page's (sign-in, its stages, the language switch,
/// sign-out).
fn outside(path: &str) -> bool {
    path.starts_with("/login") || path == "/lang" || path == "/logout"
}

/// The layer.
pub async fn guard(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if req.method() == Method::GET || req.method() == Method::HEAD {
        let asked = req
            .uri()
            .path_and_query()
            .map_or_else(|| path.clone(), |p| p.as_str().to_owned());
        let res = next.run(req).await;
        if goes_to_login(&res) && !outside(&path) {
            return see_other(&login_with_next(&asked));
        }
        return res;
    }
    if req.method() != Method::POST || outside(&path) {
        return next.run(req).await;
    }
    let page = page_of(&req, &path);
    let token = cookies::get(req.headers(), SESSION_COOKIE)
        .filter(|t| !t.is_empty())
        .map(str::to_owned);
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORM).await else {
        return WebError::BadRequest.into_response();
    };
    let form_id = url::form_urlencoded::parse(&bytes)
        .find(|(k, _)| k == "form_id")
        .map(|(_, v)| v.into_owned())
        .filter(|v| (20..=100).contains(&v.len()));
    let claim = match (&token, &form_id) {
        (Some(t), Some(f)) => Some((t.clone(), f.clone())),
        _ => None,
    };
    if let Some((t, f)) = &claim {
        let started = std::time::Instant::now();
        loop {
            match app.claim_form(t, f).await {
                Ok(FormClaim::First) => break,
                Ok(FormClaim::Done(to)) => return see_other(&to),
                Ok(FormClaim::Running) if started.elapsed() < WAIT_FIRST => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Ok(FormClaim::Running) => return WebError::Conflict.into_response(),
                Err(e) => return WebError::from(e).into_response(),
            }
        }
    }
    let res = next
        .run(Request::from_parts(parts, Body::from(bytes.clone())))
        .await;
    if goes_to_login(&res) {
        if let Some((t, f)) = &claim
            && let Err(e) = app.release_form(t, f).await
        {
            tracing::warn!(error = %e, "a form id could not be given back");
        }
        return match app.save_draft(&page, &draft_fields(&bytes)).await {
            Ok(id) => {
                let sep = if page.contains('?') { '&' } else { '?' };
                see_other(&login_with_next(&format!("{page}{sep}draft={id}")))
            }
            Err(e) => {
                tracing::warn!(error = %e, "a draft could not be kept");
                see_other(&login_with_next(&page))
            }
        };
    }
    let mut res = res;
    if location(&res).is_some() {
        // A form acted: the pages shown before it are stale. A changed cookie keeps browsers
        // from restoring them from their back-forward cache (they ask the server again), so
        // the back button shows what came of the action, never the old form.
        res.headers_mut().append(
            header::SET_COOKIE,
            cookies::set(
                app.edge.behind_tls,
                ACTED_COOKIE,
                &random_token()[..12],
                None,
            ),
        );
    }
    if let Some((t, f)) = &claim {
        let done = match location(&res) {
            Some(to) => app.finish_form(t, f, &to).await,
            None => app.release_form(t, f).await,
        };
        if let Err(e) = done {
            tracing::warn!(error = %e, "a form id could not be recorded");
        }
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sign_in_comes_back_only_to_local_pages() {
        assert_eq!(login_with_next("/changes/8"), "/login?next=%2Fchanges%2F8");
        assert_eq!(login_with_next("//evil.example"), "/login");
        assert_eq!(login_with_next("https://evil.example/"), "/login");
        assert_eq!(login_with_next("/\\evil.example"), "/login");
        assert_eq!(login_with_next("/"), "/login");
    }
}
