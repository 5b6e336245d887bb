//! The pages over real HTTP: a server on `127.0.0.1:0` over a fresh SQLite file, driven like a
//! browser without JavaScript (forms, cookies, redirects followed by hand).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use changegate_api::{NewOrganisation, NewSystem, NewUser};
use changegate_app::{App, Principal};
use reqwest::StatusCode;
use std::collections::BTreeMap;
use std::sync::Arc;

struct Site {
    app: Arc<App>,
    base: String,
    _dir: tempfile::TempDir,
    passwords: BTreeMap<String, String>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Two owner organisations, PA05 and an inspector; one system each for the owners.
async fn site() -> Site {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::config::Config {
        data_dir: dir.path().to_owned(),
        ..crate::config::Config::default()
    };
    let server = crate::build(&config).await.unwrap();
    let app = server.app.clone();
    let op = Principal::operator();
    for (code, name, kind) in [
        ("STNMT", "Sở Tài nguyên và Môi trường", "owner"),
        ("CUCTHUE", "Cục Thuế tỉnh", "owner"),
        ("PA05", "Công an tỉnh – Phòng PA05", "reviewer"),
        ("STTTT", "Sở Thông tin và Truyền thông", "inspector"),
    ] {
        let n = NewOrganisation {
            code: code.into(),
            name: name.into(),
            kind: kind.into(),
        };
        app.create_organisation(&op, n).await.unwrap();
    }
    let mut passwords = BTreeMap::new();
    for (u, name, org, role) in [
        ("nguyen.van.an", "Nguyễn Văn An", "STNMT", "owner"),
        ("pham.thue", "Phạm Văn Thuế", "CUCTHUE", "owner"),
        ("tran.thi.hoa", "Trần Thị Hoa", "PA05", "reviewer"),
        ("le.thanh.tra", "Lê Thanh Tra", "STTTT", "auditor"),
    ] {
        let n = NewUser {
            username: u.into(),
            display_name: name.into(),
            org: org.into(),
            role: role.into(),
        };
        let created = app.create_user(&op, n).await.unwrap();
        passwords.insert(u.to_owned(), created.one_time_password);
    }
    for (code, org) in [("TTHC-TINH", "STNMT"), ("THUE-TINH", "CUCTHUE")] {
        let n = NewSystem {
            code: code.into(),
            name: format!("Hệ thống {code}"),
            owner_org: org.into(),
            operating_unit: String::new(),
            level: 3,
            population_db: true,
            environments: vec!["production".into(), "staging".into()],
            components: vec![],
            last_review: None,
        };
        app.create_system(&op, n).await.unwrap();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = server
            .serve(listener, async move {
                let _ = rx.await;
            })
            .await;
    });
    Site {
        app,
        base,
        _dir: dir,
        passwords,
        _stop: stop,
    }
}

/// A browser: a cookie jar and no automatic redirects.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: BTreeMap<String, String>,
}

struct Page {
    status: StatusCode,
    body: String,
    location: Option<String>,
}

