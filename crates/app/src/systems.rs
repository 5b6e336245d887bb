//! A system's life after registration: edit, retire, and the searchable list.
//!
//! Every write is one transaction with its `system` audit event; the gate's follower drops the
//! system from its index on any such event, and the commit brings the index up to date before the
//! answer, so the gate sees the change at once.

use crate::identity::tokens::Principal;
use crate::registry::{org_by_code, system_by_code, system_view};
use crate::{App, AppError, AppResult, event};
use changegate_api as wire;
use changegate_domain::change::{CrState, check_text};
use changegate_domain::gate::SystemStatus;
use changegate_domain::policy::BelowMinimum;
use changegate_domain::{EnvName, Role, SecurityLevel};
use changegate_store::{changes, registry};
use chrono::{NaiveDate, NaiveTime};
use tracing::instrument;

/// Systems per page of the list.
pub const PER_PAGE: u64 = 50;

/// Change request states that still name their environments: the draft, the one waiting for
/// PA05, and the approval the gate still honours.
const OPEN: [CrState; 3] = [CrState::Draft, CrState::Submitted, CrState::Approved];

/// Filters of the list of systems (all optional; strings are checked, and a bad one is refused
/// naming its field).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct SystemFilter {
    /// Owner organisation code.
    pub org: Option<String>,
    /// Security level, 1-5.
    pub level: Option<String>,
    /// `active`, `suspended` or `retired`.
    pub status: Option<String>,
    /// Only systems whose re-review falls due before this date (YYYY-MM-DD).
    pub review_due_before: Option<String>,
    /// Page, from 1.
    pub page: Option<u64>,
}

impl App {
    /// Edits a system's name, operating unit, environments or population-database flag (admin).
    #[instrument(skip_all, fields(code = %code), err)]
    pub async fn edit_system(
        &self,
        who: &Principal,
        code: &str,
        e: wire::EditSystem,
    ) -> AppResult<wire::System> {
        who.require(&[Role::Admin], "editing a system")?;
        let mut errors = vec![];
        if let Some(n) = &e.name
            && let Err(err) = check_text("name", n, 300, true)
        {
            errors.push(("name".to_owned(), err.to_string()));
        }
        if let Some(u) = &e.operating_unit
            && let Err(err) = check_text("operating_unit", u, 300, false)
        {
            errors.push(("operating_unit".to_owned(), err.to_string()));
        }
        let envs = e.environments.as_ref().map(|list| {
            let mut envs: Vec<String> = vec![];
            for (i, name) in list.iter().enumerate() {
                match EnvName::parse(name) {
                    Ok(n) if !envs.contains(&n.to_string()) => envs.push(n.to_string()),
                    Ok(_) => errors.push((
                        format!("environments[{i}]"),
                        format!("{name:?} is listed twice"),
                    )),
                    Err(err) => errors.push((format!("environments[{i}]"), err.to_string())),
                }
            }
            if list.is_empty() {
                errors.push((
                    "environments".to_owned(),
                    "a system has at least one environment".to_owned(),
                ));
            }
            envs
        });
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let tx = self.begin().await?;
        let s = system_by_code(&tx.txn, code).await?;
        if *s.status == SystemStatus::Retired {
            return Err(retired(code, "edited"));
        }
        let mut warnings = vec![];
        if let Some(envs) = &envs {
            let removed: Vec<&String> = s
                .environments
                .0
                .iter()
                .filter(|e| !envs.contains(e))
                .collect();
            if !removed.is_empty() {
                let open = changes::of_system_in_states(&tx.txn, s.id, &OPEN).await?;
                for env in removed {
                    let naming: Vec<String> = open
                        .iter()
                        .filter(|c| c.environments.0.contains(env))
                        .map(|c| format!("#{}", c.id))
                        .collect();
                    if !naming.is_empty() {
                        errors.push((
                            "environments".to_owned(),
                            format!(
                                "{env} cannot be removed: open change request(s) {} name it",
                                naming.join(", ")
                            ),
                        ));
                    }
                }
                if !errors.is_empty() {
                    return Err(AppError::Invalid(errors));
                }
            }
        }
        if e.population_db.unwrap_or(s.population_db) {
            let min = self.pack.registration.population_db_min_level;
            let level = SecurityLevel::new(i64::from(s.level))
                .map_err(|err| AppError::Internal(format!("system {code} level: {err}")))?;
            if level.get() < min {
                let msg = format!(
                    "a system connected to the National Population Database must be security level {min} or higher (Circular 46/2022/TT-BCA, Art. 6); this one is level {level}"
                );
                match self.pack.registration.below_min_level {
                    BelowMinimum::Refuse if !s.population_db => {
                        return Err(AppError::invalid("population_db", msg));
                    }
                    _ => warnings.push(msg),
                }
            }
        }
        let before = system_view(&tx.txn, &s).await?;
        let s = registry::edit_system(
            &tx.txn,
            &s,
            registry::SystemEdit {
                name: e.name,
                operating_unit: e.operating_unit,
                environments: envs,
                population_db: e.population_db,
            },
            tx.at(),
        )
        .await?;
        let mut after = system_view(&tx.txn, &s).await?;
        if edited(&after) != edited(&before) {
            tx.audit(event(
                Some(who),
                "system.edit",
                "system",
                &s.code,
                Some(s.id),
                Some(serde_json::json!(edited(&before))),
                Some(serde_json::json!(edited(&after))),
            ))
            .await?;
            tx.commit().await?;
        }
        after.warnings = warnings;
        Ok(after)
    }

