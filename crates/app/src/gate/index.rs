//! The index itself: per loaded system, its facts and the change requests that can matter to
//! the gate, keyed by subject (commit id, tree id, artifact digest), so that a decision costs a
//! hash lookup, not a database round trip.

use super::follower::STALE_AFTER;
use crate::{AppError, AppResult, json_col};
use changegate_domain::gate::{CandidateChange, EmergencyFacts, GateQuery, SystemFacts};
use changegate_domain::{ChangeKind, CrState, EnvName, PolicyPack};
use changegate_store::sea_orm::ConnectionTrait;
use changegate_store::types::Text;
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

pub(super) struct Inner {
    pub(super) facts: SystemFacts,
    pub(super) env_names: Vec<EnvName>,
    pub(super) changes: HashMap<i64, CrFacts>,
    pub(super) subjects: HashMap<Key, Ids>,
    /// Environment lists as stored (JSON text) → mask, so that loading does not parse the same
    /// few lists again for every row.
    pub(super) masks: HashMap<String, u64>,
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

    pub(super) fn insert(&mut self, id: i64, row: CrRow, keys: Vec<Key>) -> AppResult<()> {
        self.remove(id);
        let state = *row.1;
        if let Some(until) = row.5 {
            self.facts.emergencies.push(EmergencyFacts {
                id,
                until,
                // Passed in time: approved before its window closed (a later expiry or
                // revocation of that approval does not undo that).
                approved: row.6.is_some_and(|at| at <= until),
            });
        }
        if let Some(at) = row.6 {
            self.facts.last_approval_at = self.facts.last_approval_at.max(Some(at));
        }
        if matches!(state, CrState::Draft | CrState::Withdrawn) {
            return Ok(());
        }
        let env_mask = match self.masks.get(&row.3) {
            Some(m) => *m,
            None => {
                let envs: Vec<String> = json_col("environments", &row.3)?;
                let m = envs.iter().fold(0, |m, e| m | self.env_bit(e));
                if self.masks.len() < 256 {
                    self.masks.insert(row.3.clone(), m);
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
        let kind = *row.2;
        self.changes.insert(
            id,
            CrFacts {
                state,
                kind,
                env_mask,
                valid_until: row.4,
                emergency_until: row.5,
                remediates_incident: row.7,
                keys: keys.into_boxed_slice(),
            },
        );
        Ok(())
    }

    pub(super) fn candidates(&self, q: &GateQuery) -> Vec<CandidateChange> {
        let git: Vec<Key> = [
            q.commit.as_ref().and_then(|c| Key::commit(c.as_str())),
            q.tree.as_ref().and_then(|t| Key::tree(t.as_str())),
        ]
        .into_iter()
        .flatten()
        .collect();
        let art = q.artifact.as_ref().and_then(|a| Key::artifact(a.as_str()));
        let mut out: Vec<CandidateChange> = vec![];
        let asked_tree = q.tree.as_ref().and_then(|t| Key::tree(t.as_str()));
        let mut add = |key: &Key, is_git: bool| {
            for id in self
                .subjects
                .get(key)
                .map(Ids::as_slice)
                .unwrap_or_default()
            {
                let Some(c) = self.changes.get(id) else {
                    continue;
                };
                // A commit fixes its tree: a query naming the approved commit with another tree
                // is not that content (fail closed).
                if is_git
                    && matches!(key, Key::Commit(_))
                    && asked_tree.is_some_and(|t| !c.keys.contains(&t))
                {
                    continue;
                }
                if let Some(existing) = out.iter_mut().find(|x| x.id == *id) {
                    existing.matches_git |= is_git;
                    existing.matches_artifact |= !is_git;
                    continue;
                }
                out.push(CandidateChange {
                    id: *id,
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

/// id, state, kind, environments, valid_until, emergency_until, approved_at, remediates_incident.
pub(super) type CrRow = (
    i64,
    Text<CrState>,
    Text<ChangeKind>,
    String,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<i64>,
);

pub(super) struct SystemEntry {
    pub(super) id: i64,
    pub(super) owner_org: i64,
    pub(super) inner: RwLock<Inner>,
}

/// The index.
#[derive(Default)]
pub struct GateIndex {
    pub(super) systems: RwLock<HashMap<String, Option<Arc<SystemEntry>>>>,
    pub(super) last_seq: AtomicI64,
    pub(super) last_ok_ms: AtomicI64,
    pub(super) catch_up_lock: tokio::sync::Mutex<()>,
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

    pub(super) fn loaded_by_id(&self, system_id: i64) -> Option<Arc<SystemEntry>> {
        self.systems
            .read()
            .ok()?
            .values()
            .flatten()
            .find(|e| e.id == system_id)
            .cloned()
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
