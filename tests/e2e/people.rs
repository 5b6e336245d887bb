//! Accounts over their life and the incident list (issue 11), through the API and the web UI:
//! someone who left is deactivated and from that instant their token and session are refused,
//! here and on a second replica sharing the database (no cache keeps them alive), they cannot
//! sign in, what they did stays attributed to them; reactivation; a role change ends sessions
//! and tokens; bad input is refused with stable codes and changes nothing; accounts and
//! incidents are filtered, searched without diacritics and paged; the admin page offers "Mở
//! khóa" only for a locked account and asks for a confirmation before deactivating; the admin
//! page and the incident list fit a 390 px phone.

use crate::web_security::Web;
use changegate_api::{EditUser, NewIncident, NewToken};
use changegate_app::Principal;
use changegate_client::Client;
use changegate_store::entity::user;
use changegate_store::sea_orm::sea_query::Expr;
use changegate_store::sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use changegate_tests::browser::Browser;
use changegate_tests::html::{field_value, find_tags, select, snippet};
use changegate_tests::*;

/// A second replica of `t`: its own app (pool, token cache, audit follower) and server on the
/// same database, in a directory of its own (its own token key). Stops when the sender drops.
async fn second_replica(t: &TestApp) -> (String, tokio::sync::oneshot::Sender<()>) {
    let dir = t.dir.path().join(format!("replica-{}", random_oid()));
    let (app, url, tx) = serve(&config(&dir, &t.database_url)).await;
    drop(app);
    (url, tx)
}

/// A new API token of `username` (issued by the operator): the token itself.
async fn token_of(t: &TestApp, username: &str) -> String {
    t.app
        .create_token(
            &Principal::operator(),
            username,
            NewToken {
                name: "people".into(),
                expires_in_days: Some(1),
            },
        )
        .await
        .unwrap()
        .token
}

fn code<T: std::fmt::Debug>(r: Result<T, changegate_client::ClientError>) -> (u16, String) {
    let p = problem(r);
    (p.status, p.code.as_str().to_owned())
}

/// Whether the web client's session still opens the dashboard.
async fn session_works(web: &mut Web) -> bool {
    let r = web.get("/").await;
    r.status == 200
}

/// A second replica, an owner (`roi.di`) signed in on the web with a token used on both
/// replicas: everything a deactivation must end.
struct Leaver {
    a: Client,
    b: Client,
    web_a: Web,
    web_b: Web,
}

async fn leaver(t: &TestApp, url_b: &str) -> Leaver {
    let otp = t.person("roi.di", "Trương Văn Rời", "STNMT", "owner").await;
    let token = token_of(t, "roi.di").await;
    let a = t.anon.with_token(token.clone());
    let b = Client::new(url_b, Some(token)).unwrap();
    let mut web_a = Web::new(&t.url);
    web_a.first_sign_in("roi.di", &otp).await;
    // The same session cookie, presented to the other replica.
    let mut web_b = Web::new(url_b);
    web_b.cookies = web_a.cookies.clone();
    // Both replicas have verified (and cached) the token and the session.
    assert_eq!(ok(a.me().await).username, "roi.di");
    assert_eq!(ok(b.me().await).username, "roi.di");
    assert!(session_works(&mut web_a).await);
    assert!(session_works(&mut web_b).await);
    Leaver { a, b, web_a, web_b }
}

