//! What the fuzzer (`scripts/schemathesis`) and the random-SIGKILL test found, kept as
//! regression tests: conditions that once made the server answer 5xx, and places where the
//! OpenAPI document did not describe what the server does.

use crate::cli::closed_port;
use crate::sink::{eventually, hook};
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
        detected_at: None,
        national_security: false,
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
                        detected_at: None,
                        national_security: false,
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

/// `/change-requests/01` was change request 1, and `limit=0` returned one event.
#[tokio::test]
async fn a_padded_or_signed_id_is_no_id_and_limit_0_returns_no_event() {
    let t = spawn_app().await;
    let w = t.world().await;
    let cr = ok(w
        .owner
        .file_change(&change(
            "TTHC",
            &["production"],
            vec![git(&random_oid(), &random_oid())],
        ))
        .await);
    let get = |path: String| {
        let c = &w.owner;
        async move { ok(c.raw(Method::GET, &path, None, vec![]).await) }
    };
    let (status, _, _) = get(format!("/api/v1/change-requests/{}", cr.id)).await;
    assert_eq!(status, 200);
    for path in [
        format!("/api/v1/change-requests/0{}", cr.id),
        format!("/api/v1/change-requests/00{}", cr.id),
        format!("/api/v1/change-requests/+{}", cr.id),
    ] {
        let (status, _, body) = get(path.clone()).await;
        let body = String::from_utf8_lossy(&body);
        assert_eq!(status, 404, "{path}: {body}");
        assert!(body.contains("not_found"), "{path}: {body}");
    }

    assert!(ok(w.auditor.audit(0, 0).await).events.is_empty());
    assert_eq!(ok(w.auditor.audit(0, 1).await).events.len(), 1);
}

/// A refused `system` carrying a newline and terminal escapes was written raw into the human log,
/// at ERROR, as every refused client request was.
#[tokio::test]
async fn a_refused_value_with_control_characters_is_logged_escaped_and_not_as_an_error() {
    use crate::cli::{changegate_bin, outcome, run};
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::copy(
        crate::cli::workspace().join("tests/fixtures/upgrade/373a14d.sqlite"),
        data.join("changegate.db"),
    )
    .unwrap();
    let url = format!("sqlite://{}?mode=rwc", data.join("changegate.db").display());
    let mut c = std::process::Command::new(changegate_bin());
    c.current_dir(root.path())
        .args(["admin", "create-token", "--database-url", &url])
        .args(["--username", "nguyen.van.an", "--name", "log"]);
    let (code, out, err) = outcome(&run(c).await);
    assert_eq!(code, Some(0), "{out}{err}");
    let token = out.lines().last().unwrap().trim().to_owned();
    let server = crate::process::Server::start(&data, &url, None).await;
    let evil = "TTHC\n2026-12-02T00:00:00Z CRIT forged: \u{1b}[2J\u{1b}[31mroot login";
    let res = reqwest::Client::new()
        .post(format!("{}/api/v1/change-requests", server.url))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "system": evil, "kind": "software", "title": "x", "description": "",
            "environments": [], "subjects": [{"type": "artifact", "digest": format!("sha256:{}", "a".repeat(64))}]
        }))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_client_error(), "{}", res.status());
    let log = eventually("the refusal is logged", Duration::from_secs(10), || {
        let log = server.log();
        async move { log.contains("root login").then_some(log) }
    })
    .await;
    // The log is a file: no colours of the logger's own, and the client's escapes written
    // escaped.
    assert!(!log.contains('\u{1b}'), "an escape in the log:\n{log}");
    for line in log.lines() {
        assert!(
            !line.starts_with("2026-12-02T00:00:00Z"),
            "a forged line in the log:\n{log}"
        );
        if line.contains("root login") {
            assert!(
                !line.contains("ERROR"),
                "a client's mistake logged as an error: {line}"
            );
        }
    }
}

