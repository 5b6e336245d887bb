//! changegate-app: the use cases. Each write use case is one transaction that takes the audit
//! chain's head first, makes the change, appends its audit event, and commits together or not at
//! all; the in-memory gate index then catches up from the audit log.
//!
//! It must not know HTTP. It returns the wire views of `changegate-api` so that the server's
//! handlers stay thin. Errors are [`AppError`]; `anyhow` is not used here.

pub mod annual;
pub mod assessments;
pub mod audit;
pub mod backup;
pub mod changes;
pub mod ci;
pub mod demo;
pub mod enforce;
pub mod gate;
pub mod identity;
pub mod incident_list;
pub mod incidents;
pub mod jobs;
mod key_file;
mod lists;
pub mod notify;
pub mod registry;
pub mod remediation;
pub mod systems;
pub mod views;

use changegate_api as wire;
use changegate_domain::{ParseError, PolicyPack, Refusal};
use changegate_store::StoreError;
use changegate_store::audit::NewEvent;
use changegate_store::sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr, TransactionTrait};
use chrono::{DateTime, SubsecRound, Utc};
use std::sync::Arc;

pub use gate::signer;
pub use identity::tokens::Principal;
/// Old paths of moved modules, still used by the server and the tests.
pub use identity::{self as sessions, tokens as auth, totp};

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
    /// Too many failed sign-ins from this address: signing in from it is refused until then.
    #[error("too many failed sign-ins from this address; try again after {0}")]
    Throttled(DateTime<Utc>),
    /// The account is locked after repeated failures until then.
    #[error("the account is locked after repeated failures until {0}")]
    Locked(DateTime<Utc>),
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
    Conflict(wire::ProblemCode, String),
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
                AppError::Conflict(wire::ProblemCode::IllegalTransition, r.to_string())
            }
            Refusal::WrongState(_) => {
                AppError::Conflict(wire::ProblemCode::IllegalTransition, r.to_string())
            }
            Refusal::ExternalAssessmentRequired(_) => {
                AppError::Conflict(wire::ProblemCode::ExternalAssessmentRequired, r.to_string())
            }
            Refusal::AlreadySigned => {
                AppError::Conflict(wire::ProblemCode::AlreadySigned, r.to_string())
            }
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
    /// Settings of the enforcement points beyond the pipeline (admission, GitHub, observations).
    pub enforce: enforce::Enforcement,
    /// Signed audit checkpoints: how often, and the file that keeps the latest.
    pub checkpoints: audit::checkpoints::Settings,
    /// The scheduled backup: where from, where to, how many to keep.
    pub backup: backup::Settings,
    /// Set when the audit log failed verification at start and the server serves reads only:
    /// why. Every write is then refused.
    pub read_only: std::sync::OnceLock<String>,
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
    /// The first and last seq appended (0: none), for the signed checkpoint every N events.
    appended: (std::sync::atomic::AtomicI64, std::sync::atomic::AtomicI64),
}

impl WriteTx<'_> {
    /// When this transaction happens (the audit time of its events).
    pub fn at(&self) -> DateTime<Utc> {
        self.at
    }

    /// Appends an audit event to this transaction.
    pub async fn audit(&self, ev: NewEvent) -> AppResult<i64> {
        let seq = changegate_store::audit::append(&self.txn, ev, self.at).await?;
        self.appended_up_to(seq, 1);
        Ok(seq)
    }

    /// Appends audit events, in order, to this transaction; returns the last seq.
    pub async fn audit_many(&self, events: Vec<NewEvent>) -> AppResult<i64> {
        let n = events.len() as i64;
        let seq = changegate_store::audit::append_many(&self.txn, events, self.at).await?;
        self.appended_up_to(seq, n);
        Ok(seq)
    }

    fn appended_up_to(&self, last: i64, n: i64) {
        use std::sync::atomic::Ordering::Relaxed;
        if n > 0 {
            let _ = self
                .appended
                .0
                .compare_exchange(0, last - n + 1, Relaxed, Relaxed);
            self.appended.1.store(last, Relaxed);
        }
    }

    pub(crate) fn queued_deliveries(&self) {
        self.queued
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Commits, wakes the webhook dispatcher if deliveries were queued, then brings the gate
    /// index up to date before returning.
    pub async fn commit(self) -> AppResult<()> {
        let app = self.app;
        let (first, last) = (
            self.appended.0.load(std::sync::atomic::Ordering::Relaxed),
            self.appended.1.load(std::sync::atomic::Ordering::Relaxed),
        );
        // Every N events, the key outside the database signs the chain's head, in the same
        // transaction.
        let checkpoint = if audit::checkpoints::crosses(first, last, app.checkpoints.every) {
            let (seq, hash) = changegate_store::audit::head(&self.txn).await?;
            Some(app.insert_checkpoint(&self.txn, seq, hash).await?)
        } else {
            None
        };
        self.txn.commit().await?;
        if let Some(cp) = &checkpoint {
            app.anchor_checkpoint(cp);
        }
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
            auth: auth::AuthCache::watching(&db),
            db,
            pack: Arc::new(pack),
            gate: gate::GateIndex::default(),
            tz: chrono_tz::Asia::Ho_Chi_Minh,
            signer: signer::Signer::ephemeral(),
            dispatch_wake: tokio::sync::Notify::new(),
            sessions: sessions::SessionState::default(),
            enforce: enforce::Enforcement::default(),
            checkpoints: audit::checkpoints::Settings::default(),
            backup: backup::Settings::default(),
            read_only: std::sync::OnceLock::new(),
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
        if let Some(why) = self.read_only.get() {
            return Err(AppError::Unavailable(format!(
                "the server is read-only: {why}"
            )));
        }
        let guard = self.write_lock.lock().await;
        let txn = self.db.begin().await?;
        changegate_store::audit::lock_head(&txn).await?;
        Ok(WriteTx {
            app: self,
            txn,
            _guard: guard,
            at: now(),
            queued: std::sync::atomic::AtomicBool::new(false),
            appended: Default::default(),
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
