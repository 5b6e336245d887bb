//! The web UI as officials use it (issue 17): what is typed survives an ended session, a form
//! sent twice acts once, the sign-in comes back to the page asked for and never leaves the site,
//! the back button after a sign-off shows its result, destructive actions ask first, error pages
//! lead back, the incident page, the QR code at enrolment. (Every page at a phone's width and the
//! Vietnamese-only scan are in `browser::every_page_of_every_role_fits_a_phone_…`.)
//!
//! With `CHANGEGATE_SCREENSHOTS=DIR`, the browser tests save screenshots of the new pages at
//! 1366 and 390 px.

use crate::browser::{answer_fields, first_sign_in, log_in};
use crate::web_security::{NEW_PASSWORD, Web, web_people};
use changegate_app::Principal;
use changegate_tests::browser::{Browser, totp};
use changegate_tests::html::{by_id, field_value, select, snippet};
use changegate_tests::*;

/// Saves screenshots of the current page at 1366 and 390 px (with `CHANGEGATE_SCREENSHOTS`).
async fn shots(b: &Browser, name: &str) {
    let Some(dir) = std::env::var_os("CHANGEGATE_SCREENSHOTS").map(std::path::PathBuf::from) else {
        return;
    };
    std::fs::create_dir_all(&dir).unwrap();
    for (w, h) in [(1366, 900), (390, 844)] {
        b.set_window_size(w, h).await;
        b.screenshot(&dir.join(format!("{name}-{w}.png"))).await;
    }
    b.set_window_size(1366, 900).await;
}

async fn count_changes(t: &TestApp) -> usize {
    t.app
        .recent_changes(&Principal::operator(), None)
        .await
        .unwrap()
        .len()
}

/// Ends every session of `username` from another client (as a sign-out in another tab does).
async fn end_sessions_elsewhere(t: &TestApp, username: &str) {
    let mut other = Web::new(&t.url);
    other
        .sign_in(username, NEW_PASSWORD)
        .await
        .assert_redirect("/", "sign-in elsewhere");
    let csrf = other.session_csrf().await;
    other
        .post("/logout", &[("csrf", &csrf), ("everywhere", "1")])
        .await
        .assert_redirect("/login", "sign-out everywhere");
}

#[tokio::test]
async fn a_form_sent_after_the_session_ended_keeps_its_fields_through_the_sign_in() {
    let t = spawn_app().await;
    let (_w, [owner_otp, _, _]) = web_people(&t).await;
    let Some(b) = Browser::start(&t.url, "officials_ui_lost_session").await else {
        return;
    };
    first_sign_in(&b, "chu.he.thong", &owner_otp).await;
    b.goto("/changes/new").await;
    b.choose("system", "TTHC").await;
    let title = "Nâng cấp cổng dịch vụ công trực tuyến";
    let description = "Cập nhật thư viện xác thực.\nKiểm thử hồi quy đầy đủ.";
    b.fill("#title", title).await;
    b.fill("#description", description).await;
    b.click("input[name=environments][value=production]").await;
    let before = count_changes(&t).await;

    // Meanwhile the session ends (signed out everywhere from another tab or device).
    end_sessions_elsewhere(&t, "chu.he.thong").await;
    b.submit_form_of("title").await;
    let at = b.path().await;
    assert!(
        at.starts_with("/login?next="),
        "{at}: {}",
        b.page_text().await
    );
    let told = b.text("div.flash.ok").await;
    assert!(told.contains("giữ lại"), "the sign-in says nothing: {told}");
    assert_eq!(
        count_changes(&t).await,
        before,
        "nothing is filed without a session"
    );
    shots(&b, "login-draft-kept").await;

    // Signing in comes back to the form, filled in as it was.
    b.fill("input[name=username]", "chu.he.thong").await;
    b.fill("input[name=password]", NEW_PASSWORD).await;
    b.submit_form_of("password").await;
    b.wait_for_path("/changes/new").await;
    b.find("#draft-restored").await;
    assert_eq!(b.value("#title").await, title);
    assert_eq!(b.value("#description").await, description);
    assert!(
        b.try_find("input[name=environments][value=production]:checked")
            .await
            .is_some(),
        "the environment chosen is lost"
    );
    assert!(
        b.try_find("select[name=system] option[value=TTHC]:checked")
            .await
            .is_some(),
        "the system chosen is lost"
    );
    shots(&b, "change-form-restored").await;
    b.submit_form_of("title").await;
    let path = b.path().await;
    assert!(path.starts_with("/changes/"), "{path}");
    assert_eq!(count_changes(&t).await, before + 1);
    let filed = t
        .app
        .recent_changes(&Principal::operator(), None)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.title == title);
    assert!(
        filed.is_some(),
        "the change typed before the sign-in is filed"
    );
}

