//! Notifications: deliveries reach webhooks signed per Standard Webhooks, in Vietnamese and
//! English; a failing endpoint holds nothing else up; bad webhooks are refused.

use axum::http::{HeaderMap, StatusCode};
use changegate_api::NewWebhook;
use changegate_tests::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

type Received = Arc<Mutex<Vec<(HeaderMap, String)>>>;

/// A local webhook endpoint answering `status`; returns its URL and what it received.
async fn sink(status: StatusCode) -> (String, Received) {
    let got: Received = Arc::default();
    let keep = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let keep = keep.clone();
            async move {
                keep.lock().unwrap().push((headers, body));
                status
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, got)
}

async fn eventually<T, F, Fut>(what: &str, f: F) -> T
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{what} did not happen within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn hook(url: &str, events: &[&str]) -> NewWebhook {
    NewWebhook {
        url: url.into(),
        secret: SECRET.into(),
        events: events.iter().map(|e| e.to_string()).collect(),
    }
}

#[tokio::test]
async fn a_submitted_change_reaches_the_webhook_signed_in_both_languages() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (url, got) = sink(StatusCode::OK).await;
    t.admin.create_webhook(&hook(&url, &["*"])).await.unwrap();
    let cr = w
        .owner
        .file_change(&change(
            "TTHC",
            &["production"],
            vec![git(&random_oid(), &random_oid())],
        ))
        .await
        .unwrap();
    w.owner.submit(cr.id).await.unwrap();
    let (headers, body) = eventually("the delivery", || async {
        got.lock().unwrap().first().cloned()
    })
    .await;
    let id = headers["webhook-id"].to_str().unwrap();
    let ts: i64 = headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let key = changegate_app::notify::decode_secret(SECRET).unwrap();
    assert_eq!(
        headers["webhook-signature"].to_str().unwrap(),
        changegate_app::notify::signature(&key, id, ts, &body)
    );
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["type"], "change_request.submitted");
    assert_eq!(v["data"]["id"], cr.id);
    let vi = v["data"]["message"]["vi"]["subject"].as_str().unwrap();
    assert!(vi.contains("chờ kiểm tra, đánh giá"), "{vi}");
    let en = v["data"]["message"]["en"]["subject"].as_str().unwrap();
    assert!(en.contains("awaits its security evaluation"), "{en}");
    let delivered = eventually("the delivered status", || async {
        let d = t.admin.deliveries(Some("delivered")).await.unwrap();
        (!d.is_empty()).then_some(d)
    })
    .await;
    assert_eq!(delivered[0].msg_id, id);
}

#[tokio::test]
async fn a_failing_endpoint_does_not_hold_up_another_one_and_is_retried_with_the_same_id() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (bad, bad_got) = sink(StatusCode::INTERNAL_SERVER_ERROR).await;
    let (good, good_got) = sink(StatusCode::NO_CONTENT).await;
    t.admin
        .create_webhook(&hook(&bad, &["change_request.submitted"]))
        .await
        .unwrap();
    t.admin
        .create_webhook(&hook(&good, &["change_request.submitted"]))
        .await
        .unwrap();
    let cr = w
        .owner
        .file_change(&change(
            "TTHC",
            &["production"],
            vec![git(&random_oid(), &random_oid())],
        ))
        .await
        .unwrap();
    w.owner.submit(cr.id).await.unwrap();
    eventually("the healthy endpoint's delivery", || async {
        (!good_got.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    eventually("the failing endpoint's first attempt", || async {
        (!bad_got.lock().unwrap().is_empty()).then_some(())
    })
    .await;
    let failing = eventually("the failed attempt to be recorded", || async {
        let d = t.admin.deliveries(Some("pending")).await.unwrap();
        d.into_iter().find(|d| d.attempts >= 1)
    })
    .await;
    assert_eq!(
        failing.last_error.as_deref(),
        Some("the endpoint answered HTTP 500")
    );
    assert!(
        failing.next_attempt_at > failing.created_at,
        "retried later, with backoff"
    );
    let first_id = bad_got.lock().unwrap()[0].0["webhook-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(first_id, failing.msg_id, "the retry keeps the webhook-id");
}

#[tokio::test]
async fn a_refused_change_queues_no_notification() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (url, got) = sink(StatusCode::OK).await;
    t.admin.create_webhook(&hook(&url, &["*"])).await.unwrap();
    let cr = w
        .owner
        .file_change(&change(
            "TTHC",
            &["production"],
            vec![git(&random_oid(), &random_oid())],
        ))
        .await
        .unwrap();
    // Not submitted: a sign-off of a draft is refused, and nothing is queued for it.
    assert!(
        w.reviewer
            .sign_off(cr.id, &sign_off_all(&cr, "pass"))
            .await
            .is_err()
    );
    assert!(t.admin.deliveries(None).await.unwrap().is_empty());
    assert!(got.lock().unwrap().is_empty());
}

#[tokio::test]
async fn bad_webhooks_are_refused_naming_the_field() {
    let t = spawn_app().await;
    let w = t.world().await;
    let field = |r: Result<changegate_api::Webhook, changegate_client::ClientError>| match r {
        Err(changegate_client::ClientError::Problem(p)) => (
            p.status,
            p.errors
                .first()
                .map(|e| e.field.clone())
                .unwrap_or_default(),
        ),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        field(
            t.admin
                .create_webhook(&hook("ftp://example.test/x", &["*"]))
                .await
        ),
        (422, "url".into())
    );
    let mut short = hook("http://127.0.0.1:9/x", &["*"]);
    short.secret = "whsec_c2hvcnQ=".into();
    assert_eq!(
        field(t.admin.create_webhook(&short).await),
        (422, "secret".into())
    );
    assert_eq!(
        field(
            t.admin
                .create_webhook(&hook("http://127.0.0.1:9/x", &["no.such.event"]))
                .await
        ),
        (422, "events[0]".into())
    );
    let r = w
        .owner
        .create_webhook(&hook("http://127.0.0.1:9/x", &["*"]))
        .await;
    assert_eq!(r.err().and_then(|e| e.status()), Some(403));
}
