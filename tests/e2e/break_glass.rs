//! Break-glass: an emergency change deploys at once, but must be evaluated in time or the
//! system is suspended.

use crate::cli::token;
use changegate_api::NewChangeRequest;
use changegate_app::App;
use changegate_client::Client;
use changegate_store::entity::change_request as cr_row;
use changegate_store::sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
use changegate_tests::*;
use chrono::{DateTime, Duration, Utc};
use std::sync::Arc;

fn emergency(commit: &str, tree: &str, justification: &str) -> NewChangeRequest {
    NewChangeRequest {
        kind: "emergency".into(),
        title: "Vá lỗ hổng đăng nhập".into(),
        description: justification.into(),
        ..change("TTHC", &["production"], vec![git(commit, tree)])
    }
}

/// Moves a date of a change request, as if time had passed (the API never moves them back).
async fn set_date(t: &TestApp, id: i64, col: cr_row::Column, at: DateTime<Utc>) {
    let r = cr_row::Entity::update_many()
        .col_expr(col, Expr::value(at))
        .filter(cr_row::Column::Id.eq(id))
        .exec(&t.app.db)
        .await
        .unwrap();
    assert_eq!(r.rows_affected, 1);
}

/// Another server on the same database, started now (so it loads the rows as they are).
async fn second_server(t: &TestApp) -> (Arc<App>, String, tokio::sync::oneshot::Sender<()>) {
    // Its own signing key, in a directory of its own.
    let dir = t.dir.path().join(format!("replica-{}", random_oid()));
    let (app, url, tx) = serve(&config(&dir, &t.database_url)).await;
    (app, url, tx)
}

#[tokio::test]
async fn an_emergency_change_needs_a_justification() {
    let t = spawn_app().await;
    let w = t.world().await;
    let p = problem(
        w.owner
            .file_change(&emergency(&random_oid(), &random_oid(), "gấp"))
            .await,
    );
    assert_eq!(p.status, 422, "{p:?}");
    assert!(p.errors.iter().any(|e| e.field == "description"), "{p:?}");
}

#[tokio::test]
async fn a_submitted_emergency_change_deploys_before_sign_off_and_cannot_be_withdrawn() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    let e = ok(w
        .owner
        .file_change(&emergency(
            &c,
            &tr,
            "Lỗ hổng đang bị khai thác, cần vá ngay trong đêm",
        ))
        .await);
    // A draft is not break-glass yet.
    let d = ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await);
    assert!(!d.allowed(), "{d:?}");

    let e = ok(w.owner.submit(e.id).await);
    let until = e.emergency_until.expect("a break-glass window");
    let hours = (until - Utc::now()).num_minutes() as f64 / 60.0;
    assert!((23.9..=24.0).contains(&hours), "{until}");
    let d = ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await);
    assert!(d.allowed(), "{d:?}");
    assert_eq!(d.change_request, Some(e.id));
    assert_eq!(d.valid_until, Some(until));

    let p = problem(w.owner.withdraw(e.id).await);
    assert_eq!(p.status, 403, "{p:?}");
    assert_eq!(ok(w.owner.change(e.id).await).state, "submitted");

    let events = ok(w.auditor.audit(0, 1000).await).events;
    let bg: Vec<_> = events
        .iter()
        .filter(|ev| ev.action == "change_request.break_glass")
        .collect();
    assert_eq!(bg.len(), 1, "{events:?}");
    assert_eq!(bg[0].entity_id, e.id.to_string());
    assert_eq!(bg[0].actor, "nguyen.van.an");
}

#[tokio::test]
async fn an_emergency_not_evaluated_in_time_suspends_the_system_until_an_evaluation_passes() {
    let t = spawn_app().await;
    let w = t.world().await;
    // An approved ordinary change of the same system.
    let (ac, at) = (random_oid(), random_oid());
    let a = t
        .approved(&w, &change("TTHC", &["production"], vec![git(&ac, &at)]))
        .await;
    // An emergency change, submitted.
    let (ec, et) = (random_oid(), random_oid());
    let e = ok(w
        .owner
        .file_change(&emergency(
            &ec,
            &et,
            "Mất kết nối CSDL dân cư, khôi phục cấu hình cũ",
        ))
        .await);
    ok(w.owner.submit(e.id).await);

    // A day passes: the ordinary change was approved before the emergency, whose window closed
    // a minute ago without an evaluation.
    set_date(
        &t,
        a.id,
        cr_row::Column::ApprovedAt,
        Utc::now() - Duration::hours(25),
    )
    .await;
    set_date(
        &t,
        e.id,
        cr_row::Column::EmergencyUntil,
        Utc::now() - Duration::minutes(1),
    )
    .await;
    let (app2, url2, _stop) = second_server(&t).await;
    let ci2 = Client::new(&url2, Some(token(&t, "ci.stnmt").await)).unwrap();

    let d = ok(ci2.gate(&ask_commit("TTHC", "production", &ac)).await);
    assert!(!d.allowed(), "{d:?}");
    assert!(d.codes().contains(&"system_suspended"), "{d:?}");
    let d = ok(ci2.gate(&ask_commit("TTHC", "production", &ec)).await);
    assert!(!d.allowed(), "{d:?}");
    assert!(d.codes().contains(&"system_suspended"), "{d:?}");
    // Another system is not affected.
    let oc = random_oid();
    t.approved(
        &w,
        &change("DAT-DAI", &["production"], vec![git(&oc, &random_oid())]),
    )
    .await;
    app2.catch_up().await.unwrap();
    assert!(ok(ci2.gate(&ask_commit("DAT-DAI", "production", &oc)).await).allowed());

    // PA05 evaluates the emergency change retroactively and it passes: the suspension lifts.
    let e = ok(w.reviewer.change(e.id).await);
    let e = ok(w.reviewer.sign_off(e.id, &sign_off_all(&e, "pass")).await);
    assert_eq!(e.state, "approved");
    app2.catch_up().await.unwrap();
    let d = ok(ci2.gate(&ask_commit("TTHC", "production", &ac)).await);
    assert!(d.allowed(), "{d:?}");
    assert!(ok(w.ci.gate(&ask_commit("TTHC", "production", &ac)).await).allowed());
}
