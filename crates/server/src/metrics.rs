//! `/metrics` in the Prometheus text format (crates `metrics` and `metrics-exporter-prometheus`),
//! on its own listen address (`[metrics] listen = "127.0.0.1:9464"`; off when not set), so that
//! it is never exposed where the API is.
//!
//! Recorded where things happen, at few places of the edge: the gate's answers (by decision and
//! reason code, and their latency), HTTP answers by status class, sign-in failures. Computed by
//! database queries at scrape time (so that every replica reports the same, and nothing is kept
//! in memory): the gate index's lag behind the audit log, the outbox backlog and failed
//! deliveries, job runs and their last duration, locked accounts, open incidents by severity and
//! overdue items (re-reviews, breach notifications). Every label takes its value from a closed
//! set (decisions, reason codes, severities, job names, status classes): no user-controlled
//! string becomes a label.

use changegate_app::App;
use changegate_app::jobs::Job;
use changegate_domain::Severity;
use changegate_domain::gate::Verdict;
use changegate_domain::notify::DeliveryStatus;
use changegate_store as store;
use chrono::Utc;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// `[metrics]` of the configuration.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MetricsConfig {
    /// Address of the `/metrics` listener (e.g. `127.0.0.1:9464`); unset: no metrics.
    pub listen: Option<String>,
}

/// Buckets of the gate's latency, in seconds.
const GATE_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

/// Buckets of the other durations, in seconds.
const HTTP_BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// The process-wide recorder (one per process: the tests run many servers in one).
fn handle() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let built = PrometheusBuilder::new()
                .set_buckets(&HTTP_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("changegate_gate_duration_seconds".into()),
                        &GATE_BUCKETS,
                    )
                })
                .and_then(|b| b.install_recorder());
            match built {
                Ok(h) => {
                    spawn_upkeep(h.clone());
                    Some(h)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "metrics recorder not installed");
                    None
                }
            }
        })
        .as_ref()
}

/// How often recorded histogram samples are folded into their buckets.
const UPKEEP: Duration = Duration::from_secs(5);

/// The thread that folds histogram samples into their buckets. The recorder queues every sample
/// until a scrape or an upkeep drains the queue: without it a server whose `/metrics` nobody
/// scrapes (or scrapes rarely) would keep every gate answer's latency, growing with the traffic.
/// (Linux keeps 15 bytes of a thread name.)
const UPKEEP_THREAD: &str = "cg-metrics";

fn spawn_upkeep(h: PrometheusHandle) {
    let spawned = std::thread::Builder::new()
        .name(UPKEEP_THREAD.into())
        .spawn(move || {
            loop {
                std::thread::sleep(UPKEEP);
                h.run_upkeep();
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "metrics: no upkeep thread; histograms drain at scrapes only");
    }
}

/// Installs the recorder (idempotent); call before serving when metrics are on.
pub fn install() -> bool {
    handle().is_some()
}

/// A gate answer: its decision, reason codes (a closed set) and how long it took. Long-polls
/// (`wait`) are counted but not timed.
pub fn gate_answered(decision: &str, reasons: &[&str], took: Option<Duration>) {
    // Anything but an allow counts as a denial.
    let decision = Verdict::parse(decision).unwrap_or(Verdict::Deny).as_str();
    metrics::counter!("changegate_gate_decisions_total", "decision" => decision).increment(1);
    for r in reasons {
        metrics::counter!("changegate_gate_denial_reasons_total", "reason" => reason_label(r))
            .increment(1);
    }
    if let Some(t) = took {
        metrics::histogram!("changegate_gate_duration_seconds").record(t.as_secs_f64());
    }
}

/// A gate question that could not be answered (bad input, 503).
pub fn gate_failed(status: u16) {
    metrics::counter!("changegate_gate_decisions_total", "decision" => "error", "status" => status_class(status))
        .increment(1);
}

/// The reason codes the gate gives; anything else counts as `other`.
fn reason_label(code: &str) -> &'static str {
    changegate_api::ReasonCode::ALL
        .iter()
        .map(changegate_api::ReasonCode::as_str)
        .find(|c| *c == code)
        .unwrap_or("other")
}

fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// One HTTP answer: counted by status class; a failed sign-in (`POST /login` answered 4xx) too.
pub fn http_answered(method: &http::Method, path: &str, status: u16, took: Duration) {
    metrics::counter!("changegate_http_responses_total", "class" => status_class(status))
        .increment(1);
    metrics::histogram!("changegate_http_duration_seconds").record(took.as_secs_f64());
    if method == http::Method::POST && path == "/login" && (400..500).contains(&status) {
        metrics::counter!("changegate_sign_in_failures_total").increment(1);
    }
}

/// The text of `/metrics`: the recorded series and the ones computed now from the database.
pub async fn render(app: &App) -> String {
    let mut out = handle().map(|h| h.render()).unwrap_or_default();
    match gauges(app).await {
        Ok(g) => out.push_str(&g),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: database gauges unavailable");
            out.push_str("# HELP changegate_database_up Whether the scrape's database queries answered.\n# TYPE changegate_database_up gauge\nchangegate_database_up 0\n");
        }
    }
    out
}

fn gauge(out: &mut String, name: &str, help: &str, rows: &[(Vec<(&str, String)>, f64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (labels, v) in rows {
        let l: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", v.replace('\\', "\\\\").replace('"', "\\\"")))
            .collect();
        if l.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{}}} {v}", l.join(","));
        }
    }
}

async fn gauges(app: &App) -> Result<String, store::StoreError> {
    let db = &app.db;
    let now = Utc::now();
    let mut out = String::new();

    // The gate index: how far it is behind the audit log.
    let (head, _) = store::audit::head(db).await?;
    let applied = app.gate.last_seq();
    let lag = (head - applied).max(0);
    let age = if lag > 0 {
        store::metrics::event_time(db, applied + 1)
            .await?
            .map_or(0.0, |t| (now - t).num_milliseconds().max(0) as f64 / 1000.0)
    } else {
        0.0
    };
    gauge(
        &mut out,
        "changegate_gate_index_lag_events",
        "Audit events not yet applied to the gate index.",
        &[(vec![], lag as f64)],
    );
    gauge(
        &mut out,
        "changegate_gate_index_age_seconds",
        "Age of the oldest audit event the gate index has not applied (0: up to date).",
        &[(vec![], age)],
    );

    // The outbox.
    let pending = store::metrics::deliveries_in(db, DeliveryStatus::Pending).await?;
    let failed = store::metrics::deliveries_in(db, DeliveryStatus::Failed).await?;
    gauge(
        &mut out,
        "changegate_outbox_backlog",
        "Webhook deliveries waiting to be delivered.",
        &[(vec![], pending as f64)],
    );
    gauge(
        &mut out,
        "changegate_outbox_failed",
        "Webhook deliveries given up after their last attempt.",
        &[(vec![], failed as f64)],
    );

    // Jobs: runs and failures, and the last run's duration.
    let runs = store::metrics::job_runs(db, changegate_app::jobs::FAILED).await?;
    let mut run_rows = vec![];
    let mut fail_rows = vec![];
    for j in Job::ALL.map(Job::name) {
        let r = runs.iter().find(|r| r.job == j);
        run_rows.push((vec![("job", j.to_owned())], r.map_or(0, |r| r.runs) as f64));
        fail_rows.push((
            vec![("job", j.to_owned())],
            r.map_or(0, |r| r.failed) as f64,
        ));
    }
    gauge(
        &mut out,
        "changegate_job_runs",
        "Runs of each scheduled job recorded in the database.",
        &run_rows,
    );
    gauge(
        &mut out,
        "changegate_job_failures",
        "Runs of each scheduled job that failed.",
        &fail_rows,
    );
    let last = store::metrics::last_finished_runs(db).await?;
    let mut dur_rows = vec![];
    for j in Job::ALL.map(Job::name) {
        if let Some(r) = last.iter().find(|r| r.job == j)
            && let Some(f) = r.finished_at
        {
            dur_rows.push((
                vec![("job", j.to_owned())],
                (f - r.started_at).num_milliseconds().max(0) as f64 / 1000.0,
            ));
        }
    }
    gauge(
        &mut out,
        "changegate_job_last_duration_seconds",
        "Duration of each job's last finished run.",
        &dur_rows,
    );

    // Accounts locked after failed sign-ins.
    let n = store::metrics::accounts_locked(db, now).await?;
    gauge(
        &mut out,
        "changegate_accounts_locked",
        "Accounts locked now after failed sign-ins.",
        &[(vec![], n as f64)],
    );

    // Incidents open, and overdue breach notifications, by severity.
    let open = store::metrics::open_incidents(db).await?;
    let hours = i64::from(app.pack.incidents.breach_notify_hours);
    let mut open_rows = vec![];
    let mut late_rows = vec![];
    for s in Severity::ALL {
        let of: Vec<_> = open.iter().filter(|r| r.severity == *s).collect();
        let late = of
            .iter()
            .filter(|i| {
                i.kind.is_breach()
                    && i.a05_notified_at.is_none()
                    && i.detected_at.unwrap_or(i.reported_at) + chrono::Duration::hours(hours) < now
            })
            .count();
        open_rows.push((vec![("severity", s.as_str().to_owned())], of.len() as f64));
        late_rows.push((vec![("severity", s.as_str().to_owned())], late as f64));
    }
    gauge(
        &mut out,
        "changegate_incidents_open",
        "Open incidents by severity.",
        &open_rows,
    );
    gauge(
        &mut out,
        "changegate_breach_notifications_overdue",
        "Open personal-data breaches whose A05 notification is overdue, by severity.",
        &late_rows,
    );

    // Systems whose periodic re-review is overdue.
    let n = store::metrics::re_reviews_overdue(db, now).await?;
    gauge(
        &mut out,
        "changegate_re_reviews_overdue",
        "Active systems whose periodic re-review is overdue.",
        &[(vec![], n as f64)],
    );
    gauge(
        &mut out,
        "changegate_database_up",
        "Whether the scrape's database queries answered.",
        &[(vec![], 1.0)],
    );
    Ok(out)
}