#[tokio::test]
async fn the_same_form_sent_twice_at_once_files_one_change_and_both_answers_lead_to_it() {
    let t = spawn_app().await;
    let (_w, [owner_otp, _, _]) = web_people(&t).await;
    let mut a = Web::new(&t.url);
    a.first_sign_in("chu.he.thong", &owner_otp).await;
    let page = a.get("/changes/new").await;
    let csrf = field_value(&page.body, "csrf").unwrap();
    let form_id = field_value(&page.body, "form_id")
        .unwrap_or_else(|| panic!("the form has no one-time id: {}", snippet(&page.body)));
    let mut b = Web::new(&t.url);
    b.cookies = a.cookies.clone();
    let form = [
        ("csrf", csrf.as_str()),
        ("form_id", form_id.as_str()),
        ("system", "TTHC"),
        ("kind", "software"),
        ("title", "Gửi hai lần cùng lúc"),
        ("environments", "production"),
    ];
    let before = count_changes(&t).await;
    let (r1, r2) = tokio::join!(a.post("/changes", &form), b.post("/changes", &form));
    r1.assert_redirect("/changes/", "the first submission");
    r2.assert_redirect("/changes/", "the second submission");
    assert_eq!(
        r1.redirect()
            .map(|p| p.split('?').next().map(str::to_owned)),
        r2.redirect()
            .map(|p| p.split('?').next().map(str::to_owned)),
        "both answers lead to the one change"
    );
    assert_eq!(count_changes(&t).await, before + 1, "filed once");
    // Sent again later (the back button and resend): the same change, nothing new.
    let r3 = a.post("/changes", &form).await;
    assert_eq!(r3.redirect(), r1.redirect());
    assert_eq!(count_changes(&t).await, before + 1);
    // A new form (a new id) files a new change.
    let page = a.get("/changes/new").await;
    let fresh = field_value(&page.body, "form_id").unwrap();
    assert_ne!(fresh, form_id);
}

#[tokio::test]
async fn the_sign_in_returns_to_the_page_asked_for_and_never_to_another_site() {
    let t = spawn_app().await;
    let (w, [owner_otp, _, _]) = web_people(&t).await;
    let cr = w.submitted("TTHC").await;
    let mut web = Web::new(&t.url);
    web.first_sign_in("chu.he.thong", &owner_otp).await;
    sign_out(&mut web).await;
    let asked = format!("/changes/{}", cr.id);
    let r = web.get(&asked).await;
    r.assert_redirect("/login?next=", "a page asked for without a session");
    let login = web.get(&r.redirect().unwrap()).await;
    assert_eq!(
        field_value(&login.body, "next").as_deref(),
        Some(asked.as_str())
    );
    let csrf = field_value(&login.body, "csrf").unwrap();
    let r = web
        .post(
            "/login",
            &[
                ("username", "chu.he.thong"),
                ("password", NEW_PASSWORD),
                ("csrf", &csrf),
                ("next", &asked),
            ],
        )
        .await;
    assert_eq!(r.redirect().as_deref(), Some(asked.as_str()));

    for evil in [
        "//evil.example/changes",
        "https://evil.example/",
        "/\\evil.example",
        "\\\\evil.example",
        "javascript:alert(1)",
    ] {
        sign_out(&mut web).await;
        let enc: String = url_encode(evil);
        let login = web.get(&format!("/login?next={enc}")).await;
        assert_eq!(login.status, 200);
        assert_eq!(field_value(&login.body, "next"), None, "{evil} kept");
        let csrf = field_value(&login.body, "csrf").unwrap();
        let r = web
            .post(
                "/login",
                &[
                    ("username", "chu.he.thong"),
                    ("password", NEW_PASSWORD),
                    ("csrf", &csrf),
                    ("next", evil),
                ],
            )
            .await;
        assert_eq!(r.redirect().as_deref(), Some("/"), "{evil} followed");
    }
}

