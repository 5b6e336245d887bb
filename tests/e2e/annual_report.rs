//! The annual report (Decree 331/2026, Form 08, issue 11): the level record of a system and its
//! re-levelling (a reclassification change for PA05), the organisations' section-2 details, the
//! report checked column by column against what was seeded (JSON, CSV, HTML, printed to PDF by
//! Chromium), who may read which report, bad input, and the reminders before 20-12 and 25-12.

use changegate_api::{
    Contact, EditOrganisation, EditSystem, LevelDecision, LevelRecord, NewIncident,
    NewIncidentNotice, NewSystem, Problem, Relevel, WireFinding,
};
use changegate_tests::browser::{Browser, which};
use changegate_tests::*;
use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};

fn fields(p: &Problem) -> Vec<&str> {
    p.errors.iter().map(|e| e.field.as_str()).collect()
}

fn today() -> NaiveDate {
    Utc::now()
        .with_timezone(&chrono_tz::Asia::Ho_Chi_Minh)
        .date_naive()
}

fn day(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn decision(number: &str, date: NaiveDate, issuer: &str) -> LevelDecision {
    LevelDecision {
        number: number.into(),
        date,
        issuer: issuer.into(),
    }
}

/// The level record of an approved system.
fn approved_record() -> LevelRecord {
    LevelRecord {
        proposed_level: Some(3),
        approval_status: Some("approved".into()),
        approval_decision: Some(decision(
            "1234/QĐ-UBND",
            day(2026, 3, 12),
            "Ủy ban nhân dân tỉnh",
        )),
        expected_approval_date: None,
        rules_decision: Some(decision(
            "56/QĐ-STNMT",
            day(2026, 4, 1),
            "Sở Tài nguyên và Môi trường",
        )),
        plan_deployment: Some("partly_deployed".into()),
        plan_expected_date: Some(day(2027, 6, 30)),
    }
}

fn stnmt_details() -> EditOrganisation {
    EditOrganisation {
        name: None,
        contact: Some(Contact {
            name: String::new(),
            founding_text: "Quyết định số 12/2008/QĐ-UBND ngày 10/03/2008 của UBND tỉnh".into(),
            representative: "Nguyễn Văn Hùng".into(),
            representative_title: "Giám đốc".into(),
            address: "01 Trần Hưng Đạo, Phan Thiết".into(),
            phone: "0252 3822 000".into(),
            email: "stnmt@example.gov.vn".into(),
        }),
        security_unit: Some(Contact {
            name: "Trung tâm Công nghệ thông tin tài nguyên và môi trường".into(),
            founding_text: "Quyết định số 45/QĐ-STNMT ngày 02/05/2015".into(),
            representative: "Trần Minh Tâm".into(),
            representative_title: "Giám đốc Trung tâm".into(),
            address: "02 Trần Hưng Đạo, Phan Thiết".into(),
            phone: "0252 3822 111".into(),
            email: "cntt.stnmt@example.gov.vn".into(),
        }),
    }
}

#[tokio::test]
async fn the_level_record_is_kept_checked_and_audited_and_only_the_owner_or_an_admin_writes_it() {
    let t = spawn_app().await;
    let w = t.world().await;

    // The owner records it; the system's page (GET) shows it, with column 12 derived.
    let s = ok(w.owner.put_level_record("TTHC", &approved_record()).await);
    assert_eq!(s.level_record.as_ref(), Some(&approved_record()));
    assert!(!s.checks_done.before_operation && !s.checks_done.periodic);
    let got = ok(w.auditor.system("TTHC").await);
    assert_eq!(got.level_record, Some(approved_record()));
    let events = t.audit_actions("system.level_record").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor, "nguyen.van.an");

    // Another organisation's owner does not find it; an auditor may not write.
    assert_eq!(
        problem(
            w.other_owner
                .put_level_record("TTHC", &approved_record())
                .await
        )
        .status,
        404
    );
    assert_eq!(
        problem(w.auditor.put_level_record("TTHC", &approved_record()).await).status,
        403
    );

    // Bad input: each fault names its field, and nothing changes.
    let before = t.audit_seq().await;
    let mut bad = approved_record();
    bad.proposed_level = Some(6);
    bad.approval_status = Some("done".into());
    bad.plan_deployment = Some("half".into());
    let p = problem(w.owner.put_level_record("TTHC", &bad).await);
    assert_eq!((p.status, p.code.as_str()), (422, "validation_failed"));
    assert_eq!(
        fields(&p),
        ["proposed_level", "approval_status", "plan_deployment"],
        "{p:?}"
    );
    let mut future = approved_record();
    future.approval_decision = Some(decision(
        "1/QĐ-UBND",
        today() + Duration::days(2),
        "UBND tỉnh",
    ));
    let p = problem(w.owner.put_level_record("TTHC", &future).await);
    assert_eq!(fields(&p), ["approval_decision.date"], "{p:?}");
    let mut no_decision = approved_record();
    no_decision.approval_decision = None;
    let p = problem(w.owner.put_level_record("TTHC", &no_decision).await);
    assert_eq!(fields(&p), ["approval_decision"], "{p:?}");
    let (status, _, _) = ok(t
        .admin
        .raw(
            reqwest::Method::PUT,
            "/api/v1/systems/TTHC/level-record",
            Some("application/json"),
            br#"{"proposed_level": 3, "approval_status": "approved", "colour": "red"}"#.to_vec(),
        )
        .await);
    assert!(status.is_client_error(), "an unknown field is refused");
    assert_eq!(t.audit_seq().await, before, "refused writes write nothing");
    assert_eq!(
        ok(t.admin.system("TTHC").await).level_record,
        Some(approved_record())
    );
    assert_eq!(
        problem(
            t.admin
                .put_level_record("KHONG-CO", &approved_record())
                .await
        )
        .status,
        404
    );

    // Writing the same record again is not a change: no new audit event.
    ok(w.owner.put_level_record("TTHC", &approved_record()).await);
    assert_eq!(t.audit_seq().await, before);
}

