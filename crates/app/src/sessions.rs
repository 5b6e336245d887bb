//! Browser sessions: sign-in with lockout and backoff, forced password change, TOTP enrolment and
//! second factor, CSRF tokens, logout everywhere, the shared-account signal and IP allow-lists.
//!
//! A session is a row of `sessions` found by the SHA-256 of its token; the token itself lives only
//! in the browser's cookie. A session moves through [`Stage`]s: a user who signed in with a
//! one-time password must first change it, a reviewer or admin must enrol a second factor, an
//! enrolled user must give a code; only an [`Stage::Active`] session may use the pages.
//!
//! Wrong usernames and wrong passwords get the same answer ([`WRONG_CREDENTIALS`]) after the same
//! work (an argon2id verification, an audit event, the same backoff), so the answer does not tell
//! which accounts exist. Five failures in a row lock the account for 15 minutes; failures of
//! usernames that do not exist are counted in memory the same way.
//!
//! Every state change is one [`crate::WriteTx`] with its audit event. The one exception is the
//! refresh of a session's last-seen time and idle expiry on page views: bookkeeping, not an
//! action, written at most every 30 seconds without an audit event.

use crate::auth::{Principal, principal_and_org};
use crate::registry::{org_by_code, user_by_name};
use crate::{App, AppError, AppResult, event, json_col, to_json, totp};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use changegate_api as wire;
use changegate_domain::Role;
use changegate_store::audit::NewEvent;
use changegate_store::entity::{api_token, organisation, security_signal, session, user};
use changegate_store::sea_orm::sea_query::Expr;
use changegate_store::sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    QueryFilter, QueryOrder,
};
use chrono::{DateTime, Duration, Utc};
pub use ipnet::IpNet;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{LazyLock, Mutex};
use tracing::instrument;

/// The name of the session cookie.
pub const SESSION_COOKIE: &str = "cg_session";
/// A session ends after this long without a request.
pub const IDLE: Duration = Duration::minutes(30);
/// A session ends this long after sign-in whatever happens.
pub const ABSOLUTE: Duration = Duration::hours(12);
/// Failures in a row that lock an account.
pub const LOCK_AFTER: i32 = 5;
/// How long a locked account stays locked.
pub const LOCK_FOR: Duration = Duration::minutes(15);
/// How long a second-factor code given with an API sign-off lets that token's further API
/// sign-offs go without a fresh code (a reviewer signing off a batch from a script enters one
/// code, not one per change, and authenticator codes are accepted once per 30-second step).
pub const API_STEP_UP: Duration = Duration::minutes(5);
/// How often at most a page view refreshes the session row.
const TOUCH_EVERY: Duration = Duration::seconds(30);

/// The one answer to a wrong username, a wrong password, a locked or disabled account.
pub const WRONG_CREDENTIALS: &str = "Sai tên đăng nhập hoặc mật khẩu / wrong username or password";
/// The answer to an unknown, expired or revoked session.
pub const SESSION_ENDED: &str =
    "Phiên đăng nhập đã hết hạn, hãy đăng nhập lại / the session has ended, please sign in again";
/// The answer to a second-factor code from an account that has none.
pub const NO_SECOND_FACTOR: &str = "Tài khoản chưa đăng ký xác thực hai lớp (đăng nhập giao diện web để đăng ký) / the account has no second factor (sign in to the web UI to enrol one)";
/// The answer to a wrong or reused second-factor code.
pub const WRONG_CODE: &str =
    "Mã xác thực không đúng hoặc đã được dùng / the code is wrong or was already used";
/// The answer to a sign-in from an address outside the organisation's allow-list.
pub const IP_NOT_ALLOWED: &str =
    "Không được phép đăng nhập từ địa chỉ IP này / signing in from this IP address is not allowed";

/// What a session may do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Signed in with a one-time password: must set a new one.
    ChangePassword,
    /// A reviewer or admin without a second factor: must enrol one.
    EnrolSecondFactor,
    /// Enrolled: must give a code.
    SecondFactor,
    /// Signed in fully.
    Active,
}

impl Stage {
    /// The stage's name in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::ChangePassword => "change_password",
            Stage::EnrolSecondFactor => "enrol_second_factor",
            Stage::SecondFactor => "second_factor",
            Stage::Active => "active",
        }
    }

    /// Parses a stage name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Stage::ChangePassword,
            Stage::EnrolSecondFactor,
            Stage::SecondFactor,
            Stage::Active,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }

    /// The stage after the password is known good: change it, enrol a second factor, give a
    /// code, or done.
    fn after_password(u: &user::Model, role: Role) -> Self {
        if u.must_change_password {
            Stage::ChangePassword
        } else {
            Self::after_password_change(u, role)
        }
    }

    fn after_password_change(u: &user::Model, role: Role) -> Self {
        if u.totp_secret.is_some() {
            Stage::SecondFactor
        } else if role.needs_second_factor() {
            Stage::EnrolSecondFactor
        } else {
            Stage::Active
        }
    }
}

/// A signed-in browser session.
#[derive(Debug, Clone)]
pub struct WebSession {
    /// Row id.
    pub id: i64,
    /// Who.
    pub principal: Principal,
    /// What it may do next.
    pub stage: Stage,
    /// The CSRF token every form of this session carries.
    pub csrf: String,
    /// The address it was opened from.
    pub ip: IpAddr,
    /// When it ends unless used (never after the absolute expiry).
    pub expires_at: DateTime<Utc>,
    /// Whether the user has a second factor.
    pub second_factor: bool,
}

impl WebSession {
    fn code_use(&self) -> CodeUse<'_> {
        CodeUse {
            principal: &self.principal,
            session: Some(self.id),
            ip: self.ip,
            field: "code",
        }
    }
}

/// Who presents a second-factor code, and through what: a web session, or an API request
/// (`session` None).
struct CodeUse<'a> {
    principal: &'a Principal,
    session: Option<i64>,
    ip: IpAddr,
    /// The input field a wrong code is reported on.
    field: &'static str,
}

impl WebSession {
    /// The principal of an [`Stage::Active`] session; any other stage is refused.
    pub fn active(&self) -> AppResult<&Principal> {
        if self.stage == Stage::Active {
            Ok(&self.principal)
        } else {
            Err(wrong_stage(self.stage))
        }
    }

    /// Whether `csrf` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, csrf: &str) -> bool {
        totp::constant_time_eq(self.csrf.as_bytes(), csrf.as_bytes())
    }
}

/// A new session: the token goes in the cookie, and nowhere else.
#[derive(Debug, Clone)]
pub struct SignedIn {
    /// The session token (cookie value).
    pub token: String,
    /// The session.
    pub session: WebSession,
}

/// A second factor being enrolled: what the authenticator app needs.
#[derive(Debug, Clone, Serialize)]
pub struct TotpEnrolment {
    /// The secret, base32.
    pub secret_base32: String,
    /// The `otpauth://` URI (for a QR code).
    pub otpauth_uri: String,
}

