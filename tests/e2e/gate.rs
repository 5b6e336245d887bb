//! The gate's reasons, asked through HTTP as the CI client.

use changegate_api::{NewIncident, NewSystem};
use changegate_domain::change::Command;
use changegate_store::entity::change_request as cr;
use changegate_store::sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use changegate_tests::*;

fn incident(severity: &str) -> NewIncident {
    NewIncident {
        detected_at: None,
        national_security: false,
        kind: "abnormal_access".into(),
        severity: severity.into(),
        summary: "Truy cập bất thường từ địa chỉ IP chưa xác định".into(),
    }
}

/// Moves a change request's `valid_until` into the past directly in the database.
async fn lapse(t: &TestApp, id: i64) {
    let row = cr::Entity::find_by_id(id)
        .one(&t.app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no change request {id}"));
    let mut am: cr::ActiveModel = row.into();
    am.valid_until = Set(Some(chrono::Utc::now() - chrono::Duration::days(1)));
    am.update(&t.app.db).await.unwrap_or_else(|e| panic!("{e}"));
}

#[tokio::test]
async fn an_unknown_system_is_denied_as_unknown_system() {
    let t = spawn_app().await;
    let w = t.world().await;
    let d = ok(w
        .ci
        .gate(&ask_commit("KHONG-CO", "production", &random_oid()))
        .await);
    assert!(!d.allowed());
    assert_eq!(d.codes(), ["unknown_system"]);
    assert_eq!(d.change_request, None);
}

#[tokio::test]
async fn content_nobody_filed_is_denied_as_no_approved_change() {
    let t = spawn_app().await;
    let w = t.world().await;
    let d = ok(w
        .ci
        .gate(&ask_commit("TTHC", "production", &random_oid()))
        .await);
    assert_eq!(d.codes(), ["no_approved_change"]);
}

#[tokio::test]
async fn a_draft_does_not_count_and_a_submitted_change_is_pending_evaluation() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    let cr = ok(w
        .owner
        .file_change(&change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await);
    let d = ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await);
    assert_eq!(d.codes(), ["no_approved_change"]);
    ok(w.owner.submit(cr.id).await);
    let d = ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await);
    assert_eq!(d.codes(), ["pending_evaluation"]);
    assert!(!d.allowed());
}

#[tokio::test]
async fn a_failed_evaluation_is_denied_as_evaluation_failed() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    let cr = ok(w
        .owner
        .file_change(&change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await);
    ok(w.owner.submit(cr.id).await);
    let signed = ok(w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "fail")).await);
    assert_eq!(signed.state, "rejected");
    let d = ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await);
    assert_eq!(d.codes(), ["evaluation_failed"]);
}

#[tokio::test]
async fn a_revoked_approval_is_denied_as_approval_revoked() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    let cr = t
        .approved(&w, &change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await;
    assert!(ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await).allowed());
    let revoked = ok(w
        .reviewer
        .revoke(cr.id, "Phát hiện tài khoản dùng chung sau khi phê duyệt")
        .await);
    assert_eq!(revoked.state, "revoked");
    let d = ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await);
    assert_eq!(d.codes(), ["approval_revoked"]);
    assert_eq!(d.change_request, None);
}

#[tokio::test]
async fn an_approval_past_its_validity_is_denied_as_approval_expired_when_the_server_reads_it() {
    // The index reads a system's change requests when the gate is first asked about it, so a
    // lapsed `valid_until` written before that first question is what a (re)started server sees.
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    let cr = t
        .approved(&w, &change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await;
    lapse(&t, cr.id).await;
    let d = ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await);
    assert_eq!(d.codes(), ["approval_expired"]);
    assert!(!d.allowed());
}

#[tokio::test]
async fn an_approval_marked_expired_by_the_scheduler_is_denied_as_approval_expired() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    let cr = t
        .approved(&w, &change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await;
    // The gate has loaded the system and allows.
    assert!(ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await).allowed());
    // Still valid: the scheduler may not expire it.
    let early = t.app.act_on_change(None, cr.id, Command::Expire).await;
    assert!(
        matches!(
            early,
            Err(changegate_app::AppError::Conflict(
                changegate_api::ProblemCode::IllegalTransition,
                _
            ))
        ),
        "{early:?}"
    );
    lapse(&t, cr.id).await;
    let expired = t
        .app
        .act_on_change(None, cr.id, Command::Expire)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(expired.state, "expired");
    let d = ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await);
    assert_eq!(d.codes(), ["approval_expired"]);
}

#[tokio::test]
async fn an_approval_for_production_does_not_cover_staging() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    t.approved(&w, &change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await;
    assert!(ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await).allowed());
    let d = ok(w.ci.gate(&ask_commit("TTHC", "staging", &c)).await);
    assert_eq!(d.codes(), ["environment_not_covered"]);
    // An environment the system does not have at all.
    let d = ok(w.ci.gate(&ask_commit("TTHC", "uat", &c)).await);
    assert!(!d.allowed());
    assert!(d.codes().contains(&"environment_not_covered"), "{d:?}");
}

