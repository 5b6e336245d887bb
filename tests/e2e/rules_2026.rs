//! The 2026 rules (issue 12): pack version 2 and the pack every decision records; a major
//! change's external assessment (Decree 331/2026 Art. 31.2.c); a personal-data breach's notice
//! fields (Decree 356/2025) and its printable draft; the evaluation record (biên bản) as an
//! official document, numbered per year and printed to PDF by headless Chromium.

use crate::cli::{changegate_bin, outcome, run};
use crate::upgrade::fixture;
use changegate_api::{BreachRecord, NewExternalAssessment, NewIncident};
use changegate_domain::Conclusion;
use changegate_store::entity::{audit_event, change_request, sign_off};
use changegate_store::sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use changegate_tests::*;
use chrono::{Duration, Utc};
use std::process::Command;

fn assessment(days_ago: i64) -> NewExternalAssessment {
    NewExternalAssessment {
        organisation: "Trung tâm Giám sát an toàn không gian mạng quốc gia".into(),
        licence: "Giấy phép số 12/GP-BCA".into(),
        report_ref: "Báo cáo số 45/BC-NCSC".into(),
        assessed_on: (Utc::now() - Duration::days(days_ago)).date_naive(),
    }
}

/// `path` as a person of `org` with `role` who signed in through the web (a new person each call).
async fn page_as(
    t: &TestApp,
    username: &str,
    org: &str,
    role: &str,
    paths: &[&str],
) -> Vec<String> {
    let otp = t.person(username, "Nguyễn Văn Web", org, role).await;
    let mut web = crate::web_security::Web::new(&t.url);
    web.first_sign_in(username, &otp).await;
    let mut out = vec![];
    for p in paths {
        let r = web.get(p).await;
        assert_eq!(r.status, 200, "GET {p}: {}", r.body);
        // minijinja escapes `/` too; the rest of the escaping stays visible.
        out.push(r.body.replace("&#x2f;", "/"));
    }
    out
}

