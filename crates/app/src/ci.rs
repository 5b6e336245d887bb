//! Deployment records and freeze windows.

use crate::gate::decision::reasons;
use crate::identity::tokens::Principal;
use crate::registry::{may_see_org, system_by_code};
use crate::{App, AppError, AppResult, event};
use changegate_api as wire;
use changegate_domain::change::check_text;
use changegate_domain::gate::parse_cron;
use changegate_domain::{EnvName, Role};
use changegate_store::entity::{deployment, freeze_window};
use changegate_store::{ci, gate, identity};
use tracing::instrument;

impl App {
    /// Records a deployment (ci or owner). One the gate does not allow is flagged in the audit
    /// log and listed for reviewers.
    #[instrument(skip_all, fields(system = ?n.system), err(level = "info"))]
    pub async fn record_deployment(
        &self,
        who: &Principal,
        n: wire::NewDeployment,
    ) -> AppResult<wire::Deployment> {
        who.require(&[Role::Ci, Role::Owner], "recording a deployment")?;
        let sys = system_by_code(&self.db, &n.system).await.map_err(|_| {
            AppError::invalid("system", format!("no system has the code {:?}", n.system))
        })?;
        if !may_see_org(who, sys.owner_org_id) {
            return Err(AppError::invalid(
                "system",
                format!("no system has the code {:?}", n.system),
            ));
        }
        let params = wire::GateParams {
            system: n.system.clone(),
            env: n.environment.clone(),
            commit: n.commit.clone(),
            tree: n.tree.clone(),
            artifact: n.artifact.clone(),
            wait: None,
            nonce: None,
        };
        let (code, q) = crate::gate::parse_query(&params).map_err(|e| match e {
            AppError::Invalid(errs) => AppError::Invalid(
                errs.into_iter()
                    .map(|(f, m)| (if f == "env" { "environment".into() } else { f }, m))
                    .collect(),
            ),
            other => other,
        })?;
        let now = crate::now();
        let deployed_at = n.deployed_at.unwrap_or(now);
        if deployed_at > now + chrono::Duration::minutes(5) {
            return Err(AppError::invalid("deployed_at", "cannot be in the future"));
        }
        let (d, _) = self.decide(who, &params).await?;
        let tx = self.begin().await?;
        let row = ci::record_deployment(
            &tx.txn,
            ci::NewDeployment {
                system_id: sys.id,
                environment: q.env.to_string(),
                commit_id: q.commit.map(|c| c.to_string()),
                tree_id: q.tree.map(|c| c.to_string()),
                digest: q.artifact.map(|c| c.to_string()),
                decision: d.verdict(),
                reasons: reasons(&d),
                change_request_id: d.change_request,
                flagged: !d.allow,
                recorded_by: who.user_id,
                deployed_at,
                at: tx.at(),
            },
        )
        .await?;
        let view = self.deployment_view(row, code.as_str(), &who.username)?;
        let action = if view.flagged {
            "deployment.unauthorised"
        } else {
            "deployment.record"
        };
        tx.audit(event(
            Some(who),
            action,
            "deployment",
            view.id,
            Some(sys.id),
            None,
            Some(serde_json::json!(view)),
        ))
        .await?;
        tx.commit().await?;
        if view.flagged {
            tracing::warn!(system = %view.system, environment = %view.environment, "deployment without the gate's allow");
        }
        Ok(view)
    }

    fn deployment_view(
        &self,
        d: deployment::Model,
        system: &str,
        recorded_by: &str,
    ) -> AppResult<wire::Deployment> {
        Ok(wire::Deployment {
            id: d.id,
            system: system.to_owned(),
            environment: d.environment,
            commit: d.commit_id,
            tree: d.tree_id,
            artifact: d.digest,
            decision: d.decision.to_string(),
            reasons: d.reasons.0,
            change_request: d.change_request_id,
            flagged: d.flagged,
            recorded_by: recorded_by.to_owned(),
            deployed_at: d.deployed_at,
            recorded_at: d.recorded_at,
        })
    }

    /// Recorded deployments visible to the principal, newest first (at most 500).
    pub async fn list_deployments(
        &self,
        who: &Principal,
        flagged_only: bool,
    ) -> AppResult<Vec<wire::Deployment>> {
        let systems = ci::systems_by_id(&self.db).await?;
        let users = ci::usernames(&self.db).await?;
        ci::latest_deployments(&self.db, flagged_only, 500)
            .await?
            .into_iter()
            .filter(|d| {
                systems
                    .get(&d.system_id)
                    .is_some_and(|s| may_see_org(who, s.owner_org_id))
            })
            .map(|d| {
                let sys = systems
                    .get(&d.system_id)
                    .map(|s| s.code.clone())
                    .unwrap_or_default();
                let by = users.get(&d.recorded_by).cloned().unwrap_or_default();
                self.deployment_view(d, &sys, &by)
            })
            .collect()
    }

