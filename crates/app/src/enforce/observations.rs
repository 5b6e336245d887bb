//! Observed content: what a sensor on a server (`changegate observe`) or a cluster reports
//! running. Content that no valid approval covers for the environment opens one incident of kind
//! `unapproved_content` (high), which closes the gate through the incident rule and is notified
//! through the outbox; the same content observed again does not open another. A source that has
//! reported before and then stays silent for the pack's interval raises a signal.

use crate::auth::Principal;
use crate::registry::{may_see_org, system_by_code};
use crate::{App, AppError, AppResult, event};
use changegate_api as wire;
use changegate_domain::change::check_text;
use changegate_domain::enforce::content_covered;
use changegate_domain::incident::IncidentKind;
use changegate_domain::{ArtifactDigest, CommitId, EnvName, Role, Severity, TreeId};
use changegate_store::{ci, enforce as store, gate, incidents};
use chrono::{DateTime, Duration, Utc};
use tracing::instrument;

/// The most subjects one observation may carry.
pub const MAX_SUBJECTS: usize = 100;

/// A subject, parsed: its key (`git:<commit>:<tree>` or `sha256:<hex>`) and the gate question.
fn parse_subject(i: usize, s: &wire::WireSubject) -> AppResult<(String, wire::WireSubject)> {
    let field = format!("subjects[{i}]");
    match s {
        wire::WireSubject::GitCommit { commit, tree } => {
            let c = CommitId::parse(commit).map_err(|e| AppError::parse(&field, e))?;
            let t = TreeId::parse(tree).map_err(|e| AppError::parse(&field, e))?;
            Ok((
                format!("git:{c}:{t}"),
                wire::WireSubject::GitCommit {
                    commit: c.to_string(),
                    tree: t.to_string(),
                },
            ))
        }
        wire::WireSubject::Artifact { digest } => {
            let d = ArtifactDigest::parse(digest).map_err(|e| AppError::parse(&field, e))?;
            Ok((
                d.to_string(),
                wire::WireSubject::Artifact {
                    digest: d.to_string(),
                },
            ))
        }
    }
}

fn gate_params(system: &str, env: &str, s: &wire::WireSubject) -> wire::GateParams {
    let mut p = wire::GateParams {
        system: system.to_owned(),
        env: env.to_owned(),
        ..wire::GateParams::default()
    };
    match s {
        wire::WireSubject::GitCommit { commit, tree } => {
            p.commit = Some(commit.clone());
            p.tree = Some(tree.clone());
        }
        wire::WireSubject::Artifact { digest } => p.artifact = Some(digest.clone()),
    }
    p
}

fn subject_text(s: &wire::WireSubject) -> String {
    match s {
        wire::WireSubject::GitCommit { commit, tree } => {
            format!("git commit {commit} (tree {tree})")
        }
        wire::WireSubject::Artifact { digest } => digest.clone(),
    }
}

