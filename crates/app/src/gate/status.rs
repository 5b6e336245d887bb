//! The gate's status per environment of a system, as the pages show it, read from the index
//! (no query of its own, no made-up content).
//!
//! What the status means, for environment E of system S:
//! - **allow**: an approval of S that covers E (an approved change still valid, or an emergency
//!   change inside its window) lets its own content through now: the gate answers allow for
//!   that content, with that change request and until `valid_until`. Among several, the newest
//!   that is let through is shown. Content that no change covers is still refused: allow never
//!   means that anything may be deployed.
//! - **deny** with the reasons the gate gives about the newest covering approval's content, when
//!   no covering approval's content is let through (a suspension, an open incident, a freeze
//!   window, an overdue re-review…);
//! - **deny** with the system-level reasons and `no_approved_change`, when no approval covers E:
//!   what the gate answers about any content.

use super::index::{Inner, Key, poisoned};
use crate::{App, AppError, AppResult, Principal};
use changegate_api as wire;
use changegate_domain::gate::{Decision, GateQuery, ReasonCode, decide};
use changegate_domain::{ArtifactDigest, ChangeKind, CommitId, CrState, EnvName, TreeId};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// Covering approvals asked about per environment (the newest first).
const MAX_ASKED: usize = 20;

/// The gate's status for one environment of a system (see the module's documentation).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EnvGate {
    /// Environment.
    pub env: String,
    /// Whether an approval covering the environment lets its content through now.
    pub allow: bool,
    /// Why not (stable codes and sentences), empty on allow.
    pub reasons: Vec<wire::GateReason>,
    /// The approved change request whose content is let through.
    pub change_request: Option<i64>,
    /// Until when the allow holds.
    pub valid_until: Option<DateTime<Utc>>,
}

impl EnvGate {
    fn of(env: &EnvName, d: Decision) -> Self {
        EnvGate {
            env: env.as_str().to_owned(),
            allow: d.allow,
            reasons: d
                .reasons
                .into_iter()
                .map(|r| wire::GateReason {
                    code: r.code.as_str().into(),
                    message: r.message,
                })
                .collect(),
            change_request: d.change_request,
            valid_until: d.valid_until,
        }
    }

    /// A denial because the gate cannot decide now (fail closed).
    pub fn unavailable(env: &str, e: &AppError) -> Self {
        EnvGate {
            env: env.to_owned(),
            allow: false,
            reasons: vec![wire::GateReason {
                code: wire::ReasonCode::GateUnavailable,
                message: e.to_string(),
            }],
            change_request: None,
            valid_until: None,
        }
    }
}

/// The query that names a change's content: its tree (a commit fixes its tree), else its
/// commit, else its artifact.
fn query_for(env: &EnvName, keys: &[Key]) -> Option<GateQuery> {
    let mut q = GateQuery {
        env: env.clone(),
        commit: None,
        tree: None,
        artifact: None,
    };
    if let Some(Key::Tree(t)) = keys.iter().find(|k| matches!(k, Key::Tree(_))) {
        q.tree = Some(TreeId::parse(&hex::encode(t)).ok()?);
    } else if let Some(Key::Commit(c)) = keys.iter().find(|k| matches!(k, Key::Commit(_))) {
        q.commit = Some(CommitId::parse(&hex::encode(c)).ok()?);
    } else if let Some(Key::Artifact(a)) = keys.iter().find(|k| matches!(k, Key::Artifact(_))) {
        q.artifact = Some(ArtifactDigest::parse(&format!("sha256:{}", hex::encode(a))).ok()?);
    } else {
        return None;
    }
    Some(q)
}

impl Inner {
    /// The status of `env` at `now` (see the module's documentation).
    fn env_status(&self, code: &str, env: &EnvName, now: DateTime<Utc>) -> EnvGate {
        let bit = self
            .env_names
            .iter()
            .position(|e| e == env)
            .map_or(0, |i| 1u64 << i);
        let mut covering: Vec<(i64, &[Key])> = self
            .changes
            .iter()
            .filter(|(_, c)| c.env_mask & bit != 0)
            .filter(|(_, c)| {
                let approved =
                    c.state == CrState::Approved && c.valid_until.is_some_and(|v| v > now);
                let break_glass = c.kind == ChangeKind::Emergency
                    && c.state == CrState::Submitted
                    && c.emergency_until.is_some_and(|v| v > now);
                approved || break_glass
            })
            .map(|(id, c)| (*id, &c.keys[..]))
            .collect();
        covering.sort_by_key(|c| std::cmp::Reverse(c.0));
        let mut first_denial = None;
        for (_, keys) in covering.into_iter().take(MAX_ASKED) {
            let Some(q) = query_for(env, keys) else {
                continue;
            };
            let d = decide(&q, code, Some(&self.facts), &self.candidates(&q), now);
            if d.allow {
                return EnvGate::of(env, d);
            }
            first_denial.get_or_insert(d);
        }
        if let Some(d) = first_denial {
            return EnvGate::of(env, d);
        }
        // No approval covers the environment: the gate's answer about content no change
        // covers, which names no content.
        let q = GateQuery {
            env: env.clone(),
            commit: None,
            tree: None,
            artifact: None,
        };
        let mut d = decide(&q, code, Some(&self.facts), &[], now);
        for r in &mut d.reasons {
            if r.code == ReasonCode::NoApprovedChange {
                r.message = format!(
                    "no approved change request of {code} covers environment {:?}",
                    env.as_str()
                );
            }
        }
        EnvGate::of(env, d)
    }
}

