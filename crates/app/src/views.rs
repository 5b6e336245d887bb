//! Read models of the web pages: dashboards, system pages, queues, timelines, the audit search and
//! CSV exports. Every read applies the domain's visibility rule ([`Role::may_see`]): an owner sees
//! the systems and changes of their own organisation only; PA05 reviewers, inspectors and admins
//! see every organisation's. Nothing here writes.
//!
//! Gate status on the pages comes from the gate's own index ([`App::environment_gates`]), so a
//! page never disagrees with what a pipeline is told.

pub use crate::gate::EnvGate;
use crate::identity::tokens::Principal;
use crate::registry::{may_see_org, system_view};
use crate::{App, AppError, AppResult};
use changegate_api as wire;
use changegate_domain::OrgKind;
use changegate_domain::gate::{IncidentStatus, SystemStatus};
use changegate_domain::{Conclusion, CrState, Role};
use changegate_store::audit::AuditQuery;
use changegate_store::changes::OfSystems;
use changegate_store::entity::{audit_event, change_request as cr, system};
use changegate_store::{changes, identity, incidents, registry};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use std::collections::{HashMap, HashSet};

/// Rows of one page of the audit search.
pub const AUDIT_PAGE_SIZE: u64 = 50;
/// Most rows in a list on a page (dashboards, system history).
const LIST_LIMIT: u64 = 200;
/// A system in a list.
#[derive(Debug, Clone, Serialize)]
pub struct SystemSummary {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Owner organisation code.
    pub owner_org: String,
    /// Owner organisation name.
    pub owner_org_name: String,
    /// Security level.
    pub level: i16,
    /// Connected to the population database.
    pub population_db: bool,
    /// `active`, `suspended`, `retired`.
    pub status: String,
    /// When the periodic re-review falls due.
    pub next_review_due: Option<DateTime<Utc>>,
    /// The re-review is overdue.
    pub review_overdue: bool,
    /// Gate status per environment.
    pub gates: Vec<EnvGate>,
    /// Open incidents.
    pub open_incidents: usize,
}

/// A change request in a list.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeRow {
    /// Id.
    pub id: i64,
    /// System code.
    pub system: String,
    /// System name.
    pub system_name: String,
    /// Security level of the system.
    pub level: i16,
    /// Kind.
    pub kind: String,
    /// Title.
    pub title: String,
    /// State.
    pub state: String,
    /// Who filed it (username).
    pub filed_by: String,
    /// The owning organisation's name.
    pub org_name: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When it was last submitted (from the audit log).
    pub submitted_at: Option<DateTime<Utc>>,
    /// Approval valid until.
    pub valid_until: Option<DateTime<Utc>>,
    /// Passing sign-offs in the current round.
    pub passes: usize,
    /// Passing sign-offs needed.
    pub quorum: u32,
    /// The viewer signed it off in the current round.
    pub signed_by_me: bool,
}

/// A system whose periodic re-review is due soon or overdue.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewDue {
    /// System code.
    pub system: String,
    /// System name.
    pub name: String,
    /// Security level.
    pub level: i16,
    /// Due date.
    pub due: DateTime<Utc>,
    /// Already overdue.
    pub overdue: bool,
    /// Whole days until due (negative when overdue).
    pub days: i64,
}

/// One entry of a timeline or history, from the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct TimelineEntry {
    /// Position in the audit chain.
    pub seq: i64,
    /// When (RFC 3339).
    pub at: String,
    /// Who (username or `system`).
    pub actor: String,
    /// What (`change_request.submit`, …).
    pub action: String,
    /// Entity kind.
    pub entity: String,
    /// Entity id.
    pub entity_id: String,
    /// The state after, when the event records one.
    pub state: Option<String>,
    /// A sign-off's conclusion.
    pub conclusion: Option<String>,
    /// A note or reason given.
    pub note: Option<String>,
}

/// Everything a system page shows.
#[derive(Debug, Clone, Serialize)]
pub struct SystemPage {
    /// The system.
    pub system: wire::System,
    /// Owner organisation name.
    pub owner_org_name: String,
    /// Gate status per environment.
    pub gates: Vec<EnvGate>,
    /// Its change requests, newest first.
    pub changes: Vec<ChangeRow>,
    /// Its incidents, newest first.
    pub incidents: Vec<wire::Incident>,
    /// Its history from the audit log, newest first.
    pub history: Vec<TimelineEntry>,
    /// The re-review is overdue.
    pub review_overdue: bool,
}