/// One of a user's live sessions.
#[derive(Debug, Clone, Serialize)]
pub struct SessionRow {
    /// Row id.
    pub id: i64,
    /// Address it was opened from.
    pub ip: String,
    /// Browser.
    pub user_agent: String,
    /// Stage.
    pub stage: Stage,
    /// Signed in at.
    pub created_at: DateTime<Utc>,
    /// Last request.
    pub last_seen_at: DateTime<Utc>,
    /// Ends at.
    pub expires_at: DateTime<Utc>,
    /// Whether it is the session asking.
    pub current: bool,
}

/// Something admins should look at.
#[derive(Debug, Clone, Serialize)]
pub struct SecuritySignal {
    /// `account_locked` or `shared_account`.
    pub kind: String,
    /// The account.
    pub username: String,
    /// Its owner's name.
    pub display_name: String,
    /// Its organisation.
    pub org: String,
    /// For `shared_account`, the two addresses; for `account_locked`, empty.
    pub ips: Vec<String>,
    /// When it was raised (for a lock: when it ends, see `until`).
    pub at: DateTime<Utc>,
    /// For `account_locked`: locked until then.
    pub until: Option<DateTime<Utc>>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Failures {
    count: i32,
    locked_until: Option<DateTime<Utc>>,
}

/// In-process state of sign-in: failures of usernames that do not exist (so that they are
/// answered like existing ones), and shared-account signals already raised. Rows in the
/// database hold everything else.
#[derive(Debug)]
pub struct SessionState {
    unknown: Mutex<HashMap<String, Failures>>,
    signalled: Mutex<HashSet<(i64, String, String)>>,
}

impl Default for SessionState {
    fn default() -> Self {
        // Hash the dummy now, so that the first unknown username costs what a known one does.
        LazyLock::force(&DUMMY_HASH);
        Self {
            unknown: Mutex::new(HashMap::new()),
            signalled: Mutex::new(HashSet::new()),
        }
    }
}

/// An argon2id hash of a random password nobody knows: unknown usernames are verified against it
/// so that they take as long as known ones.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    crate::auth::hash_secret(&crate::auth::one_time_password()).unwrap_or_default()
});

/// How long to wait before answering after the `n`th failure in a row: 200 ms doubling, at most
/// 3.2 s.
pub fn backoff(n: i32) -> std::time::Duration {
    if n <= 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::from_millis(200u64 << (n - 1).clamp(0, 4))
}

fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

/// The SHA-256 (hex) under which a session token is stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn wrong_stage(stage: Stage) -> AppError {
    let (vi, en) = match stage {
        Stage::ChangePassword => ("đổi mật khẩu", "change the password"),
        Stage::EnrolSecondFactor => ("đăng ký xác thực hai lớp", "enrol a second factor"),
        Stage::SecondFactor => ("nhập mã xác thực", "give the second-factor code"),
        Stage::Active => ("đăng xuất", "sign out"),
    };
    AppError::Forbidden(format!(
        "Phiên này phải {vi} trước / this session must first {en}"
    ))
}

fn unauthorized_session() -> AppError {
    AppError::Unauthorized(SESSION_ENDED.into())
}

fn clip(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

/// Parses an allow-list entry: a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a single address.
pub fn parse_cidr(s: &str) -> Option<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .ok()
        .or_else(|| s.parse::<IpAddr>().ok().map(IpNet::from))
        .map(|n| n.trunc())
}

/// Whether `ip` may sign in for an organisation with this stored allow-list (JSON array of
/// CIDRs; empty or absent: any address).
pub fn ip_allowed(allowed: Option<&str>, ip: IpAddr) -> AppResult<bool> {
    let Some(text) = allowed.filter(|t| !t.trim().is_empty()) else {
        return Ok(true);
    };
    let list: Vec<String> = json_col("allowed_ips", text)?;
    let ip = ip.to_canonical();
    Ok(list.is_empty()
        || list
            .iter()
            .filter_map(|c| parse_cidr(c))
            .any(|n| n.contains(&ip)))
}

/// The audit event of a sign-in attempt in the name of whoever was claimed.
fn attempt_event(
    claimed: &str,
    user_id: Option<i64>,
    action: &str,
    after: serde_json::Value,
) -> NewEvent {
    let who = if claimed.is_empty() {
        "anonymous".to_owned()
    } else {
        clip(claimed, 64)
    };
    NewEvent {
        actor: who.clone(),
        actor_id: user_id,
        action: action.to_owned(),
        entity: "user".to_owned(),
        entity_id: who,
        system_id: None,
        before: None,
        after: Some(after.to_string()),
    }
}

async fn live_row(
    db: &impl ConnectionTrait,
    id: i64,
    now: DateTime<Utc>,
) -> AppResult<session::Model> {
    session::Entity::find_by_id(id)
        .one(db)
        .await?
        .filter(|r| r.revoked_at.is_none() && r.expires_at > now && r.created_at + ABSOLUTE > now)
        .ok_or_else(unauthorized_session)
}

async fn user_row(db: &impl ConnectionTrait, id: i64) -> AppResult<user::Model> {
    user::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or_else(unauthorized_session)
}