impl Browser {
    fn new(site: &Site) -> Self {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Browser {
            http,
            base: site.base.clone(),
            cookies: BTreeMap::new(),
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn absorb(&mut self, r: reqwest::Response) -> Page {
        for c in r.headers().get_all("set-cookie") {
            let c = c.to_str().unwrap();
            let (kv, attrs) = c.split_once(';').unwrap_or((c, ""));
            let (k, v) = kv.split_once('=').unwrap();
            if attrs.contains("Max-Age=0") {
                self.cookies.remove(k);
            } else {
                self.cookies.insert(k.to_owned(), v.to_owned());
            }
        }
        let status = r.status();
        let location = r
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_owned());
        Page {
            status,
            body: r.text().await.unwrap(),
            location,
        }
    }

    async fn get(&mut self, path: &str) -> Page {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .send()
            .await
            .unwrap();
        self.absorb(r).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .unwrap();
        self.absorb(r).await
    }

    /// Signs in and sets a new password; returns the CSRF token of the active session.
    async fn first_login(&mut self, site: &Site, user: &str) -> Page {
        let login = self.get("/login").await;
        let csrf = csrf_in(&login.body);
        let p = self
            .post(
                "/login",
                &[
                    ("username", user),
                    ("password", &site.passwords[user]),
                    ("csrf", &csrf),
                ],
            )
            .await;
        assert_eq!(p.status, StatusCode::SEE_OTHER, "{}", p.body);
        assert_eq!(p.location.as_deref(), Some("/login/password"));
        let form = self.get("/login/password").await;
        assert_eq!(form.status, StatusCode::OK);
        assert!(
            !form.body.contains("name=\"current_password\""),
            "first change asks no current password"
        );
        let csrf = csrf_in(&form.body);
        let new = "một câu mật khẩu thật dài 2026";
        self.post(
            "/login/password",
            &[
                ("new_password", new),
                ("confirm_password", new),
                ("csrf", &csrf),
            ],
        )
        .await
    }
}

fn csrf_in(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

fn field_error<'a>(html: &'a str, field: &str) -> Option<&'a str> {
    let marker = format!("<p class=\"field-error\" data-field=\"{field}\">");
    let at = html.find(&marker)? + marker.len();
    html[at..].split('<').next()
}

