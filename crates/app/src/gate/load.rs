//! Loading a system into the index from the database, and refreshing one change request or one
//! system's facts when the audit log says they changed.

use super::index::{CrRow, GateIndex, Inner, Key, SystemEntry, poisoned};
use crate::{AppError, AppResult};
use changegate_domain::gate::{Freeze, FreezeSpan, IncidentStatus, SystemFacts, parse_cron};
use changegate_domain::remediation::{RemediationKind, RemediationState, overdue_at};
use changegate_domain::{CrState, EnvName, PolicyPack};
use changegate_store::entity::{
    change_request as cr, cr_subject, freeze_window, incident, remediation, system,
};
use changegate_store::sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use changegate_store::types::Text;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Rows read at a time when a system is loaded.
const LOAD_PAGE: u64 = 5000;

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
    pub(super) async fn load(
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
            .filter(cr::Column::State.is_not_in([Text(CrState::Draft), Text(CrState::Withdrawn)]))
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
                                .is_not_in([Text(CrState::Draft), Text(CrState::Withdrawn)]),
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
        match row {
            Some(row) => inner.insert(cr_id, row, keys),
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