/// Closes the API step-up windows of every token of user `user_id`.
pub(crate) async fn close_step_up(db: &impl ConnectionTrait, user_id: i64) -> AppResult<()> {
    api_token::Entity::update_many()
        .col_expr(
            api_token::Column::StepUpUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(api_token::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The refusal of a second-factor code while the account is locked.
fn locked(until: DateTime<Utc>) -> AppError {
    AppError::Forbidden(format!(
        "Tài khoản đang bị khoá đến {until} sau nhiều lần nhập sai / the account is locked until {until} after repeated failures"
    ))
}

fn stage_of(row: &session::Model) -> AppResult<Stage> {
    Stage::parse(&row.stage)
        .ok_or_else(|| AppError::Internal(format!("session {} has stage {:?}", row.id, row.stage)))
}

fn web_session(
    row: &session::Model,
    principal: Principal,
    u: &user::Model,
) -> AppResult<WebSession> {
    Ok(WebSession {
        id: row.id,
        principal,
        stage: stage_of(row)?,
        csrf: row.csrf.clone(),
        ip: row.ip.parse().unwrap_or(IpAddr::from([0, 0, 0, 0])),
        expires_at: row.expires_at,
        second_factor: u.totp_secret.is_some(),
    })
}

/// Revokes live sessions of a user (all, or all but `keep`); returns how many.
async fn revoke_sessions(
    db: &impl ConnectionTrait,
    user_id: i64,
    keep: Option<i64>,
    at: DateTime<Utc>,
) -> AppResult<u64> {
    let mut q = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(Some(at)))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(at));
    if let Some(k) = keep {
        q = q.filter(session::Column::Id.ne(k));
    }
    Ok(q.exec(db).await?.rows_affected)
}

impl App {
    /// Signs in with a username and password from `ip`. A wrong username, a wrong password and a
    /// locked or disabled account all answer [`WRONG_CREDENTIALS`] after the same work and
    /// backoff; every failure is audited (`auth.login_failed`, with the reason), as is every
    /// success (`auth.login`). Five failures in a row lock the account for 15 minutes
    /// (`account.locked`, notified). A right password from outside the organisation's IP
    /// allow-list is refused (Forbidden, [`IP_NOT_ALLOWED`]).
    #[instrument(skip_all, fields(%ip), err(level = "info"))]
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        ip: IpAddr,
        user_agent: &str,
    ) -> AppResult<SignedIn> {
        let ip = ip.to_canonical();
        let claimed = clip(&username.trim().to_lowercase(), 64);
        let ua = clip(user_agent, 300);
        let found = if claimed.is_empty() {
            None
        } else {
            user::Entity::find()
                .filter(user::Column::Username.eq(claimed.as_str()))
                .one(&self.db)
                .await?
        };
        let phc = found
            .as_ref()
            .map_or_else(|| DUMMY_HASH.clone(), |u| u.password_hash.clone());
        let right = self.auth.verify_password(password, &phc).await? && found.is_some();
        let now = crate::now();
        let Some(u) = found else {
            return self.unknown_user_failed(&claimed, ip, &ua, now).await;
        };
        let role = Role::parse(&u.role).map_err(|e| AppError::Internal(e.to_string()))?;
        let refusal = if !u.active {
            Some("inactive")
        } else if role == Role::Ci {
            Some("pipeline_account")
        } else if u.locked_until.is_some_and(|t| t > now) {
            Some("locked")
        } else if !right {
            Some("wrong_password")
        } else {
            None
        };
        if let Some(reason) = refusal {
            let n = self
                .record_failure(&u, &claimed, reason, ip, &ua, None)
                .await?;
            tokio::time::sleep(backoff(n)).await;
            return Err(AppError::Unauthorized(WRONG_CREDENTIALS.into()));
        }
        let (principal, org) = principal_and_org(&self.db, &u).await?;
        if !ip_allowed(org.allowed_ips.as_deref(), ip)? {
            let tx = self.begin().await?;
            tx.audit(attempt_event(
                &claimed,
                Some(u.id),
                "auth.login_failed",
                serde_json::json!({ "reason": "ip_not_allowed", "ip": ip.to_string(), "user_agent": ua }),
            ))
            .await?;
            tx.commit().await?;
            return Err(AppError::Forbidden(IP_NOT_ALLOWED.into()));
        }
        let stage = Stage::after_password(&u, role);
        let token = random_token();
        let tx = self.begin().await?;
        let at = tx.at();
        // The failure count starts again only once the whole sign-in succeeded: a right password
        // alone must not reset the count of wrong second-factor codes (sign in, guess four codes,
        // sign in again, ...).
        if stage == Stage::Active {
            let mut am: user::ActiveModel = u.clone().into();
            am.failed_logins = Set(0);
            am.locked_until = Set(None);
            am.update(&tx.txn).await?;
        }
        let row = session::ActiveModel {
            token_hash: Set(token_hash(&token)),
            user_id: Set(u.id),
            stage: Set(stage.as_str().into()),
            csrf: Set(random_token()),
            ip: Set(ip.to_string()),
            user_agent: Set(ua.clone()),
            created_at: Set(at),
            last_seen_at: Set(at),
            expires_at: Set(at + IDLE),
            ..Default::default()
        }
        .insert(&tx.txn)
        .await?;
        // The account's sessions that ended over a day ago are deleted (the audit log keeps
        // their sign-in and sign-out), so that the table holds live sessions, not every one ever.
        let ended = at - Duration::days(1);
        let pruned = session::Entity::delete_many()
            .filter(session::Column::UserId.eq(u.id))
            .filter(
                Condition::any()
                    .add(session::Column::ExpiresAt.lt(ended))
                    .add(session::Column::RevokedAt.lt(ended))
                    .add(session::Column::CreatedAt.lt(ended - ABSOLUTE)),
            )
            .exec(&tx.txn)
            .await?
            .rows_affected;
        tx.audit(event(
            Some(&principal),
            "auth.login",
            "session",
            row.id,
            None,
            None,
            Some(serde_json::json!({ "ip": row.ip, "user_agent": ua, "stage": stage.as_str(), "ended_sessions_deleted": pruned })),
        ))
        .await?;
        tx.commit().await?;
        // Other live sessions of this account from other addresses: the shared-account signal.
        let others = session::Entity::find()
            .filter(session::Column::UserId.eq(u.id))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(now))
            .filter(session::Column::Ip.ne(row.ip.as_str()))
            .all(&self.db)
            .await?;
        let ips: HashSet<String> = others.into_iter().map(|s| s.ip).collect();
        for other in ips {
            self.flag_shared(&principal, &other, &row.ip).await;
        }
        let session = web_session(&row, principal, &u)?;
        Ok(SignedIn { token, session })
    }

    async fn unknown_user_failed(
        &self,
        claimed: &str,
        ip: IpAddr,
        ua: &str,
        now: DateTime<Utc>,
    ) -> AppResult<SignedIn> {
        let n = {
            let mut m = self
                .sessions
                .unknown
                .lock()
                .map_err(|_| AppError::Internal("sign-in state poisoned".into()))?;
            if m.len() > 10_000 {
                m.clear();
            }
            let f = m.entry(claimed.to_owned()).or_default();
            if f.locked_until.is_some_and(|t| t > now) {
                LOCK_AFTER
            } else {
                f.count += 1;
                let n = f.count;
                if n >= LOCK_AFTER {
                    *f = Failures {
                        count: 0,
                        locked_until: Some(now + LOCK_FOR),
                    };
                }
                n
            }
        };
        let tx = self.begin().await?;
        tx.audit(attempt_event(
            claimed,
            None,
            "auth.login_failed",
            serde_json::json!({ "reason": "unknown_user", "ip": ip.to_string(), "user_agent": ua, "failures": n }),
        ))
        .await?;
        tx.commit().await?;
        tokio::time::sleep(backoff(n)).await;
        Err(AppError::Unauthorized(WRONG_CREDENTIALS.into()))
    }

    /// Records a failure of `u` (password at sign-in, current password, second-factor code) in
    /// one transaction: counts it, locks the account at the fifth in a row (and revokes
    /// `session`, the session in which it happened, if any), audits it. Returns the count for
    /// the backoff.
    async fn record_failure(
        &self,
        u: &user::Model,
        claimed: &str,
        reason: &str,
        ip: IpAddr,
        ua: &str,
        session: Option<i64>,
    ) -> AppResult<i32> {
        let tx = self.begin().await?;
        let n = record_failure_in(&tx, u.id, claimed, reason, ip, ua, session).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Raises the shared-account signal for `p` seen from `a` and `b` at once: audited
    /// (`account.shared_suspected`) and notified (`account.shared`) once per pair and day.
    /// Best effort: a failure is logged, never shown to the user.
    async fn flag_shared(&self, p: &Principal, a: &str, b: &str) {
        if let Err(e) = self.try_flag_shared(p, a, b).await {
            tracing::warn!(error = %e, user = %p.username, "could not record the shared-account signal");
        }
    }
}

