//! The index itself: per loaded system, its facts and its live change requests (those that can
//! still change a decision: awaiting evaluation, approved and not yet expired), keyed by subject
//! (commit id, tree id, artifact digest), so that a decision costs a hash lookup, not a database
//! round trip. Content that no live change covers (an expired approval, a rejected or revoked
//! change) is answered from an indexed query of the subjects by that content, whose answers are
//! kept in a small bounded cache that any change of the system's change requests empties.

use super::follower::STALE_AFTER;
use crate::{AppError, AppResult, json_col};
use changegate_domain::gate::{CandidateChange, EmergencyFacts, GateQuery, SystemFacts};
use changegate_domain::{ChangeKind, CrState, EnvName, PolicyPack};
use changegate_store::gate::ChangeRow;
use changegate_store::sea_orm::ConnectionTrait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(super) enum Key {
    Commit([u8; 20]),
    Tree([u8; 20]),
    Artifact([u8; 32]),
}

pub(super) fn bytes<const N: usize>(hex_str: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(hex_str, &mut out).ok().map(|()| out)
}

impl Key {
    pub(super) fn commit(s: &str) -> Option<Self> {
        bytes(s).map(Key::Commit)
    }
    pub(super) fn tree(s: &str) -> Option<Self> {
        bytes(s).map(Key::Tree)
    }
    pub(super) fn artifact(s: &str) -> Option<Self> {
        s.strip_prefix("sha256:").and_then(bytes).map(Key::Artifact)
    }
}

pub(super) struct CrFacts {
    pub(super) state: CrState,
    pub(super) kind: ChangeKind,
    pub(super) env_mask: u64,
    pub(super) valid_until: Option<DateTime<Utc>>,
    pub(super) emergency_until: Option<DateTime<Utc>>,
    pub(super) remediates_incident: Option<i64>,
    pub(super) keys: Box<[Key]>,
}

/// A change request read from the database because it covers content asked about that no live
/// change decides (it may be live too: the index's own copy is then the one used).
#[derive(Debug)]
pub(super) struct OldCr {
    pub(super) id: i64,
    pub(super) state: CrState,
    pub(super) kind: ChangeKind,
    pub(super) environments: Vec<EnvName>,
    pub(super) valid_until: Option<DateTime<Utc>>,
    pub(super) emergency_until: Option<DateTime<Utc>>,
    pub(super) remediates_incident: Option<i64>,
    pub(super) keys: Box<[Key]>,
}

/// The change requests with one subject, read from the database (by id, ascending).
pub(super) type OldList = Arc<[Arc<OldCr>]>;

/// Content keys whose database answer is kept per system; beyond, the cache starts again.
pub(super) const MAX_OLD_KEYS: usize = 1024;

/// Whether a change request can still change a decision, so that the index holds it: awaiting
/// its evaluation (an emergency change inside or past its window too), or approved and not yet
/// expired. Drafts, withdrawn, rejected, revoked and expired changes answer from the database.
pub(super) fn is_live(
    state: CrState,
    valid_until: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    match state {
        CrState::Submitted => true,
        CrState::Approved => valid_until.is_none_or(|v| v > now),
        _ => false,
    }
}

pub(super) struct Inner {
    pub(super) facts: SystemFacts,
    pub(super) env_names: Vec<EnvName>,
    /// The live change requests only (see [`is_live`]).
    pub(super) changes: HashMap<i64, CrFacts>,
    pub(super) subjects: HashMap<Key, Ids>,
    /// Environment lists as stored (JSON text) → mask, so that loading does not parse the same
    /// few lists again for every row.
    pub(super) masks: HashMap<String, u64>,
    /// Database answers about content no live change decides, by content (bounded).
    pub(super) old: HashMap<Key, OldList>,
    /// Bumped whenever a change request of the system changes: a database answer read before
    /// is not cached after.
    pub(super) old_gen: u64,
}

/// The change requests with one subject: almost always one, so no allocation for it.
#[derive(Debug, Clone)]
pub(super) enum Ids {
    One(i64),
    Many(Vec<i64>),
}

