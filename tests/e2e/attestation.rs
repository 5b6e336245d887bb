//! Signed decisions: every gate answer can be verified later, offline, with the published keys.

use crate::cli::{changegate_bin, keys_file, outcome, run, token};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use changegate_api::GateParams;
use changegate_api::attestation::{AttestationError, Statement, public_key, verify};
use changegate_tests::*;
use ed25519_dalek::SigningKey;
use std::path::Path;
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

/// A stand-in for the server, as an attacker who sits between the pipeline and the server would
/// run one: it answers every gate question with `answer`, whatever was asked.
async fn stand_in(answer: serde_json::Value) -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", l.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/api/v1/gate",
        axum::routing::get(move || {
            let a = answer.clone();
            async move { axum::Json(a) }
        }),
    );
    tokio::spawn(async move { axum::serve(l, app).await });
    url
}

/// `changegate check` about `system`/`env` and a commit, as the ci user, with `keys` pinned.
fn check_about(url: &str, token: &str, q: (&str, &str, &str, &str), keys: &Path) -> Command {
    let (system, env, c, tr) = q;
    let mut cmd = Command::new(changegate_bin());
    cmd.args(["check", "--system", system, "--env", env])
        .args(["--commit", c, "--tree", tr])
        .env_clear()
        .env("CHANGEGATE_URL", url)
        .env("CHANGEGATE_TOKEN", token)
        .env("CHANGEGATE_PUBLIC_KEYS", keys);
    cmd
}

#[tokio::test]
async fn check_refuses_a_genuine_allow_about_another_system_and_an_unsigned_answer() {
    let t = spawn_app().await;
    let w = t.world().await;
    let ci = token(&t, "ci.stnmt").await;
    let (c, tr) = (random_oid(), random_oid());
    t.approved(&w, &change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await;
    let allowed = ok(w
        .ci
        .gate(&GateParams {
            commit: Some(c.clone()),
            tree: Some(tr.clone()),
            ..ask("TTHC", "production")
        })
        .await);
    assert!(allowed.allowed());
    let keys = keys_file(&t, t.dir.path()).await;

    // The server's own, correctly signed allow for TTHC/production, handed out by a stand-in to
    // a pipeline asking about other content of DAT-DAI in staging.
    let fake = stand_in(serde_json::to_value(&allowed).unwrap()).await;
    let (other_c, other_t) = (random_oid(), random_oid());
    let o = run(check_about(
        &fake,
        &ci,
        ("DAT-DAI", "staging", &other_c, &other_t),
        &keys,
    ))
    .await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(2), "stdout: {out}\nstderr: {err}");
    assert!(!out.contains("ALLOWED"), "{out}");
    for what in ["system", "environment", "content", "DAT-DAI", "TTHC"] {
        assert!(err.contains(what), "{what} not named: {err}");
    }

    // The same answer without its signature, for the very question it answers: not trusted.
    let mut unsigned = allowed.clone();
    unsigned.attestation = None;
    let fake = stand_in(serde_json::to_value(&unsigned).unwrap()).await;
    let o = run(check_about(
        &fake,
        &ci,
        ("TTHC", "production", &c, &tr),
        &keys,
    ))
    .await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(2), "stdout: {out}\nstderr: {err}");
    assert!(!out.contains("ALLOWED"), "{out}");
    assert!(err.contains("no signature"), "{err}");

    // No keys pinned and no trust on first use asked for: nothing can be trusted.
    let mut cmd = check_about(&t.url, &ci, ("TTHC", "production", &c, &tr), &keys);
    cmd.env_remove("CHANGEGATE_PUBLIC_KEYS");
    let (code, out, err) = outcome(&run(cmd).await);
    assert_eq!(code, Some(2), "stdout: {out}\nstderr: {err}");
    assert!(err.contains("CHANGEGATE_PUBLIC_KEYS"), "{err}");
}

#[tokio::test]
async fn a_replayed_signed_allow_for_the_same_question_exits_2() {
    let t = spawn_app().await;
    let w = t.world().await;
    let ci = token(&t, "ci.stnmt").await;
    let (c, tr) = (random_oid(), random_oid());
    t.approved(&w, &change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await;
    // Captured earlier: the genuine allow for exactly this question, asked with a nonce.
    let nonce = "0123456789abcdef0123456789abcdef".to_owned();
    let q = GateParams {
        commit: Some(c.clone()),
        tree: Some(tr.clone()),
        nonce: Some(nonce.clone()),
        ..ask("TTHC", "production")
    };
    let captured = ok(w.ci.gate(&q).await);
    assert!(captured.allowed());
    let keys = ok(t.anon.keys().await).keys;
    let st = verify(captured.attestation.as_ref().unwrap(), &keys).unwrap();
    assert_eq!(st.predicate.nonce.as_deref(), Some(nonce.as_str()));
    assert_eq!(st.predicate.issued_at, captured.decided_at);
    // Asked again with the same nonce, the server signs again (no reuse across requests).
    let again = ok(w.ci.gate(&q).await);
    let st2 = verify(again.attestation.as_ref().unwrap(), &keys).unwrap();
    assert_eq!(st2.predicate.nonce.as_deref(), Some(nonce.as_str()));

    // The stand-in replays it: same system, environment and content, another request.
    let fake = stand_in(serde_json::to_value(&captured).unwrap()).await;
    let pinned = keys_file(&t, t.dir.path()).await;
    let o = run(check_about(
        &fake,
        &ci,
        ("TTHC", "production", &c, &tr),
        &pinned,
    ))
    .await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(2), "stdout: {out}\nstderr: {err}");
    assert!(!out.contains("ALLOWED"), "{out}");
    assert!(err.contains("nonce") && err.contains("replayed"), "{err}");

    // A signed answer to a request without a nonce (the original contract) is refused too.
    let old = ok(w
        .ci
        .gate(&GateParams {
            nonce: None,
            ..q.clone()
        })
        .await);
    assert_eq!(
        verify(old.attestation.as_ref().unwrap(), &keys)
            .unwrap()
            .predicate
            .nonce,
        None
    );
    let fake = stand_in(serde_json::to_value(&old).unwrap()).await;
    let o = run(check_about(
        &fake,
        &ci,
        ("TTHC", "production", &c, &tr),
        &pinned,
    ))
    .await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(2), "stdout: {out}\nstderr: {err}");
    assert!(err.contains("nonce"), "{err}");

    // The real server answers the same command with its nonce: allowed.
    let o = run(check_about(
        &t.url,
        &ci,
        ("TTHC", "production", &c, &tr),
        &pinned,
    ))
    .await;
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");

    // A nonce the server will not repeat is refused, naming it.
    let (status, _, body) = ok(w
        .ci
        .raw(
            reqwest::Method::GET,
            &format!("/api/v1/gate?system=TTHC&env=production&commit={c}&nonce=short"),
            None,
            vec![],
        )
        .await);
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("nonce"), "{body}");
}
