//! Incidents reported on a system. An open incident of a blocking severity (from the pack)
//! closes the gate for the system until it is resolved.

use crate::identity::tokens::Principal;
use crate::{App, AppError, AppResult, event};
use changegate_api as wire;
use changegate_domain::change::check_text;
use changegate_domain::gate::IncidentStatus;
use changegate_domain::incident::{
    BreachRecord, Facts, IncidentKind, NoticeKind, check_breach, check_detected, deadlines,
};
use changegate_domain::{Role, Severity};
use changegate_store::entity::{incident, system};
use changegate_store::incidents::{self as store, NewIncident, NewNotice};
use changegate_store::sea_orm::ConnectionTrait;
use tracing::instrument;

/// The names of the incident kinds a person reports (the web forms list them).
pub const KINDS: [&str; 5] = IncidentKind::REPORTED_NAMES;

/// The printable notice of a personal-data breach.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BreachNotice {
    /// The incident, with its breach record and deadlines.
    pub incident: wire::Incident,
    /// Its system's name.
    pub system_name: String,
    /// The system owner's name.
    pub owner_org_name: String,
}

/// The breach fields of an incident, as stored.
fn breach_view(i: &incident::Model) -> wire::BreachRecord {
    wire::BreachRecord {
        description: i.breach_description.clone(),
        data_categories: i.breach_data_categories.clone(),
        subjects: i.breach_subjects,
        consequences: i.breach_consequences.clone(),
        measures: i.breach_measures.clone(),
        confirmation_ref: i.breach_confirmation_ref.clone(),
    }
}

impl App {
    /// The wire view of an incident.
    pub async fn incident_view(
        &self,
        i: &incident::Model,
        system_code: &str,
    ) -> AppResult<wire::Incident> {
        self.incident_view_on(&self.db, i, system_code).await
    }

    /// [`App::incident_view`] read on `db`: inside a write transaction, its own connection (a
    /// second one from the pool could wait on writers that wait for this transaction).
    async fn incident_view_on(
        &self,
        db: &impl ConnectionTrait,
        i: &incident::Model,
        system_code: &str,
    ) -> AppResult<wire::Incident> {
        let reporter = changegate_store::identity::user_by_id(db, i.reported_by)
            .await?
            .map(|u| u.username)
            .unwrap_or_default();
        let notices = store::notices(db, i.id).await?;
        let recorders =
            changegate_store::identity::usernames_of(db, notices.iter().map(|n| n.recorded_by))
                .await?;
        let now = crate::now();
        let deadlines = deadlines(&self.clock_facts(i), &self.pack)
            .into_iter()
            .map(|d| {
                let sent_at = notices
                    .iter()
                    .find(|n| *n.kind == d.kind)
                    .map(|n| n.sent_at)
                    .or(if d.kind == NoticeKind::A05 {
                        i.a05_notified_at
                    } else {
                        None
                    });
                wire::IncidentDeadline {
                    kind: d.kind.as_str().to_owned(),
                    due: d.due,
                    sent_at,
                    overdue: sent_at.is_none() && d.due <= now,
                }
            })
            .collect::<Vec<_>>();
        let a05_deadline = deadlines
            .iter()
            .find(|d| d.kind == NoticeKind::A05.as_str())
            .map(|d| d.due);
        Ok(wire::Incident {
            id: i.id,
            system: system_code.to_owned(),
            kind: i.kind.as_str().to_owned(),
            severity: i.severity.as_str().to_owned(),
            summary: i.summary.clone(),
            status: i.status.as_str().to_owned(),
            reported_by: reporter,
            reported_at: i.reported_at,
            resolved_at: i.resolved_at,
            a05_deadline,
            a05_notified_at: i.a05_notified_at,
            detected_at: i.detected_at,
            national_security: i.national_security,
            deadlines,
            notices: notices
                .into_iter()
                .map(|n| wire::IncidentNotice {
                    kind: n.kind.as_str().to_owned(),
                    sent_at: n.sent_at,
                    recipient: n.recipient,
                    channel: n.channel,
                    document_number: n.document_number,
                    recorded_by: recorders.get(&n.recorded_by).cloned().unwrap_or_default(),
                })
                .collect(),
            breach: i.kind.is_breach().then(|| breach_view(i)),
        })
    }

    /// What the clocks need to know about an incident.
    pub(crate) fn clock_facts(&self, i: &incident::Model) -> Facts {
        Facts {
            detected_at: i.detected_at.unwrap_or(i.reported_at),
            reported_at: i.reported_at,
            severity: *i.severity,
            national_security: i.national_security,
            breach: i.kind.is_breach(),
        }
    }

