//! Enforcement beyond the pipeline file (issue 13): observed content, Kubernetes admission.

use crate::cli::{changegate_bin, outcome, run, token};
use crate::sink::{Sink, hook};
use changegate_api::{NewObservation, WireSubject};
use changegate_app::Principal;
use changegate_store::entity::incident;
use changegate_store::sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use changegate_tests::*;
use serde_json::{Value, json};
use std::process::Command;

fn observation(system: &str, env: &str, subjects: Vec<WireSubject>) -> NewObservation {
    NewObservation {
        system: system.into(),
        env: env.into(),
        source: "web01.tthc.local".into(),
        subjects,
        observed_at: None,
    }
}

async fn unapproved_incidents(t: &TestApp) -> Vec<incident::Model> {
    incident::Entity::find()
        .filter(incident::Column::Kind.eq("unapproved_content"))
        .all(&t.app.db)
        .await
        .unwrap()
}

#[tokio::test]
async fn unapproved_content_observed_opens_exactly_one_incident_that_closes_the_gate_and_is_notified()
 {
    let t = spawn_app().await;
    let w = t.world().await;
    let sink = Sink::start().await;
    ok(t.admin.create_webhook(&hook(&sink.url)).await);
    let observer = t
        .user("sensor.tthc", "Cảm biến TTHC", "STNMT", "observer")
        .await;
    let approved = random_digest();
    let cr = t
        .approved(
            &w,
            &change("TTHC", &["production"], vec![artifact(&approved)]),
        )
        .await;

    // Approved content: covered, nothing opened.
    let o = ok(observer
        .observe(&observation(
            "TTHC",
            "production",
            vec![artifact(&approved)],
        ))
        .await);
    assert!(!o.unapproved, "{o:?}");
    assert!(o.subjects[0].covered);
    assert_eq!(o.subjects[0].change_request, Some(cr.id));
    assert_eq!(o.incident, None);
    assert!(unapproved_incidents(&t).await.is_empty());
    assert!(ask_artifact(&w, &approved).await.allowed());

    // Content nobody approved, next to the approved one.
    let rogue = random_digest();
    let o = ok(observer
        .observe(&observation(
            "TTHC",
            "production",
            vec![artifact(&approved), artifact(&rogue)],
        ))
        .await);
    assert!(o.unapproved && o.incident_opened, "{o:?}");
    assert!(o.subjects[0].covered);
    assert!(!o.subjects[1].covered);
    assert_eq!(o.subjects[1].reasons[0].code, "no_approved_change");
    let opened = unapproved_incidents(&t).await;
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0].severity.as_str(), "high");
    assert_eq!(
        *opened[0].status,
        changegate_domain::gate::IncidentStatus::Open
    );
    assert_eq!(Some(opened[0].id), o.incident);
    assert!(opened[0].summary.contains(&rogue), "{}", opened[0].summary);
    assert!(
        !opened[0].summary.contains(&approved),
        "{}",
        opened[0].summary
    );

    // The incident closes the gate, for the approved content too.
    let d = ask_artifact(&w, &approved).await;
    assert!(!d.allowed(), "{d:?}");
    assert_eq!(d.reasons[0].code, "incident_open");

    // The same content observed again (twice, by another source too) opens no second incident.
    for source in ["web01.tthc.local", "web02.tthc.local"] {
        let mut n = observation("TTHC", "production", vec![artifact(&rogue)]);
        n.source = source.into();
        let again = ok(observer.observe(&n).await);
        assert!(again.unapproved && !again.incident_opened, "{again:?}");
        assert_eq!(again.incident, o.incident);
    }
    assert_eq!(unapproved_incidents(&t).await.len(), 1);

    // Notified once through the outbox, as an incident.
    let got = crate::sink::eventually(
        "the incident notification",
        std::time::Duration::from_secs(10),
        || async {
            let got = sink.of("incident.reported");
            (!got.is_empty()).then_some(got)
        },
    )
    .await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].body["data"]["kind"], "unapproved_content");
    assert_eq!(got[0].body["data"]["id"], json!(o.incident));

    // Audited.
    let events = ok(w.auditor.audit(0, 1000).await).events;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == "observation.unapproved")
            .count(),
        3
    );
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == "observation.record")
            .count(),
        1
    );
}

async fn ask_artifact(w: &World, digest: &str) -> changegate_api::GateDecision {
    let mut q = ask("TTHC", "production");
    q.artifact = Some(digest.into());
    ok(w.ci.gate(&q).await)
}

