//! Identity's rows: accounts (`users`), their API tokens and browser sessions, read and written
//! for the app crate's sign-in, sessions, tokens and account use cases. Only reads and writes:
//! lockout, step-up windows, session lifetimes and who may change an account are the app's and
//! the domain's rules, so the times and limits come in as arguments.

use crate::StoreError;
use crate::entity::{api_token, organisation, security_signal, session, user};
use crate::types::Text;
use changegate_domain::Role;
use changegate_domain::roles::{SessionStage, SignalKind};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder,
};
use std::collections::HashMap;

// Accounts.

/// The account with id `id`, if any.
pub async fn user_by_id(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<user::Model>, StoreError> {
    Ok(user::Entity::find_by_id(id).one(db).await?)
}

/// The account named `username` (exactly), if any.
pub async fn user_by_username(
    db: &impl ConnectionTrait,
    username: &str,
) -> Result<Option<user::Model>, StoreError> {
    Ok(user::Entity::find()
        .filter(user::Column::Username.eq(username))
        .one(db)
        .await?)
}

/// The accounts with ids `ids` that exist, by id.
pub async fn users_by_ids(
    db: &impl ConnectionTrait,
    ids: Vec<i64>,
) -> Result<HashMap<i64, user::Model>, StoreError> {
    Ok(user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|u| (u.id, u))
        .collect())
}

/// The usernames of the accounts with ids `ids` that exist, by id (for showing who did what).
pub async fn usernames_of(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, String>, StoreError> {
    Ok(user::Entity::find()
        .filter(user::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|u| (u.id, u.username))
        .collect())
}

/// Every account's full name, by username (for showing a person's name where a username is
/// recorded).
pub async fn display_names(
    db: &impl ConnectionTrait,
) -> Result<HashMap<String, String>, StoreError> {
    Ok(user::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|u| (u.username, u.display_name))
        .collect())
}

/// An account to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Its username (unique).
    pub username: String,
    /// The person's full name.
    pub display_name: String,
    /// Its organisation.
    pub org_id: i64,
    /// Its role.
    pub role: Role,
    /// The argon2id hash of its one-time password.
    pub password_hash: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Creates account `n`, active, its one-time password to be changed at the first sign-in;
/// returns its row.
pub async fn create_user(db: &impl ConnectionTrait, n: NewUser) -> Result<user::Model, StoreError> {
    insert_user(db, n, true, true).await
}

/// Creates service account `n` (its `password_hash` is ignored): inactive, and no password ever
/// verifies against it; returns its row.
pub async fn create_service_account(
    db: &impl ConnectionTrait,
    n: NewUser,
) -> Result<user::Model, StoreError> {
    insert_user(
        db,
        NewUser {
            // Not a PHC string: no password ever verifies against it.
            password_hash: "!".into(),
            ..n
        },
        false,
        false,
    )
    .await
}

