//! Loading a system into the index from the database, and refreshing one change request or one
//! system's facts when the audit log says they changed.

use super::index::{GateIndex, Inner, Key, OldCr, OldList, SystemEntry, is_live, poisoned};
use crate::{AppResult, json_col};
use changegate_domain::gate::{EmergencyFacts, SystemFacts};
use changegate_domain::remediation::overdue_at;
use changegate_domain::{EnvName, PolicyPack};
use changegate_store::entity::system;
use changegate_store::gate::{self as store, ChangeRow, Content, SubjectRow};
use changegate_store::sea_orm::ConnectionTrait;
use chrono::Utc;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub(super) async fn load_facts(
    db: &impl ConnectionTrait,
    pack: &PolicyPack,
    tz: chrono_tz::Tz,
    s: &system::Model,
) -> AppResult<SystemFacts> {
    let open =
        store::open_incidents(db, s.id, pack.incidents.blocking_severities.iter().copied()).await?;
    // Conditions not yet verified of a severity that closes the gate once overdue.
    let gating = store::unverified_conditions(
        db,
        s.id,
        pack.remediation.gate_closing_severities.iter().copied(),
    )
    .await?;
    let environments = &s.environments.0;
    Ok(SystemFacts {
        // A stored status that does not parse fails the load: the gate denies (fail closed).
        status: *s.status,
        environments: environments
            .iter()
            .filter_map(|e| EnvName::parse(e).ok())
            .collect(),
        next_review_due: s.next_review_due,
        blocking_incidents: open,
        freezes: store::active_freezes(db, s.id, tz).await?,
        emergencies: vec![],
        last_approval_at: None,
        gating_conditions: gating
            .into_iter()
            .map(|c| (c.id, overdue_at(c.due, tz)))
            .collect(),
    })
}

pub(super) fn subject_keys(rows: impl IntoIterator<Item = SubjectRow>) -> HashMap<i64, Vec<Key>> {
    let mut by_cr: HashMap<i64, Vec<Key>> = HashMap::new();
    for r in rows {
        let keys = by_cr.entry(r.change_request_id).or_default();
        keys.extend(r.commit_id.as_deref().and_then(Key::commit));
        keys.extend(r.tree_id.as_deref().and_then(Key::tree));
        keys.extend(r.digest.as_deref().and_then(Key::artifact));
    }
    by_cr
}

/// Change requests per page of a system's load (their ids are one `IN` list of the subjects'
/// query, well under SQLite's 32,766 variables).
const LOAD_PAGE: u64 = 1_000;

impl GateIndex {
    /// Loads a system with its live change requests (see [`load_system`]).
    pub(super) async fn load(
        &self,
        db: &impl ConnectionTrait,
        pack: &PolicyPack,
        tz: chrono_tz::Tz,
        code: &str,
    ) -> AppResult<Option<Arc<SystemEntry>>> {
        load_system(db, pack, tz, code, true).await
    }
}

/// Loads a system: its facts, its emergency changes that may still suspend it and its last
/// approval, and (`with_changes`) its live change requests (see [`is_live`]) with their
/// subjects, each from an index (not a scan of every change the system ever had). Without the
/// changes it is what a question about a cold system is answered with while the full load runs:
/// every change covering the content is then read from the database.
pub(super) async fn load_system(
    db: &impl ConnectionTrait,
    pack: &PolicyPack,
    tz: chrono_tz::Tz,
    code: &str,
    with_changes: bool,
) -> AppResult<Option<Arc<SystemEntry>>> {
    {
        let Some(s) = store::system_by_code(db, code).await? else {
            return Ok(None);
        };
        let now = Utc::now();
        let mut facts = load_facts(db, pack, tz, &s).await?;
        facts.last_approval_at = store::last_approval_at(db, s.id).await?;
        // Emergency changes not passed before their window closed, and not followed by any
        // approval since: the only ones that can still suspend the system or shorten an allow.
        for e in store::emergency_changes(db, s.id).await? {
            let (id, until) = (e.id, e.until);
            let approved = e.approved_at.is_some_and(|at| at <= until);
            if !approved
                && facts
                    .last_approval_at
                    .is_none_or(|a| a <= until || until > now)
            {
                facts.emergencies.push(EmergencyFacts {
                    id,
                    until,
                    approved,
                });
            }
        }
        let mut inner = Inner {
            env_names: vec![],
            facts,
            changes: HashMap::new(),
            subjects: HashMap::new(),
            masks: HashMap::new(),
            old: HashMap::new(),
            old_gen: 0,
        };
        for e in inner.facts.environments.clone() {
            inner.env_bit(e.as_str());
        }
        if !with_changes {
            return Ok(Some(Arc::new(SystemEntry {
                id: s.id,
                owner_org: s.owner_org_id,
                inner: RwLock::new(inner),
            })));
        }
        // The live changes in pages by id, each page with its subjects: what the load holds
        // besides the index is one page, however many changes the system has (a system with
        // 50,000 read at once held several times its index while it loaded).
        // The facts already hold the emergencies and the last approval.
        let (emergencies, last) = (
            std::mem::take(&mut inner.facts.emergencies),
            inner.facts.last_approval_at,
        );
        let mut after = i64::MIN;
        loop {
            let page = store::live_changes_page(db, s.id, after, LOAD_PAGE).await?;
            let Some(last_row) = page.last() else { break };
            after = last_row.id;
            let full = page.len() as u64 == LOAD_PAGE;
            let rows: Vec<ChangeRow> = page
                .into_iter()
                .filter(|r| is_live(r.state, r.valid_until, now))
                .collect();
            if !rows.is_empty() {
                let subjects = store::subjects_of(db, rows.iter().map(|r| r.id)).await?;
                let mut keys = subject_keys(subjects);
                for row in rows {
                    let k = keys.remove(&row.id).unwrap_or_default();
                    inner.insert(row, k, now)?;
                }
            }
            if !full {
                break;
            }
        }
        inner.facts.emergencies = emergencies;
        inner.facts.last_approval_at = last;
        Ok(Some(Arc::new(SystemEntry {
            id: s.id,
            owner_org: s.owner_org_id,
            inner: RwLock::new(inner),
        })))
    }
}