#[tokio::test]
async fn bad_observations_change_nothing() {
    let t = spawn_app().await;
    let w = t.world().await;
    let observer = t
        .user("sensor.tthc", "Cảm biến TTHC", "STNMT", "observer")
        .await;
    let other = t
        .user("sensor.thue", "Cảm biến Thuế", "CUCTHUE", "observer")
        .await;
    let before = t.audit_seq().await;
    let d = random_digest();
    let p = problem(
        observer
            .observe(&observation("KHONG-CO", "production", vec![artifact(&d)]))
            .await,
    );
    assert_eq!(
        (p.status, p.errors[0].field.as_str()),
        (422, "system"),
        "{p:?}"
    );
    // Another organisation's system answers as unknown.
    let p = problem(
        other
            .observe(&observation("TTHC", "production", vec![artifact(&d)]))
            .await,
    );
    assert_eq!(
        (p.status, p.errors[0].field.as_str()),
        (422, "system"),
        "{p:?}"
    );
    let p = problem(
        observer
            .observe(&observation("TTHC", "testing", vec![artifact(&d)]))
            .await,
    );
    assert_eq!(p.errors[0].field, "env", "{p:?}");
    let p = problem(
        observer
            .observe(&observation("TTHC", "production", vec![]))
            .await,
    );
    assert_eq!(p.errors[0].field, "subjects", "{p:?}");
    let p = problem(
        observer
            .observe(&observation(
                "TTHC",
                "production",
                vec![artifact("sha256:abc")],
            ))
            .await,
    );
    assert_eq!(p.errors[0].field, "subjects[0]", "{p:?}");
    // An owner does not report observations.
    let p = problem(
        w.owner
            .observe(&observation("TTHC", "production", vec![artifact(&d)]))
            .await,
    );
    assert_eq!(p.status, 403, "{p:?}");
    assert_eq!(t.audit_seq().await, before);
    assert!(unapproved_incidents(&t).await.is_empty());
}

#[tokio::test]
async fn a_source_that_falls_silent_for_the_packs_interval_is_signalled_once() {
    let t = spawn_app().await;
    let w = t.world().await;
    let _ = &w;
    let observer = t
        .user("sensor.tthc", "Cảm biến TTHC", "STNMT", "observer")
        .await;
    let o = ok(observer
        .observe(&observation(
            "TTHC",
            "production",
            vec![artifact(&random_digest())],
        ))
        .await);
    let now = o.recorded_at;
    assert_eq!(
        t.app
            .signal_silent_sources(now + chrono::Duration::minutes(59))
            .await
            .unwrap(),
        0
    );
    let later = now + chrono::Duration::minutes(61);
    assert_eq!(t.app.signal_silent_sources(later).await.unwrap(), 1);
    assert_eq!(t.app.signal_silent_sources(later).await.unwrap(), 0);
    let sources = ok(observer.observation_sources().await);
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].source, "web01.tthc.local");
    assert_eq!(sources[0].silent_since, Some(later));
    let events = ok(w.auditor.audit(0, 1000).await).events;
    assert_eq!(
        events
            .iter()
            .filter(|e| e.action == "observation.source_silent")
            .count(),
        1
    );
    // Reporting again ends the silence.
    ok(observer
        .observe(&observation(
            "TTHC",
            "production",
            vec![artifact(&random_digest())],
        ))
        .await);
    assert_eq!(
        ok(observer.observation_sources().await)[0].silent_since,
        None
    );
}

#[tokio::test]
async fn digest_of_a_directory_is_reproducible_and_observe_reports_it() {
    let t = spawn_app().await;
    let w = t.world().await;
    let observer_token = {
        t.user("sensor.tthc", "Cảm biến TTHC", "STNMT", "observer")
            .await;
        token(&t, "sensor.tthc").await
    };
    let make = |order: &[(&str, &str)]| {
        let d = tempfile::tempdir().unwrap();
        for (f, c) in order {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, c).unwrap();
        }
        d
    };
    let a = make(&[
        ("index.php", "<?php echo 1;"),
        ("lib/db.php", "<?php // db"),
    ]);
    let b = make(&[
        ("lib/db.php", "<?php // db"),
        ("index.php", "<?php echo 1;"),
    ]);
    let c = make(&[
        ("index.php", "<?php echo 2;"),
        ("lib/db.php", "<?php // db"),
    ]);
    let digest = |dir: std::path::PathBuf| async move {
        let mut cmd = Command::new(changegate_bin());
        cmd.args(["digest", "--path"]).arg(dir);
        outcome(&run(cmd).await)
    };
    let (code, da, err) = digest(a.path().into()).await;
    assert_eq!(code, Some(0), "{err}");
    let da = da.trim().to_owned();
    assert!(da.starts_with("sha256:") && da.len() == 71, "{da}");
    assert_eq!(digest(b.path().into()).await.1.trim(), da);
    assert_ne!(digest(c.path().into()).await.1.trim(), da);
    let (code, _, err) = digest(a.path().join("missing")).await;
    assert_eq!(code, Some(1));
    assert!(err.contains("does not exist"), "{err}");

    // The owner names the digest in a change request; PA05 approves it.
    t.approved(&w, &change("TTHC", &["production"], vec![artifact(&da)]))
        .await;
    let observe = |dir: std::path::PathBuf| {
        let mut cmd = Command::new(changegate_bin());
        cmd.args([
            "observe",
            "--system",
            "TTHC",
            "--env",
            "production",
            "--path",
        ])
        .arg(dir)
        .env("CHANGEGATE_URL", &t.url)
        .env("CHANGEGATE_TOKEN", &observer_token);
        async move { outcome(&run(cmd).await) }
    };
    let (code, out, err) = observe(b.path().into()).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(unapproved_incidents(&t).await.is_empty());
    let (code, out, err) = observe(c.path().into()).await;
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(out.contains("unapproved content"), "{out}");
    assert_eq!(unapproved_incidents(&t).await.len(), 1);
}

