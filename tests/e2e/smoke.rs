use changegate_api::{GateParams, NewChangeRequest, WireSubject};
use changegate_tests::*;

#[tokio::test]
async fn the_whole_loop_blocks_until_pa05_signs_off_then_allows_exactly_that_content() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (commit, tree) = (random_oid(), random_oid());
    let cr = w
        .owner
        .file_change(&NewChangeRequest {
            system: "TTHC".into(),
            kind: "software".into(),
            title: "Nâng cấp phiên bản 2.3".into(),
            description: "Cập nhật mô-đun tra cứu".into(),
            environments: vec!["production".into()],
            subjects: vec![WireSubject::GitCommit {
                commit: commit.clone(),
                tree: tree.clone(),
            }],
            components: vec![],
            git: None,
            remediates_incident: None,
            major_change: vec![],
        })
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let ask = |commit: &str| GateParams {
        wait: None,
        nonce: None,
        system: "TTHC".into(),
        env: "production".into(),
        commit: Some(commit.into()),
        tree: None,
        artifact: None,
    };
    let d =
        w.ci.gate(&ask(&commit))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.codes(), ["no_approved_change"]);
    w.owner
        .submit(cr.id)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let d =
        w.ci.gate(&ask(&commit))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(d.codes(), ["pending_evaluation"]);
    let signed = w
        .reviewer
        .sign_off(cr.id, &sign_off_all(&cr, "pass"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(signed.state, "approved");
    let d =
        w.ci.gate(&ask(&commit))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(d.allowed(), "{d:?}");
    assert_eq!(d.change_request, Some(cr.id));
    let d =
        w.ci.gate(&ask(&random_oid()))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(!d.allowed());
}