/// Counts a failed attempt of user `user_id` in `tx`: audited, and the fifth in a row locks the
/// account (audited and notified; its sessions still signing in end). Returns the count.
async fn record_failure_in(
    tx: &crate::WriteTx<'_>,
    user_id: i64,
    claimed: &str,
    reason: &str,
    ip: IpAddr,
    ua: &str,
    session: Option<i64>,
) -> AppResult<i32> {
    let at = tx.at();
    let fresh = user_row(&tx.txn, user_id).await?;
    let already_locked = fresh.locked_until.is_some_and(|t| t > at);
    let n = if already_locked {
        LOCK_AFTER
    } else {
        fresh.failed_logins.saturating_add(1)
    };
    let locks = !already_locked && n >= LOCK_AFTER;
    let mut am: user::ActiveModel = fresh.clone().into();
    if locks {
        am.failed_logins = Set(0);
        am.locked_until = Set(Some(at + LOCK_FOR));
    } else if !already_locked {
        am.failed_logins = Set(n);
    }
    am.update(&tx.txn).await?;
    let action = if reason == "wrong_second_factor" {
        "auth.second_factor_failed"
    } else {
        "auth.login_failed"
    };
    tx.audit(attempt_event(
            claimed,
            Some(fresh.id),
            action,
            serde_json::json!({ "reason": reason, "ip": ip.to_string(), "user_agent": ua, "failures": n, "session": session }),
        ))
        .await?;
    if locks {
        // The session that failed, and every session of the account still signing in.
        let mut which = Condition::any().add(session::Column::Stage.ne(Stage::Active.as_str()));
        if let Some(s) = session {
            which = which.add(session::Column::Id.eq(s));
        }
        let revoked = session::Entity::update_many()
            .col_expr(session::Column::RevokedAt, Expr::value(Some(at)))
            .filter(session::Column::UserId.eq(fresh.id))
            .filter(session::Column::RevokedAt.is_null())
            .filter(which)
            .exec(&tx.txn)
            .await?
            .rows_affected;
        let until = at + LOCK_FOR;
        tx.audit(event(
                None,
                "account.locked",
                "user",
                &fresh.username,
                None,
                None,
                Some(serde_json::json!({ "until": until, "failures": LOCK_AFTER, "ip": ip.to_string(), "revoked_sessions": revoked })),
            ))
            .await?;
        tx.notify(
            "account.locked",
            serde_json::json!({ "username": fresh.username, "display_name": fresh.display_name,
                    "until": until.to_rfc3339(), "ip": ip.to_string(), "failures": LOCK_AFTER }),
        )
        .await?;
    }
    Ok(n)
}

impl App {
    async fn try_flag_shared(&self, p: &Principal, a: &str, b: &str) -> AppResult<()> {
        if a == b {
            return Ok(());
        }
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        let detail = format!("{lo} {hi}");
        let day = crate::now().date_naive().to_string();
        let key = (p.user_id, detail.clone(), day.clone());
        if self
            .sessions
            .signalled
            .lock()
            .is_ok_and(|s| s.contains(&key))
        {
            return Ok(());
        }
        let tx = self.begin().await?;
        let exists = security_signal::Entity::find()
            .filter(security_signal::Column::UserId.eq(p.user_id))
            .filter(security_signal::Column::Kind.eq("shared_account"))
            .filter(security_signal::Column::Detail.eq(detail.as_str()))
            .filter(security_signal::Column::Day.eq(day.as_str()))
            .one(&tx.txn)
            .await?
            .is_some();
        if !exists {
            security_signal::ActiveModel {
                user_id: Set(p.user_id),
                kind: Set("shared_account".into()),
                detail: Set(detail.clone()),
                day: Set(day.clone()),
                created_at: Set(tx.at()),
                ..Default::default()
            }
            .insert(&tx.txn)
            .await?;
            tx.audit(event(
                None,
                "account.shared_suspected",
                "user",
                &p.username,
                None,
                None,
                Some(serde_json::json!({ "ips": [lo, hi], "org": p.org_code })),
            ))
            .await?;
            tx.notify(
                "account.shared",
                serde_json::json!({ "username": p.username, "display_name": p.display_name,
                    "org": p.org_code, "ips": [lo, hi] }),
            )
            .await?;
            tx.commit().await?;
        }
        if let Ok(mut s) = self.sessions.signalled.lock() {
            if s.len() > 10_000 {
                s.clear();
            }
            s.insert(key);
        }
        Ok(())
    }

    /// The session of a cookie's token, used from `ip`: refreshes its idle expiry. Unknown,
    /// expired or revoked: Unauthorized ([`SESSION_ENDED`]). Used from an address outside the
    /// organisation's allow-list: Forbidden. Used from another address than the one it was
    /// opened from: the shared-account signal.
    pub async fn web_session(&self, token: &str, ip: IpAddr) -> AppResult<WebSession> {
        if !(20..=100).contains(&token.len()) {
            return Err(unauthorized_session());
        }
        let ip = ip.to_canonical();
        let now = crate::now();
        let row = session::Entity::find()
            .filter(session::Column::TokenHash.eq(token_hash(token)))
            .one(&self.db)
            .await?
            .filter(|r| {
                r.revoked_at.is_none() && r.expires_at > now && r.created_at + ABSOLUTE > now
            })
            .ok_or_else(unauthorized_session)?;
        let u = user_row(&self.db, row.user_id).await?;
        if !u.active {
            return Err(unauthorized_session());
        }
        let (principal, org) = principal_and_org(&self.db, &u).await?;
        if !ip_allowed(org.allowed_ips.as_deref(), ip)? {
            return Err(AppError::Forbidden(IP_NOT_ALLOWED.into()));
        }
        let mut row = row;
        if now - row.last_seen_at >= TOUCH_EVERY {
            let expires = (now + IDLE).min(row.created_at + ABSOLUTE);
            session::Entity::update_many()
                .col_expr(session::Column::LastSeenAt, Expr::value(now))
                .col_expr(session::Column::ExpiresAt, Expr::value(expires))
                .filter(session::Column::Id.eq(row.id))
                .exec(&self.db)
                .await?;
            row.last_seen_at = now;
            row.expires_at = expires;
        }
        let here = ip.to_string();
        if here != row.ip {
            self.flag_shared(&principal, &row.ip, &here).await;
        }
        web_session(&row, principal, &u)
    }

    /// Signs out this session, or every session of its user (`everywhere`).
    pub async fn sign_out(&self, s: &WebSession, everywhere: bool) -> AppResult<()> {
        let tx = self.begin().await?;
        let at = tx.at();
        let n = if everywhere {
            revoke_sessions(&tx.txn, s.principal.user_id, None, at).await?
        } else {
            session::Entity::update_many()
                .col_expr(session::Column::RevokedAt, Expr::value(Some(at)))
                .filter(session::Column::Id.eq(s.id))
                .filter(session::Column::RevokedAt.is_null())
                .exec(&tx.txn)
                .await?
                .rows_affected
        };
        tx.audit(event(
            Some(&s.principal),
            "auth.logout",
            "session",
            s.id,
            None,
            None,
            Some(serde_json::json!({ "everywhere": everywhere, "sessions": n })),
        ))
        .await?;
        tx.commit().await
    }