/// The dashboard of one person; which parts are filled depends on the role.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Dashboard {
    /// Systems (owner: their organisation's; inspector, admin: all, with gate status).
    pub systems: Vec<SystemSummary>,
    /// Change requests of the owner's organisation, newest first.
    pub changes: Vec<ChangeRow>,
    /// Submitted changes awaiting evaluation, oldest first (reviewers).
    pub queue: Vec<ChangeRow>,
    /// Re-reviews due soon or overdue.
    pub reviews: Vec<ReviewDue>,
    /// Open incidents.
    pub incidents: Vec<wire::Incident>,
}

/// Filters of the audit search, already parsed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditFilter {
    /// Username, exactly.
    pub actor: Option<String>,
    /// Action, exactly, or a prefix such as `change_request` (matches `change_request.*`).
    pub action: Option<String>,
    /// System code.
    pub system: Option<String>,
    /// From this day (UTC), inclusive.
    pub from: Option<NaiveDate>,
    /// To this day (UTC), inclusive.
    pub to: Option<NaiveDate>,
    /// Page, from 1.
    pub page: u64,
}

/// An audit event as the search shows it.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    /// The event.
    #[serde(flatten)]
    pub event: wire::AuditEvent,
    /// The system's code, when the event concerns one.
    pub system: Option<String>,
}

/// A page of the audit search, newest first.
#[derive(Debug, Clone, Serialize)]
pub struct AuditResults {
    /// Events.
    pub events: Vec<AuditRow>,
    /// This page (from 1).
    pub page: u64,
    /// There is a next page.
    pub has_next: bool,
}

/// The evaluation report (*biên bản kiểm tra, đánh giá an toàn thông tin*) of one round.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The change request.
    pub change: wire::ChangeRequest,
    /// Its system.
    pub system: wire::System,
    /// Owner organisation name.
    pub owner_org_name: String,
    /// The round reported on.
    pub round: i32,
    /// The sign-offs of that round, in order.
    pub sign_offs: Vec<wire::SignOffView>,
    /// One line per checklist item with each reviewer's answer.
    pub items: Vec<ReportItem>,
    /// The outcome: `approved`, `rejected`, or the state while the quorum is not reached.
    pub outcome: String,
    /// Date of the last sign-off of the round.
    pub date: Option<DateTime<Utc>>,
    /// The findings and conditions raised in that round, tracked to closure, with their due dates.
    pub remediations: Vec<wire::Remediation>,
    /// The full name of who filed the change.
    pub filed_by_name: String,
}

/// One checklist item of the report.
#[derive(Debug, Clone, Serialize)]
pub struct ReportItem {
    /// Item id.
    pub item: String,
    /// Group.
    pub group: String,
    /// Vietnamese text.
    pub vi: String,
    /// English text.
    pub en: String,
    /// Each reviewer's answer, in the order of the sign-offs.
    pub answers: Vec<wire::ItemAnswer>,
}

fn timeline_entry(e: audit_event::Model) -> TimelineEntry {
    let after: Option<serde_json::Value> = e
        .after
        .as_deref()
        .and_then(|a| serde_json::from_str(a).ok());
    let field = |k: &str| {
        after
            .as_ref()
            .and_then(|v| v.get(k))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    TimelineEntry {
        state: field("state"),
        conclusion: field("conclusion"),
        note: field("note").or_else(|| field("reason")),
        seq: e.seq,
        at: e.at,
        actor: e.actor,
        action: e.action,
        entity: e.entity,
        entity_id: e.entity_id,
    }
}

/// A system as the CSV export lists it.
#[derive(Debug, Clone, Serialize)]
pub struct SystemExport {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Owning organisation's code.
    pub owner_org: String,
    /// Owning organisation's name.
    pub owner_org_name: String,
    /// Operating unit.
    pub operating_unit: String,
    /// Security level.
    pub level: i16,
    /// Part of the national population database.
    pub population_db: bool,
    /// `active`, `suspended`, `retired`.
    pub status: String,
    /// Environment ids.
    pub environments: Vec<String>,
    /// Last evaluated on.
    pub last_evaluated_on: Option<NaiveDate>,
    /// Next periodic review due.
    pub next_review_due: Option<DateTime<Utc>>,
}

/// A change request as the CSV export lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ChangeExport {
    /// Id.
    pub id: i64,
    /// System code.
    pub system: String,
    /// Kind.
    pub kind: String,
    /// Title.
    pub title: String,
    /// State.
    pub state: String,
    /// Environment ids.
    pub environments: Vec<String>,
    /// Who filed it (full name).
    pub filed_by: String,
    /// Filed at.
    pub created_at: DateTime<Utc>,
    /// Approved at.
    pub approved_at: Option<DateTime<Utc>>,
    /// Valid until.
    pub valid_until: Option<DateTime<Utc>>,
}

