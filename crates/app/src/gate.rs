//! The gate's in-memory index, so that a decision costs a hash lookup, not a database round trip.
//!
//! Per system (loaded on first use): its facts (status, environments, re-review due date, open
//! blocking incidents) and every change request that can matter to the gate (not drafts, not
//! withdrawn), keyed by subject (commit id, tree id, artifact digest). The index follows the
//! database through the audit log: every write appends an event naming the entity and system it
//! touched, and [`App::catch_up`] applies events after the last one seen. A write in this
//! process catches up before it answers; writes by other replicas or the command line are picked
//! up by the poller within [`POLL`]. If the poller has not succeeded within [`STALE_AFTER`], the
//! gate refuses to decide (fail closed).

use crate::{App, AppError, AppResult, json_col};
use changegate_api as wire;
use changegate_domain::gate::{
    CandidateChange, Decision, EmergencyFacts, Freeze, FreezeSpan, GateQuery, SystemFacts,
    SystemStatus, decide, parse_cron,
};
use changegate_domain::{
    ArtifactDigest, ChangeKind, Code, CommitId, CrState, EnvName, PolicyPack, TreeId,
};
use changegate_store::entity::{change_request as cr, cr_subject, freeze_window, incident, system};
use changegate_store::sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Rows read at a time when a system is loaded.
const LOAD_PAGE: u64 = 5000;

/// How often the poller reads the audit log for writes made elsewhere.
pub const POLL: Duration = Duration::from_millis(200);
/// After this long without a successful poll the gate fails closed.
pub const STALE_AFTER: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    Commit([u8; 20]),
    Tree([u8; 20]),
    Artifact([u8; 32]),
}

fn bytes<const N: usize>(hex_str: &str) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    hex::decode_to_slice(hex_str, &mut out).ok().map(|()| out)
}

impl Key {
    fn commit(s: &str) -> Option<Self> {
        bytes(s).map(Key::Commit)
    }
    fn tree(s: &str) -> Option<Self> {
        bytes(s).map(Key::Tree)
    }
    fn artifact(s: &str) -> Option<Self> {
        s.strip_prefix("sha256:").and_then(bytes).map(Key::Artifact)
    }
}

struct CrFacts {
    state: CrState,
    kind: ChangeKind,
    env_mask: u64,
    valid_until: Option<DateTime<Utc>>,
    emergency_until: Option<DateTime<Utc>>,
    remediates_incident: Option<i64>,
    keys: Box<[Key]>,
}

struct Inner {
    facts: SystemFacts,
    env_names: Vec<EnvName>,
    changes: HashMap<i64, CrFacts>,
    subjects: HashMap<Key, Ids>,
    /// Environment lists as stored (JSON text) → mask, so that loading does not parse the same
    /// few lists again for every row.
    masks: HashMap<String, u64>,
}

/// The change requests with one subject: almost always one, so no allocation for it.
#[derive(Debug, Clone)]
enum Ids {
    One(i64),
    Many(Vec<i64>),
}

impl Ids {
    fn as_slice(&self) -> &[i64] {
        match self {
            Ids::One(id) => std::slice::from_ref(id),
            Ids::Many(v) => v,
        }
    }

    fn push(&mut self, id: i64) {
        match self {
            Ids::One(first) => *self = Ids::Many(vec![*first, id]),
            Ids::Many(v) => v.push(id),
        }
    }

