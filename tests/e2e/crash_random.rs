//! SIGKILL at random points while three writers send a stream of mixed writes (file a change,
//! submit it, sign it off, report and resolve incidents, declare freeze windows), over several
//! rounds on one database. After every kill and restart:
//!
//! - every acknowledged write is there with the content and state it was acknowledged with;
//! - a write that got no answer is whole or absent: every row has the audit event that created
//!   it and every audit event its row, each row's state is the one its audit events lead to, and
//!   every notification queued in the outbox matches one audit event and the other way round;
//! - `changegate audit verify` exits 0;
//! - the restarted server's gate (its in-memory index) agrees with the database, once loaded
//!   after the restart and again after it has followed writes of its own.
//!
//! The kill delays and the writers' choices come from a seeded RNG; the seed is printed and
//! `CHANGEGATE_CRASH_SEED` replays it (the interleaving of the writers still varies).

use crate::cli::{changegate_bin, closed_port, outcome, run};
use crate::process::{Seeded, Server, seed};
use crate::sink::hook;
use changegate_api::{ChangeRequest, NewFreezeWindow, NewIncident, NewSystem};
use changegate_client::{Client, ClientError};
use changegate_store::entity::{
    audit_event, change_request as cr, cr_subject, delivery, freeze_window, incident, sign_off,
    system,
};
use changegate_store::sea_orm::{DatabaseConnection, EntityTrait, QueryOrder};
use changegate_tests::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Rounds that end with a SIGKILL; one more round ends with the writers stopping by themselves.
const ROUNDS: usize = 5;
/// Where changes are filed, submitted and signed off.
const CHANGES: &str = "TTHC";
/// Where incidents are reported and freeze windows declared (so that `CHANGES` stays open).
const OTHER: &str = "KHO-DL";
const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];
const KINDS: [&str; 4] = ["malware", "vulnerability", "abnormal_access", "other"];

#[derive(Debug, Clone)]
struct Change {
    title: String,
    commit: String,
    /// The state last acknowledged (or read back after a restart).
    state: String,
    /// The state an unanswered write on it would have led to.
    maybe: Option<String>,
    view: ChangeRequest,
}

#[derive(Debug, Clone)]
struct Incident {
    summary: String,
    severity: String,
    status: String,
    maybe: Option<String>,
}