    /// Records a notice sent about an incident (PA05 reviewers, owners of the system's
    /// organisation): when, to whom, how, its document number. A notice sent once (all but the
    /// interim reports) cannot be recorded twice.
    #[instrument(skip_all, fields(id), err(level = "info"))]
    pub async fn record_incident_notice(
        &self,
        who: &Principal,
        id: i64,
        n: wire::NewIncidentNotice,
    ) -> AppResult<wire::Incident> {
        who.require(
            &[Role::Owner, Role::Reviewer],
            "recording an incident notice",
        )?;
        let tx = self.begin().await?;
        let (i, sys) = visible_incident(&tx.txn, who, id).await?;
        let mut errors = vec![];
        let kind = NoticeKind::parse(&n.kind)
            .map_err(|e| errors.push(("kind".to_owned(), e.to_string())))
            .ok();
        let sent_at = n.sent_at.unwrap_or_else(|| tx.at());
        let detected = i.detected_at.unwrap_or(i.reported_at);
        if sent_at > tx.at() + chrono::Duration::minutes(5) {
            errors.push(("sent_at".into(), "is in the future".into()));
        } else if sent_at < detected {
            errors.push((
                "sent_at".into(),
                format!(
                    "is before the incident was detected ({})",
                    detected.to_rfc3339()
                ),
            ));
        }
        for (f, v, max, req) in [
            ("recipient", n.recipient.as_str(), 300, true),
            ("channel", n.channel.as_str(), 100, true),
            (
                "document_number",
                n.document_number.as_deref().unwrap_or(""),
                100,
                false,
            ),
        ] {
            if let Err(e) = check_text(f, v, max, req) {
                errors.push((f.to_owned(), e.to_string()));
            }
        }
        let Some(kind) = kind.filter(|_| errors.is_empty()) else {
            return Err(AppError::Invalid(errors));
        };
        if kind.once() && store::notice_recorded(&tx.txn, id, kind).await? {
            return Err(AppError::Conflict(
                wire::ProblemCode::IllegalTransition,
                format!("the {kind} notice of incident {id} is already recorded"),
            ));
        }
        store::insert_notice(
            &tx.txn,
            NewNotice {
                incident_id: id,
                kind,
                sent_at,
                recipient: n.recipient.clone(),
                channel: n.channel.clone(),
                document_number: n.document_number.clone().filter(|d| !d.is_empty()),
                recorded_by: who.user_id,
                recorded_at: tx.at(),
            },
        )
        .await?;
        // The A05 notice of a breach also stops the breach clock.
        if kind == NoticeKind::A05 && i.a05_notified_at.is_none() {
            store::record_a05_notified(&tx.txn, i.clone(), sent_at).await?;
        }
        tx.audit(event(
            Some(who),
            "incident.notice",
            "incident",
            id,
            Some(sys.id),
            None,
            Some(
                serde_json::json!({ "kind": kind, "sent_at": sent_at, "recipient": n.recipient,
                "channel": n.channel, "document_number": n.document_number }),
            ),
        ))
        .await?;
        let i = store::incident(&tx.txn, id)
            .await?
            .ok_or_else(|| AppError::Internal("incident lost".into()))?;
        let view = self.incident_view_on(&tx.txn, &i, &sys.code).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Records the fields of a personal-data breach's notice to A05 (Decree 356/2025) and its
    /// confirmation record's reference (owners of the system's organisation, PA05 reviewers).
    /// The record replaces the one before, exactly as given.
    #[instrument(skip_all, fields(id), err(level = "info"))]
    pub async fn record_breach(
        &self,
        who: &Principal,
        id: i64,
        b: wire::BreachRecord,
    ) -> AppResult<wire::Incident> {
        who.require(
            &[Role::Owner, Role::Reviewer],
            "recording a personal-data breach",
        )?;
        let domain = BreachRecord {
            description: b.description.clone(),
            data_categories: b.data_categories.clone(),
            subjects: b.subjects,
            consequences: b.consequences.clone(),
            measures: b.measures.clone(),
            confirmation_ref: b.confirmation_ref.clone(),
        };
        let errors = check_breach(&domain);
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let tx = self.begin().await?;
        let (i, sys) = visible_incident(&tx.txn, who, id).await?;
        if !i.kind.is_breach() {
            return Err(AppError::Conflict(
                wire::ProblemCode::IllegalTransition,
                format!("incident {id} is not a personal-data breach"),
            ));
        }
        let before = breach_view(&i);
        let i = store::record_breach(&tx.txn, i, &domain).await?;
        tx.audit(event(
            Some(who),
            "incident.breach",
            "incident",
            id,
            Some(sys.id),
            Some(serde_json::json!(before)),
            Some(serde_json::json!(b)),
        ))
        .await?;
        let view = self.incident_view_on(&tx.txn, &i, &sys.code).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// What the printable notice of a personal-data breach to A05 shows (Decree 356/2025, Form
    /// 08): the incident with its breach record, its system and the system's owner.
    pub async fn breach_notice(&self, who: &Principal, id: i64) -> AppResult<BreachNotice> {
        let (i, sys) = visible_incident(&self.db, who, id).await?;
        let owner = store::org_name(&self.db, sys.owner_org_id)
            .await?
            .unwrap_or_default();
        Ok(BreachNotice {
            incident: self.incident_view(&i, &sys.code).await?,
            system_name: sys.name,
            owner_org_name: owner,
        })
    }

    /// Reports an incident (owners of the system's organisation, reviewers, auditors).
    #[instrument(skip_all, fields(system = ?code), err(level = "info"))]
    pub async fn report_incident(
        &self,
        who: &Principal,
        code: &str,
        n: wire::NewIncident,
    ) -> AppResult<wire::Incident> {
        who.require(
            &[Role::Owner, Role::Reviewer, Role::Auditor],
            "reporting an incident",
        )?;
        let sys = self.visible_system(who, code).await?;
        let mut errors = vec![];
        let kind = IncidentKind::parse_reported(&n.kind)
            .map_err(|e| errors.push(("kind".to_owned(), e.to_string())));
        let severity = Severity::parse(&n.severity)
            .map_err(|e| errors.push(("severity".to_owned(), e.to_string())));
        if let Err(e) = check_text("summary", &n.summary, 4000, true) {
            errors.push(("summary".to_owned(), e.to_string()));
        }
        let now = crate::now();
        if let Some(d) = n.detected_at
            && let Err(m) = check_detected(d, now)
        {
            errors.push(("detected_at".to_owned(), m));
        }
        let (Ok(kind), Ok(severity)) = (kind, severity) else {
            return Err(AppError::Invalid(errors));
        };
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let tx = self.begin().await?;
        let i = store::insert(
            &tx.txn,
            NewIncident {
                system_id: sys.id,
                kind,
                severity,
                summary: n.summary,
                status: IncidentStatus::Open,
                reported_by: who.user_id,
                reported_at: tx.at(),
                detected_at: Some(n.detected_at.unwrap_or(tx.at()).min(tx.at())),
                national_security: n.national_security,
            },
        )
        .await?;
        let view = self.incident_view_on(&tx.txn, &i, &sys.code).await?;
        let blocking = self
            .pack
            .incidents
            .blocking_severities
            .contains(&i.severity.0);
        let breach_deadline = view.a05_deadline;
        tx.notify("incident.reported", serde_json::json!({
            "id": i.id, "system": sys.code, "system_name": sys.name, "kind": i.kind, "severity": i.severity,
            "summary": i.summary, "actor": who.display_name, "blocking": blocking, "breach_deadline": breach_deadline,
        }))
        .await?;
        tx.audit(event(
            Some(who),
            "incident.report",
            "incident",
            i.id,
            Some(sys.id),
            None,
            Some(serde_json::json!(view)),
        ))
        .await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Resolves an incident (PA05 reviewers, admins).
    pub async fn resolve_incident(&self, who: &Principal, id: i64) -> AppResult<wire::Incident> {
        self.resolve_incident_noted(who, id, None).await
    }

    /// Resolves an incident with the reviewer's note of what was done (kept in the audit
    /// event; at most 2000 characters).
    #[instrument(skip_all, fields(id), err(level = "info"))]
    pub async fn resolve_incident_noted(
        &self,
        who: &Principal,
        id: i64,
        note: Option<&str>,
    ) -> AppResult<wire::Incident> {
        let note = note.map(str::trim).filter(|n| !n.is_empty());
        if note.is_some_and(|n| n.chars().count() > 2000) {
            return Err(AppError::Invalid(vec![(
                "note".into(),
                "the note is longer than 2000 characters".into(),
            )]));
        }
        // Lifting the block is PA05's call, not the registry administrator's.
        who.require(&[Role::Reviewer], "resolving an incident")?;
        let tx = self.begin().await?;
        let i = store::incident(&tx.txn, id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("incident {id}")))?;
        let sys = changegate_store::gate::system_by_id(&tx.txn, i.system_id)
            .await?
            .ok_or_else(|| AppError::Internal("incident without system".into()))?;
        if *i.status != IncidentStatus::Open {
            return Err(AppError::Conflict(
                wire::ProblemCode::IllegalTransition,
                format!("incident {id} is already {}", i.status),
            ));
        }
        let i = store::mark_resolved(&tx.txn, i, who.user_id, tx.at()).await?;
        tx.audit(event(
            Some(who),
            "incident.resolve",
            "incident",
            id,
            Some(sys.id),
            Some(serde_json::json!({"status": IncidentStatus::Open.as_str()})),
            Some(match note {
                Some(n) => {
                    serde_json::json!({"status": IncidentStatus::Resolved.as_str(), "note": n})
                }
                None => serde_json::json!({"status": IncidentStatus::Resolved.as_str()}),
            }),
        ))
        .await?;
        tx.commit().await?;
        self.incident_view(&i, &sys.code).await
    }
}

/// The incident `id` and its system, if `who` may see them: another organisation's incident is
/// answered as one that does not exist.
async fn visible_incident(
    db: &impl ConnectionTrait,
    who: &Principal,
    id: i64,
) -> AppResult<(incident::Model, system::Model)> {
    let hidden = || AppError::NotFound(format!("incident {id}"));
    let i = store::incident(db, id).await?.ok_or_else(hidden)?;
    let sys = changegate_store::gate::system_by_id(db, i.system_id)
        .await?
        .filter(|s| crate::registry::may_see_org(who, s.owner_org_id))
        .ok_or_else(hidden)?;
    Ok((i, sys))
}
