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
                detected_at: None,
                national_security: false,
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

/// `changegate ARGS` on the test server's own data directory (its signing key and the file that
/// keeps the latest checkpoint) and database.
fn cg(t: &TestApp, args: &[&str]) -> std::process::Command {
    let mut c = std::process::Command::new(crate::cli::changegate_bin());
    c.current_dir(t.dir.path())
        .args(args)
        .arg("--data-dir")
        .arg(t.dir.path())
        .args(["--database-url", &t.database_url])
        .env_remove("DATABASE_URL");
    c
}

#[tokio::test]
async fn a_truncated_log_with_its_head_moved_back_fails_audit_verify_and_stops_serve() {
    use crate::cli::{outcome, run};
    use changegate_store::entity::{audit_checkpoint, audit_head};
    use changegate_store::sea_orm::sea_query::Expr;
    use changegate_store::sea_orm::{ColumnTrait, QueryFilter};
    let t = spawn_app().await;
    let w = t.world().await;
    seven_writes(&t, &w).await;
    // A job slot: the key outside the database signs the head.
    let head = t.app.checkpoint_audit().await.unwrap();
    let (code, out, err) = outcome(&run(cg(&t, &["audit", "verify"])).await);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.contains(&format!("vouch for events 1 to {head}")),
        "{out}"
    );

    // Someone who can write the database deletes the last three events (the incident, its
    // resolution, the revocation) and moves the head row back onto the new end.
    let k = head - 3;
    let kept = audit_event::Entity::find_by_id(k)
        .one(&t.app.db)
        .await
        .unwrap()
        .unwrap();
    audit_event::Entity::delete_many()
        .filter(audit_event::Column::Seq.gt(k))
        .exec(&t.app.db)
        .await
        .unwrap();
    audit_head::Entity::update_many()
        .col_expr(audit_head::Column::Seq, Expr::value(k))
        .col_expr(audit_head::Column::Hash, Expr::value(kept.hash.clone()))
        .filter(audit_head::Column::Id.eq(1))
        .exec(&t.app.db)
        .await
        .unwrap();
    // The hash chain alone cannot tell.
    assert_eq!(verify(&t).await, Verified::Intact(k));

    // The signed checkpoint can.
    let (code, out, err) = outcome(&run(cg(&t, &["audit", "verify"])).await);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("TAMPERED"), "{out}");
    assert!(
        out.contains(&format!("events after {k} were deleted")),
        "{out}"
    );

    // Deleting the checkpoint rows too does not help: the latest one is kept outside the
    // database as well.
    audit_checkpoint::Entity::delete_many()
        .filter(audit_checkpoint::Column::Seq.gt(k))
        .exec(&t.app.db)
        .await
        .unwrap();
    let (code, out, err) = outcome(&run(cg(&t, &["audit", "verify"])).await);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains(&format!("events after {k} were deleted")),
        "{out}"
    );

    // And `serve` refuses to chain new writes onto it.
    let mut serve = tokio::process::Command::from(cg(&t, &["serve", "--listen", "127.0.0.1:0"]));
    serve.kill_on_drop(true);
    let o = tokio::time::timeout(std::time::Duration::from_secs(60), serve.output())
        .await
        .expect("serve stops at start instead of serving")
        .unwrap();
    let (code, out, err) = outcome(&o);
    assert_ne!(code, Some(0), "{out}{err}");
    assert!(!out.contains("listening"), "{out}");
    assert!(err.contains("Refusing to serve"), "{err}");
    assert!(
        err.contains(&format!("events after {k} were deleted")),
        "{err}"
    );
}