#[derive(Debug, Default, Clone)]
struct Ledger {
    changes: BTreeMap<i64, Change>,
    incidents: BTreeMap<i64, Incident>,
    /// Freeze windows: id → reason.
    freezes: BTreeMap<i64, String>,
    /// Creations that got no answer: what (table) and their unique title, summary or reason.
    unanswered_creations: Vec<(&'static str, String)>,
    /// Unanswered creations after a restart (checked for duplicates at the end).
    settled_creations: Vec<(&'static str, String)>,
    /// Submitted changes waiting for the reviewer.
    to_review: VecDeque<i64>,
    /// Open incidents the reviewer may resolve.
    to_resolve: VecDeque<i64>,
    acknowledged: usize,
    unanswered: usize,
}

/// What became of one call.
enum Answer<T> {
    Acknowledged(T),
    /// No answer: the server died before or while it handled the call.
    Lost,
}

fn answer<T>(what: &str, r: Result<T, ClientError>) -> Answer<T> {
    match r {
        Ok(v) => Answer::Acknowledged(v),
        Err(ClientError::Transport(e)) if !e.starts_with("HTTP ") => Answer::Lost,
        Err(e) => panic!("{what}: the server answered with an error: {e}"),
    }
}

type Shared = Arc<Mutex<Ledger>>;

/// The owner: files changes and submits most of them.
async fn owner_writer(
    owner: Client,
    ledger: Shared,
    stop: Arc<AtomicBool>,
    tag: String,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let (commit, tree) = (random_oid(), random_oid());
        let mut new = change(CHANGES, &["production"], vec![git(&commit, &tree)]);
        new.title = format!("Thay đổi {tag}-{n}");
        let c = match answer("file", owner.file_change(&new).await) {
            Answer::Acknowledged(c) => c,
            Answer::Lost => {
                let mut l = ledger.lock().unwrap();
                l.unanswered += 1;
                l.unanswered_creations.push(("change", new.title));
                return;
            }
        };
        assert_eq!(
            (c.state.as_str(), c.title.as_str()),
            ("draft", new.title.as_str())
        );
        {
            let mut l = ledger.lock().unwrap();
            l.acknowledged += 1;
            l.changes.insert(
                c.id,
                Change {
                    title: new.title.clone(),
                    commit,
                    state: c.state.clone(),
                    maybe: None,
                    view: c.clone(),
                },
            );
        }
        if rng.random_bool(0.25) {
            continue;
        }
        ledger.lock().unwrap().changes.get_mut(&c.id).unwrap().maybe = Some("submitted".into());
        let s = answer("submit", owner.submit(c.id).await);
        let mut l = ledger.lock().unwrap();
        match s {
            Answer::Acknowledged(s) => {
                assert_eq!(s.state, "submitted");
                l.acknowledged += 1;
                let e = l.changes.get_mut(&c.id).unwrap();
                (e.state, e.maybe, e.view) = (s.state.clone(), None, s);
                l.to_review.push_back(c.id);
            }
            Answer::Lost => {
                l.unanswered += 1;
                return;
            }
        }
    }
}

/// The PA05 reviewer: signs off submitted changes (pass, sometimes fail) and resolves incidents.
async fn reviewer_writer(reviewer: Reviewer, ledger: Shared, stop: Arc<AtomicBool>, seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    loop {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let next = {
            let mut l = ledger.lock().unwrap();
            match l.to_review.pop_front() {
                Some(id) => Some((true, id)),
                None if rng.random_bool(0.5) => l.to_resolve.pop_front().map(|id| (false, id)),
                None => None,
            }
        };
        match next {
            Some((true, id)) => {
                let conclusion = if rng.random_bool(0.8) { "pass" } else { "fail" };
                let expected = if conclusion == "pass" {
                    "approved"
                } else {
                    "rejected"
                };
                let view = {
                    let mut l = ledger.lock().unwrap();
                    let e = l.changes.get_mut(&id).unwrap();
                    e.maybe = Some(expected.into());
                    e.view.clone()
                };
                let s = answer(
                    "sign-off",
                    reviewer
                        .sign_off(id, &sign_off_all(&view, conclusion))
                        .await,
                );
                let mut l = ledger.lock().unwrap();
                match s {
                    Answer::Acknowledged(s) => {
                        assert_eq!(s.state, expected, "change {id}");
                        l.acknowledged += 1;
                        let e = l.changes.get_mut(&id).unwrap();
                        (e.state, e.maybe, e.view) = (s.state.clone(), None, s);
                    }
                    Answer::Lost => {
                        l.unanswered += 1;
                        return;
                    }
                }
            }
            Some((false, id)) => {
                ledger.lock().unwrap().incidents.get_mut(&id).unwrap().maybe =
                    Some("resolved".into());
                let r = answer("resolve", reviewer.resolve_incident(id).await);
                let mut l = ledger.lock().unwrap();
                match r {
                    Answer::Acknowledged(i) => {
                        assert_eq!(i.status, "resolved");
                        l.acknowledged += 1;
                        let e = l.incidents.get_mut(&id).unwrap();
                        (e.status, e.maybe) = (i.status, None);
                    }
                    Answer::Lost => {
                        l.unanswered += 1;
                        return;
                    }
                }
            }
            None => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// The owner reports incidents on the other system; the admin declares freeze windows on it,
/// some in force now, some later.
async fn incident_writer(
    owner: Client,
    admin: Client,
    ledger: Shared,
    stop: Arc<AtomicBool>,
    tag: String,
    seed: u64,
) {
    let mut rng = StdRng::seed_from_u64(seed);
    for n in 0.. {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(0..30))).await;
        if rng.random_bool(0.7) {
            let new = NewIncident {
                detected_at: None,
                national_security: false,
                kind: KINDS[rng.random_range(0..KINDS.len())].into(),
                severity: SEVERITIES[rng.random_range(0..SEVERITIES.len())].into(),
                summary: format!("Sự cố {tag}-{n}: truy cập bất thường từ địa chỉ IP lạ"),
            };
            let r = answer("incident", owner.report_incident(OTHER, &new).await);
            let mut l = ledger.lock().unwrap();
            match r {
                Answer::Acknowledged(i) => {
                    assert_eq!((i.status.as_str(), &i.summary), ("open", &new.summary));
                    l.acknowledged += 1;
                    l.incidents.insert(
                        i.id,
                        Incident {
                            summary: new.summary,
                            severity: new.severity,
                            status: i.status,
                            maybe: None,
                        },
                    );
                    l.to_resolve.push_back(i.id);
                }
                Answer::Lost => {
                    l.unanswered += 1;
                    l.unanswered_creations.push(("incident", new.summary));
                    return;
                }
            }
        } else {
            let now = chrono::Utc::now();
            let (starts, ends) = if rng.random_bool(0.5) {
                (
                    now - chrono::Duration::hours(1),
                    now + chrono::Duration::days(1),
                )
            } else {
                (
                    now + chrono::Duration::days(1),
                    now + chrono::Duration::days(2),
                )
            };
            let new = NewFreezeWindow {
                environment: None,
                starts_at: Some(starts),
                ends_at: Some(ends),
                cron: None,
                duration_minutes: None,
                reason: format!("Đóng băng {tag}-{n}: kỳ quyết toán"),
            };
            let r = answer("freeze", admin.create_freeze_window(OTHER, &new).await);
            let mut l = ledger.lock().unwrap();
            match r {
                Answer::Acknowledged(f) => {
                    assert_eq!(f.reason, new.reason);
                    l.acknowledged += 1;
                    l.freezes.insert(f.id, new.reason);
                }
                Answer::Lost => {
                    l.unanswered += 1;
                    l.unanswered_creations.push(("freeze window", new.reason));
                    return;
                }
            }
        }
    }
}

/// Starts the three writers; they stop at the first unanswered call, or when `stop` is set.
fn writers(
    server: &Server,
    tokens: &Seeded,
    ledger: &Shared,
    stop: &Arc<AtomicBool>,
    round: usize,
    rng: &mut StdRng,
) -> Vec<tokio::task::JoinHandle<()>> {
    vec![
        tokio::spawn(owner_writer(
            server.client(&tokens.owner),
            ledger.clone(),
            stop.clone(),
            format!("r{round}"),
            rng.random(),
        )),
        tokio::spawn(reviewer_writer(
            Reviewer::new(
                server.client(&tokens.reviewer),
                tokens.reviewer_factor.clone(),
            ),
            ledger.clone(),
            stop.clone(),
            rng.random(),
        )),
        tokio::spawn(incident_writer(
            server.client(&tokens.owner),
            server.client(&tokens.admin),
            ledger.clone(),
            stop.clone(),
            format!("r{round}"),
            rng.random(),
        )),
    ]
}

async fn join(handles: Vec<tokio::task::JoinHandle<()>>, server: &Server) {
    for h in handles {
        let r = tokio::time::timeout(Duration::from_secs(30), h)
            .await
            .expect("a writer stops once the server is gone or told to");
        if let Err(e) = r {
            let log = server.log();
            let tail: Vec<&str> = log.lines().rev().take(40).collect();
            panic!(
                "a writer failed: {e}\nserver log (last lines, newest first):\n{}",
                tail.join("\n")
            );
        }
    }
}

fn json(s: &Option<String>) -> serde_json::Value {
    s.as_deref()
        .map(|s| serde_json::from_str(s).unwrap())
        .unwrap_or(serde_json::Value::Null)
}

/// What the database holds, as far as these checks are concerned.
struct Snapshot {
    changes: BTreeMap<i64, cr::Model>,
    commits: BTreeMap<i64, String>,
    incidents: BTreeMap<i64, incident::Model>,
    freezes: BTreeMap<i64, freeze_window::Model>,
    other_system: i64,
}

/// Checks that every row has its audit event and the other way round, that rows are in the
/// state their events lead to, that the outbox matches the events, and that every
/// acknowledged write is there as acknowledged. Returns the rows.
async fn check_database(url: &str, ledger: &Ledger) -> Snapshot {
    let db: DatabaseConnection = changegate_store::connect(url).await.unwrap();
    let events = audit_event::Entity::find()
        .order_by_asc(audit_event::Column::Seq)
        .all(&db)
        .await
        .unwrap();
    let changes: BTreeMap<i64, cr::Model> = cr::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.id, c))
        .collect();
    let commits: BTreeMap<i64, String> = cr_subject::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|s| s.commit_id.map(|c| (s.change_request_id, c)))
        .collect();
    let sign_offs = sign_off::Entity::find().all(&db).await.unwrap();
    let incidents: BTreeMap<i64, incident::Model> = incident::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|i| (i.id, i))
        .collect();
    let freezes: BTreeMap<i64, freeze_window::Model> = freeze_window::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.id, f))
        .collect();
    let deliveries = delivery::Entity::find().all(&db).await.unwrap();
    let other_system = system::Entity::find()
        .all(&db)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.code == OTHER)
        .unwrap()
        .id;
    db.close().await.unwrap();

    // Replay the audit log: the state of every change and incident, the freeze windows, the
    // sign-offs and the notifications each event implies.
    let mut cr_state: BTreeMap<i64, String> = BTreeMap::new();
    let mut inc_status: BTreeMap<i64, String> = BTreeMap::new();
    let mut freeze_events: BTreeSet<i64> = BTreeSet::new();
    let mut sign_off_events: BTreeMap<i64, usize> = BTreeMap::new();
    let mut notified: BTreeMap<(String, i64), usize> = BTreeMap::new();
    for e in &events {
        let id = || e.entity_id.parse::<i64>().unwrap();
        let after = json(&e.after);
        let mut notify =
            |event: &str, id: i64| *notified.entry((event.into(), id)).or_default() += 1;
        match e.action.as_str() {
            "change_request.file" => {
                assert!(
                    cr_state.insert(id(), "draft".into()).is_none(),
                    "filed twice: {e:?}"
                );
            }
            "change_request.submit" => {
                notify("change_request.submitted", id());
                cr_state.insert(id(), after["state"].as_str().unwrap().into());
            }
            "change_request.sign_off" => {
                let state = after["state"].as_str().unwrap();
                *sign_off_events.entry(id()).or_default() += 1;
                notify(
                    match state {
                        "approved" => "change_request.approved",
                        "rejected" => "change_request.rejected",
                        _ => "change_request.signed_off",
                    },
                    id(),
                );
                cr_state.insert(id(), state.into());
            }
            a if a.starts_with("change_request.") => {
                panic!("no writer does {a}: {e:?}")
            }
            "incident.report" => {
                notify("incident.reported", id());
                assert!(inc_status.insert(id(), "open".into()).is_none());
            }
            "incident.resolve" => {
                assert_eq!(
                    inc_status.insert(id(), "resolved".into()).as_deref(),
                    Some("open")
                );
            }
            "freeze_window.create" => {
                assert!(freeze_events.insert(id()));
            }
            _ => {}
        }
    }

    // No row without the audit event that created it, no such event without its row, and each
    // row in the state its events lead to.
    let row_states: BTreeMap<i64, String> = changes
        .iter()
        .map(|(id, c)| (*id, c.state.as_str().to_owned()))
        .collect();
    assert_eq!(
        row_states, cr_state,
        "change requests against their audit events"
    );
    let row_status: BTreeMap<i64, String> = incidents
        .iter()
        .map(|(id, i)| (*id, i.status.as_str().to_owned()))
        .collect();
    assert_eq!(
        row_status, inc_status,
        "incidents against their audit events"
    );
    assert_eq!(
        freezes.keys().copied().collect::<BTreeSet<_>>(),
        freeze_events,
        "freeze windows against their audit events"
    );
    let mut rows_per_change: BTreeMap<i64, usize> = BTreeMap::new();
    for s in &sign_offs {
        *rows_per_change.entry(s.change_request_id).or_default() += 1;
    }
    assert_eq!(
        rows_per_change, sign_off_events,
        "sign-offs against their audit events"
    );
    // Every notification queued matches one event, and every event queued its notification.
    let mut queued: BTreeMap<(String, i64), usize> = BTreeMap::new();
    for d in &deliveries {
        let body: serde_json::Value = serde_json::from_str(&d.payload).unwrap();
        assert_eq!(body["type"], d.event.as_str());
        let id = body["data"]["id"].as_i64().unwrap();
        *queued.entry((d.event.clone(), id)).or_default() += 1;
    }
    assert_eq!(queued, notified, "the outbox against the audit events");

    // Every acknowledged write, as acknowledged.
    for (id, c) in &ledger.changes {
        let row = changes
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged change {id} ({}) is missing", c.title));
        assert_eq!(row.title, c.title, "change {id}");
        assert_eq!(commits.get(id), Some(&c.commit), "change {id}");
        assert!(
            row.state.as_str() == c.state || c.maybe.as_deref() == Some(row.state.as_str()),
            "change {id} is {} but was acknowledged {} (or unanswered towards {:?})",
            row.state.as_str(),
            c.state,
            c.maybe
        );
    }
    for (id, i) in &ledger.incidents {
        let row = incidents
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged incident {id} is missing"));
        assert_eq!(
            (row.summary.as_str(), row.severity.as_str()),
            (i.summary.as_str(), i.severity.as_str()),
            "incident {id}"
        );
        assert_eq!(row.system_id, other_system);
        assert!(
            row.status.as_str() == i.status || i.maybe.as_deref() == Some(row.status.as_str()),
            "incident {id} is {} but was acknowledged {}",
            row.status,
            i.status
        );
    }
    for (id, reason) in &ledger.freezes {
        let row = freezes
            .get(id)
            .unwrap_or_else(|| panic!("acknowledged freeze window {id} is missing"));
        assert_eq!(&row.reason, reason, "freeze window {id}");
        assert!(row.active);
    }
    // A creation that got no answer is there once or not at all.
    for (what, text) in ledger
        .unanswered_creations
        .iter()
        .chain(&ledger.settled_creations)
    {
        let n = match *what {
            "change" => changes.values().filter(|c| &c.title == text).count(),
            "incident" => incidents.values().filter(|i| &i.summary == text).count(),
            _ => freezes.values().filter(|f| &f.reason == text).count(),
        };
        assert!(n <= 1, "unanswered {what} {text:?} is there {n} times");
    }
    let known: usize = ledger.changes.len() + ledger.incidents.len() + ledger.freezes.len();
    let rows = changes.len() + incidents.len() + freezes.len();
    assert!(
        rows >= known
            && rows <= known + ledger.unanswered_creations.len() + ledger.settled_creations.len(),
        "{rows} rows for {known} acknowledged and {} unanswered creations",
        ledger.unanswered_creations.len() + ledger.settled_creations.len()
    );
    Snapshot {
        changes,
        commits,
        incidents,
        freezes,
        other_system,
    }
}

