//! The annual report (Decree 331/2026/NĐ-CP, Form 08) and what it is made from: the level
//! record of each system (columns 5–12), re-levelling, the organisations' section-2 details, the
//! report itself, and the reminders before 20-12 and 25-12.
//!
//! Every write is one transaction with its audit event. The rules (value lists, dates, the data
//! period, the reminders' days) are the domain's (`changegate_domain::annual`).

use crate::identity::tokens::Principal;
use crate::registry::{may_see_org, org_by_code, review_due, system_by_code, system_view};
use crate::{App, AppError, AppResult, event};
use changegate_api as wire;
use changegate_domain::annual::{
    self, ApprovalStatus, Contact, Decision, Evaluated, LevelRecord, OrgDetails, PlanDeployment,
};
use changegate_domain::change::{ChangeKind, CrState, check_text};
use changegate_domain::gate::SystemStatus;
use changegate_domain::incident::{NoticeKind, deadlines};
use changegate_domain::notify::ReminderKind;
use changegate_domain::policy::BelowMinimum;
use changegate_domain::remediation::RemediationState;
use changegate_domain::{OrgKind, Role, SecurityLevel, Severity};
use changegate_store::annual as store;
use changegate_store::entity::{incident, organisation, system};
use changegate_store::sea_orm::ConnectionTrait;
use chrono::{DateTime, Datelike, NaiveDate, Utc};
use std::collections::{BTreeMap, HashMap};
use tracing::instrument;

fn decision_wire(d: &Decision) -> wire::LevelDecision {
    wire::LevelDecision {
        number: d.number.clone(),
        date: d.date,
        issuer: d.issuer.clone(),
    }
}

fn decision_domain(d: &wire::LevelDecision) -> Decision {
    Decision {
        number: d.number.trim().to_owned(),
        date: d.date,
        issuer: d.issuer.trim().to_owned(),
    }
}

fn record_wire(r: &LevelRecord) -> wire::LevelRecord {
    wire::LevelRecord {
        proposed_level: r.proposed_level.map(i64::from),
        approval_status: r.approval_status.map(|s| s.as_str().to_owned()),
        approval_decision: r.approval_decision.as_ref().map(decision_wire),
        expected_approval_date: r.expected_approval_date,
        rules_decision: r.rules_decision.as_ref().map(decision_wire),
        plan_deployment: r.plan_deployment.map(|p| p.as_str().to_owned()),
        plan_expected_date: r.plan_expected_date,
    }
}

/// Parses a level record from the wire and checks it; every fault, by field.
fn record_domain(r: &wire::LevelRecord, today: NaiveDate) -> AppResult<LevelRecord> {
    let mut errors = vec![];
    let proposed_level = match r.proposed_level {
        None => None,
        Some(l) => match SecurityLevel::new(l) {
            Ok(l) => Some(l.get()),
            Err(_) => {
                errors.push((
                    "proposed_level".to_owned(),
                    format!("{l} is not a level from 1 to 5"),
                ));
                None
            }
        },
    };
    let approval_status = match r.approval_status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => ApprovalStatus::parse(s)
            .map_err(|e| errors.push(("approval_status".to_owned(), e.to_string())))
            .ok(),
    };
    let plan_deployment = match r.plan_deployment.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => PlanDeployment::parse(s)
            .map_err(|e| errors.push(("plan_deployment".to_owned(), e.to_string())))
            .ok(),
    };
    let record = LevelRecord {
        proposed_level,
        approval_status,
        approval_decision: r.approval_decision.as_ref().map(decision_domain),
        expected_approval_date: r.expected_approval_date,
        rules_decision: r.rules_decision.as_ref().map(decision_domain),
        plan_deployment,
        plan_expected_date: r.plan_expected_date,
    };
    if errors.is_empty() {
        errors.extend(annual::check_level_record(&record, today));
    }
    if errors.is_empty() {
        Ok(record)
    } else {
        Err(AppError::Invalid(errors))
    }
}