// ---- Kubernetes admission ----------------------------------------------------------------

fn pinned(d: &str) -> String {
    format!("registry.local/tthc@{d}")
}

fn labels() -> Value {
    json!({"changegate.io/system": "TTHC", "changegate.io/env": "production"})
}

fn review(uid: &str, kind: &str, namespace: &str, object: Value, dry_run: bool) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": uid, "kind": {"group": "", "version": "v1", "kind": kind},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "web", "namespace": namespace, "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": object, "oldObject": null, "dryRun": dry_run,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}}})
}

fn pod(labels: Value, spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": labels}, "spec": spec})
}

struct K8s {
    t: TestApp,
    w: World,
    token: String,
    approved: String,
    pending: String,
    http: reqwest::Client,
}

async fn k8s() -> K8s {
    // As the configuration file says it.
    let t = spawn_app_with(|cfg| {
        cfg.k8s = toml::from_str(
            r#"
            unmapped = "deny"
            [namespaces]
            tthc-staging = { system = "TTHC", env = "staging" }
            "#,
        )
        .unwrap();
    })
    .await;
    let w = t.world().await;
    t.user("k8s.stnmt", "Cụm Kubernetes STNMT", "STNMT", "admission")
        .await;
    let token = token(&t, "k8s.stnmt").await;
    let approved = random_digest();
    t.approved(
        &w,
        &change(
            "TTHC",
            &["production", "staging"],
            vec![artifact(&approved)],
        ),
    )
    .await;
    let pending = random_digest();
    let cr = ok(w
        .owner
        .file_change(&change("TTHC", &["production"], vec![artifact(&pending)]))
        .await);
    ok(w.owner.submit(cr.id).await);
    K8s {
        t,
        w,
        token,
        approved,
        pending,
        http: reqwest::Client::new(),
    }
}