    async fn live_user(&self, s: &WebSession) -> AppResult<(session::Model, Stage, user::Model)> {
        let row = live_row(&self.db, s.id, crate::now()).await?;
        let stage = stage_of(&row)?;
        let u = user_row(&self.db, row.user_id).await?;
        if !u.active {
            return Err(unauthorized_session());
        }
        // A locked account's sessions that have not finished signing in cannot go on guessing.
        if stage != Stage::Active && u.locked_until.is_some_and(|t| t > crate::now()) {
            return Err(unauthorized_session());
        }
        Ok((row, stage, u))
    }

    /// Changes the password of the session's user. The new one must pass the policy
    /// (`changegate_domain::password::check`) and differ from the current one; refusals are
    /// `Invalid` on `new_password`. The current password is required (`current_password`)
    /// except in the [`Stage::ChangePassword`] stage, right after signing in with it. Moves the
    /// stage on; the user's other sessions are signed out.
    #[instrument(skip_all, fields(session = s.id), err(level = "info"))]
    pub async fn change_password(
        &self,
        s: &WebSession,
        current: Option<&str>,
        new: &str,
    ) -> AppResult<WebSession> {
        let (row, stage, u) = self.live_user(s).await?;
        if !matches!(stage, Stage::ChangePassword | Stage::Active) {
            return Err(wrong_stage(stage));
        }
        changegate_domain::password::check(&u.username, new)
            .map_err(|p| AppError::invalid("new_password", p.to_string()))?;
        if stage == Stage::Active {
            let Some(current) = current.filter(|c| !c.is_empty()) else {
                return Err(AppError::invalid(
                    "current_password",
                    "Hãy nhập mật khẩu hiện tại / enter the current password",
                ));
            };
            if !self.auth.verify_password(current, &u.password_hash).await? {
                let n = self
                    .record_failure(
                        &u,
                        &u.username,
                        "wrong_current_password",
                        s.ip,
                        "",
                        Some(s.id),
                    )
                    .await?;
                tokio::time::sleep(backoff(n)).await;
                return Err(AppError::invalid(
                    "current_password",
                    "Mật khẩu hiện tại không đúng / the current password is wrong",
                ));
            }
        }
        if self.auth.verify_password(new, &u.password_hash).await? {
            return Err(AppError::invalid(
                "new_password",
                "Mật khẩu mới phải khác mật khẩu hiện tại / the new password must differ from the current one",
            ));
        }
        let hash = self.auth.hash_password(new).await?;
        let role = Role::parse(&u.role).map_err(|e| AppError::Internal(e.to_string()))?;
        let next = if stage == Stage::Active {
            Stage::Active
        } else {
            Stage::after_password_change(&u, role)
        };
        let tx = self.begin().await?;
        let at = tx.at();
        let row = live_row(&tx.txn, row.id, at).await?;
        let fresh = user_row(&tx.txn, u.id).await?;
        if fresh.password_hash != u.password_hash {
            return Err(AppError::Conflict(
                "password_changed",
                "Mật khẩu vừa được đổi ở nơi khác / the password was changed meanwhile".into(),
            ));
        }
        let mut am: user::ActiveModel = fresh.clone().into();
        am.password_hash = Set(hash);
        am.must_change_password = Set(false);
        if next == Stage::Active {
            am.failed_logins = Set(0);
        }
        let fresh = am.update(&tx.txn).await?;
        let mut sam: session::ActiveModel = row.into();
        sam.stage = Set(next.as_str().into());
        let row = sam.update(&tx.txn).await?;
        // Every other session ends, also one opened with the same one-time password by someone
        // else (it could otherwise set a password without knowing the current one).
        let revoked = revoke_sessions(&tx.txn, u.id, Some(row.id), at).await?;
        tx.audit(event(
            Some(&s.principal),
            "user.password_change",
            "user",
            &u.username,
            None,
            Some(serde_json::json!({ "must_change_password": u.must_change_password })),
            Some(serde_json::json!({ "must_change_password": false, "stage": next.as_str(), "other_sessions_signed_out": revoked })),
        ))
        .await?;
        tx.commit().await?;
        web_session(&row, s.principal.clone(), &fresh)
    }

    /// Starts (or shows again) the enrolment of a second factor: a new secret is stored as
    /// pending until a code from it is confirmed. In the [`Stage::EnrolSecondFactor`] stage, or
    /// from an active session of a user without one.
    pub async fn totp_enrolment(&self, s: &WebSession) -> AppResult<TotpEnrolment> {
        let (_, stage, u) = self.live_user(s).await?;
        may_enrol(stage, &u)?;
        let secret = match u.totp_pending.clone() {
            Some(p) => p,
            None => {
                let secret = totp::new_secret();
                let tx = self.begin().await?;
                let fresh = user_row(&tx.txn, u.id).await?;
                let mut am: user::ActiveModel = fresh.into();
                am.totp_pending = Set(Some(secret.clone()));
                am.update(&tx.txn).await?;
                tx.audit(event(
                    Some(&s.principal),
                    "user.second_factor_enrolment",
                    "user",
                    &u.username,
                    None,
                    None,
                    Some(serde_json::json!({ "started": true })),
                ))
                .await?;
                tx.commit().await?;
                secret
            }
        };
        Ok(TotpEnrolment {
            otpauth_uri: totp::otpauth_uri(&u.username, &secret),
            secret_base32: secret,
        })
    }

