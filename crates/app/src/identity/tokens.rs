//! Credentials: argon2id password hashing, API token issue and verification, and a small cache.
//!
//! A token is `cg_<public id>_<secret>` (256 random bits). It is stored as a keyed SHA-256: the
//! HMAC-SHA-256 of the whole token under the server's token key ([`TokenKey`], a file beside
//! the signing key, outside the database), found by its unique index; verifying one costs a
//! hash, never an argon2id permit, so wrong sign-ins cannot delay pipelines. Rows of older
//! databases (and rows whose digest was made under another replica's key) hold an argon2id hash
//! of the secret: such a token is verified that way, and a row without a digest gets this
//! server's. Replicas should share the token key file, as they share the database. A verified
//! token is remembered (by its SHA-256, in memory only) with its principal and where the audit
//! log's head stood when it was checked, and its whole row re-read every 30 seconds. In between,
//! every request takes a fresh read of the head (shared by the requests waiting at once,
//! [`super::head`]); only when the head has moved (something was written since) does it read by
//! primary key whether the token is revoked or its account inactive ([`still_live`]). So a
//! revocation, a deactivation or a role change (which revokes the account's tokens) refuses the
//! very next request, on this replica and on every other, without waiting for the audit-log
//! follower, and a busy gate costs one small read per batch of requests, not one per request.

use crate::{AppError, AppResult};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use changegate_domain::change::{Actor, Person};
use changegate_domain::{OrgKind, Role};
use changegate_store::entity::{api_token, organisation, user};
use changegate_store::identity::{self as store, TokenBy, TokenWithOwner};
use changegate_store::sea_orm::ConnectionTrait;
use chrono::{DateTime, Utc};
use rand::Rng;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// An authenticated person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// User id (0 for the operator at the server's command line).
    pub user_id: i64,
    /// Username.
    pub username: String,
    /// Full name.
    pub display_name: String,
    /// Organisation id.
    pub org_id: i64,
    /// Organisation code.
    pub org_code: String,
    /// Organisation kind.
    pub org_kind: OrgKind,
    /// Role.
    pub role: Role,
    /// The API token the request came with (None: a web session, the command line).
    pub token_id: Option<i64>,
}

impl Principal {
    /// The domain's view of this person.
    pub fn actor(&self) -> Actor {
        Actor::Person(Person {
            id: self.user_id,
            org_id: self.org_id,
            org_kind: self.org_kind,
            role: self.role,
        })
    }

    /// The operator at the server's command line (`changegate admin …`): an admin, attributed to
    /// the operating-system account that ran the command.
    pub fn operator() -> Self {
        let who = std::env::var("SUDO_USER")
            .or_else(|_| std::env::var("USER"))
            .unwrap_or_else(|_| "unknown".into());
        Self {
            user_id: 0,
            username: format!("cli:{who}"),
            display_name: format!("command line ({who})"),
            org_id: 0,
            org_code: String::new(),
            org_kind: OrgKind::Inspector,
            role: Role::Admin,
            token_id: None,
        }
    }

    /// Refuses unless the principal has one of `roles`.
    pub fn require(&self, roles: &[Role], what: &str) -> AppResult<()> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "{what} needs the role {}; {} has the role {}",
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" or "),
                self.username,
                self.role
            )))
        }
    }
}

/// Memory of one password hash, in KiB: 12 MiB.
const PASSWORD_M_KIB: u32 = 12 * 1024;
/// Passes over it.
const PASSWORD_T: u32 = 3;

/// argon2id for passwords: m = 12 MiB, t = 3, p = 1, one of the configurations OWASP's
/// Password Storage Cheat Sheet lists as giving the same defence as the library's default
/// (19 MiB, t = 2), trading memory for passes: about the same time per hash, and a third less
/// memory at every sign-in on a small VM. Verification reads the parameters from the stored hash,
/// so a password hashed with other parameters keeps them until it is next set.
fn argon() -> Argon2<'static> {
    let params = argon2::Params::new(PASSWORD_M_KIB, PASSWORD_T, 1, None).unwrap_or_default();
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// argon2id for API token secrets. A token is 256 random bits, so stretching buys nothing;
/// smaller parameters keep the memory of a first verification at 4 MiB instead of 12 MiB. The
/// parameters are stored in each hash, so verification reads them from there.
fn argon_for_tokens() -> Argon2<'static> {
    let params = argon2::Params::new(4096, 1, 1, None).unwrap_or_default();
    Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Hashes a password (or one-time password) with argon2id at the password cost ([`argon`]).
pub fn hash_secret(secret: &str) -> AppResult<String> {
    hash_with(&argon(), secret)
}

