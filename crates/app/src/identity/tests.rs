//! Tests of sign-in, sessions, the second factor, resets, allow-lists and signals.

use super::*;
use crate::App;
use crate::registry::org_by_code;
use changegate_api as wire;
use changegate_domain::PolicyPack;
use changegate_store::entity::change_request;
use changegate_store::sea_orm::sea_query::Expr;
use changegate_store::sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

const LOCAL: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// An app on a fresh database: a SQLite file, or a fresh PostgreSQL schema when
/// `CHANGEGATE_TEST_DATABASE_URL` names a PostgreSQL database.
async fn app() -> (App, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = match std::env::var("CHANGEGATE_TEST_DATABASE_URL") {
        Ok(url) if url.starts_with("postgres") => {
            let schema = format!("t_{}", hex::encode(rand::random::<[u8; 8]>()));
            let db = changegate_store::connect(&url).await.unwrap();
            db.execute_unprepared(&format!("CREATE SCHEMA {schema}"))
                .await
                .unwrap();
            let sep = if url.contains('?') { '&' } else { '?' };
            format!("{url}{sep}options=-c%20search_path%3D{schema}")
        }
        _ => format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display()),
    };
    let pack = PolicyPack::parse("built in", crate::DEFAULT_PACK).unwrap();
    (App::open(&url, pack).await.unwrap(), dir)
}

/// Creates an organisation (once) and a user; returns the one-time password.
async fn user(app: &App, username: &str, role: &str) -> String {
    let op = Principal::operator();
    let (org, kind) = match role {
        "reviewer" => ("PA05", "reviewer"),
        "admin" | "auditor" => ("STTTT", "inspector"),
        _ => ("STNMT", "owner"),
    };
    if org_by_code(&app.db, org).await.is_err() {
        app.create_organisation(
            &op,
            wire::NewOrganisation {
                code: org.into(),
                name: format!("Tổ chức {org}"),
                kind: kind.into(),
            },
        )
        .await
        .unwrap();
    }
    app.create_user(
        &op,
        wire::NewUser {
            username: username.into(),
            display_name: "Nguyễn Văn An".into(),
            org: org.into(),
            role: role.into(),
        },
    )
    .await
    .unwrap()
    .one_time_password
}

async fn actions(app: &App, action: &str) -> Vec<serde_json::Value> {
    changegate_store::audit::page(&app.db, 0, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.action == action)
        .map(|e| {
            let mut v: serde_json::Value =
                serde_json::from_str(e.after.as_deref().unwrap_or("null")).unwrap();
            v["actor"] = e.actor.into();
            v
        })
        .collect()
}

fn key_of(secret: &str) -> Vec<u8> {
    totp::base32_decode(secret).unwrap()
}

fn code(secret: &str, offset: i64) -> String {
    totp::code_at(&key_of(secret), crate::now().timestamp() + offset)
}

/// Six digits that are none of the codes accepted now.
fn not_a_code(secret: &str) -> String {
    let accepted = [code(secret, -30), code(secret, 0), code(secret, 30)];
    ["000000", "111111", "222222", "333333"]
        .into_iter()
        .find(|c| !accepted.iter().any(|a| a == c))
        .unwrap_or_default()
        .to_owned()
}

const GOOD: &str = "mưa phùn trên đèo Hải Vân 7";

#[test]
fn stages_round_trip_by_name() {
    for s in [
        Stage::ChangePassword,
        Stage::EnrolSecondFactor,
        Stage::SecondFactor,
        Stage::Active,
    ] {
        assert_eq!(Stage::parse(s.as_str()), Ok(s));
    }
    assert!(Stage::parse("admin").is_err());
}

#[test]
fn backoff_grows_and_is_capped() {
    assert_eq!(backoff(0), std::time::Duration::ZERO);
    assert_eq!(backoff(1), std::time::Duration::from_millis(200));
    assert_eq!(backoff(2), std::time::Duration::from_millis(400));
    assert_eq!(backoff(5), std::time::Duration::from_millis(3200));
    assert_eq!(backoff(50), std::time::Duration::from_millis(3200));
}

#[test]
fn allow_lists_take_cidrs_and_single_addresses_and_empty_allows_any() {
    assert!(ip_allowed(None, LOCAL));
    assert!(ip_allowed(Some(&[]), LOCAL));
    let list: &[String] = &[
        "10.0.0.0/8".into(),
        "203.0.113.7".into(),
        "2001:db8::/32".into(),
    ];
    assert!(ip_allowed(Some(list), ip("10.20.30.40")));
    assert!(ip_allowed(Some(list), ip("203.0.113.7")));
    assert!(!ip_allowed(Some(list), ip("203.0.113.8")));
    assert!(ip_allowed(Some(list), ip("2001:db8::1")));
    assert!(!ip_allowed(Some(list), LOCAL));
    // An IPv4 client seen through an IPv6 socket.
    assert!(ip_allowed(Some(list), ip("::ffff:10.1.1.1")));
    assert_eq!(
        parse_cidr("10.1.2.3/8").map(|n| n.to_string()),
        Some("10.0.0.0/8".into())
    );
    assert!(parse_cidr("10.0.0.0/33").is_none());
    assert!(parse_cidr("mạng nội bộ").is_none());
}

