//! The audit log: every write appends one event; the hash chain detects edits, gaps and
//! truncation; only reviewers, auditors and admins read it.

use changegate_api::NewIncident;
use changegate_app::audit::{Verified, verify_db};
use changegate_domain::audit::ChainBreak;
use changegate_store::entity::audit_event;
use changegate_store::sea_orm::{ActiveModelTrait, ActiveValue::Set, EntityTrait};
use changegate_tests::*;

async fn verify(t: &TestApp) -> Verified {
    verify_db(&t.app.db).await.unwrap_or_else(|e| panic!("{e}"))
}

/// Events appended by [`seven_writes`]: one per write (a software change: its approval records no
/// periodic re-review of the system), and the reviewer's second factor given with the sign-off.
const EVENTS: i64 = 8;

/// Runs a scenario of seven writes; returns the seq before it.
async fn seven_writes(t: &TestApp, w: &World) -> i64 {
    let seq = t.audit_seq().await;
    let (c, tr) = (random_oid(), random_oid());
    let cr = ok(w
        .owner
        .file_change(&change("TTHC", &[], vec![git(&c, &tr)]))
        .await);
    ok(w.owner
        .edit_change(
            cr.id,
            &changegate_api::EditChangeRequest {
                title: Some("Sửa tiêu đề".into()),
                ..Default::default()
            },
        )
        .await);
    ok(w.owner.submit(cr.id).await);
    ok(w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
    let inc = ok(w
        .owner
        .report_incident(
            "TTHC",
            &NewIncident {
                kind: "malware".into(),
                severity: "high".into(),
                summary: "Phát hiện mã độc trên máy trạm".into(),
            },
        )
        .await);
    ok(w.reviewer.resolve_incident(inc.id).await);
    ok(w.reviewer.revoke(cr.id, "Thu hồi để đánh giá lại").await);
    // Reads append nothing.
    ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await);
    ok(w.owner.change(cr.id).await);
    ok(w.auditor.audit(0, 10).await);
    seq
}

#[tokio::test]
async fn every_write_appends_its_events_in_order_and_reads_append_none() {
    let t = spawn_app().await;
    let w = t.world().await;
    let before = seven_writes(&t, &w).await;
    assert_eq!(t.audit_seq().await, before + EVENTS);
    let events = ok(w.auditor.audit(before, 100).await).events;
    assert_eq!(
        events.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        [
            "change_request.file",
            "change_request.edit",
            "change_request.submit",
            "auth.second_factor",
            "change_request.sign_off",
            "incident.report",
            "incident.resolve",
            "change_request.revoke",
        ]
    );
    assert_eq!(
        events.iter().map(|e| e.actor.as_str()).collect::<Vec<_>>(),
        [
            "nguyen.van.an",
            "nguyen.van.an",
            "nguyen.van.an",
            "tran.thi.hoa",
            "tran.thi.hoa",
            "nguyen.van.an",
            "tran.thi.hoa",
            "tran.thi.hoa",
        ]
    );
    assert_eq!(
        events.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (before + 1..=before + EVENTS).collect::<Vec<_>>()
    );
    assert_eq!(verify(&t).await, Verified::Intact(before + EVENTS));
}

#[tokio::test]
async fn editing_one_events_content_is_detected_as_a_hash_mismatch() {
    let t = spawn_app().await;
    let w = t.world().await;
    let before = seven_writes(&t, &w).await;
    assert!(matches!(verify(&t).await, Verified::Intact(_)));
    let target = before + 5; // the sign-off
    let row = audit_event::Entity::find_by_id(target)
        .one(&t.app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no event {target}"));
    assert_eq!(row.action, "change_request.sign_off");
    let forged = row
        .after
        .clone()
        .unwrap_or_default()
        .replace("\"pass\"", "\"fail\"");
    assert_ne!(Some(&forged), row.after.as_ref());
    let mut am: audit_event::ActiveModel = row.into();
    am.after = Set(Some(forged));
    am.update(&t.app.db).await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        verify(&t).await,
        Verified::Broken(ChainBreak::HashMismatch { seq: target })
    );
}

#[tokio::test]
async fn deleting_a_middle_event_is_detected_as_a_gap() {
    let t = spawn_app().await;
    let w = t.world().await;
    let before = seven_writes(&t, &w).await;
    let target = before + 3;
    let gone = audit_event::Entity::delete_by_id(target)
        .exec(&t.app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gone.rows_affected, 1);
    assert_eq!(
        verify(&t).await,
        Verified::Broken(ChainBreak::Gap {
            expected: target,
            found: target + 1
        })
    );
}

#[tokio::test]
async fn deleting_the_last_event_is_detected_as_truncation() {
    let t = spawn_app().await;
    let w = t.world().await;
    let before = seven_writes(&t, &w).await;
    let head = before + EVENTS;
    let gone = audit_event::Entity::delete_by_id(head)
        .exec(&t.app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(gone.rows_affected, 1);
    assert_eq!(
        verify(&t).await,
        Verified::Broken(ChainBreak::Truncated {
            last: head - 1,
            head
        })
    );
}

#[tokio::test]
async fn the_auditor_reads_the_audit_log_and_an_owner_may_not() {
    let t = spawn_app().await;
    let w = t.world().await;
    let head = t.audit_seq().await;
    let page = ok(w.auditor.audit(0, 1000).await);
    assert_eq!(page.events.len() as i64, head);
    assert_eq!(page.events.first().map(|e| e.seq), Some(1));
    assert!(page.events.iter().all(|e| e.hash.len() == 64), "{page:?}");
    let page = ok(w.auditor.audit(head - 2, 1000).await);
    assert_eq!(page.events.len(), 2);
    let p = problem(w.owner.audit(0, 10).await);
    assert_eq!((p.status, p.code.as_str()), (403, "forbidden"));
    let p = problem(w.ci.audit(0, 10).await);
    assert_eq!((p.status, p.code.as_str()), (403, "forbidden"));
    let p = problem(t.anon.audit(0, 10).await);
    assert_eq!((p.status, p.code.as_str()), (401, "unauthorized"));
}