#[tokio::test]
async fn re_levelling_is_recorded_with_its_decision_and_opens_a_reclassification_for_pa05() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    t.approved(&w, &change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await;
    assert_eq!(
        ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await).decision,
        "allow"
    );

    let d = decision("88/QĐ-UBND", today(), "Ủy ban nhân dân tỉnh");
    let r = ok(t
        .admin
        .relevel(
            "TTHC",
            &Relevel {
                level: 4,
                decision: d.clone(),
                reason: "Mở rộng kết nối với Cơ sở dữ liệu quốc gia về dân cư".into(),
            },
        )
        .await);
    assert_eq!(r.system.level, 4);
    assert!(r.system.warnings.is_empty());
    let rec = r.system.level_record.clone().unwrap();
    assert_eq!(rec.proposed_level, Some(4));
    assert_eq!(rec.approval_status.as_deref(), Some("approved"));
    assert_eq!(rec.approval_decision, Some(d.clone()));
    let ev = t.audit_actions("system.relevel").await;
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].actor, "quan.tri");

    // A reclassification change is waiting for PA05, in its queue.
    let id = r
        .change_request
        .expect("a population-database system opens one");
    let cr = ok(w.reviewer.client().change(id).await);
    assert_eq!(
        (cr.kind.as_str(), cr.state.as_str()),
        ("reclassification", "submitted")
    );
    assert!(cr.title.contains("88/QĐ-UBND"), "{}", cr.title);
    let queue = ok(w
        .reviewer
        .client()
        .changes(Some("TTHC"), Some("submitted"))
        .await);
    assert!(queue.items.iter().any(|c| c.id == id), "{queue:?}");
    // The gate still honours the approval already given; PA05 evaluates the re-levelling at the
    // new level's quorum (level 4: two reviewers).
    assert_eq!(
        ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await).decision,
        "allow"
    );
    assert_eq!(cr.quorum, 2);
    ok(w.reviewer.sign_off(id, &sign_off_all(&cr, "pass")).await);
    let done = ok(w.reviewer2.sign_off(id, &sign_off_all(&cr, "pass")).await);
    assert_eq!(done.state, "approved");

    // Below the pack's minimum for a connected system: the default pack warns.
    let r = ok(t
        .admin
        .relevel(
            "DAT-DAI",
            &Relevel {
                level: 2,
                decision: decision("90/QĐ-UBND", today(), "UBND tỉnh"),
                reason: String::new(),
            },
        )
        .await);
    assert_eq!(r.system.level, 2);
    assert!(
        r.system.warnings[0].contains("level 3"),
        "{:?}",
        r.system.warnings
    );

    // Bad input: nothing changes.
    let before = t.audit_seq().await;
    for (level, date, field) in [
        (0, today(), "level"),
        (6, today(), "level"),
        (4, today(), "level"),
        (3, today() + Duration::days(1), "decision.date"),
    ] {
        let p = problem(
            t.admin
                .relevel(
                    "TTHC",
                    &Relevel {
                        level,
                        decision: decision("1/QĐ", date, "UBND tỉnh"),
                        reason: String::new(),
                    },
                )
                .await,
        );
        assert_eq!(fields(&p), [field], "{level} {date}: {p:?}");
    }
    let p = problem(
        w.other_owner
            .relevel(
                "TTHC",
                &Relevel {
                    level: 3,
                    decision: d.clone(),
                    reason: String::new(),
                },
            )
            .await,
    );
    assert_eq!(p.status, 404);
    assert_eq!(t.audit_seq().await, before);
    assert_eq!(ok(t.admin.system("TTHC").await).level, 4);

    // A retired system is not re-levelled.
    ok(t.admin.retire_system("DAT-DAI", "Thay thế").await);
    let p = problem(
        t.admin
            .relevel(
                "DAT-DAI",
                &Relevel {
                    level: 3,
                    decision: d,
                    reason: String::new(),
                },
            )
            .await,
    );
    assert_eq!((p.status, p.code.as_str()), (409, "system_retired"));
}