impl K8s {
    async fn post(&self, token: Option<&str>, body: String) -> (u16, Value) {
        let mut r = self
            .http
            .post(format!("{}/k8s/validate", self.t.url))
            .header("content-type", "application/json")
            .body(body);
        if let Some(tok) = token {
            r = r.bearer_auth(tok);
        }
        let r = r.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// The `response` of an answered review, after checking the envelope.
    async fn validate(&self, review: Value) -> Value {
        let uid = review["request"]["uid"].clone();
        let (status, v) = self.post(Some(&self.token), review.to_string()).await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(v["kind"], "AdmissionReview");
        assert_eq!(v["response"]["uid"], uid);
        assert!(v["response"].get("patch").is_none(), "{v}");
        for w in v["response"]["warnings"].as_array().into_iter().flatten() {
            assert!(w.as_str().unwrap().chars().count() < 120, "{w}");
        }
        v["response"].clone()
    }
}

#[tokio::test]
async fn admission_allows_pinned_approved_images_and_denies_pending_tagged_and_hidden_ones() {
    let k = k8s().await;
    // A Pod whose image is pinned and approved.
    let r = k
        .validate(review(
            "u-1",
            "Pod",
            "tthc-prod",
            pod(
                labels(),
                json!({"containers": [{"name": "web", "image": pinned(&k.approved)}]}),
            ),
            false,
        ))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
    assert!(r.get("status").is_none(), "{r}");

    // A Deployment whose pinned image awaits its evaluation.
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": labels()},
        "spec": {"template": {"metadata": {"labels": labels()}, "spec": {"containers": [{"name": "web", "image": pinned(&k.pending)}]}}}});
    let r = k
        .validate(review("u-2", "Deployment", "tthc-prod", deployment, false))
        .await;
    assert_eq!(r["allowed"], false, "{r}");
    assert_eq!(r["status"]["code"], 403);
    let msg = r["status"]["message"].as_str().unwrap();
    assert!(
        msg.contains("TTHC/production") && msg.contains("pending_evaluation"),
        "{msg}"
    );
    assert!(
        r["warnings"][0]
            .as_str()
            .unwrap()
            .contains("pending_evaluation"),
        "{r}"
    );

    // A CronJob whose image goes by tag only.
    let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly", "labels": labels()},
        "spec": {"schedule": "0 1 * * *", "jobTemplate": {"spec": {"template": {"spec": {"containers": [{"name": "job", "image": "registry.local/tthc:1.4"}]}}}}}});
    let r = k
        .validate(review("u-3", "CronJob", "tthc-prod", cron, false))
        .await;
    assert_eq!(r["allowed"], false, "{r}");
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("image_not_pinned"),
        "{r}"
    );
    assert!(
        r["warnings"][0]
            .as_str()
            .unwrap()
            .contains("registry.local/tthc:1.4"),
        "{r}"
    );

    // An unapproved init container next to an approved one.
    let spec = json!({"containers": [{"name": "web", "image": pinned(&k.approved)}],
        "initContainers": [{"name": "migrate", "image": pinned(&random_digest())}]});
    let r = k
        .validate(review(
            "u-4",
            "Pod",
            "tthc-prod",
            pod(labels(), spec),
            false,
        ))
        .await;
    assert_eq!(r["allowed"], false, "{r}");
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("no_approved_change"),
        "{r}"
    );
    assert!(
        r["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("initContainers migrate"),
        "{r}"
    );

    // An ephemeral debugging container by tag.
    let spec = json!({"containers": [{"name": "web", "image": pinned(&k.approved)}],
        "ephemeralContainers": [{"name": "debug", "image": "busybox:latest"}]});
    let r = k
        .validate(review(
            "u-5",
            "Pod",
            "tthc-prod",
            pod(labels(), spec),
            false,
        ))
        .await;
    assert_eq!(r["allowed"], false, "{r}");
    assert!(
        r["warnings"][0]
            .as_str()
            .unwrap()
            .starts_with("ephemeralContainers debug"),
        "{r}"
    );

    // Each decision is audited as a deployment attempt, with namespace, object and user.
    let events = ok(k.w.auditor.audit(0, 1000).await).events;
    let attempts: Vec<_> = events
        .iter()
        .filter(|e| e.action.starts_with("deployment.admission_"))
        .collect();
    assert_eq!(
        attempts
            .iter()
            .map(|e| (e.action.as_str(), e.entity_id.as_str()))
            .collect::<Vec<_>>(),
        [
            ("deployment.admission_allowed", "u-1"),
            ("deployment.admission_refused", "u-2"),
            ("deployment.admission_refused", "u-3"),
            ("deployment.admission_refused", "u-4"),
            ("deployment.admission_refused", "u-5"),
        ]
    );
    let after: Value = serde_json::from_str(attempts[1].after.as_deref().unwrap()).unwrap();
    assert_eq!(after["namespace"], "tthc-prod");
    assert_eq!(after["kind"], "Deployment");
    assert_eq!(after["name"], "web");
    assert_eq!(
        after["user"],
        "system:serviceaccount:kube-system:replicaset-controller"
    );
    assert_eq!(after["reasons"], json!(["pending_evaluation"]));
    assert_eq!(attempts[1].actor, "k8s.stnmt");
}

#[tokio::test]
async fn admission_uses_the_namespace_mapping_denies_unmapped_objects_and_dry_runs_change_nothing()
{
    let k = k8s().await;
    let spec = json!({"containers": [{"name": "web", "image": pinned(&k.approved)}]});
    // No labels: the namespace mapping names TTHC/staging, where the image is approved.
    let r = k
        .validate(review(
            "u-10",
            "Pod",
            "tthc-staging",
            pod(json!({}), spec.clone()),
            false,
        ))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
    // The pending image is not approved for staging either.
    let r = k
        .validate(review(
            "u-11",
            "Pod",
            "tthc-staging",
            pod(
                json!({}),
                json!({"containers": [{"name": "web", "image": pinned(&k.pending)}]}),
            ),
            false,
        ))
        .await;
    assert_eq!(r["allowed"], false, "{r}");
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("TTHC/staging"),
        "{r}"
    );
    // No labels, no mapping: denied (the configured policy).
    let r = k
        .validate(review(
            "u-12",
            "Pod",
            "other-ns",
            pod(json!({}), spec.clone()),
            false,
        ))
        .await;
    assert_eq!(r["allowed"], false, "{r}");
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("other-ns"),
        "{r}"
    );

    // A dry run is answered the same and recorded nowhere.
    let before = k.t.audit_seq().await;
    let r = k
        .validate(review(
            "u-13",
            "Pod",
            "tthc-prod",
            pod(
                labels(),
                json!({"containers": [{"name": "web", "image": "nginx:1.27"}]}),
            ),
            true,
        ))
        .await;
    assert_eq!(r["allowed"], false, "{r}");
    let r = k
        .validate(review(
            "u-14",
            "Pod",
            "tthc-staging",
            pod(json!({}), spec),
            true,
        ))
        .await;
    assert_eq!(r["allowed"], true, "{r}");
    assert_eq!(k.t.audit_seq().await, before);
}

