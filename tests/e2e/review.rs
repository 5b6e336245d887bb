//! Evaluation by PA05: quorum, separation of duties, rounds, the checklist.

use changegate_api::{ItemAnswer, NewSignOff};
use changegate_tests::*;

#[tokio::test]
async fn a_level_4_change_needs_two_distinct_reviewers() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    let cr = ok(w
        .owner
        .file_change(&change("DAT-DAI", &[], vec![git(&c, &tr)]))
        .await);
    assert_eq!(cr.quorum, 2);
    ok(w.owner.submit(cr.id).await);
    let first = ok(w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
    assert_eq!(first.state, "submitted");
    let d = ok(w.ci.gate(&ask_commit("DAT-DAI", "production", &c)).await);
    assert_eq!(d.codes(), ["pending_evaluation"]);

    let again = problem(w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
    assert_eq!((again.status, again.code.as_str()), (409, "already_signed"));

    let second = ok(w
        .reviewer2
        .sign_off(cr.id, &sign_off_all(&cr, "pass"))
        .await);
    assert_eq!(second.state, "approved");
    assert_eq!(second.sign_offs.len(), 2);
    assert!(ok(w.ci.gate(&ask_commit("DAT-DAI", "production", &c)).await).allowed());
}

#[tokio::test]
async fn a_level_3_change_is_approved_by_one_reviewer() {
    let t = spawn_app().await;
    let w = t.world().await;
    let cr = ok(w
        .owner
        .file_change(&change(
            "TTHC",
            &[],
            vec![git(&random_oid(), &random_oid())],
        ))
        .await);
    assert_eq!(cr.quorum, 1);
    ok(w.owner.submit(cr.id).await);
    let signed = ok(w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
    assert_eq!(signed.state, "approved");
    assert!(signed.approved_at.is_some() && signed.valid_until > signed.approved_at);
}

#[tokio::test]
async fn an_owner_cannot_sign_off_a_change() {
    let t = spawn_app().await;
    let w = t.world().await;
    let cr = ok(w
        .owner
        .file_change(&change(
            "TTHC",
            &[],
            vec![git(&random_oid(), &random_oid())],
        ))
        .await);
    ok(w.owner.submit(cr.id).await);
    for who in [&w.owner, &w.owner2] {
        let p = problem(who.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
        assert_eq!((p.status, p.code.as_str()), (403, "forbidden"));
    }
    assert_eq!(ok(w.owner.change(cr.id).await).state, "submitted");
}

#[tokio::test]
async fn after_changes_are_requested_the_next_round_ignores_earlier_sign_offs() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    let cr = ok(w
        .owner
        .file_change(&change("DAT-DAI", &[], vec![git(&c, &tr)]))
        .await);
    ok(w.owner.submit(cr.id).await);
    let first = ok(w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
    assert_eq!((first.state.as_str(), first.round), ("submitted", 0));

    let back = ok(w
        .reviewer2
        .request_changes(cr.id, "Bổ sung sơ đồ kiến trúc sau thay đổi")
        .await);
    assert_eq!((back.state.as_str(), back.round), ("draft", 1));
    let d = ok(w.ci.gate(&ask_commit("DAT-DAI", "production", &c)).await);
    assert_eq!(d.codes(), ["no_approved_change"]);

    ok(w.owner.submit(cr.id).await);
    // Only one pass in this round: not yet approved, although reviewer passed in round 0.
    let one = ok(w
        .reviewer2
        .sign_off(cr.id, &sign_off_all(&cr, "pass"))
        .await);
    assert_eq!((one.state.as_str(), one.round), ("submitted", 1));
    let d = ok(w.ci.gate(&ask_commit("DAT-DAI", "production", &c)).await);
    assert_eq!(d.codes(), ["pending_evaluation"]);
    // The first reviewer may sign again in the new round, and that completes the quorum.
    let two = ok(w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
    assert_eq!(two.state, "approved");
    assert_eq!(
        two.sign_offs.iter().map(|s| s.round).collect::<Vec<_>>(),
        [0, 1, 1]
    );
    assert!(ok(w.ci.gate(&ask_commit("DAT-DAI", "production", &c)).await).allowed());
}

#[tokio::test]
async fn a_sign_off_that_leaves_a_checklist_item_unanswered_is_refused_naming_it() {
    let t = spawn_app().await;
    let w = t.world().await;
    let cr = ok(w
        .owner
        .file_change(&change(
            "TTHC",
            &[],
            vec![git(&random_oid(), &random_oid())],
        ))
        .await);
    ok(w.owner.submit(cr.id).await);
    let mut s = sign_off_all(&cr, "pass");
    let missing = s.checklist.remove(3).item;
    let p = problem(w.reviewer.sign_off(cr.id, &s).await);
    assert_eq!((p.status, p.code.as_str()), (422, "validation_failed"));
    assert_eq!(p.errors[0].field, "checklist");
    assert!(p.errors[0].message.contains(&missing), "{p:?}");
    assert_eq!(ok(w.owner.change(cr.id).await).state, "submitted");
}

#[tokio::test]
async fn a_pass_over_a_failed_checklist_item_is_refused() {
    let t = spawn_app().await;
    let w = t.world().await;
    let cr = ok(w
        .owner
        .file_change(&change(
            "TTHC",
            &[],
            vec![git(&random_oid(), &random_oid())],
        ))
        .await);
    ok(w.owner.submit(cr.id).await);
    let mut s = sign_off_all(&cr, "pass");
    s.checklist[0] = ItemAnswer {
        item: s.checklist[0].item.clone(),
        result: "fail".into(),
        note: "Còn tài khoản dùng mật khẩu mặc định".into(),
    };
    let p = problem(w.reviewer.sign_off(cr.id, &s).await);
    assert_eq!((p.status, p.code.as_str()), (422, "validation_failed"));
    assert_eq!(p.errors[0].field, "conclusion");

    // A failed item needs a note.
    let no_note = NewSignOff {
        conclusion: "fail".into(),
        checklist: s
            .checklist
            .iter()
            .map(|a| ItemAnswer {
                note: String::new(),
                ..a.clone()
            })
            .collect(),
        findings: vec![],
        conditions: vec![],
        second_factor_code: None,
    };
    let p = problem(w.reviewer.sign_off(cr.id, &no_note).await);
    assert_eq!((p.status, p.code.as_str()), (422, "validation_failed"));
    assert_eq!(p.errors[0].field, "checklist[0].note");
    let now = ok(w.owner.change(cr.id).await);
    assert_eq!((now.state.as_str(), now.sign_offs.len()), ("submitted", 0));
}

#[tokio::test]
async fn an_auditor_and_the_ci_cannot_sign_off() {
    let t = spawn_app().await;
    let w = t.world().await;
    let cr = ok(w
        .owner
        .file_change(&change(
            "TTHC",
            &[],
            vec![git(&random_oid(), &random_oid())],
        ))
        .await);
    ok(w.owner.submit(cr.id).await);
    for who in [&w.auditor, &w.ci] {
        let p = problem(who.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
        assert_eq!((p.status, p.code.as_str()), (403, "forbidden"));
    }
}

#[tokio::test]
async fn a_reviewer_cannot_be_made_a_member_of_an_owner_organisation() {
    let t = spawn_app().await;
    let w = t.world().await;
    let p = problem(
        t.admin
            .create_user(&changegate_api::NewUser {
                username: "reviewer.in.owner".into(),
                display_name: "Người đánh giá sai đơn vị".into(),
                org: "STNMT".into(),
                role: "reviewer".into(),
            })
            .await,
    );
    assert_eq!((p.status, p.code.as_str()), (422, "validation_failed"));
    assert_eq!(p.errors[0].field, "role");
    // Nor an owner in PA05.
    let p = problem(
        t.admin
            .create_user(&changegate_api::NewUser {
                username: "owner.in.pa05".into(),
                display_name: "Chủ quản sai đơn vị".into(),
                org: "PA05".into(),
                role: "owner".into(),
            })
            .await,
    );
    assert_eq!(p.errors[0].field, "role");
    drop(w);
}
