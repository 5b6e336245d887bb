//! Requests that race: two reviewers signing off the same change at once, an owner withdrawing
//! while a reviewer signs off, and a thousand pipelines long-polling the gate while PA05 signs
//! off. Each race ends in one consistent state, recorded once in the audit log: a request that
//! lost answers a 409 problem with a stable code and leaves no trace.
//!
//! The races run through one server and through two replicas on one database (a second app and
//! server in this process on the same database: different write locks and connection pools, so
//! only the database orders them), on SQLite and on PostgreSQL.

use crate::process::{Server, seed};
use crate::sink::eventually;
use changegate_api::{AuditEvent, ChangeRequest};
use changegate_app::audit::Verified;
use changegate_client::ClientError;
use changegate_tests::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A second replica of `t`: its own app (pool, write lock, gate index) on the same database,
/// served on its own port. Stops when the returned sender is dropped.
async fn second_replica(t: &TestApp) -> (String, tokio::sync::oneshot::Sender<()>) {
    // Its own signing key, in a directory of its own.
    let dir = t.dir.path().join(format!("replica-{}", random_oid()));
    let (app, url, tx) = serve(&config(&dir, &t.database_url)).await;
    drop(app);
    (url, tx)
}

/// The actions recorded in the audit log about change request `id`, in order, read through the
/// audit API.
async fn actions_on(t: &TestApp, id: i64) -> Vec<String> {
    let mut out = vec![];
    let mut after = 0;
    loop {
        let page = ok(t.admin.audit(after, 1000).await).events;
        let Some(last) = page.last().map(|e| e.seq) else {
            return out;
        };
        out.extend(
            page.into_iter()
                .filter(|e: &AuditEvent| {
                    e.entity == "change_request" && e.entity_id == id.to_string()
                })
                .map(|e| e.action),
        );
        after = last;
    }
}

async fn chain_is_intact(t: &TestApp) {
    match changegate_app::audit::verify_db(&t.app.db).await.unwrap() {
        Verified::Intact(n) => assert_eq!(n, t.audit_seq().await, "every event is in the chain"),
        Verified::Broken(b) => panic!("the audit chain broke under concurrent writes: {b:?}"),
    }
}

/// A change of `system` filed and submitted by the owner.
/// The code of a refusal: a 409 problem, or a failure of the test.
fn conflict(r: &Result<ChangeRequest, ClientError>) -> Option<&str> {
    match r {
        Ok(_) => None,
        Err(ClientError::Problem(p)) if p.status == 409 => Some(p.code.as_str()),
        Err(e) => panic!("expected success or a 409 problem, got {e}"),
    }
}

/// An answer in brief, for failure messages: the state and who signed, or the error.
fn brief(r: &Result<ChangeRequest, ClientError>) -> String {
    match r {
        Ok(c) => format!(
            "{} (signed by {:?})",
            c.state,
            c.sign_offs.iter().map(|s| &s.reviewer).collect::<Vec<_>>()
        ),
        Err(e) => e.to_string(),
    }
}

/// Runs `a` and `b` at once; `flip` decides which is polled (sent) first.
async fn at_once<A, B, RA, RB>(flip: bool, a: A, b: B) -> (RA, RB)
where
    A: std::future::Future<Output = RA> + Send + 'static,
    B: std::future::Future<Output = RB> + Send + 'static,
    RA: Send + 'static,
    RB: Send + 'static,
{
    // Spawned, so that on the multi-threaded runtime they truly run in parallel.
    let (a, b) = if flip {
        let b = tokio::spawn(b);
        (tokio::spawn(a), b)
    } else {
        (tokio::spawn(a), tokio::spawn(b))
    };
    (a.await.unwrap(), b.await.unwrap())
}

const ROUNDS: usize = 12;

/// How long a write through one replica may take to show in the other's gate (the README: within
/// its 200 ms poll; one second on a loaded machine).
const REPLICA_LAG: Duration = Duration::from_secs(1);

