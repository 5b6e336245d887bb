//! Long-polling the gate: a waiting pipeline goes on the moment PA05 signs off.

use crate::cli::{changegate_bin, keys_file, outcome, token};
use changegate_api::GateParams;
use changegate_tests::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn a_waiting_gate_request_answers_as_soon_as_a_reviewer_signs_off() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (c, tr) = (random_oid(), random_oid());
    let cr = ok(w
        .owner
        .file_change(&change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await);
    ok(w.owner.submit(cr.id).await);
    let q = GateParams {
        commit: Some(c.clone()),
        tree: Some(tr.clone()),
        wait: Some(20),
        ..ask("TTHC", "production")
    };
    let ci = w.ci.clone();
    let waiting = tokio::spawn(async move { ci.gate(&q).await });
    // Still held (the decision has not changed) …
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "the gate answered without waiting");

    // … until the sign-off.
    let cr = ok(w.owner.change(cr.id).await);
    let signed = Instant::now();
    ok(w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
    let d = ok(tokio::time::timeout(Duration::from_secs(25), waiting)
        .await
        .expect("the waiting request answers within its wait")
        .expect("the task"));
    let after = signed.elapsed();
    assert!(d.allowed(), "{d:?}");
    assert_eq!(d.change_request, Some(cr.id));
    assert!(
        after < Duration::from_secs(5),
        "answered {after:?} after the sign-off, not at once"
    );
}

#[tokio::test]
async fn a_wait_longer_than_the_server_holds_is_refused_naming_wait() {
    let t = spawn_app().await;
    let w = t.world().await;
    let p = problem(
        w.ci.gate(&GateParams {
            wait: Some(61),
            ..ask_commit("TTHC", "production", &random_oid())
        })
        .await,
    );
    assert_eq!(p.status, 422, "{p:?}");
    assert!(p.errors.iter().any(|e| e.field == "wait"), "{p:?}");
    assert_eq!(
        p.decision.as_ref().map(|d| d.as_str()),
        Some("deny"),
        "{p:?}"
    );
}

#[tokio::test]
async fn check_wait_exits_0_soon_after_the_sign_off() {
    let t = spawn_app().await;
    let w = t.world().await;
    let ci = token(&t, "ci.stnmt").await;
    let (c, tr) = (random_oid(), random_oid());
    let cr = ok(w
        .owner
        .file_change(&change("TTHC", &["production"], vec![git(&c, &tr)]))
        .await);
    ok(w.owner.submit(cr.id).await);
    let keys = keys_file(&t, t.dir.path()).await;
    let bin = changegate_bin();
    let mut child = tokio::process::Command::new(bin)
        .args(["check", "--system", "TTHC", "--env", "production"])
        .args(["--commit", &c, "--tree", &tr, "--wait", "90s"])
        .env_clear()
        .env("CHANGEGATE_URL", &t.url)
        .env("CHANGEGATE_TOKEN", &ci)
        .env("CHANGEGATE_PUBLIC_KEYS", &keys)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("changegate starts");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        child.try_wait().expect("status").is_none(),
        "check --wait ended before the sign-off"
    );
    let cr = ok(w.owner.change(cr.id).await);
    let signed = Instant::now();
    ok(w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
    let o = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("check --wait ends after the sign-off")
        .expect("output");
    let after = signed.elapsed();
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(0), "stdout: {out}\nstderr: {err}");
    assert!(out.contains("ALLOWED"), "{out}");
    assert!(
        after < Duration::from_secs(5),
        "exited {after:?} after the sign-off, not at once"
    );
}

#[tokio::test]
async fn check_wait_against_a_server_that_never_answers_gives_up_when_the_wait_is_up() {
    let hang = crate::sink::Faulty::start(crate::sink::Fault::Hang).await;
    let base = hang.url.trim_end_matches("/hook").to_owned();
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    let key = ed25519_dalek::SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    std::fs::write(
        &keys,
        changegate_api::attestation::public_key(&key.verifying_key()).public_key,
    )
    .unwrap();
    let mut cmd = std::process::Command::new(changegate_bin());
    cmd.args(["check", "--system", "TTHC", "--env", "production"])
        .args(["--commit", &random_oid(), "--wait", "5s"])
        .env_clear()
        .env("CHANGEGATE_URL", &base)
        .env("CHANGEGATE_TOKEN", "cg_anything")
        .env("CHANGEGATE_PUBLIC_KEYS", &keys);
    let started = Instant::now();
    let o = crate::cli::run(cmd).await;
    let took = started.elapsed();
    let (code, out, err) = outcome(&o);
    assert_eq!(code, Some(2), "stdout: {out}\nstderr: {err}");
    assert!(err.contains("did not answer within"), "{err}");
    assert!(hang.accepted() >= 1);
    assert!(
        took < Duration::from_secs(9),
        "--wait 5s against a server that never answers took {took:?}"
    );
}
