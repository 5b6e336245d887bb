//! Signed gate decisions: a DSSE envelope (payload type `application/vnd.in-toto+json`) around
//! an in-toto Statement v1 whose predicate is the decision. Anyone holding the server's public
//! key (`GET /api/v1/keys`) can verify a decision later without trusting the server's word.

use crate::GateReason;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// DSSE payload type of an in-toto statement.
pub const PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";
/// in-toto Statement v1.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate type of a gate decision.
pub const PREDICATE_TYPE: &str = "urn:changegate:gate-decision:v1";

/// A DSSE envelope.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Envelope {
    /// Base64 of the statement's JSON.
    pub payload: String,
    /// `application/vnd.in-toto+json`.
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// Signatures over the pre-authentication encoding.
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature of an envelope.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct EnvelopeSignature {
    /// Which key.
    pub keyid: String,
    /// Base64 of the ed25519 signature.
    pub sig: String,
}

/// An in-toto Statement v1 about a gate decision.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Statement {
    /// `https://in-toto.io/Statement/v1`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// What was judged: `<system>/<environment>` with the content's digests
    /// (`gitCommit`, `gitTree`, `sha256`).
    pub subject: Vec<ResourceDescriptor>,
    /// `urn:changegate:gate-decision:v1`.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// The decision.
    pub predicate: DecisionPredicate,
}

/// An in-toto resource descriptor.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ResourceDescriptor {
    /// `<system>/<environment>`.
    pub name: String,
    /// Digest set.
    pub digest: BTreeMap<String, String>,
}

/// The signed facts of a decision.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct DecisionPredicate {
    /// System code.
    pub system: String,
    /// Environment.
    pub environment: String,
    /// `allow` or `deny`.
    #[schema(value_type = String)]
    pub decision: crate::Decision,
    /// Reasons of a denial.
    pub reasons: Vec<GateReason>,
    /// The approving change request.
    pub change_request: Option<i64>,
    /// When it was decided.
    pub issued_at: DateTime<Utc>,
    /// The asker's nonce (`nonce=` on the gate), when it sent one: this statement answers that
    /// request and no other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    /// Until when it holds (an allow: the approval's end; a deny: the moment it was issued).
    pub valid_until: DateTime<Utc>,
    /// The signing key.
    pub keyid: String,
    /// The policy pack the decision was made under (absent from statements signed before pack
    /// version 2).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pack: Option<crate::types::PackRef>,
}

/// A published verification key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct PublicKey {
    /// Key id.
    pub keyid: String,
    /// `ed25519`.
    pub alg: String,
    /// Base64 of the 32 raw bytes.
    pub public_key: String,
}

/// `GET /api/v1/keys`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct Keys {
    /// Keys that verify gate decisions.
    pub keys: Vec<PublicKey>,
}

/// Why an attestation does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttestationError {
    /// Not a DSSE envelope of an in-toto statement.
    #[error("malformed attestation: {0}")]
    Malformed(String),
    /// No key with the envelope's key id.
    #[error("no trusted key has the id {0:?}")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("the signature does not verify")]
    BadSignature,
}

/// The DSSE pre-authentication encoding.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// The id of a public key: `ed25519-` and the first 16 bytes of its SHA-256, in hex.
pub fn keyid(public: &VerifyingKey) -> String {
    format!(
        "ed25519-{}",
        hex::encode(&Sha256::digest(public.as_bytes())[..16])
    )
}

/// The published form of a key.
pub fn public_key(public: &VerifyingKey) -> PublicKey {
    PublicKey {
        keyid: keyid(public),
        alg: "ed25519".into(),
        public_key: B64.encode(public.as_bytes()),
    }
}

/// Signs a statement.
pub fn sign(statement: &Statement, key: &SigningKey) -> Envelope {
    let body = serde_json::to_vec(statement).unwrap_or_default();
    let sig = key.sign(&pae(PAYLOAD_TYPE, &body));
    Envelope {
        payload: B64.encode(&body),
        payload_type: PAYLOAD_TYPE.into(),
        signatures: vec![EnvelopeSignature {
            keyid: keyid(&key.verifying_key()),
            sig: B64.encode(sig.to_bytes()),
        }],
    }
}