impl App {
    /// The systems the principal may see, by code.
    pub async fn visible_systems(&self, who: &Principal) -> AppResult<Vec<system::Model>> {
        let owner_org = (!who.role.sees_every_organisation()).then_some(who.org_id);
        Ok(registry::systems(&self.db, owner_org).await?)
    }

    async fn org_names(&self) -> AppResult<HashMap<i64, (String, String)>> {
        Ok(registry::organisations(&self.db)
            .await?
            .into_iter()
            .map(|o| (o.id, (o.code, o.name)))
            .collect())
    }

    /// The gate's status per environment of each system, from the gate's index
    /// ([`App::environment_gates`]); a gate that cannot decide shows as a denial.
    pub async fn system_gates(
        &self,
        who: &Principal,
        systems: &[system::Model],
    ) -> AppResult<HashMap<i64, Vec<EnvGate>>> {
        let mut out = HashMap::new();
        for sys in systems {
            let gates = match self.environment_gates(who, &sys.code).await {
                Ok(gates) => gates,
                Err(e) => sys
                    .environments
                    .iter()
                    .map(|env| EnvGate::unavailable(env, &e))
                    .collect(),
            };
            out.insert(sys.id, gates);
        }
        Ok(out)
    }

    /// Every system the principal may see, with its gate status per environment.
    pub async fn systems_overview(&self, who: &Principal) -> AppResult<Vec<SystemSummary>> {
        let systems = self.visible_systems(who).await?;
        let orgs = self.org_names().await?;
        let mut gates = self.system_gates(who, &systems).await?;
        let ids: Vec<i64> = systems.iter().map(|s| s.id).collect();
        let mut open: HashMap<i64, usize> = HashMap::new();
        for i in
            incidents::newest_of_systems(&self.db, ids, Some(IncidentStatus::Open), None).await?
        {
            *open.entry(i.system_id).or_default() += 1;
        }
        let now = Utc::now();
        Ok(systems
            .into_iter()
            .map(|s| {
                let (org, org_name) = orgs.get(&s.owner_org_id).cloned().unwrap_or_default();
                SystemSummary {
                    gates: gates.remove(&s.id).unwrap_or_default(),
                    open_incidents: open.get(&s.id).copied().unwrap_or(0),
                    review_overdue: s.next_review_due.is_some_and(|d| d <= now),
                    code: s.code,
                    name: s.name,
                    owner_org: org,
                    owner_org_name: org_name,
                    level: s.level,
                    population_db: s.population_db,
                    status: s.status.as_str().to_owned(),
                    next_review_due: s.next_review_due,
                }
            })
            .collect())
    }

    /// The change requests with these ids as list rows, in the order given (those the principal
    /// may not see are left out).
    pub async fn change_rows_of(&self, who: &Principal, ids: &[i64]) -> AppResult<Vec<ChangeRow>> {
        let rows = changes::by_ids(&self.db, ids.to_vec()).await?;
        let mut out = self.change_rows(who, rows).await?;
        out.sort_by_key(|r| ids.iter().position(|i| *i == r.id));
        Ok(out)
    }