#[tokio::test]
async fn admission_refuses_the_unauthenticated_and_denies_what_it_cannot_judge() {
    let k = k8s().await;
    let good = review(
        "u-20",
        "Pod",
        "tthc-prod",
        pod(
            labels(),
            json!({"containers": [{"name": "web", "image": pinned(&k.approved)}]}),
        ),
        false,
    );
    let owner_token = token(&k.t, "nguyen.van.an").await;
    let before = k.t.audit_seq().await;
    // No token, a wrong token, a role that does not answer reviews.
    let (s, v) = k.post(None, good.to_string()).await;
    assert_eq!(s, 401, "{v}");
    let (s, _) = k
        .post(Some("cg_0000000000000000_nope"), good.to_string())
        .await;
    assert_eq!(s, 401);
    let (s, v) = k.post(Some(&owner_token), good.to_string()).await;
    assert_eq!(s, 403, "{v}");
    // Not an AdmissionReview v1, or without a uid: nothing to answer to.
    for body in [
        "not json".to_owned(),
        json!({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1beta1", "request": {"uid": "x"}}).to_string(),
        json!({"kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1", "request": {"kind": {"kind": "Pod"}}}).to_string(),
    ] {
        let (s, v) = k.post(Some(&k.token), body.clone()).await;
        assert_eq!(s, 400, "{body}: {v}");
        assert_eq!(v["code"], "not_admission_review", "{v}");
    }
    assert_eq!(k.t.audit_seq().await, before);
    // An object with 10,000 containers, or without a pod spec shape: denied with a message.
    let many: Vec<Value> = (0..10_000)
        .map(|i| json!({"name": format!("c{i}"), "image": "web:1"}))
        .collect();
    let r = k
        .validate(review(
            "u-21",
            "Pod",
            "tthc-prod",
            pod(labels(), json!({"containers": many})),
            true,
        ))
        .await;
    assert_eq!(r["allowed"], false, "{r}");
    assert!(
        r["status"]["message"]
            .as_str()
            .unwrap()
            .contains("10000 containers"),
        "{r}"
    );
    let r = k
        .validate(review(
            "u-22",
            "Pod",
            "tthc-prod",
            pod(labels(), json!({"containers": "web"})),
            true,
        ))
        .await;
    assert_eq!(r["allowed"], false, "{r}");
    let mut missing_object = review("u-23", "Pod", "tthc-prod", Value::Null, true);
    missing_object["request"]["object"] = Value::Null;
    let r = k.validate(missing_object).await;
    assert_eq!(r["allowed"], false, "{r}");
    // The same review with the approved image is allowed (the token works).
    assert_eq!(k.validate(good).await["allowed"], true);
    let _ = Principal::operator();
}

// ---- Native TLS -------------------------------------------------------------------------------

/// Runs `openssl` in `dir`; the test fails with its error output if it fails.
pub(crate) fn openssl(dir: &std::path::Path, args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A self-signed CA `ca.pem`/`ca.key` in `dir`.
pub(crate) fn self_signed_ca(dir: &std::path::Path, ca: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{ca}.key"),
            "-out",
            &format!("{ca}.pem"),
            "-days",
            "2",
            "-subj",
            &format!("/CN={ca}"),
        ],
    );
}

/// A CA and a certificate it signs for 127.0.0.1 (`name.pem`, `name.key`, mode 0600).
fn issue_cert(dir: &std::path::Path, ca: &str, name: &str) {
    if !dir.join(format!("{ca}.pem")).exists() {
        self_signed_ca(dir, ca);
    }
    std::fs::write(
        dir.join("san.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            &format!("{name}.new.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            "/CN=changegate",
        ],
    );
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{ca}.pem"),
            "-CAkey",
            &format!("{ca}.key"),
            "-CAcreateserial",
            "-out",
            &format!("{name}.new.pem"),
            "-days",
            "1",
            "-extfile",
            "san.ext",
        ],
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join(format!("{name}.new.key")),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    // Key first, then the certificate, each by rename (as a certificate manager swaps them).
    std::fs::rename(
        dir.join(format!("{name}.new.key")),
        dir.join(format!("{name}.key")),
    )
    .unwrap();
    std::fs::rename(
        dir.join(format!("{name}.new.pem")),
        dir.join(format!("{name}.pem")),
    )
    .unwrap();
}