#[tokio::test]
async fn a_deactivated_account_is_refused_at_once_on_every_replica_and_its_history_stays() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (url_b, _stop_b) = second_replica(&t).await;
    let mut l = leaver(&t, &url_b).await;
    // Before leaving, they filed a change and reported an incident.
    let c = ok(l
        .a
        .file_change(&change(
            "TTHC",
            &["production"],
            vec![git(&random_oid(), &random_oid())],
        ))
        .await);
    let incident = ok(l
        .b
        .report_incident(
            "TTHC",
            &NewIncident {
                kind: "other".into(),
                severity: "low".into(),
                summary: "Máy in của bộ phận một cửa gửi dữ liệu ra ngoài.".into(),
                detected_at: None,
                national_security: false,
            },
        )
        .await);

    let gone = ok(t
        .admin
        .deactivate_user("roi.di", "Nghỉ việc từ 01/12/2026")
        .await);
    assert!(!gone.active);
    assert_eq!(
        gone.deactivation_reason.as_deref(),
        Some("Nghỉ việc từ 01/12/2026")
    );
    assert_eq!(gone.deactivated_by.as_deref(), Some("quan.tri"));

    // The very next request, on either replica, without waiting for any poll.
    assert_eq!(code(l.b.me().await), (401, "unauthorized".into()));
    assert_eq!(code(l.a.me().await), (401, "unauthorized".into()));
    assert_eq!(code(l.b.changes(None, None).await).0, 401);
    let r = l.web_b.get("/").await;
    r.assert_redirect(
        "/login",
        "the session of a deactivated account on replica B",
    );
    let r = l.web_a.get("/changes").await;
    r.assert_redirect(
        "/login",
        "the session of a deactivated account on replica A",
    );
    // They cannot sign in again, with the same answer as a wrong password.
    let mut fresh = Web::new(&url_b);
    let r = fresh
        .sign_in("roi.di", crate::web_security::NEW_PASSWORD)
        .await;
    assert_ne!(r.status, 303, "a deactivated account signed in");
    assert!(r.flash_error().is_some(), "{}", snippet(&r.body));
    assert!(!fresh.cookies.contains_key("cg_session"));
    // A new token cannot be issued to the account either.
    let refused = t
        .app
        .create_token(
            &Principal::operator(),
            "roi.di",
            NewToken {
                name: "again".into(),
                expires_in_days: Some(1),
            },
        )
        .await;
    assert!(
        refused.is_err(),
        "a token was issued to a deactivated account"
    );

    // What they did stays theirs.
    assert_eq!(ok(w.owner.change(c.id).await).filed_by, "roi.di");
    let listed = ok(w.reviewer.client().incidents(&[]).await);
    let i = listed.items.iter().find(|i| i.id == incident.id).unwrap();
    assert_eq!(i.reported_by, "roi.di");
    let events = t.audit_actions("user.deactivate").await;
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].actor, "quan.tri");
    assert_eq!(events[0].entity_id, "roi.di");
    let inactive = ok(t.admin.users(&[("status", "inactive".into())]).await);
    assert_eq!(
        inactive
            .items
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        ["roi.di"]
    );

    // Reactivated: the person signs in again and gets new tokens; the old ones stay ended.
    let back = ok(t.admin.reactivate_user("roi.di").await);
    assert!(back.active && back.deactivated_at.is_none());
    assert_eq!(
        code(l.a.me().await).0,
        401,
        "an old token came back to life"
    );
    assert_eq!(
        code(l.b.me().await).0,
        401,
        "an old token came back to life"
    );
    assert!(
        !session_works(&mut l.web_a).await,
        "an old session came back"
    );
    let again = Client::new(&url_b, Some(token_of(&t, "roi.di").await)).unwrap();
    assert_eq!(ok(again.me().await).username, "roi.di");
    let r = fresh
        .sign_in("roi.di", crate::web_security::NEW_PASSWORD)
        .await;
    r.assert_redirect("/", "signing in after the reactivation");
    assert_eq!(t.audit_actions("user.reactivate").await.len(), 1);
}