    /// Removes `id`; true when nothing is left.
    fn remove(&mut self, id: i64) -> bool {
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
    fn env_bit(&mut self, name: &str) -> u64 {
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

    fn remove(&mut self, id: i64) {
        self.facts.emergencies.retain(|e| e.id != id);
        if let Some(old) = self.changes.remove(&id) {
            for k in old.keys.iter() {
                if self.subjects.get_mut(k).is_some_and(|v| v.remove(id)) {
                    self.subjects.remove(k);
                }
            }
        }
    }

    fn insert(&mut self, id: i64, row: CrRow, keys: Vec<Key>) -> AppResult<()> {
        self.remove(id);
        let state = CrState::parse(&row.1).map_err(|e| AppError::Internal(e.to_string()))?;
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
        let kind = ChangeKind::parse(&row.2).map_err(|e| AppError::Internal(e.to_string()))?;
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

    fn candidates(&self, q: &GateQuery) -> Vec<CandidateChange> {
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
type CrRow = (
    i64,
    String,
    String,
    String,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<DateTime<Utc>>,
    Option<i64>,
);

struct SystemEntry {
    id: i64,
    owner_org: i64,
    inner: RwLock<Inner>,
}

/// The index.
#[derive(Default)]
pub struct GateIndex {
    systems: RwLock<HashMap<String, Option<Arc<SystemEntry>>>>,
    last_seq: AtomicI64,
    last_ok_ms: AtomicI64,
    catch_up_lock: tokio::sync::Mutex<()>,
    /// Woken whenever catching up applied events (long-polling gate requests wait on it).
    pub(crate) changed: tokio::sync::Notify,
}

fn poisoned() -> AppError {
    AppError::Internal("gate index lock poisoned".into())
}

async fn load_freezes(
    db: &impl ConnectionTrait,
    system_id: i64,
    tz: chrono_tz::Tz,
) -> AppResult<Vec<Freeze>> {
    let rows = freeze_window::Entity::find()
        .filter(freeze_window::Column::SystemId.eq(system_id))
        .filter(freeze_window::Column::Active.eq(true))
        .all(db)
        .await?;
    rows.into_iter()
        .map(|w| {
            let bad = |what: &str| AppError::Internal(format!("freeze window {} has {what}", w.id));
            let span = match (w.starts_at, w.ends_at, &w.cron, w.duration_minutes) {
                (Some(starts), Some(ends), None, None) => FreezeSpan::Fixed { starts, ends },
                (None, None, Some(c), Some(m)) => FreezeSpan::Recurring {
                    cron: Box::new(parse_cron(c).map_err(|_| bad("an invalid cron pattern"))?),
                    duration: chrono::Duration::minutes(i64::from(m)),
                    tz,
                },
                _ => {
                    return Err(bad(
                        "neither a date range nor a cron pattern with a duration",
                    ));
                }
            };
            Ok(Freeze {
                id: w.id,
                environment: w
                    .environment
                    .as_deref()
                    .and_then(|e| EnvName::parse(e).ok()),
                span,
                reason: w.reason,
            })
        })
        .collect()
}

async fn load_facts(
    db: &impl ConnectionTrait,
    pack: &PolicyPack,
    tz: chrono_tz::Tz,
    s: &system::Model,
) -> AppResult<SystemFacts> {
    let blocking: Vec<&str> = pack
        .incidents
        .blocking_severities
        .iter()
        .map(|s| s.as_str())
        .collect();
    let open: Vec<i64> = incident::Entity::find()
        .select_only()
        .column(incident::Column::Id)
        .filter(incident::Column::SystemId.eq(s.id))
        .filter(incident::Column::Status.eq("open"))
        .filter(incident::Column::Severity.is_in(blocking))
        .into_tuple()
        .all(db)
        .await?;
    let environments: Vec<String> = json_col("environments", &s.environments)?;
    Ok(SystemFacts {
        status: match s.status.as_str() {
            "active" => SystemStatus::Active,
            "retired" => SystemStatus::Retired,
            // Anything unexpected is treated as suspended: fail closed.
            _ => SystemStatus::Suspended,
        },
        environments: environments
            .iter()
            .filter_map(|e| EnvName::parse(e).ok())
            .collect(),
        next_review_due: s.next_review_due,
        blocking_incidents: open,
        freezes: load_freezes(db, s.id, tz).await?,
        emergencies: vec![],
        last_approval_at: None,
    })
}

fn subject_keys(
    rows: impl IntoIterator<Item = (i64, Option<String>, Option<String>, Option<String>)>,
) -> HashMap<i64, Vec<Key>> {
    let mut by_cr: HashMap<i64, Vec<Key>> = HashMap::new();
    for (cr_id, commit, tree, digest) in rows {
        let keys = by_cr.entry(cr_id).or_default();
        keys.extend(commit.as_deref().and_then(Key::commit));
        keys.extend(tree.as_deref().and_then(Key::tree));
        keys.extend(digest.as_deref().and_then(Key::artifact));
    }
    by_cr
}

const SUBJECT_COLS: [cr_subject::Column; 4] = [
    cr_subject::Column::ChangeRequestId,
    cr_subject::Column::CommitId,
    cr_subject::Column::TreeId,
    cr_subject::Column::Digest,
];
const CR_COLS: [cr::Column; 8] = [
    cr::Column::Id,
    cr::Column::State,
    cr::Column::Kind,
    cr::Column::Environments,
    cr::Column::ValidUntil,
    cr::Column::EmergencyUntil,
    cr::Column::ApprovedAt,
    cr::Column::RemediatesIncident,
];

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

    fn is_fresh(&self) -> bool {
        Utc::now().timestamp_millis() - self.last_ok_ms.load(Ordering::SeqCst)
            <= STALE_AFTER.as_millis() as i64
    }

    async fn load(
        &self,
        db: &impl ConnectionTrait,
        pack: &PolicyPack,
        tz: chrono_tz::Tz,
        code: &str,
    ) -> AppResult<Option<Arc<SystemEntry>>> {
        let Some(s) = system::Entity::find()
            .filter(system::Column::Code.eq(code))
            .one(db)
            .await?
        else {
            return Ok(None);
        };
        let facts = load_facts(db, pack, tz, &s).await?;
        let mut inner = Inner {
            env_names: vec![],
            facts,
            changes: HashMap::new(),
            subjects: HashMap::new(),
            masks: HashMap::new(),
        };
        for e in inner.facts.environments.clone() {
            inner.env_bit(e.as_str());
        }
        // Sized once from a count: growing by doubling would leave the freed smaller tables
        // behind in the allocator.
        let n = cr::Entity::find()
            .filter(cr::Column::SystemId.eq(s.id))
            .filter(
                cr::Column::State.is_not_in([CrState::Draft.as_str(), CrState::Withdrawn.as_str()]),
            )
            .count(db)
            .await?;
        let n = usize::try_from(n).unwrap_or(0);
        inner.changes.reserve(n);
        inner.subjects.reserve(n.saturating_mul(2));
        // In pages, so that the rows of a large system are never all in memory at once.
        let mut after = 0i64;
        loop {
            let rows: Vec<CrRow> = cr::Entity::find()
                .select_only()
                .columns(CR_COLS)
                .filter(cr::Column::SystemId.eq(s.id))
                .filter(cr::Column::Id.gt(after))
                .filter(
                    Condition::any()
                        .add(
                            cr::Column::State
                                .is_not_in([CrState::Draft.as_str(), CrState::Withdrawn.as_str()]),
                        )
                        .add(cr::Column::EmergencyUntil.is_not_null()),
                )
                .order_by_asc(cr::Column::Id)
                .limit(LOAD_PAGE)
                .into_tuple()
                .all(db)
                .await?;
            let Some(last) = rows.last().map(|r| r.0) else {
                break;
            };
            let subjects = cr_subject::Entity::find()
                .select_only()
                .columns(SUBJECT_COLS)
                .filter(cr_subject::Column::SystemId.eq(s.id))
                .filter(cr_subject::Column::ChangeRequestId.gt(after))
                .filter(cr_subject::Column::ChangeRequestId.lte(last))
                .into_tuple()
                .all(db)
                .await?;
            let mut keys = subject_keys(subjects);
            for row in rows {
                let id = row.0;
                inner.insert(id, row, keys.remove(&id).unwrap_or_default())?;
            }
            after = last;
        }
        Ok(Some(Arc::new(SystemEntry {
            id: s.id,
            owner_org: s.owner_org_id,
            inner: RwLock::new(inner),
        })))
    }

    async fn entry(
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

    fn loaded_by_id(&self, system_id: i64) -> Option<Arc<SystemEntry>> {
        self.systems
            .read()
            .ok()?
            .values()
            .flatten()
            .find(|e| e.id == system_id)
            .cloned()
    }

    /// Forgets every system: the next decisions reload from the database.
    fn clear(&self) {
        if let Ok(mut m) = self.systems.write() {
            m.clear();
        }
    }

    fn drop_system(&self, system_id: Option<i64>, code: Option<&str>) {
        if let Ok(mut m) = self.systems.write() {
            m.retain(|k, v| {
                Some(k.as_str()) != code
                    && !matches!((v, system_id), (Some(e), Some(id)) if e.id == id)
            });
        }
    }

    async fn refresh_change(
        &self,
        db: &impl ConnectionTrait,
        system_id: i64,
        cr_id: i64,
    ) -> AppResult<()> {
        let Some(entry) = self.loaded_by_id(system_id) else {
            return Ok(());
        };
        let row: Option<CrRow> = cr::Entity::find()
            .select_only()
            .columns(CR_COLS)
            .filter(cr::Column::Id.eq(cr_id))
            .into_tuple()
            .one(db)
            .await?;
        let subjects = cr_subject::Entity::find()
            .select_only()
            .columns(SUBJECT_COLS)
            .filter(cr_subject::Column::ChangeRequestId.eq(cr_id))
            .into_tuple()
            .all(db)
            .await?;
        let keys = subject_keys(subjects).remove(&cr_id).unwrap_or_default();
        let mut inner = entry.inner.write().map_err(|_| poisoned())?;
        match row {
            Some(row) => inner.insert(cr_id, row, keys),
            None => {
                inner.remove(cr_id);
                Ok(())
            }
        }
    }

    async fn refresh_facts(
        &self,
        db: &impl ConnectionTrait,
        pack: &PolicyPack,
        tz: chrono_tz::Tz,
        system_id: i64,
    ) -> AppResult<()> {
        let Some(entry) = self.loaded_by_id(system_id) else {
            return Ok(());
        };
        match system::Entity::find_by_id(system_id).one(db).await? {
            Some(s) => {
                let mut facts = load_facts(db, pack, tz, &s).await?;
                let mut inner = entry.inner.write().map_err(|_| poisoned())?;
                // Emergencies and the last approval come from the change requests, not the row.
                facts.emergencies = std::mem::take(&mut inner.facts.emergencies);
                facts.last_approval_at = inner.facts.last_approval_at;
                inner.facts = facts;
            }
            None => self.drop_system(Some(system_id), None),
        }
        Ok(())
    }
}

/// Parses the gate's query, naming the bad parameter.
pub fn parse_query(p: &wire::GateParams) -> AppResult<(Code, GateQuery)> {
    let mut errors = vec![];
    let code = Code::parse(&p.system)
        .map_err(|e| errors.push(("system".to_owned(), e.to_string())))
        .ok();
    let env = EnvName::parse(&p.env)
        .map_err(|e| errors.push(("env".to_owned(), e.to_string())))
        .ok();
    let commit = p
        .commit
        .as_deref()
        .map(CommitId::parse)
        .transpose()
        .map_err(|e| errors.push(("commit".to_owned(), e.to_string())))
        .ok()
        .flatten();
    let tree = p
        .tree
        .as_deref()
        .map(TreeId::parse)
        .transpose()
        .map_err(|e| errors.push(("tree".to_owned(), e.to_string())))
        .ok()
        .flatten();
    let artifact = p
        .artifact
        .as_deref()
        .map(ArtifactDigest::parse)
        .transpose()
        .map_err(|e| errors.push(("artifact".to_owned(), e.to_string())))
        .ok()
        .flatten();
    if errors.is_empty() && commit.is_none() && tree.is_none() && artifact.is_none() {
        errors.push((
            "commit".to_owned(),
            "give the content to judge: commit (with tree), tree, or artifact".to_owned(),
        ));
    }
    match (code, env, errors.is_empty()) {
        (Some(code), Some(env), true) => Ok((
            code,
            GateQuery {
                env,
                commit,
                tree,
                artifact,
            },
        )),
        _ => Err(AppError::Invalid(errors)),
    }
}

impl App {
    /// Asks the gate. Any failure to gather the facts is an error, which the edge turns into a
    /// denial (fail closed).
    /// Decides for `who`: an owner's or pipeline's token learns nothing about another
    /// organisation's systems (they answer as unknown).
    pub async fn decide(
        &self,
        who: &crate::Principal,
        p: &wire::GateParams,
    ) -> AppResult<(Decision, DateTime<Utc>)> {
        let (code, q) = parse_query(p)?;
        if !self.gate.is_fresh() {
            return Err(AppError::Unavailable(
                "the gate's view of the database is stale".into(),
            ));
        }
        let now = Utc::now();
        let entry = self
            .gate
            .entry(&self.db, &self.pack, self.tz, code.as_str())
            .await?;
        let entry = entry.filter(|e| crate::registry::may_see_org(who, e.owner_org));
        let decision = match entry {
            None => decide(&q, code.as_str(), None, &[], now),
            Some(e) => {
                let inner = e.inner.read().map_err(|_| poisoned())?;
                decide(
                    &q,
                    code.as_str(),
                    Some(&inner.facts),
                    &inner.candidates(&q),
                    now,
                )
            }
        };
        Ok((decision, now))
    }

    /// Applies audit events after the last one seen to the gate index and the token cache.
    pub async fn catch_up(&self) -> AppResult<()> {
        let _one_at_a_time = self.gate.catch_up_lock.lock().await;
        let mut applied_any = false;
        let result = self.apply_new_events(&mut applied_any).await;
        if applied_any {
            self.gate.changed.notify_waiters();
        }
        result
    }

    async fn apply_new_events(&self, applied_any: &mut bool) -> AppResult<()> {
        loop {
            let events =
                match changegate_store::audit::changes_since(&self.db, self.gate.last_seq(), 1000)
                    .await
                {
                    Ok(events) => events,
                    Err(e) => {
                        // The index may now be behind the database: forget it (fail closed).
                        self.gate.clear();
                        return Err(e.into());
                    }
                };
            let n = events.len();
            for (seq, entity, entity_id, system_id) in events {
                let applied = match (entity.as_str(), system_id) {
                    ("change_request", Some(sid)) => match entity_id.parse() {
                        Ok(id) => self.gate.refresh_change(&self.db, sid, id).await,
                        Err(_) => Ok(()),
                    },
                    ("deployment", _) => Ok(()),
                    ("system", sid) => {
                        self.gate.drop_system(sid, Some(&entity_id));
                        Ok(())
                    }
                    (_, Some(sid)) => {
                        self.gate
                            .refresh_facts(&self.db, &self.pack, self.tz, sid)
                            .await
                    }
                    ("api_token", None) => {
                        self.auth.forget_token(&entity_id);
                        Ok(())
                    }
                    ("user", None) => {
                        self.auth.forget_username(&entity_id);
                        Ok(())
                    }
                    _ => Ok(()),
                };
                if let Err(e) = applied {
                    // Forget the system so the next decision reloads it; retry from this event.
                    self.gate.drop_system(system_id, None);
                    return Err(e);
                }
                self.gate.last_seq.store(seq, Ordering::SeqCst);
                *applied_any = true;
            }
            if n < 1000 {
                break;
            }
        }
        self.gate
            .last_ok_ms
            .store(Utc::now().timestamp_millis(), Ordering::SeqCst);
        Ok(())
    }

    /// Follows the audit log in the background until the app is dropped.
    pub fn spawn_poller(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(app) = weak.upgrade() else { break };
                if let Err(e) = app.catch_up().await {
                    tracing::warn!(error = %e, "gate index could not follow the audit log");
                }
            }
        })
    }
}