async fn insert_user(
    db: &impl ConnectionTrait,
    n: NewUser,
    active: bool,
    must_change_password: bool,
) -> Result<user::Model, StoreError> {
    Ok(user::ActiveModel {
        username: Set(n.username),
        display_name: Set(n.display_name),
        org_id: Set(n.org_id),
        role: Set(Text(n.role)),
        password_hash: Set(n.password_hash),
        must_change_password: Set(must_change_password),
        active: Set(active),
        created_at: Set(n.at),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// The organisation with id `id`, if any (an account's organisation: `user.org_id`).
pub async fn organisation_by_id(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<organisation::Model>, StoreError> {
    Ok(organisation::Entity::find_by_id(id).one(db).await?)
}

/// The code of every organisation, by id.
pub async fn organisation_codes(
    db: &impl ConnectionTrait,
) -> Result<HashMap<i64, String>, StoreError> {
    Ok(organisation::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|o| (o.id, o.code))
        .collect())
}

/// Which accounts [`users`] lists.
#[derive(Debug, Clone, Copy, Default)]
pub struct UserQuery<'a> {
    /// Only this organisation's accounts.
    pub org_id: Option<i64>,
    /// Only accounts with this role.
    pub role: Option<Role>,
    /// Leaves out the account with this username (the scheduled jobs' own account).
    pub except_username: Option<&'a str>,
}

/// The accounts `q` picks, by username.
pub async fn users(
    db: &impl ConnectionTrait,
    q: UserQuery<'_>,
) -> Result<Vec<user::Model>, StoreError> {
    let mut find = user::Entity::find().order_by_asc(user::Column::Username);
    if let Some(name) = q.except_username {
        find = find.filter(user::Column::Username.ne(name));
    }
    if let Some(o) = q.org_id {
        find = find.filter(user::Column::OrgId.eq(o));
    }
    if let Some(r) = q.role {
        find = find.filter(user::Column::Role.eq(Text(r)));
    }
    Ok(find.all(db).await?)
}

/// How many active accounts have `role`.
pub async fn count_active_with_role(
    db: &impl ConnectionTrait,
    role: Role,
) -> Result<u64, StoreError> {
    Ok(user::Entity::find()
        .filter(user::Column::Role.eq(Text(role)))
        .filter(user::Column::Active.eq(true))
        .count(db)
        .await?)
}

/// Unlocks account `u`: no lock, no failures in a row.
pub async fn unlock_user(
    db: &impl ConnectionTrait,
    u: &user::Model,
) -> Result<user::Model, StoreError> {
    let mut am: user::ActiveModel = u.clone().into();
    am.locked_until = Set(None);
    am.failed_logins = Set(0);
    Ok(am.update(db).await?)
}

/// Gives account `u` the one-time password hashed as `password_hash`, to be changed at the next
/// sign-in; the account is unlocked, without failures in a row.
pub async fn reset_password(
    db: &impl ConnectionTrait,
    u: &user::Model,
    password_hash: String,
) -> Result<user::Model, StoreError> {
    let mut am: user::ActiveModel = u.clone().into();
    am.password_hash = Set(password_hash);
    am.must_change_password = Set(true);
    am.failed_logins = Set(0);
    am.locked_until = Set(None);
    Ok(am.update(db).await?)
}

/// Removes account `u`'s second factor: its secret, any enrolment under way and the last code
/// step accepted.
pub async fn remove_second_factor(
    db: &impl ConnectionTrait,
    u: &user::Model,
) -> Result<user::Model, StoreError> {
    let mut am: user::ActiveModel = u.clone().into();
    am.totp_secret = Set(None);
    am.totp_pending = Set(None);
    am.totp_enrolled_at = Set(None);
    am.totp_last_step = Set(None);
    Ok(am.update(db).await?)
}

/// Sets account `u`'s count of failures in a row to `failures`.
pub async fn set_failures(
    db: &impl ConnectionTrait,
    u: &user::Model,
    failures: i32,
) -> Result<user::Model, StoreError> {
    let mut am: user::ActiveModel = u.clone().into();
    am.failed_logins = Set(failures);
    Ok(am.update(db).await?)
}

/// Account `u` signed in: no failures in a row, no lock.
pub async fn clear_failures(
    db: &impl ConnectionTrait,
    u: &user::Model,
) -> Result<user::Model, StoreError> {
    let mut am: user::ActiveModel = u.clone().into();
    am.failed_logins = Set(0);
    am.locked_until = Set(None);
    Ok(am.update(db).await?)
}

/// Locks account `u` until `until`; its count of failures starts again.
pub async fn lock_user(
    db: &impl ConnectionTrait,
    u: &user::Model,
    until: DateTime<Utc>,
) -> Result<user::Model, StoreError> {
    let mut am: user::ActiveModel = u.clone().into();
    am.failed_logins = Set(0);
    am.locked_until = Set(Some(until));
    Ok(am.update(db).await?)
}

/// Gives account `u` the password hashed as `password_hash`, no longer to be changed at the next
/// sign-in; with `clear_failures`, its count of failures in a row starts again too.
pub async fn set_password(
    db: &impl ConnectionTrait,
    u: &user::Model,
    password_hash: String,
    clear_failures: bool,
) -> Result<user::Model, StoreError> {
    let mut am: user::ActiveModel = u.clone().into();
    am.password_hash = Set(password_hash);
    am.must_change_password = Set(false);
    if clear_failures {
        am.failed_logins = Set(0);
    }
    Ok(am.update(db).await?)
}

/// Deactivates account `u` at `at`, by user `by` (None: the operator at the command line), for
/// `reason`.
pub async fn deactivate_user(
    db: &impl ConnectionTrait,
    u: &user::Model,
    at: DateTime<Utc>,
    by: Option<i64>,
    reason: String,
) -> Result<user::Model, StoreError> {
    let mut am: user::ActiveModel = u.clone().into();
    am.active = Set(false);
    am.deactivated_at = Set(Some(at));
    am.deactivated_by = Set(by);
    am.deactivation_reason = Set(Some(reason));
    Ok(am.update(db).await?)
}

/// Reactivates account `u`, unlocked and without failures in a row (the record of its
/// deactivation stays).
pub async fn reactivate_user(
    db: &impl ConnectionTrait,
    u: &user::Model,
) -> Result<user::Model, StoreError> {
    let mut am: user::ActiveModel = u.clone().into();
    am.active = Set(true);
    am.failed_logins = Set(0);
    am.locked_until = Set(None);
    Ok(am.update(db).await?)
}

/// Gives account `u` role `role` in organisation `org_id`.
pub async fn move_user(
    db: &impl ConnectionTrait,
    u: &user::Model,
    role: Role,
    org_id: i64,
) -> Result<user::Model, StoreError> {
    let mut am: user::ActiveModel = u.clone().into();
    am.role = Set(Text(role));
    am.org_id = Set(org_id);
    Ok(am.update(db).await?)
}

// API tokens.

/// How [`token_with_owner`] finds a token.
#[derive(Debug, Clone, Copy)]
pub enum TokenBy<'a> {
    /// By the keyed digest of the whole token (`token_digest`, unique).
    Digest(&'a str),
    /// By its public id (`public_id`, unique).
    PublicId(&'a str),
}

/// An API token with the account it belongs to.
#[derive(Debug, Clone)]
pub struct TokenWithOwner {
    /// The token's row.
    pub token: api_token::Model,
    /// Its account's row.
    pub user: user::Model,
}

/// The token `by` finds, with its account; None when there is no such token or its account is
/// gone.
pub async fn token_with_owner(
    db: &impl ConnectionTrait,
    by: TokenBy<'_>,
) -> Result<Option<TokenWithOwner>, StoreError> {
    let find = match by {
        TokenBy::Digest(d) => {
            api_token::Entity::find().filter(api_token::Column::TokenDigest.eq(d))
        }
        TokenBy::PublicId(p) => api_token::Entity::find().filter(api_token::Column::PublicId.eq(p)),
    };
    let Some(token) = find.one(db).await? else {
        return Ok(None);
    };
    let Some(user) = user_by_id(db, token.user_id).await? else {
        return Ok(None);
    };
    Ok(Some(TokenWithOwner { token, user }))
}

/// Whether API token `token_id` exists, is not revoked and its account is active, read now.
pub async fn token_still_live(
    db: &impl ConnectionTrait,
    token_id: i64,
) -> Result<bool, StoreError> {
    let account_active = Query::select()
        .expr(Expr::val(1))
        .from(user::Entity)
        .and_where(
            Expr::col((user::Entity, user::Column::Id))
                .equals((api_token::Entity, api_token::Column::UserId)),
        )
        .and_where(Expr::col((user::Entity, user::Column::Active)).eq(true))
        .to_owned();
    Ok(api_token::Entity::find_by_id(token_id)
        .filter(api_token::Column::RevokedAt.is_null())
        .filter(Expr::exists(account_active))
        .one(db)
        .await?
        .is_some())
}

/// Gives token `token_id` its `digest` under key `key_id`, unless it already has one.
pub async fn record_token_digest(
    db: &impl ConnectionTrait,
    token_id: i64,
    digest: String,
    key_id: String,
) -> Result<(), StoreError> {
    api_token::Entity::update_many()
        .col_expr(api_token::Column::TokenDigest, Expr::value(Some(digest)))
        .col_expr(api_token::Column::DigestKey, Expr::value(Some(key_id)))
        .filter(api_token::Column::Id.eq(token_id))
        .filter(api_token::Column::TokenDigest.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// An API token to issue.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Its public id (unique).
    pub public_id: String,
    /// The keyed digest of the whole token, when the server has a token key.
    pub token_digest: Option<String>,
    /// Which key made `token_digest`.
    pub digest_key: Option<String>,
    /// The token it was minted with, if any.
    pub parent_token_id: Option<i64>,
    /// Whose.
    pub user_id: i64,
    /// Its name.
    pub name: String,
    /// The argon2id hash of its secret.
    pub secret_hash: String,
    /// When.
    pub at: DateTime<Utc>,
    /// When it expires.
    pub expires_at: DateTime<Utc>,
}

/// Issues token `n`, not revoked; returns its row.
pub async fn issue_token(
    db: &impl ConnectionTrait,
    n: NewToken,
) -> Result<api_token::Model, StoreError> {
    Ok(api_token::ActiveModel {
        public_id: Set(n.public_id),
        token_digest: Set(n.token_digest),
        digest_key: Set(n.digest_key),
        parent_token_id: Set(n.parent_token_id),
        user_id: Set(n.user_id),
        name: Set(n.name),
        secret_hash: Set(n.secret_hash),
        created_at: Set(n.at),
        expires_at: Set(n.expires_at),
        revoked_at: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// The API token with id `id`, whatever its state.
pub async fn token_by_id(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<api_token::Model>, StoreError> {
    Ok(api_token::Entity::find_by_id(id).one(db).await?)
}

/// The API token with public id `public_id`, whatever its state.
pub async fn token_by_public_id(
    db: &impl ConnectionTrait,
    public_id: &str,
) -> Result<Option<api_token::Model>, StoreError> {
    Ok(api_token::Entity::find()
        .filter(api_token::Column::PublicId.eq(public_id))
        .one(db)
        .await?)
}

/// Every API token of user `user_id`, revoked and expired ones too, the newest first.
pub async fn tokens_of(
    db: &impl ConnectionTrait,
    user_id: i64,
) -> Result<Vec<api_token::Model>, StoreError> {
    Ok(api_token::Entity::find()
        .filter(api_token::Column::UserId.eq(user_id))
        .order_by_desc(api_token::Column::Id)
        .all(db)
        .await?)
}

/// The API tokens minted with any of the tokens `parents`, whatever their state.
pub async fn tokens_minted_by(
    db: &impl ConnectionTrait,
    parents: Vec<i64>,
) -> Result<Vec<api_token::Model>, StoreError> {
    Ok(api_token::Entity::find()
        .filter(api_token::Column::ParentTokenId.is_in(parents))
        .all(db)
        .await?)
}

/// Revokes token `t` at `at`; returns its row as stored.
pub async fn revoke_token(
    db: &impl ConnectionTrait,
    t: api_token::Model,
    at: DateTime<Utc>,
) -> Result<api_token::Model, StoreError> {
    let mut am: api_token::ActiveModel = t.into();
    am.revoked_at = Set(Some(at));
    Ok(am.update(db).await?)
}

/// Revokes the API tokens `ids` at `at`.
pub async fn revoke_tokens(
    db: &impl ConnectionTrait,
    ids: Vec<i64>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    api_token::Entity::update_many()
        .col_expr(api_token::Column::RevokedAt, Expr::value(Some(at)))
        .filter(api_token::Column::Id.is_in(ids))
        .exec(db)
        .await?;
    Ok(())
}

/// Closes the API step-up windows of every token of user `user_id`.
pub async fn close_step_up_windows(
    db: &impl ConnectionTrait,
    user_id: i64,
) -> Result<(), StoreError> {
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

/// Revokes every API token of user `user_id` not yet revoked, at `at`; returns their public ids.
pub async fn revoke_tokens_of(
    db: &impl ConnectionTrait,
    user_id: i64,
    at: DateTime<Utc>,
) -> Result<Vec<String>, StoreError> {
    let live: Vec<String> = api_token::Entity::find()
        .filter(api_token::Column::UserId.eq(user_id))
        .filter(api_token::Column::RevokedAt.is_null())
        .all(db)
        .await?
        .into_iter()
        .map(|t| t.public_id)
        .collect();
    if !live.is_empty() {
        api_token::Entity::update_many()
            .col_expr(api_token::Column::RevokedAt, Expr::value(Some(at)))
            .filter(api_token::Column::UserId.eq(user_id))
            .filter(api_token::Column::RevokedAt.is_null())
            .exec(db)
            .await?;
    }
    Ok(live)
}

// Browser sessions.

/// The session with id `id`, whatever its state.
pub async fn session_by_id(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<session::Model>, StoreError> {
    Ok(session::Entity::find_by_id(id).one(db).await?)
}

/// The session stored under `token_hash` (the SHA-256 of its token), whatever its state.
pub async fn session_by_token_hash(
    db: &impl ConnectionTrait,
    token_hash: &str,
) -> Result<Option<session::Model>, StoreError> {
    Ok(session::Entity::find()
        .filter(session::Column::TokenHash.eq(token_hash))
        .one(db)
        .await?)
}

/// A session to open.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// SHA-256 of the session token, hex.
    pub token_hash: String,
    /// Whose.
    pub user_id: i64,
    /// What it may do first.
    pub stage: SessionStage,
    /// Its CSRF token.
    pub csrf: String,
    /// The address it is opened from.
    pub ip: String,
    /// The browser.
    pub user_agent: String,
    /// When (also its last use).
    pub at: DateTime<Utc>,
    /// Its first idle expiry.
    pub expires_at: DateTime<Utc>,
}

/// Opens session `s`; returns its row.
pub async fn open_session(
    db: &impl ConnectionTrait,
    s: NewSession,
) -> Result<session::Model, StoreError> {
    Ok(session::ActiveModel {
        token_hash: Set(s.token_hash),
        user_id: Set(s.user_id),
        stage: Set(s.stage.into()),
        csrf: Set(s.csrf),
        ip: Set(s.ip),
        user_agent: Set(s.user_agent),
        created_at: Set(s.at),
        last_seen_at: Set(s.at),
        expires_at: Set(s.expires_at),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// Moves session `row` to `stage`; returns the row as stored.
pub async fn set_session_stage(
    db: &impl ConnectionTrait,
    row: session::Model,
    stage: SessionStage,
) -> Result<session::Model, StoreError> {
    let mut am: session::ActiveModel = row.into();
    am.stage = Set(stage.into());
    Ok(am.update(db).await?)
}

/// Records a use of session `id` at `seen_at`, with its new idle expiry `expires_at`.
pub async fn touch_session(
    db: &impl ConnectionTrait,
    id: i64,
    seen_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), StoreError> {
    session::Entity::update_many()
        .col_expr(session::Column::LastSeenAt, Expr::value(seen_at))
        .col_expr(session::Column::ExpiresAt, Expr::value(expires_at))
        .filter(session::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// Revokes session `id` at `at` unless it already is; returns how many rows changed (0 or 1).
pub async fn revoke_session(
    db: &impl ConnectionTrait,
    id: i64,
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(Some(at)))
        .filter(session::Column::Id.eq(id))
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?
        .rows_affected)
}

/// Revokes, at `at`, the sessions of user `user_id` that are neither revoked nor past their idle
/// expiry, all of them or all but `keep`; returns how many.
pub async fn revoke_sessions_of(
    db: &impl ConnectionTrait,
    user_id: i64,
    keep: Option<i64>,
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut q = revoking_sessions_of(user_id, at).filter(session::Column::ExpiresAt.gt(at));
    if let Some(k) = keep {
        q = q.filter(session::Column::Id.ne(k));
    }
    Ok(q.exec(db).await?.rows_affected)
}

/// Revokes, at `at`, every session of user `user_id` not yet revoked, past its idle expiry or
/// not; returns how many.
pub async fn revoke_all_sessions_of(
    db: &impl ConnectionTrait,
    user_id: i64,
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(revoking_sessions_of(user_id, at)
        .exec(db)
        .await?
        .rows_affected)
}

/// The update that revokes, at `at`, the sessions of user `user_id` not yet revoked.
fn revoking_sessions_of(user_id: i64, at: DateTime<Utc>) -> sea_orm::UpdateMany<session::Entity> {
    session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(Some(at)))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
}

/// Revokes, at `at`, the sessions of user `user_id` not revoked and still signing in (any stage
/// but [`SessionStage::Active`]); returns how many.
pub async fn revoke_unfinished_sessions_of(
    db: &impl ConnectionTrait,
    user_id: i64,
    at: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(Some(at)))
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::Stage.ne(Text(SessionStage::Active)))
        .exec(db)
        .await?
        .rows_affected)
}

/// Deletes the sessions of user `user_id` that ended before `ended` (idle expiry or revocation),
/// or were opened before `opened`; returns how many.
pub async fn prune_sessions_of(
    db: &impl ConnectionTrait,
    user_id: i64,
    ended: DateTime<Utc>,
    opened: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(session::Entity::delete_many()
        .filter(session::Column::UserId.eq(user_id))
        .filter(
            Condition::any()
                .add(session::Column::ExpiresAt.lt(ended))
                .add(session::Column::RevokedAt.lt(ended))
                .add(session::Column::CreatedAt.lt(opened)),
        )
        .exec(db)
        .await?
        .rows_affected)
}

/// The sessions of user `user_id` neither revoked nor past their idle expiry at `now`, the most
/// recently used first. (Their absolute expiry is the caller's to check.)
pub async fn live_sessions_of(
    db: &impl ConnectionTrait,
    user_id: i64,
    now: DateTime<Utc>,
) -> Result<Vec<session::Model>, StoreError> {
    Ok(session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now))
        .order_by_desc(session::Column::LastSeenAt)
        .all(db)
        .await?)
}

/// The sessions of user `user_id` neither revoked nor past their idle expiry at `now`, opened
/// from another address than `ip`.
pub async fn live_sessions_elsewhere(
    db: &impl ConnectionTrait,
    user_id: i64,
    now: DateTime<Utc>,
    ip: &str,
) -> Result<Vec<session::Model>, StoreError> {
    Ok(session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::RevokedAt.is_null())
        .filter(session::Column::ExpiresAt.gt(now))
        .filter(session::Column::Ip.ne(ip))
        .all(db)
        .await?)
}

// Second factors.

/// Stores `secret` as account `u`'s pending second factor (until a code from it is confirmed);
/// returns the row as stored.
pub async fn start_totp_enrolment(
    db: &impl ConnectionTrait,
    u: user::Model,
    secret: String,
) -> Result<user::Model, StoreError> {
    let mut am: user::ActiveModel = u.into();
    am.totp_pending = Set(Some(secret));
    Ok(am.update(db).await?)
}

/// Makes `secret` account `u`'s second factor, enrolled at `at` with step `step` used, no
/// longer pending, without failures in a row; returns the row as stored.
pub async fn enrol_totp(
    db: &impl ConnectionTrait,
    u: user::Model,
    secret: String,
    at: DateTime<Utc>,
    step: i64,
) -> Result<user::Model, StoreError> {
    let mut am: user::ActiveModel = u.into();
    am.totp_secret = Set(Some(secret));
    am.totp_pending = Set(None);
    am.totp_enrolled_at = Set(Some(at));
    am.totp_last_step = Set(Some(step));
    am.failed_logins = Set(0);
    Ok(am.update(db).await?)
}

/// Records that account `u` used the code of step `step` (a code is accepted once), without
/// failures in a row; returns the row as stored.
pub async fn use_totp_step(
    db: &impl ConnectionTrait,
    u: user::Model,
    step: i64,
) -> Result<user::Model, StoreError> {
    let mut am: user::ActiveModel = u.into();
    am.totp_last_step = Set(Some(step));
    am.failed_logins = Set(0);
    Ok(am.update(db).await?)
}

/// Makes `secret` account `u`'s second factor at once, enrolled at `at`, with nothing pending
/// and no code used yet (its count of failures is left as it is); returns the row as stored.
pub async fn set_second_factor(
    db: &impl ConnectionTrait,
    u: user::Model,
    secret: String,
    at: DateTime<Utc>,
) -> Result<user::Model, StoreError> {
    let mut am: user::ActiveModel = u.into();
    am.totp_secret = Set(Some(secret));
    am.totp_pending = Set(None);
    am.totp_enrolled_at = Set(Some(at));
    am.totp_last_step = Set(None);
    Ok(am.update(db).await?)
}

/// Opens the API step-up window of token `token_id` of user `user_id` until `until`.
pub async fn open_step_up_window(
    db: &impl ConnectionTrait,
    token_id: i64,
    user_id: i64,
    until: DateTime<Utc>,
) -> Result<(), StoreError> {
    api_token::Entity::update_many()
        .col_expr(api_token::Column::StepUpUntil, Expr::value(Some(until)))
        .filter(api_token::Column::Id.eq(token_id))
        .filter(api_token::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

// Security signals.

/// The accounts locked after `now`, by username.
pub async fn users_locked_after(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
) -> Result<Vec<user::Model>, StoreError> {
    Ok(user::Entity::find()
        .filter(user::Column::LockedUntil.gt(now))
        .order_by_asc(user::Column::Username)
        .all(db)
        .await?)
}

/// A security signal about an account, raised once per detail and day.
#[derive(Debug, Clone)]
pub struct NewSignal {
    /// The account.
    pub user_id: i64,
    /// What kind.
    pub kind: SignalKind,
    /// Its detail (for a shared account, the two addresses).
    pub detail: String,
    /// The day it is for (YYYY-MM-DD).
    pub day: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Whether signal `s` (its account, kind, detail and day; not its time) is recorded.
pub async fn signal_recorded(db: &impl ConnectionTrait, s: &NewSignal) -> Result<bool, StoreError> {
    Ok(security_signal::Entity::find()
        .filter(security_signal::Column::UserId.eq(s.user_id))
        .filter(security_signal::Column::Kind.eq(Text(s.kind)))
        .filter(security_signal::Column::Detail.eq(s.detail.as_str()))
        .filter(security_signal::Column::Day.eq(s.day.as_str()))
        .one(db)
        .await?
        .is_some())
}

/// Records signal `s`.
pub async fn record_signal(db: &impl ConnectionTrait, s: NewSignal) -> Result<(), StoreError> {
    security_signal::ActiveModel {
        user_id: Set(s.user_id),
        kind: Set(Text(s.kind)),
        detail: Set(s.detail),
        day: Set(s.day),
        created_at: Set(s.at),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// The security signals raised after `since`, newest first.
pub async fn signals_since(
    db: &impl ConnectionTrait,
    since: DateTime<Utc>,
) -> Result<Vec<security_signal::Model>, StoreError> {
    Ok(security_signal::Entity::find()
        .filter(security_signal::Column::CreatedAt.gt(since))
        .order_by_desc(security_signal::Column::CreatedAt)
        .all(db)
        .await?)
}
