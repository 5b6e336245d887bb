//! Findings and conditions tracked to closure: raised at a sign-off or a request for changes,
//! fulfilled by the owner's organisation with evidence, verified (or reopened) by PA05. The rules
//! are [`changegate_domain::remediation`]; each step is one transaction with its audit event and
//! its notification.

use crate::identity::tokens::Principal;
use crate::registry::may_see_org;
use crate::{App, AppError, AppResult, WriteTx, event};
use changegate_api as wire;
use changegate_domain::change::{Condition, Finding, Severity, check_due};
use changegate_domain::remediation::{
    self as rules, Item, RemediationKind, RemediationState, Step, closes_gate, default_due,
};
use changegate_store::entity::{remediation as rem, system};
use changegate_store::remediation::{self as store, ItemFilter, NewItem};
use changegate_store::sea_orm::ConnectionTrait;
use chrono::{DateTime, NaiveDate, Utc};
use tracing::instrument;

/// Items per page of the list.
pub const PER_PAGE: u64 = 50;

/// The Vietnamese name of a severity, for notifications.
pub(crate) fn severity_vi(s: Severity) -> &'static str {
    match s {
        Severity::Low => "Thấp",
        Severity::Medium => "Trung bình",
        Severity::High => "Cao",
        Severity::Critical => "Nghiêm trọng",
    }
}

/// Parses wire findings, naming each offending field.
pub fn parse_findings(
    findings: &[wire::WireFinding],
    errors: &mut Vec<(String, String)>,
) -> Vec<Finding> {
    let mut out = vec![];
    for (i, f) in findings.iter().enumerate() {
        match Severity::parse(&f.severity) {
            Ok(severity) => out.push(Finding {
                severity,
                text: f.text.clone(),
                item: f.item.clone(),
            }),
            Err(e) => errors.push((format!("findings[{i}].severity"), e.to_string())),
        }
    }
    out
}

/// Parses wire conditions: a plain text gets severity medium; a due date must be a real date,
/// not before `today` (`None`: conditions as recorded, whose dates were checked when given).
pub fn parse_conditions(
    conditions: &[wire::WireCondition],
    today: Option<NaiveDate>,
    errors: &mut Vec<(String, String)>,
) -> Vec<Condition> {
    let mut out = vec![];
    for (i, c) in conditions.iter().enumerate() {
        let (text, severity, due) = match c {
            wire::WireCondition::Text(t) => (t, None, None),
            wire::WireCondition::Full(s) => (&s.text, s.severity.as_deref(), s.due.as_deref()),
        };
        let severity = match severity.map(Severity::parse).transpose() {
            Ok(s) => s.unwrap_or(Severity::Medium),
            Err(e) => {
                errors.push((format!("conditions[{i}].severity"), e.to_string()));
                continue;
            }
        };
        let field = format!("conditions[{i}].due");
        let due = match due
            .map(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d"))
            .transpose()
        {
            Ok(d) => d,
            Err(_) => {
                errors.push((
                    field,
                    format!(
                        "{:?} is not a date as YYYY-MM-DD",
                        due.unwrap_or_default().chars().take(40).collect::<String>()
                    ),
                ));
                continue;
            }
        };
        if let (Some(d), Some(today)) = (due, today)
            && let Err(changegate_domain::Refusal::Invalid { field, message }) =
                check_due(&field, d, today)
        {
            errors.push((field, message));
            continue;
        }
        out.push(Condition {
            text: text.clone(),
            severity,
            due,
        });
    }
    out
}

/// What an item is raised from.
pub(crate) struct Raise<'a> {
    pub kind: RemediationKind,
    pub severity: Severity,
    pub text: &'a str,
    pub item: Option<&'a str>,
    pub due: Option<NaiveDate>,
}

impl<'a> From<&'a Finding> for Raise<'a> {
    fn from(f: &'a Finding) -> Self {
        Raise {
            kind: RemediationKind::Finding,
            severity: f.severity,
            text: &f.text,
            item: f.item.as_deref(),
            due: None,
        }
    }
}