#[tokio::test]
async fn a_high_incident_closes_the_gate_until_resolved_and_a_low_one_does_not() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    t.approved(&w, &change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await;
    let q = ask_commit("TTHC", "production", &c);
    assert!(ok(w.ci.gate(&q).await).allowed());

    let low = ok(w.owner.report_incident("TTHC", &incident("low")).await);
    assert_eq!(low.status, "open");
    let d = ok(w.ci.gate(&q).await);
    assert!(d.allowed(), "a low incident must not block: {d:?}");

    let high = ok(w.owner.report_incident("TTHC", &incident("high")).await);
    let d = ok(w.ci.gate(&q).await);
    assert_eq!(d.codes(), ["incident_open"]);
    // Another system of the same owner is not affected.
    let d = ok(w.ci.gate(&ask_commit("DAT-DAI", "production", &c)).await);
    assert_eq!(d.codes(), ["no_approved_change"]);

    let resolved = ok(w.reviewer.resolve_incident(high.id).await);
    assert_eq!(resolved.status, "resolved");
    let d = ok(w.ci.gate(&q).await);
    assert!(d.allowed(), "{d:?}");
}

/// Registers a level-3 system of STNMT (production only) last evaluated `days_ago` days ago.
async fn system_reviewed(t: &TestApp, code: &str, days_ago: i64) -> changegate_api::System {
    ok(t.admin
        .create_system(&NewSystem {
            code: code.into(),
            name: "Hệ thống đăng ký hộ tịch".into(),
            owner_org: "STNMT".into(),
            operating_unit: "Trung tâm Công nghệ thông tin".into(),
            level: 3,
            population_db: true,
            environments: vec!["production".into()],
            components: vec![],
            last_review: Some(chrono::Utc::now().date_naive() - chrono::Duration::days(days_ago)),
        })
        .await)
}

#[tokio::test]
async fn a_level_3_system_last_reviewed_over_a_year_ago_is_re_review_overdue() {
    let t = spawn_app().await;
    let w = t.world().await;
    let sys = system_reviewed(&t, "HO-TICH", 400).await;
    assert!(sys.next_review_due.is_some_and(|d| d < chrono::Utc::now()));
    let (c, tr) = (random_oid(), random_oid());
    let d = ok(w.ci.gate(&ask_commit("HO-TICH", "production", &c)).await);
    assert_eq!(d.codes(), ["re_review_overdue", "no_approved_change"]);

    // Reviewed 100 days ago: not overdue.
    system_reviewed(&t, "HO-TICH-2", 100).await;
    t.approved(
        &w,
        &change("HO-TICH-2", &["production"], vec![git(&c, &tr)]),
    )
    .await;
    assert!(ok(w.ci.gate(&ask_commit("HO-TICH-2", "production", &c)).await).allowed());
}

#[tokio::test]
async fn every_reason_that_applies_is_listed() {
    let t = spawn_app().await;
    let w = t.world().await;
    system_reviewed(&t, "HO-TICH", 500).await;
    let (c, tr) = (random_oid(), random_oid());
    let cr = ok(w
        .owner
        .file_change(&change("HO-TICH", &[], vec![git(&c, &tr)]))
        .await);
    ok(w.owner.submit(cr.id).await);
    ok(w.owner
        .report_incident("HO-TICH", &incident("critical"))
        .await);
    let d = ok(w.ci.gate(&ask_commit("HO-TICH", "production", &c)).await);
    assert!(!d.allowed());
    let mut codes = d.codes();
    codes.sort_unstable();
    assert_eq!(
        codes,
        ["incident_open", "pending_evaluation", "re_review_overdue"]
    );
    assert!(d.reasons.iter().all(|r| !r.message.is_empty()), "{d:?}");
}

#[tokio::test]
async fn a_system_registered_after_the_gate_was_asked_about_it_is_no_longer_unknown() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    let d = ok(w.ci.gate(&ask_commit("HO-TICH", "production", &c)).await);
    assert_eq!(d.codes(), ["unknown_system"]);
    system_reviewed(&t, "HO-TICH", 10).await;
    let d = ok(w.ci.gate(&ask_commit("HO-TICH", "production", &c)).await);
    assert_eq!(d.codes(), ["no_approved_change"]);
    t.approved(&w, &change("HO-TICH", &[], vec![git(&c, &tr)]))
        .await;
    assert!(ok(w.ci.gate(&ask_commit("HO-TICH", "production", &c)).await).allowed());
}

fn re_review(system: &str) -> changegate_api::NewChangeRequest {
    let mut c = change(system, &[], vec![]);
    c.kind = "re_review".into();
    c.title = "Kiểm tra, đánh giá lại định kỳ".into();
    c
}

