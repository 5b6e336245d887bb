//! The authorization matrix: every endpoint of the server's own OpenAPI document, called by every
//! kind of caller, answers as [`TABLE`] says. An endpoint added to the server without a row here
//! fails the test, so nobody adds an endpoint without deciding who may call it.
//!
//! Every call is one that would succeed for a caller with the right: real ids from a world set up
//! for the test, and a valid body. A refused answer is therefore the authorization's, not the
//! validation's. Each cell gets its own fresh fixture (a new change request in the state the
//! endpoint needs, a new freeze window, incident or token), because an allowed call changes state
//! (a submitted draft cannot be submitted twice) and must not decide what the next caller sees.
//!
//! For each cell it checks: the status; for a refusal, a `application/problem+json` body with the
//! stable code; and the audit chain's head: unchanged by any refusal and any read, advanced by
//! every allowed write (so that the "unchanged" check is known to see writes).

use crate::cli::closed_port;
use changegate_api::{
    ChangeRequest, NewFreezeWindow, NewIncident, NewOrganisation, NewSystem, NewToken, NewUser,
};
use changegate_app::Principal;
use changegate_client::Client;
use changegate_store::entity::api_token;
use changegate_store::sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter,
};
use changegate_tests::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::fmt;

/// What a caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Served with this status.
    Served(u16),
    /// Refused with this status and problem code.
    Refused(u16, &'static str),
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expect::Served(s) => write!(f, "{s}"),
            Expect::Refused(s, c) => write!(f, "{s} {c}"),
        }
    }
}

/// 200.
const R200: Expect = Expect::Served(200);
/// 201 Created.
const R201: Expect = Expect::Served(201);
/// No credentials, or credentials that are not (or no longer) valid.
const NOAUTH: Expect = Expect::Refused(401, "unauthorized");
/// A token past its expiry.
const EXPIRED: Expect = Expect::Refused(401, "token_expired");
/// The caller's role (or organisation) may not do this.
const FORBID: Expect = Expect::Refused(403, "forbidden");
/// Another organisation's system, change, freeze or incident: answered as if it did not exist.
const HIDDEN: Expect = Expect::Refused(404, "not_found");
/// Another organisation's system named in a body: the same answer as a system that does not
/// exist (`validation_failed` naming the field `system`), so its existence is not revealed.
const UNKNOWN: Expect = Expect::Refused(422, "validation_failed");

/// The callers, in the table's column order.
const CALLERS: [&str; 9] = [
    "anonymous",
    "expired token (admin's)",
    "revoked token (admin's)",
    "admin",
    "owner (STNMT, the system's)",
    "owner of another organisation (CUCTHUE)",
    "PA05 reviewer",
    "auditor (SO-TTTT)",
    "ci (STNMT pipeline)",
];

/// What a row's path parameter (`{id}`) names; a fresh one is made for every cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    /// No id (`{code}` is always the STNMT system `TTHC`).
    Nothing,
    /// A draft change request of TTHC filed by the owner.
    Draft,
    /// A submitted change request of TTHC.
    Submitted,
    /// An approved change request of TTHC.
    Approved,
    /// An active freeze window on TTHC declared by the owner.
    Freeze,
    /// An open low-severity incident on TTHC reported by the owner.
    Incident,
    /// An open personal-data breach on TTHC reported by the owner (A05 not yet notified).
    Breach,
    /// An API token of another person of STNMT (`le.thi.binh`), not the caller's.
    Token,
    /// An open condition (remediation item) of an approved change of TTHC.
    Condition,
    /// A condition of TTHC fulfilled by the owner `le.thi.binh`, awaiting PA05.
    Fulfilled,
    /// A fresh active system of STNMT (`{code}` names it instead of TTHC).
    FreshSystem,
    /// A fresh active owner of STNMT (`{username}` names them).
    Person,
    /// A fresh owner of STNMT who was deactivated (`{username}` names them).
    Leaver,
}

struct Row {
    method: &'static str,
    path: &'static str,
    needs: Needs,
    expect: [Expect; 9],
}

const fn row(method: &'static str, path: &'static str, needs: Needs, expect: [Expect; 9]) -> Row {
    Row {
        method,
        path,
        needs,
        expect,
    }
}

use Needs::*;

