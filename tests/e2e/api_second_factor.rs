//! Signing off through the API asks the reviewer's second factor: a token alone cannot sign off.
//! A code opens a short step-up window for the account's further API sign-offs; each code is
//! accepted once; wrong codes count towards the lock; a reviewer who never enrolled cannot sign
//! off through the API at all.

use changegate_api::{AuditEvent, ChangeRequest, NewSignOff};
use changegate_tests::*;

fn with_code(cr: &ChangeRequest, code: &str) -> NewSignOff {
    NewSignOff {
        second_factor_code: Some(code.into()),
        ..sign_off_all(cr, "pass")
    }
}

async fn events(t: &TestApp, action: &str) -> Vec<AuditEvent> {
    ok(t.admin.audit(0, 1000).await)
        .events
        .into_iter()
        .filter(|e| e.action == action)
        .collect()
}

async fn state(w: &World, id: i64) -> String {
    ok(w.owner.change(id).await).state
}

#[tokio::test]
async fn a_token_without_a_code_cannot_sign_off_and_a_right_code_opens_a_step_up_window() {
    let t = spawn_app().await;
    let w = t.world().await;
    let cr = w.submitted("TTHC").await;

    // The reviewer's token alone (no code; `Client::sign_off` sends the body as it is).
    let before = t.audit_seq().await;
    let p = problem(
        w.reviewer
            .client()
            .sign_off(cr.id, &sign_off_all(&cr, "pass"))
            .await,
    );
    assert_eq!((p.status, p.code.as_str()), (422, "validation_failed"));
    assert_eq!(p.errors[0].field, "second_factor_code");
    assert_eq!(state(&w, cr.id).await, "submitted");
    assert_eq!(
        t.audit_seq().await,
        before,
        "a refused sign-off records nothing"
    );

    // A right code signs off and is audited as a second factor given through the API.
    let code = w.reviewer.factor().next_code().await;
    let done = ok(w
        .reviewer
        .client()
        .sign_off(cr.id, &with_code(&cr, &code))
        .await);
    assert_eq!(done.state, "approved");
    let given = events(&t, "auth.second_factor").await;
    assert_eq!(given.len(), 1, "{given:?}");
    assert_eq!(given[0].actor, "tran.thi.hoa");
    let after: serde_json::Value =
        serde_json::from_str(given[0].after.as_deref().unwrap()).unwrap();
    assert_eq!(after["via"], "api");
    assert_eq!(after["change_request"], cr.id);

    // The same code again is refused (a code is accepted once), and the change stays as it was.
    let next = w.submitted("TTHC").await;
    let p = problem(
        w.reviewer
            .client()
            .sign_off(next.id, &with_code(&next, &code))
            .await,
    );
    assert_eq!((p.status, p.code.as_str()), (422, "validation_failed"));
    assert_eq!(p.errors[0].field, "second_factor_code");
    assert_eq!(state(&w, next.id).await, "submitted");

    // Within the step-up window the account signs off without a fresh code.
    let later = ok(w
        .reviewer
        .client()
        .sign_off(next.id, &sign_off_all(&next, "pass"))
        .await);
    assert_eq!(later.state, "approved");

    // The window is the account's: the other reviewer still needs a code of their own.
    let third = w.submitted("TTHC").await;
    let p = problem(
        w.reviewer2
            .client()
            .sign_off(third.id, &sign_off_all(&third, "pass"))
            .await,
    );
    assert_eq!(p.errors[0].field, "second_factor_code");
    assert_eq!(state(&w, third.id).await, "submitted");
}

#[tokio::test]
async fn a_bad_sign_off_is_refused_before_the_code_is_used_up() {
    let t = spawn_app().await;
    let w = t.world().await;
    let cr = w.submitted("TTHC").await;
    let code = w.reviewer2.factor().next_code().await;
    // Not every checklist item answered: refused on the checklist, the code left unused.
    let mut bad = with_code(&cr, &code);
    bad.checklist.pop();
    let p = problem(w.reviewer2.client().sign_off(cr.id, &bad).await);
    assert_eq!((p.status, p.code.as_str()), (422, "validation_failed"));
    assert_ne!(p.errors[0].field, "second_factor_code", "{p:?}");
    assert!(events(&t, "auth.second_factor").await.is_empty());
    // The same code then signs off.
    let done = ok(w
        .reviewer2
        .client()
        .sign_off(cr.id, &with_code(&cr, &code))
        .await);
    assert_eq!(done.state, "approved");
}

#[tokio::test]
async fn wrong_codes_are_audited_and_five_in_a_row_lock_the_account() {
    let t = spawn_app().await;
    let w = t.world().await;
    let cr = w.submitted("TTHC").await;
    let right = w.reviewer.factor().next_code().await;
    let wrong = if right == "000000" {
        "111111"
    } else {
        "000000"
    };
    for i in 1..=5 {
        let p = problem(
            w.reviewer
                .client()
                .sign_off(cr.id, &with_code(&cr, wrong))
                .await,
        );
        assert_eq!(
            (p.status, p.code.as_str()),
            (422, "validation_failed"),
            "attempt {i}"
        );
        assert_eq!(p.errors[0].field, "second_factor_code");
    }
    assert_eq!(events(&t, "auth.second_factor_failed").await.len(), 5);
    assert_eq!(
        events(&t, "account.locked").await.len(),
        1,
        "the fifth failure locks"
    );
    // Locked: even the right code is refused, and nothing is signed.
    let p = problem(
        w.reviewer
            .client()
            .sign_off(cr.id, &with_code(&cr, &right))
            .await,
    );
    assert_eq!((p.status, p.code.as_str()), (403, "forbidden"), "{p:?}");
    assert!(
        p.detail.as_deref().unwrap_or("").contains("locked"),
        "{p:?}"
    );
    assert_eq!(state(&w, cr.id).await, "submitted");
}

#[tokio::test]
async fn a_reviewer_who_never_enrolled_a_second_factor_cannot_sign_off_through_the_api() {
    let t = spawn_app().await;
    let w = t.world().await;
    let newcomer = t
        .user("ngo.van.moi", "Ngô Văn Mới", "PA05", "reviewer")
        .await;
    let cr = w.submitted("TTHC").await;
    let p = problem(newcomer.sign_off(cr.id, &with_code(&cr, "123456")).await);
    assert_eq!((p.status, p.code.as_str()), (403, "forbidden"), "{p:?}");
    assert!(
        p.detail
            .as_deref()
            .unwrap_or("")
            .contains("no second factor"),
        "{p:?}"
    );
    assert_eq!(state(&w, cr.id).await, "submitted");
    // Other roles are refused as before, whatever they send.
    let p = problem(w.owner.sign_off(cr.id, &with_code(&cr, "123456")).await);
    assert_eq!(p.status, 403);
}