#[tokio::test]
async fn a_first_login_forces_a_new_password_and_the_stage_cannot_be_skipped() {
    let site = site().await;
    let mut b = Browser::new(&site);
    let anon = b.get("/").await;
    assert_eq!(
        (anon.status, anon.location.as_deref()),
        (StatusCode::SEE_OTHER, Some("/login"))
    );
    let login = b.get("/login").await;
    assert!(login.body.contains("<html lang=\"vi\">"));
    assert!(b.cookies.contains_key("cg_csrf"));
    let csrf = csrf_in(&login.body);
    let wrong = b
        .post(
            "/login",
            &[
                ("username", "nguyen.van.an"),
                ("password", "sai mật khẩu"),
                ("csrf", &csrf),
            ],
        )
        .await;
    let unknown = b
        .post(
            "/login",
            &[
                ("username", "khong.co.ai"),
                ("password", "sai mật khẩu"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    let flash = |p: &Page| {
        p.body
            .split("class=\"flash error\"")
            .nth(1)
            .map(|s| s.split('<').next().unwrap_or("").to_owned())
    };
    assert_eq!(
        flash(&wrong),
        flash(&unknown),
        "one message for a wrong password and an unknown user"
    );
    assert!(
        wrong.body.contains("value=\"nguyen.van.an\""),
        "the username is kept"
    );
    let pw = site.passwords["nguyen.van.an"].clone();
    let p = b
        .post(
            "/login",
            &[
                ("username", "nguyen.van.an"),
                ("password", &pw),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(p.location.as_deref(), Some("/login/password"));
    let s = b.cookies.get("cg_session").cloned().unwrap_or_default();
    assert!(!s.is_empty());
    for path in ["/", "/systems", "/changes/new", "/tokens"] {
        let skip = b.get(path).await;
        assert_eq!(
            skip.location.as_deref(),
            Some("/login/password"),
            "{path} before the password change"
        );
    }
    let form = b.get("/login/password").await;
    let csrf = csrf_in(&form.body);
    let short = b
        .post(
            "/login/password",
            &[
                ("new_password", "ngắn"),
                ("confirm_password", "ngắn"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(short.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        field_error(&short.body, "new_password").is_some(),
        "{}",
        short.body
    );
    let differ = b
        .post(
            "/login/password",
            &[
                ("new_password", "một câu mật khẩu thật dài"),
                ("confirm_password", "khác"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert!(field_error(&differ.body, "confirm_password").is_some());
    let new = "một câu mật khẩu thật dài 2026";
    let done = b
        .post(
            "/login/password",
            &[
                ("new_password", new),
                ("confirm_password", new),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(done.location.as_deref(), Some("/"));
    let dash = b.get("/").await;
    assert_eq!(dash.status, StatusCode::OK);
    assert!(
        dash.body.contains("TTHC-TINH") && !dash.body.contains("THUE-TINH"),
        "an owner sees only their systems"
    );
}

#[tokio::test]
async fn an_owner_files_a_change_bad_fields_come_back_with_values_and_html_is_shown_as_text() {
    let site = site().await;
    let mut b = Browser::new(&site);
    assert_eq!(
        b.first_login(&site, "nguyen.van.an")
            .await
            .location
            .as_deref(),
        Some("/")
    );
    let form = b.get("/changes/new?system=TTHC-TINH").await;
    assert_eq!(form.status, StatusCode::OK);
    let csrf = csrf_in(&form.body);
    let title = "<script>alert('x')</script> Nâng cấp";
    let bad = b
        .post(
            "/changes",
            &[
                ("csrf", &csrf),
                ("system", "TTHC-TINH"),
                ("kind", "software"),
                ("title", title),
                ("description", "Mô tả"),
                ("environments", "production"),
                ("commit", "xyz"),
                ("tree", ""),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(field_error(&bad.body, "commit").is_some(), "{}", bad.body);
    assert!(
        bad.body.contains("&lt;script&gt;"),
        "the title is kept, escaped"
    );
    assert!(!bad.body.contains("<script>alert"), "never raw");
    assert!(bad.body.contains(">Mô tả</textarea>"));
    let commit = "1111111111111111111111111111111111111111";
    let tree = "2222222222222222222222222222222222222222";
    let ok = b
        .post(
            "/changes",
            &[
                ("csrf", &csrf),
                ("system", "TTHC-TINH"),
                ("kind", "software"),
                ("title", title),
                ("environments", "production"),
                ("commit", commit),
                ("tree", tree),
                ("submit", "1"),
            ],
        )
        .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER, "{}", ok.body);
    let to = ok.location.unwrap();
    assert!(
        to.starts_with("/changes/") && to.ends_with("?ok=submitted"),
        "{to}"
    );
    let page = b.get(&to).await;
    assert!(
        page.body.contains("data-state=\"submitted\""),
        "{}",
        page.body
    );
    assert!(page.body.contains("class=\"flash ok\""));
    assert!(page.body.contains("&lt;script&gt;") && !page.body.contains("<script>alert"));
    assert!(page.body.contains(commit) && page.body.contains("change_request.submit"));
}

#[tokio::test]
async fn another_organisations_pages_are_not_found_and_name_nothing() {
    let site = site().await;
    let mut other = Browser::new(&site);
    other.first_login(&site, "pham.thue").await;
    let mut owner = Browser::new(&site);
    owner.first_login(&site, "nguyen.van.an").await;
    let form = owner.get("/changes/new").await;
    let csrf = csrf_in(&form.body);
    let filed = owner
        .post(
            "/changes",
            &[
                ("csrf", &csrf),
                ("system", "TTHC-TINH"),
                ("kind", "software"),
                ("title", "Bí mật"),
            ],
        )
        .await;
    let change = filed
        .location
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    for path in [
        "/systems/TTHC-TINH",
        change.as_str(),
        &format!("{change}/report"),
        "/systems/NO-SUCH",
    ] {
        let p = other.get(path).await;
        assert_eq!(p.status, StatusCode::NOT_FOUND, "{path}");
        assert!(
            !p.body.contains("TTHC-TINH") && !p.body.contains("Bí mật"),
            "{path} leaks: {}",
            p.body
        );
    }
    let csv = other.get("/export/changes.csv").await;
    assert!(!csv.body.contains("Bí mật"));
}

#[tokio::test]
async fn a_form_without_its_csrf_token_is_refused_and_nothing_changes() {
    let site = site().await;
    let mut b = Browser::new(&site);
    b.first_login(&site, "nguyen.van.an").await;
    let before = count_changes(&site.app).await;
    for form in [vec![], vec![("csrf", "sai")]] {
        let mut f = form.clone();
        f.extend([
            ("system", "TTHC-TINH"),
            ("kind", "software"),
            ("title", "Không có mã CSRF"),
        ]);
        let p = b.post("/changes", &f).await;
        assert_eq!(p.status, StatusCode::FORBIDDEN);
        assert!(p.body.contains("CSRF"), "{}", p.body);
    }
    assert_eq!(count_changes(&site.app).await, before);
    let login = Browser::new(&site)
        .post(
            "/login",
            &[("username", "nguyen.van.an"), ("password", "x")],
        )
        .await;
    assert_eq!(
        login.status,
        StatusCode::FORBIDDEN,
        "the login form has its double-submit token too"
    );
}

#[tokio::test]
async fn the_language_switch_sets_a_cookie_and_every_label_follows() {
    let site = site().await;
    let mut b = Browser::new(&site);
    b.first_login(&site, "nguyen.van.an").await;
    let vi = b.get("/systems").await;
    assert!(vi.body.contains("<html lang=\"vi\">") && vi.body.contains("Hệ thống thông tin"));
    let csrf = csrf_in(&vi.body);
    let p = b
        .post(
            "/lang",
            &[("lang", "en"), ("csrf", &csrf), ("back", "/systems")],
        )
        .await;
    assert_eq!(p.location.as_deref(), Some("/systems"));
    assert_eq!(b.cookies.get("cg_lang").map(String::as_str), Some("en"));
    let en = b.get("/systems").await;
    assert!(en.body.contains("<html lang=\"en\">") && en.body.contains("Information systems"));
    assert!(!en.body.contains("Đăng xuất"), "no Vietnamese label left");
    let away = b
        .post(
            "/lang",
            &[
                ("lang", "vi"),
                ("csrf", &csrf),
                ("back", "https://example.com/"),
            ],
        )
        .await;
    assert_eq!(away.location.as_deref(), Some("/"), "only local paths");
}

#[tokio::test]
async fn a_reviewer_enrols_a_second_factor_signs_off_and_the_gate_flips_to_allow() {
    let site = site().await;
    let mut owner = Browser::new(&site);
    owner.first_login(&site, "nguyen.van.an").await;
    let csrf_o = csrf_in(&owner.get("/changes/new").await.body);
    let (commit, tree) = ("a".repeat(40), "b".repeat(40));
    let filed = owner
        .post(
            "/changes",
            &[
                ("csrf", &csrf_o),
                ("system", "TTHC-TINH"),
                ("kind", "software"),
                ("title", "Vá lỗi"),
                ("environments", "production"),
                ("commit", &commit),
                ("tree", &tree),
                ("submit", "1"),
            ],
        )
        .await;
    let change = filed
        .location
        .unwrap()
        .split('?')
        .next()
        .unwrap()
        .to_owned();
    let sys = owner.get("/systems/TTHC-TINH").await;
    assert!(
        sys.body
            .contains("<td class=\"gate\" data-env=\"production\" data-decision=\"deny\">"),
        "{}",
        sys.body
    );

    let mut rev = Browser::new(&site);
    let p = rev.first_login(&site, "tran.thi.hoa").await;
    assert_eq!(p.location.as_deref(), Some("/login/totp"));
    assert_eq!(rev.get("/").await.location.as_deref(), Some("/login/totp"));
    let enrol = rev.get("/login/totp").await;
    let secret = enrol
        .body
        .split("<code id=\"totp-secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let key = changegate_app::totp::base32_decode(&secret).unwrap();
    let now = chrono::Utc::now().timestamp();
    let csrf_r = csrf_in(&enrol.body);
    let wrong = rev
        .post("/login/totp", &[("code", "000000"), ("csrf", &csrf_r)])
        .await;
    assert_eq!(wrong.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(field_error(&wrong.body, "code").is_some());
    assert!(
        wrong.body.contains(&secret),
        "the same secret is shown again"
    );
    let code = changegate_app::totp::code_at(&key, now);
    let ok = rev
        .post("/login/totp", &[("code", &code), ("csrf", &csrf_r)])
        .await;
    assert_eq!(ok.location.as_deref(), Some("/"), "{}", ok.body);
    let dash = rev.get("/").await;
    assert!(
        dash.body.contains("id=\"queue\"") && dash.body.contains(&format!("href=\"{change}\""))
    );

    let form = rev.get(&format!("{change}/evaluate")).await;
    assert_eq!(form.status, StatusCode::OK);
    let n = form.body.matches("name=\"result_").count() / 3;
    assert_eq!(n, site.app.pack.checklist.len());
    let names: Vec<String> = (0..n).map(|i| format!("result_{i}")).collect();
    let mut fields: Vec<(&str, &str)> = names.iter().map(|k| (k.as_str(), "pass")).collect();
    fields[2].1 = "fail";
    let csrf_e = csrf_in(&form.body);
    let next = changegate_app::totp::code_at(&key, now + 30);
    fields.extend([
        ("conclusion", "pass"),
        ("csrf", csrf_e.as_str()),
        ("cond_text_0", "Rà soát sau 30 ngày"),
    ]);
    let mut bad = fields.clone();
    bad.push(("code", "123456"));
    let refused = rev.post(&format!("{change}/evaluate"), &bad).await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        refused.body.contains("value=\"fail\" checked"),
        "answers are kept"
    );
    // A passing conclusion over a failed item, with a right code: the rule's own message.
    let mut over_a_failure = fields.clone();
    over_a_failure.extend([("note_2", "Thiếu nhật ký truy cập"), ("code", &next)]);
    let refused = rev
        .post(&format!("{change}/evaluate"), &over_a_failure)
        .await;
    assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        field_error(&refused.body, "conclusion").map(|m| m.replace("&#x27;", "'")),
        Some(crate::web::i18n::text(
            crate::web::i18n::Lang::Vi,
            "err.conclusion_fail_item"
        )),
        "{}",
        refused.body
    );
    fields[2].1 = "pass";
    fields.push(("code", &next));
    let signed = rev.post(&format!("{change}/evaluate"), &fields).await;
    assert_eq!(signed.status, StatusCode::SEE_OTHER, "{}", signed.body);
    let sys = owner.get("/systems/TTHC-TINH").await;
    assert!(
        sys.body
            .contains("<td class=\"gate\" data-env=\"production\" data-decision=\"allow\">"),
        "{}",
        sys.body
    );
    assert!(
        sys.body
            .contains("<td class=\"gate\" data-env=\"staging\" data-decision=\"deny\">")
    );
    let report = owner.get(&format!("{change}/report")).await;
    assert_eq!(report.status, StatusCode::OK);
    assert!(
        report
            .body
            .contains("Biên bản kiểm tra, đánh giá an toàn thông tin")
    );
    assert!(report.body.contains("Trần Thị Hoa") && report.body.contains("Rà soát sau 30 ngày"));
}

#[tokio::test]
async fn csv_exports_are_utf8_with_a_bom_and_quote_what_needs_it() {
    let site = site().await;
    let mut b = Browser::new(&site);
    b.first_login(&site, "le.thanh.tra").await;
    let csv = b.get("/export/systems.csv").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.body.starts_with('\u{feff}'));
    assert!(
        csv.body.contains("TTHC-TINH") && csv.body.contains("THUE-TINH"),
        "an inspector sees every system"
    );
    assert!(
        csv.body.contains("\"production staging\"") || csv.body.contains(",production staging,")
    );
    assert!(csv.body.contains("Sở Tài nguyên và Môi trường"));
}

async fn count_changes(app: &App) -> usize {
    app.recent_changes(&Principal::operator(), None)
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn an_unknown_path_is_a_page_for_a_browser_and_a_problem_for_the_api() {
    let site = site().await;
    let http = reqwest::Client::new();
    let page = http
        .get(format!("{}/khong-co", site.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(page.text().await.unwrap().contains("<html lang=\"vi\">"));
    let api = http
        .get(format!("{}/api/v1/khong-co", site.base))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::NOT_FOUND);
    assert_eq!(api.headers()["content-type"], "application/problem+json");
}

/// Signs in a new admin (`quan.tri`, of the inspector) and enrols the second factor admins need.
async fn admin_browser(site: &mut Site) -> Browser {
    let n = NewUser {
        username: "quan.tri".into(),
        display_name: "Quản trị hệ thống".into(),
        org: "STTTT".into(),
        role: "admin".into(),
    };
    let created = site
        .app
        .create_user(&Principal::operator(), n)
        .await
        .unwrap();
    site.passwords
        .insert("quan.tri".into(), created.one_time_password);
    let mut b = Browser::new(site);
    let p = b.first_login(site, "quan.tri").await;
    assert_eq!(p.location.as_deref(), Some("/login/totp"));
    let enrol = b.get("/login/totp").await;
    let secret = enrol
        .body
        .split("<code id=\"totp-secret\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .to_owned();
    let key = changegate_app::totp::base32_decode(&secret).unwrap();
    let code = changegate_app::totp::code_at(&key, chrono::Utc::now().timestamp());
    let csrf = csrf_in(&enrol.body);
    let ok = b
        .post("/login/totp", &[("code", &code), ("csrf", &csrf)])
        .await;
    assert_eq!(ok.location.as_deref(), Some("/"), "{}", ok.body);
    b
}

#[tokio::test]
async fn an_admin_edits_and_retires_a_system_in_the_browser_and_the_list_filters_by_status() {
    let mut site = site().await;
    let mut admin = admin_browser(&mut site).await;
    let mut owner = Browser::new(&site);
    owner.first_login(&site, "nguyen.van.an").await;
    assert!(
        !owner
            .get("/systems/TTHC-TINH")
            .await
            .body
            .contains("id=\"system-edit\""),
        "an owner gets no edit form"
    );

    let page = admin.get("/systems/TTHC-TINH").await;
    assert!(page.body.contains("id=\"system-edit\"") && page.body.contains("id=\"system-retire\""));
    let csrf = csrf_in(&page.body);
    let bad = admin
        .post(
            "/systems/TTHC-TINH/edit",
            &[
                ("csrf", &csrf),
                ("name", "Cổng dịch vụ công"),
                ("operating_unit", "Trung tâm Chuyển đổi số"),
                ("environments", "production, Sản xuất!"),
            ],
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    assert!(
        field_error(&bad.body, "environments").is_some(),
        "{}",
        bad.body
    );
    assert!(bad.body.contains("value=\"production, Sản xuất!\""), "kept");
    assert_eq!(
        site.app
            .get_system(&Principal::operator(), "TTHC-TINH")
            .await
            .unwrap()
            .name,
        "Hệ thống TTHC-TINH",
        "nothing changed"
    );

    let saved = admin
        .post(
            "/systems/TTHC-TINH/edit",
            &[
                ("csrf", &csrf),
                ("name", "Cổng dịch vụ công"),
                ("operating_unit", "Trung tâm Chuyển đổi số"),
                ("environments", "production, staging, uat"),
                ("population_db", "1"),
            ],
        )
        .await;
    assert_eq!(saved.status, StatusCode::SEE_OTHER, "{}", saved.body);
    let to = saved.location.unwrap();
    assert_eq!(to, "/systems/TTHC-TINH?ok=system_edited");
    let page = owner.get("/systems/TTHC-TINH").await;
    assert!(
        page.body.contains("Cổng dịch vụ công") && page.body.contains("Trung tâm Chuyển đổi số")
    );
    assert!(
        page.body.contains("data-env=\"uat\""),
        "the gate shows the new environment"
    );

    let no_reason = admin
        .post(
            "/systems/TTHC-TINH/retire",
            &[("csrf", &csrf), ("reason", " ")],
        )
        .await;
    assert_eq!(no_reason.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(field_error(&no_reason.body, "reason").is_some());
    let retired = admin
        .post(
            "/systems/TTHC-TINH/retire",
            &[("csrf", &csrf), ("reason", "Thay thế bởi hệ thống mới")],
        )
        .await;
    assert_eq!(retired.status, StatusCode::SEE_OTHER, "{}", retired.body);
    let page = admin.get(retired.location.as_deref().unwrap()).await;
    assert!(
        page.body.contains("data-status=\"retired\"") && page.body.contains("id=\"retired-note\"")
    );
    assert!(page.body.contains("class=\"flash ok\""));
    assert!(
        !page.body.contains("id=\"system-edit\""),
        "a retired system is not edited"
    );
    let page = owner.get("/systems/TTHC-TINH").await;
    assert!(
        !page.body.contains("href=\"/changes/new?system="),
        "no new change offered"
    );

    let list = admin.get("/systems?status=retired").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("data-system=\"TTHC-TINH\""));
    assert!(!list.body.contains("data-system=\"THUE-TINH\""));
    let list = admin.get("/systems?org=CUCTHUE&level=3").await;
    assert!(list.body.contains("data-system=\"THUE-TINH\""));
    assert!(!list.body.contains("data-system=\"TTHC-TINH\""));
    let list = admin.get("/systems?level=9").await;
    assert_eq!(
        list.status,
        StatusCode::OK,
        "a bad filter is an empty list, not an error"
    );
    assert!(!list.body.contains("data-system="));
    let list = owner.get("/systems").await;
    assert!(list.body.contains("data-system=\"TTHC-TINH\""));
    assert!(
        !list.body.contains("data-system=\"THUE-TINH\""),
        "another organisation's"
    );
}

#[tokio::test]
async fn the_changes_page_searches_without_diacritics_and_filters() {
    let site = site().await;
    let mut b = Browser::new(&site);
    b.first_login(&site, "nguyen.van.an").await;
    let csrf = csrf_in(&b.get("/changes/new").await.body);
    for (i, (kind, title)) in [
        ("software", "Nâng cấp Cổng dịch vụ công"),
        ("hardware", "Thay máy chủ ở Đắk Lắk"),
    ]
    .into_iter()
    .enumerate()
    {
        let commit = format!("{i}").repeat(40);
        let filed = b
            .post(
                "/changes",
                &[
                    ("csrf", &csrf),
                    ("system", "TTHC-TINH"),
                    ("kind", kind),
                    ("title", title),
                    ("environments", "production"),
                    ("commit", &commit),
                    ("tree", &"a".repeat(40)),
                ],
            )
            .await;
        assert_eq!(filed.status, StatusCode::SEE_OTHER, "{}", filed.body);
    }
    let rows = |body: &str| body.matches("<tr data-change=").count();
    let all = b.get("/changes").await;
    assert_eq!(rows(&all.body), 2);
    assert!(all.body.contains("id=\"change-filters\""));
    let found = b.get("/changes?q=nang+cap").await;
    assert_eq!(rows(&found.body), 1, "{}", found.body);
    assert!(found.body.contains("Nâng cấp Cổng dịch vụ công"));
    assert!(
        found.body.contains("value=\"nang cap\""),
        "the search is kept"
    );
    let found = b.get("/changes?q=dak+lak&kind=hardware").await;
    assert_eq!(rows(&found.body), 1);
    assert!(found.body.contains("Thay máy chủ ở Đắk Lắk"));
    assert_eq!(
        rows(&b.get("/changes?q=dak+lak&kind=software").await.body),
        0
    );
    let bad = b.get("/changes?kind=firmware").await;
    assert_eq!(bad.status, StatusCode::OK, "a bad filter is an empty list");
    assert_eq!(rows(&bad.body), 0);

    // An inspector sees every organisation's and may filter by organisation.
    let mut auditor = Browser::new(&site);
    auditor.first_login(&site, "le.thanh.tra").await;
    for path in [
        "/changes?org=STNMT&q=nang+cap",
        "/systems?org=STNMT",
        "/remediations",
    ] {
        let page = auditor.get(path).await;
        assert_eq!(page.status, StatusCode::OK, "{path}: {}", page.body);
        assert!(page.body.contains("id=\"f-org\""), "{path}");
    }
    let page = auditor.get("/changes?org=STNMT&q=nang+cap").await;
    assert_eq!(rows(&page.body), 1);
    assert_eq!(rows(&auditor.get("/changes?org=CUCTHUE").await.body), 0);
}
