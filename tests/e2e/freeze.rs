//! Freeze windows: nothing but an emergency change deploys during one.

use changegate_api::{NewChangeRequest, NewFreezeWindow};
use changegate_tests::*;
use chrono::{Duration, Utc};

fn range(hours_before: i64, hours_after: i64) -> NewFreezeWindow {
    NewFreezeWindow {
        environment: Some("production".into()),
        starts_at: Some(Utc::now() - Duration::hours(hours_before)),
        ends_at: Some(Utc::now() + Duration::hours(hours_after)),
        cron: None,
        duration_minutes: None,
        reason: "Cao điểm giải quyết hồ sơ cuối năm".into(),
    }
}

fn emergency(system: &str, commit: &str, tree: &str) -> NewChangeRequest {
    NewChangeRequest {
        kind: "emergency".into(),
        title: "Vá lỗ hổng đăng nhập".into(),
        description: "Lỗ hổng đang bị khai thác, cần vá ngay trong đêm".into(),
        ..change(system, &["production"], vec![git(commit, tree)])
    }
}

#[tokio::test]
async fn a_freeze_window_denies_an_approved_change_but_not_an_emergency_until_removed() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    t.approved(&w, &change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await;
    let q = ask_commit("TTHC", "production", &c);
    assert!(ok(w.ci.gate(&q).await).allowed());

    let fw = ok(w.owner.create_freeze_window("TTHC", &range(1, 1)).await);
    assert!(fw.active);
    let d = ok(w.ci.gate(&q).await);
    assert_eq!(d.codes(), ["freeze_window"], "{d:?}");
    // Another environment is not frozen.
    let d = ok(w.ci.gate(&ask_commit("TTHC", "staging", &c)).await);
    assert!(!d.codes().contains(&"freeze_window"), "{d:?}");

    // An emergency change filed and submitted during the freeze deploys.
    let (ec, et) = (random_oid(), random_oid());
    let e = ok(w.owner.file_change(&emergency("TTHC", &ec, &et)).await);
    ok(w.owner.submit(e.id).await);
    let d = ok(w.ci.gate(&ask_commit("TTHC", "production", &ec)).await);
    assert!(d.allowed(), "{d:?}");
    assert_eq!(d.change_request, Some(e.id));

    let removed = ok(w.owner.remove_freeze_window(fw.id).await);
    assert!(!removed.active);
    assert!(ok(w.ci.gate(&q).await).allowed());
}

#[tokio::test]
async fn a_recurring_window_in_force_denies() {
    let t = spawn_app().await;
    let w = t.world().await;
    let c = random_oid();
    t.approved(
        &w,
        &change("TTHC", &["production"], vec![git(&c, &random_oid())]),
    )
    .await;
    // Starts every minute and lasts ten: always in force.
    ok(w.reviewer
        .create_freeze_window(
            "TTHC",
            &NewFreezeWindow {
                environment: None,
                starts_at: None,
                ends_at: None,
                cron: Some("* * * * *".into()),
                duration_minutes: Some(10),
                reason: "Bảo trì định kỳ".into(),
            },
        )
        .await);
    let d = ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await);
    assert_eq!(d.codes(), ["freeze_window"], "{d:?}");
}

#[tokio::test]
async fn a_bad_cron_or_an_end_before_the_start_is_refused_naming_the_field() {
    let t = spawn_app().await;
    let w = t.world().await;
    let before = t.audit_seq().await;
    let p = problem(
        w.owner
            .create_freeze_window(
                "TTHC",
                &NewFreezeWindow {
                    environment: None,
                    starts_at: None,
                    ends_at: None,
                    cron: Some("every night".into()),
                    duration_minutes: Some(60),
                    reason: "Bảo trì".into(),
                },
            )
            .await,
    );
    assert_eq!(p.status, 422, "{p:?}");
    assert!(p.errors.iter().any(|e| e.field == "cron"), "{p:?}");

    let p = problem(w.owner.create_freeze_window("TTHC", &range(-2, -1)).await);
    assert_eq!(p.status, 422, "{p:?}");
    assert!(p.errors.iter().any(|e| e.field == "ends_at"), "{p:?}");
    assert_eq!(
        t.audit_seq().await,
        before,
        "a refused request changes nothing"
    );
}
