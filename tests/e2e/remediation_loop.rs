//! The remediation loop: findings and conditions tracked from the reviewer's pen to the
//! reviewer's verification, with due dates that have consequences.

use changegate_api::{
    ConditionSpec, EditChangeRequest, NewSignOff, Note, Remediation, WireCondition, WireFinding,
};
use changegate_client::Client;
use changegate_store::entity::{audit_event, remediation as rem};
use changegate_store::sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use changegate_tests::*;
use chrono::{Duration, NaiveDate};

fn today() -> NaiveDate {
    chrono::Utc::now()
        .with_timezone(&chrono_tz_hcm())
        .date_naive()
}

fn chrono_tz_hcm() -> chrono::FixedOffset {
    // The server's zone (Asia/Ho_Chi_Minh) has been UTC+7 without DST since 1975.
    chrono::FixedOffset::east_opt(7 * 3600).unwrap()
}

fn finding(severity: &str, text: &str, item: Option<&str>) -> WireFinding {
    WireFinding {
        severity: severity.into(),
        text: text.into(),
        item: item.map(str::to_owned),
    }
}

fn condition(text: &str, severity: Option<&str>, due: Option<String>) -> WireCondition {
    WireCondition::Full(ConditionSpec {
        text: text.into(),
        severity: severity.map(str::to_owned),
        due,
    })
}

async fn items(c: &Client, q: &[(&str, &str)]) -> Vec<Remediation> {
    let q: Vec<(&str, String)> = q.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
    ok(c.remediations(&q).await).items
}

fn with_conditions(s: &NewSignOff, conditions: Vec<WireCondition>) -> NewSignOff {
    let mut s = s.clone();
    s.conditions = conditions;
    s
}

