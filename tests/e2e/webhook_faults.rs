//! Webhook endpoints that hang or close the connection slow neither the gate nor the delivery
//! to a healthy endpoint.

use crate::sink::{Fault, Faulty, Sink, eventually, hook};
use changegate_tests::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn hanging_and_closing_endpoints_slow_neither_the_gate_nor_a_healthy_endpoint() {
    let t = spawn_app().await;
    let w = t.world().await;
    let c = random_oid();
    t.approved(
        &w,
        &change("TTHC", &["production"], vec![git(&c, &random_oid())]),
    )
    .await;
    // Three endpoints that hang (each holds as many deliveries as the dispatcher lets one
    // webhook have) and one that closes the connection.
    let mut hanging = vec![];
    for _ in 0..3 {
        let h = Faulty::start(Fault::Hang).await;
        ok(t.admin.create_webhook(&hook(&h.url)).await);
        hanging.push(h);
    }
    let held = || hanging.iter().map(Faulty::accepted).sum::<usize>();
    let closing = Faulty::start(Fault::Close).await;
    ok(t.admin.create_webhook(&hook(&closing.url)).await);

    // Twenty submits: at least twenty deliveries to the hanging endpoints stay in flight.
    for _ in 0..20 {
        let cr = ok(w
            .owner
            .file_change(&change(
                "TTHC",
                &["production"],
                vec![git(&random_oid(), &random_oid())],
            ))
            .await);
        ok(w.owner.submit(cr.id).await);
    }
    eventually(
        "twenty deliveries in flight to the hanging endpoints",
        Duration::from_secs(5),
        || async { (held() >= 20).then_some(()) },
    )
    .await;

    // Meanwhile the gate answers at once.
    for _ in 0..5 {
        let start = Instant::now();
        let d = ok(w.ci.gate(&ask_commit("TTHC", "production", &c)).await);
        let took = start.elapsed();
        assert!(d.allowed(), "{d:?}");
        assert!(took < Duration::from_secs(1), "the gate took {took:?}");
    }

    // The closing endpoint's attempts failed and are kept for a retry, visible to the admin.
    let failed = eventually(
        "the closed connections to be recorded",
        Duration::from_secs(5),
        || async {
            let d: Vec<_> = ok(t.admin.deliveries(Some("pending")).await)
                .into_iter()
                .filter(|d| d.attempts >= 1)
                .collect();
            (d.len() >= 20).then_some(d)
        },
    )
    .await;
    assert!(closing.accepted() >= 20, "{}", closing.accepted());
    assert!(
        failed.iter().all(|d| d
            .last_error
            .as_deref()
            .is_some_and(|e| e.starts_with("could not deliver"))),
        "{failed:?}"
    );

    // A healthy endpoint registered now gets the next event promptly.
    let healthy = Sink::start().await;
    ok(t.admin.create_webhook(&hook(&healthy.url)).await);
    let cr = ok(w
        .owner
        .file_change(&change(
            "TTHC",
            &["production"],
            vec![git(&random_oid(), &random_oid())],
        ))
        .await);
    let start = Instant::now();
    ok(w.owner.submit(cr.id).await);
    eventually(
        "the healthy endpoint's delivery",
        Duration::from_secs(2),
        || async {
            healthy
                .of("change_request.submitted")
                .into_iter()
                .find(|r| r.body["data"]["id"] == cr.id)
        },
    )
    .await;
    eprintln!(
        "healthy delivery {:?} after the submit, with {} connections held by the hanging endpoints",
        start.elapsed(),
        held()
    );
}

#[tokio::test]
async fn a_hanging_endpoint_with_more_deliveries_than_the_dispatcher_runs_at_once_does_not_hold_up_another()
 {
    let t = spawn_app().await;
    let w = t.world().await;
    let hanging = Faulty::start(Fault::Hang).await;
    ok(t.admin.create_webhook(&hook(&hanging.url)).await);
    // More events than deliveries in flight at once (32): the hanging endpoint could take every
    // slot of the dispatcher.
    for _ in 0..40 {
        let cr = ok(w
            .owner
            .file_change(&change(
                "TTHC",
                &["production"],
                vec![git(&random_oid(), &random_oid())],
            ))
            .await);
        ok(w.owner.submit(cr.id).await);
    }
    let healthy = Sink::start().await;
    ok(t.admin.create_webhook(&hook(&healthy.url)).await);
    let cr = ok(w
        .owner
        .file_change(&change(
            "TTHC",
            &["production"],
            vec![git(&random_oid(), &random_oid())],
        ))
        .await);
    let start = Instant::now();
    ok(w.owner.submit(cr.id).await);
    eventually(
        "the healthy endpoint's delivery",
        Duration::from_secs(2),
        || async {
            healthy
                .of("change_request.submitted")
                .into_iter()
                .find(|r| r.body["data"]["id"] == cr.id)
        },
    )
    .await;
    eprintln!(
        "healthy delivery {:?} after the submit, with {} connections held by the hanging endpoint",
        start.elapsed(),
        hanging.accepted()
    );
}