#[tokio::test]
async fn a_role_change_ends_the_sessions_and_tokens_of_the_account_on_every_replica() {
    let t = spawn_app().await;
    let w = t.world().await;
    let (url_b, _stop_b) = second_replica(&t).await;
    let mut l = leaver(&t, &url_b).await;
    let moved = ok(t
        .admin
        .edit_user(
            "roi.di",
            &EditUser {
                role: Some("auditor".into()),
                org: Some("SO-TTTT".into()),
            },
        )
        .await);
    assert_eq!(
        (moved.role.as_str(), moved.org.as_str()),
        ("auditor", "SO-TTTT")
    );
    assert!(moved.active);
    assert_eq!(code(l.b.me().await).0, 401);
    assert_eq!(code(l.a.me().await).0, 401);
    l.web_b
        .get("/")
        .await
        .assert_redirect("/login", "the session after a role change");
    assert!(!session_works(&mut l.web_a).await);
    // With a new token, the account acts in its new role: an auditor reads every organisation's
    // changes and files none.
    let now = t.anon.with_token(token_of(&t, "roi.di").await);
    let me = ok(now.me().await);
    assert_eq!((me.role.as_str(), me.org.as_str()), ("auditor", "SO-TTTT"));
    let filed = now
        .file_change(&change(
            "TTHC",
            &["production"],
            vec![git(&random_oid(), &random_oid())],
        ))
        .await;
    assert_eq!(code(filed).0, 403);
    let e = t.audit_actions("user.edit").await;
    assert_eq!(e.len(), 1);
    assert!(
        e[0].after
            .as_ref()
            .is_some_and(|a| a.to_string().contains("auditor")),
        "{e:?}"
    );
    drop(w);
}