/// Who may call what. Columns: anonymous, expired token, revoked token, admin, owner of the
/// system's organisation, owner of another organisation, PA05 reviewer, auditor, ci.
#[rustfmt::skip]
static TABLE: &[Row] = &[
    //   method   path                                              needs      anon    expired  revoked admin   owner   other   review  audit   ci
    row("GET",   "/healthz",                                        Nothing,  [R200,   R200,    R200,   R200,   R200,   R200,   R200,   R200,   R200]),
    row("GET",   "/readyz",                                         Nothing,  [R200,   R200,    R200,   R200,   R200,   R200,   R200,   R200,   R200]),
    row("GET",   "/api/v1/keys",                                    Nothing,  [R200,   R200,    R200,   R200,   R200,   R200,   R200,   R200,   R200]),
    // The gate answers every role; another organisation's system is `unknown_system` (200 deny).
    row("GET",   "/api/v1/gate",                                    Nothing,  [NOAUTH, EXPIRED, NOAUTH, R200,   R200,   R200,   R200,   R200,   R200]),
    row("GET",   "/api/v1/me",                                      Nothing,  [NOAUTH, EXPIRED, NOAUTH, R200,   R200,   R200,   R200,   R200,   R200]),
    row("POST",  "/api/v1/organisations",                           Nothing,  [NOAUTH, EXPIRED, NOAUTH, R201,   FORBID, FORBID, FORBID, FORBID, FORBID]),
    row("POST",  "/api/v1/users",                                   Nothing,  [NOAUTH, EXPIRED, NOAUTH, R201,   FORBID, FORBID, FORBID, FORBID, FORBID]),
    // A person issues tokens for themself; a pipeline's token cannot issue tokens.
    row("POST",  "/api/v1/tokens",                                  Nothing,  [NOAUTH, EXPIRED, NOAUTH, R201,   R201,   R201,   R201,   R201,   FORBID]),
    row("GET",   "/api/v1/tokens",                                  Nothing,  [NOAUTH, EXPIRED, NOAUTH, R200,   R200,   R200,   R200,   R200,   R200]),
    // Someone else's token: only an admin revokes it; to anyone else it does not exist.
    row("POST",  "/api/v1/tokens/{id}/revoke",                      Token,    [NOAUTH, EXPIRED, NOAUTH, R200,   HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN]),
    row("POST",  "/api/v1/systems",                                 Nothing,  [NOAUTH, EXPIRED, NOAUTH, R201,   FORBID, FORBID, FORBID, FORBID, FORBID]),
    row("GET",   "/api/v1/systems/{code}",                          Nothing,  [NOAUTH, EXPIRED, NOAUTH, R200,   R200,   HIDDEN, R200,   R200,   R200]),
    row("POST",  "/api/v1/change-requests",                         Nothing,  [NOAUTH, EXPIRED, NOAUTH, FORBID, R201,   UNKNOWN, FORBID, FORBID, FORBID]),
    row("GET",   "/api/v1/change-requests",                         Nothing,  [NOAUTH, EXPIRED, NOAUTH, R200,   R200,   R200,   R200,   R200,   R200]),
    row("GET",   "/api/v1/change-requests/{id}",                    Submitted,[NOAUTH, EXPIRED, NOAUTH, R200,   R200,   HIDDEN, R200,   R200,   R200]),
    row("PATCH", "/api/v1/change-requests/{id}",                    Draft,    [NOAUTH, EXPIRED, NOAUTH, FORBID, R200,   HIDDEN, FORBID, FORBID, FORBID]),
    row("POST",  "/api/v1/change-requests/{id}/submit",             Draft,    [NOAUTH, EXPIRED, NOAUTH, FORBID, R200,   HIDDEN, FORBID, FORBID, FORBID]),
    row("POST",  "/api/v1/change-requests/{id}/withdraw",           Submitted,[NOAUTH, EXPIRED, NOAUTH, FORBID, R200,   HIDDEN, FORBID, FORBID, FORBID]),
    row("POST",  "/api/v1/change-requests/{id}/request-changes",    Submitted,[NOAUTH, EXPIRED, NOAUTH, FORBID, FORBID, HIDDEN, R200,   FORBID, FORBID]),
    row("POST",  "/api/v1/change-requests/{id}/sign-off",           Submitted,[NOAUTH, EXPIRED, NOAUTH, FORBID, FORBID, HIDDEN, R200,   FORBID, FORBID]),
    row("POST",  "/api/v1/change-requests/{id}/revoke",             Approved, [NOAUTH, EXPIRED, NOAUTH, FORBID, FORBID, HIDDEN, R200,   FORBID, FORBID]),
    row("POST",  "/api/v1/deployments",                             Nothing,  [NOAUTH, EXPIRED, NOAUTH, FORBID, R201,   UNKNOWN, FORBID, FORBID, R201]),
    row("GET",   "/api/v1/deployments",                             Nothing,  [NOAUTH, EXPIRED, NOAUTH, R200,   R200,   R200,   R200,   R200,   R200]),
    row("POST",  "/api/v1/systems/{code}/freeze-windows",           Nothing,  [NOAUTH, EXPIRED, NOAUTH, R201,   R201,   HIDDEN, R201,   FORBID, FORBID]),
    row("GET",   "/api/v1/systems/{code}/freeze-windows",           Nothing,  [NOAUTH, EXPIRED, NOAUTH, R200,   R200,   HIDDEN, R200,   R200,   R200]),
    row("POST",  "/api/v1/freeze-windows/{id}/remove",              Freeze,   [NOAUTH, EXPIRED, NOAUTH, R200,   R200,   HIDDEN, R200,   FORBID, FORBID]),
    row("POST",  "/api/v1/systems/{code}/incidents",                Nothing,  [NOAUTH, EXPIRED, NOAUTH, FORBID, R201,   HIDDEN, R201,   R201,   FORBID]),
    // Lifting an incident's block is PA05's call alone; the role is checked before the id.
    row("POST",  "/api/v1/incidents/{id}/resolve",                  Incident, [NOAUTH, EXPIRED, NOAUTH, FORBID, FORBID, FORBID, R200,   FORBID, FORBID]),
    row("POST",  "/api/v1/incidents/{id}/a05-notified",             Breach,   [NOAUTH, EXPIRED, NOAUTH, R200,   R200,   HIDDEN, R200,   FORBID, FORBID]),
    row("POST",  "/api/v1/incidents/{id}/notices",                  Incident, [NOAUTH, EXPIRED, NOAUTH, FORBID, R200,   HIDDEN, R200,   FORBID, FORBID]),
    row("GET",   "/api/v1/audit",                                   Nothing,  [NOAUTH, EXPIRED, NOAUTH, R200,   FORBID, FORBID, R200,   R200,   FORBID]),
    row("POST",  "/api/v1/webhooks",                                Nothing,  [NOAUTH, EXPIRED, NOAUTH, R201,   FORBID, FORBID, FORBID, FORBID, FORBID]),
    row("GET",   "/api/v1/webhooks",                                Nothing,  [NOAUTH, EXPIRED, NOAUTH, R200,   FORBID, FORBID, FORBID, FORBID, FORBID]),
    row("GET",   "/api/v1/webhooks/deliveries",                     Nothing,  [NOAUTH, EXPIRED, NOAUTH, R200,   FORBID, FORBID, FORBID, FORBID, FORBID]),
    // Enforcement beyond the pipeline (issue 13): observed content from pipelines and observers,
    // admission reviews from the cluster's (or a pipeline's) token.
    row("POST",  "/api/v1/observations",                            Nothing,  [NOAUTH, EXPIRED, NOAUTH, FORBID, FORBID, FORBID, FORBID, FORBID, R201]),
    row("GET",   "/api/v1/observations/sources",                    Nothing,  [NOAUTH, EXPIRED, NOAUTH, R200,   R200,   R200,   R200,   R200,   R200]),
    row("POST",  "/k8s/validate",                                   Nothing,  [NOAUTH, EXPIRED, NOAUTH, FORBID, FORBID, FORBID, FORBID, FORBID, R200]),
    // Signed by GitHub, not by a token: with no GitHub App configured, there is nothing there.
    row("POST",  "/integrations/github/webhook",                    Nothing,  [HIDDEN, HIDDEN,  HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN]),
    // Remediation (issue 10): owners see and fulfil their organisation's items; PA05 verifies.
    row("GET",   "/api/v1/remediations",                            Nothing,  [NOAUTH, EXPIRED, NOAUTH, R200,   R200,   R200,   R200,   R200,   R200]),
    row("GET",   "/api/v1/remediations/{id}",                       Condition,[NOAUTH, EXPIRED, NOAUTH, R200,   R200,   HIDDEN, R200,   R200,   R200]),
    row("POST",  "/api/v1/remediations/{id}/fulfil",                Condition,[NOAUTH, EXPIRED, NOAUTH, FORBID, R200,   HIDDEN, FORBID, FORBID, FORBID]),
    row("POST",  "/api/v1/remediations/{id}/verify",                Fulfilled,[NOAUTH, EXPIRED, NOAUTH, FORBID, FORBID, HIDDEN, R200,   FORBID, FORBID]),
    // The registry's life (issue 11): every caller lists what it may see; only an admin edits
    // or retires a system (the role is checked before the code).
    row("GET",   "/api/v1/systems",                                 Nothing,  [NOAUTH, EXPIRED, NOAUTH, R200,   R200,   R200,   R200,   R200,   R200]),
    row("PATCH", "/api/v1/systems/{code}",                          Nothing,  [NOAUTH, EXPIRED, NOAUTH, R200,   FORBID, FORBID, FORBID, FORBID, FORBID]),
    row("POST",  "/api/v1/systems/{code}/retire",                   FreshSystem,[NOAUTH, EXPIRED, NOAUTH, R200, FORBID, FORBID, FORBID, FORBID, FORBID]),
    // Accounts over their life (issue 11): an admin's alone (the role is checked before the
    // username); every caller lists the incidents it may see.
    row("GET",   "/api/v1/users",                                   Nothing,  [NOAUTH, EXPIRED, NOAUTH, R200,   FORBID, FORBID, FORBID, FORBID, FORBID]),
    row("GET",   "/api/v1/users/{username}",                        Person,   [NOAUTH, EXPIRED, NOAUTH, R200,   FORBID, FORBID, FORBID, FORBID, FORBID]),
    row("PATCH", "/api/v1/users/{username}",                        Person,   [NOAUTH, EXPIRED, NOAUTH, R200,   FORBID, FORBID, FORBID, FORBID, FORBID]),
    row("POST",  "/api/v1/users/{username}/deactivate",             Person,   [NOAUTH, EXPIRED, NOAUTH, R200,   FORBID, FORBID, FORBID, FORBID, FORBID]),
    row("POST",  "/api/v1/users/{username}/reactivate",             Leaver,   [NOAUTH, EXPIRED, NOAUTH, R200,   FORBID, FORBID, FORBID, FORBID, FORBID]),
    row("GET",   "/api/v1/incidents",                               Nothing,  [NOAUTH, EXPIRED, NOAUTH, R200,   R200,   R200,   R200,   R200,   R200]),
    // Form 08 (issue 11): the level record and re-levelling are the system's owners' and the
    // admin's; organisations are listed as each caller may see them (`{code}` is STNMT) and
    // edited by an admin; the annual report is for people, not pipelines.
    row("PUT",   "/api/v1/systems/{code}/level-record",             Nothing,  [NOAUTH, EXPIRED, NOAUTH, R200,   R200,   HIDDEN, FORBID, FORBID, FORBID]),
    row("POST",  "/api/v1/systems/{code}/relevel",                  FreshSystem,[NOAUTH, EXPIRED, NOAUTH, R200, R200,   HIDDEN, FORBID, FORBID, FORBID]),
    row("GET",   "/api/v1/organisations",                           Nothing,  [NOAUTH, EXPIRED, NOAUTH, R200,   R200,   R200,   R200,   R200,   R200]),
    row("GET",   "/api/v1/organisations/{code}",                    Nothing,  [NOAUTH, EXPIRED, NOAUTH, R200,   R200,   HIDDEN, R200,   R200,   R200]),
    row("PATCH", "/api/v1/organisations/{code}",                    Nothing,  [NOAUTH, EXPIRED, NOAUTH, R200,   FORBID, FORBID, FORBID, FORBID, FORBID]),
    row("GET",   "/api/v1/reports/annual",                          Nothing,  [NOAUTH, EXPIRED, NOAUTH, R200,   R200,   R200,   R200,   R200,   FORBID]),
    // The 2026 rules (issue 12): the owner or PA05 records a major change's external assessment
    // and a breach's notice fields.
    row("POST",  "/api/v1/change-requests/{id}/external-assessment",Submitted,[NOAUTH, EXPIRED, NOAUTH, FORBID, R200,   HIDDEN, R200,   FORBID, FORBID]),
    row("PUT",   "/api/v1/incidents/{id}/breach",                   Breach,   [NOAUTH, EXPIRED, NOAUTH, FORBID, R200,   HIDDEN, R200,   FORBID, FORBID]),
];

