//! Bad input, bad credentials and missing rights: the right problem, and nothing changes.

use changegate_api::{NewOrganisation, NewSystem, NewToken, Problem};
use changegate_app::Principal;
use changegate_client::Client;
use changegate_store::entity::api_token;
use changegate_store::sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter,
};
use changegate_tests::*;
use reqwest::Method;

/// Sends a raw request and returns its status and problem document, checking the content type.
async fn raw(
    c: &Client,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: impl Into<Vec<u8>>,
) -> Problem {
    let (status, ct, bytes) = c
        .raw(method, path, content_type, body.into())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ct,
        "application/problem+json",
        "{status} {}",
        String::from_utf8_lossy(&bytes)
    );
    let p: Problem = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not a problem ({e}): {}", String::from_utf8_lossy(&bytes)));
    assert_eq!(p.status, status.as_u16(), "{p:?}");
    assert_eq!(p.type_, format!("urn:changegate:problem:{}", p.code));
    p
}

fn expect(p: &Problem, status: u16, code: &str) {
    assert_eq!((p.status, p.code.as_str()), (status, code), "{p:?}");
}

const JSON: Option<&str> = Some("application/json");

fn valid_change_json() -> serde_json::Value {
    serde_json::json!({
        "system": "TTHC",
        "kind": "software",
        "title": "Nâng cấp",
        "subjects": [{"type": "git_commit", "commit": random_oid(), "tree": random_oid()}]
    })
}