#[tokio::test]
async fn bad_account_changes_are_refused_with_stable_codes_and_change_nothing() {
    let t = spawn_app().await;
    let w = t.world().await;
    let before = t.audit_seq().await;
    let admin = &t.admin;
    // Unknown accounts.
    assert_eq!(
        code(admin.deactivate_user("khong.co", "x").await),
        (404, "not_found".into())
    );
    assert_eq!(code(admin.reactivate_user("khong.co").await).0, 404);
    assert_eq!(code(admin.user("khong.co").await).0, 404);
    assert_eq!(
        code(
            admin
                .edit_user(
                    "khong.co",
                    &EditUser {
                        role: Some("owner".into()),
                        org: None
                    }
                )
                .await
        )
        .0,
        404
    );
    // changegate's own jobs account is not an account one manages.
    assert_eq!(code(admin.deactivate_user("changegate", "x").await).0, 404);
    // Oneself.
    assert_eq!(
        code(admin.deactivate_user("quan.tri", "tự khóa").await),
        (409, "own_account".into())
    );
    assert_eq!(
        code(
            admin
                .edit_user(
                    "quan.tri",
                    &EditUser {
                        role: Some("auditor".into()),
                        org: None
                    }
                )
                .await
        ),
        (409, "own_account".into())
    );
    // Role outside the list, a role that does not fit the organisation, an unknown organisation,
    // nothing to change, no reason.
    let p = problem(
        admin
            .edit_user(
                "nguyen.van.an",
                &EditUser {
                    role: Some("superuser".into()),
                    org: None,
                },
            )
            .await,
    );
    assert_eq!((p.status, p.code.as_str()), (422, "validation_failed"));
    assert_eq!(p.errors[0].field, "role");
    let p = problem(
        admin
            .edit_user(
                "nguyen.van.an",
                &EditUser {
                    role: Some("reviewer".into()),
                    org: None,
                },
            )
            .await,
    );
    assert_eq!((p.status, p.errors[0].field.as_str()), (422, "role"));
    let p = problem(
        admin
            .edit_user(
                "nguyen.van.an",
                &EditUser {
                    role: None,
                    org: Some("KHONG-CO".into()),
                },
            )
            .await,
    );
    assert_eq!((p.status, p.errors[0].field.as_str()), (422, "org"));
    assert_eq!(
        code(admin.edit_user("nguyen.van.an", &EditUser::default()).await).0,
        422
    );
    let p = problem(admin.deactivate_user("nguyen.van.an", "  ").await);
    assert_eq!((p.status, p.errors[0].field.as_str()), (422, "reason"));
    // Unknown fields and malformed bodies.
    let (status, ct, _) = admin
        .raw(
            reqwest::Method::PATCH,
            "/api/v1/users/nguyen.van.an",
            Some("application/json"),
            br#"{"role":"auditor","active":false}"#.to_vec(),
        )
        .await
        .unwrap();
    assert_eq!(
        (status.as_u16(), ct.as_str()),
        (422, "application/problem+json")
    );
    // Reactivating an active account; non-admins.
    assert_eq!(
        code(admin.reactivate_user("nguyen.van.an").await),
        (409, "already_active".into())
    );
    assert_eq!(
        code(w.owner.deactivate_user("le.thi.binh", "x").await).0,
        403
    );
    assert_eq!(code(w.auditor.users(&[]).await).0, 403);
    // Bad filters.
    for q in [
        ("status", "gone"),
        ("role", "boss"),
        ("org", "KHONG-CO"),
        ("page", "0"),
    ] {
        let p = problem(admin.users(&[(q.0, q.1.into())]).await);
        assert_eq!((p.status, p.errors[0].field.as_str()), (422, q.0), "{q:?}");
    }
    // Nothing changed: no audit event, the owner's token still works, with the same role.
    assert_eq!(t.audit_seq().await, before);
    assert_eq!(ok(w.owner.me().await).role, "owner");

    // Deactivating an inactive account.
    ok(admin
        .deactivate_user("le.thi.binh", "Chuyển công tác")
        .await);
    let seq = t.audit_seq().await;
    assert_eq!(
        code(admin.deactivate_user("le.thi.binh", "lần nữa").await),
        (409, "already_inactive".into())
    );
    assert_eq!(
        code(
            admin
                .edit_user(
                    "le.thi.binh",
                    &EditUser {
                        role: Some("auditor".into()),
                        org: Some("SO-TTTT".into())
                    }
                )
                .await
        ),
        (409, "account_inactive".into())
    );
    assert_eq!(t.audit_seq().await, seq);

    // The last active admin: a second admin may deactivate the first, and then nobody (not even
    // the operator at the command line) may deactivate or demote the one left.
    let second = t
        .user("quan.tri.2", "Lê Quản Trị", "SO-TTTT", "admin")
        .await;
    ok(second.deactivate_user("quan.tri", "Nghỉ hưu").await);
    let op = Principal::operator();
    let last = t.app.deactivate_user(&op, "quan.tri.2", "x").await;
    assert!(
        matches!(&last, Err(changegate_app::AppError::Conflict(c, _)) if c.as_str() == "last_admin"),
        "{last:?}"
    );
    let demote = t
        .app
        .edit_user(
            &op,
            "quan.tri.2",
            EditUser {
                role: Some("auditor".into()),
                org: None,
            },
        )
        .await;
    assert!(
        matches!(&demote, Err(changegate_app::AppError::Conflict(c, _)) if c.as_str() == "last_admin"),
        "{demote:?}"
    );
    assert_eq!(ok(second.me().await).role, "admin");
}

