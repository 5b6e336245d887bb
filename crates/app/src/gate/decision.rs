//! Deciding: the gate's query parsed, [`App::decide`] over the index, and the signed answer
//! pipelines receive ([`App::gate_decision`]).

use super::index::poisoned;
use super::signer::Answer;
use crate::identity::tokens::Principal;
use crate::{App, AppError, AppResult};
use changegate_api as wire;
use changegate_api::attestation::{
    DecisionPredicate, PREDICATE_TYPE, ResourceDescriptor, STATEMENT_TYPE, Statement,
};
use changegate_domain::gate::{Decision, GateQuery, decide};
use changegate_domain::{ArtifactDigest, Code, CommitId, EnvName, TreeId};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::Arc;

/// Parses the gate's query, naming the bad parameter.
pub fn parse_query(p: &wire::GateParams) -> AppResult<(Code, GateQuery)> {
    let mut errors = vec![];
    let code = Code::parse(&p.system)
        .map_err(|e| errors.push(("system".to_owned(), e.to_string())))
        .ok();
    let env = EnvName::parse(&p.env)
        .map_err(|e| errors.push(("env".to_owned(), e.to_string())))
        .ok();
    let commit = p
        .commit
        .as_deref()
        .map(CommitId::parse)
        .transpose()
        .map_err(|e| errors.push(("commit".to_owned(), e.to_string())))
        .ok()
        .flatten();
    let tree = p
        .tree
        .as_deref()
        .map(TreeId::parse)
        .transpose()
        .map_err(|e| errors.push(("tree".to_owned(), e.to_string())))
        .ok()
        .flatten();
    let artifact = p
        .artifact
        .as_deref()
        .map(ArtifactDigest::parse)
        .transpose()
        .map_err(|e| errors.push(("artifact".to_owned(), e.to_string())))
        .ok()
        .flatten();
    if let Some(n) = &p.nonce
        && !nonce_ok(n)
    {
        errors.push((
            "nonce".to_owned(),
            "16 to 128 characters, letters, digits, - and _ only".to_owned(),
        ));
    }
    if errors.is_empty() && commit.is_none() && tree.is_none() && artifact.is_none() {
        errors.push((
            "commit".to_owned(),
            "give the content to judge: commit (with tree), tree, or artifact".to_owned(),
        ));
    }
    match (code, env, errors.is_empty()) {
        (Some(code), Some(env), true) => Ok((
            code,
            GateQuery {
                env,
                commit,
                tree,
                artifact,
            },
        )),
        _ => Err(AppError::Invalid(errors)),
    }
}