#[tokio::test]
async fn changes_requested_edit_resubmit_approve_with_conditions_fulfil_reopen_verify() {
    let t = spawn_app().await;
    let w = t.world().await;
    let cr = w.submitted("TTHC").await;
    let first_commit = match &cr.subjects[0] {
        changegate_api::WireSubject::GitCommit { commit, .. } => commit.clone(),
        other => panic!("{other:?}"),
    };

    // PA05 sends it back with two findings; the text keeps its line breaks.
    let multi = "Thiếu tài liệu thiết kế:\n- sơ đồ mạng\n- danh mục phần mềm";
    let back = ok(w
        .reviewer
        .client()
        .request_changes_with(
            cr.id,
            &Note {
                note: "Bổ sung hồ sơ rồi gửi lại.".into(),
                findings: vec![
                    finding(
                        "high",
                        "Chưa quét lỗ hổng mô-đun mới",
                        Some("vuln-scan-pentest"),
                    ),
                    finding("medium", multi, None),
                ],
            },
        )
        .await);
    assert_eq!((back.state.as_str(), back.round), ("draft", 1));
    let sent = back.sent_back.expect("the owner sees why it came back");
    assert_eq!(sent.note, "Bổ sung hồ sơ rồi gửi lại.");
    assert_eq!(sent.reviewer, "tran.thi.hoa");
    let texts: Vec<&str> = sent.findings.iter().map(|f| f.text.as_str()).collect();
    assert_eq!(texts, ["Chưa quét lỗ hổng mô-đun mới", multi]);
    assert_eq!(sent.findings[0].item.as_deref(), Some("vuln-scan-pentest"));
    // Findings are items of the owner's organisation, due per the pack (high: 30 days).
    let mine = items(&w.owner, &[("change_request", &cr.id.to_string())]).await;
    assert_eq!(mine.len(), 2);
    assert!(
        mine.iter()
            .all(|i| i.kind == "finding" && i.state == "open")
    );
    let high = mine.iter().find(|i| i.severity == "high").unwrap();
    assert_eq!(high.due, today() + Duration::days(30));
    assert!(!high.closes_gate, "a finding never closes the gate");

    // The owner edits the draft: another commit, a longer description; then resubmits.
    let new_commit = random_oid();
    ok(w.owner
        .edit_change(
            cr.id,
            &EditChangeRequest {
                description: Some("Cập nhật phiên bản, kèm kết quả quét lỗ hổng".into()),
                subjects: Some(vec![git(&new_commit, &random_oid())]),
                ..Default::default()
            },
        )
        .await);
    let again = ok(w.owner.submit(cr.id).await);
    assert_eq!(again.state, "submitted");
    // The reviewer sees what changed since the round they looked at.
    let seen = ok(w.reviewer2.client().change(cr.id).await);
    let fields: Vec<&str> = seen
        .changes_since_review
        .iter()
        .map(|c| c.field.as_str())
        .collect();
    assert_eq!(fields, ["description", "subjects"]);
    let subjects = &seen.changes_since_review[1];
    assert!(subjects.added.iter().any(|s| s.contains(&new_commit)));
    assert!(subjects.removed.iter().any(|s| s.contains(&first_commit)));

    // Approved with a plain-text condition (medium, default due) and a high one with a date.
    let due = today() + Duration::days(10);
    let signed = ok(w
        .reviewer2
        .sign_off(
            cr.id,
            &with_conditions(
                &sign_off_all(&again, "pass"),
                vec![
                    "Rà soát nhật ký truy cập sau 30 ngày".into(),
                    condition(
                        "Bổ sung hồ sơ CO/CQ trước khi vận hành",
                        Some("high"),
                        Some(due.to_string()),
                    ),
                ],
            ),
        )
        .await);
    assert_eq!(signed.state, "approved");
    let conditions = items(
        &w.owner,
        &[
            ("change_request", &cr.id.to_string()),
            ("kind", "condition"),
        ],
    )
    .await;
    assert_eq!(conditions.len(), 2, "{conditions:?}");
    let plain = conditions.iter().find(|c| c.severity == "medium").unwrap();
    assert_eq!(plain.due, today() + Duration::days(90));
    let coq = conditions.iter().find(|c| c.severity == "high").unwrap();
    assert_eq!((coq.due, coq.closes_gate, coq.round), (due, true, 1));

    // Another organisation sees nothing of it and cannot act on it.
    let hidden = problem(w.other_owner.fulfil(coq.id, "x").await);
    assert_eq!(hidden.status, 404);
    assert!(items(&w.other_owner, &[]).await.is_empty());
    // The auditor sees every organisation's items.
    assert_eq!(items(&w.auditor, &[]).await.len(), 4);

    // Fulfil → reopened by PA05 with a note → fulfilled again → verified.
    let f = ok(w
        .owner
        .fulfil(coq.id, "Đã bổ sung CO/CQ: https://vanban.example/coq.pdf")
        .await);
    assert_eq!(f.state, "fulfilled");
    assert_eq!(f.fulfilled_by.as_deref(), Some("nguyen.van.an"));
    let r = ok(w
        .reviewer
        .client()
        .verify(coq.id, false, "Thiếu bản CQ của thiết bị thứ hai")
        .await);
    assert_eq!(r.state, "reopened");
    assert_eq!(
        r.verify_note.as_deref(),
        Some("Thiếu bản CQ của thiết bị thứ hai")
    );
    ok(w.owner2.fulfil(coq.id, "Đã bổ sung đủ hai bản CQ").await);
    let v = ok(w.reviewer.client().verify(coq.id, true, "").await);
    assert_eq!(v.state, "verified");
    let full = ok(w.auditor.remediation(coq.id).await);
    let steps: Vec<(&str, &str)> = full
        .history
        .iter()
        .map(|e| (e.action.as_str(), e.actor.as_str()))
        .collect();
    assert_eq!(
        steps,
        [
            ("raise", "do.minh.duc"),
            ("fulfil", "nguyen.van.an"),
            ("reopen", "tran.thi.hoa"),
            ("fulfil", "le.thi.binh"),
            ("verify", "tran.thi.hoa"),
        ]
    );
    // Filters: open items of the system; verified ones.
    let open = items(
        &w.reviewer.client().clone(),
        &[("system", "TTHC"), ("state", "open")],
    )
    .await;
    assert_eq!(open.len(), 3, "two findings and the plain condition");
    let verified = items(&w.owner, &[("state", "verified")]).await;
    assert_eq!(verified.iter().map(|i| i.id).collect::<Vec<_>>(), [coq.id]);
}