fn contact_wire(c: &Contact) -> wire::Contact {
    wire::Contact {
        name: c.name.clone(),
        founding_text: c.founding_text.clone(),
        representative: c.representative.clone(),
        representative_title: c.representative_title.clone(),
        address: c.address.clone(),
        phone: c.phone.clone(),
        email: c.email.clone(),
    }
}

fn contact_domain(c: &wire::Contact) -> Contact {
    let t = |s: &str| s.trim().to_owned();
    Contact {
        name: t(&c.name),
        founding_text: t(&c.founding_text),
        representative: t(&c.representative),
        representative_title: t(&c.representative_title),
        address: t(&c.address),
        phone: t(&c.phone),
        email: t(&c.email),
    }
}

/// An organisation with its Form 08 details.
pub fn org_details(o: &organisation::Model) -> wire::OrganisationDetails {
    let d = o.details.as_ref().map(|d| d.0.clone()).unwrap_or_default();
    wire::OrganisationDetails {
        code: o.code.clone(),
        name: o.name.clone(),
        kind: o.kind.to_string(),
        contact: contact_wire(&d.contact),
        security_unit: d.security_unit.as_ref().map(contact_wire),
    }
}

/// The concluded evaluations of systems: approved (at the approval) or rejected (at the
/// rejection), with whether they passed.
async fn evaluations(
    db: &impl ConnectionTrait,
    system_ids: Vec<i64>,
    tz: chrono_tz::Tz,
) -> AppResult<HashMap<i64, Vec<(Evaluated, bool)>>> {
    let rows = store::concluded_changes(db, system_ids).await?;
    let mut out: HashMap<i64, Vec<(Evaluated, bool)>> = HashMap::new();
    for c in rows {
        let (at, passed) = match (*c.state, c.approved_at) {
            (CrState::Rejected, _) => (c.updated_at, false),
            (_, Some(at)) => (at, true),
            // Expired or revoked without an approval time: not an evaluation we can date.
            _ => continue,
        };
        out.entry(c.system_id).or_default().push((
            Evaluated {
                kind: *c.kind,
                on: at.with_timezone(&tz).date_naive(),
            },
            passed,
        ));
    }
    Ok(out)
}

/// A system's level record and its column 12 (every evaluation up to today).
pub(crate) async fn level_view(
    db: &impl ConnectionTrait,
    s: &system::Model,
) -> AppResult<(Option<wire::LevelRecord>, wire::ChecksDone)> {
    let evals = evaluations(db, vec![s.id], chrono_tz::UTC).await?;
    let list: Vec<Evaluated> = evals
        .get(&s.id)
        .map(|v| v.iter().map(|(e, _)| *e).collect())
        .unwrap_or_default();
    let c = annual::checks_done(
        &list,
        s.last_evaluated_on
            .is_some_and(|d| d <= s.created_at.date_naive()),
        None,
        NaiveDate::MAX,
    );
    Ok((
        s.level_record.as_ref().map(|r| record_wire(&r.0)),
        wire::ChecksDone {
            before_operation: c.before_operation,
            periodic: c.periodic,
        },
    ))
}

impl App {
    /// The system `code` for writing its level record: an admin, or an owner of its organisation
    /// (another organisation's system is not found); not retired.
    async fn level_writable(
        &self,
        db: &impl ConnectionTrait,
        who: &Principal,
        code: &str,
    ) -> AppResult<system::Model> {
        who.require(&[Role::Admin, Role::Owner], "recording a system's level")?;
        let s = system_by_code(db, code).await?;
        if !may_see_org(who, s.owner_org_id) {
            return Err(AppError::NotFound(format!("system {code:?}")));
        }
        if *s.status == SystemStatus::Retired {
            return Err(crate::systems::retired(code, "re-levelled or recorded"));
        }
        Ok(s)
    }