impl<'a> From<&'a Condition> for Raise<'a> {
    fn from(c: &'a Condition) -> Self {
        Raise {
            kind: RemediationKind::Condition,
            severity: c.severity,
            text: &c.text,
            item: None,
            due: c.due,
        }
    }
}

impl App {
    /// The server's local date now.
    pub fn today(&self) -> NaiveDate {
        crate::now().with_timezone(&self.tz).date_naive()
    }

    /// Raises items on change request `cr_id` of `sys` (in `tx`, audited one by one).
    pub(crate) async fn raise_items(
        &self,
        tx: &WriteTx<'_>,
        who: &Principal,
        sys: &system::Model,
        cr_id: i64,
        round: i32,
        items: Vec<Raise<'_>>,
    ) -> AppResult<()> {
        let today = tx.at().with_timezone(&self.tz).date_naive();
        for r in items {
            let due = r
                .due
                .unwrap_or_else(|| default_due(&self.pack, r.severity, today));
            let row = store::insert_item(
                &tx.txn,
                NewItem {
                    kind: r.kind,
                    system_id: sys.id,
                    owner_org_id: sys.owner_org_id,
                    change_request_id: cr_id,
                    round,
                    severity: r.severity,
                    text: r.text.to_owned(),
                    item: r.item.map(str::to_owned),
                    due,
                    state: RemediationState::Open,
                    raised_by: who.user_id,
                    raised_at: tx.at(),
                },
            )
            .await?;
            tx.audit(event(
                Some(who),
                "remediation.raise",
                "remediation",
                row.id,
                Some(sys.id),
                None,
                Some(serde_json::json!({ "kind": r.kind, "change_request": cr_id, "round": round,
                    "severity": r.severity, "text": r.text, "item": r.item, "due": due, "state": RemediationState::Open.as_str() })),
            ))
            .await?;
        }
        Ok(())
    }

    async fn load_item(
        &self,
        db: &impl ConnectionTrait,
        who: &Principal,
        id: i64,
    ) -> AppResult<rem::Model> {
        store::item(db, id)
            .await?
            .filter(|r| may_see_org(who, r.owner_org_id))
            .ok_or_else(|| AppError::NotFound(format!("remediation item {id}")))
    }

    /// One item with its history, if the principal may see it.
    pub async fn get_remediation(&self, who: &Principal, id: i64) -> AppResult<wire::Remediation> {
        let row = self.load_item(&self.db, who, id).await?;
        let mut views = self.remediation_views(&self.db, vec![row]).await?;
        let mut view = views
            .pop()
            .ok_or_else(|| AppError::Internal("remediation view lost".into()))?;
        view.history = self.remediation_history(id).await?;
        Ok(view)
    }

    async fn remediation_history(&self, id: i64) -> AppResult<Vec<wire::RemediationEvent>> {
        let events = store::history(&self.db, id).await?;
        Ok(events
            .into_iter()
            .map(|e| {
                let after: serde_json::Value = e
                    .after
                    .as_deref()
                    .and_then(|a| serde_json::from_str(a).ok())
                    .unwrap_or_default();
                let note = ["evidence", "note", "text"]
                    .iter()
                    .find_map(|k| after[k].as_str().filter(|s| !s.is_empty()))
                    .map(str::to_owned);
                wire::RemediationEvent {
                    action: e
                        .action
                        .strip_prefix("remediation.")
                        .unwrap_or(&e.action)
                        .to_owned(),
                    actor: e.actor,
                    at: DateTime::parse_from_rfc3339(&e.at)
                        .map(|t| t.with_timezone(&Utc))
                        .unwrap_or_default(),
                    note,
                }
            })
            .collect())
    }

