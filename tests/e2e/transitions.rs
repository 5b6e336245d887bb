//! The change request's life cycle: illegal transitions, withdrawal, editing drafts, visibility.

use changegate_api::EditChangeRequest;
use changegate_tests::*;

fn conflict(p: &changegate_api::Problem) {
    assert_eq!(
        (p.status, p.code.as_str()),
        (409, "illegal_transition"),
        "{p:?}"
    );
}

#[tokio::test]
async fn submitting_twice_is_an_illegal_transition() {
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
    assert_eq!(ok(w.owner.submit(cr.id).await).state, "submitted");
    conflict(&problem(w.owner.submit(cr.id).await));
}

#[tokio::test]
async fn signing_off_a_draft_is_an_illegal_transition() {
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
    conflict(&problem(
        w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "pass")).await,
    ));
    assert_eq!(ok(w.owner.change(cr.id).await).state, "draft");
}

#[tokio::test]
async fn an_approved_change_cannot_be_withdrawn_but_a_submitted_one_can() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    let approved = t
        .approved(&w, &change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await;
    conflict(&problem(w.owner.withdraw(approved.id).await));
    assert!(ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await).allowed());

    let (c2, tr2) = (random_oid(), random_oid());
    let cr = ok(w
        .owner
        .file_change(&change("TTHC", &[], vec![git(&c2, &tr2)]))
        .await);
    ok(w.owner.submit(cr.id).await);
    assert_eq!(
        ok(w.ci.gate(&ask_commit("TTHC", "production", &c2)).await).codes(),
        ["pending_evaluation"]
    );
    let withdrawn = ok(w.owner2.withdraw(cr.id).await);
    assert_eq!(withdrawn.state, "withdrawn");
    assert_eq!(
        ok(w.ci.gate(&ask_commit("TTHC", "production", &c2)).await).codes(),
        ["no_approved_change"]
    );
    // A withdrawn change is final.
    conflict(&problem(w.owner.submit(cr.id).await));
    conflict(&problem(
        w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "pass")).await,
    ));
}

#[tokio::test]
async fn a_draft_can_be_edited_and_a_submitted_change_cannot() {
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
    let (c, tr) = (random_oid(), random_oid());
    let edited = ok(w
        .owner2
        .edit_change(
            cr.id,
            &EditChangeRequest {
                title: Some("Thay máy chủ cơ sở dữ liệu".into()),
                subjects: Some(vec![git(&c, &tr)]),
                environments: Some(vec!["staging".into()]),
                ..EditChangeRequest::default()
            },
        )
        .await);
    assert_eq!(edited.title, "Thay máy chủ cơ sở dữ liệu");
    assert_eq!(edited.subjects, [git(&c, &tr)]);
    assert_eq!(edited.environments, ["staging"]);
    assert_eq!(edited.description, cr.description);
    assert_eq!(ok(w.owner.change(cr.id).await), edited);

    ok(w.owner.submit(cr.id).await);
    conflict(&problem(
        w.owner
            .edit_change(
                cr.id,
                &EditChangeRequest {
                    title: Some("Sửa sau khi nộp".into()),
                    ..EditChangeRequest::default()
                },
            )
            .await,
    ));
    assert_eq!(
        ok(w.owner.change(cr.id).await).title,
        "Thay máy chủ cơ sở dữ liệu"
    );
}

#[tokio::test]
async fn an_owner_of_another_organisation_can_neither_see_nor_file_for_the_system() {
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
    let p = problem(w.other_owner.system("TTHC").await);
    assert_eq!((p.status, p.code.as_str()), (404, "not_found"));
    let p = problem(w.other_owner.change(cr.id).await);
    assert_eq!((p.status, p.code.as_str()), (404, "not_found"));
    let p = problem(w.other_owner.submit(cr.id).await);
    assert_eq!((p.status, p.code.as_str()), (404, "not_found"));
    let p = problem(
        w.other_owner
            .file_change(&change(
                "TTHC",
                &[],
                vec![git(&random_oid(), &random_oid())],
            ))
            .await,
    );
    assert_eq!((p.status, p.code.as_str()), (422, "validation_failed"));
    assert_eq!(p.errors[0].field, "system");
    // What they are told is what they would be told about a system that does not exist.
    let q = problem(
        w.other_owner
            .file_change(&change("KHONG-CO", &[], vec![]))
            .await,
    );
    assert_eq!(
        p.errors[0].message.replace("TTHC", "KHONG-CO"),
        q.errors[0].message
    );
    let list = ok(w.other_owner.changes(None, None).await);
    assert!(list.items.is_empty(), "{:?}", list.items);
    assert_eq!(ok(w.owner.changes(None, None).await).items.len(), 1);
    assert_eq!(ok(w.owner.change(cr.id).await).state, "draft");
}

#[tokio::test]
async fn a_reviewer_cannot_submit_or_withdraw_an_owners_change() {
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
    let p = problem(w.reviewer.submit(cr.id).await);
    assert_eq!((p.status, p.code.as_str()), (403, "forbidden"));
    let p = problem(w.reviewer.withdraw(cr.id).await);
    assert_eq!((p.status, p.code.as_str()), (403, "forbidden"));
    assert_eq!(ok(w.owner.change(cr.id).await).state, "draft");
}

#[tokio::test]
async fn content_replaced_after_changes_were_requested_is_what_the_gate_waits_on() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (old, old_tree) = (random_oid(), random_oid());
    let (new, new_tree) = (random_oid(), random_oid());
    let cr = ok(w
        .owner
        .file_change(&change("TTHC", &[], vec![git(&old, &old_tree)]))
        .await);
    ok(w.owner.submit(cr.id).await);
    ok(w.reviewer.request_changes(cr.id, "Sai bản dựng").await);
    ok(w.owner
        .edit_change(
            cr.id,
            &EditChangeRequest {
                subjects: Some(vec![git(&new, &new_tree)]),
                ..EditChangeRequest::default()
            },
        )
        .await);
    ok(w.owner.submit(cr.id).await);
    let d = ok(w.ci.gate(&ask_commit("TTHC", "production", &old)).await);
    assert_eq!(d.codes(), ["no_approved_change"]);
    let d = ok(w.ci.gate(&ask_commit("TTHC", "production", &new)).await);
    assert_eq!(d.codes(), ["pending_evaluation"]);
    ok(w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
    assert!(ok(w.ci.gate(&ask_commit("TTHC", "production", &new)).await).allowed());
    assert!(!ok(w.ci.gate(&ask_commit("TTHC", "production", &old)).await).allowed());
}