impl GateIndex {
    /// The change requests of a system (not drafts, not withdrawn) covering each of `keys`,
    /// from the subjects' indexes: what the index does not hold, asked when it matters.
    pub(super) async fn lookup_old(
        &self,
        db: &impl ConnectionTrait,
        system_id: i64,
        keys: &[Key],
    ) -> AppResult<HashMap<Key, OldList>> {
        let mut ids: Vec<i64> = vec![];
        for k in keys {
            let content = match k {
                Key::Commit(b) => Content::Commit(hex::encode(b)),
                Key::Tree(b) => Content::Tree(hex::encode(b)),
                Key::Artifact(b) => Content::Digest(format!("sha256:{}", hex::encode(b))),
            };
            ids.extend(store::changes_covering(db, system_id, &content).await?);
        }
        ids.sort_unstable();
        ids.dedup();
        let mut olds: Vec<Arc<OldCr>> = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let rows = store::filed_changes(db, system_id, chunk.iter().copied()).await?;
            let subjects = store::subjects_of(db, chunk.iter().copied()).await?;
            let mut by_cr = subject_keys(subjects);
            for row in rows {
                let envs: Vec<String> = json_col("environments", &row.environments)?;
                olds.push(Arc::new(OldCr {
                    id: row.id,
                    state: row.state,
                    kind: row.kind,
                    // A name that does not parse covers nothing (fail closed).
                    environments: envs.iter().filter_map(|e| EnvName::parse(e).ok()).collect(),
                    valid_until: row.valid_until,
                    emergency_until: row.emergency_until,
                    remediates_incident: row.remediates_incident,
                    keys: by_cr.remove(&row.id).unwrap_or_default().into_boxed_slice(),
                }));
            }
        }
        Ok(keys
            .iter()
            .map(|k| {
                let list: OldList = olds
                    .iter()
                    .filter(|o| o.keys.contains(k))
                    .cloned()
                    .collect();
                (*k, list)
            })
            .collect())
    }

    pub(super) async fn refresh_change(
        &self,
        db: &impl ConnectionTrait,
        system_id: i64,
        cr_id: i64,
    ) -> AppResult<()> {
        let Some(entry) = self.loaded_by_id(system_id) else {
            return Ok(());
        };
        let row = store::change_row(db, cr_id).await?;
        let subjects = store::subjects_of(db, [cr_id]).await?;
        let keys = subject_keys(subjects).remove(&cr_id).unwrap_or_default();
        let mut inner = entry.inner.write().map_err(|_| poisoned())?;
        // What the database said about old content may have changed with it.
        inner.forget_old();
        match row {
            Some(row) => inner.insert(row, keys, Utc::now()),
            None => {
                inner.remove(cr_id);
                Ok(())
            }
        }
    }

    pub(super) async fn refresh_facts(
        &self,
        db: &impl ConnectionTrait,
        pack: &PolicyPack,
        tz: chrono_tz::Tz,
        system_id: i64,
    ) -> AppResult<()> {
        let Some(entry) = self.loaded_by_id(system_id) else {
            return Ok(());
        };
        match store::system_by_id(db, system_id).await? {
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