    /// Replaces a system's level record (Form 08 columns 5–11): admin, or an owner of its
    /// organisation. Audited when it changes.
    #[instrument(skip_all, fields(code = %code), err(level = "info"))]
    pub async fn put_level_record(
        &self,
        who: &Principal,
        code: &str,
        r: wire::LevelRecord,
    ) -> AppResult<wire::System> {
        let today = crate::now().with_timezone(&self.tz).date_naive();
        let record = record_domain(&r, today)?;
        let tx = self.begin().await?;
        let s = self.level_writable(&tx.txn, who, code).await?;
        let before = s.level_record.as_ref().map(|r| r.0.clone());
        if before.as_ref() == Some(&record) {
            return system_view(&tx.txn, &s).await;
        }
        let s = store::set_level_record(&tx.txn, s.clone(), record.clone(), tx.at()).await?;
        tx.audit(event(
            Some(who),
            "system.level_record",
            "system",
            &s.code,
            Some(s.id),
            before.map(|b| serde_json::json!(b)),
            Some(serde_json::json!(record)),
        ))
        .await?;
        let view = system_view(&tx.txn, &s).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Re-levelling (*xác định lại cấp độ*): the system's security level changes, recorded with
    /// its decision (which becomes the level record's approval decision), audited; for a
    /// population-database system a change of kind `reclassification` is opened for PA05.
    /// Below the pack's minimum level for a connected system it is refused or warned, as the
    /// pack says.
    #[instrument(skip_all, fields(code = %code), err(level = "info"))]
    pub async fn relevel(
        &self,
        who: &Principal,
        code: &str,
        r: wire::Relevel,
    ) -> AppResult<wire::Relevelled> {
        let today = crate::now().with_timezone(&self.tz).date_naive();
        let mut errors = vec![];
        let level = SecurityLevel::new(r.level)
            .map_err(|_| {
                errors.push((
                    "level".to_owned(),
                    format!("{} is not a level from 1 to 5", r.level),
                ))
            })
            .ok();
        let decision = decision_domain(&r.decision);
        errors.extend(annual::check_decision("decision", &decision, today));
        if let Err(e) = check_text("reason", &r.reason, 2000, false) {
            errors.push(("reason".to_owned(), e.to_string()));
        }
        let (Some(level), true) = (level, errors.is_empty()) else {
            return Err(AppError::Invalid(errors));
        };
        let tx = self.begin().await?;
        let s = self.level_writable(&tx.txn, who, code).await?;
        let old = SecurityLevel::new(i64::from(s.level))
            .map_err(|e| AppError::Internal(format!("system {code} level: {e}")))?;
        if old == level {
            return Err(AppError::invalid(
                "level",
                format!("system {code} is already level {level}"),
            ));
        }
        let mut warnings = vec![];
        let min = self.pack.registration.population_db_min_level;
        if s.population_db && level.get() < min {
            let msg = format!(
                "a system connected to the National Population Database must be security level {min} or higher (Circular 46/2022/TT-BCA, Art. 6); re-levelling it to {level} goes below"
            );
            match self.pack.registration.below_min_level {
                BelowMinimum::Refuse => return Err(AppError::invalid("level", msg)),
                BelowMinimum::Warn => warnings.push(msg),
            }
        }
        let mut record = s
            .level_record
            .as_ref()
            .map(|r| r.0.clone())
            .unwrap_or_default();
        record.proposed_level = Some(level.get());
        record.approval_status = Some(ApprovalStatus::Approved);
        record.approval_decision = Some(decision.clone());
        record.expected_approval_date = None;
        let months = self.pack.level(level).re_review_months;
        let since = s
            .last_evaluated_on
            .unwrap_or_else(|| s.created_at.with_timezone(&self.tz).date_naive());
        let s = store::record_relevel(
            &tx.txn,
            s.clone(),
            i16::from(level.get()),
            record,
            review_due(months, since),
            tx.at(),
        )
        .await?;
        tx.audit(event(
            Some(who),
            "system.relevel",
            "system",
            &s.code,
            Some(s.id),
            Some(serde_json::json!({ "level": old.get() })),
            Some(serde_json::json!({ "level": level.get(), "decision": decision, "reason": r.reason })),
        ))
        .await?;
        let mut opened = None;
        if s.population_db {
            let filer = self.service_user(&tx).await?;
            let title = format!(
                "Xác định lại cấp độ: cấp độ {old} → cấp độ {level} (Quyết định số {}, ngày {}) / Re-levelling: level {old} → {level}",
                decision.number,
                decision.date.format("%d/%m/%Y")
            );
            let description = format!(
                "Mở khi xác định lại cấp độ hệ thống theo Quyết định số {} ngày {} của {} (Thông tư 46/2022/TT-BCA, Điều 6; Nghị định 331/2026/NĐ-CP, Điều 10). {}\nOpened by re-levelling the system; PA05 evaluates it.",
                decision.number,
                decision.date.format("%d/%m/%Y"),
                decision.issuer,
                r.reason
            );
            let c = changegate_store::jobs::insert_job_change(
                &tx.txn,
                changegate_store::jobs::NewJobChange {
                    system_id: s.id,
                    kind: ChangeKind::Reclassification,
                    search_text: changegate_domain::change::search_text(&title, &description),
                    title: title.clone(),
                    description,
                    state: CrState::Submitted,
                    environments: s.environments.clone(),
                    filed_by: filer,
                    editors: vec![filer],
                    at: tx.at(),
                },
            )
            .await?;
            let data = serde_json::json!({
                "id": c.id, "system": s.code, "system_name": s.name, "level": s.level,
                "kind": ChangeKind::Reclassification.as_str(), "title": title, "actor": who.username,
            });
            tx.notify("change_request.submitted", data.clone()).await?;
            tx.audit(event(
                Some(who),
                "change_request.open_reclassification",
                "change_request",
                c.id,
                Some(s.id),
                None,
                Some(data),
            ))
            .await?;
            opened = Some(c.id);
        }
        let mut view = system_view(&tx.txn, &s).await?;
        tx.commit().await?;
        view.warnings = warnings;
        Ok(wire::Relevelled {
            system: view,
            change_request: opened,
        })
    }

    /// The organisations the principal may see (owners: their own), by code, with their
    /// Form 08 details.
    pub async fn organisation_details(
        &self,
        who: &Principal,
    ) -> AppResult<Vec<wire::OrganisationDetails>> {
        let only = (!who.role.sees_every_organisation()).then_some(who.org_id);
        let rows = store::organisations(&self.db, crate::registry::SERVICE_ORG, only).await?;
        Ok(rows.iter().map(org_details).collect())
    }

    /// One organisation, if the principal may see it.
    pub async fn get_organisation(
        &self,
        who: &Principal,
        code: &str,
    ) -> AppResult<wire::OrganisationDetails> {
        let o = org_by_code(&self.db, code).await?;
        if !may_see_org(who, o.id) || o.code == crate::registry::SERVICE_ORG {
            return Err(AppError::NotFound(format!("organisation {code:?}")));
        }
        Ok(org_details(&o))
    }

    /// Edits an organisation's name and Form 08 details (admin). Audited when it changes.
    #[instrument(skip_all, fields(code = %code), err(level = "info"))]
    pub async fn edit_organisation(
        &self,
        who: &Principal,
        code: &str,
        e: wire::EditOrganisation,
    ) -> AppResult<wire::OrganisationDetails> {
        who.require(&[Role::Admin], "editing an organisation")?;
        let mut errors = vec![];
        if let Some(n) = &e.name
            && let Err(err) = check_text("name", n, 300, true)
        {
            errors.push(("name".to_owned(), err.to_string()));
        }
        let contact = e.contact.as_ref().map(contact_domain);
        let unit = e.security_unit.as_ref().map(contact_domain);
        if let Some(c) = &contact {
            errors.extend(annual::check_contact("contact.", c));
        }
        if let Some(u) = &unit {
            errors.extend(annual::check_contact("security_unit.", u));
            if u.name.trim().is_empty() {
                errors.push((
                    "security_unit.name".to_owned(),
                    "the cybersecurity unit has a name".to_owned(),
                ));
            }
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let tx = self.begin().await?;
        let o = org_by_code(&tx.txn, code).await?;
        if o.code == crate::registry::SERVICE_ORG {
            return Err(AppError::NotFound(format!("organisation {code:?}")));
        }
        if unit.is_some() && *o.kind != OrgKind::Owner {
            return Err(AppError::invalid(
                "security_unit",
                format!(
                    "{} is not an owner organisation: only an owner has a cybersecurity unit",
                    o.code
                ),
            ));
        }
        let before = org_details(&o);
        let mut details: OrgDetails = o.details.as_ref().map(|d| d.0.clone()).unwrap_or_default();
        if let Some(c) = contact {
            details.contact = c;
        }
        if let Some(u) = unit {
            details.security_unit = Some(u);
        }
        let name = e.name.map(|n| n.trim().to_owned());
        let o = store::update_organisation(&tx.txn, o, name, details).await?;
        let after = org_details(&o);
        if after != before {
            tx.audit(event(
                Some(who),
                "organisation.edit",
                "organisation",
                &o.code,
                None,
                Some(serde_json::json!(before)),
                Some(serde_json::json!(after)),
            ))
            .await?;
            tx.commit().await?;
        }
        Ok(after)
    }

    /// The annual report of `year` (Form 08) for one owner organisation, or for the whole
    /// province (`org` none; an owner always gets its own). Admins, PA05 reviewers and auditors
    /// may ask for any organisation; an owner for another organisation's is answered not found.
    #[instrument(skip_all, fields(year, org = ?org), err(level = "info"))]
    pub async fn annual_report(
        &self,
        who: &Principal,
        year: i32,
        org: Option<&str>,
        province: &str,
    ) -> AppResult<wire::AnnualReport> {
        who.require(
            &[Role::Admin, Role::Owner, Role::Reviewer, Role::Auditor],
            "reading the annual report",
        )?;
        let now = crate::now();
        let today = now.with_timezone(&self.tz).date_naive();
        annual::check_year(year, today).map_err(|m| AppError::invalid("year", m))?;
        let (from, to) = annual::period(year)
            .ok_or_else(|| AppError::invalid("year", format!("{year} has no period")))?;
        let scope = match org.filter(|c| !c.is_empty()) {
            Some(code) => {
                let o = org_by_code(&self.db, code).await?;
                if !may_see_org(who, o.id) {
                    return Err(AppError::NotFound(format!("organisation {code:?}")));
                }
                if *o.kind != OrgKind::Owner {
                    return Err(AppError::invalid(
                        "org",
                        format!("{code} is not an owner organisation (chủ quản)"),
                    ));
                }
                Some(o)
            }
            None if !who.role.sees_every_organisation() => Some(
                changegate_store::identity::organisation_by_id(&self.db, who.org_id)
                    .await?
                    .ok_or_else(|| AppError::NotFound("organisation".into()))?,
            ),
            None => None,
        };
        let owners: Vec<organisation::Model> = match &scope {
            Some(o) => vec![o.clone()],
            None => store::owner_organisations(&self.db).await?,
        };
        let owner_ids: Vec<i64> = owners.iter().map(|o| o.id).collect();
        let names: HashMap<i64, &organisation::Model> = owners.iter().map(|o| (o.id, o)).collect();
        let mut systems = store::live_systems_of(&self.db, owner_ids.clone()).await?;
        // Grouped by owner, in the order of the owners.
        let order: HashMap<i64, usize> = owner_ids
            .iter()
            .enumerate()
            .map(|(i, id)| (*id, i))
            .collect();
        systems.sort_by_key(|s| (order.get(&s.owner_org_id).copied(), s.code.clone()));
        let ids: Vec<i64> = systems.iter().map(|s| s.id).collect();
        let evals = evaluations(&self.db, ids.clone(), self.tz).await?;
        let in_period = |d: NaiveDate| d >= from && d <= to;
        let mut summary = wire::ReportSummary::default();
        let mut rows = vec![];
        for (i, s) in systems.iter().enumerate() {
            let r = s
                .level_record
                .as_ref()
                .map(|r| r.0.clone())
                .unwrap_or_default();
            let list: Vec<Evaluated> = evals
                .get(&s.id)
                .map(|v| v.iter().map(|(e, _)| *e).collect())
                .unwrap_or_default();
            let checks = annual::checks_done(
                &list,
                s.last_evaluated_on
                    .is_some_and(|d| d <= s.created_at.date_naive()),
                Some(from),
                to,
            );
            summary.systems += 1;
            summary.classified += u32::from(r.proposed_level.is_some());
            summary.with_dossier += u32::from(r.approval_status.is_some());
            summary.appraised += u32::from(r.approval_status.is_some_and(|a| a.appraised()));
            let approved = r.approval_status == Some(ApprovalStatus::Approved);
            summary.approved += u32::from(approved);
            summary.approved_checked_periodically += u32::from(approved && checks.periodic);
            if !approved {
                summary.all_approved_by = summary.all_approved_by.max(r.expected_approval_date);
            }
            let owner = names.get(&s.owner_org_id);
            rows.push(wire::ReportRow {
                no: u32::try_from(i + 1).unwrap_or(u32::MAX),
                code: s.code.clone(),
                name: s.name.clone(),
                owner_org: owner.map(|o| o.code.clone()).unwrap_or_default(),
                owner_name: owner.map(|o| o.name.clone()).unwrap_or_default(),
                operating_unit: s.operating_unit.clone(),
                proposed_level: r.proposed_level.map(i64::from),
                approval_status: r.approval_status.map(|a| a.as_str().to_owned()),
                approval_decision: r.approval_decision.as_ref().map(decision_wire),
                rules_decision: r.rules_decision.as_ref().map(decision_wire),
                expected_approval_date: if approved {
                    None
                } else {
                    r.expected_approval_date
                },
                plan_deployment: r.plan_deployment.map(|p| p.as_str().to_owned()),
                plan_expected_date: r.plan_expected_date,
                checks_done: wire::ChecksDone {
                    before_operation: checks.before_operation,
                    periodic: checks.periodic,
                },
                level: i64::from(s.level),
            });
        }
        // If some are not approved and none has an expected date, there is no date to give.
        if summary.approved == summary.systems {
            summary.all_approved_by = None;
        }
        // Beyond the form: evaluations, incidents, remediation in the period.
        let mut activity = wire::ReportActivity::default();
        let mut by_kind: BTreeMap<&'static str, u32> = BTreeMap::new();
        for (e, passed) in evals.values().flatten() {
            if in_period(e.on) {
                activity.evaluations += 1;
                if *passed {
                    activity.passed += 1;
                } else {
                    activity.failed += 1;
                }
                *by_kind.entry(e.kind.as_str()).or_default() += 1;
            }
        }
        activity.changes_evaluated = by_kind
            .into_iter()
            .map(|(kind, count)| wire::KindCount {
                kind: kind.to_owned(),
                count,
            })
            .collect();
        activity.incidents = self.incident_counts(&ids, from, to, now).await?;
        let end = to.min(today);
        let items = changegate_store::remediation::items_of_systems(&self.db, ids).await?;
        for it in items {
            let raised = it.raised_at.with_timezone(&self.tz).date_naive();
            if raised > to {
                continue;
            }
            let verified = it
                .verified_at
                .filter(|_| *it.state == RemediationState::Verified)
                .map(|v| v.with_timezone(&self.tz).date_naive());
            match verified {
                Some(v) if in_period(v) => activity.remediation_closed += 1,
                Some(v) if v < from => {}
                _ => {
                    activity.remediation_open += 1;
                    if it.due < end {
                        activity.remediation_overdue += 1;
                    }
                }
            }
        }
        Ok(wire::AnnualReport {
            year,
            period_from: from,
            period_to: to,
            made_on: today,
            province: province.to_owned(),
            organisation: scope.as_ref().map(org_details),
            summary,
            owners: owners.iter().map(org_details).collect(),
            systems: rows,
            activity,
        })
    }

    /// Incidents detected in the period, by severity, with their notices (on time or late).
    async fn incident_counts(
        &self,
        system_ids: &[i64],
        from: NaiveDate,
        to: NaiveDate,
        now: DateTime<Utc>,
    ) -> AppResult<Vec<wire::IncidentCount>> {
        let all = changegate_store::incidents::of_systems(&self.db, system_ids.to_vec()).await?;
        let list: Vec<incident::Model> = all
            .into_iter()
            .filter(|i| {
                let d = i
                    .detected_at
                    .unwrap_or(i.reported_at)
                    .with_timezone(&self.tz)
                    .date_naive();
                d >= from && d <= to
            })
            .collect();
        let ids: Vec<i64> = list.iter().map(|i| i.id).collect();
        let notices = changegate_store::incidents::notices_of(&self.db, &ids).await?;
        let mut out: Vec<wire::IncidentCount> = Severity::ALL
            .iter()
            .map(|s| wire::IncidentCount {
                severity: s.as_str().to_owned(),
                incidents: 0,
                notices_due: 0,
                notices_on_time: 0,
                notices_late: 0,
            })
            .collect();
        for i in &list {
            let facts = self.clock_facts(i);
            let Some(c) = out
                .iter_mut()
                .find(|c| c.severity == facts.severity.as_str())
            else {
                continue;
            };
            c.incidents += 1;
            for d in deadlines(&facts, &self.pack) {
                c.notices_due += 1;
                let sent = notices
                    .iter()
                    .filter(|n| n.incident_id == i.id && *n.kind == d.kind)
                    .map(|n| n.sent_at)
                    .chain(i.a05_notified_at.filter(|_| d.kind == NoticeKind::A05))
                    .min();
                match sent {
                    Some(at) if at <= d.due => c.notices_on_time += 1,
                    Some(_) => c.notices_late += 1,
                    None if d.due < now => c.notices_late += 1,
                    None => {}
                }
            }
        }
        Ok(out)
    }

    /// Reminders of the annual report through the outbox: before the units' day (20-12) and the
    /// owner's day (25-12), at the pack's offsets (the nearest reached), each once. Returns how
    /// many were sent now.
    pub(crate) async fn annual_report_clock(&self, now: DateTime<Utc>) -> AppResult<u32> {
        let today = now.with_timezone(&self.tz).date_naive();
        let year = today.year();
        let Some((from, to)) = annual::period(year) else {
            return Ok(0);
        };
        let mut sent = 0;
        for (which, due, offset) in annual::report_reminders(&self.pack.annual_report, today) {
            let vi = |d: NaiveDate| d.format("%d/%m/%Y").to_string();
            let data = serde_json::json!({
                "year": year, "to": which.as_str(), "due": due, "due_vi": vi(due),
                "days_left": (due - today).num_days(), "period_from": from, "period_to": to,
                "period_from_vi": vi(from), "period_to_vi": vi(to),
            });
            let due_at = due
                .and_hms_opt(0, 0, 0)
                .map(|d| d.and_utc())
                .ok_or_else(|| AppError::Internal(format!("{due} has no midnight")))?;
            let reminder = (
                ReminderKind::AnnualReport,
                format!("{year}:{}", which.as_str()),
                due_at,
                i32::try_from(offset).unwrap_or(i32::MAX),
            );
            if self
                .announce_once(
                    reminder,
                    "annual_report.reminder",
                    "annual_report",
                    None,
                    "annual_report.due",
                    data,
                )
                .await?
            {
                sent += 1;
            }
        }
        Ok(sent)
    }
}
