//! The gate's index holds only live content (issue 15): approvals not yet expired and changes
//! awaiting evaluation. Content whose changes are no longer live (an expired or revoked
//! approval, a failed evaluation) is answered from the database, with exactly the reasons a
//! server that held every change gave, whether the index was loaded before the changes happened
//! (hot, kept up to date by the follower) or after a restart (cold).

use changegate_api::{GateDecision, GateParams, NewToken};
use changegate_app::{App, Principal};
use changegate_client::Client;
use changegate_domain::change::Command;
use changegate_store::entity::change_request as cr;
use changegate_store::sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use changegate_tests::*;
use std::sync::Arc;

/// Moves a change request's `valid_until` into the past directly in the database.
async fn lapse(app: &App, id: i64) {
    let row = cr::Entity::find_by_id(id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("no change request {id}"));
    let mut am: cr::ActiveModel = row.into();
    am.valid_until = Set(Some(chrono::Utc::now() - chrono::Duration::days(1)));
    am.update(&app.db).await.unwrap();
}

/// A second server on the same database (a restart: its index is cold), and the CI's client
/// for it.
struct Restarted {
    app: Arc<App>,
    ci: Client,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn restart(t: &TestApp) -> Restarted {
    let (app, url, stop) = serve(&config(t.dir.path(), &t.database_url)).await;
    let token = app
        .create_token(
            &Principal::operator(),
            "ci.stnmt",
            NewToken {
                name: "after restart".into(),
                expires_in_days: Some(1),
            },
        )
        .await
        .unwrap();
    let ci = Client::new(&url, Some(token.token)).unwrap();
    Restarted {
        app,
        ci,
        _stop: stop,
    }
}

/// How many change requests the index of `app` holds for TTHC, once its load (in the
/// background after the first question) is done.
async fn live(app: &App) -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        if let Some(n) = app.gate.live_changes("TTHC") {
            return n;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the index of TTHC was not loaded within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// What a user of the gate notices: the decision, every reason (code and sentence) and the
/// change request named.
fn seen(d: &GateDecision) -> (bool, Vec<(String, String)>, Option<i64>) {
    (
        d.allowed(),
        d.reasons
            .iter()
            .map(|r| (r.code.as_str().to_owned(), r.message.clone()))
            .collect(),
        d.change_request,
    )
}

fn ask_git(commit: &str, tree: &str) -> GateParams {
    let mut p = ask_commit("TTHC", "production", commit);
    p.tree = Some(tree.to_owned());
    p
}

#[tokio::test]
async fn an_expired_approval_still_answers_approval_expired_after_a_restart() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    // The gate loads TTHC before the change exists: what follows reaches it through the follower.
    assert_eq!(
        ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await).codes(),
        ["no_approved_change"]
    );
    let cr = t
        .approved(&w, &change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await;
    assert!(ok(w.ci.gate(&ask_git(&c, &tr)).await).allowed());
    assert_eq!(live(&t.app).await, 1);
    lapse(&t.app, cr.id).await;
    let expired = t
        .app
        .act_on_change(None, cr.id, Command::Expire)
        .await
        .unwrap();
    assert_eq!(expired.state, "expired");
    let hot = ok(w.ci.gate(&ask_git(&c, &tr)).await);
    assert_eq!(hot.codes(), ["approval_expired"]);
    assert!(!hot.allowed());
    // The expired approval left the index.
    assert_eq!(live(&t.app).await, 0);

    let r = restart(&t).await;
    let cold = ok(r.ci.gate(&ask_git(&c, &tr)).await);
    assert_eq!(cold.codes(), ["approval_expired"]);
    assert_eq!(seen(&cold), seen(&hot));
    // The restarted index never held it.
    assert_eq!(live(&r.app).await, 0);
    // Asked by commit alone or by tree alone, the same.
    let by_tree = GateParams {
        commit: None,
        ..ask_git(&c, &tr)
    };
    assert_eq!(
        seen(&ok(r.ci.gate(&by_tree).await)),
        seen(&ok(w.ci.gate(&by_tree).await))
    );
    assert_eq!(ok(r.ci.gate(&by_tree).await).codes(), ["approval_expired"]);
}

#[tokio::test]
async fn an_approval_past_its_validity_but_not_yet_marked_expired_answers_the_same_cold() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    let cr = t
        .approved(&w, &change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await;
    lapse(&t.app, cr.id).await;
    // Loaded after the lapse: the index leaves it out, the database answers.
    let hot = ok(w.ci.gate(&ask_git(&c, &tr)).await);
    assert_eq!(hot.codes(), ["approval_expired"]);
    assert_eq!(live(&t.app).await, 0);
    let r = restart(&t).await;
    assert_eq!(seen(&ok(r.ci.gate(&ask_git(&c, &tr)).await)), seen(&hot));
}

#[tokio::test]
async fn a_rejected_change_answers_evaluation_failed_hot_and_cold() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    assert_eq!(
        ok(w.ci.gate(&ask_git(&c, &tr)).await).codes(),
        ["no_approved_change"]
    );
    let cr = ok(w
        .owner
        .file_change(&change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await);
    ok(w.owner.submit(cr.id).await);
    assert_eq!(
        ok(w.ci.gate(&ask_git(&c, &tr)).await).codes(),
        ["pending_evaluation"]
    );
    assert_eq!(live(&t.app).await, 1);
    let signed = ok(w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "fail")).await);
    assert_eq!(signed.state, "rejected");
    let hot = ok(w.ci.gate(&ask_git(&c, &tr)).await);
    assert_eq!(hot.codes(), ["evaluation_failed"]);
    assert_eq!(live(&t.app).await, 0);
    let r = restart(&t).await;
    let cold = ok(r.ci.gate(&ask_git(&c, &tr)).await);
    assert_eq!(cold.codes(), ["evaluation_failed"]);
    assert_eq!(seen(&cold), seen(&hot));
}

