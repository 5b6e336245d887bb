//! The web UI's security at the HTTP level (no browser): a client with its own cookie jar that
//! follows no redirect by itself, so every answer's status, `Location` and `Set-Cookie` are seen.
//! Sign-in lockout and its audit trail, one answer for unknown users and wrong passwords, cookie
//! flags, stages that cannot be skipped, the shared-account signal, the IP allow-list, another
//! organisation's pages, CSRF, escaping and forms shown again with their errors.

use changegate_app::Principal;
use changegate_tests::browser::{totp, totp_step_now};
use changegate_tests::html::{
    self, by_id, checked, field_error, field_value, form_action_with, snippet, text_of,
};
use changegate_tests::*;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// The password people choose at their first sign-in in these tests (passes the policy).
pub const NEW_PASSWORD: &str = "hoa sua no muon cuoi thu 2026";

/// One answer.
#[derive(Debug)]
pub struct Resp {
    /// Status code.
    pub status: u16,
    /// `Location`, for redirects.
    pub location: Option<String>,
    /// Every `Set-Cookie` header.
    pub set_cookies: Vec<String>,
    /// The body.
    pub body: String,
    /// How long the answer took.
    pub elapsed: Duration,
    /// Every header.
    pub headers: reqwest::header::HeaderMap,
}

impl Resp {
    /// The path a redirect points to (without scheme and host).
    pub fn redirect(&self) -> Option<String> {
        let l = self.location.as_deref()?;
        let path = match l.find("://") {
            Some(i) => l[i + 3..].find('/').map_or("/", |j| &l[i + 3 + j..]),
            None => l,
        };
        Some(path.to_owned())
    }

    /// Fails unless this is a redirect (303 or 302) to a path starting with `prefix`.
    pub fn assert_redirect(&self, prefix: &str, what: &str) {
        assert!(
            matches!(self.status, 302 | 303)
                && self.redirect().is_some_and(|p| p.starts_with(prefix)),
            "{what}: expected a redirect to {prefix}, got {} to {:?}; body: {}",
            self.status,
            self.location,
            snippet(&self.body)
        );
    }

    /// The `Set-Cookie` header of cookie `name`.
    pub fn cookie_header(&self, name: &str) -> Option<&str> {
        self.set_cookies
            .iter()
            .map(String::as_str)
            .find(|c| c.split('=').next().map(str::trim) == Some(name))
    }

    /// The text of the page-level error message (`<div class="flash error">`).
    pub fn flash_error(&self) -> Option<String> {
        html::flash_error(&self.body)
    }
}

/// A browser-less client of the web UI with its own cookie jar.
pub struct Web {
    base: String,
    http: reqwest::Client,
    /// The cookies it holds (name to value).
    pub cookies: BTreeMap<String, String>,
    /// Extra headers sent with each request.
    pub headers: Vec<(String, String)>,
}

impl Web {
    /// A client of the server at `base`, connecting from 127.0.0.1.
    pub fn new(base: &str) -> Web {
        Web::from_ip(base, "127.0.0.1".parse().unwrap())
    }

    /// A client connecting from the local address `ip` (127.0.0.2 is as local as 127.0.0.1 on
    /// Linux), so the server sees a different peer.
    pub fn from_ip(base: &str, ip: IpAddr) -> Web {
        Web {
            base: base.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .local_address(ip)
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            cookies: BTreeMap::new(),
            headers: vec![],
        }
    }