/// Verifies an envelope with trusted keys and returns its statement. Fails closed: any doubt is
/// an error.
pub fn verify(env: &Envelope, trusted: &[PublicKey]) -> Result<Statement, AttestationError> {
    let bad = |m: &str| AttestationError::Malformed(m.to_owned());
    if env.payload_type != PAYLOAD_TYPE {
        return Err(bad("unexpected payload type"));
    }
    let body = B64
        .decode(&env.payload)
        .map_err(|_| bad("payload is not base64"))?;
    let s = env.signatures.first().ok_or_else(|| bad("no signature"))?;
    let key = trusted
        .iter()
        .find(|k| k.keyid == s.keyid)
        .ok_or_else(|| AttestationError::UnknownKey(s.keyid.clone()))?;
    let raw: [u8; 32] = B64
        .decode(&key.public_key)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("public key is not 32 bytes of base64"))?;
    let vk =
        VerifyingKey::from_bytes(&raw).map_err(|_| bad("public key is not an ed25519 point"))?;
    if keyid(&vk) != key.keyid {
        return Err(bad("public key does not match its key id"));
    }
    let sig: [u8; 64] = B64
        .decode(&s.sig)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| bad("signature is not 64 bytes of base64"))?;
    vk.verify(&pae(&env.payload_type, &body), &Signature::from_bytes(&sig))
        .map_err(|_| AttestationError::BadSignature)?;
    let st: Statement = serde_json::from_slice(&body)
        .map_err(|e| bad(&format!("payload is not a statement: {e}")))?;
    if st.type_ != STATEMENT_TYPE || st.predicate_type != PREDICATE_TYPE {
        return Err(bad("not a changegate gate decision statement"));
    }
    if st.predicate.keyid != key.keyid {
        return Err(bad("the statement names another key"));
    }
    Ok(st)
}

/// The digests a statement's subject must carry for a question: `gitCommit`, `gitTree` and
/// `sha256` (without its prefix), lowercase, exactly those the question names.
pub fn question_digests(q: &crate::GateParams) -> BTreeMap<String, String> {
    let mut d = BTreeMap::new();
    if let Some(c) = &q.commit {
        d.insert("gitCommit".to_owned(), c.to_ascii_lowercase());
    }
    if let Some(t) = &q.tree {
        d.insert("gitTree".to_owned(), t.to_ascii_lowercase());
    }
    if let Some(a) = &q.artifact {
        d.insert(
            "sha256".to_owned(),
            a.trim_start_matches("sha256:").to_ascii_lowercase(),
        );
    }
    d
}

