//! The error answers of the pages: `WebError` (why a page could not be shown), the `ErrorPage` a
//! response carries to the error-page layer, and the error page itself.

use super::i18n::Lang;
use super::render::{self, base_context};
use super::reply::{html, local_path, see_other};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use changegate_app::AppError;
use changegate_app::sessions::WebSession;

/// Why a page could not be shown. Rendered as an HTML page in the request's language by
/// [`super::render_errors`]; a page of another organisation is "not found" and names nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebError {
    /// 303 to this path.
    Redirect(String),
    /// 404.
    NotFound,
    /// 403.
    Forbidden,
    /// 403: separation of duties.
    SeparationOfDuties,
    /// 403: the CSRF token is missing or wrong.
    Csrf,
    /// 409: not possible in the current state.
    Conflict,
    /// 400 / 422: a request the page cannot use.
    BadRequest,
    /// 503: the gate or database cannot answer now.
    Unavailable,
    /// 500.
    Internal,
}

/// The error a response carries to the error-page layer.
#[derive(Debug, Clone, Copy)]
pub struct ErrorPage {
    /// Status.
    pub status: StatusCode,
    /// Title key.
    pub title: &'static str,
    /// Message key.
    pub message: &'static str,
}

impl WebError {
    /// The error page of this error.
    pub fn page(&self) -> ErrorPage {
        let (status, title, message) = match self {
            WebError::NotFound | WebError::Redirect(_) => (
                StatusCode::NOT_FOUND,
                "error.not_found_title",
                "error.not_found",
            ),
            WebError::Forbidden => (
                StatusCode::FORBIDDEN,
                "error.forbidden_title",
                "error.forbidden",
            ),
            WebError::SeparationOfDuties => (
                StatusCode::FORBIDDEN,
                "error.forbidden_title",
                "error.separation_of_duties",
            ),
            WebError::Csrf => (StatusCode::FORBIDDEN, "error.csrf_title", "error.csrf"),
            WebError::Conflict => (
                StatusCode::CONFLICT,
                "error.conflict_title",
                "error.conflict",
            ),
            WebError::BadRequest => (
                StatusCode::BAD_REQUEST,
                "error.bad_request_title",
                "error.bad_request",
            ),
            WebError::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "error.unavailable_title",
                "error.unavailable",
            ),
            WebError::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "error.internal_title",
                "error.internal",
            ),
        };
        ErrorPage {
            status,
            title,
            message,
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let WebError::Redirect(to) = &self {
            return see_other(to);
        }
        let page = self.page();
        let mut res = page.status.into_response();
        res.extensions_mut().insert(page);
        res
    }
}

impl From<AppError> for WebError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::Unauthorized(_) | AppError::TokenExpired(_) => {
                WebError::Redirect("/login".into())
            }
            AppError::Forbidden(_) | AppError::Throttled(_) | AppError::Locked(_) => {
                WebError::Forbidden
            }
            AppError::SeparationOfDuties(_) => WebError::SeparationOfDuties,
            AppError::NotFound(_) => WebError::NotFound,
            AppError::Invalid(_) => WebError::BadRequest,
            AppError::Conflict(..) => WebError::Conflict,
            AppError::Unavailable(m) => {
                tracing::warn!(cause = %m, "a page could not be served");
                WebError::Unavailable
            }
            AppError::Internal(m) => {
                tracing::error!(cause = %m, "a page failed");
                WebError::Internal
            }
        }
    }
}

impl From<minijinja::Error> for WebError {
    fn from(e: minijinja::Error) -> Self {
        tracing::error!(error = %e, "a page template failed");
        WebError::Internal
    }
}

/// Where an error page's "back" goes from `path`: the thing the page was about (`/changes/8`
/// for `/changes/8/evaluate`), or its list (`/incidents` for `/incidents/new`).
pub fn back_of(path: &str) -> String {
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let back = match segs.as_slice() {
        [area, id, ..]
            if ["changes", "incidents", "remediations", "systems"].contains(area)
                && !["new"].contains(id)
                && segs.len() > 2 =>
        {
            format!("/{area}/{id}")
        }
        [area, ..] if segs.len() >= 2 => format!("/{area}"),
        _ => "/".to_owned(),
    };
    local_path(&back)
}

/// Renders the error page of `page` in `lang`; for a signed-in person (`s`) with the
/// navigation, and a link back from `path` (see [`back_of`]).
pub fn error_page(
    lang: Lang,
    tz: &str,
    page: ErrorPage,
    s: Option<&WebSession>,
    path: &str,
) -> Response {
    // What is not found goes back to its list (its own page is not found either).
    let back = if page.status == StatusCode::NOT_FOUND {
        back_of(path)
            .splitn(3, '/')
            .take(2)
            .collect::<Vec<_>>()
            .join("/")
    } else {
        back_of(path)
    };
    let back = local_path(&back);
    // The language switch comes back to `back`: the path asked for is not repeated.
    let base = match s {
        Some(s) => base_context(s, lang, tz, &back),
        None => minijinja::context! { lang => lang.code(), tz => tz },
    };
    let ctx = minijinja::context! { status => page.status.as_u16(),
    title_key => page.title, message_key => page.message,
    back => (back != "/").then_some(back), ..base };
    let body = render::render("error.html", ctx).unwrap_or_else(|e| {
        tracing::error!(error = %e, "the error page failed");
        String::from("error")
    });
    html(page.status, body)
}