#[tokio::test]
async fn a_pack_that_refuses_levels_below_the_minimum_refuses_the_re_levelling() {
    let dir = tempfile::tempdir().unwrap();
    let pack = dir.path().join("pack.toml");
    std::fs::write(
        &pack,
        changegate_app::DEFAULT_PACK
            .replace("below_min_level = \"warn\"", "below_min_level = \"refuse\""),
    )
    .unwrap();
    let t = spawn_app_with(|c| c.policy_pack = Some(pack.clone())).await;
    let w = t.world().await;
    let before = t.audit_seq().await;
    let p = problem(
        t.admin
            .relevel(
                "TTHC",
                &Relevel {
                    level: 2,
                    decision: decision("9/QĐ", today(), "UBND tỉnh"),
                    reason: String::new(),
                },
            )
            .await,
    );
    assert_eq!(fields(&p), ["level"], "{p:?}");
    assert_eq!(t.audit_seq().await, before);
    assert_eq!(ok(w.owner.system("TTHC").await).level, 3);
    let none = ok(w.reviewer.client().changes(Some("TTHC"), None).await);
    assert!(none.items.iter().all(|c| c.kind != "reclassification"));
}

#[tokio::test]
async fn organisations_show_their_form_08_details_and_only_an_admin_edits_them() {
    let t = spawn_app().await;
    let w = t.world().await;
    let o = ok(t.admin.edit_organisation("STNMT", &stnmt_details()).await);
    assert_eq!(o.contact.representative, "Nguyễn Văn Hùng");
    assert_eq!(
        o.security_unit.as_ref().unwrap().name,
        "Trung tâm Công nghệ thông tin tài nguyên và môi trường"
    );
    assert_eq!(t.audit_actions("organisation.edit").await.len(), 1);
    assert_eq!(ok(w.owner.organisation("STNMT").await), o);

    // Owners see their own organisation only; the auditor sees all.
    let mine = ok(w.owner.organisations().await);
    assert_eq!(
        mine.iter().map(|o| o.code.as_str()).collect::<Vec<_>>(),
        ["STNMT"]
    );
    assert_eq!(problem(w.owner.organisation("CUCTHUE").await).status, 404);
    let all = ok(w.auditor.organisations().await);
    assert_eq!(all.len(), 4, "{all:?}");

    // Only an admin edits; bad input names its field and changes nothing.
    assert_eq!(
        problem(w.owner.edit_organisation("STNMT", &stnmt_details()).await).status,
        403
    );
    let before = t.audit_seq().await;
    let mut bad = stnmt_details();
    bad.contact.as_mut().unwrap().email = "không phải thư".into();
    bad.contact.as_mut().unwrap().phone = "gọi tôi".into();
    let p = problem(t.admin.edit_organisation("STNMT", &bad).await);
    assert_eq!(fields(&p), ["contact.phone", "contact.email"], "{p:?}");
    let p = problem(t.admin.edit_organisation("PA05", &stnmt_details()).await);
    assert_eq!(fields(&p), ["security_unit"], "{p:?}");
    assert_eq!(
        problem(
            t.admin
                .edit_organisation("KHONG-CO", &stnmt_details())
                .await
        )
        .status,
        404
    );
    assert_eq!(t.audit_seq().await, before);
}

