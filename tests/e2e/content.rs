//! Approvals are bound to content: commit, tree, artifact digest.

use changegate_api::GateParams;
use changegate_tests::*;

#[tokio::test]
async fn a_rebased_commit_with_the_approved_tree_is_allowed_when_the_tree_is_given() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    let cr = t
        .approved(&w, &change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await;
    let rebased = random_oid();
    let d = ok(w
        .ci
        .gate(&GateParams {
            wait: None,
            nonce: None,
            commit: Some(rebased.clone()),
            tree: Some(tr.clone()),
            ..ask("TTHC", "production")
        })
        .await);
    assert!(d.allowed(), "{d:?}");
    assert_eq!(d.change_request, Some(cr.id));
    assert_eq!(d.valid_until, cr.valid_until);
    // Without the tree the new commit is unknown content.
    let d = ok(w.ci.gate(&ask_commit("TTHC", "production", &rebased)).await);
    assert_eq!(d.codes(), ["no_approved_change"]);
}

#[tokio::test]
async fn a_commit_with_a_different_tree_is_denied() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    t.approved(&w, &change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await;
    let d = ok(w
        .ci
        .gate(&GateParams {
            wait: None,
            nonce: None,
            commit: Some(random_oid()),
            tree: Some(random_oid()),
            ..ask("TTHC", "production")
        })
        .await);
    assert!(!d.allowed());
    assert_eq!(d.codes(), ["no_approved_change"]);
}

#[tokio::test]
async fn an_approved_artifact_digest_is_allowed_and_any_other_digest_is_denied() {
    let t = spawn_app().await;
    let w = t.world().await;
    let digest = random_digest();
    let cr = t
        .approved(
            &w,
            &change("TTHC", &["production"], vec![artifact(&digest)]),
        )
        .await;
    let d = ok(w
        .ci
        .gate(&GateParams {
            wait: None,
            nonce: None,
            artifact: Some(digest.clone()),
            ..ask("TTHC", "production")
        })
        .await);
    assert!(d.allowed(), "{d:?}");
    assert_eq!(d.change_request, Some(cr.id));
    let d = ok(w
        .ci
        .gate(&GateParams {
            wait: None,
            nonce: None,
            artifact: Some(random_digest()),
            ..ask("TTHC", "production")
        })
        .await);
    assert_eq!(d.codes(), ["no_approved_change"]);
}

#[tokio::test]
async fn asking_for_a_commit_and_an_artifact_denies_when_only_one_of_them_is_approved() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    let digest = random_digest();
    t.approved(&w, &change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await;
    let d = ok(w
        .ci
        .gate(&GateParams {
            wait: None,
            nonce: None,
            commit: Some(c.clone()),
            artifact: Some(random_digest()),
            ..ask("TTHC", "production")
        })
        .await);
    assert!(!d.allowed());
    assert_eq!(d.codes(), ["no_approved_change"]);

    // And the other way round: the artifact approved, the commit not.
    t.approved(
        &w,
        &change("TTHC", &["production"], vec![artifact(&digest)]),
    )
    .await;
    let d = ok(w
        .ci
        .gate(&GateParams {
            wait: None,
            nonce: None,
            commit: Some(random_oid()),
            artifact: Some(digest.clone()),
            ..ask("TTHC", "production")
        })
        .await);
    assert_eq!(d.codes(), ["no_approved_change"]);

    // Both approved (by two change requests): allowed.
    let d = ok(w
        .ci
        .gate(&GateParams {
            wait: None,
            nonce: None,
            commit: Some(c),
            artifact: Some(digest),
            ..ask("TTHC", "production")
        })
        .await);
    assert!(d.allowed(), "{d:?}");
}

#[tokio::test]
async fn an_approval_of_one_system_does_not_allow_the_same_content_on_another() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    t.approved(&w, &change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await;
    let d = ok(w.ci.gate(&ask_commit("DAT-DAI", "production", &c)).await);
    assert_eq!(d.codes(), ["no_approved_change"]);
}

#[tokio::test]
async fn the_approved_commit_asked_with_another_tree_is_not_that_content() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    t.approved(&w, &change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await;
    let mut q = ask_commit("TTHC", "production", &c);
    q.tree = Some(random_oid());
    let d = w.ci.gate(&q).await.unwrap_or_else(|e| panic!("{e}"));
    assert!(!d.allowed(), "{d:?}");
    assert_eq!(d.codes(), ["no_approved_change"]);
    q.tree = Some(tr);
    assert!(
        w.ci.gate(&q)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .allowed()
    );
}