/// The gate of `server` agrees with the database: every change of `CHANGES` is allowed exactly
/// when approved (and denied with the reason its state gives otherwise), and `OTHER` is closed
/// by an incident or a freeze exactly when the database holds an open blocking one or one in
/// force.
async fn check_gate(server: &Server, ci: &str, s: &Snapshot) -> usize {
    let ci = server.client(ci);
    let now = chrono::Utc::now();
    let mut asked = 0;
    let ids: Vec<i64> = s.changes.keys().copied().collect();
    for chunk in ids.chunks(8) {
        let answers = futures_join(chunk.iter().map(|id| {
            let ci = ci.clone();
            let commit = s.commits[id].clone();
            async move { ci.gate(&ask_commit(CHANGES, "production", &commit)).await }
        }))
        .await;
        for (id, a) in chunk.iter().zip(answers) {
            let d = ok(a);
            let c = &s.changes[id];
            let valid = c.valid_until.is_some_and(|v| v > now);
            match c.state.as_str() {
                "approved" if valid => {
                    assert!(d.allowed(), "approved change {id}: {d:?}");
                    assert_eq!(d.change_request, Some(*id));
                }
                state => {
                    let expected = match state {
                        "submitted" => "pending_evaluation",
                        "rejected" => "evaluation_failed",
                        "draft" => "no_approved_change",
                        _ => panic!("change {id} is {state}"),
                    };
                    assert_eq!(d.codes(), vec![expected], "change {id} ({state}): {d:?}");
                }
            }
            asked += 1;
        }
    }
    let blocking = s.incidents.values().any(|i| {
        i.system_id == s.other_system
            && i.status.as_str() == "open"
            && ["high", "critical"].contains(&i.severity.as_str())
    });
    let frozen = s.freezes.values().any(|f| {
        f.system_id == s.other_system
            && f.active
            && f.starts_at.is_some_and(|t| t <= now)
            && f.ends_at.is_some_and(|t| t > now)
    });
    let d = ok(ci
        .gate(&ask_commit(OTHER, "production", &random_oid()))
        .await);
    let mut expected = vec![];
    if blocking {
        expected.push("incident_open");
    }
    expected.push("no_approved_change");
    if frozen {
        expected.push("freeze_window");
    }
    assert_eq!(d.codes(), expected, "{OTHER}: {d:?}");
    asked + 1
}