    async fn send(&mut self, req: reqwest::RequestBuilder) -> Resp {
        let mut req = req;
        if !self.cookies.is_empty() {
            let jar = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join("; ");
            req = req.header(reqwest::header::COOKIE, jar);
        }
        for (k, v) in &self.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let start = Instant::now();
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let location = r
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let set_cookies: Vec<String> = r
            .headers()
            .get_all(reqwest::header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .map(str::to_owned)
            .collect();
        let headers = r.headers().clone();
        let body = r.text().await.unwrap_or_default();
        let elapsed = start.elapsed();
        for c in &set_cookies {
            let first = c.split(';').next().unwrap_or_default();
            let (name, value) = first.split_once('=').unwrap_or((first, ""));
            let lower = c.to_ascii_lowercase();
            if value.is_empty() || lower.contains("max-age=0") || lower.contains("1970") {
                self.cookies.remove(name.trim());
            } else {
                self.cookies
                    .insert(name.trim().to_owned(), value.trim().to_owned());
            }
        }
        Resp {
            status,
            location,
            set_cookies,
            body,
            elapsed,
            headers,
        }
    }

    /// `GET path`.
    pub async fn get(&mut self, path: &str) -> Resp {
        let req = self.http.get(format!("{}{path}", self.base));
        self.send(req).await
    }

    /// `POST path` with an URL-encoded form (fields may repeat).
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Resp {
        let req = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(req).await
    }

    /// Opens `path` and answers its form's `csrf` value and the page.
    pub async fn csrf_of(&mut self, path: &str) -> (String, Resp) {
        let page = self.get(path).await;
        assert_eq!(page.status, 200, "GET {path}: {}", snippet(&page.body));
        let csrf = field_value(&page.body, "csrf")
            .unwrap_or_else(|| panic!("no csrf field on {path}: {}", snippet(&page.body)));
        (csrf, page)
    }

    /// Signs in through the login form (GET /login for its CSRF token, then POST).
    pub async fn sign_in(&mut self, username: &str, password: &str) -> Resp {
        let (csrf, _) = self.csrf_of("/login").await;
        self.post(
            "/login",
            &[
                ("username", username),
                ("password", password),
                ("csrf", &csrf),
            ],
        )
        .await
    }

    /// A first sign-in with the one-time password: the forced change to [`NEW_PASSWORD`], and
    /// the TOTP enrolment when the role asks for it. Ends on the dashboard.
    pub async fn first_sign_in(&mut self, username: &str, otp: &str) {
        let r = self.sign_in(username, otp).await;
        r.assert_redirect("/login/password", "sign-in with the one-time password");
        let (csrf, _) = self.csrf_of("/login/password").await;
        let r = self
            .post(
                "/login/password",
                &[
                    ("new_password", NEW_PASSWORD),
                    ("confirm_password", NEW_PASSWORD),
                    ("csrf", &csrf),
                ],
            )
            .await;
        assert!(
            matches!(r.status, 302 | 303),
            "the new password was not taken: {} {}",
            r.status,
            snippet(&r.body)
        );
        if r.redirect().as_deref() == Some("/login/totp") {
            let page = self.get("/login/totp").await;
            assert_eq!(page.status, 200, "{}", snippet(&page.body));
            let secret = by_id(&page.body, "totp-secret")
                .map(|t| t.text)
                .unwrap_or_else(|| panic!("no #totp-secret: {}", snippet(&page.body)));
            let csrf = field_value(&page.body, "csrf").unwrap();
            let step = totp_step_now();
            let r = self
                .post(
                    "/login/totp",
                    &[("code", &totp(&secret, step)), ("csrf", &csrf)],
                )
                .await;
            r.assert_redirect("/", "TOTP enrolment");
        } else {
            r.assert_redirect("/", "password change");
        }
        let home = self.get("/").await;
        assert_eq!(home.status, 200, "dashboard: {}", snippet(&home.body));
    }

    /// The session's CSRF token, read from the account page.
    pub async fn session_csrf(&mut self) -> String {
        self.csrf_of("/account").await.0
    }
}

/// The standard cast plus people who sign in through the web: the owner `chu.he.thong`
/// (STNMT), the reviewer `kiem.tra.vien` (PA05), the owner `chu.thue` (CUCTHUE); answers their
/// one-time passwords in that order.
pub async fn web_people(t: &TestApp) -> (World, [String; 3]) {
    let w = t.world().await;
    let owner = t
        .person("chu.he.thong", "Nguyễn Chủ Hệ Thống", "STNMT", "owner")
        .await;
    let reviewer = t
        .person("kiem.tra.vien", "Trần Kiểm Tra", "PA05", "reviewer")
        .await;
    let other = t
        .person("chu.thue", "Phạm Chủ Thuế", "CUCTHUE", "owner")
        .await;
    (w, [owner, reviewer, other])
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

// --- Sign-in ---------------------------------------------------------------------------------

#[tokio::test]
async fn five_wrong_passwords_throttle_the_address_which_is_told_until_when_and_all_is_audited() {
    let t = spawn_app().await;
    let (_w, [otp, ..]) = web_people(&t).await;
    let mut web = Web::new(&t.url);
    let mut times = vec![];
    let mut messages = vec![];
    for i in 0..5 {
        let r = web
            .sign_in("chu.he.thong", &format!("sai-mat-khau-{i}"))
            .await;
        assert_ne!(r.status, 303, "a wrong password signed in");
        messages.push(r.flash_error().unwrap_or_else(|| {
            panic!(
                "no error message for a wrong password: {}",
                snippet(&r.body)
            )
        }));
        times.push(r.elapsed);
    }
    assert!(
        times[4] >= times[0] + Duration::from_millis(200),
        "no growing delay after failures: {times:?}"
    );
    assert!(messages.iter().all(|m| *m == messages[0]), "{messages:?}");
    // Throttled: the right (one-time) password from this address is refused, and the page says
    // so with the time it lifts (in the server's time zone, 15 minutes on).
    let r = web.sign_in("chu.he.thong", &otp).await;
    assert_eq!(r.status, 429, "{}", snippet(&r.body));
    let said = r.flash_error().unwrap_or_default();
    assert_ne!(said, messages[0]);
    let lifts = (chrono::Utc::now() + chrono::Duration::minutes(15))
        .with_timezone(&chrono::FixedOffset::east_opt(7 * 3600).unwrap())
        .format("%d/%m/%Y")
        .to_string();
    assert!(
        said.contains("thử lại sau") && said.contains(&lifts),
        "the refusal says until when: {said}"
    );
    assert_eq!(web.get("/").await.redirect().as_deref(), Some("/login"));

    let failed: Vec<_> = t
        .audit_actions("auth.login_failed")
        .await
        .into_iter()
        .filter(|e| format!("{} {} {:?}", e.entity_id, e.actor, e.after).contains("chu.he.thong"))
        .collect();
    assert_eq!(failed.len(), 6, "every failure audited: {failed:#?}");
    let last = format!("{:?}", failed[5].after).to_lowercase();
    assert!(
        last.contains("throttled"),
        "the refusal while throttled says why: {last}"
    );
    // The account itself is not locked.
    assert!(t.audit_actions("account.locked").await.is_empty());

    // An admin unlocks it; the right password then works from that address too.
    t.app
        .unlock_user(&Principal::operator(), "chu.he.thong")
        .await
        .unwrap();
    let r = web.sign_in("chu.he.thong", &otp).await;
    r.assert_redirect("/login/password", "sign-in after the unlock");
}

/// Five anonymous wrong passwords used to lock a PA05 reviewer out for 15 minutes, web and API.
/// Now they throttle the guesser's address: the reviewer at their usual address still signs in
/// and signs off.
#[tokio::test]
async fn a_reviewer_guessed_at_from_another_address_still_signs_in_and_signs_off() {
    let t = spawn_app().await;
    let (w, [_, reviewer_otp, _]) = web_people(&t).await;
    let mut guesser = Web::from_ip(&t.url, ip("127.0.0.2"));
    for name in ["kiem.tra.vien", "tran.thi.hoa"] {
        for i in 0..8 {
            let r = guesser.sign_in(name, &format!("doan-{i}")).await;
            assert_ne!(r.status, 303, "a guess signed in");
        }
    }
    // The guesser is stopped, and told until when.
    let r = guesser.sign_in("kiem.tra.vien", &reviewer_otp).await;
    assert_eq!(r.status, 429, "{}", snippet(&r.body));
    // The reviewer, from 127.0.0.1, signs in ...
    Web::from_ip(&t.url, ip("127.0.0.1"))
        .sign_in("kiem.tra.vien", &reviewer_otp)
        .await
        .assert_redirect("/login/password", "the reviewer from 127.0.0.1");
    // ... and the other reviewer signs off through the API with a valid code.
    let cr = w.submitted("TTHC").await;
    ok(w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
    assert!(t.audit_actions("account.locked").await.is_empty());
}

#[tokio::test]
async fn an_unknown_user_and_a_wrong_password_get_the_same_answer_in_similar_time() {
    let t = spawn_app().await;
    let _w = t.world().await;
    let mut known = vec![];
    let mut unknown = vec![];
    let mut answers = vec![];
    for i in 0..10 {
        let name = format!("nguoi.dung.{i}");
        t.person(&name, "Người Dùng", "STNMT", "owner").await;
        // Fresh names each time: no backoff carried over from one try to the next.
        let r = Web::new(&t.url)
            .sign_in(&name, "mat-khau-sai-hoan-toan")
            .await;
        known.push(r.elapsed);
        answers.push((r.status, r.flash_error()));
        let r = Web::new(&t.url)
            .sign_in(&format!("khong.ton.tai.{i}"), "mat-khau-sai-hoan-toan")
            .await;
        unknown.push(r.elapsed);
        answers.push((r.status, r.flash_error()));
    }
    assert!(answers[0].1.is_some(), "no error message: {answers:?}");
    assert!(
        answers.iter().all(|a| *a == answers[0]),
        "the answers differ: {answers:?}"
    );
    // What checking a password costs: the answers may differ by much less than that, or the
    // time tells whether an account exists. Each unknown-user try follows its wrong-password
    // try at once, so the median of the pairs' differences leaves out most of the noise of
    // other tests running alongside.
    let start = Instant::now();
    changegate_app::auth::hash_secret("mot mat khau bat ky 2026").unwrap();
    let hash = start.elapsed();
    let mut gaps: Vec<f64> = known
        .iter()
        .zip(&unknown)
        .map(|(k, u)| k.as_secs_f64() - u.as_secs_f64())
        .collect();
    gaps.sort_by(f64::total_cmp);
    let median = (gaps[4] + gaps[5]) / 2.0;
    let allowed = (hash.as_secs_f64() * 0.6).max(0.015);
    eprintln!(
        "sign-in failures: wrong password {known:?}, unknown user {unknown:?}, \
         a password check {hash:?}, median gap {median:.4} s"
    );
    assert!(
        median.abs() <= allowed,
        "timing tells the accounts apart: wrong passwords answer {median:.4} s later than \
         unknown users (a password check costs {hash:?}): {known:?} vs {unknown:?}"
    );
}

#[tokio::test]
async fn the_session_cookie_is_httponly_samesite_strict_fresh_at_sign_in_and_dead_after_logout() {
    let t = spawn_app().await;
    let (_w, [otp, ..]) = web_people(&t).await;
    let mut web = Web::new(&t.url);
    // A session id planted before sign-in is not kept (no fixation).
    web.cookies
        .insert("cg_session".into(), "planted-by-someone-else".into());
    web.first_sign_in("chu.he.thong", &otp).await;
    let r = web.sign_in("chu.he.thong", NEW_PASSWORD).await;
    r.assert_redirect("/", "sign-in");
    let c = r
        .cookie_header("cg_session")
        .unwrap_or_else(|| panic!("no session cookie: {:?}", r.set_cookies))
        .to_owned();
    let lower = c.to_ascii_lowercase();
    assert!(lower.contains("; httponly"), "{c}");
    assert!(lower.contains("samesite=strict"), "{c}");
    assert!(lower.contains("path=/"), "{c}");
    assert!(
        !lower.contains("; secure"),
        "Secure on plain HTTP (not behind TLS): {c}"
    );
    let token = web.cookies["cg_session"].clone();
    assert_ne!(token, "planted-by-someone-else");
    assert!(token.len() >= 32, "a guessable session token: {token}");
    let home = web.get("/").await;
    assert_eq!(home.status, 200);
    assert!(
        !home.body.contains(&token),
        "the session token is in the page"
    );

    // Logout: the old cookie, replayed, opens nothing.
    let csrf = web.session_csrf().await;
    let r = web.post("/logout", &[("csrf", &csrf)]).await;
    r.assert_redirect("/login", "logout");
    let mut replay = Web::new(&t.url);
    replay.cookies.insert("cg_session".into(), token);
    replay
        .get("/")
        .await
        .assert_redirect("/login", "the old session after logout");
}

/// A server built through `changegate serve`'s path with its configuration changed by
/// `configure`, with the owner `chu.he.thong` (STNMT, which allows sign-in only from `allowed`,
/// when given).
struct RealServer {
    server: TestApp,
    url: String,
    otp: String,
}

impl RealServer {
    async fn start(configure: impl FnOnce(&mut Config), allowed: &[&str]) -> RealServer {
        let server = spawn_app_with(configure).await;
        server
            .org("STNMT", "Sở Tài nguyên và Môi trường", "owner")
            .await;
        let app = &server.app;
        let otp = app
            .create_user(
                &Principal::operator(),
                changegate_api::NewUser {
                    username: "chu.he.thong".into(),
                    display_name: "Nguyễn Chủ Hệ Thống".into(),
                    org: "STNMT".into(),
                    role: "owner".into(),
                },
            )
            .await
            .unwrap()
            .one_time_password;
        if !allowed.is_empty() {
            let cidrs: Vec<String> = allowed.iter().map(|c| (*c).to_owned()).collect();
            app.set_allowed_ips(&Principal::operator(), "STNMT", &cidrs)
                .await
                .unwrap();
        }
        RealServer {
            url: server.database_url.clone(),
            server,
            otp,
        }
    }
}

#[tokio::test]
async fn behind_tls_the_real_server_marks_the_session_cookie_secure() {
    let real = RealServer::start(|c| c.behind_tls = true, &[]).await;
    let (server, otp) = (&real.server, real.otp.clone());
    let r = Web::new(&server.url).sign_in("chu.he.thong", &otp).await;
    r.assert_redirect("/login/password", "sign-in");
    let c = r
        .cookie_header("cg_session")
        .unwrap_or_else(|| panic!("no session cookie: {:?}", r.set_cookies))
        .to_ascii_lowercase();
    assert!(c.contains("; secure"), "not Secure behind TLS: {c}");
    assert!(
        c.contains("; httponly") && c.contains("samesite=strict"),
        "{c}"
    );
}

#[tokio::test]
async fn logout_everywhere_ends_the_other_sessions_too() {
    let t = spawn_app().await;
    let (_w, [otp, ..]) = web_people(&t).await;
    let browser = |ua: &str| {
        let mut w = Web::new(&t.url);
        w.headers.push(("User-Agent".into(), ua.into()));
        w
    };
    let mut a = browser("Firefox-A (van phong)");
    a.first_sign_in("chu.he.thong", &otp).await;
    let mut b = browser("Firefox-B (o nha)");
    b.sign_in("chu.he.thong", NEW_PASSWORD)
        .await
        .assert_redirect("/", "second sign-in");
    let mut c = browser("Firefox-C (may muon)");
    c.sign_in("chu.he.thong", NEW_PASSWORD)
        .await
        .assert_redirect("/", "third sign-in");
    // The account page lists the sessions, each by its browser.
    let account = a.get("/account").await;
    assert_eq!(account.status, 200);
    let text = text_of(&account.body);
    for ua in ["Firefox-A", "Firefox-B", "Firefox-C"] {
        assert!(text.contains(ua), "{ua} is not listed: {text}");
    }
    // A plain logout ends only its own session.
    let csrf = c.session_csrf().await;
    c.post("/logout", &[("csrf", &csrf)])
        .await
        .assert_redirect("/login", "logout");
    c.get("/").await.assert_redirect("/login", "after logout");
    assert_eq!(
        b.get("/").await.status,
        200,
        "a plain logout ended another session"
    );
    // Logout everywhere ends them all.
    let csrf = field_value(&account.body, "csrf").unwrap();
    let r = a
        .post("/logout", &[("csrf", &csrf), ("everywhere", "1")])
        .await;
    r.assert_redirect("/login", "logout everywhere");
    b.get("/")
        .await
        .assert_redirect("/login", "the other session after logout everywhere");
    a.get("/")
        .await
        .assert_redirect("/login", "this session after logout everywhere");
}

#[tokio::test]
async fn changing_the_password_ends_the_accounts_other_sessions() {
    let t = spawn_app().await;
    let (_w, [otp, ..]) = web_people(&t).await;
    let mut a = Web::new(&t.url);
    a.first_sign_in("chu.he.thong", &otp).await;
    let mut b = Web::new(&t.url);
    b.sign_in("chu.he.thong", NEW_PASSWORD)
        .await
        .assert_redirect("/", "second sign-in");
    let (csrf, account) = a.csrf_of("/account").await;
    let action = form_action_with(&account.body, "current_password").unwrap();
    let newer = "mot cum tu moi hoan toan 2027";
    let r = a
        .post(
            &action,
            &[
                ("current_password", NEW_PASSWORD),
                ("new_password", newer),
                ("confirm_password", newer),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert!(
        matches!(r.status, 302 | 303),
        "the change was refused: {}",
        snippet(&r.body)
    );
    assert_eq!(
        a.get("/").await.status,
        200,
        "the session that changed it ended"
    );
    b.get("/")
        .await
        .assert_redirect("/login", "the other session after a password change");
    let r = Web::new(&t.url).sign_in("chu.he.thong", NEW_PASSWORD).await;
    assert_ne!(r.status, 303, "the old password still works");
    Web::new(&t.url)
        .sign_in("chu.he.thong", newer)
        .await
        .assert_redirect("/", "the new password");
}

#[tokio::test]
async fn a_session_cannot_skip_the_password_change_or_the_second_factor() {
    let t = spawn_app().await;
    let (w, [owner_otp, reviewer_otp, _]) = web_people(&t).await;
    let cr = ok(w
        .owner
        .file_change(&change(
            "TTHC",
            &["production"],
            vec![git(&random_oid(), &random_oid())],
        ))
        .await);
    ok(w.owner.submit(cr.id).await);

    // Signed in with the one-time password: only the password change opens.
    let mut web = Web::new(&t.url);
    web.sign_in("chu.he.thong", &owner_otp)
        .await
        .assert_redirect("/login/password", "one-time password");
    for path in [
        "/",
        "/systems",
        "/systems/TTHC",
        "/changes/new?system=TTHC",
        "/tokens",
        "/account",
    ] {
        let r = web.get(path).await;
        assert_ne!(
            r.status,
            200,
            "{path} opened before the password change: {}",
            snippet(&r.body)
        );
        assert!(
            !r.body.contains("TTHC"),
            "{path} shows data before the password change"
        );
    }
    let (csrf, _) = web.csrf_of("/login/password").await;
    let r = web
        .post(
            "/tokens",
            &[("name", "lọt"), ("expires_days", "30"), ("csrf", &csrf)],
        )
        .await;
    assert!(
        !(200..300).contains(&r.status) && r.redirect().as_deref() != Some("/tokens"),
        "a token was made before the password change: {} {:?}",
        r.status,
        r.location
    );

    // A reviewer past the password change must enrol a second factor before anything else.
    let mut rev = Web::new(&t.url);
    rev.sign_in("kiem.tra.vien", &reviewer_otp)
        .await
        .assert_redirect("/login/password", "reviewer's one-time password");
    let (csrf, _) = rev.csrf_of("/login/password").await;
    rev.post(
        "/login/password",
        &[
            ("new_password", NEW_PASSWORD),
            ("confirm_password", NEW_PASSWORD),
            ("csrf", &csrf),
        ],
    )
    .await
    .assert_redirect("/login/totp", "reviewer's password change");
    for path in [
        "/",
        &format!("/changes/{}", cr.id),
        &format!("/changes/{}/evaluate", cr.id),
    ] {
        let r = rev.get(path).await;
        assert_ne!(r.status, 200, "{path} opened before the TOTP enrolment");
    }
    let page = rev.get("/login/totp").await;
    let secret = by_id(&page.body, "totp-secret").map(|t| t.text).unwrap();
    let csrf = field_value(&page.body, "csrf").unwrap();
    let step = totp_step_now();
    // A wrong code does not enrol.
    let wrong = format!(
        "{:06}",
        (totp(&secret, step).parse::<u32>().unwrap() + 1) % 1_000_000
    );
    let r = rev
        .post("/login/totp", &[("code", &wrong), ("csrf", &csrf)])
        .await;
    assert_ne!(r.redirect().as_deref(), Some("/"), "a wrong code enrolled");
    assert_ne!(rev.get("/").await.status, 200);
    rev.post(
        "/login/totp",
        &[("code", &totp(&secret, step)), ("csrf", &csrf)],
    )
    .await
    .assert_redirect("/", "enrolment");

    // Next sign-in: the password alone opens only the second-factor page, which enrols nothing.
    let mut again = Web::new(&t.url);
    again
        .sign_in("kiem.tra.vien", NEW_PASSWORD)
        .await
        .assert_redirect("/login/otp", "enrolled reviewer's sign-in");
    assert_ne!(
        again.get("/").await.status,
        200,
        "/ opened without the second factor"
    );
    let r = again.get("/login/totp").await;
    assert!(
        by_id(&r.body, "totp-secret").is_none(),
        "a password alone can enrol a new second factor"
    );
    let (csrf, _) = again.csrf_of("/login/otp").await;
    let r = again
        .post("/login/otp", &[("code", &wrong), ("csrf", &csrf)])
        .await;
    assert_ne!(
        r.redirect().as_deref(),
        Some("/"),
        "a wrong second factor signed in"
    );
    assert!(
        r.flash_error().is_some() || field_error(&r.body, "code").is_some(),
        "a wrong second factor is not said to be wrong: {}",
        snippet(&r.body)
    );
    again
        .post(
            "/login/otp",
            &[("code", &totp(&secret, step + 1)), ("csrf", &csrf)],
        )
        .await
        .assert_redirect("/", "second factor");
    // The same code is not accepted twice.
    let mut replay = Web::new(&t.url);
    replay
        .sign_in("kiem.tra.vien", NEW_PASSWORD)
        .await
        .assert_redirect("/login/otp", "third sign-in");
    let (csrf, _) = replay.csrf_of("/login/otp").await;
    let r = replay
        .post(
            "/login/otp",
            &[("code", &totp(&secret, step + 1)), ("csrf", &csrf)],
        )
        .await;
    assert_ne!(
        r.redirect().as_deref(),
        Some("/"),
        "a used TOTP code was accepted again"
    );
}

// --- Shared accounts and the IP allow-list ----------------------------------------------------

#[tokio::test]
async fn one_account_used_from_two_addresses_at_once_is_flagged_to_admins_and_audited() {
    let t = spawn_app().await;
    let (_w, [otp, ..]) = web_people(&t).await;
    let admin_otp = t
        .person("quan.tri.web", "Lê Quản Trị", "SO-TTTT", "admin")
        .await;
    let mut here = Web::from_ip(&t.url, ip("127.0.0.1"));
    here.first_sign_in("chu.he.thong", &otp).await;
    assert!(t.audit_actions("account.shared_suspected").await.is_empty());
    let mut there = Web::from_ip(&t.url, ip("127.0.0.2"));
    there
        .sign_in("chu.he.thong", NEW_PASSWORD)
        .await
        .assert_redirect("/", "sign-in from 127.0.0.2");
    assert_eq!(there.get("/").await.status, 200);
    assert_eq!(here.get("/").await.status, 200);

    let flagged = t.audit_actions("account.shared_suspected").await;
    assert_eq!(
        flagged.len(),
        1,
        "one audit entry for the pair of addresses: {flagged:#?}"
    );
    let e = format!("{:?}", flagged[0]);
    assert!(e.contains("chu.he.thong"), "{e}");
    assert!(e.contains("127.0.0.2"), "{e}");

    // The admin sees it on the signals page; an owner cannot open that page.
    let mut admin = Web::new(&t.url);
    admin.first_sign_in("quan.tri.web", &admin_otp).await;
    let page = admin.get("/admin/signals").await;
    assert_eq!(page.status, 200, "{}", snippet(&page.body));
    assert!(
        text_of(&page.body).contains("chu.he.thong"),
        "{}",
        snippet(&page.body)
    );
    let r = here.get("/admin/signals").await;
    assert!(
        matches!(r.status, 403 | 404),
        "an owner opened the signals page: {}",
        r.status
    );
    assert!(!r.body.contains("127.0.0.2"));
}

#[tokio::test]
async fn an_organisations_ip_allow_list_refuses_sign_in_from_other_addresses() {
    let t = spawn_app().await;
    let (_w, [otp, reviewer_otp, _]) = web_people(&t).await;
    t.app
        .set_allowed_ips(
            &Principal::operator(),
            "STNMT",
            &["127.0.0.2/32".to_owned()],
        )
        .await
        .unwrap();
    let mut outside = Web::from_ip(&t.url, ip("127.0.0.1"));
    // A forwarded-for header does not fool it: the server has no proxy to trust here.
    outside
        .headers
        .push(("X-Forwarded-For".into(), "127.0.0.2".into()));
    let r = outside.sign_in("chu.he.thong", &otp).await;
    assert_ne!(r.status, 303, "signed in from outside the allow-list");
    assert!(
        r.flash_error().is_some(),
        "no message: {}",
        snippet(&r.body)
    );
    assert_eq!(outside.get("/").await.redirect().as_deref(), Some("/login"));
    assert!(
        !t.audit_actions("auth.login_failed").await.is_empty(),
        "the refusal is not audited"
    );
    let mut inside = Web::from_ip(&t.url, ip("127.0.0.2"));
    inside.first_sign_in("chu.he.thong", &otp).await;
    // Another organisation's people are not bound by STNMT's list.
    Web::from_ip(&t.url, ip("127.0.0.1"))
        .sign_in("kiem.tra.vien", &reviewer_otp)
        .await
        .assert_redirect("/login/password", "PA05 reviewer from 127.0.0.1");
}

#[tokio::test]
async fn behind_a_trusted_load_balancer_the_allow_list_sees_the_forwarded_client_and_nothing_else()
{
    // The load balancer is 127.0.0.1; 127.0.0.2 is a client that reaches the server directly.
    let real = RealServer::start(
        |c| c.trusted_proxies = vec!["127.0.0.1".into()],
        &["203.0.113.0/24"],
    )
    .await;
    let (server, otp, url) = (&real.server, real.otp.clone(), real.url.clone());
    let via = |from: &str, forwarded: &str| {
        let mut w = Web::from_ip(&server.url, ip(from));
        w.headers
            .push(("X-Forwarded-For".into(), forwarded.to_owned()));
        w
    };
    for (from, forwarded, what) in [
        (
            "127.0.0.1",
            "198.51.100.9",
            "a client outside the list, through the balancer",
        ),
        (
            "127.0.0.1",
            "203.0.113.7, 198.51.100.9",
            "a client outside the list that wrote an allowed address into the header itself",
        ),
        (
            "127.0.0.2",
            "203.0.113.7",
            "a client that is not a trusted proxy, naming an allowed address",
        ),
        (
            "127.0.0.1",
            "203.0.113.7, not-an-address",
            "a malformed header",
        ),
    ] {
        let r = via(from, forwarded).sign_in("chu.he.thong", &otp).await;
        assert_ne!(r.status, 303, "signed in: {what}");
        assert!(r.flash_error().is_some(), "{what}: {}", snippet(&r.body));
    }
    // A client inside the list, through the balancer: signed in, and seen at its own address.
    via("127.0.0.1", "203.0.113.7")
        .sign_in("chu.he.thong", &otp)
        .await
        .assert_redirect("/login/password", "an allowed client through the balancer");
    let app = changegate_app::App::open(&url, pack()).await.unwrap();
    let events = app
        .audit_page(&Principal::operator(), 0, 1000)
        .await
        .unwrap()
        .events;
    let logins: Vec<_> = events
        .iter()
        .filter(|e| e.action == "auth.login" && e.actor == "chu.he.thong")
        .collect();
    assert_eq!(logins.len(), 1, "{logins:?}");
    assert!(
        logins[0]
            .after
            .as_deref()
            .unwrap_or("")
            .contains("\"203.0.113.7\""),
        "{logins:?}"
    );
    let refused = events
        .iter()
        .filter(|e| e.action == "auth.login_failed")
        .count();
    assert_eq!(refused, 4, "every refusal is audited");
}

// --- Organisations, CSRF, escaping, forms ----------------------------------------------------

#[tokio::test]
async fn another_organisations_system_and_change_pages_answer_404_and_name_nothing() {
    let t = spawn_app().await;
    let (w, [_, _, other_otp]) = web_people(&t).await;
    let mut n = change(
        "DAT-DAI",
        &["production"],
        vec![git(&random_oid(), &random_oid())],
    );
    n.title = "Bí mật: nâng cấp cơ sở dữ liệu đất đai".into();
    let cr = ok(w.owner.file_change(&n).await);
    ok(w.owner.submit(cr.id).await);
    let mut web = Web::new(&t.url);
    web.first_sign_in("chu.thue", &other_otp).await;
    let secrets = [
        "DAT-DAI",
        "Hệ thống DAT-DAI",
        "Bí mật",
        "Sở Tài nguyên",
        "Nguyễn Văn An",
    ];
    let missing = web.get("/changes/999999").await;
    assert_eq!(missing.status, 404);
    for path in [
        "/systems/DAT-DAI".to_owned(),
        format!("/changes/{}", cr.id),
        format!("/changes/{}/report", cr.id),
        format!("/changes/{}/evaluate", cr.id),
    ] {
        let r = web.get(&path).await;
        assert_eq!(r.status, 404, "{path}: {}", snippet(&r.body));
        for s in secrets {
            assert!(!r.body.contains(s), "{path} names {s:?}");
        }
        if path.starts_with("/changes/") && !path.contains("/report") && !path.contains("/evaluate")
        {
            assert_eq!(
                text_of(&r.body).replace(&cr.id.to_string(), "999999"),
                text_of(&missing.body),
                "a change of another organisation answers unlike a missing one"
            );
        }
    }
    for path in [
        "/",
        "/systems",
        "/export/systems.csv",
        "/export/changes.csv",
    ] {
        let r = web.get(path).await;
        assert_eq!(r.status, 200, "{path}");
        for s in secrets {
            assert!(!r.body.contains(s), "{path} names {s:?}");
        }
    }
    // Acting on it is refused the same way, and changes nothing.
    let csrf = web.session_csrf().await;
    let r = web
        .post(&format!("/changes/{}/withdraw", cr.id), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, 404);
    assert_eq!(ok(w.owner.change(cr.id).await).state, "submitted");
}

#[tokio::test]
async fn a_post_without_or_with_a_wrong_csrf_token_is_refused_and_changes_nothing() {
    let t = spawn_app().await;
    let (w, [otp, ..]) = web_people(&t).await;
    // The login form: no token, a token without its cookie, a wrong token.
    let mut web = Web::new(&t.url);
    let (csrf, _) = web.csrf_of("/login").await;
    let wrong = "x".repeat(csrf.len());
    for (what, fields, drop_cookie) in [
        (
            "no token",
            vec![("username", "chu.he.thong"), ("password", otp.as_str())],
            false,
        ),
        (
            "a wrong token",
            vec![
                ("username", "chu.he.thong"),
                ("password", otp.as_str()),
                ("csrf", wrong.as_str()),
            ],
            false,
        ),
        (
            "the token without its cookie",
            vec![
                ("username", "chu.he.thong"),
                ("password", otp.as_str()),
                ("csrf", csrf.as_str()),
            ],
            true,
        ),
    ] {
        let mut web = Web::new(&t.url);
        web.csrf_of("/login").await;
        if drop_cookie {
            web.cookies.remove("cg_csrf");
        }
        let r = web.post("/login", &fields).await;
        assert_eq!(r.status, 403, "login with {what}: {}", snippet(&r.body));
        assert!(
            r.body.contains("CSRF"),
            "login with {what}: {}",
            snippet(&r.body)
        );
        assert!(
            !web.cookies.contains_key("cg_session"),
            "login with {what} signed in"
        );
    }
    // (The world's reviewers signed in once, to enrol their second factor.)
    let logins = t.audit_actions("auth.login").await;
    assert!(
        logins.iter().all(|e| e.actor != "chu.he.thong"),
        "a refused form signed someone in: {logins:?}"
    );

    // Signed in: filing a change without the token, or with another session's token.
    web.first_sign_in("chu.he.thong", &otp).await;
    let mut other = Web::new(&t.url);
    other
        .sign_in("chu.he.thong", NEW_PASSWORD)
        .await
        .assert_redirect("/", "second session");
    let other_csrf = other.session_csrf().await;
    let own_csrf = web.session_csrf().await;
    assert_ne!(own_csrf, other_csrf, "two sessions share a CSRF token");
    let before = ok(w.owner.changes(None, None).await).items.len();
    for (what, token) in [
        ("no token", None),
        ("another session's token", Some(other_csrf.as_str())),
    ] {
        let mut fields = vec![
            ("system", "TTHC"),
            ("kind", "software"),
            ("title", "Thay đổi giả mạo"),
            ("description", "Gửi từ trang khác"),
            ("environments", "production"),
            ("commit", "1111111111111111111111111111111111111111"),
            ("tree", "2222222222222222222222222222222222222222"),
        ];
        if let Some(tok) = token {
            fields.push(("csrf", tok));
        }
        let r = web.post("/changes", &fields).await;
        assert_eq!(r.status, 403, "filing with {what}: {}", snippet(&r.body));
        assert!(r.body.contains("CSRF"), "{}", snippet(&r.body));
    }
    assert_eq!(
        ok(w.owner.changes(None, None).await).items.len(),
        before,
        "a change was filed"
    );
    // Logout without the token does not log out.
    let r = web.post("/logout", &[]).await;
    assert_eq!(r.status, 403);
    assert_eq!(
        web.get("/").await.status,
        200,
        "logged out by a forged form"
    );
}

#[tokio::test]
async fn html_typed_into_a_change_an_incident_or_a_name_is_shown_as_text() {
    let t = spawn_app().await;
    let (_w, [otp, ..]) = web_people(&t).await;
    let mut web = Web::new(&t.url);
    web.first_sign_in("chu.he.thong", &otp).await;
    let (csrf, _) = web.csrf_of("/changes/new?system=TTHC").await;
    let title = "<script>alert('xss')</script><b>Nâng cấp</b>";
    let description = "<img src=x onerror=alert(1)> mô tả";
    let r = web
        .post(
            "/changes",
            &[
                ("system", "TTHC"),
                ("kind", "software"),
                ("title", title),
                ("description", description),
                ("environments", "production"),
                ("commit", &random_oid()),
                ("tree", &random_oid()),
                ("csrf", &csrf),
            ],
        )
        .await;
    r.assert_redirect("/changes/", "filing a change");
    let path = r.redirect().unwrap();
    for p in [
        path.as_str(),
        "/",
        "/systems/TTHC",
        &format!("{path}/report"),
    ] {
        let page = web.get(p).await;
        assert_eq!(page.status, 200, "{p}: {}", snippet(&page.body));
        assert!(!page.body.contains("<script>alert"), "{p} runs the title");
        assert!(
            !page.body.contains("<b>Nâng cấp"),
            "{p} renders the title's HTML"
        );
        assert!(
            !page.body.contains("<img src=x"),
            "{p} renders the description's HTML"
        );
        if p == path {
            assert!(
                text_of(&page.body).contains(title),
                "{p} does not show the title as typed: {}",
                snippet(&page.body)
            );
            assert!(text_of(&page.body).contains(description));
        }
    }

    // An incident's summary, and a person's name, are text too.
    let (csrf, _) = web.csrf_of("/incidents/new?system=TTHC").await;
    let summary = "<script>document.title='pwned'</script> máy chủ chậm";
    let r = web
        .post(
            "/incidents/new",
            &[
                ("system", "TTHC"),
                ("kind", "malware"),
                ("severity", "low"),
                ("summary", summary),
                ("csrf", &csrf),
            ],
        )
        .await;
    r.assert_redirect("/incidents", "reporting an incident");
    let page = web.get("/incidents").await;
    assert!(
        !page.body.contains("<script>document.title"),
        "the summary runs"
    );
    assert!(
        text_of(&page.body).contains(summary),
        "{}",
        snippet(&page.body)
    );
    let otp = t
        .person("ten.html", "<i>Lê</i> Văn Tên", "STNMT", "owner")
        .await;
    let mut other = Web::new(&t.url);
    other.first_sign_in("ten.html", &otp).await;
    let home = other.get("/").await;
    assert!(
        !home.body.contains("<i>Lê</i>"),
        "the name's HTML is rendered"
    );
    assert!(text_of(&home.body).contains("<i>Lê</i> Văn Tên"));
}

#[tokio::test]
async fn a_change_form_with_a_bad_field_comes_back_with_the_message_and_the_other_values() {
    let t = spawn_app().await;
    let (w, [otp, ..]) = web_people(&t).await;
    let mut web = Web::new(&t.url);
    web.first_sign_in("chu.he.thong", &otp).await;
    let (csrf, page) = web.csrf_of("/changes/new?system=TTHC").await;
    assert_eq!(field_value(&page.body, "system").as_deref(), Some("TTHC"));
    let commit = random_oid();
    let r = web
        .post(
            "/changes",
            &[
                ("system", "TTHC"),
                ("kind", "software"),
                ("title", ""),
                ("description", "Mô tả phải được giữ lại"),
                ("environments", "staging"),
                ("commit", &commit),
                ("tree", "khong-phai-hex"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, 422, "{}", snippet(&r.body));
    assert!(
        field_error(&r.body, "title").is_some() || field_error(&r.body, "tree").is_some(),
        "no message next to the bad field: {}",
        snippet(&r.body)
    );
    assert_eq!(
        field_value(&r.body, "description").as_deref(),
        Some("Mô tả phải được giữ lại")
    );
    assert_eq!(
        field_value(&r.body, "commit").as_deref(),
        Some(commit.as_str())
    );
    assert_eq!(checked(&r.body, "environments"), ["staging"]);
    assert!(ok(w.owner.changes(None, None).await).items.is_empty());

    // The account page's password form names the problem next to the new password.
    let (csrf, account) = web.csrf_of("/account").await;
    let action = form_action_with(&account.body, "current_password")
        .unwrap_or_else(|| panic!("no password form on /account: {}", snippet(&account.body)));
    let r = web
        .post(
            &action,
            &[
                ("current_password", NEW_PASSWORD),
                ("new_password", "ngan"),
                ("confirm_password", "ngan"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, 422, "{}", snippet(&r.body));
    assert!(
        field_error(&r.body, "new_password").is_some(),
        "{}",
        snippet(&r.body)
    );
    let r = web
        .post(
            &action,
            &[
                ("current_password", NEW_PASSWORD),
                ("new_password", "chu.he.thong-2026-moi"),
                ("confirm_password", "chu.he.thong-2026-moi"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(
        r.status, 422,
        "a password containing the username was taken"
    );
    assert!(field_error(&r.body, "new_password").is_some());
    let r = web
        .post(
            &action,
            &[
                ("current_password", "khong-phai-mat-khau-cu"),
                ("new_password", "mot mat khau moi rat dai 2027"),
                ("confirm_password", "mot mat khau moi rat dai 2027"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(r.status, 422, "changed without the current password");
    // The old password still signs in.
    Web::new(&t.url)
        .sign_in("chu.he.thong", NEW_PASSWORD)
        .await
        .assert_redirect("/", "the unchanged password");
}

// --- Security headers --------------------------------------------------------------------------

/// Fails unless `r`, an HTML page, carries the security headers (HSTS exactly when `tls`).
fn assert_security_headers(r: &Resp, what: &str, tls: bool) {
    let h = |name: &str| {
        r.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let ct = h("content-type").unwrap_or_default();
    assert!(ct.starts_with("text/html"), "{what}: {ct} ({})", r.status);
    let csp = h("content-security-policy").unwrap_or_else(|| panic!("{what}: no CSP"));
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(csp.contains("default-src 'none'"), "{what}: {csp}");
    assert!(!csp.contains("unsafe-inline"), "{what}: {csp}");
    assert_eq!(h("x-frame-options").as_deref(), Some("DENY"), "{what}");
    assert_eq!(
        h("x-content-type-options").as_deref(),
        Some("nosniff"),
        "{what}"
    );
    assert_eq!(
        h("referrer-policy").as_deref(),
        Some("same-origin"),
        "{what}"
    );
    assert_eq!(
        h("strict-transport-security").is_some(),
        tls,
        "{what}: HSTS only behind TLS"
    );
    // Nothing on the page would run under that policy anyway: no inline script or handler.
    let lower = r.body.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "{what}: inline script");
    assert!(
        !lower.contains(" onclick=") && !lower.contains(" onload="),
        "{what}"
    );
}

#[tokio::test]
async fn every_page_carries_the_security_headers_and_hsts_only_behind_tls() {
    let t = spawn_app().await;
    let (_w, [owner, ..]) = web_people(&t).await;
    let mut anon = Web::new(&t.url);
    for path in ["/login"] {
        let r = anon.get(path).await;
        assert_security_headers(&r, path, false);
    }
    let mut web = Web::new(&t.url);
    web.first_sign_in("chu.he.thong", &owner).await;
    for path in [
        "/",
        "/systems",
        "/systems/TTHC",
        "/changes",
        "/changes/new",
        "/incidents",
        "/incidents/new",
        "/account",
        "/tokens",
        "/changes/999999",
    ] {
        let r = web.get(path).await;
        assert_security_headers(&r, path, false);
    }
    // An id is written one way: /changes/01 is not change 1.
    assert_eq!(web.get("/changes/01").await.status, 404);

    let real = RealServer::start(|c| c.behind_tls = true, &[]).await;
    let r = Web::new(&real.server.url).get("/login").await;
    assert_security_headers(&r, "/login behind TLS", true);
}

/// From outside an organisation's IP allow-list a right password got 403 "refused" and a wrong
/// one 401 "failed": a password oracle. Both now get the same status and page after the same
/// work.
#[tokio::test]
async fn from_outside_the_allow_list_a_right_and_a_wrong_password_answer_alike() {
    let t = spawn_app().await;
    let (_w, [otp, ..]) = web_people(&t).await;
    t.app
        .set_allowed_ips(&Principal::operator(), "STNMT", &["10.0.0.0/8".to_owned()])
        .await
        .unwrap();
    let mut right = vec![];
    let mut wrong = vec![];
    let mut answers = std::collections::BTreeSet::new();
    for i in 0..9u8 {
        for (from, password, times) in [
            (1u8, otp.as_str(), &mut right),
            (2, "sai-mat-khau", &mut wrong),
        ] {
            // A fresh address each time: no throttle or backoff carried from one try to the next.
            let mut web = Web::from_ip(&t.url, IpAddr::from([127, from, 0, 10 + i]));
            let r = web.sign_in("chu.he.thong", password).await;
            let csrf = field_value(&r.body, "csrf").unwrap_or_default();
            answers.insert((r.status, r.body.replace(&csrf, "CSRF")));
            times.push(r.elapsed);
        }
    }
    assert_eq!(
        answers.len(),
        1,
        "right and wrong passwords answer differently: {:?}",
        answers
            .iter()
            .map(|(s, b)| (s, snippet(b)))
            .collect::<Vec<_>>()
    );
    let (status, body) = answers.into_iter().next().unwrap();
    assert_eq!(status, 403, "{}", snippet(&body));
    let median = |v: &mut Vec<Duration>| {
        v.sort();
        v[v.len() / 2].as_secs_f64()
    };
    let (r, w) = (median(&mut right), median(&mut wrong));
    assert!(
        (r - w).abs() <= 0.2 * r.max(w),
        "median times differ by more than 20%: right {r:.3} s, wrong {w:.3} s"
    );
}

/// The sixth code on the sign-off form used to land on a bare login page with the 20 checklist
/// answers lost. Now the locked reviewer gets the form back, answers in place, told until when;
/// sending the change back is refused alike.
#[tokio::test]
async fn a_reviewer_locked_while_signing_off_keeps_the_forms_answers_and_is_told_until_when() {
    let t = spawn_app().await;
    let (w, [_, reviewer_otp, _]) = web_people(&t).await;
    let cr = w.submitted("TTHC").await;
    let mut web = Web::new(&t.url);
    web.first_sign_in("kiem.tra.vien", &reviewer_otp).await;
    let path = format!("/changes/{}/evaluate", cr.id);
    let note = "Ghi chú cần giữ lại 0427";
    let mut refused = vec![];
    for attempt in 0..6 {
        let (csrf, _) = web.csrf_of(&path).await;
        let mut form: Vec<(String, String)> = vec![
            ("csrf".into(), csrf),
            ("conclusion".into(), "pass".into()),
            ("code".into(), format!("00000{attempt}")),
        ];
        for i in 0..cr.checklist.len() {
            form.push((format!("result_{i}"), "pass".into()));
            form.push((
                format!("note_{i}"),
                if i == 0 { note.into() } else { String::new() },
            ));
        }
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        refused.push(web.post(&path, &form).await);
    }
    assert_eq!(t.audit_actions("account.locked").await.len(), 1);
    let last = refused.last().unwrap();
    assert_eq!(last.status, 403, "{}", snippet(&last.body));
    assert!(
        last.body.contains(note),
        "the answers are lost: {}",
        snippet(&last.body)
    );
    let said = field_error(&last.body, "code").unwrap_or_default();
    assert!(
        said.contains("khóa") && said.contains(':'),
        "told until when: {said}"
    );
    // Sending the change back is refused alike, the note kept.
    let (csrf, _) = web.csrf_of(&path).await;
    let r = web
        .post(
            &path,
            &[
                ("csrf", csrf.as_str()),
                ("conclusion", "changes_requested"),
                ("return_note", "Thiếu kết quả kiểm thử 0427"),
            ],
        )
        .await;
    assert_eq!(r.status, 403, "{}", snippet(&r.body));
    assert!(r.body.contains("Thiếu kết quả kiểm thử 0427"));
    assert_eq!(ok(w.owner.change(cr.id).await).state, "submitted");
}