impl App {
    /// Records content observed running (role `ci` or `observer` of the system's organisation).
    #[instrument(skip_all, fields(system = ?n.system), err(level = "info"))]
    pub async fn record_observation(
        &self,
        who: &Principal,
        n: wire::NewObservation,
    ) -> AppResult<wire::Observation> {
        who.require(&[Role::Observer, Role::Ci], "reporting observed content")?;
        let unknown =
            || AppError::invalid("system", format!("no system has the code {:?}", n.system));
        let sys = system_by_code(&self.db, &n.system)
            .await
            .map_err(|_| unknown())?;
        if !may_see_org(who, sys.owner_org_id) {
            return Err(unknown());
        }
        let mut errors = vec![];
        let envs: Vec<String> = sys.environments.0.clone();
        match EnvName::parse(&n.env) {
            Ok(e) if envs.contains(&e.to_string()) => {}
            Ok(e) => errors.push((
                "env".to_owned(),
                format!("system {} has no environment {:?}", sys.code, e.as_str()),
            )),
            Err(e) => errors.push(("env".to_owned(), e.to_string())),
        }
        if let Err(e) = check_text("source", &n.source, 200, true) {
            errors.push(("source".to_owned(), e.to_string()));
        }
        if n.subjects.is_empty() || n.subjects.len() > MAX_SUBJECTS {
            errors.push((
                "subjects".to_owned(),
                format!(
                    "give 1 to {MAX_SUBJECTS} subjects, not {}",
                    n.subjects.len()
                ),
            ));
        }
        let mut subjects = vec![];
        for (i, s) in n.subjects.iter().take(MAX_SUBJECTS).enumerate() {
            match parse_subject(i, s) {
                Ok(x) if subjects.iter().any(|(k, _)| *k == x.0) => {}
                Ok(x) => subjects.push(x),
                Err(AppError::Invalid(e)) => errors.extend(e),
                Err(e) => return Err(e),
            }
        }
        let now = crate::now();
        let observed_at = n.observed_at.unwrap_or(now);
        if observed_at > now + Duration::minutes(5) {
            errors.push((
                "observed_at".to_owned(),
                "cannot be in the future".to_owned(),
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let env = n.env.to_ascii_lowercase();
        // The gate's verdict on each subject (the in-memory index), before the write.
        let mut verdicts = vec![];
        for (key, s) in subjects {
            let (d, _) = self.decide(who, &gate_params(&sys.code, &env, &s)).await?;
            let covered = content_covered(&d);
            verdicts.push((
                key,
                wire::ObservedSubject {
                    subject: s,
                    covered,
                    change_request: d.change_request,
                    reasons: if covered {
                        vec![]
                    } else {
                        d.reasons
                            .iter()
                            .map(|r| wire::GateReason {
                                code: r.code.as_str().into(),
                                message: r.message.clone(),
                            })
                            .collect()
                    },
                },
            ));
        }
        let unapproved = verdicts.iter().any(|(_, v)| !v.covered);
        let tx = self.begin().await?;
        // Content already reported on this system and environment names its incident; only
        // content not seen before opens one.
        let mut incident_id = None;
        let mut fresh = vec![];
        for (key, v) in verdicts.iter().filter(|(_, v)| !v.covered) {
            let known = store::unapproved_content_incident(&tx.txn, sys.id, &env, key).await?;
            match known {
                Some(k) => {
                    incident_id.get_or_insert(k);
                }
                None => fresh.push((key.clone(), v)),
            }
        }
        let mut opened = false;
        if !fresh.is_empty() {
            let names: Vec<String> = fresh
                .iter()
                .map(|(_, v)| subject_text(&v.subject))
                .collect();
            let reasons: Vec<&str> = fresh
                .iter()
                .flat_map(|(_, v)| v.reasons.iter().map(|r| r.code.as_str()))
                .collect();
            let summary = changegate_domain::enforce::cut(
                &format!(
                    "Nội dung đang chạy chưa được phê duyệt / content running without a valid approval on {}/{env} (source {}): {} [{}]",
                    sys.code,
                    n.source.trim(),
                    names.join(", "),
                    reasons.join(", ")
                ),
                4000,
            );
            let i = incidents::insert(
                &tx.txn,
                incidents::NewIncident {
                    system_id: sys.id,
                    kind: IncidentKind::UnapprovedContent,
                    severity: Severity::High,
                    summary,
                    status: changegate_domain::gate::IncidentStatus::Open,
                    reported_by: who.user_id,
                    reported_at: tx.at(),
                    detected_at: None,
                    national_security: false,
                },
            )
            .await?;
            for (key, _) in &fresh {
                store::record_unapproved_content(
                    &tx.txn,
                    store::NewUnapprovedContent {
                        system_id: sys.id,
                        environment: env.clone(),
                        subject: key.clone(),
                        incident_id: i.id,
                        first_observed_at: observed_at,
                    },
                )
                .await?;
            }
            let blocking = self
                .pack
                .incidents
                .blocking_severities
                .contains(&Severity::High);
            tx.notify("incident.reported", serde_json::json!({
                "id": i.id, "system": sys.code, "system_name": sys.name, "kind": i.kind, "severity": i.severity,
                "summary": i.summary, "actor": who.display_name, "blocking": blocking, "breach_deadline": null,
            }))
            .await?;
            tx.audit(event(
                Some(who),
                "incident.report",
                "incident",
                i.id,
                Some(sys.id),
                None,
                Some(serde_json::json!({
                    "id": i.id, "system": sys.code, "kind": i.kind, "severity": i.severity,
                    "summary": i.summary, "environment": env, "source": n.source,
                })),
            ))
            .await?;
            incident_id = Some(i.id);
            opened = true;
        }
        let subjects_view: Vec<wire::ObservedSubject> =
            verdicts.into_iter().map(|(_, v)| v).collect();
        let row = store::record_observation(
            &tx.txn,
            store::NewObservation {
                system_id: sys.id,
                environment: env.clone(),
                source: n.source.trim().to_owned(),
                subjects: subjects_view.clone(),
                unapproved,
                incident_id,
                observed_at,
                recorded_by: who.user_id,
                at: tx.at(),
            },
        )
        .await?;
        self.source_seen(&tx, sys.id, &env, n.source.trim(), observed_at, who.user_id)
            .await?;
        let view = wire::Observation {
            id: row.id,
            system: sys.code.clone(),
            env,
            source: row.source,
            subjects: subjects_view,
            unapproved,
            incident: incident_id,
            incident_opened: opened,
            observed_at,
            recorded_at: row.recorded_at,
        };
        tx.audit(event(
            Some(who),
            if unapproved {
                "observation.unapproved"
            } else {
                "observation.record"
            },
            "observation",
            view.id,
            Some(sys.id),
            None,
            Some(serde_json::json!(view)),
        ))
        .await?;
        tx.commit().await?;
        if opened {
            tracing::warn!(system = %view.system, environment = %view.env, incident = ?incident_id, "unapproved content observed running");
        }
        Ok(view)
    }

    async fn source_seen(
        &self,
        tx: &crate::WriteTx<'_>,
        system_id: i64,
        env: &str,
        source: &str,
        at: DateTime<Utc>,
        by: i64,
    ) -> AppResult<()> {
        let existing = store::observation_source(&tx.txn, system_id, env, source).await?;
        match existing {
            Some(s) => {
                let last = s.last_observed_at.max(at);
                store::source_reported(&tx.txn, s, last, by).await?;
            }
            None => {
                store::add_source(
                    &tx.txn,
                    store::NewSource {
                        system_id,
                        environment: env.to_owned(),
                        source: source.to_owned(),
                        last_observed_at: at,
                        last_recorded_by: by,
                    },
                )
                .await?;
            }
        }
        Ok(())
    }

    /// The sources of observations visible to the principal, silent ones first.
    pub async fn observation_sources(
        &self,
        who: &Principal,
    ) -> AppResult<Vec<wire::ObservationSource>> {
        let mut systems = ci::systems_by_id(&self.db).await?;
        systems.retain(|_, s| may_see_org(who, s.owner_org_id));
        let mut out: Vec<wire::ObservationSource> = store::observation_sources(&self.db)
            .await?
            .into_iter()
            .filter_map(|s| {
                Some(wire::ObservationSource {
                    system: systems.get(&s.system_id)?.code.clone(),
                    env: s.environment,
                    source: s.source,
                    last_observed_at: s.last_observed_at,
                    silent_since: s.silent_since,
                })
            })
            .collect();
        out.sort_by_key(|s| s.silent_since.is_none());
        Ok(out)
    }

    /// Signals every source that has been silent longer than the pack's interval at `now` (once
    /// per silence): an audit event `observation.source_silent` per source. Returns how many.
    pub async fn signal_silent_sources(&self, now: DateTime<Utc>) -> AppResult<usize> {
        let limit =
            now - Duration::minutes(i64::from(self.pack.observations.source_silence_minutes));
        let silent = store::sources_quiet_since(&self.db, limit).await?;
        if silent.is_empty() {
            return Ok(0);
        }
        let tx = self.begin().await?;
        let mut n = 0;
        for s in silent {
            // Read again inside the transaction: another replica may have signalled it, or the
            // source reported in the meantime.
            let Some(s) = store::observation_source_by_id(&tx.txn, s.id).await? else {
                continue;
            };
            if s.silent_since.is_some() || s.last_observed_at >= limit {
                continue;
            }
            let code = gate::system_by_id(&tx.txn, s.system_id)
                .await?
                .map(|x| x.code)
                .unwrap_or_default();
            let detail = serde_json::json!({
                "system": code, "environment": s.environment, "source": s.source,
                "last_observed_at": s.last_observed_at,
                "silence_minutes": self.pack.observations.source_silence_minutes,
            });
            let id = s.id;
            store::mark_source_silent(&tx.txn, s, now).await?;
            tx.audit(event(
                None,
                "observation.source_silent",
                "observation_source",
                id,
                None,
                None,
                Some(detail),
            ))
            .await?;
            n += 1;
        }
        tx.commit().await?;
        if n > 0 {
            tracing::warn!(
                sources = n,
                "observation sources silent beyond the pack's interval"
            );
        }
        Ok(n)
    }

    /// Signals silent sources every minute until the app is dropped.
    pub fn spawn_silence_watch(self: &std::sync::Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = std::sync::Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(app) = weak.upgrade() else { break };
                if let Err(e) = app.signal_silent_sources(crate::now()).await {
                    tracing::warn!(error = %e, "could not check observation sources for silence");
                }
            }
        })
    }
}