impl Ids {
    pub(super) fn as_slice(&self) -> &[i64] {
        match self {
            Ids::One(id) => std::slice::from_ref(id),
            Ids::Many(v) => v,
        }
    }

    pub(super) fn push(&mut self, id: i64) {
        match self {
            Ids::One(first) => *self = Ids::Many(vec![*first, id]),
            Ids::Many(v) => v.push(id),
        }
    }

    /// Removes `id`; true when nothing is left.
    pub(super) fn remove(&mut self, id: i64) -> bool {
        match self {
            Ids::One(x) => *x == id,
            Ids::Many(v) => {
                v.retain(|x| *x != id);
                let (empty, only) = (v.is_empty(), (v.len() == 1).then(|| v[0]));
                if let Some(only) = only {
                    *self = Ids::One(only);
                }
                empty
            }
        }
    }
}

impl Inner {
    pub(super) fn env_bit(&mut self, name: &str) -> u64 {
        if let Some(i) = self.env_names.iter().position(|e| e.as_str() == name) {
            return 1 << i;
        }
        match EnvName::parse(name) {
            Ok(e) if self.env_names.len() < 64 => {
                self.env_names.push(e);
                1 << (self.env_names.len() - 1)
            }
            // Beyond 64 distinct names an environment is simply not covered: fail closed.
            _ => 0,
        }
    }

    /// Forgets the database answers about old content (a change request of the system changed).
    pub(super) fn forget_old(&mut self) {
        self.old.clear();
        self.old_gen = self.old_gen.wrapping_add(1);
    }

    /// Keeps database answers read at generation `generation`, unless a change came in since.
    pub(super) fn keep_old(&mut self, generation: u64, fetched: &HashMap<Key, OldList>) {
        if generation != self.old_gen {
            return;
        }
        if self.old.len() + fetched.len() > MAX_OLD_KEYS {
            self.old.clear();
        }
        for (k, v) in fetched {
            self.old.insert(*k, v.clone());
        }
    }

    pub(super) fn remove(&mut self, id: i64) {
        self.facts.emergencies.retain(|e| e.id != id);
        if let Some(old) = self.changes.remove(&id) {
            for k in old.keys.iter() {
                if self.subjects.get_mut(k).is_some_and(|v| v.remove(id)) {
                    self.subjects.remove(k);
                }
            }
        }
    }

    /// Puts a change request (as read from the database) in the index if it is live, and its
    /// emergency window and approval in the facts; removes what was there before.
    pub(super) fn insert(
        &mut self,
        row: ChangeRow,
        keys: Vec<Key>,
        now: DateTime<Utc>,
    ) -> AppResult<()> {
        let id = row.id;
        self.remove(id);
        let state = row.state;
        if let Some(at) = row.approved_at {
            self.facts.last_approval_at = self.facts.last_approval_at.max(Some(at));
        }
        if let Some(until) = row.emergency_until {
            // Passed in time: approved before its window closed (a later expiry or revocation
            // of that approval does not undo that). One that passed never matters again.
            let approved = row.approved_at.is_some_and(|at| at <= until);
            if !approved {
                self.facts.emergencies.push(EmergencyFacts {
                    id,
                    until,
                    approved,
                });
            }
        }
        if !is_live(state, row.valid_until, now) {
            return Ok(());
        }
        let env_mask = match self.masks.get(&row.environments) {
            Some(m) => *m,
            None => {
                let envs: Vec<String> = json_col("environments", &row.environments)?;
                let m = envs.iter().fold(0, |m, e| m | self.env_bit(e));
                if self.masks.len() < 256 {
                    self.masks.insert(row.environments, m);
                }
                m
            }
        };
        for k in &keys {
            match self.subjects.get_mut(k) {
                Some(ids) => ids.push(id),
                None => {
                    self.subjects.insert(*k, Ids::One(id));
                }
            }
        }
        self.changes.insert(
            id,
            CrFacts {
                state,
                kind: row.kind,
                env_mask,
                valid_until: row.valid_until,
                emergency_until: row.emergency_until,
                remediates_incident: row.remediates_incident,
                keys: keys.into_boxed_slice(),
            },
        );
        Ok(())
    }