    /// Change requests as list rows; `quorum` from the pack, submission times from the audit log.
    async fn change_rows(
        &self,
        who: &Principal,
        rows: Vec<cr::Model>,
    ) -> AppResult<Vec<ChangeRow>> {
        let sys_ids: Vec<i64> = rows.iter().map(|r| r.system_id).collect();
        let systems = registry::systems_by_ids(&self.db, sys_ids).await?;
        let rows: Vec<cr::Model> = rows
            .into_iter()
            .filter(|r| {
                systems
                    .get(&r.system_id)
                    .is_some_and(|s| may_see_org(who, s.owner_org_id))
            })
            .collect();
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let id_texts: Vec<String> = ids.iter().map(i64::to_string).collect();
        let mut submitted: HashMap<String, DateTime<Utc>> = HashMap::new();
        for e in changegate_store::audit::about_any(
            &self.db,
            "change_request",
            id_texts,
            "change_request.submit",
        )
        .await?
        {
            if let Ok(at) = DateTime::parse_from_rfc3339(&e.at) {
                submitted.insert(e.entity_id, at.with_timezone(&Utc));
            }
        }
        let signs = changes::sign_offs(&self.db, ids).await?;
        let filers: HashSet<i64> = rows.iter().map(|r| r.filed_by).collect();
        let names = identity::usernames_of(&self.db, filers).await?;
        let orgs = self.org_names().await?;
        let mut out = vec![];
        for r in rows {
            let Some(sys) = systems.get(&r.system_id) else {
                continue;
            };
            let this_round = signs
                .iter()
                .filter(|s| s.change_request_id == r.id && s.round == r.round);
            let quorum = changegate_domain::SecurityLevel::new(i64::from(sys.level))
                .map(|l| self.pack.level(l).quorum)
                .unwrap_or(1);
            out.push(ChangeRow {
                passes: this_round
                    .clone()
                    .filter(|s| *s.conclusion == Conclusion::Pass)
                    .count(),
                signed_by_me: this_round.clone().any(|s| s.reviewer_id == who.user_id),
                quorum,
                submitted_at: submitted.get(&r.id.to_string()).copied(),
                filed_by: names.get(&r.filed_by).cloned().unwrap_or_default(),
                org_name: orgs
                    .get(&sys.owner_org_id)
                    .map(|(_, name)| name.clone())
                    .unwrap_or_default(),
                system: sys.code.clone(),
                system_name: sys.name.clone(),
                level: sys.level,
                id: r.id,
                kind: r.kind.as_str().to_owned(),
                title: r.title,
                state: r.state.as_str().to_owned(),
                created_at: r.created_at,
                updated_at: r.updated_at,
                valid_until: r.valid_until,
            });
        }
        Ok(out)
    }

    /// Change requests of the systems the principal may see, newest first.
    pub async fn recent_changes(
        &self,
        who: &Principal,
        system_id: Option<i64>,
    ) -> AppResult<Vec<ChangeRow>> {
        let systems = if let Some(id) = system_id {
            OfSystems::One(id)
        } else if !who.role.sees_every_organisation() {
            let mine: Vec<i64> = self
                .visible_systems(who)
                .await?
                .iter()
                .map(|s| s.id)
                .collect();
            OfSystems::Any(mine)
        } else {
            OfSystems::All
        };
        let rows = changes::newest(&self.db, systems, Some(LIST_LIMIT)).await?;
        self.change_rows(who, rows).await
    }

    /// Submitted changes awaiting evaluation, oldest submission first.
    pub async fn review_queue(&self, who: &Principal) -> AppResult<Vec<ChangeRow>> {
        let rows = changes::oldest_in_state(&self.db, CrState::Submitted, LIST_LIMIT).await?;
        let mut out = self.change_rows(who, rows).await?;
        out.sort_by_key(|r| (r.submitted_at.unwrap_or(r.created_at), r.id));
        Ok(out)
    }

    /// Systems whose re-review falls due within the first reminder offset, or is overdue;
    /// soonest first.
    pub async fn reviews_due(&self, who: &Principal) -> AppResult<Vec<ReviewDue>> {
        let now = Utc::now();
        let horizon = i64::from(
            self.pack
                .reminders
                .days_before
                .iter()
                .copied()
                .max()
                .unwrap_or(30),
        );
        let until = now + chrono::Duration::days(horizon);
        let mut out: Vec<ReviewDue> = self
            .visible_systems(who)
            .await?
            .into_iter()
            .filter(|s| *s.status != SystemStatus::Retired)
            .filter_map(|s| {
                let due = s.next_review_due.filter(|d| *d <= until)?;
                Some(ReviewDue {
                    overdue: due <= now,
                    days: (due - now).num_days(),
                    system: s.code,
                    name: s.name,
                    level: s.level,
                    due,
                })
            })
            .collect();
        out.sort_by_key(|r| r.due);
        Ok(out)
    }