#[tokio::test]
async fn accounts_are_listed_by_organisation_role_status_and_name_without_diacritics() {
    let t = spawn_app().await;
    let w = t.world().await;
    let names = |l: &changegate_api::UserList| {
        l.items
            .iter()
            .map(|u| u.username.clone())
            .collect::<Vec<_>>()
    };
    let all = ok(t.admin.users(&[]).await);
    assert_eq!(all.total, 8, "{:?}", names(&all));
    assert!(!names(&all).contains(&"changegate".to_owned()));
    let q = |k: &'static str, v: &str| vec![(k, v.to_owned())];
    assert_eq!(
        names(&ok(t.admin.users(&q("q", "nguyen van")).await)),
        ["nguyen.van.an"]
    );
    assert_eq!(
        names(&ok(t.admin.users(&q("q", "TRẦN thị")).await)),
        ["tran.thi.hoa"]
    );
    assert_eq!(
        names(&ok(t.admin.users(&q("org", "PA05")).await)),
        ["do.minh.duc", "tran.thi.hoa"]
    );
    assert_eq!(
        names(&ok(t.admin.users(&q("role", "ci")).await)),
        ["ci.stnmt"]
    );
    // Locked: after failed sign-ins (set here as the lockout would).
    user::Entity::update_many()
        .col_expr(
            user::Column::LockedUntil,
            Expr::value(Some(chrono::Utc::now() + chrono::Duration::minutes(15))),
        )
        .filter(user::Column::Username.eq("le.thi.binh"))
        .exec(&t.app.db)
        .await
        .unwrap();
    let locked = ok(t.admin.users(&q("status", "locked")).await);
    assert_eq!(names(&locked), ["le.thi.binh"]);
    assert!(locked.items[0].locked_until.is_some());
    ok(t.admin.deactivate_user("pham.thue", "Nghỉ việc").await);
    assert_eq!(
        names(&ok(t.admin.users(&q("status", "inactive")).await)),
        ["pham.thue"]
    );
    let active = ok(t.admin.users(&q("status", "active")).await);
    assert_eq!(active.total, 7);
    // Pages.
    let p2 = ok(t
        .admin
        .users(&[("limit", "4".into()), ("page", "2".into())])
        .await);
    assert_eq!(
        (p2.total, p2.page, p2.per_page, p2.items.len()),
        (8, 2, 4, 4)
    );
    assert_eq!(names(&p2), names(&all)[4..8].to_vec());
    drop(w);
}

async fn incident(c: &Client, system: &str, kind: &str, severity: &str, summary: &str) -> i64 {
    ok(c.report_incident(
        system,
        &NewIncident {
            kind: kind.into(),
            severity: severity.into(),
            summary: summary.into(),
            detected_at: None,
            national_security: false,
        },
    )
    .await)
    .id
}