/// The seeded world of the report: STNMT's details; TTHC approved with an evaluated change;
/// DAT-DAI (named like a formula) sent for appraisal, failed an evaluation with a finding;
/// HO-TICH approved, taken on with an evaluation and re-reviewed; a high incident on TTHC with
/// its initial notice sent on time.
async fn seeded(t: &TestApp) -> World {
    let w = t.world().await;
    ok(t.admin.edit_organisation("STNMT", &stnmt_details()).await);
    ok(w.owner.put_level_record("TTHC", &approved_record()).await);
    t.approved(
        &w,
        &change(
            "TTHC",
            &["production"],
            vec![git(&random_oid(), &random_oid())],
        ),
    )
    .await;
    ok(t.admin
        .edit_system(
            "DAT-DAI",
            &EditSystem {
                name: Some("=HYPERLINK(\"x\") Hệ thống đất đai".into()),
                ..Default::default()
            },
        )
        .await);
    let appraisal = LevelRecord {
        proposed_level: Some(4),
        approval_status: Some("submitted_for_appraisal".into()),
        expected_approval_date: Some(day(2027, 3, 31)),
        plan_deployment: Some("not_deployed".into()),
        plan_expected_date: Some(day(2027, 12, 31)),
        ..Default::default()
    };
    ok(w.owner.put_level_record("DAT-DAI", &appraisal).await);
    let cr = w.submitted("DAT-DAI").await;
    let mut fail = sign_off_all(&cr, "fail");
    fail.findings = vec![WireFinding {
        severity: "high".into(),
        text: "Tài khoản quản trị dùng mật khẩu mặc định".into(),
        item: Some(cr.checklist[0].item.clone()),
    }];
    assert_eq!(
        ok(w.reviewer.sign_off(cr.id, &fail).await).state,
        "rejected"
    );

    // HO-TICH: taken on with an evaluation 355 days ago, so its yearly re-review is due in 10
    // days and the sweep opens it; PA05 passes it.
    ok(t.admin
        .create_system(&NewSystem {
            code: "HO-TICH".into(),
            name: "Hệ thống hộ tịch".into(),
            owner_org: "STNMT".into(),
            operating_unit: "Văn phòng Sở".into(),
            level: 3,
            population_db: true,
            environments: vec!["production".into()],
            components: vec![],
            last_review: Some(today() - Duration::days(355)),
        })
        .await);
    let mut rec = approved_record();
    rec.approval_decision = Some(decision("77/QĐ-UBND", day(2025, 6, 1), "UBND tỉnh"));
    rec.plan_deployment = Some("fully_deployed".into());
    rec.plan_expected_date = None;
    rec.rules_decision = None;
    ok(w.owner.put_level_record("HO-TICH", &rec).await);
    t.app.review_sweep(Utc::now()).await.unwrap();
    let rr = ok(w
        .reviewer
        .client()
        .changes(Some("HO-TICH"), Some("submitted"))
        .await);
    let rr = ok(w.reviewer.client().change(rr.items[0].id).await);
    assert_eq!(rr.kind, "re_review");
    assert_eq!(
        ok(w.reviewer.sign_off(rr.id, &sign_off_all(&rr, "pass")).await).state,
        "approved"
    );

    let inc = ok(w
        .owner
        .report_incident(
            "TTHC",
            &NewIncident {
                kind: "abnormal_access".into(),
                severity: "high".into(),
                summary: "Truy cập bất thường từ địa chỉ IP lạ".into(),
                detected_at: None,
                national_security: false,
            },
        )
        .await);
    ok(w.owner
        .record_notice(
            inc.id,
            &NewIncidentNotice {
                kind: "initial".into(),
                sent_at: None,
                recipient: "Công an tỉnh (PA05)".into(),
                channel: "Thư điện tử".into(),
                document_number: Some("15/TB-STNMT".into()),
            },
        )
        .await);
    w
}