    /// Confirms the pending second factor with a code from it; the session becomes active.
    /// A wrong code is `Invalid` on `code` and counts as a failure towards the lock.
    pub async fn confirm_totp(&self, s: &WebSession, code: &str) -> AppResult<WebSession> {
        let (row, stage, u) = self.live_user(s).await?;
        may_enrol(stage, &u)?;
        let Some(pending) = u.totp_pending.clone() else {
            return Err(AppError::Conflict(
                "no_enrolment",
                "Chưa bắt đầu đăng ký xác thực hai lớp / no second-factor enrolment was started"
                    .into(),
            ));
        };
        let key = totp::base32_decode(&pending)
            .ok_or_else(|| AppError::Internal("stored TOTP secret is not base32".into()))?;
        let Some(step) = totp::verify(&key, code, crate::now().timestamp(), None) else {
            return Err(self.second_factor_failed(&s.code_use(), &u).await);
        };
        let tx = self.begin().await?;
        let at = tx.at();
        let row = live_row(&tx.txn, row.id, at).await?;
        let fresh = user_row(&tx.txn, u.id).await?;
        if fresh.totp_secret.is_some() {
            return Err(AppError::Conflict(
                "already_enrolled",
                "Tài khoản đã có xác thực hai lớp / the account already has a second factor".into(),
            ));
        }
        if fresh.totp_pending.as_deref() != Some(pending.as_str()) {
            return Err(AppError::Conflict(
                "no_enrolment",
                "Việc đăng ký đã thay đổi, hãy thử lại / the enrolment changed meanwhile, try again"
                    .into(),
            ));
        }
        let mut am: user::ActiveModel = fresh.into();
        am.totp_secret = Set(Some(pending));
        am.totp_pending = Set(None);
        am.totp_enrolled_at = Set(Some(at));
        am.totp_last_step = Set(Some(step));
        am.failed_logins = Set(0);
        let fresh = am.update(&tx.txn).await?;
        let mut sam: session::ActiveModel = row.into();
        sam.stage = Set(Stage::Active.as_str().into());
        let row = sam.update(&tx.txn).await?;
        // Any other session of the account (which could have read the same pending secret) ends.
        let revoked = revoke_sessions(&tx.txn, u.id, Some(row.id), at).await?;
        tx.audit(event(
            Some(&s.principal),
            "user.second_factor_enrol",
            "user",
            &u.username,
            None,
            Some(serde_json::json!({ "second_factor": false })),
            Some(serde_json::json!({ "second_factor": true, "stage": "active", "other_sessions_signed_out": revoked })),
        ))
        .await?;
        tx.commit().await?;
        web_session(&row, s.principal.clone(), &fresh)
    }

    async fn second_factor_failed(&self, by: &CodeUse<'_>, u: &user::Model) -> AppError {
        match self
            .record_failure(u, &u.username, "wrong_second_factor", by.ip, "", by.session)
            .await
        {
            Ok(n) => {
                tokio::time::sleep(backoff(n)).await;
                AppError::invalid(by.field, WRONG_CODE)
            }
            Err(e) => e,
        }
    }

    /// Checks a code from the user's authenticator and consumes its step (a code is accepted
    /// once). The lock, the check and the failure count happen in one write transaction, so
    /// guesses sent at once are counted one after another and none gets past the lock. A right
    /// code of a step already used is refused without counting: it cannot succeed, and a script
    /// that resends its code should not lock its owner out. With a web session and `next`, the
    /// session moves to that stage in the same transaction; returns the session row then. Through
    /// the API, a code opens the token's step-up window.
    async fn consume_code(
        &self,
        by: CodeUse<'_>,
        u: &user::Model,
        code: &str,
        purpose: serde_json::Value,
        next: Option<Stage>,
    ) -> AppResult<Option<session::Model>> {
        let tx = self.begin().await?;
        let at = tx.at();
        let row = match by.session {
            Some(id) => Some(live_row(&tx.txn, id, at).await?),
            None => None,
        };
        let fresh = user_row(&tx.txn, u.id).await?;
        let Some(secret) = fresh.totp_secret.clone() else {
            return Err(AppError::Forbidden(NO_SECOND_FACTOR.into()));
        };
        if let Some(until) = fresh.locked_until.filter(|t| *t > at) {
            return Err(locked(until));
        }
        let key = totp::base32_decode(&secret)
            .ok_or_else(|| AppError::Internal("stored TOTP secret is not base32".into()))?;
        let Some(step) = totp::verify(&key, code, at.timestamp(), fresh.totp_last_step) else {
            if totp::verify(&key, code, at.timestamp(), None).is_some() {
                // Already used (another tab, a replay): refused, not counted.
                return Err(AppError::invalid(by.field, WRONG_CODE));
            }
            let n = record_failure_in(
                &tx,
                fresh.id,
                &fresh.username,
                "wrong_second_factor",
                by.ip,
                "",
                by.session,
            )
            .await?;
            tx.commit().await?;
            tokio::time::sleep(backoff(n)).await;
            return Err(AppError::invalid(by.field, WRONG_CODE));
        };
        let fresh_id = fresh.id;
        let mut am: user::ActiveModel = fresh.into();
        am.totp_last_step = Set(Some(step));
        am.failed_logins = Set(0);
        am.update(&tx.txn).await?;
        if let (None, Some(token)) = (by.session, by.principal.token_id) {
            api_token::Entity::update_many()
                .col_expr(
                    api_token::Column::StepUpUntil,
                    Expr::value(Some(at + API_STEP_UP)),
                )
                .filter(api_token::Column::Id.eq(token))
                .filter(api_token::Column::UserId.eq(fresh_id))
                .exec(&tx.txn)
                .await?;
        }
        let row = match (row, next) {
            (Some(row), Some(stage)) => {
                let mut sam: session::ActiveModel = row.into();
                sam.stage = Set(stage.as_str().into());
                Some(sam.update(&tx.txn).await?)
            }
            _ => None,
        };
        let (entity, entity_id) = match by.session {
            Some(id) => ("session", id.to_string()),
            None => ("user", u.username.clone()),
        };
        tx.audit(event(
            Some(by.principal),
            "auth.second_factor",
            entity,
            entity_id,
            None,
            None,
            Some(purpose),
        ))
        .await?;
        tx.commit().await?;
        Ok(row)
    }

    /// The second factor at sign-in: a right code (not used before) makes the session active.
    /// A wrong one is `Invalid` on `code` and counts as a failure towards the lock.
    pub async fn check_second_factor(&self, s: &WebSession, code: &str) -> AppResult<WebSession> {
        let (_, stage, u) = self.live_user(s).await?;
        if stage != Stage::SecondFactor {
            return Err(wrong_stage(stage));
        }
        let row = self
            .consume_code(
                s.code_use(),
                &u,
                code,
                serde_json::json!({ "purpose": "sign_in", "stage": "active" }),
                Some(Stage::Active),
            )
            .await?
            .ok_or_else(|| AppError::Internal("the session was not updated".into()))?;
        web_session(&row, s.principal.clone(), &u)
    }

    /// Signs off a change request after asking the second factor again. A form the sign-off would
    /// refuse is refused first, with the code left unused; then the code is checked and used up,
    /// and [`App::sign_off`] records the evaluation.
    pub async fn sign_off_with_second_factor(
        &self,
        s: &WebSession,
        cr_id: i64,
        req: wire::NewSignOff,
        code: &str,
    ) -> AppResult<wire::ChangeRequest> {
        let (_, stage, u) = self.live_user(s).await?;
        if stage != Stage::Active {
            return Err(wrong_stage(stage));
        }
        s.principal
            .require(&[Role::Reviewer], "signing off a change request")?;
        // A form the sign-off would refuse (a missing note, separation of duties, a change no
        // longer submitted) is refused before the code is used up.
        self.check_sign_off(&s.principal, cr_id, &req).await?;
        self.consume_code(
            s.code_use(),
            &u,
            code,
            serde_json::json!({ "purpose": "sign_off", "change_request": cr_id }),
            None,
        )
        .await?;
        self.sign_off(&s.principal, cr_id, req).await
    }