    /// Wire views of rows, in the given order.
    pub(crate) async fn remediation_views(
        &self,
        db: &impl ConnectionTrait,
        rows: Vec<rem::Model>,
    ) -> AppResult<Vec<wire::Remediation>> {
        let store::Labels {
            systems,
            orgs,
            people,
        } = store::labels(db, &rows).await?;
        let today = self.today();
        let name = |id: Option<i64>| id.and_then(|i| people.get(&i).cloned());
        Ok(rows
            .into_iter()
            .map(|r| wire::Remediation {
                id: r.id,
                kind: r.kind.as_str().to_owned(),
                system: systems.get(&r.system_id).cloned().unwrap_or_default(),
                organisation: orgs.get(&r.owner_org_id).cloned().unwrap_or_default(),
                change_request: r.change_request_id,
                round: r.round,
                severity: r.severity.as_str().to_owned(),
                text: r.text,
                item: r.item,
                due: r.due,
                overdue: *r.state != RemediationState::Verified && r.due < today,
                closes_gate: closes_gate(&self.pack, *r.kind, *r.severity),
                state: r.state.as_str().to_owned(),
                raised_by: name(Some(r.raised_by)).unwrap_or_default(),
                raised_at: r.raised_at,
                evidence: r.evidence,
                fulfilled_by: name(r.fulfilled_by),
                verified_by: name(r.verified_by),
                verify_note: r.verify_note,
                history: vec![],
            })
            .collect())
    }

    /// Items visible to the principal, soonest due first, filtered.
    pub async fn list_remediations(
        &self,
        who: &Principal,
        f: &RemediationFilter,
    ) -> AppResult<wire::RemediationList> {
        let mut filter = ItemFilter {
            visible_to_org: (!who.role.sees_every_organisation()).then_some(who.org_id),
            change_request: f.change_request,
            overdue: f.overdue,
            ..ItemFilter::default()
        };
        if let Some(code) = &f.system {
            let sys = crate::registry::system_by_code(&self.db, code).await?;
            if !may_see_org(who, sys.owner_org_id) {
                return Err(AppError::NotFound(format!("system {code:?}")));
            }
            filter.system = Some(sys.id);
        }
        if let Some(code) = &f.org {
            filter.owner_org = Some(crate::registry::org_by_code(&self.db, code).await?.id);
        }
        if let Some(s) = &f.state {
            filter.state =
                Some(RemediationState::parse(s).map_err(|e| AppError::parse("state", e))?);
        }
        if let Some(k) = &f.kind {
            filter.kind = Some(RemediationKind::parse(k).map_err(|e| AppError::parse("kind", e))?);
        }
        let today = self.today();
        let page = f.page.unwrap_or(1);
        if page == 0 || page > 100_000 {
            return Err(AppError::invalid("page", "must be from 1 to 100000"));
        }
        let store::ItemPage { items: rows, total } =
            store::page(&self.db, &filter, today, page, PER_PAGE).await?;
        Ok(wire::RemediationList {
            items: self.remediation_views(&self.db, rows).await?,
            page,
            per_page: PER_PAGE,
            total,
        })
    }

    /// Counts of the items visible to the principal that await someone: (awaiting the owner,
    /// awaiting PA05, overdue).
    pub async fn remediation_counts(&self, who: &Principal) -> AppResult<(u64, u64, u64)> {
        let visible_to_org = (!who.role.sees_every_organisation()).then_some(who.org_id);
        let store::Waiting {
            owner,
            pa05,
            overdue,
        } = store::waiting(&self.db, visible_to_org, self.today()).await?;
        Ok((owner, pa05, overdue))
    }

    /// The owner's organisation reports an item done, with evidence.
    #[instrument(skip_all, fields(id), err(level = "info"))]
    pub async fn fulfil_remediation(
        &self,
        who: &Principal,
        id: i64,
        evidence: String,
    ) -> AppResult<wire::Remediation> {
        self.step(who, id, Step::Fulfil { evidence }).await
    }

    /// PA05 verifies an item (accepted: closed) or reopens it with a note.
    #[instrument(skip_all, fields(id), err(level = "info"))]
    pub async fn verify_remediation(
        &self,
        who: &Principal,
        id: i64,
        accepted: bool,
        note: String,
    ) -> AppResult<wire::Remediation> {
        self.step(who, id, Step::Verify { accepted, note }).await
    }