#[tokio::test]
async fn a_passing_re_review_clears_an_overdue_re_review_and_schedules_the_next_one() {
    let t = spawn_app().await;
    let w = t.world().await;
    system_reviewed(&t, "HO-TICH", 400).await;
    let (c, tr) = (random_oid(), random_oid());
    t.approved(&w, &change("HO-TICH", &[], vec![git(&c, &tr)]))
        .await;
    let d = ok(w.ci.gate(&ask_commit("HO-TICH", "production", &c)).await);
    assert_eq!(d.codes(), ["re_review_overdue"]);
    let rr = ok(w.owner.file_change(&re_review("HO-TICH")).await);
    ok(w.owner.submit(rr.id).await);
    ok(w.reviewer.sign_off(rr.id, &sign_off_all(&rr, "pass")).await);
    let d = ok(w.ci.gate(&ask_commit("HO-TICH", "production", &c)).await);
    assert!(d.allowed(), "{d:?}");
    let sys = ok(w.owner.system("HO-TICH").await);
    let today = chrono::Utc::now().date_naive();
    assert_eq!(sys.last_evaluated_on, Some(today));
    let due = sys
        .next_review_due
        .unwrap_or_else(|| panic!("no re-review scheduled: {sys:?}"));
    assert!(
        due.date_naive() > today + chrono::Duration::days(360),
        "{due}"
    );
}

#[tokio::test]
async fn an_approved_change_does_not_restart_the_re_review_clock() {
    let t = spawn_app().await;
    let w = t.world().await;
    let before = system_reviewed(&t, "HO-TICH", 400).await;
    let (c, tr) = (random_oid(), random_oid());
    t.approved(&w, &change("HO-TICH", &[], vec![git(&c, &tr)]))
        .await;
    let after = ok(w.owner.system("HO-TICH").await);
    assert_eq!(after.last_evaluated_on, before.last_evaluated_on);
    assert_eq!(after.next_review_due, before.next_review_due);
}

#[tokio::test]
async fn a_system_registered_without_an_evaluation_starts_its_re_review_clock_at_registration() {
    let t = spawn_app().await;
    let w = t.world().await;
    let today = chrono::Utc::now().date_naive();
    let sys = ok(w.owner.system("TTHC").await);
    assert_eq!(sys.last_evaluated_on, None);
    let due = sys
        .next_review_due
        .unwrap_or_else(|| panic!("no re-review scheduled: {sys:?}"));
    assert!(
        due.date_naive() > today + chrono::Duration::days(360),
        "{due}"
    );
    // Level 4 too (12 months); a passing re-review records the evaluation.
    let rr = ok(w.owner.file_change(&re_review("TTHC")).await);
    ok(w.owner.submit(rr.id).await);
    ok(w.reviewer.sign_off(rr.id, &sign_off_all(&rr, "pass")).await);
    let sys = ok(w.owner.system("TTHC").await);
    assert_eq!(sys.last_evaluated_on, Some(today));
    assert!(sys.next_review_due.is_some(), "{sys:?}");
}

#[tokio::test]
async fn a_failed_re_review_suspends_the_system_until_a_change_passes() {
    let t = spawn_app().await;
    let w = t.world().await;
    let before = system_reviewed(&t, "HO-TICH", 10).await;
    let (c, tr) = (random_oid(), random_oid());
    t.approved(&w, &change("HO-TICH", &[], vec![git(&c, &tr)]))
        .await;
    let rr = ok(w.owner.file_change(&re_review("HO-TICH")).await);
    ok(w.owner.submit(rr.id).await);
    ok(w.reviewer.sign_off(rr.id, &sign_off_all(&rr, "fail")).await);
    let after = ok(w.owner.system("HO-TICH").await);
    assert_eq!(after.status, "suspended");
    assert_eq!(after.last_evaluated_on, before.last_evaluated_on);
    let d = ok(w.ci.gate(&ask_commit("HO-TICH", "production", &c)).await);
    assert_eq!(d.codes(), ["system_suspended"]);
    // A remediation change passes its evaluation: the suspension is lifted.
    let (c2, tr2) = (random_oid(), random_oid());
    t.approved(&w, &change("HO-TICH", &[], vec![git(&c2, &tr2)]))
        .await;
    assert_eq!(ok(w.owner.system("HO-TICH").await).status, "active");
    assert!(ok(w.ci.gate(&ask_commit("HO-TICH", "production", &c2)).await).allowed());
}

#[tokio::test]
async fn a_re_review_cannot_skip_its_evaluation() {
    let t = spawn_app().await;
    let w = t.world().await;
    let rr = ok(w.owner.file_change(&re_review("TTHC")).await);
    let rr = ok(w.owner.submit(rr.id).await);
    assert_eq!(rr.state, "submitted");
}

#[tokio::test]
async fn a_change_waiting_for_evaluation_for_production_is_not_pending_for_staging() {
    // A pipeline that waits on pending_evaluation would wait for an approval that can never
    // cover the environment it asks about.
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    let cr = ok(w
        .owner
        .file_change(&change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await);
    ok(w.owner.submit(cr.id).await);
    let d = ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await);
    assert_eq!(d.codes(), ["pending_evaluation"]);
    let d = ok(w.ci.gate(&ask_commit("TTHC", "staging", &c)).await);
    assert_eq!(d.codes(), ["environment_not_covered"]);
}