#[tokio::test]
async fn a_rewritten_log_with_every_hash_recomputed_fails_audit_verify_and_serves_read_only_if_configured()
 {
    use crate::cli::{outcome, run};
    use changegate_domain::audit::{AuditRecord, chain_hash};
    use changegate_store::entity::audit_head;
    use changegate_store::sea_orm::sea_query::Expr;
    use changegate_store::sea_orm::{ColumnTrait, QueryFilter, QueryOrder};
    use tokio::io::AsyncBufReadExt;
    let t = spawn_app().await;
    let w = t.world().await;
    let before = seven_writes(&t, &w).await;
    let head = t.app.checkpoint_audit().await.unwrap();
    // A CI token, made before the tampering, for the read-only server below.
    let (code, out, err) = outcome(
        &run(cg(
            &t,
            &[
                "admin",
                "create-token",
                "--username",
                "nguyen.van.an",
                "--name",
                "after",
            ],
        ))
        .await,
    );
    assert_eq!(code, Some(0), "{out}{err}");
    let token = out.lines().last().unwrap().trim().to_owned();

    // Someone edits the sign-off's event and recomputes every hash after it, and the head.
    let target = before + 5;
    let events = audit_event::Entity::find()
        .filter(audit_event::Column::Seq.gte(target))
        .order_by_asc(audit_event::Column::Seq)
        .all(&t.app.db)
        .await
        .unwrap();
    let mut prev = audit_event::Entity::find_by_id(target - 1)
        .one(&t.app.db)
        .await
        .unwrap()
        .unwrap()
        .hash;
    let mut last = 0;
    for mut e in events {
        if e.seq == target {
            e.after = Some("{\"conclusion\":\"fail\"}".into());
        }
        let hash = chain_hash(
            &prev,
            &AuditRecord {
                seq: e.seq,
                at: &e.at,
                actor: &e.actor,
                actor_id: e.actor_id,
                action: &e.action,
                entity: &e.entity,
                entity_id: &e.entity_id,
                system_id: e.system_id,
                before: e.before.as_deref(),
                after: e.after.as_deref(),
            },
        );
        let mut am: audit_event::ActiveModel = e.clone().into();
        am.after = Set(e.after.clone());
        am.hash = Set(hash.clone());
        am.update(&t.app.db).await.unwrap();
        prev = hash;
        last = e.seq;
    }
    audit_head::Entity::update_many()
        .col_expr(audit_head::Column::Hash, Expr::value(prev))
        .filter(audit_head::Column::Id.eq(1))
        .exec(&t.app.db)
        .await
        .unwrap();
    assert!(last >= head);
    // The hash chain alone cannot tell.
    assert!(matches!(verify(&t).await, Verified::Intact(_)));
    // The signed checkpoint can, and says what is still vouched for.
    let (code, out, err) = outcome(&run(cg(&t, &["audit", "verify"])).await);
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        out.contains(&format!("event {head} is not the one signed")),
        "{out}"
    );

    // Configured to, the server serves reads and refuses every write, saying why in its log.
    let config = t.dir.path().join("read-only.toml");
    std::fs::write(&config, "[audit]\non_break = \"read_only\"\n").unwrap();
    let log = t.dir.path().join("read-only.log");
    let mut serve = tokio::process::Command::from(cg(
        &t,
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--config",
            config.to_str().unwrap(),
        ],
    ));
    serve
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .kill_on_drop(true);
    let mut child = serve.spawn().unwrap();
    let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(std::time::Duration::from_secs(60), lines.next_line())
        .await
        .expect("serve starts read-only")
        .unwrap()
        .unwrap_or_else(|| panic!("{}", std::fs::read_to_string(&log).unwrap_or_default()));
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .unwrap()
        .to_owned();
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(logged.contains("AUDIT LOG TAMPERED"), "{logged}");
    let http = reqwest::Client::new();
    let read = http
        .get(format!("{url}/api/v1/systems/TTHC"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let write = http
        .post(format!("{url}/api/v1/change-requests"))
        .bearer_auth(&token)
        .json(&change(
            "TTHC",
            &["production"],
            vec![git(&random_oid(), &random_oid())],
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(write.status(), 503);
    let after = t.audit_seq().await;
    assert_eq!(after, last, "nothing was chained onto the tampered log");
}
