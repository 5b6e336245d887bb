//! Signed decisions: every gate answer can be verified later, offline, with the published keys.

use crate::cli::{changegate_bin, outcome, run, token};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use changegate_api::GateParams;
use changegate_api::attestation::{AttestationError, Statement, public_key, verify};
use changegate_tests::*;
use ed25519_dalek::SigningKey;
use std::process::Command;

#[tokio::test]
async fn every_gate_answer_carries_an_attestation_the_published_keys_verify() {
    let t = spawn_app().await;
    let w = t.world().await;
    // The keys are public: no token needed.
    let keys = ok(t.anon.keys().await).keys;
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0].alg, "ed25519");

    let (c, tr) = (random_oid(), random_oid());
    let cr = ok(w
        .owner
        .file_change(&change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await);
    ok(w.owner.submit(cr.id).await);
    let q = GateParams {
        commit: Some(c.clone()),
        tree: Some(tr.clone()),
        ..ask("TTHC", "production")
    };
    let denied = ok(w.ci.gate(&q).await);
    let cr = ok(w.owner.change(cr.id).await);
    ok(w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
    let allowed = ok(w.ci.gate(&q).await);
    let unknown = ok(w.ci.gate(&ask_commit("NO-SUCH", "production", &c)).await);
    assert_eq!(denied.codes(), ["pending_evaluation"]);
    assert!(allowed.allowed());
    assert_eq!(unknown.codes(), ["unknown_system"]);

    for d in [&denied, &allowed, &unknown] {
        let env = d.attestation.as_ref().expect("a signed attestation");
        assert_eq!(env.payload_type, "application/vnd.in-toto+json");
        let st = verify(env, &keys).unwrap_or_else(|e| panic!("{e}: {d:?}"));
        assert_eq!(st.type_, "https://in-toto.io/Statement/v1");
        let p = &st.predicate;
        assert_eq!(p.system, d.system);
        assert_eq!(p.environment, d.environment);
        assert_eq!(p.decision, d.decision);
        assert_eq!(p.reasons, d.reasons);
        assert_eq!(p.change_request, d.change_request);
        assert_eq!(p.issued_at, d.decided_at);
        assert_eq!(p.valid_until, d.valid_until.unwrap_or(d.decided_at));
        assert_eq!(p.keyid, keys[0].keyid);
        assert_eq!(st.subject.len(), 1);
        assert_eq!(st.subject[0].name, format!("{}/production", d.system));
        assert_eq!(st.subject[0].digest.get("gitCommit"), Some(&c));
    }
    let st = verify(allowed.attestation.as_ref().unwrap(), &keys).unwrap();
    assert_eq!(st.subject[0].digest.get("gitTree"), Some(&tr));
    assert_eq!(st.predicate.change_request, Some(cr.id));
    assert_eq!(Some(st.predicate.valid_until), allowed.valid_until);

    // Turning the signed denial into an allowance breaks the signature.
    let env = denied.attestation.clone().unwrap();
    let mut st: Statement = serde_json::from_slice(&B64.decode(&env.payload).unwrap()).unwrap();
    st.predicate.decision = "allow".into();
    st.predicate.reasons.clear();
    let mut tampered = env.clone();
    tampered.payload = B64.encode(serde_json::to_vec(&st).unwrap());
    assert_eq!(
        verify(&tampered, &keys),
        Err(AttestationError::BadSignature)
    );
    // So does moving the signature to another subject.
    let mut moved = allowed.attestation.clone().unwrap();
    moved.signatures = env.signatures.clone();
    assert_eq!(verify(&moved, &keys), Err(AttestationError::BadSignature));
}

/// `changegate check --commit C --tree T --public-key FILE` as the ci user.
fn check(url: &str, token: &str, c: &str, tr: &str, keys: &std::path::Path) -> Command {
    let mut cmd = Command::new(changegate_bin());
    cmd.args(["check", "--system", "TTHC", "--env", "production"])
        .args(["--commit", c, "--tree", tr])
        .arg("--public-key")
        .arg(keys)
        .env_clear()
        .env("CHANGEGATE_URL", url)
        .env("CHANGEGATE_TOKEN", token);
    cmd
}

#[tokio::test]
async fn check_with_the_servers_keys_exits_0_and_with_another_key_fails_closed() {
    let t = spawn_app().await;
    let w = t.world().await;
    let ci = token(&t, "ci.stnmt").await;
    let (c, tr) = (random_oid(), random_oid());
    t.approved(&w, &change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await;

    // The keys file as an operator saves it: curl $CHANGEGATE_URL/api/v1/keys > keys.json
    let (status, _, body) = ok(t
        .anon
        .raw(reqwest::Method::GET, "/api/v1/keys", None, vec![])
        .await);
    assert_eq!(status, 200);
    let ours = t.dir.path().join("keys.json");
    std::fs::write(&ours, &body).unwrap();
    let o = run(check(&t.url, &ci, &c, &tr, &ours)).await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(err.contains("signature verified"), "{err}");

    // A verified denial is still a denial.
    let other = random_oid();
    let o = run(check(&t.url, &ci, &other, &random_oid(), &ours)).await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(1), "stdout: {out}\nstderr: {err}");

    // A valid ed25519 key that is not the server's: the allowance is not trusted.
    let stranger = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let theirs = t.dir.path().join("other-key.txt");
    std::fs::write(
        &theirs,
        format!("{}\n", public_key(&stranger.verifying_key()).public_key),
    )
    .unwrap();
    let o = run(check(&t.url, &ci, &c, &tr, &theirs)).await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(2), "stdout: {out}\nstderr: {err}");
    assert!(err.contains("does not verify"), "{err}");
    assert!(!out.contains("ALLOWED"), "{out}");
}