/// Waits up to `within` for the gate (as the STNMT pipeline, through the first server) to answer
/// about `commit` of TTHC with `want`: `allow`, or the one reason of a deny.
async fn gate_says(w: &World, commit: &str, within: Duration, want: &str) {
    let ask = ask_commit("TTHC", "production", commit);
    eventually(&format!("the gate to answer {want}"), within, || async {
        let d = ok(w.ci.gate(&ask).await);
        let got = if d.allowed() {
            vec!["allow".to_owned()]
        } else {
            d.codes().into_iter().map(str::to_owned).collect()
        };
        (got == [want]).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_reviewers_signing_off_at_once_are_both_counted_once_on_a_level_4_change() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (url_b, _stop_b) = second_replica(&t).await;
    let reviewer2_on_b = t.reviewer_on(&url_b, "do.minh.duc").await;
    for round in 0..ROUNDS {
        // DAT-DAI is level 4: a quorum of two distinct reviewers.
        let cr = w.submitted("DAT-DAI").await;
        assert_eq!(cr.quorum, 2);
        let second = if round % 2 == 0 {
            w.reviewer2.clone()
        } else {
            reviewer2_on_b.clone()
        };
        let (id, s1, s2) = (cr.id, sign_off_all(&cr, "pass"), sign_off_all(&cr, "pass"));
        let (r1, r2) = (w.reviewer.clone(), second);
        let (a, b) = at_once(
            round % 4 >= 2,
            async move { r1.sign_off(id, &s1).await },
            async move { r2.sign_off(id, &s2).await },
        )
        .await;
        let (a, b) = (ok(a), ok(b));
        // Both sign-offs count: whichever committed second saw the first and approved.
        let mut states = [a.state.as_str(), b.state.as_str()];
        states.sort_unstable();
        assert_eq!(states, ["approved", "submitted"], "round {round}");
        let now = ok(w.auditor.change(cr.id).await);
        assert_eq!(now.state, "approved", "round {round}");
        assert_eq!(
            now.sign_offs.len(),
            2,
            "round {round}: {}",
            brief(&Ok(now.clone()))
        );
        let subject = &cr.subjects[0];
        let changegate_api::WireSubject::GitCommit { commit, .. } = subject else {
            unreachable!()
        };
        // Through one server the gate allows at once; through two replicas within their poll.
        let within = if round % 2 == 0 {
            Duration::ZERO
        } else {
            REPLICA_LAG
        };
        let ask = ask_commit("DAT-DAI", "production", commit);
        eventually("the gate to allow the approved change", within, || async {
            ok(w.ci.gate(&ask).await).allowed().then_some(())
        })
        .await;
        assert_eq!(
            actions_on(&t, cr.id).await,
            [
                "change_request.file",
                "change_request.submit",
                "change_request.sign_off",
                "change_request.sign_off"
            ],
            "round {round}"
        );
    }
    chain_is_intact(&t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_two_reviewers_signing_off_a_level_3_change_at_once_one_approves_and_one_is_refused() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (url_b, _stop_b) = second_replica(&t).await;
    let reviewer2_on_b = t.reviewer_on(&url_b, "do.minh.duc").await;
    let mut first = BTreeMap::new();
    for round in 0..ROUNDS {
        // TTHC is level 3: one reviewer approves; the other finds it approved already.
        let cr = w.submitted("TTHC").await;
        assert_eq!(cr.quorum, 1);
        let second = if round % 2 == 0 {
            w.reviewer2.clone()
        } else {
            reviewer2_on_b.clone()
        };
        let (id, s1, s2) = (cr.id, sign_off_all(&cr, "pass"), sign_off_all(&cr, "pass"));
        let (r1, r2) = (w.reviewer.clone(), second);
        let (a, b) = at_once(
            round % 4 >= 2,
            async move { r1.sign_off(id, &s1).await },
            async move { r2.sign_off(id, &s2).await },
        )
        .await;
        let (winner, loser) = match (conflict(&a), conflict(&b)) {
            (None, Some(code)) => (a.as_ref().unwrap(), ("do.minh.duc", code)),
            (Some(code), None) => (b.as_ref().unwrap(), ("tran.thi.hoa", code)),
            _ => panic!(
                "round {round}: exactly one sign-off is accepted: {} / {}",
                brief(&a),
                brief(&b)
            ),
        };
        *first
            .entry(winner.sign_offs[0].reviewer.clone())
            .or_insert(0) += 1;
        assert_eq!(winner.state, "approved", "round {round}");
        assert_eq!(loser.1, "illegal_transition", "round {round}");
        let now = ok(w.auditor.change(cr.id).await);
        assert_eq!(now.state, "approved");
        assert_eq!(
            now.sign_offs.len(),
            1,
            "round {round}: the refused one left a row"
        );
        assert_ne!(now.sign_offs[0].reviewer, loser.0);
        assert_eq!(
            actions_on(&t, cr.id).await,
            [
                "change_request.file",
                "change_request.submit",
                "change_request.sign_off"
            ],
            "round {round}"
        );
    }
    eprintln!("level 3, two reviewers at once: first to sign {first:?}");
    chain_is_intact(&t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_reviewer_signing_off_twice_at_once_is_counted_once() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (url_b, _stop_b) = second_replica(&t).await;
    let reviewer_on_b = t.reviewer_on(&url_b, "tran.thi.hoa").await;
    for round in 0..ROUNDS {
        // A double click (or a retried request) on a level 4 change: one counts.
        let cr = w.submitted("DAT-DAI").await;
        let again = if round % 2 == 0 {
            w.reviewer.clone()
        } else {
            reviewer_on_b.clone()
        };
        let (id, s1, s2) = (cr.id, sign_off_all(&cr, "pass"), sign_off_all(&cr, "pass"));
        let r1 = w.reviewer.clone();
        let (a, b) = at_once(
            round % 4 >= 2,
            async move { r1.sign_off(id, &s1).await },
            async move { again.sign_off(id, &s2).await },
        )
        .await;
        let mut codes = [conflict(&a), conflict(&b)];
        codes.sort_unstable();
        assert_eq!(codes, [None, Some("already_signed")], "round {round}");
        let now = ok(w.auditor.change(cr.id).await);
        assert_eq!(now.state, "submitted", "round {round}: one pass of two");
        assert_eq!(now.sign_offs.len(), 1, "round {round}");
        assert_eq!(
            actions_on(&t, cr.id).await,
            [
                "change_request.file",
                "change_request.submit",
                "change_request.sign_off"
            ],
            "round {round}"
        );
    }
    chain_is_intact(&t).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_owner_withdrawing_while_a_reviewer_signs_off_ends_in_one_order_or_the_other() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (url_b, _stop_b) = second_replica(&t).await;
    let reviewer_on_b = t.reviewer_on(&url_b, "tran.thi.hoa").await;
    // The API step-up windows of both of the reviewer's tokens are opened first, so that the
    // racing sign-offs carry no second-factor code: checking one adds a write before the
    // sign-off and would tilt the race.
    for r in [&w.reviewer, &reviewer_on_b] {
        let cr = w.submitted("TTHC").await;
        let done = ok(r.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
        assert_eq!(done.state, "approved");
    }
    let mut seen = BTreeMap::new();
    for round in 0..2 * ROUNDS {
        // TTHC is level 3: one pass approves, and an approved change cannot be withdrawn; a
        // withdrawn change cannot be signed off.
        let cr = w.submitted("TTHC").await;
        let commit = match &cr.subjects[0] {
            changegate_api::WireSubject::GitCommit { commit, .. } => commit.clone(),
            s => panic!("{s:?}"),
        };
        let reviewer = if round % 2 == 0 {
            w.reviewer.clone()
        } else {
            reviewer_on_b.clone()
        };
        let owner = w.owner.clone();
        let (id, s) = (cr.id, sign_off_all(&cr, "pass"));
        // The sign-off does more work than the withdrawal (its second factor, the checklist), so
        // the withdrawal gets sent after a head start of 0 to 10 ms for the sign-off: the race
        // is run at several offsets and goes both ways.
        let head_start = Duration::from_millis(2 * (round % 6) as u64);
        let (withdrawn, signed) = at_once(
            round % 4 >= 2,
            async move {
                tokio::time::sleep(head_start).await;
                owner.withdraw(id).await
            },
            async move { reviewer.sign_off(id, &s).await },
        )
        .await;
        let now = ok(w.auditor.change(cr.id).await);
        let actions = actions_on(&t, cr.id).await;
        let within = if round % 2 == 0 {
            Duration::ZERO
        } else {
            REPLICA_LAG
        };
        let order = match (conflict(&withdrawn), conflict(&signed)) {
            // Withdrawn first: the sign-off found nothing to evaluate.
            (None, Some("illegal_transition")) => {
                assert_eq!(withdrawn.as_ref().unwrap().state, "withdrawn");
                assert_eq!(now.state, "withdrawn", "round {round}");
                assert!(
                    now.sign_offs.is_empty(),
                    "round {round}: {}",
                    brief(&Ok(now.clone()))
                );
                assert_eq!(
                    actions,
                    [
                        "change_request.file",
                        "change_request.submit",
                        "change_request.withdraw"
                    ],
                    "round {round}"
                );
                gate_says(&w, &commit, within, "no_approved_change").await;
                "withdrawn, then the sign-off refused"
            }
            // Signed off first: approved, and an approved change is not withdrawn.
            (Some("illegal_transition"), None) => {
                assert_eq!(signed.as_ref().unwrap().state, "approved");
                assert_eq!(now.state, "approved", "round {round}");
                assert_eq!(now.sign_offs.len(), 1, "round {round}");
                assert_eq!(
                    actions,
                    [
                        "change_request.file",
                        "change_request.submit",
                        "change_request.sign_off"
                    ],
                    "round {round}"
                );
                gate_says(&w, &commit, within, "allow").await;
                "signed off, then the withdrawal refused"
            }
            _ => panic!(
                "round {round}: exactly one of the withdrawal and the sign-off happens: {} / {}",
                brief(&withdrawn),
                brief(&signed)
            ),
        };
        *seen.entry(order).or_insert(0) += 1;
    }
    eprintln!("withdraw against sign-off, {} rounds: {seen:?}", 2 * ROUNDS);
    // Sent in both orders, the race went both ways (else this test proved nothing about it).
    assert_eq!(seen.len(), 2, "only one order ever happened: {seen:?}");
    chain_is_intact(&t).await;
}

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in {status}"))
}

/// How many of the connections from `ports` (the clients' local ports) the server process has
/// accepted: its socket descriptors whose TCP peer is one of them. Counting every descriptor
/// instead is thrown off when the server closes an idle keep-alive connection or its database
/// pool opens or drops one meanwhile.
fn accepted_from(pid: u32, ports: &std::collections::HashSet<u16>) -> usize {
    let inodes: std::collections::HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            l.to_str()?
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect();
    ["tcp", "tcp6"]
        .iter()
        .filter_map(|t| std::fs::read_to_string(format!("/proc/{pid}/net/{t}")).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    let peer = u16::from_str_radix(f.get(2)?.rsplit(':').next()?, 16).ok()?;
                    let inode: u64 = f.get(9)?.parse().ok()?;
                    Some((peer, inode))
                })
                .collect::<Vec<_>>()
        })
        .filter(|(peer, inode)| ports.contains(peer) && inodes.contains(inode))
        .count()
}

const WAITERS: usize = 1000;
/// What 1,000 held gate requests may add to the server's resident memory: 64 KiB each.
const WAITING_MEMORY_BOUND_KIB: u64 = 64 * 1024;
/// How soon after the sign-off's answer every waiting pipeline must have its answer: far below
/// the 60 seconds a missed wake-up would take, far above what a loaded test machine adds.
const WOKEN_WITHIN: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_waiting_pipelines_cost_little_memory_and_all_go_on_at_the_sign_off_not_at_their_timeout()
 {
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(&dir).await;
    let tokens = seed(&url).await;
    let mut server = Server::start(dir.path(), &url, None).await;
    let pid = server.child.id().unwrap();
    let owner = server.client(&tokens.owner);
    let (commit, tree) = (random_oid(), random_oid());
    let cr = ok(owner
        .file_change(&change("TTHC", &["production"], vec![git(&commit, &tree)]))
        .await);
    let cr = ok(owner.submit(cr.id).await);
    // The pipeline's token is verified once (argon2) and cached; the answer is a deny.
    let ci = server.client(&tokens.ci);
    for _ in 0..5 {
        let d = ok(ci.gate(&ask_commit("TTHC", "production", &commit)).await);
        assert_eq!(d.codes(), ["pending_evaluation"]);
    }
    let rss_before = rss_kib(pid);

    // 1,000 pipelines ask with wait=60, each on its own connection.
    let addr = server.url.trim_start_matches("http://").to_owned();
    let request = format!(
        "GET /api/v1/gate?system=TTHC&env=production&commit={commit}&tree={tree}&wait=60 HTTP/1.1\r\n\
         Host: {addr}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
        tokens.ci
    );
    let mut waiting = Vec::with_capacity(WAITERS);
    let mut ports = std::collections::HashSet::with_capacity(WAITERS);
    for _ in 0..WAITERS {
        let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
        ports.insert(s.local_addr().unwrap().port());
        s.write_all(request.as_bytes()).await.unwrap();
        waiting.push(tokio::spawn(async move {
            let mut answer = vec![];
            s.read_to_end(&mut answer).await.unwrap();
            (Instant::now(), answer)
        }));
    }
    // Until the server holds every connection, and a moment more to read and park each request.
    let held = Instant::now();
    while accepted_from(pid, &ports) < WAITERS {
        assert!(
            held.elapsed() < Duration::from_secs(30),
            "the server holds {} of {WAITERS} connections after 30 s",
            accepted_from(pid, &ports)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let early = waiting.iter().filter(|w| w.is_finished()).count();
    assert_eq!(
        early, 0,
        "{early} gate requests answered before the sign-off"
    );
    let rss_waiting = rss_kib(pid);
    let added = rss_waiting.saturating_sub(rss_before);
    eprintln!(
        "{WAITERS} waiting gate requests ({}): server RSS {rss_before} KiB -> {rss_waiting} KiB, +{added} KiB, {:.1} KiB per waiting client",
        backend(),
        added as f64 / WAITERS as f64
    );
    assert!(
        added < WAITING_MEMORY_BOUND_KIB,
        "{WAITERS} waiting requests added {added} KiB to the server's memory (bound {WAITING_MEMORY_BOUND_KIB} KiB)"
    );

    // PA05 signs off: every waiting pipeline is answered allow within a second.
    let reviewer = Reviewer::new(
        server.client(&tokens.reviewer),
        tokens.reviewer_factor.clone(),
    );
    let sent = Instant::now();
    ok(reviewer.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
    let answered = Instant::now();
    let mut latest = Duration::ZERO;
    let mut latencies = Vec::with_capacity(WAITERS);
    for w in waiting {
        let (at, answer) = tokio::time::timeout(Duration::from_secs(30), w)
            .await
            .expect("every waiting request is answered after the sign-off")
            .unwrap();
        let text = String::from_utf8_lossy(&answer);
        assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        let body = text.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
        let d: serde_json::Value =
            serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(d["decision"], "allow", "{text}");
        assert_eq!(d["change_request"], cr.id, "{text}");
        latest = latest.max(at.saturating_duration_since(answered));
        latencies.push(at.saturating_duration_since(sent));
    }
    latencies.sort_unstable();
    eprintln!(
        "sign-off answered in {:?}; {WAITERS} pipelines answered allow after the sign-off was sent: median {:?}, max {:?}; the last {latest:?} after the sign-off's answer",
        answered - sent,
        latencies[WAITERS / 2],
        latencies[WAITERS - 1],
    );
    // Woken by the sign-off, not by their 60-second timeout. How fast is scripts/bench-unblock's
    // to measure (a release build on a quiet machine; this is a debug build beside other tests).
    assert!(
        latest < WOKEN_WITHIN,
        "the last waiting pipeline was answered {latest:?} after the sign-off's answer (bound {WOKEN_WITHIN:?}, the wait was 60 s)"
    );
    assert!(
        server.running(),
        "the server stopped; log: {}",
        server.log()
    );
}
