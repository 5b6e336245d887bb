//! Loading a system into the index from the database, and refreshing one change request or one
//! system's facts when the audit log says they changed.

use super::index::{CrRow, GateIndex, Inner, Key, OldCr, OldList, SystemEntry, is_live, poisoned};
use crate::{AppError, AppResult, json_col};
use changegate_domain::gate::{
    EmergencyFacts, Freeze, FreezeSpan, IncidentStatus, SystemFacts, parse_cron,
};
use changegate_domain::remediation::{RemediationKind, RemediationState, overdue_at};
use changegate_domain::{CrState, EnvName, PolicyPack};
use changegate_store::entity::{
    change_request as cr, cr_subject, freeze_window, incident, remediation, system,
};
use changegate_store::sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use changegate_store::types::Text;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

pub(super) async fn load_freezes(
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

pub(super) async fn load_facts(
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
        .filter(incident::Column::Status.eq(Text(IncidentStatus::Open)))
        .filter(incident::Column::Severity.is_in(blocking))
        .into_tuple()
        .all(db)
        .await?;
    // Conditions not yet verified of a severity that closes the gate once overdue.
    let gating: Vec<(i64, chrono::NaiveDate)> = remediation::Entity::find()
        .select_only()
        .column(remediation::Column::Id)
        .column(remediation::Column::Due)
        .filter(remediation::Column::SystemId.eq(s.id))
        .filter(remediation::Column::Kind.eq(Text(RemediationKind::Condition)))
        .filter(remediation::Column::State.ne(Text(RemediationState::Verified)))
        .filter(
            remediation::Column::Severity.is_in(
                pack.remediation
                    .gate_closing_severities
                    .iter()
                    .map(|s| Text(*s)),
            ),
        )
        .into_tuple()
        .all(db)
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
        freezes: load_freezes(db, s.id, tz).await?,
        emergencies: vec![],
        last_approval_at: None,
        gating_conditions: gating
            .into_iter()
            .map(|(id, due)| (id, overdue_at(due, tz)))
            .collect(),
    })
}