#[tokio::test]
async fn the_annual_report_holds_what_was_recorded_column_by_column() {
    let t = spawn_app_with(|c| c.documents.province = "Lâm Đồng".into()).await;
    let w = seeded(&t).await;
    let year = today().year_for_report();
    let r = ok(t.admin.annual_report(year, Some("STNMT")).await);
    assert_eq!(r.province, "Lâm Đồng");
    assert_eq!(
        (r.period_from, r.period_to),
        (day(year - 1, 12, 15), day(year, 12, 14))
    );
    assert_eq!(r.organisation.as_ref().unwrap().code, "STNMT");

    // Section 1.
    let s = &r.summary;
    assert_eq!(
        (
            s.systems,
            s.classified,
            s.with_dossier,
            s.appraised,
            s.approved,
            s.approved_checked_periodically
        ),
        (3, 3, 3, 2, 2, 1),
        "{s:?}"
    );
    assert_eq!(s.all_approved_by, Some(day(2027, 3, 31)));

    // Section 2.
    assert_eq!(r.owners.len(), 1);
    let o = &r.owners[0];
    let want = stnmt_details();
    assert_eq!(o.contact, want.contact.unwrap());
    assert_eq!(o.security_unit, want.security_unit);

    // Section 3, by code: the 12 columns.
    let codes: Vec<&str> = r.systems.iter().map(|s| s.code.as_str()).collect();
    assert_eq!(codes, ["DAT-DAI", "HO-TICH", "TTHC"]);
    let row = |code: &str| r.systems.iter().find(|s| s.code == code).unwrap();
    let dat = row("DAT-DAI");
    assert_eq!(dat.no, 1);
    assert_eq!(dat.name, "=HYPERLINK(\"x\") Hệ thống đất đai");
    assert_eq!(dat.owner_name, "Sở Tài nguyên và Môi trường");
    assert_eq!(dat.operating_unit, "Trung tâm Công nghệ thông tin");
    assert_eq!(dat.proposed_level, Some(4));
    assert_eq!(
        dat.approval_status.as_deref(),
        Some("submitted_for_appraisal")
    );
    assert_eq!(
        (dat.approval_decision.as_ref(), dat.rules_decision.as_ref()),
        (None, None)
    );
    assert_eq!(dat.expected_approval_date, Some(day(2027, 3, 31)));
    assert_eq!(dat.plan_deployment.as_deref(), Some("not_deployed"));
    assert_eq!(dat.plan_expected_date, Some(day(2027, 12, 31)));
    assert!(dat.checks_done.before_operation && !dat.checks_done.periodic);
    let tthc = row("TTHC");
    assert_eq!(tthc.no, 3);
    let a = approved_record();
    assert_eq!(tthc.approval_decision, a.approval_decision);
    assert_eq!(tthc.rules_decision, a.rules_decision);
    assert_eq!(tthc.expected_approval_date, None);
    assert_eq!(tthc.plan_deployment.as_deref(), Some("partly_deployed"));
    assert_eq!(tthc.plan_expected_date, Some(day(2027, 6, 30)));
    assert!(tthc.checks_done.before_operation && !tthc.checks_done.periodic);
    let ht = row("HO-TICH");
    assert_eq!(ht.operating_unit, "Văn phòng Sở");
    assert_eq!(ht.plan_deployment.as_deref(), Some("fully_deployed"));
    assert!(ht.checks_done.before_operation && ht.checks_done.periodic);

    // Beyond the form.
    let act = &r.activity;
    assert_eq!(
        (act.evaluations, act.passed, act.failed),
        (3, 2, 1),
        "{act:?}"
    );
    let kinds: Vec<(&str, u32)> = act
        .changes_evaluated
        .iter()
        .map(|k| (k.kind.as_str(), k.count))
        .collect();
    assert_eq!(kinds, [("re_review", 1), ("software", 2)]);
    let high = act.incidents.iter().find(|c| c.severity == "high").unwrap();
    assert_eq!(
        (
            high.incidents,
            high.notices_due,
            high.notices_on_time,
            high.notices_late
        ),
        (1, 2, 1, 0)
    );
    assert!(
        act.incidents
            .iter()
            .filter(|c| c.severity != "high")
            .all(|c| c.incidents == 0)
    );
    assert_eq!(
        (
            act.remediation_open,
            act.remediation_closed,
            act.remediation_overdue
        ),
        (1, 0, 0)
    );

    // The whole province (PA05 and the admin): both owners, STNMT's systems.
    let all = ok(w.reviewer.client().annual_report(year, None).await);
    assert!(all.organisation.is_none());
    assert_eq!(
        all.owners
            .iter()
            .map(|o| o.code.as_str())
            .collect::<Vec<_>>(),
        ["CUCTHUE", "STNMT"]
    );
    assert_eq!(all.systems.len(), 3);

    // An owner gets its own; another organisation's is not found; bad input is refused.
    let own = ok(w.owner.annual_report(year, None).await);
    assert_eq!(own.organisation.unwrap().code, "STNMT");
    assert_eq!(own.systems, r.systems);
    assert_eq!(
        problem(w.other_owner.annual_report(year, Some("STNMT")).await).status,
        404
    );
    let theirs = ok(w.other_owner.annual_report(year, None).await);
    assert!(theirs.systems.is_empty());
    assert_eq!(
        problem(t.admin.annual_report(year, Some("KHONG-CO")).await).status,
        404
    );
    let p = problem(t.admin.annual_report(year, Some("PA05")).await);
    assert_eq!(fields(&p), ["org"]);
    for y in [2019, today().year() + 2] {
        let p = problem(t.admin.annual_report(y, None).await);
        assert_eq!((p.status, fields(&p)), (422, vec!["year"]), "{y}");
    }
    let p = problem(t.admin.annual_report_as(year, None, "xml").await);
    assert_eq!(fields(&p), ["format"]);
    assert_eq!(problem(w.ci.annual_report(year, None).await).status, 403);

    // CSV: a BOM, the Vietnamese headers, the formula defused.
    let csv = ok(t.admin.annual_report_as(year, Some("STNMT"), "csv").await);
    assert!(csv.starts_with(b"\xEF\xBB\xBF"), "no BOM");
    let text = String::from_utf8(csv[3..].to_vec()).unwrap();
    let mut rd = csv::Reader::from_reader(text.as_bytes());
    let headers: Vec<String> = rd.headers().unwrap().iter().map(str::to_owned).collect();
    assert_eq!(headers.len(), 12);
    assert_eq!(headers[1], "Tên hệ thống thông tin");
    assert_eq!(headers[5], "Tình trạng phê duyệt cấp độ");
    let rows: Vec<csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), 3);
    assert_eq!(&rows[0][1], "'=HYPERLINK(\"x\") Hệ thống đất đai");
    assert_eq!(&rows[0][5], "Đã gửi thẩm định");
    assert_eq!(&rows[0][8], "31/03/2027");
    assert_eq!(&rows[0][9], "Chưa triển khai");
    assert_eq!(
        &rows[2][6],
        "Số 1234/QĐ-UBND, ngày 12/03/2026, Ủy ban nhân dân tỉnh"
    );
    assert_eq!(&rows[2][9], "Đã triển khai một số hạng mục");
    assert_eq!(&rows[1][11], "Trước khi đưa vào sử dụng; Định kỳ");

    // HTML: the official document.
    let html = String::from_utf8(ok(t
        .admin
        .annual_report_as(year, Some("STNMT"), "html")
        .await))
    .unwrap();
    for s in [
        "SỞ TÀI NGUYÊN VÀ MÔI TRƯỜNG",
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "Lâm Đồng, ngày",
        "BC-STNMT",
        "Trang \" counter(page)",
        "Nguyễn Văn Hùng",
        "Đã được phê duyệt",
    ] {
        assert!(html.contains(s), "the document lacks {s:?}");
    }
}