    /// The live change requests matching the query (what [`Inner::candidates_with`] adds to
    /// from the database).
    pub(super) fn candidates(&self, q: &GateQuery) -> Vec<CandidateChange> {
        self.candidates_with(q, &HashMap::new())
    }

    /// The content keys whose old changes are needed to decide and not yet cached: those of
    /// each group of the query (git, artifact) that no live change lets through now. When a
    /// live change lets a group through, the other changes covering it add no reason.
    pub(super) fn missing_old(&self, q: &GateQuery, now: DateTime<Utc>) -> Vec<Key> {
        let (git, art) = query_keys(q);
        let live = self.candidates(q);
        let decided = |matches: fn(&CandidateChange) -> bool| {
            live.iter()
                .filter(|c| matches(c))
                .any(|c| lets_through(c, q, now))
        };
        let mut out = vec![];
        if !git.is_empty() && !decided(|c| c.matches_git) {
            out.extend(git);
        }
        if let Some(k) = art
            && !decided(|c| c.matches_artifact)
        {
            out.push(k);
        }
        out.retain(|k| !self.old.contains_key(k));
        out
    }

    /// The change requests matching the query: the live ones from the index, and those read
    /// from the database (`fetched`, else the cache) that the index does not hold, per content
    /// key by ascending id, as a full load of every change would list them.
    pub(super) fn candidates_with(
        &self,
        q: &GateQuery,
        fetched: &HashMap<Key, OldList>,
    ) -> Vec<CandidateChange> {
        let (git, art) = query_keys(q);
        let mut out: Vec<CandidateChange> = vec![];
        let asked_tree = q.tree.as_ref().and_then(|t| Key::tree(t.as_str()));
        let mut add = |key: &Key, is_git: bool| {
            let live = self
                .subjects
                .get(key)
                .map(Ids::as_slice)
                .unwrap_or_default()
                .iter()
                .filter_map(|id| self.changes.get(id).map(|c| (*id, Found::Live(c))));
            let old = fetched
                .get(key)
                .or_else(|| self.old.get(key))
                .map(|l| &l[..])
                .unwrap_or_default()
                .iter()
                .filter(|o| !self.changes.contains_key(&o.id))
                .map(|o| (o.id, Found::Old(o)));
            let mut found: Vec<(i64, Found)> = live.chain(old).collect();
            found.sort_by_key(|f| f.0);
            for (id, c) in found {
                // A commit fixes its tree: a query naming the approved commit with another tree
                // is not that content (fail closed).
                if is_git
                    && matches!(key, Key::Commit(_))
                    && asked_tree.is_some_and(|t| !c.keys().contains(&t))
                {
                    continue;
                }
                if let Some(existing) = out.iter_mut().find(|x| x.id == id) {
                    existing.matches_git |= is_git;
                    existing.matches_artifact |= !is_git;
                    continue;
                }
                out.push(match c {
                    Found::Live(c) => CandidateChange {
                        id,
                        state: c.state,
                        kind: c.kind,
                        environments: self
                            .env_names
                            .iter()
                            .enumerate()
                            .filter(|(i, _)| c.env_mask & (1 << i) != 0)
                            .map(|(_, e)| e.clone())
                            .collect(),
                        valid_until: c.valid_until,
                        emergency_until: c.emergency_until,
                        remediates_incident: c.remediates_incident,
                        matches_git: is_git,
                        matches_artifact: !is_git,
                    },
                    Found::Old(o) => CandidateChange {
                        id,
                        state: o.state,
                        kind: o.kind,
                        environments: o.environments.clone(),
                        valid_until: o.valid_until,
                        emergency_until: o.emergency_until,
                        remediates_incident: o.remediates_incident,
                        matches_git: is_git,
                        matches_artifact: !is_git,
                    },
                });
            }
        };
        for k in &git {
            add(k, true);
        }
        if let Some(k) = &art {
            add(k, false);
        }
        out
    }
}