#[tokio::test]
async fn first_sign_in_forces_a_password_change_under_the_policy_then_an_owner_is_active() {
    let (app, _d) = app().await;
    let otp = user(&app, "nguyen.van.an", "owner").await;
    let s = app
        .sign_in("nguyen.van.an", &otp, LOCAL, "test")
        .await
        .unwrap();
    assert_eq!(s.session.stage, Stage::ChangePassword);
    assert!(s.session.active().is_err());
    assert_eq!(s.token.len(), 43);
    // Only the token's hash is stored.
    let row = session::Entity::find_by_id(s.session.id)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.token_hash, token_hash(&s.token));
    assert_ne!(row.token_hash, s.token);
    for (bad, why) in [
        ("ngắn quá", PasswordProblemKind::Short),
        ("Nguyễn.Văn.An@2024", PasswordProblemKind::Username),
        ("NguyenVanAn1990!", PasswordProblemKind::Username),
        ("matkhau123456", PasswordProblemKind::Common),
        ("Abc@123456789", PasswordProblemKind::Common),
    ] {
        match app.change_password(&s.session, None, bad).await {
            Err(AppError::Invalid(f)) => {
                assert_eq!(f[0].0, "new_password", "{bad}");
                assert!(f[0].1.contains(why.word()), "{bad}: {}", f[0].1);
            }
            other => panic!("{bad}: {other:?}"),
        }
    }
    // The one-time password itself is refused as the new one.
    let same = app.change_password(&s.session, None, &otp).await;
    assert!(matches!(same, Err(AppError::Invalid(_))), "{same:?}");
    let s2 = app.change_password(&s.session, None, GOOD).await.unwrap();
    assert_eq!(s2.stage, Stage::Active);
    assert!(s2.active().is_ok());
    let seen = app.web_session(&s.token, LOCAL).await.unwrap();
    assert_eq!(seen.stage, Stage::Active);
    assert_eq!(seen.csrf, s.session.csrf);
    assert!(seen.csrf_matches(&s.session.csrf));
    assert!(!seen.csrf_matches("x"));
    // The one-time password no longer works; the new one does and goes straight to Active.
    assert!(
        app.sign_in("nguyen.van.an", &otp, LOCAL, "t")
            .await
            .is_err()
    );
    let again = app
        .sign_in("nguyen.van.an", GOOD, LOCAL, "t")
        .await
        .unwrap();
    assert_eq!(again.session.stage, Stage::Active);
    assert_eq!(actions(&app, "user.password_change").await.len(), 1);
    // From an active session the current password is required and checked.
    let no_current = app
        .change_password(&again.session, None, "sông Hồng đỏ nặng phù sa")
        .await;
    assert!(
        matches!(&no_current, Err(AppError::Invalid(f)) if f[0].0 == "current_password"),
        "{no_current:?}"
    );
    let wrong = app
        .change_password(&again.session, Some("sai rồi"), "sông Hồng đỏ nặng phù sa")
        .await;
    assert!(
        matches!(&wrong, Err(AppError::Invalid(f)) if f[0].0 == "current_password"),
        "{wrong:?}"
    );
    let changed = app
        .change_password(&again.session, Some(GOOD), "sông Hồng đỏ nặng phù sa")
        .await
        .unwrap();
    assert_eq!(changed.stage, Stage::Active);
    // The other session was signed out by the change.
    assert!(matches!(
        app.web_session(&s.token, LOCAL).await,
        Err(AppError::Unauthorized(_))
    ));
}

#[tokio::test]
async fn another_session_opened_with_the_same_one_time_password_ends_at_the_change() {
    let (app, _d) = app().await;
    let otp = user(&app, "nguyen.van.an", "owner").await;
    let mine = app
        .sign_in("nguyen.van.an", &otp, LOCAL, "t")
        .await
        .unwrap();
    let theirs = app
        .sign_in("nguyen.van.an", &otp, ip("127.0.0.9"), "t")
        .await
        .unwrap();
    app.change_password(&mine.session, None, GOOD)
        .await
        .unwrap();
    let late = app
        .change_password(&theirs.session, None, "sông Hồng đỏ nặng phù sa")
        .await;
    assert!(matches!(late, Err(AppError::Unauthorized(_))), "{late:?}");
    app.sign_in("nguyen.van.an", GOOD, LOCAL, "t")
        .await
        .unwrap();
}