/// A server limited to `open_files` open files, on a fresh seeded database, with `server_toml`
/// as its `[server]` section.
async fn limited_server(
    dir: &tempfile::TempDir,
    server_toml: &str,
    open_files: Option<u32>,
) -> crate::process::Server {
    let url = fresh_database_url(dir).await;
    crate::process::seed(&url).await;
    let cfg = dir.path().join("server.toml");
    std::fs::write(&cfg, format!("[server]\n{server_toml}\n")).unwrap();
    crate::process::Server::start_limited(dir.path(), &url, Some(&cfg), open_files).await
}

/// Opens `n` connections to `base` (http://host:port) that send `first` and then nothing.
async fn idle_sockets(base: &str, n: usize, first: &[u8]) -> Vec<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    let addr = base.trim_start_matches("http://").to_owned();
    let mut open = Vec::with_capacity(n);
    for _ in 0..n {
        match tokio::net::TcpStream::connect(&addr).await {
            Ok(mut s) => {
                if !first.is_empty() {
                    let _ = s.write_all(first).await;
                }
                open.push(s);
            }
            // The listen backlog may be full: what matters is what the server still answers.
            Err(_) => break,
        }
    }
    open
}

/// 1,100 sockets that sent nothing (or half a request) exhausted the file descriptors of a
/// server limited to 1,024 open files: `/healthz` and the gate stopped answering. The server now
/// bounds its connections below that and closes the ones that wait without a request to make
/// room, saying so once in its log.
#[tokio::test]
async fn a_thousand_idle_sockets_leave_healthz_answering() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = limited_server(&dir, "max_connections = 400", Some(1024)).await;
    let mut held = idle_sockets(&server.url, 600, b"").await;
    held.extend(idle_sockets(&server.url, 500, b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await);
    assert!(held.len() > 1000, "only {} sockets connected", held.len());
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    for _ in 0..5 {
        let started = Instant::now();
        let r = http
            .get(format!("{}/healthz", server.url))
            .send()
            .await
            .unwrap_or_else(|e| panic!("/healthz did not answer: {e}; log: {}", server.log()));
        assert_eq!(r.status(), 200);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "/healthz took {:?}",
            started.elapsed()
        );
    }
    assert!(server.running(), "the server stopped: {}", server.log());
    let log = server.log();
    assert_eq!(
        log.matches("connection limit reached").count(),
        1,
        "one line when the limit is reached: {log}"
    );
    assert!(!log.contains("Too many open files"), "{log}");
    drop(held);
}

/// With half-sent requests open (headers without their end, a body shorter than announced),
/// SIGTERM left the process up for 45 s and more. It now exits once the requests in flight had
/// `shutdown_timeout_secs` to finish.
#[tokio::test]
async fn sigterm_with_half_sent_requests_open_exits_within_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = limited_server(&dir, "shutdown_timeout_secs = 2", None).await;
    let mut held = idle_sockets(&server.url, 3, b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
    held.extend(
        idle_sockets(
            &server.url,
            3,
            b"POST /api/v1/change-requests HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"system\":",
        )
        .await,
    );
    held.extend(idle_sockets(&server.url, 3, b"").await);
    // The server has read what was sent.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let pid = server.child.id().unwrap();
    let started = Instant::now();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(Duration::from_secs(8), server.child.wait())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "still running {:?} after SIGTERM; log: {}",
                started.elapsed(),
                server.log()
            )
        })
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "exit took {:?}",
        started.elapsed()
    );
    assert!(status.success(), "exit status {status}: {}", server.log());
    drop(held);
}