/// The last audit event with `action` about change request `id`: its `after` as JSON.
async fn last_event(t: &TestApp, action: &str, id: i64) -> serde_json::Value {
    let ev = audit_event::Entity::find()
        .filter(audit_event::Column::Action.eq(action))
        .filter(audit_event::Column::EntityId.eq(id.to_string()))
        .order_by_desc(audit_event::Column::Seq)
        .one(&t.app.db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no {action} event for {id}"));
    serde_json::from_str(ev.after.as_deref().unwrap_or("null")).unwrap()
}

#[tokio::test]
async fn a_major_change_is_refused_sign_off_without_an_external_assessment_and_allowed_after() {
    let t = spawn_app().await;
    let w = t.world().await;
    let mut n = change(
        "TTHC",
        &["production"],
        vec![git(&random_oid(), &random_oid())],
    );
    n.major_change = vec!["architecture".into(), "technology".into()];
    let cr = ok(w.owner.file_change(&n).await);
    assert_eq!(cr.major_change, ["architecture", "technology"]);
    ok(w.owner.submit(cr.id).await);

    let seq = t.audit_seq().await;
    let p = problem(w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
    assert_eq!(p.code, "external_assessment_required", "{p:?}");
    assert_eq!(
        t.audit_seq().await,
        seq,
        "a refused sign-off changes nothing"
    );
    assert_eq!(ok(w.owner.change(cr.id).await).state, "submitted");

    // Bad assessments: blank fields, a day in the future; nothing recorded.
    let mut bad = assessment(1);
    bad.organisation = " ".into();
    let p = problem(w.owner.record_external_assessment(cr.id, &bad).await);
    assert_eq!(p.code, "validation_failed");
    let p = problem(
        w.owner
            .record_external_assessment(cr.id, &assessment(-2))
            .await,
    );
    assert_eq!(p.code, "validation_failed", "{p:?}");
    assert!(
        ok(w.owner.change(cr.id).await)
            .external_assessment
            .is_none()
    );
    assert_eq!(t.audit_seq().await, seq);

    let after = ok(w
        .owner
        .record_external_assessment(cr.id, &assessment(1))
        .await);
    let ea = after.external_assessment.expect("recorded");
    assert_eq!(ea.report_ref, "Báo cáo số 45/BC-NCSC");
    assert_eq!(ea.recorded_by, "nguyen.van.an");
    let ev = last_event(&t, "change_request.external_assessment", cr.id).await;
    assert_eq!(ev["licence"], "Giấy phép số 12/GP-BCA");
    // Recorded once.
    let p = problem(
        w.reviewer
            .record_external_assessment(cr.id, &assessment(1))
            .await,
    );
    assert_eq!(p.code, "already_exists");

    let signed = ok(w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
    assert_eq!(signed.state, "approved");
}

#[tokio::test]
async fn an_external_assessment_dated_after_the_sign_off_is_refused() {
    let t = spawn_app().await;
    let w = t.world().await;
    let cr = w.submitted("TTHC").await;
    ok(w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
    // The sign-off was today: an assessment of today is not after it, tomorrow's would be (and
    // is in the future); so a sign-off recorded as made yesterday is needed to see the rule.
    let row = sign_off::Entity::find()
        .filter(sign_off::Column::ChangeRequestId.eq(cr.id))
        .one(&t.app.db)
        .await
        .unwrap()
        .unwrap();
    let mut am: sign_off::ActiveModel = row.into();
    am.created_at = changegate_store::sea_orm::ActiveValue::Set(Utc::now() - Duration::days(3));
    changegate_store::sea_orm::ActiveModelTrait::update(am, &t.app.db)
        .await
        .unwrap();
    let seq = t.audit_seq().await;
    let p = problem(
        w.owner
            .record_external_assessment(cr.id, &assessment(1))
            .await,
    );
    assert_eq!(p.code, "validation_failed");
    assert!(p.errors.iter().any(|e| e.field == "assessed_on"), "{p:?}");
    assert_eq!(t.audit_seq().await, seq);
    ok(w.owner
        .record_external_assessment(cr.id, &assessment(4))
        .await);
}

#[tokio::test]
async fn a_population_database_change_cannot_leave_the_risk_assessment_unanswered() {
    let t = spawn_app().await;
    let w = t.world().await;
    let cr = w.submitted("TTHC").await;
    assert!(cr.checklist.iter().any(|i| i.item == "risk-assessed"));
    let mut s = sign_off_all(&cr, "pass");
    for a in &mut s.checklist {
        if a.item == "risk-assessed" {
            a.result = "na".into();
        }
    }
    let p = problem(w.reviewer.sign_off(cr.id, &s).await);
    assert_eq!(p.code, "validation_failed", "{p:?}");
    assert_eq!(ok(w.owner.change(cr.id).await).state, "submitted");
}

#[tokio::test]
async fn decisions_record_the_pack_id_and_version_in_the_signed_predicate_and_the_audit_event() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (commit, tree) = (random_oid(), random_oid());
    let cr = t
        .approved(
            &w,
            &change("TTHC", &["production"], vec![git(&commit, &tree)]),
        )
        .await;
    // The sign-off: its view, its row and its audit event.
    let so = &cr.sign_offs[0];
    let pack = so.pack.clone().expect("the sign-off names its pack");
    assert_eq!((pack.id.as_str(), pack.version), ("population-db", 2));
    let ev = last_event(&t, "change_request.sign_off", cr.id).await;
    assert_eq!(ev["pack"]["id"], "population-db");
    assert_eq!(ev["pack"]["version"], 2);
    // The gate's signed answer.
    let mut q = ask_commit("TTHC", "production", &commit);
    q.tree = Some(tree);
    let d = ok(w.ci.gate(&q).await);
    assert_eq!(d.decision, "allow");
    let env = d.attestation.expect("signed");
    let keys = ok(t.anon.keys().await);
    let st = changegate_api::attestation::verify(&env, &keys.keys)
        .unwrap_or_else(|e| panic!("verify: {e}"));
    let p = st.predicate.pack.expect("the predicate names its pack");
    assert_eq!((p.id.as_str(), p.version), ("population-db", 2));
}

#[tokio::test]
async fn a_version_1_database_upgraded_keeps_its_decisions_pack_version() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("changegate.db");
    std::fs::copy(fixture("373a14d.sqlite"), &db).unwrap();
    let url = format!("sqlite://{}?mode=rwc", db.display());
    let mut c = Command::new(changegate_bin());
    c.current_dir(dir.path())
        .args(["migrate", "--database-url", &url])
        .env_remove("DATABASE_URL");
    let (code, out, err) = outcome(&run(c).await);
    assert_eq!(code, Some(0), "migrate: {out}{err}");
    let conn = changegate_store::connect(&url).await.unwrap();
    let rows = sign_off::Entity::find().all(&conn).await.unwrap();
    assert!(!rows.is_empty(), "the fixture has sign-offs");
    for r in &rows {
        assert_eq!(
            (r.pack_id.as_str(), r.pack_version),
            ("population-db", 1),
            "sign-off {}",
            r.id
        );
    }
    // The old changes read as before: not major changes, no record number until one concludes.
    let crs = change_request::Entity::find().all(&conn).await.unwrap();
    assert!(crs.iter().all(|c| c.major_change.0.is_empty()));
    conn.close().await.unwrap();

    // Served by this release (pack version 2): the old decisions still say version 1.
    let (code, out, err) = outcome(
        &run({
            let mut c = Command::new(changegate_bin());
            c.current_dir(dir.path())
                .args([
                    "admin",
                    "create-token",
                    "--username",
                    "tran.thi.hoa",
                    "--name",
                    "upgrade",
                    "--expires-in",
                    "1d",
                    "--database-url",
                    &url,
                ])
                .env_remove("DATABASE_URL");
            c
        })
        .await,
    );
    assert_eq!(code, Some(0), "create-token: {out}{err}");
    let token = out.lines().last().unwrap().trim().to_owned();
    let server = crate::process::Server::start(dir.path(), &url, None).await;
    let client = changegate_client::Client::new(&server.url, Some(token)).unwrap();
    let approved = rows
        .iter()
        .find(|r| *r.conclusion == Conclusion::Pass)
        .unwrap()
        .change_request_id;
    let cr = ok(client.change(approved).await);
    let v: Vec<u32> = cr
        .sign_offs
        .iter()
        .map(|s| s.pack.as_ref().unwrap().version)
        .collect();
    assert!(!v.is_empty() && v.iter().all(|v| *v == 1), "{v:?}");
}

#[tokio::test]
async fn a_breach_record_round_trips_byte_for_byte_and_prints_as_a_notice_draft() {
    let t = spawn_app().await;
    let w = t.world().await;
    let i = ok(w
        .owner
        .report_incident(
            "TTHC",
            &NewIncident {
                kind: "data_breach".into(),
                severity: "medium".into(),
                summary: "Lộ danh sách hồ sơ qua đường dẫn công khai".into(),
                detected_at: Some(Utc::now() - Duration::hours(10)),
                national_security: false,
            },
        )
        .await);
    assert_eq!(
        i.a05_deadline,
        Some(i.detected_at.unwrap() + Duration::hours(72))
    );
    let b = BreachRecord {
        description: Some("Đường dẫn chia sẻ công khai\r\n  bị truy cập từ bên ngoài 😟 ".into()),
        data_categories: Some("Họ tên, số định danh cá nhân\tsố điện thoại".into()),
        subjects: Some(1_234_567_890_123),
        consequences: Some("Nguy cơ bị lừa đảo <script>alert(1)</script>".into()),
        measures: Some("Gỡ đường dẫn; đổi quyền chia sẻ".into()),
        confirmation_ref: Some("Biên bản xác nhận số 03/BB-STNMT".into()),
    };
    let got = ok(w.owner.record_breach(i.id, &b).await);
    assert_eq!(got.breach.as_ref(), Some(&b));
    let row = changegate_store::entity::incident::Entity::find_by_id(i.id)
        .one(&t.app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            row.breach_description.as_ref(),
            row.breach_data_categories.as_ref(),
            row.breach_subjects,
            row.breach_consequences.as_ref(),
            row.breach_measures.as_ref(),
            row.breach_confirmation_ref.as_ref(),
        ),
        (
            b.description.as_ref(),
            b.data_categories.as_ref(),
            b.subjects,
            b.consequences.as_ref(),
            b.measures.as_ref(),
            b.confirmation_ref.as_ref(),
        )
    );

    // Bad input changes nothing.
    let seq = t.audit_seq().await;
    let mut bad = b.clone();
    bad.subjects = Some(-1);
    bad.description = Some("x".repeat(4001));
    let p = problem(w.owner.record_breach(i.id, &bad).await);
    assert_eq!(p.code, "validation_failed");
    let fields: Vec<&str> = p.errors.iter().map(|e| e.field.as_str()).collect();
    assert!(fields.contains(&"breach.subjects") && fields.contains(&"breach.description"));
    let other = ok(w
        .owner
        .report_incident(
            "TTHC",
            &NewIncident {
                kind: "malware".into(),
                severity: "low".into(),
                summary: "Mã độc trên máy trạm".into(),
                detected_at: None,
                national_security: false,
            },
        )
        .await);
    let seq2 = t.audit_seq().await;
    assert!(seq2 > seq);
    let p = problem(w.owner.record_breach(other.id, &b).await);
    assert_eq!(p.code, "illegal_transition");
    let p = problem(w.other_owner.record_breach(i.id, &b).await);
    assert_eq!(p.code, "not_found");
    assert_eq!(t.audit_seq().await, seq2);

    // The draft notice to A05 prints the record (escaped) and the deadline.
    let page = page_as(
        &t,
        "chu.he.thong",
        "STNMT",
        "owner",
        &[&format!("/incidents/{}/breach-notice", i.id)],
    )
    .await
    .remove(0);
    assert!(page.contains("Biên bản xác nhận số 03/BB-STNMT"), "{page}");
    assert!(page.contains("1234567890123"), "{page}");
    assert!(page.contains("&lt;script&gt;"), "{page}");
    assert!(page.contains("A05"), "{page}");
    // The sender's name heads the draft in capitals, as on an official letter.
    assert!(page.contains("SỞ TÀI NGUYÊN VÀ MÔI TRƯỜNG"), "{page}");
}

#[tokio::test]
async fn the_about_page_lists_the_legal_texts_of_the_pack_in_vietnamese() {
    let t = spawn_app().await;
    let w = t.world().await;
    let _ = &w;
    let mut pages = page_as(&t, "chu.he.thong", "STNMT", "owner", &["/about/rules", "/"]).await;
    let home = pages.remove(1);
    let page = pages.remove(0);
    for want in [
        "Thông tư số 46/2022/TT-BCA",
        "Luật An ninh mạng số 116/2025/QH15",
        "Nghị định số 331/2026/NĐ-CP",
        "Nghị định số 356/2025/NĐ-CP",
        "phiên bản 2",
    ] {
        assert!(page.contains(want), "{want} missing: {page}");
    }
    assert!(
        !page.contains("Decree") && !page.contains("risk-assessed"),
        "{page}"
    );
    assert!(
        !changegate_tests::html::select(&home, "a[href=\"/about/rules\"]").is_empty(),
        "no link to the rules: {home}"
    );
}

#[tokio::test]
async fn record_numbers_count_per_year_from_one_and_are_assigned_when_the_evaluation_concludes() {
    let t = spawn_app().await;
    let w = t.world().await;
    let a = w.submitted("TTHC").await;
    assert_eq!(a.record_number, None);
    let a = ok(w.reviewer.sign_off(a.id, &sign_off_all(&a, "pass")).await);
    let b = w.submitted("TTHC").await;
    let b = ok(w.reviewer.sign_off(b.id, &sign_off_all(&b, "fail")).await);
    // Level 4 needs two: the first sign-off does not conclude it.
    let c = w.submitted("DAT-DAI").await;
    let c1 = ok(w.reviewer.sign_off(c.id, &sign_off_all(&c, "pass")).await);
    assert_eq!(c1.record_number, None);
    let c2 = ok(w.reviewer2.sign_off(c.id, &sign_off_all(&c, "pass")).await);
    let year = chrono::Datelike::year(&Utc::now().with_timezone(&t.app.tz));
    assert_eq!(
        [a.record_number, b.record_number, c2.record_number],
        [Some(1), Some(2), Some(3)]
    );
    assert!(
        [a.record_year, b.record_year, c2.record_year]
            .iter()
            .all(|y| *y == Some(year))
    );
}

#[tokio::test]
async fn the_evaluation_record_prints_on_a4_as_an_official_document() {
    let t = spawn_app_with(|c| {
        c.documents = changegate_server::config::DocumentsConfig {
            province: "Lâm Đồng".into(),
            issuing_body: "Công an tỉnh Lâm Đồng".into(),
            unit: "Phòng An ninh mạng và phòng, chống tội phạm sử dụng công nghệ cao".into(),
            unit_abbrev: "PA05".into(),
            head_title: "Trưởng phòng".into(),
            head_name: String::new(),
        };
    })
    .await;
    let (w, [_, _, _]) = crate::web_security::web_people(&t).await;
    let auditor_otp = t
        .person("thanh.tra.vien", "Lê Thanh Tra", "SO-TTTT", "auditor")
        .await;
    let mut n = change(
        "TTHC",
        &["production"],
        vec![git(&random_oid(), &random_oid())],
    );
    n.major_change = vec!["technology".into()];
    let cr = ok(w.owner.file_change(&n).await);
    ok(w.owner.submit(cr.id).await);
    ok(w.owner
        .record_external_assessment(cr.id, &assessment(0))
        .await);
    let mut s = sign_off_all(&cr, "pass");
    s.findings = vec![changegate_api::WireFinding {
        severity: "medium".into(),
        item: Some("access-logging".into()),
        text: "Nhật ký truy cập chỉ lưu 30 ngày.".into(),
    }];
    s.conditions = vec![changegate_api::WireCondition::Text(
        "Bổ sung cảnh báo khi lượng tra cứu tăng bất thường.".into(),
    )];
    let cr = ok(w.reviewer.sign_off(cr.id, &s).await);
    let number = cr.record_number.expect("numbered at sign-off");

    let Some(b) = changegate_tests::browser::Browser::start(&t.url, "rules_2026_bien_ban").await
    else {
        return;
    };
    crate::browser::first_sign_in(&b, "thanh.tra.vien", &auditor_otp).await;
    b.goto(&format!("/changes/{}/report", cr.id)).await;
    for width in [390, 1366] {
        b.set_window_size(width, 900).await;
        b.goto(&format!("/changes/{}/report", cr.id)).await;
        assert_eq!(
            b.overflow_x().await,
            0,
            "the record scrolls sideways at {width} px"
        );
    }
    let dir = std::env::var_os("CHANGEGATE_SCREENSHOTS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| t.dir.path().to_owned());
    std::fs::create_dir_all(&dir).unwrap();
    let pdf = dir.join("bien-ban.pdf");
    b.print_pdf(&pdf).await;
    let out = std::process::Command::new("pdftotext")
        .args(["-layout"])
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap_or_else(|e| panic!("pdftotext (poppler-utils): {e}"));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    // The national name and the motto, each whole on one line.
    assert!(
        lines
            .iter()
            .any(|l| l.contains("CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM")),
        "{text}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("Độc lập - Tự do - Hạnh phúc")),
        "the motto is not on one line: {text}"
    );
    assert!(
        lines.iter().any(|l| l.contains("CÔNG AN TỈNH LÂM ĐỒNG")),
        "{text}"
    );
    assert!(
        text.contains(&format!("Số: {number}/BB-PA05")),
        "no document number: {text}"
    );
    assert!(text.contains("Lâm Đồng, ngày"), "{text}");
    let pages = text.matches('\u{c}').count().max(1);
    assert!(text.contains("Trang 1/"), "no page numbers: {text}");
    assert!(
        text.contains(&format!("Trang {pages}/{pages}")) || pages == 1,
        "{pages} pages: {text}"
    );
    // Full names, Vietnamese group names and conclusion, the three signature blocks.
    for want in [
        "Trần Thị Hoa",
        "Nguyễn Văn An",
        "Hồ sơ và quản lý",
        "Tài khoản và phân quyền",
        "ĐẠT",
        "CÁN BỘ KIỂM TRA, ĐÁNH GIÁ",
        "TRƯỞNG PHÒNG",
        "ĐẠI DIỆN CHỦ QUẢN HỆ THỐNG",
        "Công nghệ",
        "Trung bình",
    ] {
        assert!(text.contains(want), "{want:?} missing: {text}");
    }
    assert!(
        !text.contains("tran.thi.hoa") && !text.contains("governance"),
        "{text}"
    );
    // No page ends with a section heading.
    for page in text.split('\u{c}') {
        let last = page
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty() && !l.starts_with("Trang "));
        if let Some(l) = last {
            let heading = ["I.", "II.", "III.", "IV.", "V.", "VI."]
                .iter()
                .any(|h| l.starts_with(h));
            assert!(
                !heading,
                "a heading alone at the foot of a page: {l:?}\n{text}"
            );
        }
    }
}

#[tokio::test]
async fn the_owner_records_the_external_assessment_on_the_change_page() {
    use crate::web_security::Web;
    use changegate_tests::html::{by_id, field_error, field_value};
    let t = spawn_app().await;
    let w = t.world().await;
    let mut n = change(
        "TTHC",
        &["production"],
        vec![git(&random_oid(), &random_oid())],
    );
    n.major_change = vec!["architecture".into()];
    let cr = ok(w.owner.file_change(&n).await);
    ok(w.owner.submit(cr.id).await);
    let plain = ok(w
        .owner
        .file_change(&change("TTHC", &["production"], vec![]))
        .await);

    let otp = t.person("le.van.web", "Lê Văn Web", "STNMT", "owner").await;
    let mut web = Web::new(&t.url);
    web.first_sign_in("le.van.web", &otp).await;
    let path = format!("/changes/{}", cr.id);
    let (csrf, page) = web.csrf_of(&path).await;
    assert!(
        by_id(&page.body, "assessment-form").is_some(),
        "the form is offered"
    );
    assert!(
        by_id(&page.body, "cr-assessment")
            .unwrap()
            .text
            .contains("Chưa ghi nhận"),
        "the missing assessment is said"
    );
    // A change that is not major has no such form.
    let other = web.get(&format!("/changes/{}", plain.id)).await;
    assert!(by_id(&other.body, "assessment-form").is_none());

    // A day in the future: the page again (422) with the message and what was typed; nothing
    // recorded.
    let seq = t.audit_seq().await;
    let future = (Utc::now() + Duration::days(3)).date_naive().to_string();
    let action = format!("{path}/external-assessment");
    let form = |day: &str, csrf: &str| {
        vec![
            (
                "organisation".to_owned(),
                "Trung tâm Giám sát an toàn không gian mạng quốc gia".to_owned(),
            ),
            ("licence".to_owned(), "Giấy phép số 12/GP-BCA".to_owned()),
            ("report_ref".to_owned(), "Báo cáo số 45/BC-NCSC".to_owned()),
            ("assessed_on".to_owned(), day.to_owned()),
            ("csrf".to_owned(), csrf.to_owned()),
        ]
    };
    fn as_refs(v: &[(String, String)]) -> Vec<(&str, &str)> {
        v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
    }
    let r = web.post(&action, &as_refs(&form(&future, &csrf))).await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        field_error(&r.body, "assessed_on").is_some(),
        "the day's message shows"
    );
    assert_eq!(
        field_value(&r.body, "report_ref").as_deref(),
        Some("Báo cáo số 45/BC-NCSC"),
        "what was typed is kept"
    );
    assert_eq!(t.audit_seq().await, seq, "a refused form changes nothing");
    // Not a date at all.
    let r = web
        .post(&action, &as_refs(&form("02/12/2026", &csrf)))
        .await;
    assert_eq!(r.status, 422);
    // Without the form's CSRF token: refused, nothing recorded.
    let r = web
        .post(&action, &as_refs(&form("2026-01-01", "forged")))
        .await;
    assert_ne!(r.status, 303);
    assert_eq!(t.audit_seq().await, seq);

    let yesterday = (Utc::now() - Duration::days(1)).date_naive().to_string();
    let r = web.post(&action, &as_refs(&form(&yesterday, &csrf))).await;
    r.assert_redirect(&format!("{path}?ok=assessment_recorded"), "recorded");
    let after = ok(w.owner.change(cr.id).await);
    let ea = after.external_assessment.expect("recorded");
    assert_eq!(
        ea.organisation,
        "Trung tâm Giám sát an toàn không gian mạng quốc gia"
    );
    assert_eq!(ea.recorded_by, "le.van.web");
    let page = web.get(&format!("{path}?ok=assessment_recorded")).await;
    assert!(
        by_id(&page.body, "assessment-form").is_none(),
        "recorded once: no form"
    );
    assert!(
        by_id(&page.body, "cr-assessment")
            .unwrap()
            .text
            .contains("45/BC-NCSC")
    );

    // The reviewer can now sign it off with a pass.
    let signed = ok(w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
    assert_eq!(signed.state, "approved");
}