/// A change request matching a query: from the index or from the database.
enum Found<'a> {
    Live(&'a CrFacts),
    Old(&'a OldCr),
}

impl Found<'_> {
    fn keys(&self) -> &[Key] {
        match self {
            Found::Live(c) => &c.keys,
            Found::Old(o) => &o.keys,
        }
    }
}

/// The query's git keys (commit, tree) and artifact key.
fn query_keys(q: &GateQuery) -> (Vec<Key>, Option<Key>) {
    let git: Vec<Key> = [
        q.commit.as_ref().and_then(|c| Key::commit(c.as_str())),
        q.tree.as_ref().and_then(|t| Key::tree(t.as_str())),
    ]
    .into_iter()
    .flatten()
    .collect();
    let art = q.artifact.as_ref().and_then(|a| Key::artifact(a.as_str()));
    (git, art)
}

/// Whether the domain's `decide` lets the content through on this change (its approval or
/// break-glass window covers the environment now).
fn lets_through(c: &CandidateChange, q: &GateQuery, now: DateTime<Utc>) -> bool {
    if !c.environments.contains(&q.env) {
        return false;
    }
    let approved = c.state == CrState::Approved && c.valid_until.is_some_and(|v| v > now);
    let break_glass = c.kind == ChangeKind::Emergency
        && c.state == CrState::Submitted
        && c.emergency_until.is_some_and(|v| v > now);
    approved || break_glass
}

pub(super) struct SystemEntry {
    pub(super) id: i64,
    pub(super) owner_org: i64,
    pub(super) inner: RwLock<Inner>,
}

/// Tries of a background load (the last one holds off catch-ups, see [`GateIndex::spawn_load`]).
const LOAD_ATTEMPTS: u32 = 3;

/// The loaded systems by code.
pub(super) type Systems = RwLock<HashMap<String, Option<Arc<SystemEntry>>>>;

/// The index.
#[derive(Default)]
pub struct GateIndex {
    pub(super) systems: Arc<Systems>,
    pub(super) last_seq: Arc<AtomicI64>,
    pub(super) last_ok_ms: AtomicI64,
    pub(super) catch_up_lock: Arc<tokio::sync::Mutex<()>>,
    /// Systems whose index is being loaded in the background (see [`GateIndex::spawn_load`]).
    pub(super) loading: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// Woken whenever catching up applied events (long-polling gate requests wait on it).
    pub(crate) changed: tokio::sync::Notify,
}

pub(super) fn poisoned() -> AppError {
    AppError::Internal("gate index lock poisoned".into())
}

impl GateIndex {
    /// Starts following the audit log at its current head.
    pub async fn start_at_head(&self, db: &impl ConnectionTrait) -> AppResult<()> {
        let (seq, _) = changegate_store::audit::head(db).await?;
        self.last_seq.store(seq, Ordering::SeqCst);
        self.last_ok_ms
            .store(Utc::now().timestamp_millis(), Ordering::SeqCst);
        Ok(())
    }

    /// The last audit event applied.
    pub fn last_seq(&self) -> i64 {
        self.last_seq.load(Ordering::SeqCst)
    }

    pub(super) fn is_fresh(&self) -> bool {
        Utc::now().timestamp_millis() - self.last_ok_ms.load(Ordering::SeqCst)
            <= STALE_AFTER.as_millis() as i64
    }

    pub(super) async fn entry(
        &self,
        db: &impl ConnectionTrait,
        pack: &PolicyPack,
        tz: chrono_tz::Tz,
        code: &str,
    ) -> AppResult<Option<Arc<SystemEntry>>> {
        if let Some(slot) = self.systems.read().map_err(|_| poisoned())?.get(code) {
            return Ok(slot.clone());
        }
        let seq_before = self.last_seq();
        let loaded = self.load(db, pack, tz, code).await?;
        // Cache only if no catch-up ran since the load began: a catch-up skips systems that are
        // not cached, so it could not have patched this load. Holding the catch-up lock makes the
        // check and the insert one step with respect to catch-ups.
        let _no_catch_up = self.catch_up_lock.lock().await;
        // Unknown codes are not cached: anyone could fill the cache with made-up codes.
        if self.last_seq() == seq_before && loaded.is_some() {
            self.systems
                .write()
                .map_err(|_| poisoned())?
                .insert(code.to_owned(), loaded.clone());
        }
        Ok(loaded)
    }

