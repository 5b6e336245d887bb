//! The web UI in a real headless Chromium (Debian's `chromium` driven through `chromedriver`):
//! what an owner and a PA05 reviewer do in their browser, from the first sign-in with a one-time
//! password to the sign-off that opens the gate. Without Chromium these tests fail and say how
//! to install it (see `changegate_tests::browser`).

use crate::web_security::{NEW_PASSWORD, web_people};
use changegate_tests::browser::{Browser, totp, totp_step_now};
use changegate_tests::*;

/// Starts a browser for `t`, or returns from the test after a loud SKIPPED.
macro_rules! browser {
    ($t:expr, $name:expr) => {
        match Browser::start(&$t.url, $name).await {
            Some(b) => b,
            None => return,
        }
    };
}

/// Types the username and password into the login form and sends it.
async fn log_in(b: &Browser, username: &str, password: &str) {
    b.goto("/login").await;
    b.fill("input[name=username]", username).await;
    b.fill("input[name=password]", password).await;
    b.submit_form_of("password").await;
}

/// First sign-in with the one-time password, through the forced change to [`NEW_PASSWORD`],
/// and the TOTP enrolment when the role asks for it (answers the secret and the step used).
/// Ends on the dashboard.
pub(crate) async fn first_sign_in(b: &Browser, username: &str, otp: &str) -> Option<(String, u64)> {
    log_in(b, username, otp).await;
    b.wait_for_path("/login/password").await;
    b.fill("input[name=new_password]", NEW_PASSWORD).await;
    b.fill("input[name=confirm_password]", NEW_PASSWORD).await;
    b.submit_form_of("new_password").await;
    let mut enrolled = None;
    let start = std::time::Instant::now();
    loop {
        let p = b.path().await;
        if p.starts_with("/login/totp") {
            let secret = b.text("#totp-secret").await;
            let step = totp_step_now();
            b.fill("input[name=code]", &totp(&secret, step)).await;
            b.submit_form_of("code").await;
            enrolled = Some((secret, step));
            break;
        }
        if p == "/" || start.elapsed() > changegate_tests::browser::WAIT {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    b.wait_for_path("/").await;
    assert_eq!(b.path().await, "/", "{}", b.page_text().await);
    enrolled
}

#[tokio::test]
async fn first_sign_in_with_a_one_time_password_forces_a_new_password() {
    let t = spawn_app().await;
    let (_w, [otp, ..]) = web_people(&t).await;
    let b = browser!(
        t,
        "first_sign_in_with_a_one_time_password_forces_a_new_password"
    );

    // Nothing opens before signing in.
    b.goto("/").await;
    b.wait_for_path("/login").await;

    log_in(&b, "chu.he.thong", &otp).await;
    b.wait_for_path("/login/password").await;
    assert!(
        b.try_find("input[name=current_password]").await.is_none(),
        "the first change asks for the one-time password again"
    );
    // A short password is refused: by the browser (the field's own check) or by the server,
    // with the reason next to the field.
    b.fill("input[name=new_password]", "ngan-qua").await;
    b.fill("input[name=confirm_password]", "ngan-qua").await;
    b.submit_form_of_no_wait("new_password").await;
    let invalid_here = b
        .execute(
            "return !document.querySelector('[name=new_password]').validity.valid;",
            serde_json::json!([]),
        )
        .await;
    if invalid_here != serde_json::Value::Bool(true) {
        let why = b.text("p.field-error[data-field=new_password]").await;
        assert!(
            !why.trim().is_empty(),
            "an empty message for a short password"
        );
    }
    assert_eq!(b.path().await, "/login/password");
    // One that contains the username is refused by the server, which says why.
    b.fill("input[name=new_password]", "chu.he.thong.2026!")
        .await;
    b.fill("input[name=confirm_password]", "chu.he.thong.2026!")
        .await;
    b.submit_form_of("new_password").await;
    let why = b.text("p.field-error[data-field=new_password]").await;
    assert!(
        !why.trim().is_empty(),
        "an empty message for a password with the username"
    );

    b.fill("input[name=new_password]", NEW_PASSWORD).await;
    b.fill("input[name=confirm_password]", NEW_PASSWORD).await;
    b.submit_form_of("new_password").await;
    b.wait_for_path("/").await;
    let home = b.page_text().await;
    assert!(home.contains("Nguyễn Chủ Hệ Thống"), "{home}");
    assert!(
        home.contains("TTHC"),
        "the owner's systems are not on the dashboard: {home}"
    );

    let c = b
        .cookie("cg_session")
        .await
        .unwrap_or_else(|| panic!("no session cookie"));
    assert!(c.http_only, "the session cookie is readable by scripts");
    assert_eq!(c.same_site.as_deref(), Some("Strict"));
    assert_eq!(
        b.execute(
            "return document.cookie.includes('cg_session');",
            serde_json::json!([])
        )
        .await,
        serde_json::Value::Bool(false)
    );

    // Log out; the one-time password no longer works, the new one does.
    b.click_to_page("form[action$='/logout'] button").await;
    b.wait_for_path("/login").await;
    log_in(&b, "chu.he.thong", &otp).await;
    b.find("div.flash.error").await;
    b.goto("/").await;
    b.wait_for_path("/login").await;
    log_in(&b, "chu.he.thong", NEW_PASSWORD).await;
    b.wait_for_path("/").await;
    assert_eq!(b.path().await, "/");
}

#[tokio::test]
async fn an_admin_creates_a_person_whose_one_time_password_is_shown_once_and_must_be_changed() {
    let t = spawn_app().await;
    let _w = t.world().await;
    let admin_otp = t
        .person("quan.tri.web", "Lê Quản Trị", "SO-TTTT", "admin")
        .await;
    let b = browser!(
        t,
        "an_admin_creates_a_person_whose_one_time_password_is_shown_once_and_must_be_changed"
    );
    first_sign_in(&b, "quan.tri.web", &admin_otp)
        .await
        .unwrap_or_else(|| panic!("an admin was not asked to enrol a second factor"));

    b.goto("/admin/users").await;
    b.fill("input[name=username]", "hoang.nhan.vien").await;
    b.fill("input[name=display_name]", "Hoàng Nhân Viên").await;
    b.choose("org", "STNMT").await;
    b.choose("role", "owner").await;
    b.submit_form_of("display_name").await;
    let otp = b.text("#one-time-password").await.trim().to_owned();
    assert!(otp.len() >= 12, "a weak one-time password: {otp:?}");
    // Shown once: not on the page again.
    b.goto("/admin/users").await;
    assert!(b.page_text().await.contains("hoang.nhan.vien"));
    assert!(b.try_find("#one-time-password").await.is_none());
    assert!(
        !b.source().await.contains(&otp),
        "the one-time password is shown again"
    );

    b.click_to_page("form[action$='/logout'] button").await;
    first_sign_in(&b, "hoang.nhan.vien", &otp).await;
    assert!(b.page_text().await.contains("Hoàng Nhân Viên"));
    // The one-time password is spent.
    b.click_to_page("form[action$='/logout'] button").await;
    log_in(&b, "hoang.nhan.vien", &otp).await;
    b.find("div.flash.error").await;
    assert_eq!(b.path().await, "/login");
}

#[tokio::test]
async fn an_owner_files_a_change_from_the_system_page() {
    let t = spawn_app().await;
    let (w, [otp, ..]) = web_people(&t).await;
    let b = browser!(t, "an_owner_files_a_change_from_the_system_page");
    first_sign_in(&b, "chu.he.thong", &otp).await;

    b.goto("/systems/TTHC").await;
    b.click_to_page("a[href='/changes/new?system=TTHC']").await;
    b.wait_for_path("/changes/new").await;
    assert_eq!(b.value("[name=system]").await, "TTHC");
    if b.try_find("[name=kind]").await.is_some() {
        b.choose("kind", "software").await;
    }
    let (commit, tree) = (random_oid(), random_oid());
    b.fill("input[name=title]", "Nâng cấp cổng dịch vụ công 3.1")
        .await;
    b.fill("textarea[name=description]", "Sửa lỗi tra cứu hồ sơ")
        .await;
    b.choose("environments", "production").await;
    b.fill("input[name=commit]", &commit).await;
    b.fill("input[name=tree]", &tree).await;
    // "Submit for evaluation now": a checkbox, or a button of its own.
    if b.try_find("button[name=submit][value='1']").await.is_some() {
        b.click_to_page("button[name=submit][value='1']").await;
    } else {
        b.choose("submit", "1").await;
        b.submit_form_of("title").await;
    }
    let path = b.wait_for_path("/changes/").await;
    let id: i64 = path
        .trim_start_matches("/changes/")
        .split('?')
        .next()
        .unwrap_or_default()
        .parse()
        .unwrap_or_else(|_| panic!("not a change page: {path}"));
    assert_eq!(
        b.attr("#cr-state", "data-state").await.as_deref(),
        Some("submitted")
    );
    let page = b.page_text().await;
    assert!(page.contains("Nâng cấp cổng dịch vụ công 3.1"), "{page}");
    assert!(
        page.contains(&commit),
        "the commit is not on the change page: {page}"
    );

    // What the owner filed is what the system holds, and what the gate waits for.
    let cr = ok(w.owner.change(id).await);
    assert_eq!(cr.state, "submitted");
    assert_eq!(cr.environments, ["production"]);
    assert_eq!(
        ok(w.ci.gate(&ask_commit("TTHC", "production", &commit)).await).codes(),
        ["pending_evaluation"]
    );
    // The dashboard lists it.
    b.goto("/").await;
    assert!(
        b.page_text()
            .await
            .contains("Nâng cấp cổng dịch vụ công 3.1")
    );
}

#[tokio::test]
async fn a_reviewer_enrols_totp_signs_off_and_the_gate_flips_to_allow() {
    let t = spawn_app().await;
    let (w, [_, otp, _]) = web_people(&t).await;
    let (commit, tree) = (random_oid(), random_oid());
    let mut n = change("TTHC", &["production"], vec![git(&commit, &tree)]);
    n.title = "Vá lỗ hổng đăng nhập".into();
    let cr = ok(w.owner.file_change(&n).await);
    ok(w.owner.submit(cr.id).await);
    let b = browser!(
        t,
        "a_reviewer_enrols_totp_signs_off_and_the_gate_flips_to_allow"
    );

    let (secret, step) = first_sign_in(&b, "kiem.tra.vien", &otp)
        .await
        .unwrap_or_else(|| panic!("a reviewer was not asked to enrol a second factor"));
    assert_eq!(secret.len() % 8, 0, "secret {secret:?}");
    // The queue on the dashboard leads to the change.
    b.click_to_page(&format!("a[href='/changes/{}']", cr.id))
        .await;
    b.wait_for_path(&format!("/changes/{}", cr.id)).await;
    assert_eq!(
        b.attr("#cr-state", "data-state").await.as_deref(),
        Some("submitted")
    );
    b.goto("/systems/TTHC").await;
    assert_eq!(
        b.attr("td.gate[data-env=production]", "data-decision")
            .await
            .as_deref(),
        Some("deny")
    );

    b.goto(&format!("/changes/{}/evaluate", cr.id)).await;
    let items = answer_fields(&b).await;
    assert_eq!(
        items.len(),
        cr.checklist.len(),
        "one answer per checklist item"
    );
    for name in &items {
        b.choose(name, "pass").await;
    }
    b.choose("conclusion", "pass").await;
    b.fill("textarea[name=finding_text_0]", "Không phát hiện tồn tại")
        .await;
    // A wrong second factor refuses the sign-off and keeps what was typed.
    let right = totp(&secret, step + 1);
    let wrong = format!("{:06}", (right.parse::<u32>().unwrap_or(0) + 1) % 1_000_000);
    b.fill("input[name=code]", &wrong).await;
    b.submit_form_of("code").await;
    b.find("p.field-error[data-field=code]").await;
    assert_eq!(ok(w.owner.change(cr.id).await).state, "submitted");
    assert_eq!(
        b.value("textarea[name=finding_text_0]").await,
        "Không phát hiện tồn tại"
    );
    for name in &items {
        // The answers given are still chosen.
        let kept = b
            .try_find(&format!("input[name={name}][value=pass][checked]"))
            .await
            .is_some()
            || b.try_find(&format!("select[name={name}] option[value=pass][selected]"))
                .await
                .is_some();
        assert!(kept, "answer {name} lost after the refusal");
    }
    b.fill("input[name=code]", &right).await;
    b.submit_form_of("code").await;
    b.wait_for_path(&format!("/changes/{}", cr.id)).await;
    let state = b.find("#cr-state").await;
    assert_eq!(
        b.element_attr(&state, "data-state").await.as_deref(),
        Some("approved"),
        "{}",
        b.page_text().await
    );

    // The gate flips: on the system page and for the pipeline.
    b.goto("/systems/TTHC").await;
    assert_eq!(
        b.attr("td.gate[data-env=production]", "data-decision")
            .await
            .as_deref(),
        Some("allow")
    );
    let d = ok(w.ci.gate(&ask_commit("TTHC", "production", &commit)).await);
    assert!(d.allowed(), "{d:?}");
    assert_eq!(d.change_request, Some(cr.id));

    // The evaluation report is ready to print.
    b.goto(&format!("/changes/{}/report", cr.id)).await;
    let report = b.page_text().await;
    for want in [
        "Biên bản kiểm tra, đánh giá an toàn thông tin",
        "TTHC",
        "Vá lỗ hổng đăng nhập",
        "Trần Kiểm Tra",
        "Không phát hiện tồn tại",
    ] {
        // (The title is set in capitals by the style sheet.)
        assert!(
            report.to_lowercase().contains(&want.to_lowercase()),
            "the report lacks {want:?}: {report}"
        );
    }
}

/// The names of the evaluation form's answer fields (`result_0`, …), in order.
async fn answer_fields(b: &Browser) -> Vec<String> {
    let mut names: Vec<String> = vec![];
    for e in b.find_all("[name^=result_]").await {
        if let Some(name) = b.element_attr(&e, "name").await
            && !names.contains(&name)
        {
            names.push(name);
        }
    }
    names
}

/// The page's text without the language switch (whose other-language label is expected).
async fn text_without_switch(b: &Browser) -> String {
    b.execute(
        "const c = document.body.cloneNode(true);
         c.querySelectorAll('form[action$=\"/lang\"]').forEach(f => f.remove());
         document.body.appendChild(c); c.style.display = 'block';
         const t = c.innerText; c.remove(); return t;",
        serde_json::json!([]),
    )
    .await
    .as_str()
    .unwrap_or_default()
    .to_owned()
}

/// Letters only Vietnamese uses (in lower case), outside the test person's name.
fn vietnamese_letters(s: &str) -> Vec<char> {
    s.replace("Nguyễn Chủ Hệ Thống", "")
        .to_lowercase()
        .chars()
        .filter(|c| {
            "ăâđêôơưàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ".contains(*c)
        })
        .collect()
}

/// Clicks the language switch's choice `lang`.
async fn switch_to(b: &Browser, lang: &str) {
    let button = match b
        .try_find(&format!("form[action$='/lang'] button[name=lang][value={lang}]"))
        .await
    {
        Some(e) => e,
        None => b
            .try_find_xpath(&format!(
                "//form[contains(@action,'/lang') and .//input[@name='lang' and @value='{lang}']]//button"
            ))
            .await
            .unwrap_or_else(|| panic!("no language switch to {lang}")),
    };
    b.mark_page().await;
    b.click_element(&button).await;
    b.wait_new_page().await;
}

#[tokio::test]
async fn the_language_switch_turns_every_label_english_and_back() {
    let t = spawn_app().await;
    let (_w, [otp, ..]) = web_people(&t).await;
    let b = browser!(t, "the_language_switch_turns_every_label_english_and_back");
    b.goto("/login").await;
    assert_eq!(b.lang().await, "vi", "Vietnamese is the default");
    assert!(b.page_text().await.contains("Mật khẩu"));

    switch_to(&b, "en").await;
    b.wait_for_path("/login").await;
    assert_eq!(b.lang().await, "en");
    let text = text_without_switch(&b).await;
    assert!(text.contains("Password"), "{text}");
    assert!(
        vietnamese_letters(&text).is_empty(),
        "Vietnamese left on the English login page: {text}"
    );
    assert_eq!(
        b.cookie("cg_lang").await.map(|c| c.value).as_deref(),
        Some("en")
    );

    // The choice holds through sign-in.
    log_in(&b, "chu.he.thong", &otp).await;
    b.wait_for_path("/login/password").await;
    assert_eq!(b.lang().await, "en");
    let text = text_without_switch(&b).await;
    assert!(
        vietnamese_letters(&text).is_empty(),
        "Vietnamese left on the English password page: {text}"
    );
    b.fill("input[name=new_password]", NEW_PASSWORD).await;
    b.fill("input[name=confirm_password]", NEW_PASSWORD).await;
    b.submit_form_of("new_password").await;
    b.wait_for_path("/").await;
    assert_eq!(b.lang().await, "en");
    b.goto("/account").await;
    let text = text_without_switch(&b).await;
    assert!(
        text.contains("Password") || text.contains("password"),
        "{text}"
    );
    assert!(!text.contains("Mật khẩu"), "{text}");

    // And back, staying on the same page.
    switch_to(&b, "vi").await;
    b.wait_for_path("/account").await;
    assert_eq!(b.lang().await, "vi");
    assert!(b.page_text().await.contains("Mật khẩu"));
}

#[tokio::test]
async fn a_form_sent_without_its_csrf_token_is_refused() {
    let t = spawn_app().await;
    let (w, [otp, ..]) = web_people(&t).await;
    let b = browser!(t, "a_form_sent_without_its_csrf_token_is_refused");
    // The login form with its token altered.
    b.goto("/login").await;
    b.execute(
        "document.querySelectorAll('input[name=csrf]').forEach(i => i.value = 'forged');",
        serde_json::json!([]),
    )
    .await;
    b.fill("input[name=username]", "chu.he.thong").await;
    b.fill("input[name=password]", &otp).await;
    b.submit_form_of("password").await;
    let text = b.page_text().await;
    assert!(text.contains("CSRF"), "{text}");
    b.goto("/").await;
    b.wait_for_path("/login").await;

    first_sign_in(&b, "chu.he.thong", &otp).await;
    b.goto("/changes/new?system=TTHC").await;
    b.fill("input[name=title]", "Gửi không có mã CSRF").await;
    b.fill("textarea[name=description]", "Không được nhận")
        .await;
    b.choose("environments", "production").await;
    b.fill("input[name=commit]", &random_oid()).await;
    b.fill("input[name=tree]", &random_oid()).await;
    b.execute(
        "document.querySelectorAll('input[name=csrf]').forEach(i => i.remove());",
        serde_json::json!([]),
    )
    .await;
    b.submit_form_of("title").await;
    let start = std::time::Instant::now();
    while !b.page_text().await.contains("CSRF") {
        assert!(
            start.elapsed() < changegate_tests::browser::WAIT,
            "no CSRF refusal: {}",
            b.page_text().await
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        ok(w.owner.changes(Some("TTHC"), None).await)
            .items
            .is_empty(),
        "a change was filed without its CSRF token"
    );
}

#[tokio::test]
async fn the_remediation_loop_in_vietnamese_changes_requested_edit_resubmit_condition_fulfil_verify()
 {
    let t = spawn_app().await;
    let (w, [owner_otp, reviewer_otp, _]) = web_people(&t).await;
    let mut n = change(
        "TTHC",
        &["production"],
        vec![git(&random_oid(), &random_oid())],
    );
    n.title = "Nâng cấp cổng tra cứu hồ sơ".into();
    let cr = ok(w.owner.file_change(&n).await);
    ok(w.owner.submit(cr.id).await);
    let page = format!("/changes/{}", cr.id);
    let Some((rev, own)) = Browser::start_pair(&t.url, "remediation_loop").await else {
        return;
    };
    let (secret, step) = first_sign_in(&rev, "kiem.tra.vien", &reviewer_otp)
        .await
        .unwrap_or_else(|| panic!("a reviewer was not asked to enrol a second factor"));

    // PA05 sends it back with a finding whose severity is chosen from the list ("Cao").
    rev.goto(&format!("{page}/evaluate")).await;
    let items = answer_fields(&rev).await;
    for name in &items {
        rev.choose(name, "pass").await;
    }
    rev.choose("conclusion", "changes_requested").await;
    rev.choose("finding_sev_0", "high").await;
    rev.choose("finding_item_0", "vuln-scan-pentest").await;
    let finding = "Chưa có kết quả quét lỗ hổng:\n- cổng tra cứu\n- máy chủ ứng dụng";
    rev.fill("textarea[name=finding_text_0]", finding).await;
    rev.fill(
        "textarea[name=return_note]",
        "Bổ sung kết quả quét lỗ hổng rồi gửi lại.",
    )
    .await;
    rev.submit_form_of("return_note").await;
    rev.wait_for_path(&page).await;
    assert_eq!(
        rev.attr("#cr-state", "data-state").await.as_deref(),
        Some("draft")
    );
    let items_api = ok(w
        .owner
        .remediations(&[("change_request", cr.id.to_string())])
        .await);
    assert_eq!(items_api.items.len(), 1);
    assert_eq!(items_api.items[0].severity, "high");
    assert_eq!(
        items_api.items[0].text, finding,
        "line breaks kept byte for byte"
    );

    // The owner sees the round's conclusion and its findings, edits and resubmits.
    first_sign_in(&own, "chu.he.thong", &owner_otp).await;
    own.goto(&page).await;
    let back = own.text("#sent-back").await;
    assert!(
        back.contains("Bổ sung kết quả quét lỗ hổng rồi gửi lại."),
        "{back}"
    );
    assert!(back.contains("Cao"), "the severity in Vietnamese: {back}");
    assert!(back.contains("- máy chủ ứng dụng"), "{back}");
    own.click_to_page("#edit-change").await;
    own.wait_for_path(&format!("{page}/edit")).await;
    assert_eq!(
        own.value("input[name=title]").await,
        "Nâng cấp cổng tra cứu hồ sơ"
    );
    own.fill(
        "textarea[name=description]",
        "Cập nhật phiên bản; kèm kết quả quét lỗ hổng ngày 01/12/2026.",
    )
    .await;
    own.choose("submit", "1").await;
    own.submit_form_of("title").await;
    own.wait_for_path(&page).await;
    assert_eq!(
        own.attr("#cr-state", "data-state").await.as_deref(),
        Some("submitted")
    );

    // PA05 sees what changed, then approves with a high condition (default due date).
    rev.goto(&page).await;
    let since = rev.text("#changes-since-review").await;
    assert!(since.contains("kèm kết quả quét lỗ hổng"), "{since}");
    rev.goto(&format!("{page}/evaluate")).await;
    for name in &items {
        rev.choose(name, "pass").await;
    }
    rev.choose("conclusion", "pass").await;
    rev.fill(
        "textarea[name=cond_text_0]",
        "Bổ sung hồ sơ CO/CQ trước khi vận hành",
    )
    .await;
    rev.choose("cond_sev_0", "high").await;
    rev.fill("input[name=code]", &totp(&secret, step + 1)).await;
    rev.submit_form_of("code").await;
    rev.wait_for_path(&page).await;
    assert_eq!(
        rev.attr("#cr-state", "data-state").await.as_deref(),
        Some("approved")
    );
    let cond = ok(w
        .owner
        .remediations(&[
            ("change_request", cr.id.to_string()),
            ("kind", "condition".into()),
        ])
        .await)
    .items
    .remove(0);
    assert_eq!(
        (cond.severity.as_str(), cond.state.as_str()),
        ("high", "open")
    );

    // The owner fulfils it from the remediation page; PA05 verifies it.
    own.goto("/remediations").await;
    own.click_to_page(&format!("tr[data-remediation='{}'] a", cond.id))
        .await;
    own.wait_for_path(&format!("/remediations/{}", cond.id))
        .await;
    own.fill(
        "textarea[name=evidence]",
        "Đã bổ sung CO/CQ, văn bản số 15/STNMT-CNTT.",
    )
    .await;
    own.submit_form_of("evidence").await;
    assert_eq!(
        own.attr("#remediation-state", "data-state")
            .await
            .as_deref(),
        Some("fulfilled")
    );
    rev.goto(&format!("/remediations/{}", cond.id)).await;
    rev.click_to_page("#verify-accept").await;
    assert_eq!(
        rev.attr("#remediation-state", "data-state")
            .await
            .as_deref(),
        Some("verified")
    );
    let page_text = text_without_switch(&rev).await;
    assert!(page_text.contains("PA05 đã xác nhận"), "{page_text}");
    for english in ["Verified", "Remediation", "fulfil", "condition"] {
        assert!(
            !page_text.contains(english),
            "English {english:?} on a Vietnamese page: {page_text}"
        );
    }
    assert_eq!(ok(w.auditor.remediation(cond.id).await).state, "verified");
}

/// The remediation pages fit a phone's width (390 px) and a desktop's (1366 px): no sideways
/// scrolling of the page. With `CHANGEGATE_SCREENSHOTS=DIR`, saves a screenshot of each.
#[tokio::test]
async fn the_remediation_pages_fit_a_phone_and_a_desktop() {
    let t = spawn_app().await;
    let (w, [owner_otp, reviewer_otp, _]) = web_people(&t).await;
    // A change sent back with a finding, and an approved one with a condition fulfilled.
    let back = w.submitted("TTHC").await;
    let note = changegate_api::Note {
        note: "Bổ sung kết quả quét lỗ hổng và sơ đồ mạng sau thay đổi.".into(),
        findings: vec![changegate_api::WireFinding {
            severity: "high".into(),
            text: "Chưa có kết quả quét lỗ hổng, kiểm tra xâm nhập của cổng tra cứu mới; cần quét lại sau khi vá.".into(),
            item: Some("vuln-scan-pentest".into()),
        }],
    };
    ok(w.reviewer
        .client()
        .request_changes_with(back.id, &note)
        .await);
    let approved = w.submitted("TTHC").await;
    let mut s = sign_off_all(&approved, "pass");
    s.conditions = vec!["Bổ sung hồ sơ CO/CQ của thiết bị trước khi vận hành chính thức.".into()];
    ok(w.reviewer.sign_off(approved.id, &s).await);
    let q = [("change_request", approved.id.to_string())];
    let cond = ok(w.owner.remediations(&q).await).items.remove(0);
    ok(w.owner
        .fulfil(
            cond.id,
            "Đã bổ sung CO/CQ, văn bản số 15/STNMT-CNTT ngày 01/12/2026.",
        )
        .await);
    // A serious incident detected 20 hours ago: its notice deadlines show on /incidents.
    let mut incident = changegate_api::NewIncident {
        kind: "abnormal_access".into(),
        severity: "high".into(),
        summary: "Truy cập bất thường vào cơ sở dữ liệu ngoài giờ hành chính.".into(),
        detected_at: Some(chrono::Utc::now() - chrono::Duration::hours(20)),
        national_security: false,
    };
    ok(w.owner.report_incident("DAT-DAI", &incident).await);
    incident.kind = "data_breach".into();
    incident.severity = "medium".into();
    ok(w.owner.report_incident("DAT-DAI", &incident).await);
    let dir = std::env::var_os("CHANGEGATE_SCREENSHOTS").map(std::path::PathBuf::from);

    let Some((own, rev)) = Browser::start_pair(&t.url, "remediation_pages").await else {
        return;
    };
    first_sign_in(&own, "chu.he.thong", &owner_otp).await;
    first_sign_in(&rev, "kiem.tra.vien", &reviewer_otp).await;
    let pages = [
        (&own, "owner-dashboard", "/".to_owned()),
        (&own, "owner-remediations", "/remediations".to_owned()),
        (&own, "owner-sent-back", format!("/changes/{}", back.id)),
        (&own, "owner-edit", format!("/changes/{}/edit", back.id)),
        (&own, "owner-incidents", "/incidents".to_owned()),
        (&rev, "reviewer-item", format!("/remediations/{}", cond.id)),
        (
            &rev,
            "reviewer-evaluate",
            format!("/changes/{}/evaluate", w.submitted("TTHC").await.id),
        ),
        (
            &rev,
            "reviewer-report",
            format!("/changes/{}/report", approved.id),
        ),
    ];
    let mut wide = vec![];
    for (width, height) in [(1366, 900), (390, 844)] {
        for (b, name, path) in &pages {
            b.set_window_size(width, height).await;
            b.goto(path).await;
            let over = b.overflow_x().await;
            if over > 0 {
                wide.push(format!("{path} at {width} px: {over} px too wide"));
            }
            if let Some(d) = &dir {
                std::fs::create_dir_all(d).unwrap();
                b.screenshot(&d.join(format!("{name}-{width}.png"))).await;
            }
        }
    }
    if let Some(d) = &dir {
        rev.goto(&format!("/changes/{}/report", approved.id)).await;
        rev.print_pdf(&d.join("reviewer-report.pdf")).await;
    }
    assert!(wide.is_empty(), "pages scroll sideways: {wide:#?}");
}