/// Hashes the secret of an API token with argon2id at a cost fit for 256 random bits.
pub fn hash_token_secret(secret: &str) -> AppResult<String> {
    hash_with(&argon_for_tokens(), secret)
}

fn hash_with(a: &Argon2<'_>, secret: &str) -> AppResult<String> {
    let salt_bytes: [u8; 16] = rand::rng().random();
    let salt = SaltString::encode_b64(&salt_bytes)
        .map_err(|e| AppError::Internal(format!("argon2 salt: {e}")))?;
    a.hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(format!("argon2: {e}")))
}

/// Verifies a secret against an argon2id PHC string.
pub fn verify_secret(secret: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| argon().verify_password(secret.as_bytes(), &h).is_ok())
}

/// A one-time password: 16 characters from an alphabet without look-alikes.
pub fn one_time_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzACDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..16)
        .map(|_| char::from(ALPHABET[rng.random_range(0..ALPHABET.len())]))
        .collect()
}

/// A new token: (public id, secret, full token).
pub fn new_token() -> (String, String, String) {
    let mut rng = rand::rng();
    let public: [u8; 8] = rng.random();
    let secret: [u8; 32] = rng.random();
    let public = hex::encode(public);
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let token = format!("cg_{public}_{secret}");
    (public, secret, token)
}

fn split_token(token: &str) -> Option<(&str, &str)> {
    let rest = token.strip_prefix("cg_")?;
    let (public, secret) = rest.split_once('_')?;
    (public.len() == 16
        && public.bytes().all(|b| b.is_ascii_hexdigit())
        && (40..=64).contains(&secret.len()))
    .then_some((public, secret))
}

/// The server's key for API token digests: 32 random bytes in a file beside the signing key
/// (`token.key`, base64, mode 0600), created at first start.
#[derive(Clone)]
pub struct TokenKey {
    key: [u8; 32],
    /// The first 16 hex digits of the key's SHA-256: which key made a row's digest.
    pub id: String,
}

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKey").field("id", &self.id).finish()
    }
}

impl TokenKey {
    fn from_bytes(key: [u8; 32]) -> Self {
        let id = hex::encode(&Sha256::digest(key)[..8]);
        Self { key, id }
    }

    /// A key that lives as long as the process (tests, tools that issue no tokens).
    pub fn ephemeral() -> Self {
        Self::from_bytes(rand::random())
    }

    /// Reads the key at `path`, or creates it (mode 0600) when there is none.
    pub fn load_or_create(path: &std::path::Path) -> AppResult<Self> {
        crate::key_file::read_or_create(path, "API token key").map(Self::from_bytes)
    }

    /// The HMAC-SHA-256 (hex) of `token` under this key.
    pub fn digest(&self, token: &str) -> String {
        use hmac::Mac;
        let mut mac = <hmac::Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
        mac.update(token.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

#[derive(Clone)]
struct Cached {
    principal: Arc<Principal>,
    public_id: String,
    expires_at: DateTime<Utc>,
    checked: Instant,
    /// The audit log's head when the token was last found live.
    head: super::head::Head,
}

/// The most verified tokens remembered; beyond it the least used are forgotten (and verified
/// again, with their argon2id hash, when next used).
const VERIFIED_MAX: u64 = 10_000;

/// Remembers verified tokens.
pub struct AuthCache {
    verified: moka::sync::Cache<[u8; 32], Cached>,
    heads: super::head::HeadReads,
    argon_slots: tokio::sync::Semaphore,
    /// The key of API token digests (None: tokens are issued with their argon2id hash only and
    /// get a digest from the first server that verifies them).
    pub key: Option<TokenKey>,
}

impl Default for AuthCache {
    fn default() -> Self {
        // argon2id costs 12 MiB and tens of milliseconds: one at a time per two cores bounds
        // memory and leaves cores to the gate (on a 2-core VM, eight sign-ins at once peaked at
        // 81.6 MiB with two slots; one keeps the peak near the server's size plus one hash).
        let slots = std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1));
        Self {
            verified: moka::sync::Cache::new(VERIFIED_MAX),
            heads: super::head::HeadReads::default(),
            argon_slots: tokio::sync::Semaphore::new(slots),
            key: None,
        }
    }
}

const RECHECK: Duration = Duration::from_secs(30);

impl AuthCache {
    /// An empty cache over `db`, whose head checks skip the database while nothing is
    /// committed (SQLite: [`super::head::HeadReads::watching`]).
    pub fn watching(db: &changegate_store::sea_orm::DatabaseConnection) -> Self {
        Self {
            heads: super::head::HeadReads::watching(db),
            ..Self::default()
        }
    }