#[tokio::test]
async fn incidents_are_filtered_searched_without_diacritics_and_paged() {
    let t = spawn_app().await;
    let w = t.world().await;
    t.system("THUE", "CUCTHUE", 3, &["production"]).await;
    let upgrade = incident(
        &w.owner,
        "TTHC",
        "vulnerability",
        "medium",
        "Cần Nâng cấp thư viện OpenSSL có lỗ hổng",
    )
    .await;
    let access = incident(
        &w.owner,
        "DAT-DAI",
        "abnormal_access",
        "low",
        "Truy cập bất thường từ địa chỉ IP lạ ngoài giờ",
    )
    .await;
    let tax = incident(
        &w.other_owner,
        "THUE",
        "malware",
        "low",
        "Mã độc trên máy trạm; đã nâng cấp phần mềm diệt virus",
    )
    .await;
    ok(w.reviewer.client().resolve_incident(access).await);
    let ids = |l: changegate_api::IncidentList| l.items.iter().map(|i| i.id).collect::<Vec<_>>();
    let r = w.reviewer.client();
    let q = |k: &'static str, v: &str| vec![(k, v.to_owned())];
    // Open first, then the newest.
    assert_eq!(ids(ok(r.incidents(&[]).await)), [tax, upgrade, access]);
    assert_eq!(
        ids(ok(r.incidents(&q("q", "nang cap")).await)),
        [tax, upgrade]
    );
    assert_eq!(
        ids(ok(r.incidents(&q("q", "NÂNG CẤP openssl")).await)),
        [upgrade]
    );
    assert_eq!(
        ids(ok(r.incidents(&q("q", "truy cap bat thuong")).await)),
        [access]
    );
    assert_eq!(
        ids(ok(r.incidents(&q("state", "resolved")).await)),
        [access]
    );
    assert_eq!(
        ids(ok(r.incidents(&q("state", "open")).await)),
        [tax, upgrade]
    );
    assert_eq!(
        ids(ok(r.incidents(&q("system", "DAT-DAI")).await)),
        [access]
    );
    assert_eq!(ids(ok(r.incidents(&q("org", "CUCTHUE")).await)), [tax]);
    assert_eq!(
        ids(ok(r.incidents(&q("kind", "vulnerability")).await)),
        [upgrade]
    );
    assert_eq!(
        ids(ok(r.incidents(&q("severity", "low")).await)),
        [tax, access]
    );
    let today = chrono::Utc::now().with_timezone(&t.app.tz).date_naive();
    let range = vec![
        ("from", today.pred_opt().unwrap().to_string()),
        ("to", today.succ_opt().unwrap().to_string()),
    ];
    assert_eq!(ok(r.incidents(&range).await).total, 3);
    let tomorrow = vec![("from", today.succ_opt().unwrap().to_string())];
    assert_eq!(ok(r.incidents(&tomorrow).await).total, 0);
    let page = ok(r
        .incidents(&[("limit", "2".into()), ("page", "2".into())])
        .await);
    assert_eq!((page.total, page.page, ids(page)), (3, 2, vec![access]));
    // An owner sees their organisation's incidents only; another organisation's system or
    // organisation answers as one that does not exist.
    assert_eq!(
        ids(ok(w.owner.incidents(&q("q", "nang cap")).await)),
        [upgrade]
    );
    assert_eq!(code(w.owner.incidents(&q("system", "THUE")).await).0, 422);
    assert_eq!(code(w.owner.incidents(&q("org", "CUCTHUE")).await).0, 422);
    // Bad filters name their field.
    for (k, v) in [
        ("state", "closed"),
        ("kind", "earthquake"),
        ("severity", "huge"),
        ("from", "01/12/2026"),
        ("limit", "501"),
    ] {
        let p = problem(r.incidents(&[(k, v.into())]).await);
        assert_eq!((p.status, p.errors[0].field.as_str()), (422, k), "{k}={v}");
    }
    let (status, ct, _) = r
        .raw(
            reqwest::Method::GET,
            "/api/v1/incidents?colour=red",
            None,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        (status.as_u16(), ct.as_str()),
        (400, "application/problem+json")
    );

    // The web list: the same search and filters.
    let mut web = web_owner(&t).await;
    let page = web.get("/incidents?q=nang+cap").await;
    assert_eq!(page.status, 200, "{}", snippet(&page.body));
    let rows = find_tags(&page.body, "tr")
        .into_iter()
        .filter_map(|r| r.attr("data-incident").map(str::to_owned))
        .collect::<Vec<_>>();
    assert_eq!(rows, [upgrade.to_string()]);
    let page = web.get("/incidents?state=resolved&system=DAT-DAI").await;
    let rows = find_tags(&page.body, "tr")
        .into_iter()
        .filter_map(|r| r.attr("data-incident").map(str::to_owned))
        .collect::<Vec<_>>();
    assert_eq!(rows, [access.to_string()]);
    assert_eq!(
        (
            field_value(&page.body, "state").as_deref(),
            field_value(&page.body, "system").as_deref()
        ),
        (Some("resolved"), Some("DAT-DAI")),
        "the filters keep their values"
    );
}

/// An owner of STNMT signed in on the web.
async fn web_owner(t: &TestApp) -> Web {
    let otp = t
        .person("chu.he.thong", "Nguyễn Chủ Hệ Thống", "STNMT", "owner")
        .await;
    let mut web = Web::new(&t.url);
    web.first_sign_in("chu.he.thong", &otp).await;
    web
}

/// An admin signed in on the web (second factor enrolled on the way).
async fn web_admin(t: &TestApp) -> Web {
    let otp = t
        .person("quan.tri.web", "Phan Quản Trị", "SO-TTTT", "admin")
        .await;
    let mut web = Web::new(&t.url);
    web.first_sign_in("quan.tri.web", &otp).await;
    web
}

fn user_rows(body: &str) -> Vec<(String, String)> {
    find_tags(body, "tr")
        .into_iter()
        .filter_map(|r| {
            r.attr("data-username")
                .map(|u| (u.to_owned(), r.inner.clone()))
        })
        .collect()
}