const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// The endpoints the server documents, as `METHOD path`.
async fn documented_endpoints(t: &TestApp) -> BTreeSet<String> {
    let (status, _, body) = ok(t
        .anon
        .raw(Method::GET, "/api/openapi.json", None, vec![])
        .await);
    assert_eq!(status.as_u16(), 200, "the OpenAPI document is public");
    let doc: Value = serde_json::from_slice(&body).expect("the OpenAPI document is JSON");
    let paths = doc["paths"].as_object().expect("paths in the document");
    let mut out = BTreeSet::new();
    for (path, item) in paths {
        for method in [
            "get", "put", "post", "delete", "options", "head", "patch", "trace",
        ] {
            if item.get(method).is_some() {
                out.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    out
}

/// The id a cell's path names, and the change request behind it if any.
struct Fixture {
    id: String,
    change: Option<ChangeRequest>,
}

async fn fixture(t: &TestApp, w: &World, needs: Needs) -> Fixture {
    let fresh_change = || {
        change(
            "TTHC",
            &["production"],
            vec![git(&random_oid(), &random_oid())],
        )
    };
    let of_change = |c: ChangeRequest| Fixture {
        id: c.id.to_string(),
        change: Some(c),
    };
    let of_id = |id: i64| Fixture {
        id: id.to_string(),
        change: None,
    };
    let incident = |kind: &str| NewIncident {
        detected_at: None,
        national_security: false,
        kind: kind.into(),
        severity: "low".into(),
        summary: "Truy cập bất thường từ địa chỉ IP chưa xác định".into(),
    };
    match needs {
        Nothing => Fixture {
            id: String::new(),
            change: None,
        },
        Draft => of_change(ok(w.owner.file_change(&fresh_change()).await)),
        Submitted => {
            let c = ok(w.owner.file_change(&fresh_change()).await);
            of_change(ok(w.owner.submit(c.id).await))
        }
        Approved => of_change(t.approved(w, &fresh_change()).await),
        Freeze => of_id(ok(w.owner.create_freeze_window("TTHC", &future_freeze()).await).id),
        Incident => of_id(ok(w.owner.report_incident("TTHC", &incident("other")).await).id),
        Breach => of_id(
            ok(w.owner
                .report_incident("TTHC", &incident("data_breach"))
                .await)
            .id,
        ),
        Condition | Fulfilled => {
            let mut c = fresh_change();
            c.environments = vec!["staging".into()];
            let cr = ok(w.owner.file_change(&c).await);
            ok(w.owner.submit(cr.id).await);
            let mut s = sign_off_all(&cr, "pass");
            s.conditions = vec!["Bổ sung hồ sơ CO/CQ trước khi vận hành".into()];
            ok(w.reviewer.sign_off(cr.id, &s).await);
            let q = [("change_request", cr.id.to_string())];
            let id = ok(w.owner.remediations(&q).await).items[0].id;
            if needs == Fulfilled {
                ok(w.owner2.fulfil(id, "Đã bổ sung hồ sơ").await);
            }
            of_id(id)
        }
        FreshSystem => {
            let code = format!("HT-{}", &random_oid()[..8]).to_uppercase();
            t.system(&code, "STNMT", 3, &["production"]).await;
            Fixture {
                id: code,
                change: None,
            }
        }
        Person | Leaver => {
            let username = format!("nv.{}", &random_oid()[..10]);
            let op = Principal::operator();
            t.app
                .create_user(
                    &op,
                    NewUser {
                        username: username.clone(),
                        display_name: "Nhân Viên Mới".into(),
                        org: "STNMT".into(),
                        role: "owner".into(),
                    },
                )
                .await
                .expect("a fresh owner");
            if needs == Leaver {
                t.app
                    .deactivate_user(&op, &username, "Nghỉ việc")
                    .await
                    .expect("deactivated");
            }
            Fixture {
                id: username,
                change: None,
            }
        }
        Token => {
            let tok = t
                .app
                .create_token(
                    &Principal::operator(),
                    "le.thi.binh",
                    NewToken {
                        name: "máy tính xách tay".into(),
                        expires_in_days: Some(30),
                    },
                )
                .await
                .expect("a token of le.thi.binh");
            Fixture {
                id: tok.info.id,
                change: None,
            }
        }
    }
}

/// A freeze window a month from now (so that it does not close the gate during the test).
fn future_freeze() -> NewFreezeWindow {
    let start = chrono::Utc::now() + chrono::Duration::days(30);
    NewFreezeWindow {
        environment: Some("production".into()),
        starts_at: Some(start),
        ends_at: Some(start + chrono::Duration::hours(6)),
        cron: None,
        duration_minutes: None,
        reason: "Bảo trì hạ tầng mạng".into(),
    }
}

/// The concrete path (with query) and body of a cell: a request that succeeds for a caller with
/// the right. `n` makes names unique per cell.
fn request(
    row: &Row,
    fx: &Fixture,
    n: usize,
    (approved_commit, approved_tree): (&str, &str),
) -> (String, Option<Value>) {
    let code = if row.needs == FreshSystem {
        fx.id.as_str()
    } else if row.path.starts_with("/api/v1/organisations/") {
        "STNMT"
    } else {
        "TTHC"
    };
    let mut path = row
        .path
        .replace("{code}", code)
        .replace("{id}", &fx.id)
        .replace("{username}", &fx.id);
    let body = match (row.method, row.path) {
        ("GET", "/api/v1/gate") => {
            path.push_str(&format!(
                "?system=TTHC&env=production&commit={approved_commit}"
            ));
            None
        }
        ("GET", "/api/v1/reports/annual") => {
            path.push_str("?year=2026");
            None
        }
        ("GET", _) => None,
        ("POST", "/api/v1/organisations") => Some(json!(NewOrganisation {
            code: format!("DV-{n}"),
            name: format!("Đơn vị {n}"),
            kind: "owner".into(),
        })),
        ("POST", "/api/v1/users") => Some(json!(NewUser {
            username: format!("nguoi.dung.{n}"),
            display_name: format!("Người dùng {n}"),
            org: "STNMT".into(),
            role: "owner".into(),
        })),
        ("POST", "/api/v1/tokens") => Some(json!(NewToken {
            name: format!("máy {n}"),
            expires_in_days: Some(30),
        })),
        ("POST", "/api/v1/systems") => Some(json!(NewSystem {
            code: format!("HT-{n}"),
            name: format!("Hệ thống {n}"),
            owner_org: "STNMT".into(),
            operating_unit: "Trung tâm Công nghệ thông tin".into(),
            level: 3,
            population_db: true,
            environments: vec!["production".into()],
            components: vec![],
            last_review: None,
        })),
        ("POST", "/api/v1/change-requests") => Some(json!(change(
            "TTHC",
            &["production"],
            vec![git(&random_oid(), &random_oid())]
        ))),
        ("PATCH", "/api/v1/change-requests/{id}") => {
            Some(json!({ "title": format!("Nâng cấp mô-đun tra cứu, bản {n}") }))
        }
        ("POST", "/api/v1/change-requests/{id}/request-changes") => {
            Some(json!({ "note": "Bổ sung sơ đồ kiến trúc sau thay đổi" }))
        }
        ("POST", "/api/v1/change-requests/{id}/sign-off") => Some(json!(sign_off_all(
            fx.change.as_ref().expect("the fixture's change"),
            "pass"
        ))),
        ("POST", "/api/v1/change-requests/{id}/revoke") => {
            Some(json!({ "reason": "Phát hiện lỗ hổng sau phê duyệt" }))
        }
        ("POST", "/api/v1/deployments") => Some(json!({
            "system": "TTHC", "environment": "production", "commit": approved_commit,
        })),
        ("POST", "/api/v1/systems/{code}/freeze-windows") => Some(json!(future_freeze())),
        ("POST", "/api/v1/systems/{code}/incidents") => Some(json!(NewIncident {
            detected_at: None,
            national_security: false,
            kind: "other".into(),
            severity: "low".into(),
            summary: format!("Tài khoản dùng chung số {n}"),
        })),
        ("POST", "/api/v1/incidents/{id}/a05-notified") => Some(json!({})),
        ("POST", "/api/v1/incidents/{id}/notices") => Some(json!({
            "kind": "interim", "recipient": "PA05 – Công an tỉnh", "channel": "văn bản",
            "document_number": format!("{n}/BC-STNMT"),
        })),
        ("POST", "/api/v1/observations") => Some(json!({
            "system": "TTHC", "env": "production", "source": format!("web{n}.tthc.local"),
            "subjects": [git(approved_commit, approved_tree)],
        })),
        ("POST", "/k8s/validate") => Some(json!({
            "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
            "request": {"uid": format!("uid-{n}"), "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "namespace": "tthc", "operation": "CREATE", "dryRun": false,
                "object": {"metadata": {"name": "web", "labels": {"changegate.io/system": "TTHC", "changegate.io/env": "production"}},
                    "spec": {"containers": [{"name": "web", "image": format!("registry.local/tthc@sha256:{}", "a".repeat(64))}]}}},
        })),
        ("POST", "/integrations/github/webhook") => Some(json!({ "action": "requested" })),
        ("POST", "/api/v1/remediations/{id}/fulfil") => {
            Some(json!({ "evidence": format!("Đã bổ sung hồ sơ CO/CQ, bản {n}") }))
        }
        ("POST", "/api/v1/remediations/{id}/verify") => {
            Some(json!({ "accepted": true, "note": "Đã kiểm tra" }))
        }
        ("PATCH", "/api/v1/users/{username}") => Some(json!({ "org": "CUCTHUE" })),
        ("PUT", "/api/v1/systems/{code}/level-record") => Some(json!({
            "proposed_level": 3, "approval_status": "approved",
            "approval_decision": {"number": format!("{n}/QĐ-UBND"), "date": "2026-03-12", "issuer": "Ủy ban nhân dân tỉnh"},
            "rules_decision": {"number": "56/QĐ-STNMT", "date": "2026-04-01", "issuer": "Sở Tài nguyên và Môi trường"},
            "plan_deployment": "partly_deployed", "plan_expected_date": "2027-06-30",
        })),
        ("POST", "/api/v1/systems/{code}/relevel") => Some(json!({
            "level": 4, "reason": "Mở rộng kết nối",
            "decision": {"number": format!("{n}/QĐ-UBND"), "date": "2026-11-20", "issuer": "Ủy ban nhân dân tỉnh"},
        })),
        ("PATCH", "/api/v1/organisations/{code}") => Some(json!({
            "contact": {"representative": "Nguyễn Văn A", "representative_title": "Giám đốc",
                "address": format!("{n} Trần Hưng Đạo"), "phone": "0263 3822 000",
                "email": "stnmt@example.gov.vn", "founding_text": "Quyết định số 12/QĐ-UBND"},
        })),
        ("POST", "/api/v1/change-requests/{id}/external-assessment") => Some(json!({
            "organisation": "Trung tâm Giám sát an toàn không gian mạng quốc gia",
            "licence": "Giấy phép số 12/GP-BTTTT",
            "report_ref": format!("Báo cáo đánh giá số {n}/BC-NCSC"),
            "assessed_on": "2026-11-28",
        })),
        ("PUT", "/api/v1/incidents/{id}/breach") => Some(json!({
            "description": "Tài khoản cán bộ bị lộ mật khẩu",
            "data_categories": "Họ tên, số định danh cá nhân",
            "subjects": 1200,
            "consequences": "Nguy cơ lộ lọt thông tin cá nhân",
            "measures": "Khóa tài khoản, đổi mật khẩu",
            "confirmation_ref": format!("Biên bản xác nhận số {n}/BB-STNMT"),
        })),
        ("POST", "/api/v1/users/{username}/deactivate") => {
            Some(json!({ "reason": format!("Nghỉ việc, lần {n}") }))
        }
        ("POST", "/api/v1/users/{username}/reactivate") => None,
        ("PATCH", "/api/v1/systems/{code}") => Some(json!({ "name": format!("Hệ thống {n}") })),
        ("POST", "/api/v1/systems/{code}/retire") => {
            Some(json!({ "reason": format!("Thay thế bởi hệ thống mới, lần {n}") }))
        }
        ("POST", "/api/v1/webhooks") => Some(json!({
            "url": format!("http://127.0.0.1:{}/hook", closed_port()),
            "secret": WEBHOOK_SECRET,
            "events": ["incident.reported"],
        })),
        // Commands without a body.
        ("POST", p)
            if p.ends_with("/submit")
                || p.ends_with("/withdraw")
                || p.ends_with("/remove")
                || p.ends_with("/resolve")
                || p.ends_with("/revoke") =>
        {
            None
        }
        (m, p) => panic!("no request for {m} {p}: add one to request() alongside its row"),
    };
    (path, body)
}

/// Two tokens of the admin: one past its expiry and never used (the server's 30-second token
/// cache never saw it, so the expiry written into its row is what the server reads), and one
/// revoked after use.
async fn dead_tokens(t: &TestApp) -> (String, String) {
    let op = Principal::operator();
    let mk = |name: &'static str| {
        let app = t.app.clone();
        let op = op.clone();
        async move {
            app.create_token(
                &op,
                "quan.tri",
                NewToken {
                    name: name.into(),
                    expires_in_days: Some(30),
                },
            )
            .await
            .expect("admin token")
        }
    };
    let expired = mk("hết hạn").await;
    let row = api_token::Entity::find()
        .filter(api_token::Column::PublicId.eq(&expired.info.id))
        .one(&t.app.db)
        .await
        .unwrap()
        .expect("the token's row");
    let mut am: api_token::ActiveModel = row.into();
    am.expires_at = Set(chrono::Utc::now() - chrono::Duration::minutes(1));
    am.update(&t.app.db).await.unwrap();

    // This one is used first, so that the server's token cache knows it: revocation must take
    // effect at once all the same.
    let revoked = mk("thu hồi").await;
    let me = ok(t.anon.with_token(revoked.token.clone()).me().await);
    assert_eq!(me.username, "quan.tri");
    ok(t.admin.revoke_token(&revoked.info.id).await);
    (expired.token, revoked.token)
}

#[tokio::test]
async fn every_endpoint_answers_every_caller_as_the_authorization_table_says() {
    let t = spawn_app().await;
    let w = t.world().await;

    // The table covers exactly the endpoints the server documents.
    let documented = documented_endpoints(&t).await;
    let tabled: BTreeSet<String> = TABLE
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        tabled.len(),
        TABLE.len(),
        "an endpoint has two rows in TABLE"
    );
    let missing: Vec<&String> = documented.difference(&tabled).collect();
    assert!(
        missing.is_empty(),
        "endpoint(s) in the server's OpenAPI document without a row in the authorization table \
         (tests/e2e/authz.rs, TABLE): {missing:?}. Add a row saying which callers may use each, \
         and a valid request for it in request()."
    );
    let stale: Vec<&String> = tabled.difference(&documented).collect();
    assert!(
        stale.is_empty(),
        "rows of the authorization table for endpoints the server no longer documents: {stale:?}"
    );

    let (expired, revoked) = dead_tokens(&t).await;
    let callers: [&Client; 9] = [
        &t.anon,
        &t.anon.with_token(expired),
        &t.anon.with_token(revoked),
        &t.admin,
        &w.owner,
        &w.other_owner,
        &w.reviewer,
        &w.auditor,
        &w.ci,
    ];
    let (approved_commit, approved_tree) = (random_oid(), random_oid());
    // (This approval also opens the step-up window of the reviewer's token: the matrix's sign-off
    // carries no second-factor code, and `api_second_factor.rs` tests what happens without one.)
    t.approved(
        &w,
        &change(
            "TTHC",
            &["production"],
            vec![git(&approved_commit, &approved_tree)],
        ),
    )
    .await;

    let mut wrong = vec![];
    let mut n = 0;
    for row in TABLE {
        for (col, caller) in callers.iter().enumerate() {
            n += 1;
            let fx = fixture(&t, &w, row.needs).await;
            let (path, body) = request(row, &fx, n, (&approved_commit, &approved_tree));
            let method = Method::from_bytes(row.method.as_bytes()).unwrap();
            let before = t.audit_seq().await;
            let (status, ct, bytes) = ok(caller
                .raw(
                    method,
                    &path,
                    body.as_ref().map(|_| "application/json"),
                    body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
                )
                .await);
            let after = t.audit_seq().await;
            let cell = format!("{} {} as {}", row.method, row.path, CALLERS[col]);
            let answer: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            let code = answer["code"].as_str();
            let expected = row.expect[col];
            let as_expected = match expected {
                Expect::Served(s) => status.as_u16() == s,
                Expect::Refused(s, c) => status.as_u16() == s && code == Some(c),
            };
            if !as_expected {
                wrong.push(format!(
                    "{cell}: expected {expected}, got {} {}: {}",
                    status.as_u16(),
                    code.unwrap_or(""),
                    String::from_utf8_lossy(&bytes)
                        .chars()
                        .take(300)
                        .collect::<String>()
                ));
                continue;
            }
            match expected {
                Expect::Refused(..) => {
                    if !ct.starts_with("application/problem+json") {
                        wrong.push(format!("{cell}: refused with content type {ct:?}"));
                    }
                    if answer["status"].as_u64() != Some(u64::from(status.as_u16())) {
                        wrong.push(format!(
                            "{cell}: the problem's status is {}",
                            answer["status"]
                        ));
                    }
                    if after != before {
                        wrong.push(format!(
                            "{cell}: refused, yet the audit log grew from seq {before} to {after}"
                        ));
                    }
                }
                Expect::Served(_) if row.method == "GET" => {
                    if after != before {
                        wrong.push(format!(
                            "{cell}: a read wrote audit events ({before} to {after})"
                        ));
                    }
                }
                Expect::Served(_) => {
                    if after <= before {
                        wrong.push(format!("{cell}: an allowed write left no audit event"));
                    }
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {n} cells of the authorization matrix answer otherwise than the table says:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    eprintln!(
        "authorization matrix: {} endpoints x {} callers = {n} calls, as the table says ({})",
        TABLE.len(),
        CALLERS.len(),
        backend()
    );
}