#[tokio::test]
async fn an_admin_reset_gives_a_new_one_time_password_and_ends_the_sessions() {
    let (app, _d) = app().await;
    let otp = user(&app, "nguyen.van.an", "owner").await;
    let s = app
        .sign_in("nguyen.van.an", &otp, LOCAL, "t")
        .await
        .unwrap();
    let s = app.change_password(&s.session, None, GOOD).await.unwrap();
    assert!(matches!(
        app.reset_password(&s.principal, "nguyen.van.an").await,
        Err(AppError::Forbidden(_))
    ));
    let fresh = app
        .reset_password(&Principal::operator(), "nguyen.van.an")
        .await
        .unwrap();
    assert!(app.list_sessions(&s).await.is_ok_and(|l| l.is_empty()));
    assert!(
        app.sign_in("nguyen.van.an", GOOD, LOCAL, "t")
            .await
            .is_err()
    );
    let again = app
        .sign_in("nguyen.van.an", &fresh, LOCAL, "t")
        .await
        .unwrap();
    assert_eq!(again.session.stage, Stage::ChangePassword);
}

enum PasswordProblemKind {
    Short,
    Username,
    Common,
}

impl PasswordProblemKind {
    fn word(&self) -> &'static str {
        match self {
            PasswordProblemKind::Short => "12",
            PasswordProblemKind::Username => "username",
            PasswordProblemKind::Common => "common",
        }
    }
}

#[tokio::test]
async fn a_reviewer_must_enrol_totp_and_codes_are_accepted_once() {
    let (app, _d) = app().await;
    let otp = user(&app, "tran.thi.hoa", "reviewer").await;
    let s = app.sign_in("tran.thi.hoa", &otp, LOCAL, "t").await.unwrap();
    // Stages cannot be skipped.
    assert!(matches!(
        app.totp_enrolment(&s.session).await,
        Err(AppError::Forbidden(_))
    ));
    assert!(matches!(
        app.check_second_factor(&s.session, "123456").await,
        Err(AppError::Forbidden(_))
    ));
    assert!(matches!(
        app.list_sessions(&s.session).await,
        Err(AppError::Forbidden(_))
    ));
    let s1 = app.change_password(&s.session, None, GOOD).await.unwrap();
    assert_eq!(s1.stage, Stage::EnrolSecondFactor);
    assert!(s1.active().is_err());
    let e = app.totp_enrolment(&s1).await.unwrap();
    assert_eq!(e.secret_base32.len(), 32);
    assert!(
        e.otpauth_uri
            .starts_with("otpauth://totp/changegate:tran.thi.hoa?secret=")
    );
    assert!(e.otpauth_uri.contains("&issuer=changegate"));
    // Showing the page again shows the same secret.
    assert_eq!(
        app.totp_enrolment(&s1).await.unwrap().secret_base32,
        e.secret_base32
    );
    let wrong = app.confirm_totp(&s1, &not_a_code(&e.secret_base32)).await;
    assert!(
        matches!(&wrong, Err(AppError::Invalid(f)) if f[0].0 == "code" && f[0].1 == WRONG_CODE),
        "{wrong:?}"
    );
    let active = app
        .confirm_totp(&s1, &code(&e.secret_base32, 0))
        .await
        .unwrap();
    assert_eq!(active.stage, Stage::Active);
    assert!(active.second_factor);
    assert_eq!(actions(&app, "user.second_factor_enrol").await.len(), 1);
    assert_eq!(actions(&app, "auth.second_factor_failed").await.len(), 1);
    // Next sign-in: password, then the second factor; the code just used is refused.
    let s = app.sign_in("tran.thi.hoa", GOOD, LOCAL, "t").await.unwrap();
    assert_eq!(s.session.stage, Stage::SecondFactor);
    let replay = app
        .check_second_factor(&s.session, &code(&e.secret_base32, 0))
        .await;
    assert!(matches!(replay, Err(AppError::Invalid(_))), "{replay:?}");
    let ok = app
        .check_second_factor(&s.session, &code(&e.secret_base32, 30))
        .await
        .unwrap();
    assert_eq!(ok.stage, Stage::Active);
    assert_eq!(
        app.web_session(&s.token, LOCAL).await.unwrap().stage,
        Stage::Active
    );
    // An admin resets the second factor: sessions end, and the reviewer enrols again.
    app.reset_second_factor(&Principal::operator(), "tran.thi.hoa")
        .await
        .unwrap();
    assert!(app.web_session(&s.token, LOCAL).await.is_err());
    let s = app.sign_in("tran.thi.hoa", GOOD, LOCAL, "t").await.unwrap();
    assert_eq!(s.session.stage, Stage::EnrolSecondFactor);
}

