//! Deployment records: what was deployed where and when; one the gate did not allow is flagged.

use changegate_api::NewDeployment;
use changegate_tests::*;

fn deployment(system: &str, commit: &str) -> NewDeployment {
    NewDeployment {
        system: system.into(),
        environment: "production".into(),
        commit: Some(commit.into()),
        tree: None,
        artifact: None,
        deployed_at: None,
    }
}

#[tokio::test]
async fn a_deployment_the_gate_did_not_allow_is_flagged_for_reviewers_and_in_the_audit_log() {
    let t = spawn_app().await;
    let w = t.world().await;
    let c = random_oid();
    let cr = ok(w
        .owner
        .file_change(&change(
            "TTHC",
            &["production"],
            vec![git(&c, &random_oid())],
        ))
        .await);
    ok(w.owner.submit(cr.id).await);

    // Deployed before PA05 signed off.
    let d = ok(w.ci.record_deployment(&deployment("TTHC", &c)).await);
    assert!(d.flagged, "{d:?}");
    assert_eq!(d.decision, "deny");
    assert_eq!(
        d.reasons
            .iter()
            .map(|r| r.code.as_str())
            .collect::<Vec<_>>(),
        ["pending_evaluation"]
    );

    let flagged = ok(w.reviewer.deployments(true).await);
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert_eq!(flagged[0].id, d.id);
    assert_eq!(flagged[0].system, "TTHC");
    assert_eq!(flagged[0].commit.as_deref(), Some(c.as_str()));
    assert_eq!(flagged[0].recorded_by, "ci.stnmt");

    let events = ok(w.auditor.audit(0, 1000).await).events;
    let ev = events
        .iter()
        .find(|e| e.action == "deployment.unauthorised")
        .unwrap_or_else(|| panic!("no deployment.unauthorised in {events:?}"));
    assert_eq!(ev.entity_id, d.id.to_string());
    assert_eq!(ev.actor, "ci.stnmt");

    // Once allowed, a deployment is recorded without a flag.
    let cr = ok(w.reviewer.change(cr.id).await);
    ok(w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
    let d2 = ok(w.owner.record_deployment(&deployment("TTHC", &c)).await);
    assert!(!d2.flagged, "{d2:?}");
    assert_eq!(d2.change_request, Some(cr.id));
    assert_eq!(ok(w.reviewer.deployments(true).await).len(), 1);
    assert_eq!(ok(w.reviewer.deployments(false).await).len(), 2);
}

#[tokio::test]
async fn only_the_systems_own_pipeline_and_owners_may_record_a_deployment() {
    let t = spawn_app().await;
    let w = t.world().await;
    let before = t.audit_seq().await;
    let p = problem(
        w.other_owner
            .record_deployment(&deployment("TTHC", &random_oid()))
            .await,
    );
    assert_eq!(p.status, 422, "{p:?}");
    assert!(p.errors.iter().any(|e| e.field == "system"), "{p:?}");
    let p = problem(
        w.auditor
            .record_deployment(&deployment("TTHC", &random_oid()))
            .await,
    );
    assert_eq!(p.status, 403, "{p:?}");
    assert_eq!(
        t.audit_seq().await,
        before,
        "a refused request changes nothing"
    );
    assert!(ok(w.reviewer.deployments(false).await).is_empty());
}
