//! Who is asking: the language cookie, the session cookie and the signed-in person, CSRF checks,
//! form bodies, and the error answers of the pages.

use super::i18n::Lang;
use super::msg;
use super::render;
use crate::AppState;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use changegate_app::sessions::{self as acct, IpNet, Stage, WebSession};
use changegate_app::{AppError, Principal};
use minijinja::Value;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// The language cookie.
pub const LANG_COOKIE: &str = "cg_lang";
/// The double-submit CSRF cookie of the forms shown before sign-in.
pub const CSRF_COOKIE: &str = "cg_csrf";
/// The page to come back to once the sign-in's stages are done (URL-encoded local path).
pub const NEXT_COOKIE: &str = "cg_next";

/// The page a finished sign-in goes to: `next` when it is a local path, else the dashboard.
/// Clears the [`NEXT_COOKIE`].
pub fn after_sign_in(secure: bool, next: Option<&str>) -> Response {
    let mut res = see_other(&local_path(next.unwrap_or("/")));
    res.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(secure, NEXT_COOKIE, "", Some(0)),
    );
    res
}

/// The [`NEXT_COOKIE`]'s page, if it is a local path.
pub fn next_of(headers: &HeaderMap) -> Option<String> {
    let raw = cookie(headers, NEXT_COOKIE)?;
    let decoded: String = url::form_urlencoded::parse(format!("n={raw}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())?;
    let p = local_path(&decoded);
    (p != "/").then_some(p)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, Path=/, Secure when `secure` (the server is
/// reached over TLS, directly or through a proxy); `max_age` 0 removes the cookie, `None` makes
/// it last for the browser session.
pub fn set_cookie(secure: bool, name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age {
        c.push_str(&format!("; Max-Age={age}"));
    }
    HeaderValue::from_str(&c).unwrap_or_else(|_| HeaderValue::from_static("invalid=1; Max-Age=0"))
}

/// The value of a cookie.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// The page language from the `cg_lang` cookie (Vietnamese by default).
pub fn lang_of(headers: &HeaderMap) -> Lang {
    cookie(headers, LANG_COOKIE)
        .and_then(Lang::parse)
        .unwrap_or_default()
}

/// Parses the trusted proxies (the reverse proxies, load balancers, whose `X-Forwarded-For`
/// header names the client: CIDRs or single addresses); the error names the entry that is
/// neither a CIDR nor an address.
pub fn parse_trusted_proxies(entries: &[String]) -> Result<Vec<IpNet>, String> {
    entries
        .iter()
        .map(|e| acct::parse_cidr(e).ok_or_else(|| e.clone()))
        .collect()
}

/// The client's address. The socket's peer, unless that is a trusted proxy: then the right-most
/// address of `X-Forwarded-For` that is not a trusted proxy (the left part of the header is the
/// client's to write, so it is believed only as far as trusted proxies vouch for it). Unspecified
/// (which no allow-list admits) when there is no connect info or a trusted proxy sent a header
/// that is not a list of addresses. `trusted`: the configured trusted proxies.
pub fn peer_ip(parts: &Parts, trusted: &[IpNet]) -> IpAddr {
    let Some(socket) = parts.extensions.get::<ConnectInfo<SocketAddr>>() else {
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    client_ip(socket.0.ip(), &parts.headers, trusted)
}

fn client_ip(socket: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let socket = socket.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&socket) {
        return socket;
    }
    let mut hops = vec![];
    for value in headers.get_all("x-forwarded-for") {
        let Ok(value) = value.to_str() else {
            return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
        };
        for hop in value.split(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(ip) => hops.push(ip.to_canonical()),
                Err(_) => return IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            }
        }
    }
    // Every hop trusted: the request came from inside; the first hop is its origin.
    let first = hops.first().copied().unwrap_or(socket);
    hops.into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(first)
}

/// A random token for the double-submit cookie: 32 random bytes, URL-safe base64.
pub fn random_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares two secrets in time independent of where they differ (`subtle`); an empty secret
/// matches nothing.
pub fn same_secret(a: &str, b: &str) -> bool {
    use subtle::ConstantTimeEq;
    !a.is_empty() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Only a local path is followed after a form (no `//host`, no scheme): anything else is `/`.
pub fn local_path(p: &str) -> String {
    let ok = p.starts_with('/')
        && !p.starts_with("//")
        && !p.starts_with("/\\")
        && !p.chars().any(|c| c.is_control() || c == '\\');
    if ok { p.to_owned() } else { "/".to_owned() }
}

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

/// 303 See Other.
pub fn see_other(to: &str) -> Response {
    let to = HeaderValue::from_str(to).unwrap_or_else(|_| HeaderValue::from_static("/"));
    (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response()
}

/// Renders the error page of `page` in `lang`.
pub fn error_response(lang: Lang, tz: &str, page: ErrorPage) -> Response {
    error_page(lang, tz, page, None, "/")
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

/// An HTML answer that is never cached (pages show personal data).
pub fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
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
            csrf_cookie: cookie(&parts.headers, CSRF_COOKIE)
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

async fn load(parts: &Parts, app: &AppState) -> Result<WebSession, WebError> {
    let to_login = || WebError::Redirect("/login".into());
    let token = cookie(&parts.headers, acct::SESSION_COOKIE)
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

/// What every signed-in page's layout needs.
pub fn base_context(s: &WebSession, lang: Lang, tz: &str, path: &str) -> Value {
    let p: &Principal = &s.principal;
    minijinja::context! {
        lang => lang.code(),
        tz => tz,
        csrf => s.csrf,
        form_id => random_token(),
        path => path,
        me => minijinja::context! {
            username => p.username,
            display_name => p.display_name,
            role => p.role.as_str(),
            org => p.org_code,
        },
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
        if same_secret(f.get("csrf"), &self.s.csrf) {
            Ok(())
        } else {
            Err(WebError::Csrf)
        }
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
        if same_secret(f.get("csrf"), &self.s.csrf) {
            Ok(())
        } else {
            Err(WebError::Csrf)
        }
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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn forwarded(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies_and_only_as_far_as_they_vouch() {
        let lb = parse_trusted_proxies(&["10.0.0.0/8".into(), "192.0.2.1".into()]).unwrap();
        // No proxy trusted: the header is ignored (a client cannot name its own address).
        assert_eq!(
            client_ip(ip("198.51.100.9"), &forwarded(&["203.0.113.7"]), &[]),
            ip("198.51.100.9")
        );
        // From a client that is not a trusted proxy: ignored too.
        assert_eq!(
            client_ip(ip("198.51.100.9"), &forwarded(&["203.0.113.7"]), &lb),
            ip("198.51.100.9")
        );
        // Through the load balancer: the client it names.
        assert_eq!(
            client_ip(ip("10.1.2.3"), &forwarded(&["203.0.113.7"]), &lb),
            ip("203.0.113.7")
        );
        // A client that wrote its own header: the right-most untrusted hop is the real one.
        assert_eq!(
            client_ip(
                ip("10.1.2.3"),
                &forwarded(&["203.0.113.7, 198.51.100.9"]),
                &lb
            ),
            ip("198.51.100.9")
        );
        // Two trusted proxies in a row, and the header split over two lines.
        assert_eq!(
            client_ip(
                ip("10.1.2.3"),
                &forwarded(&["203.0.113.7", "198.51.100.9, 192.0.2.1"]),
                &lb
            ),
            ip("198.51.100.9")
        );
        // IPv4-mapped IPv6 sockets count as their IPv4 address.
        assert_eq!(
            client_ip(ip("::ffff:10.1.2.3"), &forwarded(&["203.0.113.7"]), &lb),
            ip("203.0.113.7")
        );
        // A trusted proxy without the header: the proxy itself is the client.
        assert_eq!(
            client_ip(ip("10.1.2.3"), &HeaderMap::new(), &lb),
            ip("10.1.2.3")
        );
        // A malformed header from a trusted proxy: unspecified, which no allow-list admits.
        assert_eq!(
            client_ip(ip("10.1.2.3"), &forwarded(&["203.0.113.7, unknown"]), &lb),
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        );
        // A bad entry is named.
        assert_eq!(
            parse_trusted_proxies(&["10.0.0.0/8".into(), "lb.internal".into()]),
            Err("lb.internal".into())
        );
    }

    #[test]
    fn cookies_are_found_among_several() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; cg_lang=en; cg_session=tok"),
        );
        assert_eq!(cookie(&h, "cg_lang"), Some("en"));
        assert_eq!(cookie(&h, "cg_session"), Some("tok"));
        assert_eq!(cookie(&h, "missing"), None);
        assert_eq!(lang_of(&h), Lang::En);
        assert_eq!(lang_of(&HeaderMap::new()), Lang::Vi);
    }

    #[test]
    fn session_cookies_are_http_only_and_strict() {
        let c = set_cookie(false, "cg_session", "x", None);
        let c = c.to_str().unwrap_or_default();
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/"),
            "{c}"
        );
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", ""));
    }

    #[test]
    fn only_local_paths_are_followed() {
        assert_eq!(local_path("/systems?x=1"), "/systems?x=1");
        assert_eq!(local_path("//evil.example"), "/");
        assert_eq!(local_path("https://evil.example"), "/");
        assert_eq!(local_path("/\\evil.example"), "/");
        assert_eq!(local_path(""), "/");
    }

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