    /// What the principal may do to item `id` now, by the domain's rules: (fulfil, verify).
    pub async fn remediation_actions(&self, who: &Principal, id: i64) -> AppResult<(bool, bool)> {
        let item = rule_view(&self.load_item(&self.db, who, id).await?);
        let actor = who.actor();
        Ok((
            rules::may_fulfil(&item, &actor).is_ok(),
            rules::may_verify(&item, &actor).is_ok(),
        ))
    }

    async fn step(&self, who: &Principal, id: i64, step: Step) -> AppResult<wire::Remediation> {
        let tx = self.begin().await?;
        let row = self.load_item(&tx.txn, who, id).await?;
        let next = rules::apply(&rule_view(&row), &who.actor(), &step)?;
        let before = serde_json::json!({ "state": row.state });
        let (row, action, event_name, after) = match &step {
            Step::Fulfil { evidence } => {
                let row = store::record_fulfilment(
                    &tx.txn,
                    row,
                    next,
                    evidence.clone(),
                    who.user_id,
                    tx.at(),
                )
                .await?;
                (
                    row,
                    "remediation.fulfil",
                    "remediation.fulfilled",
                    serde_json::json!({ "state": next, "evidence": evidence }),
                )
            }
            Step::Verify { accepted, note } => {
                let row = store::record_verification(
                    &tx.txn,
                    row,
                    next,
                    note.clone(),
                    who.user_id,
                    tx.at(),
                )
                .await?;
                let (action, ev) = if *accepted {
                    ("remediation.verify", "remediation.verified")
                } else {
                    ("remediation.reopen", "remediation.reopened")
                };
                (
                    row,
                    action,
                    ev,
                    serde_json::json!({ "state": next, "accepted": accepted, "note": note }),
                )
            }
        };
        tx.audit(event(
            Some(who),
            action,
            "remediation",
            id,
            Some(row.system_id),
            Some(before),
            Some(after.clone()),
        ))
        .await?;
        let mut data = self.notice(&tx.txn, &row).await?;
        data["actor"] = serde_json::Value::String(who.display_name.clone());
        for k in ["evidence", "note"] {
            if let Some(v) = after.get(k) {
                data[k] = v.clone();
            }
        }
        tx.notify(event_name, data).await?;
        let view = self
            .remediation_views(&tx.txn, vec![row])
            .await?
            .pop()
            .ok_or_else(|| AppError::Internal("remediation view lost".into()))?;
        tx.commit().await?;
        Ok(view)
    }

    /// The data of an item's notification.
    pub(crate) async fn notice(
        &self,
        db: &impl ConnectionTrait,
        row: &rem::Model,
    ) -> AppResult<serde_json::Value> {
        let sys = changegate_store::gate::system_by_id(db, row.system_id).await?;
        Ok(serde_json::json!({
            "id": row.id,
            "kind": row.kind.as_str(),
            "system": sys.as_ref().map(|s| s.code.clone()),
            "system_name": sys.as_ref().map(|s| s.name.clone()),
            "change_request": row.change_request_id,
            "severity": row.severity.as_str(),
            "severity_vi": severity_vi(*row.severity),
            "text": row.text,
            "due": row.due,
            "closes_gate": closes_gate(&self.pack, *row.kind, *row.severity),
        }))
    }
}

/// What the rules need to know about a stored item.
fn rule_view(row: &rem::Model) -> Item {
    Item {
        state: *row.state,
        owner_org: row.owner_org_id,
        fulfilled_by: row.fulfilled_by,
    }
}

/// Filters of the list of items.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct RemediationFilter {
    /// System code.
    pub system: Option<String>,
    /// Owner organisation code.
    pub org: Option<String>,
    /// Change request id.
    pub change_request: Option<i64>,
    /// State.
    pub state: Option<String>,
    /// `finding` or `condition`.
    pub kind: Option<String>,
    /// Only overdue (true) or only not overdue (false).
    pub overdue: Option<bool>,
    /// Page, from 1.
    pub page: Option<u64>,
}
