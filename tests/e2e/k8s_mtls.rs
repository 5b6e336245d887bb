//! Client-certificate authentication of the admission webhook (issue 13), on a real
//! `changegate serve` process: `[tls] client_ca_file` and `[[tls.admission_clients]]`.

use crate::cli::token;
use crate::enforce::{openssl, self_signed_ca as ca};
use crate::process::Server;
use changegate_store::entity::audit_event;
use changegate_store::sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use changegate_tests::*;
use serde_json::{Value, json};
use std::path::Path;
use std::time::Duration;

/// A certificate `name.pem`/`name.key` (mode 0600) with subject CN `cn`, signed by `ca`, with
/// the extensions `ext` (one per line).
fn issue(dir: &Path, ca: &str, name: &str, cn: &str, ext: &str) {
    std::fs::write(
        dir.join(format!("{name}.ext")),
        format!("basicConstraints=CA:FALSE\n{ext}\n"),
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
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
            "-subj",
            &format!("/O=Tỉnh/CN={cn}"),
            "-utf8",
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
            &format!("{name}.pem"),
            "-days",
            "1",
            "-extfile",
            &format!("{name}.ext"),
        ],
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        dir.join(format!("{name}.key")),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
}

/// An HTTPS client that trusts `ca1` (the server's CA) and presents `identity` if given.
fn client(certs: &Path, identity: Option<&str>) -> reqwest::Client {
    let ca = std::fs::read(certs.join("ca1.pem")).unwrap();
    let mut b = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).unwrap())
        .timeout(Duration::from_secs(20));
    if let Some(name) = identity {
        let mut pem = std::fs::read(certs.join(format!("{name}.pem"))).unwrap();
        pem.extend(std::fs::read(certs.join(format!("{name}.key"))).unwrap());
        b = b.identity(reqwest::Identity::from_pem(&pem).unwrap());
    }
    b.build().unwrap()
}

fn review(uid: &str, image: &str) -> Value {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": uid, "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "name": "web", "namespace": "tthc-prod", "operation": "CREATE",
            "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web",
                "labels": {"changegate.io/system": "TTHC", "changegate.io/env": "production"}},
                "spec": {"containers": [{"name": "web", "image": image}]}},
            "oldObject": null, "dryRun": false}})
}

async fn post(
    c: &reqwest::Client,
    base: &str,
    token: Option<&str>,
    body: &Value,
) -> reqwest::Result<(u16, Value)> {
    let mut r = c
        .post(format!("{base}/k8s/validate"))
        .header("content-type", "application/json")
        .body(body.to_string());
    if let Some(t) = token {
        r = r.bearer_auth(t);
    }
    let r = r.send().await?;
    let status = r.status().as_u16();
    Ok((status, r.json().await.unwrap_or(Value::Null)))
}