    /// Signs off a change request through the API (a bearer token). A token alone cannot sign
    /// off: the request carries a code from the reviewer's authenticator in
    /// `second_factor_code`, which opens a step-up window of [`API_STEP_UP`] in which that
    /// token's further API sign-offs need no code. As on the web, a sign-off that would be
    /// refused is refused before the code is looked at, and a wrong code counts towards the lock.
    #[instrument(skip_all, fields(id = cr_id), err)]
    pub async fn sign_off_with_code(
        &self,
        who: &Principal,
        cr_id: i64,
        mut req: wire::NewSignOff,
        ip: IpAddr,
    ) -> AppResult<wire::ChangeRequest> {
        let code = req.second_factor_code.take().unwrap_or_default();
        let code = code.trim();
        let u = user_row(&self.db, who.user_id).await?;
        let now = crate::now();
        let locked_until = u.locked_until.filter(|t| *t > now);
        // The window is the token's that gave the code: another token of the account (an old
        // script's, a leaked one) still needs a code of its own.
        let stepped_up = match who.token_id {
            Some(id) => api_token::Entity::find_by_id(id)
                .one(&self.db)
                .await?
                .and_then(|t| t.step_up_until)
                .is_some_and(|t| t > now),
            None => false,
        };
        if code.is_empty() && stepped_up && u.totp_secret.is_some() && locked_until.is_none() {
            // Within the window: the sign-off checks everything else in its transaction.
            return self.sign_off(who, cr_id, req).await;
        }
        // Whether this person may sign off this change with this form at all, first: the
        // answers of a caller who may not see the change or sign off stay as they were, and a
        // refused form leaves the code unused.
        self.check_sign_off(who, cr_id, &req).await?;
        if u.totp_secret.is_none() {
            return Err(AppError::Forbidden(NO_SECOND_FACTOR.into()));
        }
        if let Some(until) = locked_until {
            return Err(locked(until));
        }
        if code.is_empty() {
            return Err(AppError::invalid(
                "second_factor_code",
                "Cần mã xác thực hai lớp từ ứng dụng xác thực / a code from your authenticator app is required",
            ));
        }
        let by = CodeUse {
            principal: who,
            session: None,
            ip,
            field: "second_factor_code",
        };
        let purpose = serde_json::json!({ "purpose": "sign_off", "change_request": cr_id, "via": "api",
                "ip": ip.to_string(), "token": who.token_id });
        self.consume_code(by, &u, code, purpose, None).await?;
        self.sign_off(who, cr_id, req).await
    }