#[tokio::test]
async fn old_content_decides_identically_hot_and_cold_and_new_changes_to_it_are_seen() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr, d) = (random_oid(), random_oid(), random_digest());
    // Loaded first, so that every change below reaches the hot index through the follower.
    ok(w.ci.gate(&ask_git(&c, &tr)).await);
    let subjects = || vec![git(&c, &tr), artifact(&d)];
    // The same content in four changes: one rejected, one revoked, one expired, one for
    // staging only (approved).
    let rejected = ok(w
        .owner
        .file_change(&change("TTHC", &["production"], subjects()))
        .await);
    ok(w.owner.submit(rejected.id).await);
    ok(w.reviewer
        .sign_off(rejected.id, &sign_off_all(&rejected, "fail"))
        .await);
    let revoked = t
        .approved(&w, &change("TTHC", &["production"], subjects()))
        .await;
    ok(w.reviewer
        .revoke(
            revoked.id,
            "Phát hiện tài khoản dùng chung sau khi phê duyệt",
        )
        .await);
    let expired = t
        .approved(&w, &change("TTHC", &["production"], subjects()))
        .await;
    lapse(&t.app, expired.id).await;
    t.app
        .act_on_change(None, expired.id, Command::Expire)
        .await
        .unwrap();
    t.approved(&w, &change("TTHC", &["staging"], subjects()))
        .await;
    let questions = [
        ask_git(&c, &tr),
        ask_commit("TTHC", "production", &c),
        GateParams {
            commit: None,
            tree: None,
            artifact: Some(d.clone()),
            ..ask_commit("TTHC", "production", &c)
        },
        GateParams {
            artifact: Some(d.clone()),
            ..ask_git(&c, &tr)
        },
        // The approved commit with another tree is not that content.
        ask_git(&c, &random_oid()),
        GateParams {
            env: "staging".into(),
            ..ask_git(&c, &tr)
        },
    ];
    let mut hot = vec![];
    for q in &questions {
        // Twice: the second answer comes from the cache of database answers.
        let first = seen(&ok(w.ci.gate(q).await));
        assert_eq!(seen(&ok(w.ci.gate(q).await)), first);
        hot.push(first);
    }
    assert_eq!(
        hot[0].1.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        // In the order the changes were filed.
        [
            "evaluation_failed",
            "approval_revoked",
            "approval_expired",
            "environment_not_covered"
        ]
    );
    assert!(hot[5].0, "the staging approval lets it through to staging");
    // Only the staging approval is live.
    assert_eq!(live(&t.app).await, 1);
    let r = restart(&t).await;
    // Cold: the first answers come from the database while the index loads; then from the
    // index. Both are the hot server's.
    for (q, h) in questions.iter().zip(&hot) {
        assert_eq!(&seen(&ok(r.ci.gate(q).await)), h, "{q:?}");
    }
    assert_eq!(live(&r.app).await, 1);
    for (q, h) in questions.iter().zip(&hot) {
        assert_eq!(&seen(&ok(r.ci.gate(q).await)), h, "{q:?}");
    }

    // A new change of that content is seen at once by the hot server, whose answers about the
    // old content were cached: pending, then allowed.
    let again = ok(w
        .owner
        .file_change(&change("TTHC", &["production"], subjects()))
        .await);
    ok(w.owner.submit(again.id).await);
    let pending = ok(w.ci.gate(&ask_git(&c, &tr)).await);
    assert!(
        pending.codes().contains(&"pending_evaluation"),
        "{pending:?}"
    );
    assert!(
        pending.codes().contains(&"evaluation_failed"),
        "{pending:?}"
    );
    let again = ok(w.owner.change(again.id).await);
    ok(w.reviewer
        .sign_off(again.id, &sign_off_all(&again, "pass"))
        .await);
    let allowed = ok(w.ci.gate(&ask_git(&c, &tr)).await);
    assert!(allowed.allowed(), "{allowed:?}");
    assert_eq!(allowed.change_request, Some(again.id));
}
