//! What one organisation's tokens cannot learn or undo about another's systems, and what only
//! PA05 may lift.

use changegate_api::{NewFreezeWindow, NewIncident, NewToken};
use changegate_tests::*;

#[tokio::test]
async fn another_organisations_pipeline_learns_nothing_from_the_gate() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    t.approved(&w, &change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await;
    w.owner
        .report_incident(
            "TTHC",
            &NewIncident {
                detected_at: None,
                national_security: false,
                kind: "malware".into(),
                severity: "high".into(),
                summary: "Mã độc".into(),
            },
        )
        .await
        .unwrap();
    // CUCTHUE's owner asks about STNMT's system: the answer is the same as for a system that
    // does not exist, with no incident, change or environment detail.
    let d = w
        .other_owner
        .gate(&ask_commit("TTHC", "production", &c))
        .await
        .unwrap();
    assert_eq!(d.codes(), ["unknown_system"]);
    let unknown = w
        .other_owner
        .gate(&ask_commit("NO-SUCH", "production", &c))
        .await
        .unwrap();
    assert_eq!(
        unknown.reasons[0].message.replace("NO-SUCH", "TTHC"),
        d.reasons[0].message
    );
    // The system's own pipeline sees the incident.
    assert_eq!(
        w.ci.gate(&ask_commit("TTHC", "production", &c))
            .await
            .unwrap()
            .codes(),
        ["incident_open"]
    );
}

#[tokio::test]
async fn a_pipeline_token_cannot_issue_tokens() {
    let t = spawn_app().await;
    let w = t.world().await;
    let e =
        w.ci.create_token(&NewToken {
            name: "copy".into(),
            expires_in_days: Some(366),
        })
        .await
        .err()
        .unwrap();
    assert_eq!(e.status(), Some(403));
    // A person still can, for themself.
    assert!(
        w.owner
            .create_token(&NewToken {
                name: "laptop".into(),
                expires_in_days: Some(30)
            })
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn only_pa05_lifts_an_incident_and_an_owner_cannot_remove_pa05s_freeze() {
    let t = spawn_app().await;
    let w = t.world().await;
    let inc = w
        .owner
        .report_incident(
            "TTHC",
            &NewIncident {
                detected_at: None,
                national_security: false,
                kind: "vulnerability".into(),
                severity: "critical".into(),
                summary: "Lỗ hổng".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        t.admin
            .resolve_incident(inc.id)
            .await
            .err()
            .and_then(|e| e.status()),
        Some(403)
    );
    assert_eq!(
        w.owner
            .resolve_incident(inc.id)
            .await
            .err()
            .and_then(|e| e.status()),
        Some(403)
    );
    assert!(w.reviewer.resolve_incident(inc.id).await.is_ok());

    let now = chrono::Utc::now();
    let freeze = NewFreezeWindow {
        starts_at: Some(now - chrono::Duration::hours(1)),
        ends_at: Some(now + chrono::Duration::hours(1)),
        reason: "Kiểm tra của Công an tỉnh".into(),
        ..Default::default()
    };
    let by_pa05 = w
        .reviewer
        .create_freeze_window("TTHC", &freeze)
        .await
        .unwrap();
    assert_eq!(
        w.owner
            .remove_freeze_window(by_pa05.id)
            .await
            .err()
            .and_then(|e| e.status()),
        Some(403)
    );
    let by_owner = w.owner.create_freeze_window("TTHC", &freeze).await.unwrap();
    assert!(w.owner.remove_freeze_window(by_owner.id).await.is_ok());
    assert!(w.reviewer.remove_freeze_window(by_pa05.id).await.is_ok());
}