/// The metrics router: `GET /metrics` only.
pub fn router(app: Arc<App>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let app = app.clone();
            async move {
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    render(&app).await,
                )
            }
        }),
    )
}

/// Serves `/metrics` on `listen` in the background (when configured).
pub async fn spawn(
    cfg: &MetricsConfig,
    app: Arc<App>,
) -> anyhow::Result<Option<(std::net::SocketAddr, tokio::task::JoinHandle<()>)>> {
    let Some(listen) = &cfg.listen else {
        return Ok(None);
    };
    install();
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {listen} for /metrics: {e}"))?;
    let addr = listener.local_addr()?;
    let task = tokio::spawn(async move {
        // The same bounds as the main listener (issue 16): idle sockets cannot exhaust it.
        let bounds = crate::conn::ServerConfig::default();
        let forever = std::future::pending::<()>();
        if let Err(e) = crate::conn::serve(listener, router(app), None, bounds, forever).await {
            tracing::warn!(error = %e, "the /metrics listener stopped");
        }
    });
    Ok(Some((addr, task)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a scrape, histogram samples are drained by the upkeep thread, not kept forever.
    #[cfg(target_os = "linux")]
    #[test]
    fn installing_the_recorder_starts_its_upkeep_thread_once() {
        assert!(install());
        assert!(install());
        // A new thread carries its parent's name until it has set its own.
        let upkeep_threads = || {
            std::fs::read_dir("/proc/self/task")
                .unwrap()
                .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .filter(|n| n.trim() == UPKEEP_THREAD)
                .count()
        };
        let started = std::time::Instant::now();
        while upkeep_threads() == 0 && started.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(upkeep_threads(), 1, "upkeep threads");
    }
}
