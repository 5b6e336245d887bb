//! SIGKILL of a real server while change requests are submitted: after a restart on the same
//! database every notification of a committed submit reaches the webhook at least once, none of a
//! submit that never committed, a duplicate keeps its `webhook-id`, and the audit log is intact.

use crate::cli::{changegate_bin, outcome, run};
use crate::process::{Server, seed};
use crate::sink::{Sink, eventually, hook};
use changegate_app::App;
use changegate_store::entity::change_request as cr;
use changegate_store::sea_orm::EntityTrait;
use changegate_tests::*;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the producer saw: change ids whose submit was answered 200, and the one it was
/// submitting when the server died (if any).
#[derive(Default, Debug)]
struct Produced {
    acknowledged: Vec<i64>,
    unanswered: Vec<i64>,
}

#[tokio::test]
async fn after_sigkill_every_committed_submit_is_notified_at_least_once_and_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(&dir).await;
    eprintln!("crash test on {}", backend());
    let tokens = seed(&url).await;
    // The endpoint answers after 300 ms: deliveries it has received are still unanswered when
    // the server dies, and are delivered again after the restart.
    let sink = Sink::answering_after(Duration::from_millis(300)).await;

    let mut first = Server::start(dir.path(), &url, None).await;
    ok(first
        .client(&tokens.admin)
        .create_webhook(&hook(&sink.url))
        .await);

    // A producer files and submits change requests until the server stops answering.
    let produced: Arc<Mutex<Produced>> = Arc::default();
    let producer = {
        let (owner, produced) = (first.client(&tokens.owner), produced.clone());
        tokio::spawn(async move {
            loop {
                let n = change(
                    "TTHC",
                    &["production"],
                    vec![git(&random_oid(), &random_oid())],
                );
                let Ok(c) = owner.file_change(&n).await else {
                    break;
                };
                match owner.submit(c.id).await {
                    Ok(_) => produced.lock().unwrap().acknowledged.push(c.id),
                    Err(_) => {
                        produced.lock().unwrap().unanswered.push(c.id);
                        break;
                    }
                }
            }
        })
    };
    // Kill it mid-way, while submits are made and deliveries are under way.
    eventually(
        "ten acknowledged submits and a delivery under way",
        Duration::from_secs(60),
        || async {
            (produced.lock().unwrap().acknowledged.len() >= 10 && sink.answering() > 0)
                .then_some(())
        },
    )
    .await;
    first.child.kill().await.unwrap();
    tokio::time::timeout(Duration::from_secs(30), producer)
        .await
        .expect("the producer stops once the server is gone")
        .unwrap();
    let produced = std::mem::take(&mut *produced.lock().unwrap());
    eprintln!(
        "killed after {} acknowledged submits ({} unanswered); {} deliveries had arrived",
        produced.acknowledged.len(),
        produced.unanswered.len(),
        sink.of("change_request.submitted").len()
    );

    // Restart on the same database; it delivers what the killed one had not.
    let mut second = Server::start(dir.path(), &url, None).await;
    let admin = second.client(&tokens.admin);
    // A delivery claimed by the killed server waits for its lease (60 s) to run out.
    eventually(
        "every acknowledged submit's notification",
        Duration::from_secs(120),
        || async {
            let got: BTreeSet<i64> = sink
                .of("change_request.submitted")
                .iter()
                .filter_map(|r| r.body["data"]["id"].as_i64())
                .collect();
            let pending = ok(admin.deliveries(Some("pending")).await);
            (produced.acknowledged.iter().all(|id| got.contains(id)) && pending.is_empty())
                .then_some(())
        },
    )
    .await;
    assert!(
        ok(admin.deliveries(Some("failed")).await).is_empty(),
        "nothing failed"
    );

    // Nothing was delivered for a submit that did not commit: every notified change is
    // submitted in the database, and a change left a draft was notified of nothing.
    let app = App::open(&url, pack()).await.unwrap();
    let states: BTreeMap<i64, String> = cr::Entity::find()
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.id, c.state.as_str().to_owned()))
        .collect();
    let received = sink.of("change_request.submitted");
    let mut ids_of: BTreeMap<i64, BTreeSet<String>> = BTreeMap::new();
    for r in &received {
        let id = r.body["data"]["id"].as_i64().unwrap();
        assert_eq!(
            states.get(&id).map(String::as_str),
            Some("submitted"),
            "change {id} was notified as submitted"
        );
        ids_of.entry(id).or_default().insert(r.msg_id.clone());
    }
    // Every submit that committed is notified, answered or not.
    for (id, state) in &states {
        if state == "submitted" {
            assert!(
                ids_of.contains_key(id),
                "change {id} is submitted and was not notified"
            );
        }
    }
    for id in &produced.unanswered {
        if states.get(id).map(String::as_str) != Some("submitted") {
            assert!(
                !ids_of.contains_key(id),
                "change {id} never committed its submit"
            );
        }
    }
    // Duplicates (a delivery made again after the kill) carry the same webhook-id; different
    // changes carry different ones.
    for (id, msg_ids) in &ids_of {
        assert_eq!(msg_ids.len(), 1, "change {id}: {msg_ids:?}");
    }
    let distinct: BTreeSet<&String> = ids_of.values().flatten().collect();
    assert_eq!(distinct.len(), ids_of.len());
    assert!(
        received.len() > ids_of.len(),
        "a delivery under way at the kill is delivered again: {received:?}"
    );
    eprintln!(
        "{} notifications received for {} changes",
        received.len(),
        ids_of.len()
    );

    assert!(second.running(), "log: {}", second.log());
    second.child.kill().await.unwrap();
    let mut verify = Command::new(changegate_bin());
    verify
        .current_dir(dir.path())
        .args(["audit", "verify", "--database-url", &url]);
    let (code, out, err) = outcome(&run(verify).await);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("intact"), "{out}");
}
