//! Incidents reported on a system. An open incident of a blocking severity (from the pack)
//! closes the gate for the system until it is resolved.

use crate::auth::Principal;
use crate::{App, AppError, AppResult, event};
use changegate_api as wire;
use changegate_domain::change::check_text;
use changegate_domain::{Role, Severity};
use changegate_store::entity::{incident, system, user};
use changegate_store::sea_orm::{ActiveModelTrait, ActiveValue::Set, ConnectionTrait, EntityTrait};
use tracing::instrument;

/// Incident kinds.
pub const KINDS: [&str; 5] = [
    "malware",
    "vulnerability",
    "abnormal_access",
    "data_breach",
    "other",
];

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
        let reporter = user::Entity::find_by_id(i.reported_by)
            .one(db)
            .await?
            .map(|u| u.username)
            .unwrap_or_default();
        Ok(wire::Incident {
            id: i.id,
            system: system_code.to_owned(),
            kind: i.kind.clone(),
            severity: i.severity.clone(),
            summary: i.summary.clone(),
            status: i.status.clone(),
            reported_by: reporter,
            reported_at: i.reported_at,
            resolved_at: i.resolved_at,
            a05_deadline: (i.kind == "data_breach").then(|| {
                i.reported_at
                    + chrono::Duration::hours(i64::from(self.pack.incidents.breach_notify_hours))
            }),
            a05_notified_at: i.a05_notified_at,
        })
    }

    /// Reports an incident (owners of the system's organisation, reviewers, auditors).
    #[instrument(skip_all, fields(system = %code), err)]
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
        if !KINDS.contains(&n.kind.as_str()) {
            errors.push((
                "kind".to_owned(),
                format!("{:?} is not one of {}", n.kind, KINDS.join(", ")),
            ));
        }
        if let Err(e) = Severity::parse(&n.severity) {
            errors.push(("severity".to_owned(), e.to_string()));
        }
        if let Err(e) = check_text("summary", &n.summary, 4000, true) {
            errors.push(("summary".to_owned(), e.to_string()));
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let tx = self.begin().await?;
        let i = incident::ActiveModel {
            system_id: Set(sys.id),
            kind: Set(n.kind),
            severity: Set(n.severity),
            summary: Set(n.summary),
            status: Set("open".into()),
            reported_by: Set(who.user_id),
            reported_at: Set(tx.at()),
            resolved_by: Set(None),
            resolved_at: Set(None),
            ..Default::default()
        }
        .insert(&tx.txn)
        .await?;
        let view = self.incident_view_on(&tx.txn, &i, &sys.code).await?;
        let blocking = Severity::parse(&i.severity)
            .is_ok_and(|s| self.pack.incidents.blocking_severities.contains(&s));
        let breach_deadline = (i.kind == "data_breach").then(|| {
            i.reported_at
                + chrono::Duration::hours(i64::from(self.pack.incidents.breach_notify_hours))
        });
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
    #[instrument(skip_all, fields(id), err)]
    pub async fn resolve_incident(&self, who: &Principal, id: i64) -> AppResult<wire::Incident> {
        // Lifting the block is PA05's call, not the registry administrator's.
        who.require(&[Role::Reviewer], "resolving an incident")?;
        let tx = self.begin().await?;
        let i = incident::Entity::find_by_id(id)
            .one(&tx.txn)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("incident {id}")))?;
        let sys = system::Entity::find_by_id(i.system_id)
            .one(&tx.txn)
            .await?
            .ok_or_else(|| AppError::Internal("incident without system".into()))?;
        if i.status != "open" {
            return Err(AppError::Conflict(
                "illegal_transition",
                format!("incident {id} is already {}", i.status),
            ));
        }
        let mut am: incident::ActiveModel = i.into();
        am.status = Set("resolved".into());
        am.resolved_by = Set(Some(who.user_id));
        am.resolved_at = Set(Some(tx.at()));
        let i = am.update(&tx.txn).await?;
        tx.audit(event(
            Some(who),
            "incident.resolve",
            "incident",
            id,
            Some(sys.id),
            Some(serde_json::json!({"status": "open"})),
            Some(serde_json::json!({"status": "resolved"})),
        ))
        .await?;
        tx.commit().await?;
        self.incident_view(&i, &sys.code).await
    }
}