    /// The live sessions of the session's user, the most recently used first.
    pub async fn list_sessions(&self, s: &WebSession) -> AppResult<Vec<SessionRow>> {
        s.active()?;
        let now = crate::now();
        let rows = session::Entity::find()
            .filter(session::Column::UserId.eq(s.principal.user_id))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(now))
            .order_by_desc(session::Column::LastSeenAt)
            .all(&self.db)
            .await?;
        Ok(rows
            .into_iter()
            .filter(|r| r.created_at + ABSOLUTE > now)
            .map(|r| SessionRow {
                id: r.id,
                current: r.id == s.id,
                stage: Stage::parse(&r.stage).unwrap_or(Stage::ChangePassword),
                ip: r.ip,
                user_agent: r.user_agent,
                created_at: r.created_at,
                last_seen_at: r.last_seen_at,
                expires_at: r.expires_at,
            })
            .collect())
    }

    /// Sets the IP allow-list of an organisation (admin): CIDRs or single addresses; an empty
    /// list allows any address.
    #[instrument(skip_all, fields(org = %org_code), err)]
    pub async fn set_allowed_ips(
        &self,
        who: &Principal,
        org_code: &str,
        cidrs: &[String],
    ) -> AppResult<()> {
        who.require(&[Role::Admin], "setting an IP allow-list")?;
        let mut nets = vec![];
        for c in cidrs.iter().filter(|c| !c.trim().is_empty()) {
            let n = parse_cidr(c).ok_or_else(|| {
                AppError::invalid(
                    "allowed_ips",
                    format!(
                        "{:?} không phải địa chỉ IP hay dải CIDR / is not an IP address or CIDR range such as 10.0.0.0/8",
                        clip(c, 80)
                    ),
                )
            })?;
            let n = n.to_string();
            if !nets.contains(&n) {
                nets.push(n);
            }
        }
        let tx = self.begin().await?;
        let org = org_by_code(&tx.txn, org_code).await?;
        let before: Vec<String> = match org.allowed_ips.as_deref() {
            Some(t) if !t.trim().is_empty() => json_col("allowed_ips", t)?,
            _ => vec![],
        };
        let mut am: organisation::ActiveModel = org.clone().into();
        am.allowed_ips = Set((!nets.is_empty()).then(|| to_json(&nets)));
        am.update(&tx.txn).await?;
        tx.audit(event(
            Some(who),
            "organisation.allowed_ips",
            "organisation",
            &org.code,
            None,
            Some(serde_json::json!({ "allowed_ips": before })),
            Some(serde_json::json!({ "allowed_ips": nets })),
        ))
        .await?;
        tx.commit().await
    }

    /// Unlocks an account locked after failed sign-ins (admin).
    #[instrument(skip_all, fields(username = %username), err)]
    pub async fn unlock_user(&self, who: &Principal, username: &str) -> AppResult<()> {
        who.require(&[Role::Admin], "unlocking an account")?;
        let tx = self.begin().await?;
        let u = user_by_name(&tx.txn, username).await?;
        let before =
            serde_json::json!({ "locked_until": u.locked_until, "failed_logins": u.failed_logins });
        let mut am: user::ActiveModel = u.clone().into();
        am.locked_until = Set(None);
        am.failed_logins = Set(0);
        am.update(&tx.txn).await?;
        tx.audit(event(
            Some(who),
            "user.unlock",
            "user",
            &u.username,
            None,
            Some(before),
            Some(serde_json::json!({ "locked_until": null, "failed_logins": 0 })),
        ))
        .await?;
        tx.commit().await
    }

    /// Gives an account a new one-time password (admin; a forgotten password), to be changed at
    /// the next sign-in; the account is unlocked and its sessions are signed out. Returns the
    /// one-time password, to be shown once.
    #[instrument(skip_all, fields(username = %username), err)]
    pub async fn reset_password(&self, who: &Principal, username: &str) -> AppResult<String> {
        who.require(&[Role::Admin], "resetting a password")?;
        if username == crate::registry::SERVICE_USER {
            return Err(AppError::invalid(
                "username",
                "Tài khoản của việc định kỳ không đăng nhập được / the scheduled-jobs account cannot sign in",
            ));
        }
        let otp = crate::auth::one_time_password();
        let hash = self.auth.hash_password(&otp).await?;
        let tx = self.begin().await?;
        let at = tx.at();
        let u = user_by_name(&tx.txn, username).await?;
        let mut am: user::ActiveModel = u.clone().into();
        am.password_hash = Set(hash);
        am.must_change_password = Set(true);
        am.failed_logins = Set(0);
        am.locked_until = Set(None);
        am.update(&tx.txn).await?;
        // A reset answers a compromise: the API step-up windows close too.
        close_step_up(&tx.txn, u.id).await?;
        let revoked = revoke_sessions(&tx.txn, u.id, None, at).await?;
        tx.audit(event(
            Some(who),
            "user.reset_password",
            "user",
            &u.username,
            None,
            None,
            Some(
                serde_json::json!({ "must_change_password": true, "sessions_signed_out": revoked }),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(otp)
    }

    /// Removes an account's second factor (admin; a lost phone): its sessions are signed out,
    /// and at the next sign-in a reviewer or admin must enrol again.
    #[instrument(skip_all, fields(username = %username), err)]
    pub async fn reset_second_factor(&self, who: &Principal, username: &str) -> AppResult<()> {
        who.require(&[Role::Admin], "resetting a second factor")?;
        let tx = self.begin().await?;
        let at = tx.at();
        let u = user_by_name(&tx.txn, username).await?;
        let had = u.totp_secret.is_some();
        let mut am: user::ActiveModel = u.clone().into();
        am.totp_secret = Set(None);
        am.totp_pending = Set(None);
        am.totp_enrolled_at = Set(None);
        am.totp_last_step = Set(None);
        am.update(&tx.txn).await?;
        close_step_up(&tx.txn, u.id).await?;
        let revoked = revoke_sessions(&tx.txn, u.id, None, at).await?;
        tx.audit(event(
            Some(who),
            "user.second_factor_reset",
            "user",
            &u.username,
            None,
            Some(serde_json::json!({ "second_factor": had })),
            Some(serde_json::json!({ "second_factor": false, "sessions_signed_out": revoked })),
        ))
        .await?;
        tx.commit().await
    }

    /// What admins and inspectors should look at: accounts locked now, and accounts used from
    /// two addresses at once in the last 30 days (newest first).
    pub async fn security_signals(&self, who: &Principal) -> AppResult<Vec<SecuritySignal>> {
        who.require(&[Role::Admin, Role::Auditor], "reading security signals")?;
        let now = crate::now();
        let mut out = vec![];
        let locked = user::Entity::find()
            .filter(user::Column::LockedUntil.gt(now))
            .order_by_asc(user::Column::Username)
            .all(&self.db)
            .await?;
        let mut orgs: HashMap<i64, String> = HashMap::new();
        for o in organisation::Entity::find().all(&self.db).await? {
            orgs.insert(o.id, o.code);
        }
        for u in locked {
            out.push(SecuritySignal {
                kind: "account_locked".into(),
                org: orgs.get(&u.org_id).cloned().unwrap_or_default(),
                username: u.username,
                display_name: u.display_name,
                ips: vec![],
                at: u.locked_until.map_or(now, |t| t - LOCK_FOR),
                until: u.locked_until,
            });
        }
        let shared = security_signal::Entity::find()
            .filter(security_signal::Column::CreatedAt.gt(now - Duration::days(30)))
            .order_by_desc(security_signal::Column::CreatedAt)
            .all(&self.db)
            .await?;
        let mut users: HashMap<i64, user::Model> = HashMap::new();
        for s in shared {
            if let std::collections::hash_map::Entry::Vacant(e) = users.entry(s.user_id)
                && let Some(u) = user::Entity::find_by_id(s.user_id).one(&self.db).await?
            {
                e.insert(u);
            }
            let Some(u) = users.get(&s.user_id) else {
                continue;
            };
            out.push(SecuritySignal {
                kind: s.kind,
                username: u.username.clone(),
                display_name: u.display_name.clone(),
                org: orgs.get(&u.org_id).cloned().unwrap_or_default(),
                ips: s.detail.split(' ').map(str::to_owned).collect(),
                at: s.created_at,
                until: None,
            });
        }
        Ok(out)
    }
}

fn may_enrol(stage: Stage, u: &user::Model) -> AppResult<()> {
    match stage {
        Stage::EnrolSecondFactor | Stage::Active if u.totp_secret.is_none() => Ok(()),
        Stage::EnrolSecondFactor | Stage::Active => Err(AppError::Conflict(
            "already_enrolled",
            "Tài khoản đã có xác thực hai lớp / the account already has a second factor".into(),
        )),
        other => Err(wrong_stage(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use changegate_domain::PolicyPack;
    use changegate_store::entity::change_request;

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
            assert_eq!(Stage::parse(s.as_str()), Some(s));
        }
        assert_eq!(Stage::parse("admin"), None);
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
        assert!(ip_allowed(None, LOCAL).unwrap());
        assert!(ip_allowed(Some("[]"), LOCAL).unwrap());
        let list = r#"["10.0.0.0/8","203.0.113.7","2001:db8::/32"]"#;
        assert!(ip_allowed(Some(list), ip("10.20.30.40")).unwrap());
        assert!(ip_allowed(Some(list), ip("203.0.113.7")).unwrap());
        assert!(!ip_allowed(Some(list), ip("203.0.113.8")).unwrap());
        assert!(ip_allowed(Some(list), ip("2001:db8::1")).unwrap());
        assert!(!ip_allowed(Some(list), LOCAL).unwrap());
        // An IPv4 client seen through an IPv6 socket.
        assert!(ip_allowed(Some(list), ip("::ffff:10.1.1.1")).unwrap());
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
        let locked = app.sign_in("tran.thi.hoa", GOOD, LOCAL, "t").await;
        assert!(
            matches!(locked, Err(AppError::Unauthorized(_))),
            "{locked:?}"
        );
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
            Err(AppError::Conflict("already_enrolled", _) | AppError::Forbidden(_))
        ));
    }

    #[tokio::test]
    async fn five_failures_in_a_row_lock_the_account_until_an_admin_unlocks_it() {
        let (app, _d) = app().await;
        let otp = user(&app, "nguyen.van.an", "owner").await;
        for _ in 0..LOCK_AFTER {
            assert!(
                app.sign_in("nguyen.van.an", "sai", LOCAL, "t")
                    .await
                    .is_err()
            );
        }
        // Locked: even the right password gets the same answer.
        let locked = app.sign_in("nguyen.van.an", &otp, LOCAL, "t").await;
        assert!(
            matches!(&locked, Err(AppError::Unauthorized(m)) if m == WRONG_CREDENTIALS),
            "{locked:?}"
        );
        let failed = actions(&app, "auth.login_failed").await;
        assert_eq!(failed.len(), 6);
        assert_eq!(failed[5]["reason"], "locked");
        assert_eq!(actions(&app, "account.locked").await.len(), 1);
        let signals = app.security_signals(&Principal::operator()).await.unwrap();
        assert!(
            signals
                .iter()
                .any(|s| s.kind == "account_locked" && s.username == "nguyen.van.an"),
            "{signals:?}"
        );
        app.unlock_user(&Principal::operator(), "nguyen.van.an")
            .await
            .unwrap();
        app.sign_in("nguyen.van.an", &otp, LOCAL, "t")
            .await
            .unwrap();
        assert_eq!(actions(&app, "user.unlock").await.len(), 1);
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
}
