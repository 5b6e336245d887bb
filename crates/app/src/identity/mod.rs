//! Identity, in one place: credentials and API tokens ([`tokens`]), sign-in with lockout and
//! backoff (`signin`), browser sessions with their CSRF tokens (`sessions`), the second factor
//! ([`totp`], `second_factor`), admin resets (`admin`), IP allow-lists (`allow_list`) and the
//! shared-account signal (`signals`). This file holds what they share: the session's stages and
//! view, the in-memory sign-in state, the row helpers.
//!
//! A session is a row of `sessions` found by the SHA-256 of its token; the token itself lives only
//! in the browser's cookie. A session moves through [`Stage`]s: a user who signed in with a
//! one-time password must first change it, a reviewer or admin must enrol a second factor, an
//! enrolled user must give a code; only an [`Stage::Active`] session may use the pages.
//!
//! Wrong usernames and wrong passwords get the same answer ([`WRONG_CREDENTIALS`]) after the same
//! work (an argon2id verification, an audit event, the same backoff), so the answer does not tell
//! which accounts exist. Wrong passwords throttle the address that sends them ([`throttle`]): an
//! outsider cannot lock a reviewer out; the account itself locks only far above that. Wrong
//! second-factor codes and wrong current passwords (which need the password or a session) lock
//! the account at the fifth in a row, for 15 minutes.
//!
//! Every state change is one [`crate::WriteTx`] with its audit event. The one exception is the
//! refresh of a session's last-seen time and idle expiry on page views: bookkeeping, not an
//! action, written at most every 30 seconds without an audit event.

pub mod accounts;
mod admin;
mod allow_list;
pub mod forms;
mod head;
mod second_factor;
mod sessions;
mod signals;
mod signin;
#[cfg(test)]
mod tests;
pub mod throttle;
pub mod tokens;
pub mod totp;

pub use allow_list::{allow_list, ip_allowed, parse_cidr};
pub use second_factor::TotpEnrolment;
pub use sessions::SessionRow;
pub use signals::SecuritySignal;
pub use signin::backoff;
use signin::record_failure_in;

use crate::identity::tokens::Principal;
use crate::{AppError, AppResult};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use changegate_domain::Role;
use changegate_store::entity::{session, user};
use changegate_store::identity as store;
use changegate_store::sea_orm::ConnectionTrait;
use chrono::{DateTime, Duration, Utc};
pub use ipnet::IpNet;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::sync::LazyLock;

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
/// The answer to an API sign-off without a code outside the token's step-up window.
pub const CODE_REQUIRED: &str =
    "Cần mã xác thực hai lớp từ ứng dụng xác thực / a code from your authenticator app is required";

/// The answer to a sign-in from an address outside the organisation's allow-list.
pub const IP_NOT_ALLOWED: &str =
    "Không được phép đăng nhập từ địa chỉ IP này / signing in from this IP address is not allowed";

/// What a session may do next (stored by name in `sessions.stage`).
pub use changegate_domain::roles::SessionStage as Stage;

/// The stage after the password is known good: change it, enrol a second factor, give a code,
/// or done.
fn after_password(u: &user::Model, role: Role) -> Stage {
    if u.must_change_password {
        Stage::ChangePassword
    } else {
        after_password_change(u, role)
    }
}

fn after_password_change(u: &user::Model, role: Role) -> Stage {
    if u.totp_secret.is_some() {
        Stage::SecondFactor
    } else if role.needs_second_factor() {
        Stage::EnrolSecondFactor
    } else {
        Stage::Active
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

/// The most shared-account signals remembered in process (the database has them all).
const SIGNALLED_MAX: u64 = 10_000;

/// In-process state of sign-in: failures of usernames that do not exist (so that they are
/// answered like existing ones), and shared-account signals already raised. Rows in the
/// database hold everything else.
#[derive(Debug)]
pub struct SessionState {
    /// Failed sign-ins by (account, address), address and account.
    pub throttle: throttle::Throttle,
    /// Shared-account signals raised (account, addresses, day), at most [`SIGNALLED_MAX`], each
    /// kept two days (its day is in the key).
    signalled: moka::sync::Cache<(i64, String, String), ()>,
}

impl Default for SessionState {
    fn default() -> Self {
        // Hash the dummy now, so that the first unknown username costs what a known one does.
        LazyLock::force(&DUMMY_HASH);
        Self {
            throttle: throttle::Throttle::default(),
            signalled: moka::sync::Cache::builder()
                .max_capacity(SIGNALLED_MAX)
                .time_to_live(std::time::Duration::from_secs(2 * 24 * 3600))
                .build(),
        }
    }
}

/// An argon2id hash of a random password nobody knows: unknown usernames are verified against it
/// so that they take as long as known ones.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    crate::identity::tokens::hash_secret(&crate::identity::tokens::one_time_password())
        .unwrap_or_default()
});

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

async fn live_row(
    db: &impl ConnectionTrait,
    id: i64,
    now: DateTime<Utc>,
) -> AppResult<session::Model> {
    store::session_by_id(db, id)
        .await?
        .filter(|r| is_live(r, now))
        .ok_or_else(unauthorized_session)
}

/// Whether session `r` is not revoked and past neither its idle nor its absolute expiry at `now`.
fn is_live(r: &session::Model, now: DateTime<Utc>) -> bool {
    r.revoked_at.is_none() && r.expires_at > now && r.created_at + ABSOLUTE > now
}

async fn user_row(db: &impl ConnectionTrait, id: i64) -> AppResult<user::Model> {
    store::user_by_id(db, id)
        .await?
        .ok_or_else(unauthorized_session)
}

/// Closes the API step-up windows of every token of user `user_id`.
pub(crate) async fn close_step_up(db: &impl ConnectionTrait, user_id: i64) -> AppResult<()> {
    Ok(store::close_step_up_windows(db, user_id).await?)
}

/// The refusal of an action while the account is locked (answered with the time it lifts).
fn locked(until: DateTime<Utc>) -> AppError {
    AppError::Locked(until)
}

fn stage_of(row: &session::Model) -> AppResult<Stage> {
    Ok(*row.stage)
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
    Ok(store::revoke_sessions_of(db, user_id, keep, at).await?)
}
