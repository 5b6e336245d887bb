//! Signed gate decisions: the DSSE envelope around an in-toto statement (`attestation::verify`,
//! as `changegate check --public-key` runs it) and the trusted keys file (`parse_keys`).
//!
//! The first byte picks the mode (`b'0' + n` in the seeds):
//! 0. the rest is an envelope's JSON, verified with a fixed test key;
//! 1. the rest is a payload, signed with the fixed test key (so verification gets past the
//!    signature and reads the statement), then verified, then verified again with one byte of the
//!    payload flipped;
//! 2. the rest is a keys file; a genuine envelope is verified with those keys;
//! 3. the rest is `payload type` NUL `payload`, both signed with the test key.
//!
//! Checked: an envelope that verifies has the in-toto payload type and a signature that our own
//! ed25519 check (strict) accepts from the trusted key over the pre-authentication encoding of
//! exactly the payload it returns; the statement names that key; a correctly signed envelope never
//! fails on its signature, and verifies exactly when its payload is a statement of a changegate
//! decision naming the key; a flipped payload byte never verifies; keys read from base64 lines
//! carry the id of the key they decode to; verification with keys from a file succeeds only if the
//! file holds the genuine key under its id.
#![no_main]

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use changegate_api::attestation::{
    AttestationError, Envelope, EnvelopeSignature, PAYLOAD_TYPE, PREDICATE_TYPE, PublicKey,
    STATEMENT_TYPE, Statement, keyid, pae, parse_keys, public_key, sign, verify,
};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use libfuzzer_sys::fuzz_target;

fn key() -> SigningKey {
    SigningKey::from_bytes(&[7u8; 32])
}

fn trusted() -> Vec<PublicKey> {
    // A second, unrelated key listed first: the envelope's key id must pick the right one.
    let other = SigningKey::from_bytes(&[8u8; 32]);
    vec![
        public_key(&other.verifying_key()),
        public_key(&key().verifying_key()),
    ]
}

/// What a verified envelope must satisfy, checked without `verify`.
fn genuine(env: &Envelope, st: &Statement, vk: &VerifyingKey) {
    assert_eq!(env.payload_type, PAYLOAD_TYPE);
    let body = B64
        .decode(&env.payload)
        .unwrap_or_else(|e| panic!("verified, but the payload is not base64: {e}"));
    let s = &env.signatures[0];
    assert_eq!(s.keyid, keyid(vk));
    let sig: [u8; 64] = B64
        .decode(&s.sig)
        .ok()
        .and_then(|b| b.try_into().ok())
        .unwrap_or_else(|| panic!("verified, but the signature is not 64 bytes"));
    assert!(
        vk.verify_strict(&pae(PAYLOAD_TYPE, &body), &Signature::from_bytes(&sig))
            .is_ok(),
        "verified, but the signature is not the key's over this payload"
    );
    let read: Statement = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("verified, but the payload is not a statement: {e}"));
    assert_eq!(
        &read, st,
        "verify returned another statement than the signed one"
    );
    assert_eq!(st.type_, STATEMENT_TYPE);
    assert_eq!(st.predicate_type, PREDICATE_TYPE);
    assert_eq!(st.predicate.keyid, keyid(vk));
}

fn envelope(payload_type: &str, body: &[u8]) -> Envelope {
    let k = key();
    Envelope {
        payload: B64.encode(body),
        payload_type: payload_type.to_owned(),
        signatures: vec![EnvelopeSignature {
            keyid: keyid(&k.verifying_key()),
            sig: B64.encode(k.sign(&pae(payload_type, body)).to_bytes()),
        }],
    }
}

fn raw_envelope(data: &[u8]) {
    let Ok(env) = serde_json::from_slice::<Envelope>(data) else {
        return;
    };
    if let Ok(st) = verify(&env, &trusted()) {
        genuine(&env, &st, &key().verifying_key());
    }
}

fn signed_payload(payload_type: &str, body: &[u8], flip: Option<usize>) {
    let env = envelope(payload_type, body);
    let result = verify(&env, &trusted());
    let expected = payload_type == PAYLOAD_TYPE
        && serde_json::from_slice::<Statement>(body).is_ok_and(|st| {
            st.type_ == STATEMENT_TYPE
                && st.predicate_type == PREDICATE_TYPE
                && st.predicate.keyid == keyid(&key().verifying_key())
        });
    match &result {
        Ok(st) => {
            assert!(
                expected,
                "verified a statement that is not a decision of the key"
            );
            genuine(&env, st, &key().verifying_key());
            // Signing the statement again gives an envelope that verifies to the same.
            let again = sign(st, &key());
            assert_eq!(verify(&again, &trusted()).as_ref(), Ok(st));
        }
        Err(AttestationError::Malformed(_)) => {
            assert!(!expected, "a genuine decision was refused: {result:?}")
        }
        Err(e) => panic!("a correctly signed envelope failed with {e:?}"),
    }
    if let Some(i) = flip.filter(|_| !body.is_empty()) {
        let mut tampered = body.to_vec();
        tampered[i % body.len()] ^= 0x01;
        let mut env2 = env.clone();
        env2.payload = B64.encode(&tampered);
        assert_eq!(
            verify(&env2, &trusted()),
            if payload_type == PAYLOAD_TYPE {
                Err(AttestationError::BadSignature)
            } else {
                Err(AttestationError::Malformed(
                    "unexpected payload type".to_owned(),
                ))
            },
            "a tampered payload"
        );
    }
}

const GENUINE: &str = r#"{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"TTHC/production","digest":{"gitCommit":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}}],"predicateType":"urn:changegate:gate-decision:v1","predicate":{"system":"TTHC","environment":"production","decision":"allow","reasons":[],"change_request":1,"issued_at":"2026-01-01T00:00:00Z","valid_until":"2026-01-31T00:00:00Z","keyid":"KEYID"}}"#;

fn keys_file(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(keys) = parse_keys(text) else {
        return;
    };
    if serde_json::from_str::<serde_json::Value>(text).is_err() {
        // Base64 lines: each key carries the id of the key it decodes to.
        for k in &keys {
            let raw: [u8; 32] = B64
                .decode(&k.public_key)
                .ok()
                .and_then(|b| b.try_into().ok())
                .unwrap_or_else(|| panic!("{k:?}: not 32 bytes of base64"));
            let vk = VerifyingKey::from_bytes(&raw)
                .unwrap_or_else(|_| panic!("{k:?}: not an ed25519 key"));
            assert_eq!(k.keyid, keyid(&vk));
            assert_eq!(k.alg, "ed25519");
        }
    }
    let vk = key().verifying_key();
    let body = GENUINE.replace("KEYID", &keyid(&vk));
    let env = envelope(PAYLOAD_TYPE, body.as_bytes());
    if let Ok(st) = verify(&env, &keys) {
        genuine(&env, &st, &vk);
        let listed = keys.iter().any(|k| {
            k.keyid == keyid(&vk) && B64.decode(&k.public_key).ok() == Some(vk.to_bytes().to_vec())
        });
        assert!(
            listed,
            "verified with keys that do not hold the genuine key"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 4 {
        0 => raw_envelope(rest),
        1 => {
            let flip = rest.first().map(|b| usize::from(*b) * 7);
            signed_payload(PAYLOAD_TYPE, rest, flip)
        }
        2 => keys_file(rest),
        _ => {
            let (t, body) = match rest.iter().position(|b| *b == 0) {
                Some(i) => (&rest[..i], &rest[i + 1..]),
                None => (&rest[..0], rest),
            };
            signed_payload(&String::from_utf8_lossy(t), body, Some(t.len()))
        }
    }
});
