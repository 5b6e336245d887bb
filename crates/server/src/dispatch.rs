//! The webhook dispatcher: delivers queued notifications with one shared HTTP client, each
//! delivery on its own task with its own timeout, so an endpoint that hangs, fails or closes the
//! connection slows neither the gate nor the other deliveries: at most [`PER_WEBHOOK`] of the
//! [`IN_FLIGHT`] deliveries go to one webhook at once. Woken at once when a transaction queues
//! deliveries, and every few seconds for retries and other replicas' rows.

use changegate_app::App;
use changegate_app::notify::{DueDelivery, signature};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::Semaphore;

/// Deliveries in flight at once.
pub const IN_FLIGHT: usize = 32;
/// Deliveries in flight to one webhook at once: an endpoint that hangs holds no more slots.
pub const PER_WEBHOOK: usize = 8;

/// The deliveries in flight: the dispatcher's slots, and how many go to each webhook.
#[derive(Debug)]
pub struct InFlight {
    slots: Arc<Semaphore>,
    per_webhook: Mutex<HashMap<i64, usize>>,
}

impl InFlight {
    /// Nothing in flight.
    pub fn new() -> Arc<Self> {
        Arc::new(Self {
            slots: Arc::new(Semaphore::new(IN_FLIGHT)),
            per_webhook: Mutex::default(),
        })
    }

    fn busy(&self) -> HashMap<i64, usize> {
        self.per_webhook
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn add(&self, webhook: i64, n: isize) {
        let mut m = self
            .per_webhook
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let c = m.entry(webhook).or_default();
        *c = c.saturating_add_signed(n);
        if *c == 0 {
            m.remove(&webhook);
        }
    }

    /// Waits until every delivery in flight has finished.
    pub async fn drained(&self) -> Result<(), changegate_app::AppError> {
        self.slots
            .acquire_many(IN_FLIGHT as u32)
            .await
            .map(drop)
            .map_err(|e| changegate_app::AppError::Internal(e.to_string()))
    }
}
/// Time allowed to one delivery attempt.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

async fn deliver(http: &reqwest::Client, d: &DueDelivery) -> Result<(), String> {
    let ts = chrono::Utc::now().timestamp();
    let resp = http
        .post(&d.url)
        .header("content-type", "application/json")
        .header("webhook-id", &d.msg_id)
        .header("webhook-timestamp", ts.to_string())
        .header(
            "webhook-signature",
            signature(&d.key, &d.msg_id, ts, &d.payload),
        )
        .body(d.payload.clone())
        .send()
        .await
        .map_err(|e| format!("could not deliver: {e}"))?;
    if resp.status().is_success() {
        Ok(())
    } else {
        Err(format!(
            "the endpoint answered HTTP {}",
            resp.status().as_u16()
        ))
    }
}

/// Delivers what is due now; returns how many deliveries were started.
pub async fn dispatch_once(
    app: &Arc<App>,
    http: &reqwest::Client,
    in_flight: &Arc<InFlight>,
) -> Result<usize, changegate_app::AppError> {
    let free = in_flight.slots.available_permits();
    if free == 0 {
        return Ok(0);
    }
    let due = app
        .claim_due_deliveries(
            free as u64,
            chrono::Duration::seconds(60),
            &in_flight.busy(),
            PER_WEBHOOK,
        )
        .await?;
    let n = due.len();
    for d in due {
        let Ok(permit) = in_flight.slots.clone().acquire_owned().await else {
            break;
        };
        in_flight.add(d.webhook, 1);
        let (app, http, in_flight) = (app.clone(), http.clone(), in_flight.clone());
        tokio::spawn(async move {
            let outcome = deliver(&http, &d).await;
            if let Err(e) = &outcome {
                tracing::info!(delivery = d.id, msg_id = %d.msg_id, error = %e, "webhook delivery attempt failed; will retry");
            }
            if let Err(e) = app.finish_delivery(&d, outcome).await {
                tracing::warn!(delivery = d.id, error = %e, "could not record a delivery outcome; its lease expires and it is retried");
            }
            in_flight.add(d.webhook, -1);
            drop(permit);
        });
    }
    Ok(n)
}

/// Runs the dispatcher until the app is dropped.
pub fn spawn_dispatcher(app: &Arc<App>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(app);
    tokio::spawn(async move {
        let http = match reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(Duration::from_secs(5))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot build the webhook HTTP client; notifications stay queued");
                return;
            }
        };
        let in_flight = InFlight::new();
        loop {
            let Some(app) = weak.upgrade() else { break };
            match dispatch_once(&app, &http, &in_flight).await {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "webhook dispatcher could not read the outbox")
                }
            }
            // notify_one keeps a permit when nobody waits, so a wake-up between the dispatch
            // above and this wait is not lost.
            let wake = app.dispatch_wake.notified();
            tokio::select! {
                () = wake => {}
                () = tokio::time::sleep(Duration::from_secs(2)) => {}
            }
        }
    })
}
