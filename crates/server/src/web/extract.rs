//! The web UI's FromRequest extractors: a form body (`FormData`), a path segment (`Seg`), and who
//! is asking: anyone (`Anyone`), a person in the middle of signing in (`Staged`), a signed-in
//! person (`Signed`), with the page rendering of the last two.

use super::client_ip::peer_ip;
use super::cookies::{self, lang_of};
use super::csrf::{self, CSRF_COOKIE};
use super::errors::WebError;
use super::i18n::Lang;
use super::msg;
use super::render::{self, base_context};
use super::reply::{html, see_other};
use super::session::{after_sign_in, load, next_of, stage_path};
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::Response;
use changegate_app::Principal;
use changegate_app::sessions::{Stage, WebSession};
use minijinja::Value;
use std::net::IpAddr;

/// A URL-encoded form body. Never rejects on content: a body that is not a form is an empty form
/// (and then fails its CSRF check).
pub struct FormData(pub Vec<(String, String)>);

impl FormData {
    /// The first value of a field, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// Every value of a repeated field (checkboxes).
    pub fn all(&self, name: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
}

impl<S: Send + Sync> FromRequest<S> for FormData {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, WebError> {
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|_| WebError::BadRequest)?;
        // Browsers send a textarea's line breaks as CRLF (HTML's form encoding); what the person
        // typed has LF, and that is what is kept, as the API would receive it.
        Ok(FormData(
            url::form_urlencoded::parse(&bytes)
                .map(|(k, v)| {
                    let v = if v.contains('\r') {
                        v.replace("\r\n", "\n")
                    } else {
                        v.into_owned()
                    };
                    (k.into_owned(), v)
                })
                .collect(),
        ))
    }
}

/// One path segment (`{code}`, `{id}`); one that does not decode is "not found".
pub struct Seg(pub String);

impl<S: Send + Sync> FromRequestParts<S> for Seg {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, WebError> {
        axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map(|p| Seg(p.0))
            .map_err(|_| WebError::NotFound)
    }
}

impl Seg {
    /// The segment as a positive id written plainly (`01` is not 1), or "not found".
    pub fn id(&self) -> Result<i64, WebError> {
        self.0
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0 && id.to_string() == self.0)
            .ok_or(WebError::NotFound)
    }
}

/// The page language and time zone, for pages shown to anyone.
pub struct Anyone {
    /// Language.
    pub lang: Lang,
    /// The server's time zone.
    pub tz: String,
    /// The double-submit CSRF cookie, if the browser sent one.
    pub csrf_cookie: Option<String>,
    /// The peer address.
    pub ip: IpAddr,
    /// The browser.
    pub user_agent: String,
    /// Cookies are marked `Secure` (the server is behind TLS).
    pub secure: bool,
}

impl FromRequestParts<AppState> for Anyone {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, WebError> {
        Ok(Anyone {
            lang: lang_of(&parts.headers),
            tz: app.tz.name().to_owned(),
            csrf_cookie: cookies::get(&parts.headers, CSRF_COOKIE)
                .filter(|c| c.len() >= 32)
                .map(str::to_owned),
            ip: peer_ip(parts, &app.edge.trusted_proxies),
            user_agent: parts
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .chars()
                .take(300)
                .collect(),
            secure: app.edge.behind_tls,
        })
    }
}

/// A signed-in person whose session is at any stage (the sign-in stage pages).
pub struct Staged {
    /// The session.
    pub s: WebSession,
    /// Language.
    pub lang: Lang,
    /// The server's time zone.
    pub tz: String,
    /// Cookies are marked `Secure` (the server is behind TLS).
    pub secure: bool,
    /// The page the sign-in was asked for, to go to once it is done.
    pub next: Option<String>,
}

impl FromRequestParts<AppState> for Staged {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, WebError> {
        Ok(Staged {
            s: load(parts, app).await?,
            lang: lang_of(&parts.headers),
            tz: app.tz.name().to_owned(),
            secure: app.edge.behind_tls,
            next: next_of(&parts.headers),
        })
    }
}

/// A signed-in person with an active session (every page but sign-in). Without a session: 303
/// to `/login`; with one that must first change its password or give a second factor: 303 to
/// that stage's page.
pub struct Signed {
    /// The session.
    pub s: WebSession,
    /// Language.
    pub lang: Lang,
    /// The server's time zone.
    pub tz: String,
    /// Path and query of this page (the language switch comes back here).
    pub path: String,
    /// A page-level message named in the query (`?ok=…`, `?err=…`), already translated.
    flash: (Option<String>, Option<String>),
    /// Configured display names of environments (the `env_name` filter).
    edge: std::sync::Arc<crate::Edge>,
    /// Full names by username (the `person` function).
    people: std::collections::HashMap<String, String>,
    /// A draft was restored into this page's form (the page says so).
    restored: std::sync::atomic::AtomicBool,
}

