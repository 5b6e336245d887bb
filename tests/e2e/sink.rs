//! Local webhook endpoints for the reliability tests: one that records what it receives, one
//! that accepts connections and never answers, one that closes them without answering; and a
//! helper that waits for something to happen.

use axum::http::{HeaderMap, StatusCode};
use changegate_api::NewWebhook;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// A secret of 24 bytes, as `POST /api/v1/webhooks` wants it.
pub const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// One request received by a sink.
#[derive(Debug, Clone)]
pub struct Received {
    /// Its `webhook-id` header.
    pub msg_id: String,
    /// The event type (`type` of the body).
    pub event: String,
    /// The body.
    pub body: serde_json::Value,
}

/// A webhook endpoint that records every request and answers `200 OK`.
pub struct Sink {
    /// Its URL.
    pub url: String,
    got: Arc<Mutex<Vec<Received>>>,
    answering: Arc<AtomicUsize>,
}

impl Sink {
    /// Starts one on `127.0.0.1:0`.
    pub async fn start() -> Sink {
        Self::answering_after(Duration::ZERO).await
    }

    /// Starts one that records a request at once and answers it after `delay`.
    pub async fn answering_after(delay: Duration) -> Sink {
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let answering = Arc::new(AtomicUsize::new(0));
        let (keep, busy) = (got.clone(), answering.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: String| {
                let (keep, busy) = (keep.clone(), busy.clone());
                async move {
                    let body: serde_json::Value =
                        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null);
                    keep.lock().unwrap().push(Received {
                        msg_id: headers
                            .get("webhook-id")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_owned(),
                        event: body["type"].as_str().unwrap_or_default().to_owned(),
                        body,
                    });
                    busy.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(delay).await;
                    busy.fetch_sub(1, Ordering::SeqCst);
                    StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Sink {
            url,
            got,
            answering,
        }
    }

    /// Requests received and not answered yet.
    pub fn answering(&self) -> usize {
        self.answering.load(Ordering::SeqCst)
    }

    /// Everything received so far.
    pub fn all(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// What was received of event type `event`.
    pub fn of(&self, event: &str) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| r.event == event)
            .collect()
    }
}

/// How a faulty endpoint misbehaves.
#[derive(Debug, Clone, Copy)]
pub enum Fault {
    /// Accepts the connection, reads the request and never answers.
    Hang,
    /// Accepts the connection, reads the request and closes the connection without answering.
    Close,
}

/// A webhook endpoint that misbehaves; counts the connections it accepted.
pub struct Faulty {
    /// Its URL.
    pub url: String,
    accepted: Arc<AtomicUsize>,
}

impl Faulty {
    /// Starts one on `127.0.0.1:0`.
    pub async fn start(fault: Fault) -> Faulty {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    match fault {
                        Fault::Hang => {
                            // Read whatever comes and never answer; hold the socket open.
                            while let Ok(n) = sock.read(&mut buf).await {
                                if n == 0 {
                                    break;
                                }
                            }
                        }
                        Fault::Close => {
                            let _ = sock.read(&mut buf).await;
                            drop(sock);
                        }
                    }
                });
            }
        });
        Faulty { url, accepted }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

/// A webhook for every event at `url`.
pub fn hook(url: &str) -> NewWebhook {
    NewWebhook {
        url: url.into(),
        secret: SECRET.into(),
        events: vec!["*".into()],
    }
}

/// Polls `f` every 50 ms until it returns `Some`, for at most `within`.
pub async fn eventually<T, F, Fut>(what: &str, within: Duration, f: F) -> T
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
            start.elapsed() < within,
            "{what} did not happen within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