trait ReportYear {
    fn year_for_report(&self) -> i32;
}

impl ReportYear for NaiveDate {
    /// The report year whose period holds this day.
    fn year_for_report(&self) -> i32 {
        if (self.month(), self.day()) >= (12, 15) {
            self.year() + 1
        } else {
            self.year()
        }
    }
}

#[tokio::test]
async fn the_printed_report_has_the_motto_on_one_line_and_page_numbers() {
    let t = spawn_app_with(|c| c.documents.province = "Lâm Đồng".into()).await;
    seeded(&t).await;
    // Enough systems for more than one page.
    for i in 0..30 {
        t.system(&format!("HT-{i:02}"), "STNMT", 3, &["production"])
            .await;
    }
    let year = today().year_for_report();
    let html = ok(t.admin.annual_report_as(year, Some("STNMT"), "html").await);
    let Some(pdftotext) = which("pdftotext") else {
        panic!("pdftotext is missing: apt-get install poppler-utils");
    };
    let Some(b) = Browser::start(&t.url, "annual_report_pdf").await else {
        return;
    };
    // The document as the API answered it (bytes and headers), served as it would be saved.
    let (status, ct, body) = ok(t
        .admin
        .raw(
            reqwest::Method::GET,
            &format!("/api/v1/reports/annual?year={year}&org=STNMT&format=html"),
            None,
            vec![],
        )
        .await);
    assert_eq!(status, 200);
    assert!(ct.starts_with("text/html"), "{ct}");
    assert_eq!(body, html);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let doc_url = format!("http://{}/bao-cao.html", listener.local_addr().unwrap());
    let doc = axum::Router::new().route(
        "/bao-cao.html",
        axum::routing::get(move || async move {
            (
                [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html.clone(),
            )
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, doc).await;
    });
    let dir = tempfile::tempdir().unwrap();
    b.goto(&doc_url).await;
    let pdf = std::env::var_os("CHANGEGATE_KEEP_PDF")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| dir.path().join("bao-cao.pdf"));
    b.print_pdf(&pdf).await;
    let out = std::process::Command::new(pdftotext)
        .args(["-layout", "-enc", "UTF-8"])
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    for whole in [
        "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "Độc lập - Tự do - Hạnh phúc",
        "SỞ TÀI NGUYÊN VÀ MÔI TRƯỜNG",
    ] {
        assert!(
            lines.iter().any(|l| l.contains(whole)),
            "{whole:?} is not on one line:\n{text}"
        );
    }
    let pages = text.matches('\u{c}').count().max(1);
    assert!(pages >= 2, "expected several pages, got {pages}");
    for n in 1..=pages {
        assert!(
            text.contains(&format!("Trang {n}/{pages}")),
            "no page number {n}/{pages}:\n{text}"
        );
    }
    assert!(text.contains("Lâm Đồng, ngày"));
    assert!(text.contains("THỦ TRƯỞNG CƠ QUAN, ĐƠN VỊ"), "{text}");
}

