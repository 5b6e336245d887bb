//! The review sweep opens the periodic re-review when it comes due, in the name of the
//! scheduled-jobs account, for PA05 to evaluate like a change.

use changegate_api::NewSystem;
use changegate_tests::*;

#[tokio::test]
async fn the_sweep_opens_one_re_review_when_it_comes_due_and_its_pass_restarts_the_clock() {
    let t = spawn_app().await;
    let w = t.world().await;
    // Last evaluated 12 months less 10 days ago: due in about 10 days, inside the first reminder.
    let last =
        chrono::Utc::now().date_naive() - chrono::Months::new(12) + chrono::Duration::days(10);
    t.admin
        .create_system(&NewSystem {
            code: "HO-TICH".into(),
            name: "Hệ thống đăng ký hộ tịch".into(),
            owner_org: "STNMT".into(),
            operating_unit: String::new(),
            level: 3,
            population_db: true,
            environments: vec!["production".into()],
            components: vec![],
            last_review: Some(last),
        })
        .await
        .unwrap();
    t.app.review_sweep(chrono::Utc::now()).await.unwrap();
    t.app.review_sweep(chrono::Utc::now()).await.unwrap();
    let open = w
        .reviewer
        .changes(Some("HO-TICH"), Some("submitted"))
        .await
        .unwrap()
        .items;
    assert_eq!(open.len(), 1, "one re-review, not one per sweep: {open:?}");
    assert_eq!(open[0].kind, "re_review");
    let rr = w.reviewer.change(open[0].id).await.unwrap();
    assert_eq!(rr.filed_by, "changegate");
    // The scheduled-jobs account cannot be used to log in or hold a token, and its name is reserved.
    let reserved = changegate_api::NewUser {
        username: "changegate".into(),
        display_name: "x".into(),
        org: "STNMT".into(),
        role: "owner".into(),
    };
    let taken = t.admin.create_user(&reserved).await;
    assert_eq!(taken.err().and_then(|e| e.status()), Some(422));
    let before = w
        .owner
        .system("HO-TICH")
        .await
        .unwrap()
        .next_review_due
        .unwrap();
    w.reviewer
        .sign_off(rr.id, &sign_off_all(&rr, "pass"))
        .await
        .unwrap();
    let after = w
        .owner
        .system("HO-TICH")
        .await
        .unwrap()
        .next_review_due
        .unwrap();
    assert!(
        after > before + chrono::Duration::days(300),
        "{before} -> {after}"
    );
}

#[tokio::test]
async fn a_system_far_from_its_re_review_gets_none_opened() {
    let t = spawn_app().await;
    let w = t.world().await;
    t.admin
        .create_system(&NewSystem {
            code: "HO-TICH".into(),
            name: "Hệ thống đăng ký hộ tịch".into(),
            owner_org: "STNMT".into(),
            operating_unit: String::new(),
            level: 3,
            population_db: true,
            environments: vec!["production".into()],
            components: vec![],
            last_review: Some(chrono::Utc::now().date_naive() - chrono::Duration::days(30)),
        })
        .await
        .unwrap();
    t.app.review_sweep(chrono::Utc::now()).await.unwrap();
    assert!(
        w.reviewer
            .changes(Some("HO-TICH"), None)
            .await
            .unwrap()
            .items
            .is_empty()
    );
}
