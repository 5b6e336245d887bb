//! The server's ed25519 key that signs gate decisions.
//!
//! Generated at first start into a file of mode 0600 (or supplied by configuration); never a
//! built-in key. A file readable by others is refused. Every public key in use is published in
//! the database (`signing_keys`), so `GET /api/v1/keys` on any replica lists the keys of all.

use crate::{AppError, AppResult};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use changegate_api::GateDecision;
use changegate_api::attestation::{self, Envelope, PublicKey, Statement};
use ed25519_dalek::SigningKey;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

/// How long one signed answer is handed out again for the same question and the same decision.
pub const REUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// A signing key and its id.
pub struct Signer {
    key: SigningKey,
    /// Key id.
    pub keyid: String,
    /// Recently signed answers by the full text of question and decision: a pipeline polling in
    /// a loop, or many asking at once, costs one signature (and one JSON text) a second, not one
    /// each.
    recent: RwLock<HashMap<String, (Instant, Arc<Answer>)>>,
}

/// The most answers kept for reuse; beyond it the expired ones are dropped (or all, if none is).
const RECENT_MAX: usize = 4096;

/// A signed gate answer and, once asked for, its JSON text: an answer handed out again is
/// neither cloned nor serialized again.
#[derive(Debug)]
pub struct Answer {
    answer: GateDecision,
    json: OnceLock<Bytes>,
}

impl Answer {
    /// An answer (its attestation already signed).
    pub fn new(decision: GateDecision) -> Self {
        Self {
            answer: decision,
            json: OnceLock::new(),
        }
    }

    /// The answer as the API returns it, as JSON (made on first use).
    pub fn json(&self) -> AppResult<Bytes> {
        if let Some(b) = self.json.get() {
            return Ok(b.clone());
        }
        let b = Bytes::from(
            serde_json::to_vec(&self.answer)
                .map_err(|e| AppError::Internal(format!("gate answer as JSON: {e}")))?,
        );
        Ok(self.json.get_or_init(|| b).clone())
    }
}

impl std::ops::Deref for Answer {
    type Target = GateDecision;
    fn deref(&self) -> &GateDecision {
        &self.answer
    }
}

impl Signer {
    /// A key that lives only in memory (tests, one-off tools).
    pub fn ephemeral() -> Self {
        Self::from_key(SigningKey::from_bytes(&rand::random::<[u8; 32]>()))
    }

    fn from_key(key: SigningKey) -> Self {
        let keyid = attestation::keyid(&key.verifying_key());
        Self {
            key,
            keyid,
            recent: RwLock::new(HashMap::new()),
        }
    }

    /// Loads the key from `path`, creating it (mode 0600) when the file does not exist.
    pub fn load_or_create(path: &Path) -> AppResult<Self> {
        let seed = crate::key_file::read_or_create(path, "signing key")?;
        Ok(Self::from_key(SigningKey::from_bytes(&seed)))
    }

    /// The public key, as published.
    pub fn public(&self) -> PublicKey {
        attestation::public_key(&self.key.verifying_key())
    }

    /// Signs a statement.
    pub fn sign(&self, st: &Statement) -> Envelope {
        attestation::sign(st, &self.key)
    }

    /// Signs raw bytes (an audit checkpoint): base64 of the ed25519 signature.
    pub fn sign_raw(&self, msg: &[u8]) -> String {
        use ed25519_dalek::Signer as _;
        B64.encode(self.key.sign(msg).to_bytes())
    }

    /// Loads the key from `path` if the file exists (commands that only read must not create
    /// one).
    pub fn load_existing(path: &Path) -> AppResult<Option<Self>> {
        if path.exists() {
            Self::load_or_create(path).map(Some)
        } else {
            Ok(None)
        }
    }

    /// The answer kept for `key` (the full question and decision), if it was signed less than
    /// [`REUSE`] ago.
    pub fn reused(&self, key: &str) -> Option<Arc<Answer>> {
        self.recent
            .read()
            .ok()?
            .get(key)
            .filter(|(t, _)| t.elapsed() < REUSE)
            .map(|(_, a)| a.clone())
    }

    /// Keeps `answer` for reuse under `key` for [`REUSE`].
    pub fn keep(&self, key: String, answer: Arc<Answer>) {
        if let Ok(mut m) = self.recent.write() {
            if m.len() >= RECENT_MAX {
                m.retain(|_, (t, _)| t.elapsed() < REUSE);
                if m.len() >= RECENT_MAX {
                    m.clear();
                }
            }
            m.insert(key, (Instant::now(), answer));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_created_with_mode_0600_and_loads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys/signing.key");
        let a = Signer::load_or_create(&path).unwrap();
        let b = Signer::load_or_create(&path).unwrap();
        assert_eq!(a.keyid, b.keyid);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
                0o600
            );
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            let e = Signer::load_or_create(&path)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("chmod 600"), "{e}");
        }
    }

    #[test]
    fn a_kept_answer_is_handed_out_again_under_its_key_only_with_its_json_made_once() {
        use changegate_api::attestation::{DecisionPredicate, PREDICATE_TYPE, STATEMENT_TYPE};
        let s = Signer::ephemeral();
        let answer = |decision: &str| {
            let at = chrono::Utc::now();
            let st = Statement {
                type_: STATEMENT_TYPE.into(),
                subject: vec![],
                predicate_type: PREDICATE_TYPE.into(),
                predicate: DecisionPredicate {
                    system: "S".into(),
                    environment: "production".into(),
                    decision: decision.into(),
                    reasons: vec![],
                    change_request: None,
                    issued_at: at,
                    nonce: None,
                    valid_until: at,
                    keyid: s.keyid.clone(),
                    pack: None,
                },
            };
            Arc::new(Answer::new(GateDecision {
                decision: changegate_api::Decision::parse(decision),
                reasons: vec![],
                change_request: None,
                valid_until: None,
                system: "S".into(),
                environment: "production".into(),
                decided_at: at,
                attestation: Some(s.sign(&st)),
            }))
        };
        let allow = answer("allow");
        s.keep("q|allow".into(), allow.clone());
        let again = s.reused("q|allow").unwrap();
        assert!(Arc::ptr_eq(&allow, &again));
        assert!(s.reused("q|deny").is_none());
        let json = again.json().unwrap();
        assert_eq!(json, allow.json().unwrap());
        let sent: &GateDecision = &allow;
        assert_eq!(
            &serde_json::from_slice::<GateDecision>(&json).unwrap(),
            sent
        );
        let deny = answer("deny");
        s.keep("q|deny".into(), deny.clone());
        let keys = vec![s.public()];
        let env = s.reused("q|deny").unwrap().attestation.clone().unwrap();
        assert_eq!(
            changegate_api::attestation::verify(&env, &keys).map(|x| x.predicate.decision),
            Ok("deny".into())
        );
    }

    #[test]
    fn two_ephemeral_keys_differ() {
        assert_ne!(Signer::ephemeral().keyid, Signer::ephemeral().keyid);
    }
}
