//! Running it as a service: `/metrics` on its own address (gate decisions by decision and
//! reason, latency, database gauges), answering while a backup runs; the request id in the
//! `x-request-id` header, in problem+json and in the one JSON log line per request.

use crate::cli::{changegate_bin, closed_port, outcome, run};
use crate::process::Server;
use std::process::Command;

#[tokio::test]
async fn metrics_and_request_ids_of_a_running_server() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(
        crate::cli::workspace().join("tests/fixtures/upgrade/373a14d.sqlite"),
        data.join("changegate.db"),
    )
    .unwrap();
    let port = closed_port();
    let config = root.path().join("changegate.toml");
    std::fs::write(
        &config,
        format!("log_format = \"json\"\n[metrics]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .unwrap();
    let url = format!("sqlite://{}?mode=rwc", data.join("changegate.db").display());
    let mut c = Command::new(changegate_bin());
    c.current_dir(root.path())
        .args(["admin", "create-token", "--database-url", &url])
        .args(["--username", "ci.stnmt", "--name", "metrics"]);
    let (code, out, err) = outcome(&run(c).await);
    assert_eq!(code, Some(0), "{out}{err}");
    let token = out.lines().last().unwrap().trim().to_owned();
    let server = Server::start(&data, &url, Some(&config)).await;
    let http = reqwest::Client::new();
    let gate = |commit: &str, tree: &str| {
        http.get(format!(
            "{}/api/v1/gate?system=TTHC-TINH&env=production&commit={commit}&tree={tree}",
            server.url
        ))
        .bearer_auth(&token)
        .header("x-request-id", "lb-7f3a")
    };
    let allow = gate(
        "5a6cf30966b4cd3413164e475e8a6f37ee125f8e",
        "a08585ecb240d748d3fe14c558fba56e2bbea45a",
    )
    .send()
    .await
    .unwrap();
    assert_eq!(allow.headers()["x-request-id"], "lb-7f3a");
    let allow: serde_json::Value = allow.json().await.unwrap();
    assert_eq!(allow["decision"], "allow", "{allow}");
    let deny: serde_json::Value = gate(&"3".repeat(40), &"4".repeat(40))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(deny["decision"], "deny", "{deny}");

    // A problem answer carries the id of its request, the one in the header.
    let res = http
        .get(format!(
            "{}/api/v1/gate?system=TTHC-TINH&env=production",
            server.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(id.len() >= 16, "{id}");
    let problem: serde_json::Value = res.json().await.unwrap();
    assert_eq!(problem["request_id"], id.as_str(), "{problem}");

    // /metrics answers on its own address only.
    let main = http
        .get(format!("{}/metrics", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(main.status(), 404);
    let metrics_url = format!("http://127.0.0.1:{port}/metrics");
    let text = http
        .get(&metrics_url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for want in [
        "changegate_gate_decisions_total{decision=\"allow\"} 1",
        "changegate_gate_decisions_total{decision=\"deny\"} 1",
        "changegate_gate_denial_reasons_total{reason=\"no_approved_change\"} 1",
        "changegate_gate_duration_seconds_bucket{le=\"0.05\"}",
        "changegate_incidents_open{severity=\"high\"} 1",
        "changegate_re_reviews_overdue 1",
        "changegate_job_runs{job=\"review-sweep\"}",
        "changegate_outbox_backlog ",
        "changegate_accounts_locked ",
        "changegate_gate_index_lag_events ",
        "changegate_http_responses_total{class=\"4xx\"}",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }

    // Scraped while a backup runs: it answers.
    let mut c = Command::new(changegate_bin());
    c.current_dir(root.path())
        .args(["backup", "--database-url", &url, "--to", "copy.db"]);
    let backup = tokio::task::spawn_blocking(move || c.output().unwrap());
    let mut scrapes = 0;
    while !backup.is_finished() || scrapes == 0 {
        let r = http.get(&metrics_url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        scrapes += 1;
    }
    let (code, out, err) = outcome(&backup.await.unwrap());
    assert_eq!(code, Some(0), "{out}{err}");

    // One JSON log line per request, with status, duration and the request id.
    let log = server.log();
    let line = log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["fields"]["request_id"] == id.as_str())
        .unwrap_or_else(|| panic!("no log line for request {id}:\n{log}"));
    assert_eq!(line["fields"]["status"], 401, "{line}");
    assert_eq!(line["fields"]["path"], "/api/v1/gate", "{line}");
    assert!(line["fields"]["duration_ms"].as_f64().is_some(), "{line}");
}

#[tokio::test]
async fn the_readmes_changegate_behind_tls_1_is_accepted_and_a_wrong_value_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let migrate = |v: &str| {
        let mut c = Command::new(changegate_bin());
        c.current_dir(dir.path())
            .args(["migrate", "--data-dir"])
            .arg(dir.path().join("data"))
            .env_remove("DATABASE_URL")
            .env("CHANGEGATE_BEHIND_TLS", v);
        c
    };
    for v in ["1", "0", "true", "false", "yes", "no"] {
        let (code, out, err) = outcome(&run(migrate(v)).await);
        assert_eq!(code, Some(0), "CHANGEGATE_BEHIND_TLS={v}: {out}{err}");
    }
    let (code, out, err) = outcome(&run(migrate("maybe")).await);
    assert_ne!(code, Some(0), "{out}{err}");
    assert!(err.to_ascii_lowercase().contains("behind_tls"), "{err}");
}