#[tokio::test]
async fn reminders_go_out_before_the_20th_and_the_25th_once_each() {
    let t = spawn_app().await;
    let queued = |event: &'static str| {
        let admin = t.admin.clone();
        async move {
            ok(admin.deliveries(None).await)
                .into_iter()
                .filter(|d| d.event == event)
                .count()
        }
    };
    // The outbox only queues for subscribers: subscribe to every event.
    let sink = crate::sink::Sink::start().await;
    ok(t.admin.create_webhook(&crate::sink::hook(&sink.url)).await);
    let at = |m: u32, d: u32| {
        chrono_tz::Asia::Ho_Chi_Minh
            .with_ymd_and_hms(2026, m, d, 7, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    };
    t.app.review_sweep(at(12, 1)).await.unwrap();
    assert_eq!(queued("annual_report.due").await, 0, "too early");
    // 12-12: 8 days before the units' day (the 10-day reminder), 13 before the owner's.
    let out = t.app.review_sweep(at(12, 12)).await.unwrap();
    assert!(out.contains("1 annual report reminder(s)"), "{out}");
    t.app.review_sweep(at(12, 13)).await.unwrap();
    assert_eq!(queued("annual_report.due").await, 1, "once");
    t.app.review_sweep(at(12, 16)).await.unwrap();
    assert_eq!(
        queued("annual_report.due").await,
        2,
        "the owner's 10-day reminder"
    );
    t.app.review_sweep(at(12, 18)).await.unwrap();
    assert_eq!(
        queued("annual_report.due").await,
        3,
        "the units' 3-day reminder"
    );
    t.app.review_sweep(at(12, 23)).await.unwrap();
    assert_eq!(
        queued("annual_report.due").await,
        4,
        "the owner's 3-day reminder"
    );
    t.app.review_sweep(at(12, 26)).await.unwrap();
    assert_eq!(queued("annual_report.due").await, 4, "none after the day");
    let ev = t.audit_actions("annual_report.reminder").await;
    assert_eq!(ev.len(), 4);
}