#[tokio::test]
async fn bad_remediation_input_is_refused_and_changes_nothing() {
    let t = spawn_app().await;
    let w = t.world().await;
    let cr = w.submitted("TTHC").await;
    let base = sign_off_all(&cr, "pass");
    let yesterday = (today() - Duration::days(1)).to_string();
    for (conditions, field) in [
        (
            vec![condition("x", None, Some(yesterday.clone()))],
            "conditions[0].due",
        ),
        (
            vec![condition("x", None, Some("2027-02-30".into()))],
            "conditions[0].due",
        ),
        (
            vec!["ok".into(), condition("x", Some("urgent"), None)],
            "conditions[1].severity",
        ),
    ] {
        let p = problem(
            w.reviewer
                .sign_off(cr.id, &with_conditions(&base, conditions))
                .await,
        );
        assert_eq!(p.status, 422, "{p:?}");
        assert_eq!(p.errors[0].field, field, "{p:?}");
    }
    for (f, field) in [
        (
            finding("cao", "Tài khoản mặc định", None),
            "findings[0].severity",
        ),
        (
            finding("high", "Tài khoản mặc định", Some("no-such-item")),
            "findings[0].item",
        ),
    ] {
        let note = Note {
            note: "Sửa".into(),
            findings: vec![f],
        };
        let p = problem(w.reviewer.client().request_changes_with(cr.id, &note).await);
        assert_eq!(
            (p.status, p.errors[0].field.as_str()),
            (422, field),
            "{p:?}"
        );
    }
    // Nothing changed: still submitted, no items.
    assert_eq!(ok(w.owner.change(cr.id).await).state, "submitted");
    assert!(items(&w.owner, &[]).await.is_empty());

    // Editing a submitted change, or another organisation's change.
    let edit = EditChangeRequest {
        title: Some("Tiêu đề mới".into()),
        ..Default::default()
    };
    assert_eq!(problem(w.owner.edit_change(cr.id, &edit).await).status, 409);
    assert_eq!(
        problem(w.other_owner.edit_change(cr.id, &edit).await).status,
        404
    );

    // Approved with one condition: the item's own refusals.
    let signed = ok(w
        .reviewer
        .sign_off(
            cr.id,
            &with_conditions(&base, vec!["Báo cáo sau 30 ngày".into()]),
        )
        .await);
    assert_eq!(signed.state, "approved");
    let item = items(&w.owner, &[]).await.remove(0);
    let p = problem(w.reviewer.client().verify(item.id, true, "").await);
    assert_eq!(
        (p.status, p.code.as_str()),
        (409, "illegal_transition"),
        "not fulfilled yet"
    );
    let p = problem(w.owner.fulfil(item.id, &"x".repeat(10_001)).await);
    assert_eq!((p.status, p.errors[0].field.as_str()), (422, "evidence"));
    let p = problem(w.owner.verify(item.id, true, "").await);
    assert_eq!(p.status, 403, "an owner never verifies");
    assert_eq!(ok(w.owner.remediation(item.id).await).state, "open");
    ok(w.owner.fulfil(item.id, "Đã báo cáo").await);
    assert_eq!(
        problem(w.owner.fulfil(item.id, "lần nữa").await).status,
        409
    );
    // Unknown filters are refused by name.
    let p = problem(w.owner.remediations(&[("state", "done".into())]).await);
    assert_eq!((p.status, p.errors[0].field.as_str()), (422, "state"));
}

/// Sets an item's due date in the database: a clock moved forward, seen from the item.
async fn backdate(t: &TestApp, id: i64, due: NaiveDate) {
    use changegate_store::sea_orm::{ActiveModelTrait, ActiveValue::Set};
    let row = rem::Entity::find_by_id(id)
        .one(&t.app.db)
        .await
        .unwrap()
        .unwrap();
    let mut am: rem::ActiveModel = row.into();
    am.due = Set(due);
    am.update(&t.app.db).await.unwrap();
}

