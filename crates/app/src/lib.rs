//! changegate-app: the use cases. Each write use case is one transaction that takes the audit
//! chain's head first, makes the change, appends its audit event, and commits together or not at
//! all; the in-memory gate index then catches up from the audit log.
//!
//! It must not know HTTP. It returns the wire views of `changegate-api` so that the server's
//! handlers stay thin. Errors are [`AppError`]; `anyhow` is not used here.

pub mod audit;
pub mod auth;
pub mod changes;
pub mod ci;
pub mod demo;
pub mod gate;
pub mod incidents;
pub mod jobs;
pub mod notify;
pub mod registry;
pub mod sessions;
pub mod signer;
pub mod totp;
pub mod views;

use changegate_domain::{ParseError, PolicyPack, Refusal};
use changegate_store::StoreError;
use changegate_store::audit::NewEvent;
use changegate_store::sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use chrono::{DateTime, SubsecRound, Utc};
use std::sync::Arc;

pub use auth::Principal;

/// Why a use case did not happen. Nothing changed in any case.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No credentials, or credentials that do not match.
    #[error("{0}")]
    Unauthorized(String),
    /// The token has expired.
    #[error("the token expired at {0}")]
    TokenExpired(DateTime<Utc>),
    /// The actor may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// Separation of duties forbids it.
    #[error("separation of duties: {0}")]
    SeparationOfDuties(String),
    /// No such thing (or not visible to this actor).
    #[error("{0} not found")]
    NotFound(String),
    /// Input fields are invalid.
    #[error("invalid input: {}", .0.iter().map(|(f, m)| format!("{f}: {m}")).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<(String, String)>),
    /// The request conflicts with the current state (code, message).
    #[error("{1}")]
    Conflict(&'static str, String),
    /// The gate cannot decide now (fail closed).
    #[error("{0}")]
    Unavailable(String),
    /// The database or another part of the server failed.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Invalid(vec![(field.into(), message.into())])
    }
    /// A parse error, attributed to a field.
    pub fn parse(field: impl Into<String>, e: ParseError) -> Self {
        AppError::invalid(field, e.to_string())
    }
}

impl From<DbErr> for AppError {
    fn from(e: DbErr) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::Internal(e.to_string())
    }
}

impl From<Refusal> for AppError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Forbidden(m) => AppError::Forbidden(m),
            Refusal::SeparationOfDuties(m) => AppError::SeparationOfDuties(m),
            Refusal::IllegalTransition { .. } => {
                AppError::Conflict("illegal_transition", r.to_string())
            }
            Refusal::AlreadySigned => AppError::Conflict("already_signed", r.to_string()),
            Refusal::Invalid { field, message } => AppError::Invalid(vec![(field, message)]),
        }
    }
}

/// Result of a use case.
pub type AppResult<T> = Result<T, AppError>;

/// The application: database, policy pack, gate index and credential cache.
pub struct App {
    /// The connection pool.
    pub db: DatabaseConnection,
    /// The validated policy pack.
    pub pack: Arc<PolicyPack>,
    /// The gate's in-memory index.
    pub gate: gate::GateIndex,
    /// The token cache.
    pub auth: auth::AuthCache,
    /// Time zone of recurring freeze windows and scheduled jobs.
    pub tz: chrono_tz::Tz,
    /// The key that signs gate decisions.
    pub signer: signer::Signer,
    /// Woken when a committed transaction queued webhook deliveries.
    pub dispatch_wake: tokio::sync::Notify,
    /// In-process sign-in state of the web UI.
    pub sessions: sessions::SessionState,
    write_lock: tokio::sync::Mutex<()>,
}

/// The default policy pack, embedded in the binary.
pub const DEFAULT_PACK: &str = include_str!("../../../workflows/population-db.toml");

/// Now, truncated to microseconds (what both databases store exactly).
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

/// A write transaction: holds the process's write lock and the chain head until commit.
pub struct WriteTx<'a> {
    app: &'a App,
    /// The transaction.
    pub txn: DatabaseTransaction,
    _guard: tokio::sync::MutexGuard<'a, ()>,
    at: DateTime<Utc>,
    queued: std::sync::atomic::AtomicBool,
}