async fn lock(t: &TestApp, username: &str) {
    user::Entity::update_many()
        .col_expr(
            user::Column::LockedUntil,
            Expr::value(Some(chrono::Utc::now() + chrono::Duration::minutes(15))),
        )
        .filter(user::Column::Username.eq(username))
        .exec(&t.app.db)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_admin_page_offers_unlock_only_for_a_locked_account_and_deactivates_after_a_confirmation()
 {
    let t = spawn_app().await;
    let w = t.world().await;
    lock(&t, "le.thi.binh").await;
    let mut web = web_admin(&t).await;
    let page = web.get("/admin/users").await;
    assert_eq!(page.status, 200, "{}", snippet(&page.body));
    let rows = user_rows(&page.body);
    assert!(
        rows.len() >= 9,
        "the world, its admin and this one: {rows:?}"
    );
    for (u, inner) in &rows {
        assert_eq!(
            inner.contains("/unlock"),
            u == "le.thi.binh",
            "Mở khóa on the row of {u}"
        );
    }
    // Filters: the locked ones; by name without diacritics.
    let rows = user_rows(&web.get("/admin/users?status=locked").await.body);
    assert_eq!(
        rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        ["le.thi.binh"]
    );
    let rows = user_rows(&web.get("/admin/users?q=nguyen+van").await.body);
    assert_eq!(
        rows.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(),
        ["nguyen.van.an"]
    );
    // Unlocking it removes the button.
    let csrf = web.session_csrf().await;
    web.post("/admin/users/le.thi.binh/unlock", &[("csrf", &csrf)])
        .await
        .assert_redirect("/admin/users", "unlock");
    let rows = user_rows(&web.get("/admin/users").await.body);
    assert!(rows.iter().all(|(_, inner)| !inner.contains("/unlock")));

    // Deactivation: the account's page, a reason, and the confirmation box.
    let page = web.get("/admin/users/nguyen.van.an").await;
    assert_eq!(page.status, 200, "{}", snippet(&page.body));
    assert!(
        !select(&page.body, "input[name=confirm]").is_empty(),
        "{}",
        snippet(&page.body)
    );
    let r = web
        .post(
            "/admin/users/nguyen.van.an/deactivate",
            &[("csrf", &csrf), ("reason", "Nghỉ việc")],
        )
        .await;
    assert_eq!(
        r.status,
        422,
        "without the confirmation: {}",
        snippet(&r.body)
    );
    assert_eq!(
        ok(w.owner.me().await).username,
        "nguyen.van.an",
        "still active"
    );
    let r = web
        .post(
            "/admin/users/nguyen.van.an/deactivate",
            &[("csrf", &csrf), ("reason", "Nghỉ việc"), ("confirm", "1")],
        )
        .await;
    r.assert_redirect("/admin/users", "deactivation");
    let listed = web.get(&r.redirect().unwrap()).await;
    assert!(
        listed.body.contains("flash ok"),
        "{}",
        snippet(&listed.body)
    );
    assert_eq!(code(w.owner.me().await).0, 401);
    let rows = user_rows(&web.get("/admin/users?status=inactive").await.body);
    assert_eq!(rows.len(), 1);
    assert!(rows[0].1.contains("/reactivate"), "{}", rows[0].1);
    // Without the CSRF token nothing happens.
    let r = web
        .post("/admin/users/nguyen.van.an/reactivate", &[("csrf", "sai")])
        .await;
    assert_eq!(r.status, 403);
    // Reactivation, and a role change from the account's page.
    web.post("/admin/users/nguyen.van.an/reactivate", &[("csrf", &csrf)])
        .await
        .assert_redirect("/admin/users", "reactivation");
    web.post(
        "/admin/users/nguyen.van.an/edit",
        &[("csrf", &csrf), ("role", "owner"), ("org", "CUCTHUE")],
    )
    .await
    .assert_redirect("/admin/users", "role change");
    let rows = user_rows(&web.get("/admin/users?org=CUCTHUE").await.body);
    assert!(rows.iter().any(|r| r.0 == "nguyen.van.an"), "{rows:?}");
    // Refusals show on the page in Vietnamese, with the reason.
    let r = web
        .post(
            "/admin/users/quan.tri.web/deactivate",
            &[("csrf", &csrf), ("reason", "x"), ("confirm", "1")],
        )
        .await;
    assert_eq!(r.status, 422);
    assert!(
        r.flash_error().is_some_and(|m| m.contains("chính mình")),
        "{}",
        snippet(&r.body)
    );
}

#[tokio::test]
async fn the_admin_users_page_and_the_incident_list_fit_a_phone() {
    let t = spawn_app().await;
    let w = t.world().await;
    lock(&t, "le.thi.binh").await;
    ok(t.admin
        .deactivate_user(
            "pham.thue",
            "Nghỉ việc từ 01/12/2026 theo Quyết định số 215/QĐ-CT",
        )
        .await);
    for i in 0..3 {
        incident(
            &w.owner,
            "TTHC",
            "vulnerability",
            "medium",
            &format!("Cần nâng cấp thư viện OpenSSL trên máy chủ ứng dụng số {i}: phiên bản đang dùng có lỗ hổng đã công bố."),
        )
        .await;
    }
    let otp = t
        .person("quan.tri.web", "Phan Quản Trị", "SO-TTTT", "admin")
        .await;
    let owner_otp = t
        .person("chu.he.thong", "Nguyễn Chủ Hệ Thống", "STNMT", "owner")
        .await;
    let Some((adm, own)) = Browser::start_pair(&t.url, "people_pages_fit_a_phone").await else {
        return;
    };
    crate::browser::first_sign_in(&adm, "quan.tri.web", &otp).await;
    crate::browser::first_sign_in(&own, "chu.he.thong", &owner_otp).await;
    let dir = std::env::var_os("CHANGEGATE_SCREENSHOTS").map(std::path::PathBuf::from);
    let mut wide = vec![];
    for (width, height) in [(1366, 900), (390, 844)] {
        for (b, name, path) in [
            (&adm, "admin-users", "/admin/users"),
            (&adm, "admin-user", "/admin/users/nguyen.van.an"),
            (&own, "incidents", "/incidents?q=nang+cap"),
        ] {
            b.set_window_size(width, height).await;
            b.goto(path).await;
            let scroll = b
                .execute(
                    "return document.documentElement.scrollWidth;",
                    serde_json::json!([]),
                )
                .await
                .as_i64()
                .unwrap_or(i64::MAX);
            let client = b
                .execute(
                    "return document.documentElement.clientWidth;",
                    serde_json::json!([]),
                )
                .await
                .as_i64()
                .unwrap_or(0);
            if scroll > client || (width == 390 && scroll > 390) {
                wide.push(format!("{path} at {width} px: scrollWidth {scroll}"));
            }
            if let Some(d) = &dir {
                std::fs::create_dir_all(d).unwrap();
                b.screenshot(&d.join(format!("{name}-{width}.png"))).await;
            }
        }
    }
    assert!(wide.is_empty(), "pages scroll sideways: {wide:#?}");
    // Each row's buttons sit in that row: the top of the row's action cell is the top of its
    // row, in every row of the table.
    adm.goto("/admin/users").await;
    let misaligned = adm
        .execute(
            "return [...document.querySelectorAll('table.people tbody tr')].filter(r => { const a = r.querySelector('td.acts'); return !a || Math.abs(a.getBoundingClientRect().top - r.getBoundingClientRect().top) > 1; }).map(r => r.dataset.username);",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(
        misaligned,
        serde_json::json!([]),
        "rows whose buttons are elsewhere"
    );
    // "Mở khóa" is on the locked account's row only.
    let unlock_rows = adm
        .execute(
            "return [...document.querySelectorAll('button[data-action=unlock]')].map(b => b.closest('tr').dataset.username);",
            serde_json::json!([]),
        )
        .await;
    assert_eq!(unlock_rows, serde_json::json!(["le.thi.binh"]));
    assert!(adm.page_text().await.contains("Mở khóa"));
}