impl App {
    /// The gate's status per environment of system `code` (see the module's documentation),
    /// for `who`: a system they may not see has none. A gate that cannot decide is an error,
    /// which the pages show as a denial.
    pub async fn environment_gates(&self, who: &Principal, code: &str) -> AppResult<Vec<EnvGate>> {
        if !self.gate.is_fresh() {
            return Err(AppError::Unavailable(
                "the gate's view of the database is stale".into(),
            ));
        }
        let now = Utc::now();
        let entry = self
            .gate
            .entry(&self.db, &self.pack, self.tz, code)
            .await?
            .filter(|e| crate::registry::may_see_org(who, e.owner_org));
        let Some(e) = entry else {
            return Ok(vec![]);
        };
        let inner = e.inner.read().map_err(|_| poisoned())?;
        Ok(inner
            .facts
            .environments
            .iter()
            .map(|env| inner.env_status(code, env, now))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use crate::{App, Principal};
    use changegate_api as wire;
    use changegate_domain::PolicyPack;
    use changegate_store::entity::change_request;
    use changegate_store::sea_orm::EntityTrait;

    fn params(system: &str, env: &str, s: &wire::WireSubject) -> wire::GateParams {
        let mut p = wire::GateParams {
            system: system.to_owned(),
            env: env.to_owned(),
            ..Default::default()
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

    fn codes(r: &[wire::GateReason]) -> Vec<&str> {
        r.iter().map(|r| r.code.as_str()).collect()
    }

    #[tokio::test]
    async fn the_status_of_every_demo_environment_is_the_gates_own_answer() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let pack = PolicyPack::parse("built in", crate::DEFAULT_PACK).unwrap();
        let app = App::open(&url, pack).await.unwrap();
        app.seed_demo().await.unwrap();
        let admin = Principal::operator();
        let mut changes = vec![];
        for row in change_request::Entity::find().all(&app.db).await.unwrap() {
            changes.push(app.get_change(&admin, row.id).await.unwrap());
        }
        let systems = app.visible_systems(&admin).await.unwrap();
        let gates = app.system_gates(&admin, &systems).await.unwrap();
        let unapproved = wire::WireSubject::Artifact {
            digest: format!("sha256:{}", "ab".repeat(32)),
        };
        let (mut allows, mut denials) = (0, 0);
        for sys in &systems {
            let envs = &gates[&sys.id];
            assert!(!envs.is_empty(), "{}", sys.code);
            for g in envs {
                // Content no change covers: always refused; without an allowing approval the
                // status gives the same reasons.
                let (other, _) = app
                    .decide(&admin, &params(&sys.code, &g.env, &unapproved))
                    .await
                    .unwrap();
                assert!(!other.allow);
                let other: Vec<&str> = other.reasons.iter().map(|r| r.code.as_str()).collect();
                // The approvals covering this environment, asked one by one.
                let mut allowed_by = vec![];
                // (A re-review or a re-levelling approves the system, not content: no subject.)
                let covering = |c: &&wire::ChangeRequest| {
                    c.system == sys.code
                        && !c.subjects.is_empty()
                        && c.state == "approved"
                        && c.valid_until.is_some_and(|v| v > chrono::Utc::now())
                        && c.environments.contains(&g.env)
                };
                for c in changes.iter().filter(covering) {
                    let answer = app
                        .gate_decision(&admin, &params(&sys.code, &g.env, &c.subjects[0]))
                        .await
                        .unwrap();
                    if answer.allowed() {
                        allowed_by.push((answer.change_request, answer.valid_until));
                    } else if !g.allow {
                        assert_eq!(
                            codes(&answer.reasons),
                            codes(&g.reasons),
                            "{} {}",
                            sys.code,
                            g.env
                        );
                    }
                }
                if g.allow {
                    allows += 1;
                    assert!(g.reasons.is_empty());
                    assert!(
                        allowed_by.contains(&(g.change_request, g.valid_until)),
                        "{} {}: {g:?} vs {allowed_by:?}",
                        sys.code,
                        g.env
                    );
                } else {
                    denials += 1;
                    assert!(
                        allowed_by.is_empty(),
                        "{} {}: {allowed_by:?}",
                        sys.code,
                        g.env
                    );
                    assert_eq!(g.change_request, None);
                    if !changes.iter().any(|c| covering(&c)) {
                        assert_eq!(codes(&g.reasons), other, "{} {}", sys.code, g.env);
                    }
                }
            }
        }
        // The demo has both.
        assert!(allows > 0 && denials > 0, "{allows} {denials}");
    }
}