#[tokio::test]
async fn the_demo_fills_every_column_of_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(&dir).await;
    let (app, base, _stop) = serve(&config(dir.path(), &url)).await;
    app.seed_demo().await.unwrap();
    let op = changegate_app::Principal::operator();
    let r = app
        .annual_report(&op, today().year_for_report(), None, "")
        .await
        .unwrap();
    assert_eq!(r.systems.len(), 3);
    for s in &r.systems {
        assert!(
            s.proposed_level.is_some() && s.approval_status.is_some(),
            "{s:?}"
        );
        assert!(
            s.rules_decision.is_some() && s.plan_deployment.is_some(),
            "{s:?}"
        );
        if s.approval_status.as_deref() == Some("approved") {
            assert!(s.approval_decision.is_some(), "{s:?}");
        } else {
            assert!(s.expected_approval_date.is_some(), "{s:?}");
        }
        if s.plan_deployment.as_deref() != Some("fully_deployed") {
            assert!(s.plan_expected_date.is_some(), "{s:?}");
        }
        assert!(s.checks_done.before_operation, "{s:?}");
    }
    assert!(r.summary.all_approved_by.is_some());
    for o in &r.owners {
        assert!(!o.contact.representative.is_empty(), "{o:?}");
        assert!(o.security_unit.is_some(), "{o:?}");
    }
    assert!(r.activity.evaluations > 0);
    // The procedures system's yearly re-review was overdue; the sweep opened it and PA05
    // concluded it: a periodic check this year, and the next one a year away.
    let tthc = r.systems.iter().find(|s| s.code == "TTHC-TINH").unwrap();
    assert!(tthc.checks_done.periodic, "{tthc:?}");
    assert!(r.summary.approved_checked_periodically >= 1);
    // The whole report, kept as a snapshot: dates and years move with the day the test runs.
    insta::with_settings!({filters => vec![
        (r"\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:\d{2}))?", "[date]"),
        (r#""year": \d{4}"#, r#""year": [year]"#),
    ]}, {
        insta::assert_snapshot!("demo_annual_report_json", serde_json::to_string_pretty(&r).unwrap());
    });
    // The re-levelling of the tax system waits for PA05.
    let thue = r.systems.iter().find(|s| s.code == "THUE-TINH").unwrap();
    assert_eq!(thue.level, 4);
    let thue_changes = ok(changegate_client::Client::new(
        &base,
        Some(
            app.create_token(
                &op,
                "quan.tri",
                changegate_api::NewToken {
                    name: "t".into(),
                    expires_in_days: Some(1),
                },
            )
            .await
            .unwrap()
            .token,
        ),
    )
    .unwrap()
    .changes(Some("THUE-TINH"), Some("submitted"))
    .await);
    assert!(
        thue_changes
            .items
            .iter()
            .any(|c| c.kind == "reclassification")
    );
}