    /// An empty cache whose token digests use `key`.
    pub fn with_key(key: Option<TokenKey>) -> Self {
        Self {
            key,
            ..Self::default()
        }
    }

    /// What a new token's row stores: its digest and the key's id, with this server's key.
    pub fn digest_of(&self, token: &str) -> (Option<String>, Option<String>) {
        match &self.key {
            Some(k) => (Some(k.digest(token)), Some(k.id.clone())),
            None => (None, None),
        }
    }

    /// Forgets the verified tokens `which` picks, at once.
    fn forget(&self, which: impl Fn(&Cached) -> bool) {
        for (key, c) in self.verified.iter() {
            if which(&c) {
                self.verified.invalidate(&*key);
            }
        }
    }

    /// Forgets a token (revoked).
    pub fn forget_token(&self, public_id: &str) {
        self.forget(|c| c.public_id == public_id);
    }

    /// Forgets every token of a user (deactivated, role changed).
    pub fn forget_user(&self, user_id: i64) {
        self.forget(|c| c.principal.user_id == user_id);
    }

    /// Forgets every token of a user, by username.
    pub fn forget_username(&self, username: &str) {
        self.forget(|c| c.principal.username == username);
    }

    /// Verifies a password against an argon2id hash off the async threads, one at a time per two
    /// cores (each costs 12 MiB, or what its stored parameters say, and tens of milliseconds).
    pub async fn verify_password(&self, secret: &str, phc: &str) -> AppResult<bool> {
        let _slot = self
            .argon_slots
            .acquire()
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let (secret, phc) = (secret.to_owned(), phc.to_owned());
        tokio::task::spawn_blocking(move || verify_secret(&secret, &phc))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))
    }

    /// Hashes a new password off the async threads.
    pub async fn hash_password(&self, secret: &str) -> AppResult<String> {
        let _slot = self
            .argon_slots
            .acquire()
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
        let secret = secret.to_owned();
        tokio::task::spawn_blocking(move || hash_secret(&secret))
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?
    }

    /// Authenticates a bearer token.
    pub async fn authenticate(
        &self,
        db: &impl ConnectionTrait,
        token: &str,
    ) -> AppResult<Arc<Principal>> {
        let bad = || AppError::Unauthorized("the token is not valid".into());
        let (public, secret) = split_token(token).ok_or_else(bad)?;
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = Utc::now();
        // Read before anything else, so that a write after it moves the head past what is kept.
        let head = self.heads.fresh(db).await?;
        // The hot path: a token verified in the last 30 seconds, with nothing written since it
        // was last found live, costs a hash, a shared read of the head and an Arc clone.
        let hit = self.verified.get(&key);
        let cached = match hit {
            Some(c) if c.expires_at <= now => return Err(AppError::TokenExpired(c.expires_at)),
            Some(c) if c.checked.elapsed() < RECHECK && c.head == head => {
                return Ok(c.principal.clone());
            }
            Some(c) if c.checked.elapsed() < RECHECK => {
                // Something was written since: no cache keeps a revoked token or a deactivated
                // account alive, so its row is read by primary key.
                if still_live(db, c.principal.token_id.unwrap_or_default()).await? {
                    let principal = c.principal.clone();
                    self.verified.insert(key, Cached { head, ..c });
                    return Ok(principal);
                }
                self.forget_token(&c.public_id);
                return Err(AppError::Unauthorized("the token has been revoked".into()));
            }
            Some(_) => true,
            None => false,
        };
        let digest = self.key.as_ref().map(|k| (k.digest(token), k.id.clone()));
        // The indexed digest first; a row found by its public id only if it has no digest of
        // this key (an older row, or one made under another replica's key).
        let by_digest = match &digest {
            Some((d, _)) => load(db, TokenBy::Digest(d)).await?,
            None => None,
        };
        let (tok, person, by_digest) = match by_digest {
            Some((tok, _)) if tok.public_id != public => return Err(bad()),
            Some((tok, person)) => (tok, person, true),
            None => {
                let (tok, person) = load(db, TokenBy::PublicId(public)).await?.ok_or_else(bad)?;
                let ours = digest
                    .as_ref()
                    .filter(|d| tok.digest_key.as_ref() == Some(&d.1));
                match ours {
                    // The row got its digest of this key between the two reads (another request
                    // verified it the old way at the same moment): it is proven if it matches.
                    Some(d)
                        if tok.token_digest.as_deref().is_some_and(|t| {
                            super::totp::constant_time_eq(t.as_bytes(), d.0.as_bytes())
                        }) =>
                    {
                        (tok, person, true)
                    }
                    // A digest of this key that did not match: a wrong secret.
                    Some(_) => return Err(bad()),
                    None => (tok, person, false),
                }
            }
        };
        // A revoked or expired token with a wrong secret answers as any bad token: only a token
        // that proved its secret learns that it was revoked or expired.
        let proven = by_digest || cached || {
            let _slot = self
                .argon_slots
                .acquire()
                .await
                .map_err(|e| AppError::Internal(e.to_string()))?;
            let (secret, phc) = (secret.to_owned(), tok.secret_hash.clone());
            tokio::task::spawn_blocking(move || verify_secret(&secret, &phc))
                .await
                .map_err(|e| AppError::Internal(e.to_string()))?
        };
        if !proven {
            return Err(bad());
        }
        if tok.revoked_at.is_some() || !person.1 {
            self.forget_token(public);
            return Err(AppError::Unauthorized("the token has been revoked".into()));
        }
        if tok.expires_at <= now {
            return Err(AppError::TokenExpired(tok.expires_at));
        }
        if let (None, Some((digest, key_id))) = (&tok.token_digest, digest) {
            // An older row, verified the old way once: it gets its digest.
            store::record_token_digest(db, tok.id, digest, key_id).await?;
        }
        let c = Cached {
            principal: Arc::new(Principal {
                token_id: Some(tok.id),
                ..person.0
            }),
            public_id: tok.public_id,
            expires_at: tok.expires_at,
            checked: Instant::now(),
            head,
        };
        let principal = c.principal.clone();
        self.verified.insert(key, c);
        Ok(principal)
    }
}