    /// Incidents of the systems the principal may see, open ones first, newest first.
    pub async fn incidents(
        &self,
        who: &Principal,
        only_open: bool,
    ) -> AppResult<Vec<wire::Incident>> {
        let systems: HashMap<i64, String> = self
            .visible_systems(who)
            .await?
            .into_iter()
            .map(|s| (s.id, s.code))
            .collect();
        let rows = incidents::newest_of_systems(
            &self.db,
            systems.keys().copied().collect(),
            only_open.then_some(IncidentStatus::Open),
            Some(LIST_LIMIT),
        )
        .await?;
        let mut out = vec![];
        for i in rows {
            let code = systems.get(&i.system_id).cloned().unwrap_or_default();
            out.push(self.incident_view(&i, &code).await?);
        }
        out.sort_by_key(|i| (i.status != IncidentStatus::Open.as_str(), -i.id));
        Ok(out)
    }

    /// The dashboard of the principal's role.
    pub async fn dashboard(&self, who: &Principal) -> AppResult<Dashboard> {
        let mut d = Dashboard::default();
        match who.role {
            Role::Owner | Role::Ci | Role::Admission | Role::Observer => {
                d.systems = self.systems_overview(who).await?;
                d.changes = self.recent_changes(who, None).await?;
                d.reviews = self.reviews_due(who).await?;
                d.incidents = self.incidents(who, true).await?;
            }
            Role::Reviewer => {
                d.queue = self.review_queue(who).await?;
                d.reviews = self.reviews_due(who).await?;
                d.incidents = self.incidents(who, true).await?;
            }
            Role::Auditor | Role::Admin => {
                d.systems = self.systems_overview(who).await?;
                d.reviews = self
                    .reviews_due(who)
                    .await?
                    .into_iter()
                    .filter(|r| r.overdue)
                    .collect();
                d.incidents = self.incidents(who, true).await?;
            }
        }
        Ok(d)
    }

    /// A system's page: inventory, gate status per environment, changes, incidents, history.
    /// Another organisation's system is not found.
    pub async fn system_page(&self, who: &Principal, code: &str) -> AppResult<SystemPage> {
        let sys = self.visible_system(who, code).await?;
        let view = system_view(&self.db, &sys).await?;
        let owner_org_name = identity::organisation_by_id(&self.db, sys.owner_org_id)
            .await?
            .map(|o| o.name)
            .unwrap_or_default();
        let gates = self
            .system_gates(who, std::slice::from_ref(&sys))
            .await?
            .remove(&sys.id)
            .unwrap_or_default();
        let changes = self.recent_changes(who, Some(sys.id)).await?;
        let rows =
            incidents::newest_of_systems(&self.db, vec![sys.id], None, Some(LIST_LIMIT)).await?;
        let mut incidents = vec![];
        for i in rows {
            incidents.push(self.incident_view(&i, &sys.code).await?);
        }
        let history = changegate_store::audit::latest_of_system(&self.db, sys.id, LIST_LIMIT)
            .await?
            .into_iter()
            .map(timeline_entry)
            .collect();
        Ok(SystemPage {
            review_overdue: sys.next_review_due.is_some_and(|d| d <= Utc::now()),
            system: view,
            owner_org_name,
            gates,
            changes,
            incidents,
            history,
        })
    }

    /// A change request's timeline from the audit log, oldest first. Another organisation's
    /// change is not found.
    pub async fn change_timeline(&self, who: &Principal, id: i64) -> AppResult<Vec<TimelineEntry>> {
        // Visibility first: the same rule, and the same answer, as reading the change.
        self.get_change(who, id).await?;
        Ok(
            changegate_store::audit::about(&self.db, "change_request", &id.to_string())
                .await?
                .into_iter()
                .map(timeline_entry)
                .collect(),
        )
    }

    /// Everyone's full name by username (the pages show names where a person is meant; the
    /// table is small, one query per page).
    pub async fn all_display_names(&self) -> AppResult<HashMap<String, String>> {
        Ok(identity::display_names(&self.db).await?)
    }

