//! The server's ed25519 key that signs gate decisions.
//!
//! Generated at first start into a file of mode 0600 (or supplied by configuration); never a
//! built-in key. A file readable by others is refused. Every public key in use is published in
//! the database (`signing_keys`), so `GET /api/v1/keys` on any replica lists the keys of all.

use crate::AppResult;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use changegate_api::attestation::{self, Envelope, PublicKey, Statement};
use chrono::{DateTime, Utc};
use ed25519_dalek::SigningKey;
use std::collections::HashMap;
use std::path::Path;
use std::sync::RwLock;
use std::time::Instant;

/// How long one signed answer is handed out again for the same question and the same decision.
pub const REUSE: std::time::Duration = std::time::Duration::from_secs(1);

/// A signing key and its id.
pub struct Signer {
    key: SigningKey,
    /// Key id.
    pub keyid: String,
    /// Recently signed answers by the full text of question and decision: a pipeline polling in
    /// a loop, or many asking at once, costs one signature a second, not one each.
    recent: RwLock<HashMap<String, Signed>>,
}

/// When it was signed (for reuse), the issue time it carries, the envelope.
type Signed = (Instant, DateTime<Utc>, Envelope);

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

    /// The signed statement for `key` (the full question and decision): the one signed less
    /// than [`REUSE`] ago, or a new one built by `statement` for the issue time `now`. Returns the
    /// issue time it carries.
    pub fn signed(
        &self,
        key: String,
        now: DateTime<Utc>,
        statement: impl FnOnce(DateTime<Utc>) -> Statement,
    ) -> (DateTime<Utc>, Envelope) {
        if let Some((_, at, env)) = self
            .recent
            .read()
            .ok()
            .as_ref()
            .and_then(|m| m.get(&key))
            .filter(|(t, _, _)| t.elapsed() < REUSE)
        {
            return (*at, env.clone());
        }
        let env = self.sign(&statement(now));
        if let Ok(mut m) = self.recent.write() {
            if m.len() >= 4096 {
                m.retain(|_, (t, _, _)| t.elapsed() < REUSE);
                if m.len() >= 4096 {
                    m.clear();
                }
            }
            m.insert(key, (Instant::now(), now, env.clone()));
        }
        (now, env)
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
    fn the_same_decision_within_a_second_reuses_its_signature_and_another_decision_does_not() {
        use changegate_api::attestation::{DecisionPredicate, PREDICATE_TYPE, STATEMENT_TYPE};
        let s = Signer::ephemeral();
        let st = |decision: &str, at: DateTime<Utc>| Statement {
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
        let t0 = Utc::now();
        let (a_at, a) = s.signed("q|allow".into(), t0, |at| st("allow", at));
        let (b_at, b) = s.signed(
            "q|allow".into(),
            t0 + chrono::Duration::milliseconds(5),
            |at| st("allow", at),
        );
        assert_eq!((a_at, &a), (b_at, &b));
        let (_, c) = s.signed("q|deny".into(), t0, |at| st("deny", at));
        assert_ne!(a, c);
        let keys = vec![s.public()];
        assert_eq!(
            changegate_api::attestation::verify(&c, &keys).map(|x| x.predicate.decision),
            Ok("deny".into())
        );
    }

    #[test]
    fn two_ephemeral_keys_differ() {
        assert_ne!(Signer::ephemeral().keyid, Signer::ephemeral().keyid);
    }
}