impl FromRequestParts<AppState> for Signed {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, WebError> {
        let s = load(parts, app).await?;
        if s.stage != Stage::Active {
            return Err(WebError::Redirect(stage_path(s.stage).into()));
        }
        let lang = lang_of(&parts.headers);
        let mut flash = (None, None);
        for (k, v) in url::form_urlencoded::parse(parts.uri.query().unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "ok" => flash.0 = msg::flash(lang, &v),
                "err" => flash.1 = msg::flash(lang, &v),
                _ => {}
            }
        }
        Ok(Signed {
            s,
            lang,
            tz: app.tz.name().to_owned(),
            path: parts
                .uri
                .path_and_query()
                .map_or("/".to_owned(), |p| p.as_str().to_owned()),
            flash,
            edge: app.edge.clone(),
            people: app.all_display_names().await?,
            restored: std::sync::atomic::AtomicBool::new(false),
        })
    }
}

impl Signed {
    /// The fields of the draft named by `?draft=` kept for this page (a form sent after the
    /// session had ended), once.
    pub async fn draft(&self, app: &AppState) -> Result<Option<FormData>, WebError> {
        let (page, query) = self.path.split_once('?').unwrap_or((&self.path, ""));
        let Some(id) = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "draft")
            .map(|(_, v)| v.into_owned())
            .filter(|v| (16..=100).contains(&v.len()))
        else {
            return Ok(None);
        };
        let d = app.take_draft(&id, page).await?.map(FormData);
        self.restored
            .store(d.is_some(), std::sync::atomic::Ordering::Relaxed);
        Ok(d)
    }

    /// The person.
    pub fn who(&self) -> &Principal {
        &self.s.principal
    }

    /// Refuses a form whose `csrf` field is not this session's token (nothing changes).
    pub fn check_csrf(&self, f: &FormData) -> Result<(), WebError> {
        csrf::check(f.get("csrf"), &self.s.csrf)
    }

    /// Renders a page with the layout's context added to `ctx`.
    pub fn page(&self, status: StatusCode, name: &str, ctx: Value) -> Result<Response, WebError> {
        let base = base_context(&self.s, self.lang, &self.tz, &self.path);
        let flash = minijinja::context! { flash_ok => self.flash.0, flash_error => self.flash.1,
        env_names => self.edge.environment_names, people => self.people,
        draft_restored => self.restored.load(std::sync::atomic::Ordering::Relaxed) };
        let body = render::render(name, minijinja::context! { ..flash, ..ctx, ..base })?;
        Ok(html(status, body))
    }

    /// Renders a page with status 200.
    pub fn ok(&self, name: &str, ctx: Value) -> Result<Response, WebError> {
        self.page(StatusCode::OK, name, ctx)
    }
}

impl Staged {
    /// Where a finished stage goes: the next stage, or once signed in, the page asked for.
    pub fn onwards(&self, stage: Stage) -> Response {
        if stage == Stage::Active {
            after_sign_in(self.secure, self.next.as_deref())
        } else {
            see_other(stage_path(stage))
        }
    }

    /// Refuses a form whose `csrf` field is not this session's token.
    pub fn check_csrf(&self, f: &FormData) -> Result<(), WebError> {
        csrf::check(f.get("csrf"), &self.s.csrf)
    }

    /// Renders a sign-in stage page (no navigation: the person is not signed in yet).
    pub fn page(&self, status: StatusCode, name: &str, ctx: Value) -> Result<Response, WebError> {
        let base = minijinja::context! { lang => self.lang.code(), tz => self.tz, csrf => self.s.csrf,
        path => stage_path(self.s.stage), stage_user => self.s.principal.display_name };
        let body = render::render(name, minijinja::context! { ..ctx, ..base })?;
        Ok(html(status, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_fields_repeat() {
        let f = FormData(vec![
            ("environments".into(), "production".into()),
            ("environments".into(), "staging".into()),
            ("title".into(), "x".into()),
        ]);
        assert_eq!(f.all("environments"), vec!["production", "staging"]);
        assert_eq!(f.get("title"), "x");
        assert_eq!(f.get("none"), "");
    }
}
