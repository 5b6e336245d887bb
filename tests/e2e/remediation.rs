//! An open high or critical incident closes the gate, except to the emergency change that
//! remediates it.

use changegate_api::{NewIncident, WireSubject};
use changegate_tests::*;

#[tokio::test]
async fn only_an_emergency_change_that_remediates_the_open_incident_may_deploy() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    t.approved(&w, &change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await;
    let inc = w
        .owner
        .report_incident(
            "TTHC",
            &NewIncident {
                detected_at: None,
                national_security: false,
                kind: "malware".into(),
                severity: "critical".into(),
                summary: "Mã độc trên máy chủ ứng dụng".into(),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        w.ci.gate(&ask_commit("TTHC", "production", &c))
            .await
            .unwrap()
            .codes(),
        ["incident_open"]
    );

    // A software change cannot claim to remediate it.
    let mut sw = change(
        "TTHC",
        &["production"],
        vec![git(&random_oid(), &random_oid())],
    );
    sw.remediates_incident = Some(inc.id);
    let e = w.owner.file_change(&sw).await.err().unwrap();
    assert_eq!(e.status(), Some(422));

    // The emergency fix that remediates it deploys at once (break-glass) despite the incident.
    let (fix, fix_tree) = (random_oid(), random_oid());
    let mut em = change(
        "TTHC",
        &["production"],
        vec![WireSubject::GitCommit {
            commit: fix.clone(),
            tree: fix_tree,
        }],
    );
    em.kind = "emergency".into();
    em.description = "Gỡ mã độc và vá lỗ hổng bị khai thác, không thể chờ đánh giá".into();
    em.remediates_incident = Some(inc.id);
    let em = w.owner.file_change(&em).await.unwrap();
    assert_eq!(em.remediates_incident, Some(inc.id));
    w.owner.submit(em.id).await.unwrap();
    assert!(
        w.ci.gate(&ask_commit("TTHC", "production", &fix))
            .await
            .unwrap()
            .allowed()
    );
    // Everything else stays blocked until the incident is resolved.
    assert_eq!(
        w.ci.gate(&ask_commit("TTHC", "production", &c))
            .await
            .unwrap()
            .codes(),
        ["incident_open"]
    );
    w.reviewer.resolve_incident(inc.id).await.unwrap();
    assert!(
        w.ci.gate(&ask_commit("TTHC", "production", &c))
            .await
            .unwrap()
            .allowed()
    );
}