    /// The system's slot if it is loaded.
    pub(super) fn cached(&self, code: &str) -> AppResult<Option<Option<Arc<SystemEntry>>>> {
        Ok(self
            .systems
            .read()
            .map_err(|_| poisoned())?
            .get(code)
            .cloned())
    }

    /// Loads system `code` into the index in the background, unless that already runs: the
    /// question that found it cold is answered from the database meanwhile. A load is kept only
    /// if no catch-up ran during it (as [`GateIndex::entry`] does); the last of
    /// [`LOAD_ATTEMPTS`] tries holds catch-ups off, so a busy audit log cannot keep a system
    /// cold.
    pub(super) fn spawn_load(
        &self,
        db: changegate_store::sea_orm::DatabaseConnection,
        pack: Arc<PolicyPack>,
        tz: chrono_tz::Tz,
        code: &str,
    ) {
        match self.loading.lock() {
            Ok(mut l) if l.len() < 64 => {
                if !l.insert(code.to_owned()) {
                    return;
                }
            }
            _ => return,
        }
        let (systems, last_seq, lock, loading) = (
            self.systems.clone(),
            self.last_seq.clone(),
            self.catch_up_lock.clone(),
            self.loading.clone(),
        );
        let code = code.to_owned();
        tokio::spawn(async move {
            // A catch-up during the load discards it (it could not patch a system not yet in
            // the index). On a busy server that could go on for ever, leaving the system cold:
            // after two discarded tries the load runs holding off catch-ups, so it is kept.
            for attempt in 1..=LOAD_ATTEMPTS {
                let held = if attempt == LOAD_ATTEMPTS {
                    Some(lock.clone().lock_owned().await)
                } else {
                    None
                };
                let seq_before = last_seq.load(Ordering::SeqCst);
                match super::load::load_system(&db, &pack, tz, &code, true).await {
                    Ok(Some(entry)) => {
                        let _no_catch_up = match held {
                            Some(g) => g,
                            None => lock.clone().lock_owned().await,
                        };
                        if last_seq.load(Ordering::SeqCst) != seq_before {
                            continue;
                        }
                        if let Ok(mut m) = systems.write() {
                            m.entry(code.clone()).or_insert(Some(entry));
                        }
                    }
                    Ok(None) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, system = %code, "the gate could not load a system")
                    }
                }
                break;
            }
            if let Ok(mut l) = loading.lock() {
                l.remove(&code);
            }
        });
    }

    pub(super) fn loaded_by_id(&self, system_id: i64) -> Option<Arc<SystemEntry>> {
        self.systems
            .read()
            .ok()?
            .values()
            .flatten()
            .find(|e| e.id == system_id)
            .cloned()
    }

    /// How many change requests the index holds for system `code`, if it is loaded: the live
    /// ones only (what `/metrics` and the tests read to see that history does not stay).
    pub fn live_changes(&self, code: &str) -> Option<usize> {
        let systems = self.systems.read().ok()?;
        let entry = systems.get(code)?.as_ref()?;
        let inner = entry.inner.read().ok()?;
        Some(inner.changes.len())
    }

    /// Forgets every system: the next decisions reload from the database.
    pub(super) fn clear(&self) {
        if let Ok(mut m) = self.systems.write() {
            m.clear();
        }
    }

    pub(super) fn drop_system(&self, system_id: Option<i64>, code: Option<&str>) {
        if let Ok(mut m) = self.systems.write() {
            m.retain(|k, v| {
                Some(k.as_str()) != code
                    && !matches!((v, system_id), (Some(e), Some(id)) if e.id == id)
            });
        }
    }
}