/// Awaits futures concurrently, keeping their order.
async fn futures_join<F>(fs: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

/// After a restart, what an unanswered write did is read back: it becomes the known state, and
/// the work it leaves (a submitted change to sign off, an open incident) is queued again.
fn copy(ledger: &Shared) -> Ledger {
    ledger.lock().unwrap().clone()
}

fn settle(ledger: &Shared, s: &Snapshot) -> usize {
    let mut l = ledger.lock().unwrap();
    let l = &mut *l;
    let mut committed = 0;
    l.to_review.clear();
    l.to_resolve.clear();
    for (id, c) in l.changes.iter_mut() {
        let now = s.changes[id].state.as_str().to_owned();
        committed += usize::from(c.maybe.as_ref() == Some(&now) && now != c.state);
        c.state = now;
        c.maybe = None;
        if c.state == "submitted" {
            l.to_review.push_back(*id);
        }
    }
    for (id, i) in l.incidents.iter_mut() {
        let now = s.incidents[id].status.as_str().to_owned();
        committed += usize::from(i.maybe.as_ref() == Some(&now) && now != i.status);
        i.status = now;
        i.maybe = None;
        if i.status == "open" {
            l.to_resolve.push_back(*id);
        }
    }
    // Creations that got no answer and are there all the same.
    for (what, text) in std::mem::take(&mut l.unanswered_creations) {
        let there = match what {
            "change" => s.changes.values().any(|c| c.title == text),
            "incident" => s.incidents.values().any(|i| i.summary == text),
            _ => s.freezes.values().any(|f| f.reason == text),
        };
        committed += usize::from(there);
        l.settled_creations.push((what, text));
    }
    committed
}

async fn audit_verify(dir: &std::path::Path, url: &str) {
    let mut verify = Command::new(changegate_bin());
    verify.current_dir(dir).env_remove("DATABASE_URL").args([
        "audit",
        "verify",
        "--database-url",
        url,
    ]);
    let (code, out, err) = outcome(&run(verify).await);
    assert_eq!(code, Some(0), "audit verify\nstdout: {out}\nstderr: {err}");
    assert!(out.contains("intact"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_sigkills_lose_no_acknowledged_write_and_leave_no_half_write() {
    let started = Instant::now();
    let crash_seed: u64 = std::env::var("CHANGEGATE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(rand::random);
    let mut rng = StdRng::seed_from_u64(crash_seed);
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(&dir).await;
    eprintln!(
        "random SIGKILL test on {} with CHANGEGATE_CRASH_SEED={crash_seed}",
        backend()
    );
    let tokens = seed(&url).await;

    let ledger: Shared = Arc::default();
    let mut server = Server::start(dir.path(), &url, None).await;
    {
        let admin = server.client(&tokens.admin);
        // Deliveries go nowhere (a closed port) and stay queued: the outbox rows are what is
        // checked.
        ok(admin
            .create_webhook(&hook(&format!("http://127.0.0.1:{}/hook", closed_port())))
            .await);
        ok(admin
            .create_system(&NewSystem {
                code: OTHER.into(),
                name: "Kho dữ liệu dùng chung".into(),
                owner_org: "STNMT".into(),
                operating_unit: "Trung tâm Công nghệ thông tin".into(),
                level: 3,
                population_db: true,
                environments: vec!["production".into()],
                components: vec![],
                last_review: None,
            })
            .await);
    }
    let mut gate_questions = 0;
    let mut committed = 0;
    for round in 1..=ROUNDS + 1 {
        let last = round > ROUNDS;
        let stop = Arc::new(AtomicBool::new(false));
        let handles = writers(&server, &tokens, &ledger, &stop, round, &mut rng);
        // A few writes first (PostgreSQL on a loaded machine is slow to warm up), then a random
        // delay, so that every round kills the server in the middle of a stream of writes.
        let before = ledger.lock().unwrap().acknowledged;
        let warm = Instant::now();
        while ledger.lock().unwrap().acknowledged < before + 5
            && warm.elapsed() < Duration::from_secs(30)
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let delay = Duration::from_millis(rng.random_range(0..2000));
        tokio::time::sleep(delay).await;
        if last {
            // The last round ends quietly, so that the gate can be compared with the database
            // after this server has followed its own writes.
            stop.store(true, Ordering::Relaxed);
            join(handles, &server).await;
            let s = check_database(&url, &copy(&ledger)).await;
            gate_questions += check_gate(&server, &tokens.ci, &s).await;
            assert!(server.running(), "log: {}", server.log());
            server.child.kill().await.unwrap();
        } else {
            server.child.kill().await.unwrap();
            // A writer between two calls (the reviewer waiting for work) stops here.
            stop.store(true, Ordering::Relaxed);
            join(handles, &server).await;
        }
        let (ack, lost) = {
            let l = ledger.lock().unwrap();
            (l.acknowledged, l.unanswered)
        };
        eprintln!(
            "round {round}: {} {} ms after its fifth write; {ack} writes acknowledged, {lost} unanswered so far",
            if last { "stopped" } else { "SIGKILL" },
            delay.as_millis()
        );
        let t = Instant::now();
        let s = check_database(&url, &copy(&ledger)).await;
        let checked = t.elapsed();
        audit_verify(dir.path(), &url).await;
        let verified = t.elapsed();
        if !last {
            server = Server::start(dir.path(), &url, None).await;
            let restarted = t.elapsed();
            gate_questions += check_gate(&server, &tokens.ci, &s).await;
            committed += settle(&ledger, &s);
            eprintln!(
                "  checked the database in {} ms, audit verify {} ms, restart {} ms, gate {} ms",
                checked.as_millis(),
                (verified - checked).as_millis(),
                (restarted - verified).as_millis(),
                (t.elapsed() - restarted).as_millis()
            );
        }
    }
    let l = ledger.lock().unwrap();
    eprintln!(
        "{} rounds: {} writes acknowledged ({} changes, {} incidents, {} freeze windows), {} unanswered ({committed} of them committed all the same), {gate_questions} gate questions, in {:.1} s",
        ROUNDS + 1,
        l.acknowledged,
        l.changes.len(),
        l.incidents.len(),
        l.freezes.len(),
        l.unanswered,
        started.elapsed().as_secs_f64()
    );
    assert!(l.unanswered >= 1, "a kill left no write unanswered");
    assert!(l.changes.values().any(|c| c.state == "approved"));
}