fn trusting(dir: &std::path::Path, ca: &str) -> reqwest::Client {
    let pem = std::fs::read(dir.join(format!("{ca}.pem"))).unwrap();
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).unwrap())
        .build()
        .unwrap()
}

#[tokio::test]
async fn serve_speaks_tls_with_the_configured_certificate_and_reloads_a_renewed_one() {
    let certs = tempfile::tempdir().unwrap();
    issue_cert(certs.path(), "ca1", "server");
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(&dir).await;
    let mut cfg = config(dir.path(), &url);
    cfg.tls = Some(changegate_server::tls::TlsConfig {
        cert_file: certs.path().join("server.pem"),
        key_file: certs.path().join("server.key"),
        ..Default::default()
    });
    let (_app, base, _stop) = serve(&cfg).await;
    let base = base.replace("http://", "https://");
    let r = trusting(certs.path(), "ca1")
        .get(format!("{base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Plain HTTP is not served on the TLS port.
    assert!(
        reqwest::get(format!("{}/healthz", base.replace("https://", "http://")))
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true)
    );
    // A certificate from another CA replaces the first without a restart.
    issue_cert(certs.path(), "ca2", "server");
    let client = trusting(certs.path(), "ca2");
    crate::sink::eventually(
        "the renewed certificate",
        std::time::Duration::from_secs(15),
        || async {
            client
                .get(format!("{base}/healthz"))
                .send()
                .await
                .ok()
                .filter(|r| r.status() == 200)
        },
    )
    .await;
    // A key file that others may read is refused at start-up.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        certs.path().join("server.key"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let err = changegate_server::tls::load(cfg.tls.as_ref().unwrap()).unwrap_err();
    assert!(format!("{err:#}").contains("chmod 600"), "{err:#}");
}

// ---- GitHub deployment protection rule ---------------------------------------------------------

/// What the stand-in for GitHub's API was asked.
#[derive(Debug, Clone)]
struct GhCall {
    method: String,
    path: String,
    auth: String,
    body: Value,
}

/// A local server that plays GitHub's part from its documented shapes: token exchange (checks
/// the app JWT with the app's public key), commit lookup, deployment callback.
struct StandIn {
    url: String,
    calls: std::sync::Arc<std::sync::Mutex<Vec<GhCall>>>,
    /// Claims of the JWTs received (iss, iat, exp).
    jwts: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

const INSTALLATION_TOKEN: &str = "ghs_standin_installation_token";

impl StandIn {
    async fn start(
        public_pem: Vec<u8>,
        trees: std::collections::HashMap<String, String>,
    ) -> StandIn {
        use axum::extract::Path as P;
        use axum::http::{HeaderMap, StatusCode};
        use axum::routing::{get, post};
        let calls: std::sync::Arc<std::sync::Mutex<Vec<GhCall>>> = Default::default();
        let jwts: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = Default::default();
        let auth = |h: &HeaderMap| {
            h.get("authorization")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned()
        };
        let (c1, j1) = (calls.clone(), jwts.clone());
        let (c2, c3) = (calls.clone(), calls.clone());
        let app = axum::Router::new()
            .route(
                "/app/installations/{id}/access_tokens",
                post(move |P(id): P<i64>, h: HeaderMap| {
                    let (c1, j1, public_pem) = (c1.clone(), j1.clone(), public_pem.clone());
                    async move {
                        let a = auth(&h);
                        c1.lock().unwrap().push(GhCall { method: "POST".into(), path: format!("/app/installations/{id}/access_tokens"), auth: a.clone(), body: Value::Null });
                        let key = jsonwebtoken::DecodingKey::from_rsa_pem(&public_pem).unwrap();
                        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
                        v.set_required_spec_claims(&["exp", "iat", "iss"]);
                        match jsonwebtoken::decode::<Value>(a.trim_start_matches("Bearer "), &key, &v) {
                            Ok(t) => {
                                j1.lock().unwrap().push(t.claims);
                                (StatusCode::CREATED, axum::Json(json!({"token": INSTALLATION_TOKEN, "expires_at": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()})))
                            }
                            Err(e) => (StatusCode::UNAUTHORIZED, axum::Json(json!({"message": e.to_string()}))),
                        }
                    }
                }),
            )
            .route(
                "/repos/{o}/{r}/git/commits/{sha}",
                get(move |P((o, r, sha)): P<(String, String, String)>, h: HeaderMap| {
                    let (c2, trees) = (c2.clone(), trees.clone());
                    async move {
                        c2.lock().unwrap().push(GhCall { method: "GET".into(), path: format!("/repos/{o}/{r}/git/commits/{sha}"), auth: auth(&h), body: Value::Null });
                        match trees.get(&sha) {
                            Some(t) if auth(&h) == format!("Bearer {INSTALLATION_TOKEN}") => (StatusCode::OK, axum::Json(json!({"sha": sha, "tree": {"sha": t, "url": "…"}, "message": "…"}))),
                            Some(_) => (StatusCode::UNAUTHORIZED, axum::Json(json!({"message": "Bad credentials"}))),
                            None => (StatusCode::NOT_FOUND, axum::Json(json!({"message": "Not Found"}))),
                        }
                    }
                }),
            )
            .route(
                "/repos/{o}/{r}/actions/runs/{run}/deployment_protection_rule",
                post(move |P((o, r, run)): P<(String, String, String)>, h: HeaderMap, body: String| {
                    let c3 = c3.clone();
                    async move {
                        c3.lock().unwrap().push(GhCall { method: "POST".into(), path: format!("/repos/{o}/{r}/actions/runs/{run}/deployment_protection_rule"), auth: auth(&h), body: serde_json::from_str(&body).unwrap_or(Value::Null) });
                        StatusCode::NO_CONTENT
                    }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        StandIn { url, calls, jwts }
    }

    fn calls(&self) -> Vec<GhCall> {
        self.calls.lock().unwrap().clone()
    }

    fn callbacks(&self) -> Vec<GhCall> {
        self.calls()
            .into_iter()
            .filter(|c| c.path.ends_with("/deployment_protection_rule"))
            .collect()
    }
}

const GH_SECRET: &str = "webhook-secret-of-the-stnmt-app";

fn gh_sign(body: &str) -> String {
    use hmac::{Hmac, Mac};
    let mut m = <Hmac<sha2::Sha256> as Mac>::new_from_slice(GH_SECRET.as_bytes()).unwrap();
    m.update(body.as_bytes());
    format!("sha256={}", hex::encode(m.finalize().into_bytes()))
}

fn gh_payload(api: &str, environment: &str, sha: &str, run: u32) -> String {
    json!({"action": "requested", "environment": environment, "event": "push", "ref": "refs/heads/main", "sha": sha,
        "deployment_callback_url": format!("{api}/repos/so-tnmt/tthc/actions/runs/{run}/deployment_protection_rule"),
        "deployment": null, "repository": {"full_name": "so-tnmt/tthc"}, "installation": {"id": 456}, "sender": {"login": "nguyen-van-an"}})
    .to_string()
}

async fn gh_post(
    t: &TestApp,
    delivery: &str,
    signature: Option<String>,
    body: &str,
) -> (u16, Value) {
    let mut r = reqwest::Client::new()
        .post(format!("{}/integrations/github/webhook", t.url))
        .header("content-type", "application/json")
        .header("x-github-event", "deployment_protection_rule")
        .header("x-github-delivery", delivery)
        .body(body.to_owned());
    if let Some(s) = signature {
        r = r.header("x-hub-signature-256", s);
    }
    let r = r.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn github_deployment_protection_rule_is_answered_on_sign_off_through_the_stand_in() {
    use std::os::unix::fs::PermissionsExt;
    let keys = tempfile::tempdir().unwrap();
    openssl(keys.path(), &["genrsa", "-out", "app.pem", "2048"]);
    openssl(
        keys.path(),
        &["rsa", "-in", "app.pem", "-pubout", "-out", "app.pub"],
    );
    std::fs::write(keys.path().join("secret"), GH_SECRET).unwrap();
    for f in ["app.pem", "secret"] {
        std::fs::set_permissions(keys.path().join(f), std::fs::Permissions::from_mode(0o600))
            .unwrap();
    }
    let (commit, tree) = (random_oid(), random_oid());
    let gh = StandIn::start(
        std::fs::read(keys.path().join("app.pub")).unwrap(),
        [(commit.clone(), tree.clone())].into(),
    )
    .await;
    let api = gh.url.clone();
    let kp = keys.path().to_owned();
    let t = spawn_app_with(move |cfg| {
        cfg.github = Some(
            toml::from_str(&format!(
                r#"
                app_id = "12345"
                private_key_file = "{}"
                webhook_secret_file = "{}"
                api_url = "{api}"
                [[environments]]
                repository = "so-tnmt/tthc"
                environment = "production"
                system = "TTHC"
                env = "production"
                "#,
                kp.join("app.pem").display(),
                kp.join("secret").display()
            ))
            .unwrap(),
        );
    })
    .await;
    let w = t.world().await;
    // The commit's change request waits for PA05.
    let cr = ok(w
        .owner
        .file_change(&change("TTHC", &["production"], vec![git(&commit, &tree)]))
        .await);
    ok(w.owner.submit(cr.id).await);

    let body = gh_payload(&gh.url, "production", &commit, 1001);
    // A bad or missing signature: 401, nothing done.
    let before = t.audit_seq().await;
    let (s, _) = gh_post(&t, "d-1", None, &body).await;
    assert_eq!(s, 401);
    let (s, v) = gh_post(&t, "d-1", Some(gh_sign("another body")), &body).await;
    assert_eq!(s, 401, "{v}");
    assert_eq!(t.audit_seq().await, before);
    assert!(gh.calls().is_empty());

    // Signed: answered at once; the tree is looked up with an installation token; no decision
    // while the evaluation is pending.
    let (s, v) = gh_post(&t, "d-1", Some(gh_sign(&body)), &body).await;
    assert_eq!(s, 202, "{v}");
    assert_eq!(v["status"], "queued");
    crate::sink::eventually(
        "the tree lookup",
        std::time::Duration::from_secs(10),
        || async {
            gh.calls()
                .iter()
                .any(|c| c.path.contains("/git/commits/"))
                .then_some(())
        },
    )
    .await;
    let jwt = gh.jwts.lock().unwrap()[0].clone();
    assert_eq!(jwt["iss"], "12345");
    let (iat, exp) = (jwt["iat"].as_i64().unwrap(), jwt["exp"].as_i64().unwrap());
    let now = chrono::Utc::now().timestamp();
    assert!(iat <= now - 50 && exp <= now + 600 && exp > now, "{jwt}");
    let lookup = gh
        .calls()
        .into_iter()
        .find(|c| c.path.contains("/git/commits/"))
        .unwrap();
    assert_eq!(
        lookup.path,
        format!("/repos/so-tnmt/tthc/git/commits/{commit}")
    );
    assert_eq!(lookup.auth, format!("Bearer {INSTALLATION_TOKEN}"));
    assert!(gh.callbacks().is_empty(), "{:?}", gh.callbacks());

    // The same delivery again is answered once.
    let (s, v) = gh_post(&t, "d-1", Some(gh_sign(&body)), &body).await;
    assert_eq!((s, v["status"].as_str()), (200, Some("duplicate")), "{v}");

    // PA05 signs off: GitHub is called back, approved, with the installation token.
    let cr = ok(w.reviewer.change(cr.id).await);
    ok(w.reviewer.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
    let cb = crate::sink::eventually(
        "the callback",
        std::time::Duration::from_secs(10),
        || async { gh.callbacks().first().cloned() },
    )
    .await;
    assert_eq!(cb.method, "POST");
    assert_eq!(
        cb.path,
        "/repos/so-tnmt/tthc/actions/runs/1001/deployment_protection_rule"
    );
    assert_eq!(cb.auth, format!("Bearer {INSTALLATION_TOKEN}"));
    assert_eq!(cb.body["environment_name"], "production");
    assert_eq!(cb.body["state"], "approved");
    assert!(
        cb.body["comment"]
            .as_str()
            .unwrap()
            .contains(&cr.id.to_string()),
        "{}",
        cb.body
    );

    // An environment no mapping names is rejected (it will not clear by itself).
    let body = gh_payload(&gh.url, "staging-unmapped", &commit, 1002);
    let (s, _) = gh_post(&t, "d-2", Some(gh_sign(&body)), &body).await;
    assert_eq!(s, 202);
    let cb = crate::sink::eventually(
        "the rejection",
        std::time::Duration::from_secs(10),
        || async {
            gh.callbacks()
                .into_iter()
                .find(|c| c.path.contains("/1002/"))
        },
    )
    .await;
    assert_eq!(cb.body["state"], "rejected");
    assert_eq!(cb.body["environment_name"], "staging-unmapped");
    // A callback URL outside the configured API is refused (the token goes nowhere else).
    let body = gh_payload("https://attacker.example", "production", &commit, 1003);
    let (s, v) = gh_post(&t, "d-3", Some(gh_sign(&body)), &body).await;
    assert_eq!(s, 422, "{v}");
    assert_eq!(gh.callbacks().len(), 2);
    // Recorded once GitHub has the answer (the callback comes first).
    crate::sink::eventually(
        "the audit of both answers",
        std::time::Duration::from_secs(10),
        || async {
            let events = ok(w.auditor.audit(0, 1000).await).events;
            (events
                .iter()
                .any(|e| e.action == "github.deployment_approved")
                && events
                    .iter()
                    .any(|e| e.action == "github.deployment_rejected"))
            .then_some(())
        },
    )
    .await;
}