#[tokio::test]
async fn sign_off_asks_the_second_factor_again() {
    let (app, _d) = app().await;
    let demo = app.seed_demo().await.unwrap();
    let hoa = demo
        .accounts
        .iter()
        .find(|a| a.username == "tran.thi.hoa")
        .unwrap();
    let s = app
        .sign_in("tran.thi.hoa", &hoa.one_time_password, LOCAL, "t")
        .await
        .unwrap();
    let s = app.change_password(&s.session, None, GOOD).await.unwrap();
    // The demo enrolled the reviewer's second factor: its code makes the session active.
    assert_eq!(s.stage, Stage::SecondFactor);
    let secret = hoa.second_factor_secret.clone().unwrap();
    let s = app
        .check_second_factor(&s, &code(&secret, 0))
        .await
        .unwrap();
    let cr = change_request::Entity::find()
        .filter(change_request::Column::State.eq("submitted"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let req = wire::NewSignOff {
        conclusion: "pass".into(),
        checklist: app
            .pack
            .checklist
            .iter()
            .map(|i| wire::ItemAnswer {
                item: i.id.clone(),
                result: "pass".into(),
                note: String::new(),
            })
            .collect(),
        findings: vec![],
        conditions: vec![],
        second_factor_code: None,
    };
    // The code used for the sign-in is refused: nothing is signed.
    let replay = app
        .sign_off_with_second_factor(&s, cr.id, req.clone(), &code(&secret, 0))
        .await;
    assert!(matches!(replay, Err(AppError::Invalid(_))), "{replay:?}");
    assert!(
        app.get_change(&s.principal, cr.id)
            .await
            .unwrap()
            .sign_offs
            .is_empty()
    );
    // A form the sign-off refuses (a failed item without a note) leaves the code unused.
    let mut bad = req.clone();
    bad.checklist[0].result = "fail".into();
    let refused = app
        .sign_off_with_second_factor(&s, cr.id, bad, &code(&secret, 30))
        .await;
    let Err(AppError::Invalid(fields)) = &refused else {
        panic!("{refused:?}");
    };
    assert!(fields.iter().all(|(f, _)| f != "code"), "{fields:?}");
    let signed = app
        .sign_off_with_second_factor(&s, cr.id, req, &code(&secret, 30))
        .await
        .unwrap();
    assert_eq!(signed.sign_offs.len(), 1);
    let used = actions(&app, "auth.second_factor").await;
    assert_eq!(used.last().unwrap()["purpose"], "sign_off");
}

#[tokio::test]
async fn unknown_users_and_wrong_passwords_get_one_answer_and_are_audited() {
    let (app, _d) = app().await;
    let otp = user(&app, "nguyen.van.an", "owner").await;
    let a = app
        .sign_in("nguyen.van.an", "sai mật khẩu", LOCAL, "t")
        .await;
    let b = app.sign_in("khong.co.ai", &otp, LOCAL, "t").await;
    let (Err(AppError::Unauthorized(ma)), Err(AppError::Unauthorized(mb))) = (&a, &b) else {
        panic!("{a:?} {b:?}");
    };
    assert_eq!(ma, mb);
    assert_eq!(ma, WRONG_CREDENTIALS);
    let failed = actions(&app, "auth.login_failed").await;
    assert_eq!(failed.len(), 2);
    assert_eq!(failed[0]["reason"], "wrong_password");
    assert_eq!(failed[0]["actor"], "nguyen.van.an");
    assert_eq!(failed[1]["reason"], "unknown_user");
    assert_eq!(failed[1]["ip"], "127.0.0.1");
    app.sign_in("Nguyen.Van.An ", &otp, LOCAL, "t")
        .await
        .unwrap();
    assert_eq!(actions(&app, "auth.login").await.len(), 1);
}

/// A reviewer, signed in once, with a confirmed second factor: (app, dir, secret).
async fn enrolled_reviewer() -> (App, tempfile::TempDir, String) {
    let (app, d) = app().await;
    let otp = user(&app, "tran.thi.hoa", "reviewer").await;
    let s = app.sign_in("tran.thi.hoa", &otp, LOCAL, "t").await.unwrap();
    let s = app.change_password(&s.session, None, GOOD).await.unwrap();
    let secret = app.totp_enrolment(&s).await.unwrap().secret_base32;
    app.confirm_totp(&s, &code(&secret, 0)).await.unwrap();
    (app, d, secret)
}

#[tokio::test]
async fn wrong_codes_count_across_sign_ins_and_the_lock_ends_every_session_still_signing_in() {
    let (app, _d, secret) = enrolled_reviewer().await;
    let mut pending = vec![];
    // 2 + 2 + 1 wrong codes from three sign-ins with the right password: a right password
    // does not start the count again.
    for wrong in [2, 2, 1] {
        let s = app.sign_in("tran.thi.hoa", GOOD, LOCAL, "t").await.unwrap();
        assert_eq!(s.session.stage, Stage::SecondFactor);
        for _ in 0..wrong {
            let e = app
                .check_second_factor(&s.session, &not_a_code(&secret))
                .await;
            assert!(matches!(e, Err(AppError::Invalid(_))), "{e:?}");
        }
        pending.push(s);
    }
    assert_eq!(actions(&app, "account.locked").await.len(), 1);
    // No session of the three may go on: not even with the right code.
    for s in &pending {
        assert!(app.web_session(&s.token, LOCAL).await.is_err());
        let e = app
            .check_second_factor(&s.session, &code(&secret, 30))
            .await;
        assert!(matches!(e, Err(AppError::Unauthorized(_))), "{e:?}");
    }
    // Told so, with the time it lifts.
    let locked = app.sign_in("tran.thi.hoa", GOOD, LOCAL, "t").await;
    assert!(matches!(locked, Err(AppError::Locked(_))), "{locked:?}");
}

#[tokio::test]
async fn once_a_second_factor_is_confirmed_no_other_session_can_enrol_one() {
    let (app, _d, _) = enrolled_reviewer().await;
    app.reset_second_factor(&Principal::operator(), "tran.thi.hoa")
        .await
        .unwrap();
    let a = app.sign_in("tran.thi.hoa", GOOD, LOCAL, "a").await.unwrap();
    let b = app.sign_in("tran.thi.hoa", GOOD, LOCAL, "b").await.unwrap();
    assert_eq!(b.session.stage, Stage::EnrolSecondFactor);
    let secret = app.totp_enrolment(&a.session).await.unwrap().secret_base32;
    app.confirm_totp(&a.session, &code(&secret, 0))
        .await
        .unwrap();
    // The other session, which could read the same pending secret, has ended.
    assert!(app.web_session(&b.token, LOCAL).await.is_err());
    assert!(app.totp_enrolment(&b.session).await.is_err());
    assert!(
        app.confirm_totp(&b.session, &code(&secret, 30))
            .await
            .is_err()
    );
    // A new sign-in asks for the confirmed factor, not a new enrolment.
    let c = app.sign_in("tran.thi.hoa", GOOD, LOCAL, "c").await.unwrap();
    assert_eq!(c.session.stage, Stage::SecondFactor);
    assert!(matches!(
        app.totp_enrolment(&c.session).await,
        Err(AppError::Conflict(wire::ProblemCode::AlreadyEnrolled, _) | AppError::Forbidden(_))
    ));
}

#[tokio::test]
async fn five_failures_from_one_address_throttle_it_until_an_admin_unlocks_the_account() {
    let (app, _d) = app().await;
    let otp = user(&app, "nguyen.van.an", "owner").await;
    for _ in 0..throttle::PAIR_LIMIT {
        assert!(
            app.sign_in("nguyen.van.an", "sai", LOCAL, "t")
                .await
                .is_err()
        );
    }
    // Throttled there: even the right password is refused, with the time it lifts.
    let refused = app.sign_in("nguyen.van.an", &otp, LOCAL, "t").await;
    assert!(
        matches!(&refused, Err(AppError::Throttled(until)) if *until > crate::now()),
        "{refused:?}"
    );
    let failed = actions(&app, "auth.login_failed").await;
    assert_eq!(failed.len(), 6);
    assert_eq!(failed[5]["reason"], "throttled");
    // The account is not locked: from another address it signs in.
    assert!(actions(&app, "account.locked").await.is_empty());
    app.sign_in("nguyen.van.an", &otp, ip("127.0.0.9"), "t")
        .await
        .unwrap();
    app.unlock_user(&Principal::operator(), "nguyen.van.an")
        .await
        .unwrap();
    app.sign_in("nguyen.van.an", &otp, LOCAL, "t")
        .await
        .unwrap();
    assert_eq!(actions(&app, "user.unlock").await.len(), 1);
}

#[tokio::test]
async fn failures_from_many_addresses_lock_the_account_far_above_and_outsiders_never_do() {
    let (app, _d) = app().await;
    let otp = user(&app, "nguyen.van.an", "owner").await;
    app.set_allowed_ips(&Principal::operator(), "STNMT", &["10.0.0.0/8".to_owned()])
        .await
        .unwrap();
    // From outside the allow-list: never counted towards the account's lock.
    for i in 0..throttle::ACCOUNT_LOCK_AFTER {
        let from = IpAddr::from([192, 168, (i / 200) as u8, (i % 200) as u8]);
        let e = app.sign_in("nguyen.van.an", "sai", from, "t").await;
        assert!(matches!(e, Err(AppError::Forbidden(_))), "{e:?}");
    }
    assert!(actions(&app, "account.locked").await.is_empty());
    // From admitted addresses, a few each: the account locks at the far threshold.
    for i in 0..throttle::ACCOUNT_LOCK_AFTER {
        let from = IpAddr::from([10, 0, (i / 200) as u8, (i % 200) as u8]);
        let _ = app.sign_in("nguyen.van.an", "sai", from, "t").await;
    }
    assert_eq!(actions(&app, "account.locked").await.len(), 1);
    let e = app
        .sign_in("nguyen.van.an", &otp, ip("10.9.9.9"), "t")
        .await;
    assert!(matches!(e, Err(AppError::Locked(_))), "{e:?}");
}

#[tokio::test]
async fn an_account_used_from_two_addresses_at_once_is_flagged_once_a_day() {
    let (app, _d) = app().await;
    let otp = user(&app, "nguyen.van.an", "owner").await;
    let a = app
        .sign_in("nguyen.van.an", &otp, ip("127.0.0.1"), "a")
        .await
        .unwrap();
    let s = app.change_password(&a.session, None, GOOD).await.unwrap();
    assert_eq!(s.stage, Stage::Active);
    assert!(
        app.security_signals(&Principal::operator())
            .await
            .unwrap()
            .is_empty()
    );
    app.sign_in("nguyen.van.an", GOOD, ip("127.0.0.2"), "b")
        .await
        .unwrap();
    app.sign_in("nguyen.van.an", GOOD, ip("127.0.0.2"), "b")
        .await
        .unwrap();
    // The first session's cookie used from the second address.
    app.web_session(&a.token, ip("127.0.0.2")).await.unwrap();
    let flagged = actions(&app, "account.shared_suspected").await;
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert_eq!(
        flagged[0]["ips"],
        serde_json::json!(["127.0.0.1", "127.0.0.2"])
    );
    let signals = app.security_signals(&Principal::operator()).await.unwrap();
    assert_eq!(signals.len(), 1);
    assert_eq!(signals[0].kind, "shared_account");
    assert_eq!(signals[0].ips, ["127.0.0.1", "127.0.0.2"]);
    // Owners may not read the signals.
    assert!(matches!(
        app.security_signals(&s.principal).await,
        Err(AppError::Forbidden(_))
    ));
    // The owner sees both sessions of his own and signs out everywhere.
    let mine = app.list_sessions(&s).await.unwrap();
    assert_eq!(mine.len(), 3);
    assert_eq!(mine.iter().filter(|r| r.current).count(), 1);
    app.sign_out(&s, true).await.unwrap();
    assert!(matches!(
        app.web_session(&a.token, LOCAL).await,
        Err(AppError::Unauthorized(_))
    ));
    assert!(app.list_sessions(&s).await.unwrap().is_empty());
}

#[tokio::test]
async fn an_allow_list_refuses_other_addresses_even_with_the_right_password() {
    let (app, _d) = app().await;
    let otp = user(&app, "nguyen.van.an", "owner").await;
    let op = Principal::operator();
    let bad = app
        .set_allowed_ips(&op, "STNMT", &["10.0.0.0/8".into(), "mạng nội bộ".into()])
        .await;
    assert!(matches!(bad, Err(AppError::Invalid(_))), "{bad:?}");
    app.set_allowed_ips(&op, "STNMT", &["10.0.0.0/8".into()])
        .await
        .unwrap();
    let refused = app.sign_in("nguyen.van.an", &otp, LOCAL, "t").await;
    assert!(
        matches!(&refused, Err(AppError::Forbidden(m)) if m == IP_NOT_ALLOWED),
        "{refused:?}"
    );
    let s = app
        .sign_in("nguyen.van.an", &otp, ip("10.1.2.3"), "t")
        .await
        .unwrap();
    // The cookie carried to an address outside the list is refused too.
    assert!(matches!(
        app.web_session(&s.token, LOCAL).await,
        Err(AppError::Forbidden(_))
    ));
    app.set_allowed_ips(&op, "STNMT", &[]).await.unwrap();
    app.sign_in("nguyen.van.an", &otp, LOCAL, "t")
        .await
        .unwrap();
    assert_eq!(actions(&app, "organisation.allowed_ips").await.len(), 2);
}

#[tokio::test]
async fn sessions_that_ended_over_a_day_ago_are_deleted_at_the_next_sign_in() {
    let (app, _d) = app().await;
    let otp = user(&app, "nguyen.van.an", "owner").await;
    let old = app
        .sign_in("nguyen.van.an", &otp, LOCAL, "t")
        .await
        .unwrap();
    let recent = app
        .sign_in("nguyen.van.an", &otp, LOCAL, "t")
        .await
        .unwrap();
    let other = user(&app, "le.thi.binh", "owner").await;
    let theirs = app
        .sign_in("le.thi.binh", &other, LOCAL, "t")
        .await
        .unwrap();
    let two_days_ago = crate::now() - Duration::days(2);
    for id in [old.session.id, theirs.session.id] {
        session::Entity::update_many()
            .col_expr(session::Column::ExpiresAt, Expr::value(two_days_ago))
            .filter(session::Column::Id.eq(id))
            .exec(&app.db)
            .await
            .unwrap();
    }
    let ids = |rows: Vec<session::Model>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    app.sign_in("nguyen.van.an", &otp, LOCAL, "t")
        .await
        .unwrap();
    let left = ids(session::Entity::find().all(&app.db).await.unwrap());
    assert!(!left.contains(&old.session.id), "{left:?}");
    // A session that is still live, and another account's, are kept.
    assert!(left.contains(&recent.session.id), "{left:?}");
    assert!(left.contains(&theirs.session.id), "{left:?}");
    let logins = actions(&app, "auth.login").await;
    assert_eq!(logins.last().unwrap()["ended_sessions_deleted"], 1);
}

#[tokio::test]
async fn unknown_and_expired_session_tokens_are_refused() {
    let (app, _d) = app().await;
    let otp = user(&app, "nguyen.van.an", "owner").await;
    assert!(app.web_session("", LOCAL).await.is_err());
    assert!(app.web_session(&random_token(), LOCAL).await.is_err());
    let s = app
        .sign_in("nguyen.van.an", &otp, LOCAL, "t")
        .await
        .unwrap();
    session::Entity::update_many()
        .col_expr(
            session::Column::ExpiresAt,
            Expr::value(crate::now() - Duration::seconds(1)),
        )
        .exec(&app.db)
        .await
        .unwrap();
    assert!(matches!(
        app.web_session(&s.token, LOCAL).await,
        Err(AppError::Unauthorized(_))
    ));
    // Idle expiry is refreshed by use, but never past the absolute expiry.
    let s = app
        .sign_in("nguyen.van.an", &otp, LOCAL, "t")
        .await
        .unwrap();
    session::Entity::update_many()
        .col_expr(
            session::Column::CreatedAt,
            Expr::value(crate::now() - ABSOLUTE + Duration::minutes(1)),
        )
        .col_expr(
            session::Column::LastSeenAt,
            Expr::value(crate::now() - Duration::minutes(5)),
        )
        .filter(session::Column::Id.eq(s.session.id))
        .exec(&app.db)
        .await
        .unwrap();
    let seen = app.web_session(&s.token, LOCAL).await.unwrap();
    assert!(seen.expires_at <= crate::now() + Duration::minutes(1));
}

/// The demo's two reviewers (principal, second-factor secret) and its submitted level-3 change.
async fn two_reviewers_and_a_change() -> (
    App,
    tempfile::TempDir,
    [(Principal, String); 2],
    i64,
    wire::NewSignOff,
) {
    let (app, d) = app().await;
    let demo = app.seed_demo().await.unwrap();
    let mut reviewers = vec![];
    for a in demo.accounts.iter().filter(|a| a.role == "reviewer") {
        let u = user::Entity::find()
            .filter(user::Column::Username.eq(a.username.as_str()))
            .one(&app.db)
            .await
            .unwrap()
            .unwrap();
        let p = crate::identity::tokens::principal_of(&app.db, &u)
            .await
            .unwrap();
        reviewers.push((p, a.second_factor_secret.clone().unwrap()));
    }
    let [a, b]: [(Principal, String); 2] = reviewers.try_into().unwrap();
    let cr = change_request::Entity::find()
        .filter(change_request::Column::State.eq("submitted"))
        .filter(change_request::Column::Kind.eq("configuration"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let req = wire::NewSignOff {
        conclusion: "pass".into(),
        checklist: app
            .pack
            .checklist
            .iter()
            .map(|i| wire::ItemAnswer {
                item: i.id.clone(),
                result: "pass".into(),
                note: String::new(),
            })
            .collect(),
        findings: vec![],
        conditions: vec![],
        second_factor_code: None,
    };
    (app, d, [a, b], cr.id, req)
}

async fn last_step(app: &App, user_id: i64) -> Option<i64> {
    user_row(&app.db, user_id).await.unwrap().totp_last_step
}

#[tokio::test]
async fn a_sign_off_that_loses_after_its_checks_leaves_its_code_unused() {
    let (app, _d, [(hoa, hoa_secret), (duc, duc_secret)], id, req) =
        two_reviewers_and_a_change().await;
    // The level-3 change needs one sign-off: the first reviewer's approves it.
    let mut first = req.clone();
    first.second_factor_code = Some(code(&hoa_secret, 0));
    let approved = app
        .sign_off_with_code(&hoa, id, first, LOCAL)
        .await
        .unwrap();
    assert_eq!(approved.state, "approved");
    // The second reviewer's sign-off passed its checks before that commit, and runs now: it is
    // refused, and its code stays unused (the step is not recorded, no audit event, no failure).
    let before = last_step(&app, duc.user_id).await;
    let u = user_row(&app.db, duc.user_id).await.unwrap();
    let by = CodeUse {
        principal: &duc,
        session: None,
        ip: LOCAL,
        field: "second_factor_code",
    };
    let lost = app
        .sign_off_coded(
            by,
            &u,
            Some(&code(&duc_secret, 0)),
            serde_json::json!({ "purpose": "sign_off" }),
            id,
            req.clone(),
        )
        .await;
    assert!(matches!(lost, Err(AppError::Conflict(..))), "{lost:?}");
    assert_eq!(last_step(&app, duc.user_id).await, before);
    let used = actions(&app, "auth.second_factor").await;
    assert!(
        used.iter().all(|e| e["actor"] != duc.username.as_str()),
        "{used:?}"
    );
    assert_eq!(
        user_row(&app.db, duc.user_id).await.unwrap().failed_logins,
        0
    );
    let cr = app.get_change(&duc, id).await.unwrap();
    assert_eq!(cr.sign_offs.len(), 1);
    let u = user_row(&app.db, duc.user_id).await.unwrap();
    let step = totp::verify(
        &key_of(&duc_secret),
        &code(&duc_secret, 0),
        crate::now().timestamp(),
        u.totp_last_step,
    );
    assert!(step.is_some(), "the loser's code is still unused");
}

#[tokio::test]
async fn two_sign_offs_at_once_consume_only_the_winners_code() {
    let (app, _d, [(hoa, hoa_secret), (duc, duc_secret)], id, req) =
        two_reviewers_and_a_change().await;
    let (before_hoa, before_duc) = (
        last_step(&app, hoa.user_id).await,
        last_step(&app, duc.user_id).await,
    );
    let mut a = req.clone();
    a.second_factor_code = Some(code(&hoa_secret, 0));
    let mut b = req;
    b.second_factor_code = Some(code(&duc_secret, 0));
    let (ra, rb) = tokio::join!(
        app.sign_off_with_code(&hoa, id, a, LOCAL),
        app.sign_off_with_code(&duc, id, b, LOCAL)
    );
    assert_eq!(
        usize::from(ra.is_ok()) + usize::from(rb.is_ok()),
        1,
        "{ra:?} {rb:?}"
    );
    let (winner, loser, loser_before) = if ra.is_ok() {
        (&hoa, &duc, before_duc)
    } else {
        (&duc, &hoa, before_hoa)
    };
    assert_ne!(last_step(&app, winner.user_id).await, None);
    assert_eq!(last_step(&app, loser.user_id).await, loser_before);
    let used: Vec<_> = actions(&app, "auth.second_factor")
        .await
        .into_iter()
        .filter(|e| e["purpose"] == "sign_off")
        .collect();
    assert_eq!(used.len(), 1, "{used:?}");
    assert_eq!(used[0]["actor"], winner.username.as_str());
    let cr = app.get_change(winner, id).await.unwrap();
    assert_eq!(cr.state, "approved");
    assert_eq!(cr.sign_offs.len(), 1);
}

#[tokio::test]
async fn a_token_issued_before_digests_works_and_gets_its_digest_at_first_use() {
    use changegate_store::entity::api_token;
    let (mut app, _d) = app().await;
    user(&app, "ci.stnmt", "ci").await;
    // Issued without a token key: an argon2id hash only, as in older databases.
    let old = app
        .create_token(
            &Principal::operator(),
            "ci.stnmt",
            wire::NewToken {
                name: "old".into(),
                expires_in_days: Some(30),
            },
        )
        .await
        .unwrap();
    let row = || async {
        api_token::Entity::find()
            .filter(api_token::Column::PublicId.eq(old.info.id.as_str()))
            .one(&app.db)
            .await
            .unwrap()
            .unwrap()
    };
    assert!(row().await.token_digest.is_none());
    app.auth.key = Some(tokens::TokenKey::ephemeral());
    let p = app.auth.authenticate(&app.db, &old.token).await.unwrap();
    assert_eq!(p.username, "ci.stnmt");
    let upgraded = row().await;
    assert_eq!(
        upgraded.token_digest,
        app.auth.key.as_ref().map(|k| k.digest(&old.token))
    );
    // A wrong secret with the same public id: refused, and the row keeps its digest.
    let wrong = format!("cg_{}_{}", old.info.id, "A".repeat(43));
    let fresh_cache = tokens::AuthCache::with_key(app.auth.key.clone());
    assert!(matches!(
        fresh_cache.authenticate(&app.db, &wrong).await,
        Err(AppError::Unauthorized(_))
    ));
    // Through the digest, from a cache that never saw it.
    let p = fresh_cache.authenticate(&app.db, &old.token).await.unwrap();
    assert_eq!(p.username, "ci.stnmt");
    assert_eq!(row().await.token_digest, upgraded.token_digest);
}
