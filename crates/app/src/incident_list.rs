//! The list of incidents (issue 11): filtered by state, system, organisation, kind, severity and
//! the day reported, searched by words of the summary with or without diacritics (the
//! `search_text` column, normalised as change requests are), paged. Open incidents first, then
//! the newest.

use crate::identity::tokens::Principal;
use crate::lists::{day_range, paging, search_terms};
use crate::{App, AppError, AppResult};
use changegate_api as wire;
use changegate_domain::Severity;
use changegate_domain::gate::IncidentStatus;
use changegate_domain::incident::IncidentKind;
use changegate_store::entity::system;
use changegate_store::incidents::{self as store, IncidentFilter as Query};
use std::collections::HashMap;

/// Incidents per page of the list, unless `limit` says otherwise.
pub const INCIDENTS_PER_PAGE: u64 = 50;

/// Filters of the list of incidents (all optional; a bad one is refused naming its field).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct IncidentFilter {
    /// `open` or `resolved`.
    pub state: Option<String>,
    /// System code.
    pub system: Option<String>,
    /// Owner organisation code.
    pub org: Option<String>,
    /// Kind (`malware`, `vulnerability`, `abnormal_access`, `data_breach`, `other`,
    /// `unapproved_content`).
    pub kind: Option<String>,
    /// Severity (`low`, `medium`, `high`, `critical`).
    pub severity: Option<String>,
    /// Reported on or after this day (YYYY-MM-DD, server time zone).
    pub from: Option<String>,
    /// Reported on or before this day.
    pub to: Option<String>,
    /// Words of the summary, with or without diacritics.
    pub q: Option<String>,
    /// Page, from 1.
    pub page: Option<u64>,
    /// Items per page, 1-500 (default 50).
    pub limit: Option<u64>,
}

fn given(o: &Option<String>) -> Option<&str> {
    o.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

impl App {
    /// One page of the incidents of the systems the principal may see, open ones first, then
    /// the newest, filtered. A system or organisation the principal may not see answers as one
    /// that does not exist.
    pub async fn list_incidents(
        &self,
        who: &Principal,
        f: &IncidentFilter,
    ) -> AppResult<wire::IncidentList> {
        let mut errors = vec![];
        let systems: HashMap<i64, system::Model> = self
            .visible_systems(who)
            .await?
            .into_iter()
            .map(|s| (s.id, s))
            .collect();
        let mut ids: Vec<i64> = systems.keys().copied().collect();
        if let Some(code) = given(&f.system) {
            match systems.values().find(|s| s.code == code) {
                Some(s) => ids.retain(|i| *i == s.id),
                None => errors.push(("system".into(), format!("no system has the code {code:?}"))),
            }
        }
        if let Some(code) = given(&f.org) {
            match crate::registry::org_by_code(&self.db, code).await {
                Ok(o) if who.role.may_see(who.org_id, o.id) => {
                    ids.retain(|i| systems.get(i).is_some_and(|s| s.owner_org_id == o.id));
                }
                Ok(_) | Err(AppError::NotFound(_)) => errors.push((
                    "org".into(),
                    format!("no organisation has the code {code:?}"),
                )),
                Err(e) => return Err(e),
            }
        }
        let mut q = Query {
            systems: ids,
            ..Query::default()
        };
        if let Some(st) = given(&f.state) {
            match IncidentStatus::parse(st) {
                Ok(st) => q.status = Some(st),
                Err(e) => errors.push(("state".into(), e.to_string())),
            }
        }
        if let Some(k) = given(&f.kind) {
            // Every stored kind, the one changegate opens itself (unapproved content) too.
            match IncidentKind::parse(k) {
                Ok(k) => q.kind = Some(k),
                Err(e) => errors.push(("kind".into(), e.to_string())),
            }
        }
        if let Some(sev) = given(&f.severity) {
            match Severity::parse(sev) {
                Ok(sev) => q.severity = Some(sev),
                Err(e) => errors.push(("severity".into(), e.to_string())),
            }
        }
        (q.reported_from, q.reported_before) =
            day_range(self.tz, given(&f.from), given(&f.to), &mut errors);
        q.words = search_terms(given(&f.q), &mut errors);
        let (page, per_page) = paging(f.page, f.limit, INCIDENTS_PER_PAGE, &mut errors);
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let store::IncidentPage { items: rows, total } =
            store::page(&self.db, &q, page, per_page).await?;
        let mut items = vec![];
        for i in rows {
            let code = systems
                .get(&i.system_id)
                .map(|s| s.code.clone())
                .unwrap_or_default();
            items.push(self.incident_view(&i, &code).await?);
        }
        Ok(wire::IncidentList {
            items,
            page,
            per_page,
            total,
        })
    }
}