    /// An incident the principal may see (its system is visible), or not found.
    pub async fn incident(&self, who: &Principal, id: i64) -> AppResult<wire::Incident> {
        let systems: HashMap<i64, String> = self
            .visible_systems(who)
            .await?
            .into_iter()
            .map(|s| (s.id, s.code))
            .collect();
        let i = incidents::incident(&self.db, id)
            .await?
            .filter(|i| systems.contains_key(&i.system_id))
            .ok_or_else(|| AppError::NotFound(format!("incident {id}")))?;
        let code = systems.get(&i.system_id).cloned().unwrap_or_default();
        self.incident_view(&i, &code).await
    }

    /// The audit events of an incident (reported, notices, resolved), oldest first.
    pub async fn incident_timeline(
        &self,
        who: &Principal,
        id: i64,
    ) -> AppResult<Vec<TimelineEntry>> {
        self.incident(who, id).await?;
        Ok(
            changegate_store::audit::about(&self.db, "incident", &id.to_string())
                .await?
                .into_iter()
                .map(timeline_entry)
                .collect(),
        )
    }

    /// The evaluation report of a change: the last round with a sign-off, or `round`.
    pub async fn evaluation_report(
        &self,
        who: &Principal,
        id: i64,
        round: Option<i32>,
    ) -> AppResult<Report> {
        let change = self.get_change(who, id).await?;
        let round = round
            .or_else(|| change.sign_offs.iter().map(|s| s.round).max())
            .ok_or_else(|| AppError::NotFound(format!("evaluation of change request {id}")))?;
        let sign_offs: Vec<wire::SignOffView> = change
            .sign_offs
            .iter()
            .filter(|s| s.round == round)
            .cloned()
            .collect();
        if sign_offs.is_empty() {
            return Err(AppError::NotFound(format!(
                "evaluation of change request {id}"
            )));
        }
        let sys = self.visible_system(who, &change.system).await?;
        let owner_org_name = identity::organisation_by_id(&self.db, sys.owner_org_id)
            .await?
            .map(|o| o.name)
            .unwrap_or_default();
        let system = system_view(&self.db, &sys).await?;
        let items = change
            .checklist
            .iter()
            .map(|c| ReportItem {
                item: c.item.clone(),
                group: c.group.clone(),
                vi: c.vi.clone(),
                en: c.en.clone(),
                answers: sign_offs
                    .iter()
                    .map(|s| {
                        s.checklist
                            .iter()
                            .find(|a| a.item == c.item)
                            .cloned()
                            .unwrap_or_else(|| wire::ItemAnswer {
                                item: c.item.clone(),
                                result: String::new(),
                                note: String::new(),
                            })
                    })
                    .collect(),
            })
            .collect();
        let last_round = change.round == round;
        let outcome = if sign_offs
            .iter()
            .any(|s| s.conclusion == Conclusion::Fail.as_str())
        {
            CrState::Rejected.as_str().to_owned()
        } else if last_round {
            change.state.clone()
        } else {
            // An earlier round that did not conclude: the reviewer asked for changes.
            "changes_requested".to_owned()
        };
        let raised = {
            let rows =
                changegate_store::remediation::round_items(&self.db, change.id, round).await?;
            self.remediation_views(&self.db, rows).await?
        };
        let filed_by_name = identity::user_by_username(&self.db, &change.filed_by)
            .await?
            .map(|u| u.display_name)
            .unwrap_or_else(|| change.filed_by.clone());
        Ok(Report {
            date: sign_offs.iter().map(|s| s.at).max(),
            change,
            system,
            owner_org_name,
            round,
            sign_offs,
            items,
            outcome,
            remediations: raised,
            filed_by_name,
        })
    }