/// API tokens were hashed with argon2id and shared its two permits with password sign-in, so
/// wrong sign-ins delayed every pipeline whose token was not yet cached. A token is now a keyed
/// SHA-256 found by an index: a fresh CI token answers at once while a spray of wrong passwords
/// runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fresh_ci_token_answers_within_200_ms_while_40_wrong_sign_ins_run() {
    let t = spawn_app().await;
    let w = t.world().await;
    let fresh = t
        .app
        .create_token(
            &changegate_app::Principal::operator(),
            "ci.stnmt",
            changegate_api::NewToken {
                name: "pipeline".into(),
                expires_in_days: Some(1),
            },
        )
        .await
        .unwrap();
    let ci = t.anon.with_token(fresh.token);
    // Forty wrong passwords for a real account, each from its own address (no throttle makes
    // them cheap): each one is an argon2id verification.
    let spray: Vec<_> = (0..40u8)
        .map(|i| {
            let app = t.app.clone();
            tokio::spawn(async move {
                let from = std::net::IpAddr::from([10, 9, 0, i]);
                let _ = app
                    .sign_in("nguyen.van.an", "sai-mat-khau", from, "spray")
                    .await;
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    let decision = ci
        .gate(&ask_commit("TTHC", "production", &random_oid()))
        .await;
    let took = started.elapsed();
    let still_running = spray.iter().filter(|h| !h.is_finished()).count();
    assert!(decision.is_ok(), "{decision:?}");
    assert!(
        still_running > 0,
        "the spray was over before the token was used: the test proves nothing"
    );
    assert!(
        took < Duration::from_millis(200),
        "the fresh token took {took:?} with {still_running} wrong sign-ins still running"
    );
    for h in spray {
        h.await.unwrap();
    }
    drop(w);
}

/// A token minted by an owner's token, with `days`: the child's client and details.
async fn mint(
    parent: &changegate_client::Client,
    days: u32,
) -> (changegate_client::Client, changegate_api::TokenInfo) {
    let child = ok(parent
        .create_token(&changegate_api::NewToken {
            name: format!("minted for {days} days"),
            expires_in_days: Some(days),
        })
        .await);
    (parent.with_token(child.token), child.info)
}

/// A 1-day token made a 366-day one: a child's expiry now never exceeds its parent's.
#[tokio::test]
async fn a_token_minted_by_a_token_expires_no_later_than_its_parent() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (day, day_info) = mint(&w.owner, 1).await;
    let (_, year_info) = mint(&day, 366).await;
    assert!(
        year_info.expires_at <= day_info.expires_at,
        "the child expires {} after its parent {}",
        year_info.expires_at,
        day_info.expires_at
    );
    // A shorter child keeps its own expiry.
    let (_, short) = mint(&w.owner, 366).await;
    assert!(short.expires_at > day_info.expires_at);
}

/// A child survived its parent's revocation: revoking a token now revokes what it minted, and
/// what those minted.
#[tokio::test]
async fn revoking_a_token_revokes_what_it_minted() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (parent, parent_info) = mint(&w.owner, 30).await;
    let (child, _) = mint(&parent, 30).await;
    let (grandchild, _) = mint(&child, 30).await;
    let (sibling, _) = mint(&w.owner, 30).await;
    for c in [&parent, &child, &grandchild] {
        ok(c.me().await);
    }
    ok(w.owner.revoke_token(&parent_info.id).await);
    for (what, c) in [
        ("parent", &parent),
        ("child", &child),
        ("grandchild", &grandchild),
    ] {
        let p = problem(c.me().await);
        assert_eq!(
            (p.status, p.code.as_str()),
            (401, "unauthorized"),
            "{what}: {p:?}"
        );
    }
    // A token the revoked one did not mint still works, as does the one that minted it.
    ok(sibling.me().await);
    ok(w.owner.me().await);
}

/// A revoked token's id with a wrong secret said "revoked": it now answers exactly as any bad
/// token, so guessing at a known id learns nothing.
#[tokio::test]
async fn a_revoked_tokens_id_with_a_wrong_secret_answers_as_any_bad_token() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (_, info) = mint(&w.owner, 30).await;
    ok(w.owner.revoke_token(&info.id).await);
    let answer = |token: String| {
        let anon = t.anon.clone();
        async move {
            let p = problem(anon.with_token(token).me().await);
            (p.status, p.code, p.detail, p.title)
        }
    };
    let guessed = answer(format!("cg_{}_{}", info.id, "x".repeat(43))).await;
    let unknown = answer(format!("cg_{}_{}", "0123456789abcdef", "x".repeat(43))).await;
    assert_eq!(guessed, unknown);
    assert_eq!(guessed.0, 401);
}