    /// Retires a system (admin): the gate then denies its deployments with `system_retired`, it
    /// takes no new change requests, and its history stays.
    #[instrument(skip_all, fields(code = %code), err)]
    pub async fn retire_system(
        &self,
        who: &Principal,
        code: &str,
        r: wire::Retirement,
    ) -> AppResult<wire::System> {
        who.require(&[Role::Admin], "retiring a system")?;
        check_text("reason", &r.reason, 2000, true).map_err(AppError::from)?;
        let tx = self.begin().await?;
        let s = system_by_code(&tx.txn, code).await?;
        if *s.status == SystemStatus::Retired {
            return Err(retired(code, "retired again"));
        }
        let before = s.status.as_str().to_owned();
        let s = registry::set_system_status(&tx.txn, s, SystemStatus::Retired, tx.at()).await?;
        tx.audit(event(
            Some(who),
            "system.retired",
            "system",
            &s.code,
            Some(s.id),
            Some(serde_json::json!({ "status": before })),
            Some(
                serde_json::json!({ "status": SystemStatus::Retired.as_str(), "reason": r.reason }),
            ),
        ))
        .await?;
        let view = system_view(&tx.txn, &s).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// One page of the systems the principal may see (owners: their organisation's), by code.
    pub async fn list_systems(
        &self,
        who: &Principal,
        f: &SystemFilter,
    ) -> AppResult<wire::SystemList> {
        let mut errors = vec![];
        let mut q = registry::SystemFilter::default();
        if !who.role.sees_every_organisation() {
            q.visible_to_org = Some(who.org_id);
        }
        if let Some(code) = f.org.as_deref().filter(|c| !c.is_empty()) {
            match org_by_code(&self.db, code).await {
                Ok(o) => q.owner_org = Some(o.id),
                Err(AppError::NotFound(_)) => errors.push((
                    "org".to_owned(),
                    format!("no organisation has the code {code:?}"),
                )),
                Err(e) => return Err(e),
            }
        }
        if let Some(l) = f.level.as_deref().filter(|l| !l.is_empty()) {
            match l.parse::<i64>().map(SecurityLevel::new) {
                Ok(Ok(level)) => q.level = Some(level),
                _ => errors.push((
                    "level".to_owned(),
                    format!("{l:?} is not a level from 1 to 5"),
                )),
            }
        }
        if let Some(st) = f.status.as_deref().filter(|s| !s.is_empty()) {
            match SystemStatus::parse(st) {
                Ok(st) => q.status = Some(st),
                Err(e) => errors.push(("status".to_owned(), e.to_string())),
            }
        }
        if let Some(d) = f.review_due_before.as_deref().filter(|d| !d.is_empty()) {
            match NaiveDate::parse_from_str(d, "%Y-%m-%d") {
                Ok(d) => q.review_due_before = Some(d.and_time(NaiveTime::MIN).and_utc()),
                Err(_) => errors.push((
                    "review_due_before".to_owned(),
                    format!("{d:?} is not a date (YYYY-MM-DD)"),
                )),
            }
        }
        let page = f.page.unwrap_or(1);
        if page == 0 || page > 100_000 {
            errors.push(("page".to_owned(), "must be from 1 to 100000".to_owned()));
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let registry::SystemPage { items: rows, total } =
            registry::systems_page(&self.db, &q, page, PER_PAGE).await?;
        let mut items = Vec::with_capacity(rows.len());
        for s in &rows {
            items.push(system_view(&self.db, s).await?);
        }
        Ok(wire::SystemList {
            items,
            page,
            per_page: PER_PAGE,
            total,
        })
    }
}

/// The refusal for a retired system.
pub(crate) fn retired(code: &str, what: &str) -> AppError {
    AppError::Conflict(
        wire::ProblemCode::SystemRetired,
        format!("system {code} is retired and cannot be {what}"),
    )
}

/// The fields an edit may change, for the audit event's before and after.
fn edited(s: &wire::System) -> serde_json::Value {
    serde_json::json!({
        "name": s.name,
        "operating_unit": s.operating_unit,
        "environments": s.environments,
        "population_db": s.population_db,
    })
}