impl WriteTx<'_> {
    /// When this transaction happens (the audit time of its events).
    pub fn at(&self) -> DateTime<Utc> {
        self.at
    }

    /// Appends an audit event to this transaction.
    pub async fn audit(&self, ev: NewEvent) -> AppResult<i64> {
        Ok(changegate_store::audit::append(&self.txn, ev, self.at).await?)
    }

    pub(crate) fn queued_deliveries(&self) {
        self.queued
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Commits, wakes the webhook dispatcher if deliveries were queued, then brings the gate
    /// index up to date before returning.
    pub async fn commit(self) -> AppResult<()> {
        let app = self.app;
        self.txn.commit().await?;
        drop(self._guard);
        if self.queued.load(std::sync::atomic::Ordering::Relaxed) {
            app.dispatch_wake.notify_one();
        }
        if let Err(e) = app.catch_up().await {
            tracing::warn!(error = %e, "gate index could not catch up after a write; the poller retries");
        }
        Ok(())
    }
}

impl App {
    /// Builds the app over a migrated database.
    pub fn new(db: DatabaseConnection, pack: PolicyPack) -> Self {
        Self {
            db,
            pack: Arc::new(pack),
            gate: gate::GateIndex::default(),
            auth: auth::AuthCache::default(),
            tz: chrono_tz::Asia::Ho_Chi_Minh,
            signer: signer::Signer::ephemeral(),
            dispatch_wake: tokio::sync::Notify::new(),
            sessions: sessions::SessionState::default(),
            write_lock: tokio::sync::Mutex::new(()),
        }
    }

    /// Connects, migrates and builds the app with a signing key that lives only in memory.
    pub async fn open(database_url: &str, pack: PolicyPack) -> AppResult<Self> {
        Self::open_with(database_url, pack, signer::Signer::ephemeral()).await
    }

    /// Connects, migrates and builds the app with `signer` (a serving process then calls
    /// [`App::publish_signing_key`]; commands that only read must not write). The gate index
    /// starts at the audit head.
    pub async fn open_with(
        database_url: &str,
        pack: PolicyPack,
        signer: signer::Signer,
    ) -> AppResult<Self> {
        let db = changegate_store::connect(database_url).await?;
        changegate_store::migrate(&db).await?;
        let mut app = Self::new(db, pack);
        app.signer = signer;
        app.gate.start_at_head(&app.db).await?;
        Ok(app)
    }

    /// Begins a write transaction: the process's write lock, then the chain head row.
    pub async fn begin(&self) -> AppResult<WriteTx<'_>> {
        let guard = self.write_lock.lock().await;
        let txn = self.db.begin().await?;
        changegate_store::audit::lock_head(&txn).await?;
        Ok(WriteTx {
            app: self,
            txn,
            _guard: guard,
            at: now(),
            queued: std::sync::atomic::AtomicBool::new(false),
        })
    }
}

/// An audit event by a principal (or the server itself when `None`).
pub(crate) fn event(
    who: Option<&Principal>,
    action: &str,
    entity: &str,
    entity_id: impl ToString,
    system_id: Option<i64>,
    before: Option<serde_json::Value>,
    after: Option<serde_json::Value>,
) -> NewEvent {
    NewEvent {
        actor: who.map_or_else(|| "system".to_owned(), |p| p.username.clone()),
        actor_id: who.and_then(|p| (p.user_id > 0).then_some(p.user_id)),
        action: action.to_owned(),
        entity: entity.to_owned(),
        entity_id: entity_id.to_string(),
        system_id,
        before: before.map(|v| v.to_string()),
        after: after.map(|v| v.to_string()),
    }
}

/// Parses a JSON text column, reporting corruption instead of panicking.
pub(crate) fn json_col<T: serde::de::DeserializeOwned>(
    what: &'static str,
    s: &str,
) -> AppResult<T> {
    serde_json::from_str(s)
        .map_err(|e| AppError::Internal(format!("stored {what} is not valid JSON: {e}")))
}

/// Serialises to a JSON text column.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "null".to_owned())
}