/// Whether API token `token_id` is not revoked and its account is active, read now.
async fn still_live(db: &impl ConnectionTrait, token_id: i64) -> AppResult<bool> {
    Ok(store::token_still_live(db, token_id).await?)
}

/// The token `by` finds, with its principal and whether its account is active.
async fn load(
    db: &impl ConnectionTrait,
    by: TokenBy<'_>,
) -> AppResult<Option<(api_token::Model, (Principal, bool))>> {
    let Some(TokenWithOwner { token, user: u }) = store::token_with_owner(db, by).await? else {
        return Ok(None);
    };
    let p = principal_of(db, &u).await?;
    Ok(Some((token, (p, u.active))))
}

/// The principal of a user row.
pub async fn principal_of(db: &impl ConnectionTrait, u: &user::Model) -> AppResult<Principal> {
    Ok(principal_and_org(db, u).await?.0)
}

/// The principal of a user row, and the row of its organisation.
pub async fn principal_and_org(
    db: &impl ConnectionTrait,
    u: &user::Model,
) -> AppResult<(Principal, organisation::Model)> {
    let org = store::organisation_by_id(db, u.org_id)
        .await?
        .ok_or_else(|| AppError::Internal(format!("user {} has no organisation", u.username)))?;
    let p = Principal {
        user_id: u.id,
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        org_id: org.id,
        org_code: org.code.clone(),
        org_kind: *org.kind,
        role: *u.role,
        token_id: None,
    };
    Ok((p, org))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_documented_shape_and_differ() {
        let (p1, s1, t1) = new_token();
        let (_, _, t2) = new_token();
        assert_ne!(t1, t2);
        assert_eq!(
            split_token(&t1).map(|(p, s)| (p.to_owned(), s.to_owned())),
            Some((p1, s1))
        );
        assert!(split_token("cg_short_x").is_none());
        assert!(split_token("Bearer whatever").is_none());
    }

    #[test]
    fn secrets_are_hashed_with_argon2id_and_verify() {
        let h = hash_secret("một mật khẩu dài").unwrap_or_default();
        assert!(h.starts_with("$argon2id$v=19$m=12288,t=3,p=1$"), "{h}");
        assert!(verify_secret("một mật khẩu dài", &h));
        assert!(!verify_secret("mot mat khau dai", &h));
        // A password hashed by an earlier release (the library's default, 19 MiB, t = 2) still
        // verifies, with its own parameters.
        let old = hash_with(&Argon2::default(), "mật khẩu cũ").unwrap_or_default();
        assert!(old.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{old}");
        assert!(verify_secret("mật khẩu cũ", &old));
        assert!(!verify_secret("mat khau cu", &old));
        let t = hash_token_secret("token-secret").unwrap_or_default();
        assert!(t.starts_with("$argon2id$v=19$m=4096,t=1,p=1$"), "{t}");
        assert!(verify_secret("token-secret", &t));
    }

    #[test]
    fn one_time_passwords_are_sixteen_characters_and_random() {
        let a = one_time_password();
        assert_eq!(a.chars().count(), 16);
        assert_ne!(a, one_time_password());
    }
}