#[tokio::test]
async fn admission_reviews_authenticate_by_client_certificate_and_the_audit_names_it() {
    let t = spawn_app().await;
    let w = t.world().await;
    let approved = random_digest();
    t.approved(
        &w,
        &change("TTHC", &["production"], vec![artifact(&approved)]),
    )
    .await;
    let image = format!("registry.local/tthc@{approved}");
    t.user("k8s.stnmt", "Cụm Kubernetes STNMT", "STNMT", "admission")
        .await;
    let tok = token(&t, "k8s.stnmt").await;

    let certs = tempfile::tempdir().unwrap();
    let c = certs.path();
    ca(c, "ca1");
    ca(c, "ca2");
    issue(
        c,
        "ca1",
        "server",
        "changegate",
        "subjectAltName=IP:127.0.0.1",
    );
    // Accepted by its subject CN.
    issue(
        c,
        "ca1",
        "apiserver",
        "kube-apiserver",
        "extendedKeyUsage=clientAuth",
    );
    // Accepted by a DNS subject alternative name, for another organisation.
    issue(
        c,
        "ca1",
        "cucthue",
        "cluster-b",
        "extendedKeyUsage=clientAuth\nsubjectAltName=DNS:Admission.CucThue.local",
    );
    // Signed by the right CA, named nowhere in the configuration.
    issue(
        c,
        "ca1",
        "intruder",
        "intruder",
        "extendedKeyUsage=clientAuth",
    );
    // The accepted name, signed by another CA.
    issue(
        c,
        "ca2",
        "forged",
        "kube-apiserver",
        "extendedKeyUsage=clientAuth",
    );
    std::fs::copy(c.join("ca1.pem"), c.join("clients.pem")).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("changegate.toml");
    std::fs::write(
        &conf,
        format!(
            r#"
[tls]
cert_file = "{c}/server.pem"
key_file = "{c}/server.key"
client_ca_file = "{c}/clients.pem"

[[tls.admission_clients]]
name = "kube-apiserver"
organisation = "STNMT"

[[tls.admission_clients]]
name = "admission.cucthue.local"
organisation = "CUCTHUE"
"#,
            c = c.display()
        ),
    )
    .unwrap();
    let server = Server::start(dir.path(), &t.database_url, Some(&conf)).await;
    let base = server.url.replace("http://", "https://");

    // The listed certificate, no token: judged, allowed, and the audit names the certificate.
    let apiserver = client(c, Some("apiserver"));
    let (status, v) = post(&apiserver, &base, None, &review("mtls-1", &image))
        .await
        .unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["response"]["uid"], "mtls-1");
    assert_eq!(v["response"]["allowed"], true, "{v}");
    let unapproved = format!("registry.local/tthc@{}", random_digest());
    let (status, v) = post(&apiserver, &base, None, &review("mtls-2", &unapproved))
        .await
        .unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["response"]["allowed"], false, "{v}");
    let events = audit_event::Entity::find()
        .filter(audit_event::Column::Entity.eq("deployment"))
        .filter(audit_event::Column::EntityId.is_in(["mtls-1", "mtls-2"]))
        .all(&t.app.db)
        .await
        .unwrap();
    let mut seen: Vec<(String, String, String, Option<i64>)> = events
        .iter()
        .map(|e| {
            (
                e.entity_id.clone(),
                e.action.clone(),
                e.actor.clone(),
                e.actor_id,
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            (
                "mtls-1".into(),
                "deployment.admission_allowed".into(),
                "cert:kube-apiserver".into(),
                None
            ),
            (
                "mtls-2".into(),
                "deployment.admission_refused".into(),
                "cert:kube-apiserver".into(),
                None
            ),
        ]
    );

    // A certificate accepted by its DNS name acts for its own organisation: STNMT's system is
    // not one it can see, so the approved image is refused.
    let (status, v) = post(
        &client(c, Some("cucthue")),
        &base,
        None,
        &review("mtls-3", &image),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["response"]["allowed"], false, "{v}");
    let actor = audit_event::Entity::find()
        .filter(audit_event::Column::EntityId.eq("mtls-3"))
        .one(&t.app.db)
        .await
        .unwrap()
        .map(|e| e.actor);
    assert_eq!(actor.as_deref(), Some("cert:admission.cucthue.local"));

    // Neither certificate nor token: 401, never an answer.
    let (status, v) = post(&client(c, None), &base, None, &review("mtls-4", &image))
        .await
        .unwrap();
    assert_eq!(status, 401, "{v}");
    assert_eq!(v["code"], "unauthorized", "{v}");
    // A verified certificate whose name is not listed, without a token: 401 naming it.
    let intruder = client(c, Some("intruder"));
    let (status, v) = post(&intruder, &base, None, &review("mtls-5", &image))
        .await
        .unwrap();
    assert_eq!(status, 401, "{v}");
    assert!(v["detail"].as_str().unwrap().contains("intruder"), "{v}");
    // … with a valid token it is the token that answers (and is named).
    let (status, v) = post(&intruder, &base, Some(&tok), &review("mtls-6", &image))
        .await
        .unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["response"]["allowed"], true, "{v}");
    // The token still works without any certificate.
    let (status, v) = post(
        &client(c, None),
        &base,
        Some(&tok),
        &review("mtls-7", &image),
    )
    .await
    .unwrap();
    assert_eq!(status, 200, "{v}");
    // A certificate of the accepted name from another CA fails the handshake.
    let forged = post(
        &client(c, Some("forged")),
        &base,
        None,
        &review("mtls-8", &image),
    )
    .await;
    assert!(forged.is_err(), "{forged:?}");
    let audited = audit_event::Entity::find()
        .filter(audit_event::Column::EntityId.is_in(["mtls-4", "mtls-5", "mtls-8"]))
        .all(&t.app.db)
        .await
        .unwrap();
    assert!(audited.is_empty(), "{audited:?}");
    let actor = audit_event::Entity::find()
        .filter(audit_event::Column::EntityId.eq("mtls-6"))
        .one(&t.app.db)
        .await
        .unwrap()
        .map(|e| e.actor);
    assert_eq!(actor.as_deref(), Some("k8s.stnmt"));

    // The client CA bundle is read again when it changes: now ca2's certificates are the ones.
    let tmp = c.join("clients.new");
    std::fs::copy(c.join("ca2.pem"), &tmp).unwrap();
    std::fs::rename(&tmp, c.join("clients.pem")).unwrap();
    crate::sink::eventually(
        "the renewed client CA bundle",
        Duration::from_secs(15),
        || async {
            post(
                &client(c, Some("forged")),
                &base,
                None,
                &review("mtls-9", &image),
            )
            .await
            .ok()
            .filter(|(s, _)| *s == 200)
        },
    )
    .await;
    let old = post(
        &client(c, Some("apiserver")),
        &base,
        None,
        &review("mtls-10", &image),
    )
    .await;
    assert!(old.is_err(), "{old:?}");
}

