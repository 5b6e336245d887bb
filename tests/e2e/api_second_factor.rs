//! Signing off through the API asks the reviewer's second factor: a token alone cannot sign off.
//! A code opens a short step-up window for that token's further API sign-offs; each code is
//! accepted once; wrong codes count towards the lock, one by one even when sent at once; a
//! reviewer who never enrolled cannot sign off through the API at all.

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
    // A replay cannot succeed, so it is not counted as a guess (a script resending its code does
    // not lock its owner out).
    assert!(events(&t, "auth.second_factor_failed").await.is_empty());

    // Within the step-up window the token signs off without a fresh code.
    let later = ok(w
        .reviewer
        .client()
        .sign_off(next.id, &sign_off_all(&next, "pass"))
        .await);
    assert_eq!(later.state, "approved");

    // The window is the token's: another token of the same reviewer (an old script's, a leaked
    // one) still needs a code, and so does the other reviewer.
    let other_token = t.reviewer_on(&t.url, "tran.thi.hoa").await;
    let third = w.submitted("TTHC").await;
    for (who, client) in [
        ("another token of tran.thi.hoa", other_token.client()),
        ("do.minh.duc", w.reviewer2.client()),
    ] {
        let p = problem(
            client
                .sign_off(third.id, &sign_off_all(&third, "pass"))
                .await,
        );
        assert_eq!(p.errors[0].field, "second_factor_code", "{who}: {p:?}");
    }
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
async fn wrong_codes_are_audited_and_five_in_a_row_lock_the_account_even_inside_the_window() {
    let t = spawn_app().await;
    let w = t.world().await;
    // A right code opens the token's window ...
    let first = w.submitted("TTHC").await;
    let code = w.reviewer.factor().next_code().await;
    ok(w.reviewer
        .client()
        .sign_off(first.id, &with_code(&first, &code))
        .await);
    // ... then five wrong codes in a row.
    let cr = w.submitted("TTHC").await;
    for i in 1..=5 {
        let wrong = w.reviewer.factor().wrong_code(i);
        let p = problem(
            w.reviewer
                .client()
                .sign_off(cr.id, &with_code(&cr, &wrong))
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
    // Locked: neither the open window nor a right code signs, and nothing is signed.
    let right = w.reviewer.factor().next_code().await;
    for (what, body) in [
        ("no code, inside the window", sign_off_all(&cr, "pass")),
        ("a right code", with_code(&cr, &right)),
    ] {
        let p = problem(w.reviewer.client().sign_off(cr.id, &body).await);
        assert_eq!(
            (p.status, p.code.as_str()),
            (403, "account_locked"),
            "{what}: {p:?}"
        );
        assert!(
            p.detail.as_deref().unwrap_or("").contains("locked"),
            "{what}: {p:?}"
        );
    }
    // Requesting changes is refused alike, with the time the lock lifts.
    let p = problem(
        w.reviewer
            .client()
            .request_changes(cr.id, "Thiếu kết quả kiểm thử bảo mật")
            .await,
    );
    assert_eq!(
        (p.status, p.code.as_str()),
        (403, "account_locked"),
        "{p:?}"
    );
    let year = chrono::Utc::now().format("%Y").to_string();
    assert!(
        p.detail.as_deref().unwrap_or("").contains(&year),
        "the refusal says when the lock lifts: {p:?}"
    );
    assert_eq!(state(&w, cr.id).await, "submitted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_guesses_sent_at_once_are_counted_one_by_one_and_the_fifth_locks() {
    let t = spawn_app().await;
    let w = t.world().await;
    let cr = w.submitted("TTHC").await;
    let guesses: Vec<_> = (1..=20)
        .map(|i| {
            let (client, body) = (
                w.reviewer.client().clone(),
                with_code(&cr, &w.reviewer.factor().wrong_code(i * 1000)),
            );
            tokio::spawn(async move { client.sign_off(cr.id, &body).await })
        })
        .collect();
    let mut statuses = vec![];
    for g in guesses {
        statuses.push(problem(g.await.unwrap()).status);
    }
    // Five are counted (422) and lock the account; the rest find it locked (403).
    statuses.sort_unstable();
    assert_eq!(
        statuses.iter().filter(|s| **s == 422).count(),
        5,
        "{statuses:?}"
    );
    assert_eq!(
        statuses.iter().filter(|s| **s == 403).count(),
        15,
        "{statuses:?}"
    );
    assert_eq!(events(&t, "auth.second_factor_failed").await.len(), 5);
    assert_eq!(events(&t, "account.locked").await.len(), 1);
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
