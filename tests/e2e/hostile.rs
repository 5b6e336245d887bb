//! What the fuzzer (`scripts/schemathesis`) and the random-SIGKILL test found, kept as
//! regression tests: conditions that once made the server answer 5xx, and places where the
//! OpenAPI document did not describe what the server does.

use crate::cli::closed_port;
use crate::sink::hook;
use changegate_api::NewIncident;
use changegate_tests::*;
use reqwest::Method;
use std::time::{Duration, Instant};

/// Failing webhook deliveries record their outcome outside the write lock, so on SQLite (four
/// pooled connections) they can hold every connection while they wait for a use case's write
/// transaction. A use case that then asked the pool for a second connection inside its
/// transaction (reporting an incident read its reporter that way) waited for them and they for
/// it, until the pool timed out: a 500. Found by the random-SIGKILL test, where a restarted
/// server retries a backlog of deliveries at once.
#[tokio::test]
async fn incident_reports_amid_a_backlog_of_failing_deliveries_all_succeed() {
    let t = spawn_app().await;
    let w = t.world().await;
    ok(t.admin
        .create_webhook(&hook(&format!("http://127.0.0.1:{}/hook", closed_port())))
        .await);
    let report = |n: String| NewIncident {
        kind: "other".into(),
        severity: "low".into(),
        summary: format!("Sự cố thử nghiệm {n}"),
    };
    // A backlog: each report queues a delivery that fails and is retried 5 s later, all at once.
    for i in 0..40 {
        ok(w.owner
            .report_incident("TTHC", &report(format!("b{i}")))
            .await);
    }
    // Reports while the backlog is retried.
    let until = Instant::now() + Duration::from_secs(8);
    let reporters: Vec<_> = (0..4)
        .map(|r| {
            let owner = w.owner.clone();
            tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < until {
                    let i = NewIncident {
                        kind: "other".into(),
                        severity: "low".into(),
                        summary: format!("Sự cố đồng thời {r}-{n}"),
                    };
                    if let Err(e) = owner.report_incident("TTHC", &i).await {
                        panic!("report {r}-{n}: {e}");
                    }
                    n += 1;
                }
                n
            })
        })
        .collect();
    let mut made = 0;
    for r in reporters {
        made += r.await.unwrap();
    }
    assert!(made > 0);
}

/// The OpenAPI document describes the server as it is: query parameters are in the query (the
/// document had every one of them in the path, required, so a client generated from it, or a
/// fuzzer, could not ask the gate anything), the health checks take no token, and errors are
/// `application/problem+json`.
#[tokio::test]
async fn the_openapi_document_puts_parameters_where_the_server_reads_them() {
    let t = spawn_app().await;
    let (status, _, body) = t
        .anon
        .raw(Method::GET, "/api/openapi.json", None, vec![])
        .await
        .unwrap();
    assert_eq!(status.as_u16(), 200);
    let doc: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let paths = doc["paths"].as_object().unwrap();
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                let templated = path.contains(&format!("{{{name}}}"));
                assert_eq!(
                    p["in"] == "path",
                    templated,
                    "{method} {path}: parameter {name} is in {}",
                    p["in"]
                );
            }
            for (code, r) in op["responses"].as_object().unwrap() {
                let content = r["content"].as_object();
                let problem = content.is_some_and(|c| {
                    c.values().any(|m| {
                        m["schema"]["$ref"]
                            .as_str()
                            .is_some_and(|s| s.ends_with("/Problem"))
                    })
                });
                if problem {
                    assert!(
                        content.unwrap().contains_key("application/problem+json"),
                        "{method} {path} {code}: {r}"
                    );
                }
            }
        }
    }
    let gate: Vec<(&str, bool)> = paths["/api/v1/gate"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["name"].as_str().unwrap(), p["required"] == true))
        .collect();
    assert_eq!(
        gate,
        [
            ("system", true),
            ("env", true),
            ("commit", false),
            ("tree", false),
            ("artifact", false),
            ("wait", false)
        ]
    );
    for path in ["/healthz", "/readyz", "/api/v1/keys"] {
        assert_eq!(
            paths[path]["get"]["security"],
            serde_json::json!([{}]),
            "{path} takes no token"
        );
    }
    // And the query the document describes is the one the server reads.
    let w = t.world().await;
    let q = format!(
        "/api/v1/gate?system=TTHC&env=production&commit={}",
        random_oid()
    );
    let (status, _, _) = w.ci.raw(Method::GET, &q, None, vec![]).await.unwrap();
    assert_eq!(status.as_u16(), 200);
}