#[tokio::test]
async fn client_certificate_settings_that_cannot_work_stop_the_start_naming_the_field() {
    let certs = tempfile::tempdir().unwrap();
    let c = certs.path();
    ca(c, "ca1");
    issue(
        c,
        "ca1",
        "server",
        "changegate",
        "subjectAltName=IP:127.0.0.1",
    );
    std::fs::write(c.join("empty.pem"), "no certificate here\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let url = fresh_database_url(&dir).await;
    let listed = |org: &str| changegate_server::tls::AdmissionClient {
        name: "kube-apiserver".into(),
        organisation: org.into(),
    };
    let base = changegate_server::tls::TlsConfig {
        cert_file: c.join("server.pem"),
        key_file: c.join("server.key"),
        ..Default::default()
    };
    let cases = [
        (
            changegate_server::tls::TlsConfig {
                admission_clients: vec![listed("SO-TTTT")],
                ..base.clone()
            },
            "tls.client_ca_file",
        ),
        (
            changegate_server::tls::TlsConfig {
                client_ca_file: Some(c.join("missing.pem")),
                ..base.clone()
            },
            "tls.client_ca_file",
        ),
        (
            changegate_server::tls::TlsConfig {
                client_ca_file: Some(c.join("empty.pem")),
                ..base.clone()
            },
            "tls.client_ca_file",
        ),
        (
            changegate_server::tls::TlsConfig {
                client_ca_file: Some(c.join("ca1.pem")),
                admission_clients: vec![listed("NO-SUCH-ORG")],
                ..base.clone()
            },
            "tls.admission_clients[0].organisation",
        ),
    ];
    for (tls, field) in cases {
        let mut cfg = config(dir.path(), &url);
        cfg.tls = Some(tls);
        let err = match changegate_server::build(&cfg).await {
            Ok(_) => panic!("started with a bad [tls] ({field})"),
            Err(e) => format!("{e:#}"),
        };
        assert!(err.contains(field), "{field}: {err}");
    }
}