/// A nonce the server repeats in what it signs: long enough to be fresh, short and plain
/// enough to be harmless.
fn nonce_ok(n: &str) -> bool {
    (16..=128).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl App {
    /// Asks the gate. Any failure to gather the facts is an error, which the edge turns into a
    /// denial (fail closed).
    /// Decides for `who`: an owner's or pipeline's token learns nothing about another
    /// organisation's systems (they answer as unknown).
    pub async fn decide(
        &self,
        who: &crate::Principal,
        p: &wire::GateParams,
    ) -> AppResult<(Decision, DateTime<Utc>)> {
        let (code, q) = parse_query(p)?;
        if !self.gate.is_fresh() {
            return Err(AppError::Unavailable(
                "the gate's view of the database is stale".into(),
            ));
        }
        let now = Utc::now();
        // A system not yet in the index is answered from the database (its facts, and every
        // change covering the content) while its index loads in the background: the first
        // answer does not wait for the load.
        let entry = match self.gate.cached(code.as_str())? {
            Some(slot) => slot,
            None => {
                let light =
                    super::load::load_system(&self.db, &self.pack, self.tz, code.as_str(), false)
                        .await?;
                if light.is_some() {
                    self.gate.spawn_load(
                        self.db.clone(),
                        self.pack.clone(),
                        self.tz,
                        code.as_str(),
                    );
                }
                light
            }
        };
        let entry = entry.filter(|e| crate::registry::may_see_org(who, e.owner_org));
        let decision = match entry {
            None => decide(&q, code.as_str(), None, &[], now),
            Some(e) => {
                // Content that no live change decides: its old changes from the database (or
                // the cache of such answers), read without holding the index.
                let (missing, generation) = {
                    let inner = e.inner.read().map_err(|_| poisoned())?;
                    (inner.missing_old(&q, now), inner.old_gen)
                };
                let fetched = if missing.is_empty() {
                    HashMap::new()
                } else {
                    let fetched = self.gate.lookup_old(&self.db, e.id, &missing).await?;
                    e.inner
                        .write()
                        .map_err(|_| poisoned())?
                        .keep_old(generation, &fetched);
                    fetched
                };
                let inner = e.inner.read().map_err(|_| poisoned())?;
                decide(
                    &q,
                    code.as_str(),
                    Some(&inner.facts),
                    &inner.candidates_with(&q, &fetched),
                    now,
                )
            }
        };
        Ok((decision, now))
    }
}

/// What identifies a signed answer without a nonce: the question and the whole decision. Every
/// field but the reasons' messages is validated text (codes, hex ids, digests), so tagging each
/// optional field keeps two different answers apart; built by hand, as this runs per request.
fn answer_key(p: &wire::GateParams, d: &Decision) -> String {
    use std::fmt::Write;
    let mut key = String::with_capacity(256);
    for part in [Some(p.system.as_str()), Some(p.env.as_str())]
        .into_iter()
        .chain([&p.commit, &p.tree, &p.artifact].map(Option::as_deref))
        .chain([Some(d.verdict().as_str())])
    {
        match part {
            Some(v) => {
                key.push('+');
                key.push_str(v);
            }
            None => key.push('-'),
        }
        key.push('\0');
    }
    // Writing to a String cannot fail.
    let _ = write!(
        key,
        "{:?}\0{:?}",
        d.change_request,
        d.valid_until.map(|t| t.timestamp_micros())
    );
    for r in &d.reasons {
        key.push('\0');
        key.push_str(r.code.as_str());
        key.push(':');
        key.push_str(&r.message);
    }
    key
}

pub(crate) fn reasons(d: &Decision) -> Vec<wire::GateReason> {
    d.reasons
        .iter()
        .map(|r| wire::GateReason {
            code: r.code.as_str().into(),
            message: r.message.clone(),
        })
        .collect()
}

impl App {
    /// Asks the gate and signs the answer.
    pub async fn gate_decision(
        &self,
        who: &Principal,
        p: &wire::GateParams,
    ) -> AppResult<Arc<Answer>> {
        let (d, now) = self.decide(who, p).await?;
        let decision = d.verdict().as_str();
        // An asker's nonce makes each request its own statement: signed for it alone, never
        // reused. Without one (the original contract), the same answer is reused for a second.
        let key = match p.nonce {
            Some(_) => None,
            None => {
                let key = answer_key(p, &d);
                if let Some(a) = self.signer.reused(&key) {
                    return Ok(a);
                }
                Some(key)
            }
        };
        let reasons = reasons(&d);
        let envelope = self.signer.sign(&Statement {
            type_: STATEMENT_TYPE.into(),
            subject: vec![ResourceDescriptor {
                name: format!("{}/{}", p.system, p.env),
                digest: changegate_api::attestation::question_digests(p),
            }],
            predicate_type: PREDICATE_TYPE.into(),
            predicate: DecisionPredicate {
                system: p.system.clone(),
                environment: p.env.clone(),
                decision: decision.into(),
                reasons: reasons.clone(),
                change_request: d.change_request,
                issued_at: now,
                nonce: p.nonce.clone(),
                valid_until: d.valid_until.unwrap_or(now),
                keyid: self.signer.keyid.clone(),
                pack: Some(self.pack_ref()),
            },
        });
        let answer = Arc::new(Answer::new(wire::GateDecision {
            decision: decision.into(),
            reasons,
            change_request: d.change_request,
            valid_until: d.valid_until,
            system: p.system.clone(),
            environment: p.env.clone(),
            decided_at: now,
            attestation: Some(envelope),
        }));
        if let Some(key) = key {
            self.signer.keep(key, answer.clone());
        }
        Ok(answer)
    }
}