    /// A page of the audit log, newest first, filtered (reviewers, auditors, admins).
    pub async fn audit_search(&self, who: &Principal, f: &AuditFilter) -> AppResult<AuditResults> {
        who.require(
            &[Role::Reviewer, Role::Auditor, Role::Admin],
            "reading the audit log",
        )?;
        let codes: HashMap<i64, String> = registry::systems(&self.db, None)
            .await?
            .into_iter()
            .map(|s| (s.id, s.code))
            .collect();
        let page = f.page.clamp(1, 100_000);
        let system_id = f.system.as_deref().map(|code| {
            let id = codes
                .iter()
                .find(|(_, c)| c.as_str() == code)
                .map(|(id, _)| *id);
            // An unknown code matches nothing.
            id.unwrap_or(-1)
        });
        let q = AuditQuery {
            actor: f.actor.as_deref(),
            action: f.action.as_deref(),
            system_id,
            from: f.from,
            before: f.to.and_then(|d| d.succ_opt()),
        };
        let mut rows = changegate_store::audit::search(
            &self.db,
            &q,
            (page - 1) * AUDIT_PAGE_SIZE,
            AUDIT_PAGE_SIZE + 1,
        )
        .await?;
        let has_next = rows.len() as u64 > AUDIT_PAGE_SIZE;
        rows.truncate(AUDIT_PAGE_SIZE as usize);
        Ok(AuditResults {
            events: rows
                .into_iter()
                .map(|e| AuditRow {
                    system: e.system_id.and_then(|id| codes.get(&id).cloned()),
                    event: crate::audit::event_view(e),
                })
                .collect(),
            page,
            has_next,
        })
    }

    /// The owner organisations a list's filter may name, by code: every one for those who see
    /// every organisation, none for the others.
    pub async fn filter_organisations(&self, who: &Principal) -> AppResult<Vec<(String, String)>> {
        if !who.role.sees_every_organisation() {
            return Ok(vec![]);
        }
        Ok(registry::organisations_of_kind(&self.db, OrgKind::Owner)
            .await?
            .into_iter()
            .map(|o| (o.code, o.name))
            .collect())
    }

    /// Every organisation, by code (admin: to choose one for a new user).
    pub async fn list_organisations(&self, who: &Principal) -> AppResult<Vec<wire::Organisation>> {
        who.require(&[Role::Admin], "listing organisations")?;
        Ok(registry::organisations(&self.db)
            .await?
            .into_iter()
            .filter(|o| o.code != crate::registry::SERVICE_ORG)
            .map(|o| wire::Organisation {
                code: o.code,
                name: o.name,
                kind: o.kind.to_string(),
            })
            .collect())
    }

    /// The systems the principal may see, for the CSV export.
    pub async fn systems_export(&self, who: &Principal) -> AppResult<Vec<SystemExport>> {
        let orgs = self.org_names().await?;
        let mut rows = vec![];
        for s in self.visible_systems(who).await? {
            let (owner_org, owner_org_name) =
                orgs.get(&s.owner_org_id).cloned().unwrap_or_default();
            rows.push(SystemExport {
                code: s.code,
                name: s.name,
                owner_org,
                owner_org_name,
                operating_unit: s.operating_unit,
                level: s.level,
                population_db: s.population_db,
                status: s.status.as_str().to_owned(),
                environments: s.environments.0,
                last_evaluated_on: s.last_evaluated_on,
                next_review_due: s.next_review_due,
            });
        }
        Ok(rows)
    }

    /// The change requests the principal may see, newest first, for the CSV export.
    pub async fn changes_export(&self, who: &Principal) -> AppResult<Vec<ChangeExport>> {
        let systems: HashMap<i64, String> = self
            .visible_systems(who)
            .await?
            .into_iter()
            .map(|s| (s.id, s.code))
            .collect();
        let rows = changes::newest(
            &self.db,
            OfSystems::Any(systems.keys().copied().collect()),
            None,
        )
        .await?;
        // The full names of who filed them, in one query.
        let filers: HashSet<i64> = rows.iter().map(|r| r.filed_by).collect();
        let names: HashMap<i64, String> =
            identity::users_by_ids(&self.db, filers.into_iter().collect())
                .await?
                .into_iter()
                .map(|(id, u)| (id, u.display_name))
                .collect();
        Ok(rows
            .into_iter()
            .map(|r| ChangeExport {
                id: r.id,
                system: systems.get(&r.system_id).cloned().unwrap_or_default(),
                kind: r.kind.as_str().to_owned(),
                title: r.title,
                state: r.state.as_str().to_owned(),
                environments: r.environments.0,
                filed_by: names.get(&r.filed_by).cloned().unwrap_or_default(),
                created_at: r.created_at,
                approved_at: r.approved_at,
                valid_until: r.valid_until,
            })
            .collect())
    }
}