#[tokio::test]
async fn malformed_bodies_are_refused_with_the_right_problem_and_change_nothing() {
    let t = spawn_app().await;
    let w = t.world().await;
    let seq = t.audit_seq().await;
    let path = "/api/v1/change-requests";

    let p = raw(&w.owner, Method::POST, path, JSON, r#"{"system": "TTHC", "#).await;
    expect(&p, 400, "malformed_json");

    let mut unknown = valid_change_json();
    unknown["priority"] = "khẩn".into();
    let p = raw(&w.owner, Method::POST, path, JSON, unknown.to_string()).await;
    expect(&p, 422, "invalid_body");

    let wrong_type = serde_json::json!({"system": "TTHC", "kind": "software", "title": 5});
    let p = raw(&w.owner, Method::POST, path, JSON, wrong_type.to_string()).await;
    expect(&p, 422, "invalid_body");

    let body = valid_change_json().to_string();
    let p = raw(
        &w.owner,
        Method::POST,
        path,
        Some("text/plain"),
        body.clone(),
    )
    .await;
    expect(&p, 415, "unsupported_media_type");
    let p = raw(&w.owner, Method::POST, path, None, body.clone()).await;
    expect(&p, 415, "unsupported_media_type");

    let mut big = valid_change_json();
    big["description"] = "ệ".repeat(400_000).into();
    let big = big.to_string();
    assert!(big.len() > changegate_server::BODY_LIMIT);
    let p = raw(&w.owner, Method::POST, path, JSON, big).await;
    expect(&p, 413, "payload_too_large");

    // The same body, well formed, is accepted: the refusals were about the input.
    let (status, _, _) = w
        .owner
        .raw(Method::POST, path, JSON, body.into_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.as_u16(), 201);
    assert_eq!(t.audit_seq().await, seq + 1);
    assert_eq!(ok(w.owner.changes(None, None).await).items.len(), 1);
}

#[tokio::test]
async fn a_security_level_outside_1_to_5_is_refused_naming_level() {
    let t = spawn_app().await;
    t.world().await;
    let seq = t.audit_seq().await;
    for level in [0, 6] {
        let p = problem(
            t.admin
                .create_system(&NewSystem {
                    code: format!("CAP-{level}"),
                    name: "Hệ thống thử".into(),
                    owner_org: "STNMT".into(),
                    operating_unit: String::new(),
                    level,
                    population_db: false,
                    environments: vec![],
                    components: vec![],
                    last_review: None,
                })
                .await,
        );
        expect(&p, 422, "validation_failed");
        assert_eq!(p.errors[0].field, "level");
        let p = problem(t.admin.system(&format!("CAP-{level}")).await);
        expect(&p, 404, "not_found");
    }
    assert_eq!(t.audit_seq().await, seq);
}

#[tokio::test]
async fn malformed_subjects_are_refused_naming_the_field() {
    let t = spawn_app().await;
    let w = t.world().await;
    let seq = t.audit_seq().await;
    for bad in [
        "abc",
        &random_oid()[..39],
        &format!("{}0", random_oid()),
        &random_oid().replace(|c: char| c.is_ascii_digit(), "g"),
    ] {
        let p = problem(
            w.owner
                .file_change(&change("TTHC", &[], vec![git(bad, &random_oid())]))
                .await,
        );
        expect(&p, 422, "validation_failed");
        assert_eq!(p.errors[0].field, "subjects[0].commit", "{bad}");
    }
    let p = problem(
        w.owner
            .file_change(&change(
                "TTHC",
                &[],
                vec![artifact(&random_digest()), git(&random_oid(), "xyz")],
            ))
            .await,
    );
    assert_eq!(p.errors[0].field, "subjects[1].tree");
    let digest = random_digest();
    for bad in [
        digest.trim_start_matches("sha256:").to_owned(),
        format!("sha512:{}", digest.trim_start_matches("sha256:")),
        digest[..digest.len() - 1].to_owned(),
        format!("{digest}0"),
        "sha256:".to_owned(),
    ] {
        let p = problem(
            w.owner
                .file_change(&change("TTHC", &[], vec![artifact(&bad)]))
                .await,
        );
        expect(&p, 422, "validation_failed");
        assert_eq!(p.errors[0].field, "subjects[0].digest", "{bad}");
    }
    assert_eq!(t.audit_seq().await, seq);
    assert!(ok(w.owner.changes(None, None).await).items.is_empty());
}

#[tokio::test]
async fn the_gate_refuses_a_malformed_question_and_fails_closed() {
    let t = spawn_app().await;
    let w = t.world().await;
    let p = problem(w.ci.gate(&ask_commit("TTHC", "production", "HEAD")).await);
    expect(&p, 422, "validation_failed");
    assert_eq!(p.errors[0].field, "commit");
    assert_eq!(p.decision.as_ref().map(|d| d.as_str()), Some("deny"));

    let p = problem(w.ci.gate(&ask("TTHC", "production")).await);
    expect(&p, 422, "validation_failed");
    assert_eq!(p.decision.as_ref().map(|d| d.as_str()), Some("deny"));

    let p = problem(
        w.ci.gate(&changegate_api::GateParams {
            wait: None,
            nonce: None,
            artifact: Some("sha256:xyz".into()),
            ..ask("TTHC", "production")
        })
        .await,
    );
    assert_eq!(p.errors[0].field, "artifact");

    let p = raw(&w.ci, Method::GET, "/api/v1/gate?system=TTHC", None, "").await;
    assert_eq!(p.status, 400, "{p:?}");
}

#[tokio::test]
async fn requests_without_a_valid_token_are_unauthorized() {
    let t = spawn_app().await;
    let w = t.world().await;
    let seq = t.audit_seq().await;
    let q = ask_commit("TTHC", "production", &random_oid());
    let p = problem(t.anon.gate(&q).await);
    expect(&p, 401, "unauthorized");
    let p = raw(&t.anon, Method::GET, "/api/v1/me", None, "").await;
    expect(&p, 401, "unauthorized");
    for garbage in [
        "garbage",
        "cg_0123456789abcdef_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "cg_zz_x",
    ] {
        let p = problem(t.anon.with_token(garbage).gate(&q).await);
        expect(&p, 401, "unauthorized");
    }
    // A real token's public part with a wrong secret.
    let me = ok(w.ci.tokens().await);
    let forged = format!("cg_{}_{}", me[0].id, "B".repeat(43));
    let p = problem(t.anon.with_token(forged).me().await);
    expect(&p, 401, "unauthorized");
    let p = problem(t.anon.file_change(&change("TTHC", &[], vec![])).await);
    expect(&p, 401, "unauthorized");
    // Credentials are checked before the body is read.
    let p = raw(&t.anon, Method::POST, "/api/v1/change-requests", JSON, "{").await;
    expect(&p, 401, "unauthorized");
    assert_eq!(t.audit_seq().await, seq);
}

#[tokio::test]
async fn an_expired_token_is_refused_as_token_expired() {
    let t = spawn_app().await;
    t.world().await;
    let created = t
        .app
        .create_token(
            &Principal::operator(),
            "ci.stnmt",
            NewToken {
                name: "gitlab-ci tthc".into(),
                expires_in_days: Some(1),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let row = api_token::Entity::find()
        .filter(api_token::Column::PublicId.eq(created.info.id.clone()))
        .one(&t.app.db)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|| panic!("no token row"));
    let mut am: api_token::ActiveModel = row.into();
    am.expires_at = Set(chrono::Utc::now() - chrono::Duration::minutes(1));
    am.update(&t.app.db).await.unwrap_or_else(|e| panic!("{e}"));
    let c = t.anon.with_token(created.token);
    let p = problem(
        c.gate(&ask_commit("TTHC", "production", &random_oid()))
            .await,
    );
    expect(&p, 401, "token_expired");
    let p = problem(c.me().await);
    expect(&p, 401, "token_expired");
}

#[tokio::test]
async fn a_revoked_token_is_refused_at_once() {
    let t = spawn_app().await;
    let w = t.world().await;
    assert_eq!(ok(w.ci.me().await).username, "ci.stnmt");
    let tokens = ok(w.ci.tokens().await);
    assert_eq!(tokens.len(), 1);
    let revoked = ok(w.ci.revoke_token(&tokens[0].id).await);
    assert!(revoked.revoked_at.is_some());
    let p = problem(w.ci.me().await);
    expect(&p, 401, "unauthorized");
    let p = problem(
        w.ci.gate(&ask_commit("TTHC", "production", &random_oid()))
            .await,
    );
    expect(&p, 401, "unauthorized");
    // Other people's tokens still work.
    assert_eq!(ok(w.owner.me().await).username, "nguyen.van.an");
}

#[tokio::test]
async fn actions_outside_a_roles_rights_are_forbidden_and_change_nothing() {
    let t = spawn_app().await;
    let w = t.world().await;
    let seq = t.audit_seq().await;
    let p = problem(
        w.owner
            .create_system(&NewSystem {
                code: "MOI".into(),
                name: "Hệ thống mới".into(),
                owner_org: "STNMT".into(),
                operating_unit: String::new(),
                level: 3,
                population_db: true,
                environments: vec![],
                components: vec![],
                last_review: None,
            })
            .await,
    );
    expect(&p, 403, "forbidden");
    let p = problem(
        w.reviewer
            .create_organisation(&NewOrganisation {
                code: "GIA".into(),
                name: "Tổ chức giả".into(),
                kind: "owner".into(),
            })
            .await,
    );
    expect(&p, 403, "forbidden");
    let p = problem(
        w.ci.file_change(&change(
            "TTHC",
            &[],
            vec![git(&random_oid(), &random_oid())],
        ))
        .await,
    );
    expect(&p, 403, "forbidden");
    let p = problem(
        w.reviewer
            .file_change(&change(
                "TTHC",
                &[],
                vec![git(&random_oid(), &random_oid())],
            ))
            .await,
    );
    expect(&p, 403, "forbidden");
    let cr = ok(w
        .owner
        .file_change(&change(
            "TTHC",
            &[],
            vec![git(&random_oid(), &random_oid())],
        ))
        .await);
    ok(w.owner.submit(cr.id).await);
    let seq_after = t.audit_seq().await;
    assert_eq!(seq_after, seq + 2);
    let p = problem(w.auditor.sign_off(cr.id, &sign_off_all(&cr, "pass")).await);
    expect(&p, 403, "forbidden");
    let p = problem(
        w.ci.report_incident(
            "TTHC",
            &changegate_api::NewIncident {
                detected_at: None,
                national_security: false,
                kind: "malware".into(),
                severity: "high".into(),
                summary: "Mã độc".into(),
            },
        )
        .await,
    );
    expect(&p, 403, "forbidden");
    let p = problem(w.owner.audit(0, 10).await);
    expect(&p, 403, "forbidden");
    assert_eq!(t.audit_seq().await, seq_after);
    assert_eq!(ok(w.owner.change(cr.id).await).state, "submitted");
}

#[tokio::test]
async fn unknown_paths_and_methods_answer_with_problems() {
    let t = spawn_app().await;
    let w = t.world().await;
    let p = raw(&w.owner, Method::GET, "/api/v1/khong-co", None, "").await;
    expect(&p, 404, "not_found");
    let p = raw(&t.anon, Method::GET, "/khong-co", None, "").await;
    expect(&p, 404, "not_found");
    let p = raw(
        &w.owner,
        Method::GET,
        "/api/v1/change-requests/999999",
        None,
        "",
    )
    .await;
    expect(&p, 404, "not_found");
    let p = raw(
        &w.owner,
        Method::GET,
        "/api/v1/change-requests/abc",
        None,
        "",
    )
    .await;
    expect(&p, 404, "not_found");
    let p = raw(
        &w.owner,
        Method::DELETE,
        "/api/v1/change-requests/1",
        None,
        "",
    )
    .await;
    expect(&p, 405, "method_not_allowed");
}

#[tokio::test]
async fn a_subject_listed_twice_or_an_environment_the_system_lacks_is_refused() {
    let t = spawn_app().await;
    let w = t.world().await;
    let seq = t.audit_seq().await;
    let (c, tr) = (random_oid(), random_oid());
    let p = problem(
        w.owner
            .file_change(&change("TTHC", &[], vec![git(&c, &tr), git(&c, &tr)]))
            .await,
    );
    expect(&p, 422, "validation_failed");
    assert_eq!(p.errors[0].field, "subjects");
    let p = problem(
        w.owner
            .file_change(&change("DAT-DAI", &["staging"], vec![git(&c, &tr)]))
            .await,
    );
    expect(&p, 422, "validation_failed");
    assert_eq!(p.errors[0].field, "environments[0]");
    assert_eq!(t.audit_seq().await, seq);
}

#[tokio::test]
async fn json_with_a_charset_parameter_is_accepted() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (status, ct, body) = w
        .owner
        .raw(
            Method::POST,
            "/api/v1/change-requests",
            Some("application/json; charset=utf-8"),
            valid_change_json().to_string().into_bytes(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(status.as_u16(), 201, "{}", String::from_utf8_lossy(&body));
    assert!(ct.starts_with("application/json"), "{ct}");
}
