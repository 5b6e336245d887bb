//! The SQLite statements behind backups: copying a database into a new file (`VACUUM INTO`) and
//! SQLite's integrity check of one. Which files, when, and what a check's answer means for a
//! backup are the app's.

use crate::StoreError;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use std::path::Path;

/// Writes a consistent copy of the SQLite database `db` to the new file `to` (`VACUUM INTO`: one
/// read transaction, so writers carry on).
pub async fn vacuum_into(db: &impl ConnectionTrait, to: &Path) -> Result<(), StoreError> {
    let path = to.to_string_lossy().replace('\'', "''");
    db.execute_unprepared(&format!("VACUUM INTO '{path}'"))
        .await?;
    Ok(())
}

/// What SQLite's integrity check (`PRAGMA integrity_check`) answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntegrityCheck {
    /// How many rows it answered.
    pub rows: usize,
    /// The text of each row that has one, in order (`ok` alone when the file is sound).
    pub messages: Vec<String>,
}

/// Runs SQLite's integrity check on `db`.
pub async fn integrity_check(db: &impl ConnectionTrait) -> Result<IntegrityCheck, StoreError> {
    let rows = db
        .query_all_raw(Statement::from_string(
            DbBackend::Sqlite,
            "PRAGMA integrity_check",
        ))
        .await?;
    Ok(IntegrityCheck {
        rows: rows.len(),
        messages: rows
            .iter()
            .filter_map(|r| r.try_get_by_index::<String>(0).ok())
            .collect(),
    })
}