/// What in a verified statement does not answer the question `q`: its system, environment or
/// subjects. Empty when it answers exactly that question. Each entry names what differs, with
/// what was asked and what the statement says.
pub fn mismatches(st: &Statement, q: &crate::GateParams) -> Vec<String> {
    let mut out = vec![];
    let pr = &st.predicate;
    if pr.system != q.system {
        out.push(format!(
            "system (asked {:?}, the statement is about {:?})",
            q.system, pr.system
        ));
    }
    if pr.environment != q.env {
        out.push(format!(
            "environment (asked {:?}, the statement is about {:?})",
            q.env, pr.environment
        ));
    }
    if q.nonce.is_some() && pr.nonce != q.nonce {
        out.push(format!(
            "nonce (asked with {:?}, the statement answers {}: a replayed answer)",
            q.nonce.as_deref().unwrap_or_default(),
            pr.nonce
                .as_deref()
                .map_or_else(|| "a request without one".to_owned(), |n| format!("{n:?}"))
        ));
    }
    let name = format!("{}/{}", q.system, q.env);
    let want = question_digests(q);
    match st.subject.as_slice() {
        [one] => {
            if one.name != name {
                out.push(format!(
                    "subject (asked {name:?}, the statement is about {:?})",
                    one.name
                ));
            }
            let got: BTreeMap<String, String> = one
                .digest
                .iter()
                .map(|(k, v)| (k.clone(), v.to_ascii_lowercase()))
                .collect();
            if got != want {
                let show = |m: &BTreeMap<String, String>| {
                    m.iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                out.push(format!(
                    "content (asked {}, the statement is about {})",
                    show(&want),
                    show(&got)
                ));
            }
        }
        many => out.push(format!(
            "subjects (asked one, {name}, the statement has {})",
            many.len()
        )),
    }
    out
}

/// Reads trusted keys from text: the JSON of `GET /api/v1/keys`, or one base64 public key per line.
pub fn parse_keys(text: &str) -> Result<Vec<PublicKey>, AttestationError> {
    if let Ok(k) = serde_json::from_str::<Keys>(text) {
        return Ok(k.keys);
    }
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let raw: [u8; 32] = B64
                .decode(l)
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    AttestationError::Malformed(format!(
                        "{l:?} is neither the JSON of /api/v1/keys nor a base64 ed25519 public key"
                    ))
                })?;
            let vk = VerifyingKey::from_bytes(&raw)
                .map_err(|_| AttestationError::Malformed("not an ed25519 public key".into()))?;
            Ok(public_key(&vk))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(keyid: &str) -> Statement {
        Statement {
            type_: STATEMENT_TYPE.into(),
            subject: vec![ResourceDescriptor {
                name: "TTHC/production".into(),
                digest: BTreeMap::from([("gitCommit".into(), "a".repeat(40))]),
            }],
            predicate_type: PREDICATE_TYPE.into(),
            predicate: DecisionPredicate {
                system: "TTHC".into(),
                environment: "production".into(),
                decision: "allow".into(),
                reasons: vec![],
                change_request: Some(1),
                issued_at: Utc::now(),
                nonce: None,
                valid_until: Utc::now(),
                keyid: keyid.into(),
                pack: None,
            },
        }
    }

    #[test]
    fn a_signed_decision_verifies_and_a_tampered_one_does_not() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let keys = vec![public_key(&key.verifying_key())];
        let env = sign(&statement(&keys[0].keyid), &key);
        assert_eq!(
            verify(&env, &keys).map(|s| s.predicate.decision),
            Ok(crate::Decision::Allow)
        );

        let mut st = statement(&keys[0].keyid);
        st.predicate.decision = "deny".into();
        let mut tampered = env.clone();
        tampered.payload = B64.encode(serde_json::to_vec(&st).unwrap_or_default());
        assert_eq!(
            verify(&tampered, &keys),
            Err(AttestationError::BadSignature)
        );

        let other = SigningKey::from_bytes(&[8u8; 32]);
        assert!(matches!(
            verify(&env, &[public_key(&other.verifying_key())]),
            Err(AttestationError::UnknownKey(_))
        ));
    }

    #[test]
    fn a_statement_about_another_system_environment_or_content_does_not_answer_the_question() {
        let st = statement("k");
        let q = crate::GateParams {
            system: "TTHC".into(),
            env: "production".into(),
            commit: Some("A".repeat(40)),
            ..Default::default()
        };
        assert_eq!(mismatches(&st, &q), Vec::<String>::new());
        let other = crate::GateParams {
            system: "DAT-DAI".into(),
            env: "staging".into(),
            commit: Some("b".repeat(40)),
            ..Default::default()
        };
        let m = mismatches(&st, &other);
        assert!(m.iter().any(|m| m.starts_with("system")), "{m:?}");
        assert!(m.iter().any(|m| m.starts_with("environment")), "{m:?}");
        assert!(m.iter().any(|m| m.starts_with("content")), "{m:?}");
        // Asking about more content than the statement covers is a mismatch too.
        let more = crate::GateParams {
            tree: Some("c".repeat(40)),
            ..q.clone()
        };
        assert_eq!(mismatches(&st, &more).len(), 1);
        // A question with a nonce is answered only by a statement carrying that nonce.
        let fresh = crate::GateParams {
            nonce: Some("n".repeat(32)),
            ..q.clone()
        };
        let m = mismatches(&st, &fresh);
        assert!(m.len() == 1 && m[0].starts_with("nonce"), "{m:?}");
        let mut answered = st.clone();
        answered.predicate.nonce = fresh.nonce.clone();
        assert_eq!(mismatches(&answered, &fresh), Vec::<String>::new());
    }

    /// The cost of signing per nonce: statements signed per second on one core (run with
    /// `cargo test --release -p changegate-api -- --ignored --nocapture signing_rate`).
    #[test]
    #[ignore = "a measurement, not a check"]
    fn signing_rate() {
        let key = SigningKey::from_bytes(&[7u8; 32]);
        let keyid = keyid(&key.verifying_key());
        let started = std::time::Instant::now();
        let mut n = 0u32;
        while started.elapsed() < std::time::Duration::from_secs(3) {
            let mut st = statement(&keyid);
            st.predicate.nonce = Some(format!("{n:032}"));
            std::hint::black_box(sign(&st, &key));
            n += 1;
        }
        let rate = f64::from(n) / started.elapsed().as_secs_f64();
        println!("signed statements: {rate:.0}/s on one core");
    }

    #[test]
    fn pae_matches_the_dsse_specification() {
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn keys_parse_from_the_keys_document_or_base64_lines() {
        let key = SigningKey::from_bytes(&[9u8; 32]);
        let pk = public_key(&key.verifying_key());
        let doc = serde_json::to_string(&Keys {
            keys: vec![pk.clone()],
        })
        .unwrap_or_default();
        assert_eq!(parse_keys(&doc), Ok(vec![pk.clone()]));
        assert_eq!(parse_keys(&pk.public_key), Ok(vec![pk]));
        assert!(parse_keys("not a key").is_err());
    }
}