#[tokio::test]
async fn an_overdue_high_condition_closes_the_gate_until_pa05_verifies_it() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    let cr = ok(w
        .owner
        .file_change(&change("TTHC", &[], vec![git(&c, &tr)]))
        .await);
    ok(w.owner.submit(cr.id).await);
    let due = today() + Duration::days(5);
    let s = with_conditions(
        &sign_off_all(&cr, "pass"),
        vec![
            condition("Bổ sung CO/CQ", Some("high"), Some(due.to_string())),
            condition("Rà soát nhật ký", Some("medium"), Some(due.to_string())),
        ],
    );
    ok(w.reviewer.sign_off(cr.id, &s).await);
    let list = items(&w.owner, &[]).await;
    let high = list.iter().find(|i| i.severity == "high").unwrap().id;
    let medium = list.iter().find(|i| i.severity == "medium").unwrap().id;
    // Both fall due in the past (before the gate first loads the system).
    backdate(&t, high, today() - Duration::days(1)).await;
    backdate(&t, medium, today() - Duration::days(1)).await;
    let d = ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await);
    assert_eq!(d.codes(), ["condition_overdue"], "{d:?}");
    assert!(d.reasons[0].message.contains(&format!("#{high}")));
    assert!(
        !d.reasons[0].message.contains(&format!("#{medium}")),
        "medium does not close the gate"
    );
    let overdue = items(&w.owner, &[("overdue", "true")]).await;
    assert_eq!(overdue.len(), 2);
    // Fulfilled is not enough: PA05 verifies.
    ok(w.owner.fulfil(high, "Đã bổ sung").await);
    let d = ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await);
    assert_eq!(d.codes(), ["condition_overdue"]);
    ok(w.reviewer.client().verify(high, true, "Đã kiểm tra").await);
    let d = ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await);
    assert!(d.allowed(), "{d:?}");
}

#[tokio::test]
async fn reminders_and_overdue_notices_are_sent_once_each() {
    let t = spawn_app().await;
    let w = t.world().await;
    let cr = w.submitted("TTHC").await;
    let s = with_conditions(
        &sign_off_all(&cr, "pass"),
        vec![
            condition(
                "Sắp đến hạn",
                Some("high"),
                Some((today() + Duration::days(3)).to_string()),
            ),
            condition(
                "Còn xa",
                Some("low"),
                Some((today() + Duration::days(60)).to_string()),
            ),
            condition("Quá hạn", Some("low"), Some(today().to_string())),
        ],
    );
    ok(w.reviewer.sign_off(cr.id, &s).await);
    let overdue = items(&w.owner, &[]).await;
    let late = overdue.iter().find(|i| i.text == "Quá hạn").unwrap().id;
    backdate(&t, late, today() - Duration::days(2)).await;
    // Two sweeps (as two replicas would run them): one reminder and one notice, not two.
    let (a, b) = tokio::join!(
        t.app.review_sweep(chrono::Utc::now()),
        t.app.review_sweep(chrono::Utc::now())
    );
    a.unwrap();
    b.unwrap();
    t.app.review_sweep(chrono::Utc::now()).await.unwrap();
    let count = |action: &'static str| {
        let db = t.app.db.clone();
        async move {
            audit_event::Entity::find()
                .filter(audit_event::Column::Action.eq(action))
                .count(&db)
                .await
                .unwrap()
        }
    };
    assert_eq!(count("remediation.due_soon_notice").await, 1);
    assert_eq!(count("remediation.overdue_notice").await, 1);
}

#[tokio::test]
async fn a_concurrent_fulfil_and_verify_end_in_one_consistent_state_audited_once() {
    let t = spawn_app().await;
    let w = t.world().await;
    let cr = w.submitted("TTHC").await;
    let s = with_conditions(&sign_off_all(&cr, "pass"), vec!["Điều kiện".into()]);
    ok(w.reviewer.sign_off(cr.id, &s).await);
    let id = items(&w.owner, &[]).await[0].id;
    for _ in 0..5 {
        let (f1, f2) = tokio::join!(w.owner.fulfil(id, "Lần A"), w.owner2.fulfil(id, "Lần B"));
        assert_eq!(
            [f1.is_ok(), f2.is_ok()].iter().filter(|x| **x).count(),
            1,
            "exactly one fulfilment of an open item wins"
        );
        let (v1, v2) = tokio::join!(
            w.reviewer.client().verify(id, false, "Chưa đạt"),
            w.reviewer2.client().verify(id, false, "Chưa đạt")
        );
        assert_eq!([v1.is_ok(), v2.is_ok()].iter().filter(|x| **x).count(), 1);
    }
    let full = ok(w.auditor.remediation(id).await);
    assert_eq!(full.state, "reopened");
    let actions: Vec<&str> = full.history.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions.len(), 11, "{actions:?}");
    assert_eq!(actions.iter().filter(|a| **a == "fulfil").count(), 5);
    assert_eq!(actions.iter().filter(|a| **a == "reopen").count(), 5);
}
