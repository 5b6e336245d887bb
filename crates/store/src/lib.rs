//! changegate-store: sea-orm entities, migrations and queries, one code path for SQLite and
//! PostgreSQL.
//!
//! Store functions take `&impl ConnectionTrait` so the same function runs on the pool or inside a
//! use case's transaction. This crate holds no business rules: the domain crate decides, the app
//! crate orchestrates, this crate reads and writes rows.

pub mod annual;
pub mod assessments;
pub mod audit;
pub mod backup;
pub mod changes;
pub mod ci;
pub mod enforce;
pub mod entity;
pub mod forms;
pub mod gate;
pub mod identity;
pub mod incidents;
pub mod jobs;
pub mod metrics;
pub mod migration;
pub mod outbox;
pub mod registry;
pub mod remediation;
pub mod search;
pub mod signing;
pub mod types;
pub mod wal;

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use sea_orm_migration::MigratorTrait;
use std::time::Duration;

pub use sea_orm;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database said no.
    #[error(transparent)]
    Db(#[from] DbErr),
    /// A stored value does not parse (corrupt or hand-edited row).
    #[error("stored {what} is invalid: {detail}")]
    Corrupt {
        /// Which value.
        what: &'static str,
        /// Why.
        detail: String,
    },
}

/// Opens a connection pool. `sqlite://PATH?mode=rwc` files are created when missing and put in
/// WAL mode with a busy timeout; `postgres://` URLs connect to PostgreSQL.
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.sqlx_logging(false)
        .connect_timeout(Duration::from_secs(5))
        .acquire_timeout(Duration::from_secs(5));
    if url.starts_with("sqlite:") {
        // Few connections with a small page cache each: writes are serialised anyway and the
        // gate answers from memory.
        opts.max_connections(4)
            .min_connections(1)
            .map_sqlx_sqlite_opts(|o| {
                o.create_if_missing(true)
                    .journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                    .synchronous(sea_orm::sqlx::sqlite::SqliteSynchronous::Normal)
                    .foreign_keys(true)
                    .busy_timeout(Duration::from_secs(10))
                    .pragma("cache_size", "-1024")
            });
    } else {
        opts.max_connections(16).min_connections(1);
    }
    Database::connect(opts).await
}

/// Applies every pending migration.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    migration::Migrator::up(db, None).await
}

/// Whether the schema is at the latest migration (nothing pending).
pub async fn is_migrated(db: &DatabaseConnection) -> Result<bool, DbErr> {
    Ok(migration::Migrator::get_pending_migrations(db)
        .await?
        .is_empty())
}

/// A cheap round trip: does the database answer?
pub async fn ping(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    db.execute_unprepared("SELECT 1").await.map(|_| ())
}

/// Which backend a connection talks to, for messages.
pub fn backend_name(db: &impl ConnectionTrait) -> &'static str {
    match db.get_database_backend() {
        DbBackend::Sqlite => "sqlite",
        DbBackend::Postgres => "postgres",
        _ => "other",
    }
}