async fn sign_out(web: &mut Web) {
    let csrf = web.session_csrf().await;
    web.post("/logout", &[("csrf", &csrf)])
        .await
        .assert_redirect("/login", "sign-out");
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn destructive_actions_ask_first_and_error_pages_lead_back() {
    let t = spawn_app().await;
    let (w, [owner_otp, _, _]) = web_people(&t).await;
    let cr = w.submitted("TTHC").await;
    let mut web = Web::new(&t.url);
    web.first_sign_in("chu.he.thong", &owner_otp).await;
    let change = format!("/changes/{}", cr.id);
    let page = web.get(&change).await;
    let link = by_id(&page.body, "withdraw-change").expect("a withdraw link");
    assert_eq!(
        link.attr("href"),
        Some(format!("{change}/withdraw").as_str())
    );
    // The link asks first; posting without the confirmation asks too; nothing changes.
    let ask = web.get(&format!("{change}/withdraw")).await;
    assert_eq!(ask.status, 200);
    assert!(
        by_id(&ask.body, "confirm-form").is_some(),
        "{}",
        snippet(&ask.body)
    );
    assert!(by_id(&ask.body, "cancel").is_some());
    let csrf = field_value(&ask.body, "csrf").unwrap();
    let r = web
        .post(&format!("{change}/withdraw"), &[("csrf", &csrf)])
        .await;
    r.assert_redirect(
        &format!("{change}/withdraw"),
        "withdraw without confirmation",
    );
    assert_eq!(ok(w.owner.change(cr.id).await).state, "submitted");
    let form_id = field_value(&ask.body, "form_id").unwrap();
    let r = web
        .post(
            &format!("{change}/withdraw"),
            &[("csrf", &csrf), ("form_id", &form_id), ("confirmed", "1")],
        )
        .await;
    r.assert_redirect(&change, "withdraw confirmed");
    assert_eq!(ok(w.owner.change(cr.id).await).state, "withdrawn");
    // Withdrawn: the action is no longer offered.
    let page = web.get(&change).await;
    assert!(by_id(&page.body, "withdraw-change").is_none());
    // An action no longer possible: a page with the navigation and a way back to the change.
    let r = web
        .post(&format!("{change}/submit"), &[("csrf", &csrf)])
        .await;
    assert_eq!(r.status, 409, "{}", snippet(&r.body));
    assert!(
        !select(&r.body, "nav").is_empty() && !select(&r.body, "a[href=\"/changes\"]").is_empty()
    );
    let back = by_id(&r.body, "error-back").expect("a link back");
    assert_eq!(back.attr("href"), Some(change.as_str()));
    // A page that does not exist: the navigation too.
    web.headers.push(("accept".into(), "text/html".into()));
    let r = web.get("/no/such/page").await;
    assert_eq!(r.status, 404);
    assert!(!select(&r.body, "nav").is_empty(), "{}", snippet(&r.body));
}

#[tokio::test]
async fn an_incident_has_its_page_with_history_notices_and_a_resolution_with_a_note() {
    let t = spawn_app().await;
    let (w, [_, reviewer_otp, _]) = web_people(&t).await;
    let incident = ok(w
        .owner
        .report_incident(
            "TTHC",
            &changegate_api::NewIncident {
                kind: "data_breach".into(),
                severity: "high".into(),
                summary: "Lộ dữ liệu hồ sơ công dân qua API tra cứu.".into(),
                detected_at: Some(chrono::Utc::now() - chrono::Duration::hours(5)),
                national_security: false,
            },
        )
        .await);
    let Some(b) = Browser::start(&t.url, "officials_ui_incident").await else {
        return;
    };
    first_sign_in(&b, "kiem.tra.vien", &reviewer_otp).await;
    let page = format!("/incidents/{}", incident.id);
    b.goto(&page).await;
    let text = b.page_text().await;
    for want in [
        "Lộ dữ liệu hồ sơ công dân",
        "Báo cáo sự cố",
        "Nguyễn Văn An",
    ] {
        assert!(
            text.contains(want),
            "the incident page lacks {want:?}: {text}"
        );
    }
    b.find("#deadlines li[data-notice]").await;
    shots(&b, "incident").await;
    // A notice recorded from the page comes back to it.
    b.choose("kind", "a05").await;
    b.fill("#nr", "Cục A05 - Bộ Công an").await;
    b.fill("#nc", "Công văn").await;
    b.fill("#nd", "123/PA05").await;
    b.submit_form_of("recipient").await;
    b.wait_for_path(&page).await;
    b.find("#notices li[data-notice-kind=a05]").await;
    // Resolving asks first, with a note of what was done.
    b.click_to_page("#resolve-incident").await;
    b.wait_for_path(&format!("{page}/resolve")).await;
    shots(&b, "incident-resolve-confirm").await;
    b.click_to_page("#cancel").await;
    b.wait_for_path(&page).await;
    assert_eq!(
        b.attr("#incident-status", "data-status").await.as_deref(),
        Some("open")
    );
    b.click_to_page("#resolve-incident").await;
    b.fill(
        "#note",
        "Đã khóa API, thu hồi khóa truy cập, rà soát nhật ký.",
    )
    .await;
    b.submit_form_of("note").await;
    b.wait_for_path(&page).await;
    assert_eq!(
        b.attr("#incident-status", "data-status").await.as_deref(),
        Some("resolved")
    );
    let history = b.text("#history").await;
    assert!(
        history.contains("Đã khóa API") && history.contains("Đóng sự cố"),
        "{history}"
    );
    assert!(b.try_find("#resolve-incident").await.is_none());
    shots(&b, "incident-resolved").await;
}

#[tokio::test]
async fn back_after_a_sign_off_shows_its_result_and_the_enrolment_shows_a_qr_code() {
    let t = spawn_app().await;
    let (w, [_, reviewer_otp, _]) = web_people(&t).await;
    let cr = w.submitted("TTHC").await;
    let Some(b) = Browser::start(&t.url, "officials_ui_back_after_sign_off").await else {
        return;
    };
    // The enrolment page draws the otpauth URI as a QR code, inline.
    log_in(&b, "kiem.tra.vien", &reviewer_otp).await;
    b.wait_for_path("/login/password").await;
    b.fill("input[name=new_password]", "Kiem.Tra.Vien.2026")
        .await;
    b.fill("input[name=confirm_password]", "Kiem.Tra.Vien.2026")
        .await;
    b.submit_form_of("new_password").await;
    // The rule broken is named: the password contains the username.
    let err = b.text("p.field-error[data-field=new_password]").await;
    assert!(err.contains("tên đăng nhập"), "{err}");
    b.fill("input[name=new_password]", NEW_PASSWORD).await;
    b.fill("input[name=confirm_password]", NEW_PASSWORD).await;
    b.submit_form_of("new_password").await;
    b.wait_for_path("/login/totp").await;
    b.find("#totp-qr svg").await;
    shots(&b, "totp-enrolment-qr").await;
    let secret = b.text("#totp-secret").await;
    let step = changegate_tests::browser::totp_step_now();
    b.fill("input[name=code]", &totp(&secret, step)).await;
    b.submit_form_of("code").await;
    b.wait_for_path("/").await;
    // The queue names the owning organisation.
    let queue = b.text("#queue").await;
    assert!(queue.contains("Sở Tài nguyên và Môi trường"), "{queue}");

    let evaluate = format!("/changes/{}/evaluate", cr.id);
    b.goto(&evaluate).await;
    // Checklist items by their text and number, never their ids.
    let form_text = b.text("#evaluate-form").await;
    for item in &cr.checklist {
        assert!(!form_text.contains(&item.item), "{} shown", item.item);
    }
    for name in answer_fields(&b).await {
        b.choose(&name, "pass").await;
    }
    b.choose("conclusion", "pass").await;
    b.fill("input[name=code]", &totp(&secret, step + 1)).await;
    let invalid = b
        .execute(
            "return Array.from(document.querySelectorAll('#evaluate-form :invalid')).map(e => e.name).join(',');",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(invalid, serde_json::json!(""), "fields the browser refuses");
    b.submit_form_of_no_wait("code").await;
    b.wait_for_path(&format!("/changes/{}?ok=signed_off", cr.id))
        .await;
    // Back: the evaluation page again, now showing what came of it, never the form.
    b.back().await;
    b.wait_for_path(&evaluate).await;
    b.find("#evaluation-result").await;
    assert!(b.try_find("#evaluate-form").await.is_none());
    let text = b.page_text().await;
    assert!(text.contains("Đạt") || text.contains("đạt"), "{text}");
    shots(&b, "evaluation-signed").await;
    // Sent again anyway (another tab): nothing signed twice, the result shown.
    let signed = ok(w.owner.change(cr.id).await).sign_offs.len();
    assert_eq!(signed, 1);
}

#[tokio::test]
async fn csv_exports_speak_the_pages_language_and_time_zone() {
    let t = spawn_app().await;
    let (w, [owner_otp, _, _]) = web_people(&t).await;
    let cr = w.submitted("TTHC").await;
    let mut web = Web::new(&t.url);
    web.first_sign_in("chu.he.thong", &owner_otp).await;
    let csv = web.get("/export/changes.csv").await;
    assert_eq!(csv.status, 200);
    let header = csv.body.lines().next().unwrap_or_default();
    assert!(
        header.contains("Tiêu đề") && header.contains("Trạng thái"),
        "{header}"
    );
    let row = csv
        .body
        .lines()
        .find(|l| l.starts_with(&cr.id.to_string()))
        .unwrap_or_default();
    assert!(
        row.contains("Chờ") || row.contains("chờ"),
        "state in Vietnamese: {row}"
    );
    assert!(
        !row.contains("submitted") && !row.contains("software"),
        "{row}"
    );
    // The time as the pages show it (UTC+7), not UTC.
    let local = cr
        .created_at
        .with_timezone(&chrono_tz_offset())
        .format("%d/%m/%Y %H:%M")
        .to_string();
    assert!(row.contains(&local), "{local} not in {row}");
}

fn chrono_tz_offset() -> chrono::FixedOffset {
    chrono::FixedOffset::east_opt(7 * 3600).unwrap()
}