    fn freeze_view(w: freeze_window::Model, system: &str) -> wire::FreezeWindow {
        wire::FreezeWindow {
            id: w.id,
            system: system.to_owned(),
            environment: w.environment,
            starts_at: w.starts_at,
            ends_at: w.ends_at,
            cron: w.cron,
            duration_minutes: w.duration_minutes,
            reason: w.reason,
            active: w.active,
        }
    }

    /// Declares a freeze window on a system (owner of its organisation, reviewer, admin).
    #[instrument(skip_all, fields(system = ?code), err(level = "info"))]
    pub async fn create_freeze_window(
        &self,
        who: &Principal,
        code: &str,
        n: wire::NewFreezeWindow,
    ) -> AppResult<wire::FreezeWindow> {
        who.require(
            &[Role::Owner, Role::Reviewer, Role::Admin],
            "declaring a freeze window",
        )?;
        let sys = self.visible_system(who, code).await?;
        let mut errors: Vec<(String, String)> = vec![];
        if let Err(e) = check_text("reason", &n.reason, 1000, true) {
            errors.push(("reason".into(), e.to_string()));
        }
        let envs: Vec<String> = sys.environments.0.clone();
        if let Some(e) = &n.environment {
            match EnvName::parse(e) {
                Ok(e) if envs.contains(&e.to_string()) => {}
                Ok(e) => errors.push((
                    "environment".into(),
                    format!("the system has no environment {:?}", e.as_str()),
                )),
                Err(err) => errors.push(("environment".into(), err.to_string())),
            }
        }
        match (&n.starts_at, &n.ends_at, &n.cron, &n.duration_minutes) {
            (Some(s), Some(e), None, None) if s < e => {}
            (Some(_), Some(_), None, None) => {
                errors.push(("ends_at".into(), "must be after starts_at".into()))
            }
            (None, None, Some(c), Some(m)) => {
                if c.len() > 120 {
                    errors.push(("cron".into(), "at most 120 characters".into()));
                } else if let Err(e) = parse_cron(c) {
                    errors.push(("cron".into(), e.to_string()));
                }
                if !(1..=10_080).contains(m) {
                    errors.push((
                        "duration_minutes".into(),
                        "must be from 1 to 10080 (a week)".into(),
                    ));
                }
            }
            _ => errors.push((
                "starts_at".into(),
                "give either starts_at and ends_at, or cron and duration_minutes".into(),
            )),
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let tx = self.begin().await?;
        let w = ci::create_freeze_window(
            &tx.txn,
            ci::NewFreezeWindow {
                system_id: sys.id,
                environment: n.environment,
                starts_at: n.starts_at,
                ends_at: n.ends_at,
                cron: n.cron,
                duration_minutes: n.duration_minutes,
                reason: n.reason,
                created_by: who.user_id,
                at: tx.at(),
            },
        )
        .await?;
        let view = Self::freeze_view(w, &sys.code);
        tx.audit(event(
            Some(who),
            "freeze_window.create",
            "freeze_window",
            view.id,
            Some(sys.id),
            None,
            Some(serde_json::json!(view)),
        ))
        .await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Removes a freeze window (owner of the system's organisation, reviewer, admin).
    pub async fn remove_freeze_window(
        &self,
        who: &Principal,
        id: i64,
    ) -> AppResult<wire::FreezeWindow> {
        who.require(
            &[Role::Owner, Role::Reviewer, Role::Admin],
            "removing a freeze window",
        )?;
        let tx = self.begin().await?;
        let w = ci::freeze_window_by_id(&tx.txn, id)
            .await?
            .ok_or_else(|| AppError::NotFound(format!("freeze window {id}")))?;
        let sys = gate::system_by_id(&tx.txn, w.system_id)
            .await?
            .ok_or_else(|| AppError::Internal("freeze window without system".into()))?;
        if !may_see_org(who, sys.owner_org_id) {
            return Err(AppError::NotFound(format!("freeze window {id}")));
        }
        // An owner lifts only the freezes its own organisation declared, not PA05's.
        if who.role == Role::Owner {
            let by = identity::user_by_id(&tx.txn, w.created_by).await?;
            if by.is_none_or(|u| u.org_id != who.org_id) {
                return Err(AppError::Forbidden("this freeze window was declared outside your organisation; only its declarer's organisation or PA05 removes it".into()));
            }
        }
        let w = ci::lift_freeze_window(&tx.txn, w).await?;
        let view = Self::freeze_view(w, &sys.code);
        tx.audit(event(
            Some(who),
            "freeze_window.remove",
            "freeze_window",
            id,
            Some(sys.id),
            None,
            Some(serde_json::json!(view)),
        ))
        .await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Freeze windows of a system in force.
    pub async fn list_freeze_windows(
        &self,
        who: &Principal,
        code: &str,
    ) -> AppResult<Vec<wire::FreezeWindow>> {
        let sys = self.visible_system(who, code).await?;
        let rows = ci::freeze_windows_in_force(&self.db, sys.id).await?;
        Ok(rows
            .into_iter()
            .map(|w| Self::freeze_view(w, &sys.code))
            .collect())
    }
}