pub(super) fn subject_keys(
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

/// Change requests per page of a system's load (their ids are one `IN` list of the subjects'
/// query, well under SQLite's 32,766 variables).
const LOAD_PAGE: u64 = 1_000;

pub(super) const SUBJECT_COLS: [cr_subject::Column; 4] = [
    cr_subject::Column::ChangeRequestId,
    cr_subject::Column::CommitId,
    cr_subject::Column::TreeId,
    cr_subject::Column::Digest,
];
pub(super) const CR_COLS: [cr::Column; 8] = [
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
        let Some(s) = system::Entity::find()
            .filter(system::Column::Code.eq(code))
            .one(db)
            .await?
        else {
            return Ok(None);
        };
        let now = Utc::now();
        let mut facts = load_facts(db, pack, tz, &s).await?;
        let last: Option<Option<DateTime<Utc>>> = cr::Entity::find()
            .select_only()
            .column(cr::Column::ApprovedAt)
            .filter(cr::Column::SystemId.eq(s.id))
            .filter(cr::Column::ApprovedAt.is_not_null())
            .order_by_desc(cr::Column::ApprovedAt)
            .limit(1)
            .into_tuple()
            .one(db)
            .await?;
        facts.last_approval_at = last.flatten();
        // Emergency changes not passed before their window closed, and not followed by any
        // approval since: the only ones that can still suspend the system or shorten an allow.
        let emergencies: Vec<(i64, DateTime<Utc>, Option<DateTime<Utc>>)> = cr::Entity::find()
            .select_only()
            .columns([
                cr::Column::Id,
                cr::Column::EmergencyUntil,
                cr::Column::ApprovedAt,
            ])
            .filter(cr::Column::SystemId.eq(s.id))
            .filter(cr::Column::EmergencyUntil.is_not_null())
            .order_by_asc(cr::Column::Id)
            .into_tuple()
            .all(db)
            .await?;
        for (id, until, approved_at) in emergencies {
            let approved = approved_at.is_some_and(|at| at <= until);
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
        let live_states = [Text(CrState::Submitted), Text(CrState::Approved)];
        // The facts already hold the emergencies and the last approval.
        let (emergencies, last) = (
            std::mem::take(&mut inner.facts.emergencies),
            inner.facts.last_approval_at,
        );
        let mut after = i64::MIN;
        loop {
            let page: Vec<CrRow> = cr::Entity::find()
                .select_only()
                .columns(CR_COLS)
                .filter(cr::Column::SystemId.eq(s.id))
                .filter(cr::Column::State.is_in(live_states))
                .filter(cr::Column::Id.gt(after))
                .order_by_asc(cr::Column::Id)
                .limit(LOAD_PAGE)
                .into_tuple()
                .all(db)
                .await?;
            let Some(last_row) = page.last() else { break };
            after = last_row.0;
            let full = page.len() as u64 == LOAD_PAGE;
            let rows: Vec<CrRow> = page
                .into_iter()
                .filter(|r| is_live(*r.1, r.4, now))
                .collect();
            if !rows.is_empty() {
                let subjects = cr_subject::Entity::find()
                    .select_only()
                    .columns(SUBJECT_COLS)
                    .filter(cr_subject::Column::ChangeRequestId.is_in(rows.iter().map(|r| r.0)))
                    .into_tuple()
                    .all(db)
                    .await?;
                let mut keys = subject_keys(subjects);
                for row in rows {
                    let id = row.0;
                    inner.insert(id, row, keys.remove(&id).unwrap_or_default(), now)?;
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
            let col = match k {
                Key::Commit(b) => cr_subject::Column::CommitId.eq(hex::encode(b)),
                Key::Tree(b) => cr_subject::Column::TreeId.eq(hex::encode(b)),
                Key::Artifact(b) => {
                    cr_subject::Column::Digest.eq(format!("sha256:{}", hex::encode(b)))
                }
            };
            let found: Vec<i64> = cr_subject::Entity::find()
                .select_only()
                .column(cr_subject::Column::ChangeRequestId)
                .filter(cr_subject::Column::SystemId.eq(system_id))
                .filter(col)
                .into_tuple()
                .all(db)
                .await?;
            ids.extend(found);
        }
        ids.sort_unstable();
        ids.dedup();
        let mut olds: Vec<Arc<OldCr>> = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(500) {
            let rows: Vec<CrRow> = cr::Entity::find()
                .select_only()
                .columns(CR_COLS)
                .filter(cr::Column::Id.is_in(chunk.iter().copied()))
                .filter(cr::Column::SystemId.eq(system_id))
                .filter(
                    cr::Column::State.is_not_in([Text(CrState::Draft), Text(CrState::Withdrawn)]),
                )
                .order_by_asc(cr::Column::Id)
                .into_tuple()
                .all(db)
                .await?;
            let subjects = cr_subject::Entity::find()
                .select_only()
                .columns(SUBJECT_COLS)
                .filter(cr_subject::Column::ChangeRequestId.is_in(chunk.iter().copied()))
                .into_tuple()
                .all(db)
                .await?;
            let mut by_cr = subject_keys(subjects);
            for row in rows {
                let envs: Vec<String> = json_col("environments", &row.3)?;
                olds.push(Arc::new(OldCr {
                    id: row.0,
                    state: *row.1,
                    kind: *row.2,
                    // A name that does not parse covers nothing (fail closed).
                    environments: envs.iter().filter_map(|e| EnvName::parse(e).ok()).collect(),
                    valid_until: row.4,
                    emergency_until: row.5,
                    remediates_incident: row.7,
                    keys: by_cr.remove(&row.0).unwrap_or_default().into_boxed_slice(),
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
        // What the database said about old content may have changed with it.
        inner.forget_old();
        match row {
            Some(row) => inner.insert(cr_id, row, keys, Utc::now()),
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
