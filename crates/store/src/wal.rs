//! Whether anything was committed to a SQLite database since a moment, known without a query:
//! the header of its WAL index (the `-shm` file every connection to a WAL database shares).
//!
//! A commit in WAL mode rewrites that header before it returns (the last frame, its checksum,
//! and after a restart of the log new salts), so two reads of the header that are equal mean no
//! commit came between them, by this process or by any other on the host (SQLite's WAL works
//! only between processes of one host). The header is kept twice, the second copy written
//! first; a read whose two copies differ caught a commit in the middle and is not a mark. The
//! file stays open between reads (two system calls per mark, no path lookup); when the last
//! connection closes SQLite deletes it and the next one makes a new file, so a read of a file no
//! longer linked is no mark and the name is opened again. Format:
//! <https://www.sqlite.org/walformat.html> (section 2.1, the WAL-index header).
//!
//! PostgreSQL, an in-memory SQLite database, or a database not in WAL mode has no such file:
//! [`Probe::for_db`] then gives `None` and callers read the database as before.

use sea_orm::{DatabaseConnection, DbBackend};
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// Bytes of one copy of the WAL-index header.
const HEADER: usize = 48;

/// What the header said at one moment: equal marks mean nothing was committed between them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark([u8; HEADER]);

/// Reads the WAL-index header of one SQLite database.
#[derive(Debug)]
pub struct Probe {
    shm: PathBuf,
    /// The index file as last opened (None: not open).
    file: Mutex<Option<Arc<File>>>,
}

impl Probe {
    /// The probe of `db`'s file, if it is a SQLite database on disk.
    pub fn for_db(db: &DatabaseConnection) -> Option<Self> {
        if db.get_database_backend() != DbBackend::Sqlite {
            return None;
        }
        let options = db.get_sqlite_connection_pool().connect_options();
        let file = options.get_filename();
        if file.as_os_str().is_empty() || file.to_str() == Some(":memory:") || !file.is_file() {
            return None;
        }
        let mut shm = file.as_os_str().to_owned();
        shm.push("-shm");
        Some(Self {
            shm: shm.into(),
            file: Mutex::new(None),
        })
    }

    /// The header now, if it can be read and its two copies agree (None: no mark; the caller
    /// must read the database).
    #[cfg(unix)]
    pub fn mark(&self) -> Option<Mark> {
        use std::os::unix::fs::{FileExt, MetadataExt};
        let file = {
            let mut open = self.file.lock().ok()?;
            if open.is_none() {
                *open = File::open(&self.shm).ok().map(Arc::new);
            }
            open.clone()?
        };
        let mut both = [0u8; 2 * HEADER];
        let read = file.read_exact_at(&mut both, 0);
        // Linked after the read: what was read is the file connections use now.
        if read.is_err() || file.metadata().map_or(true, |m| m.nlink() == 0) {
            if let Ok(mut open) = self.file.lock() {
                *open = None;
            }
            return None;
        }
        let (first, second) = both.split_at(HEADER);
        // Byte 12 is `isInit`: a header no connection has written yet is no mark.
        if first != second || first[12] != 1 {
            return None;
        }
        let mut mark = [0u8; HEADER];
        mark.copy_from_slice(first);
        Some(Mark(mark))
    }

    /// No mark where positioned reads are not available.
    #[cfg(not(unix))]
    pub fn mark(&self) -> Option<Mark> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sea_orm::ConnectionTrait;

    async fn open(path: &std::path::Path) -> DatabaseConnection {
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let db = crate::connect(&url).await.unwrap_or_else(|e| panic!("{e}"));
        crate::migrate(&db).await.unwrap_or_else(|e| panic!("{e}"));
        db
    }

    async fn write(db: &impl ConnectionTrait) {
        crate::audit::lock_head(db)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    fn mark(p: &Probe) -> Mark {
        p.mark()
            .unwrap_or_else(|| panic!("no mark of {}", p.shm.display()))
    }

    #[tokio::test]
    async fn the_mark_moves_with_every_commit_of_any_connection_and_only_then() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("w.db");
        let here = open(&path).await;
        // Another pool on the same file: another replica.
        let there = open(&path).await;
        let probe = Probe::for_db(&here).unwrap_or_else(|| panic!("no probe of a file database"));
        write(&here).await;
        let m0 = mark(&probe);
        // Reads commit nothing.
        crate::audit::head_mark(&here)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        crate::audit::head_mark(&there)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(mark(&probe), m0, "a read moved the mark");
        write(&there).await;
        let m1 = mark(&probe);
        assert_ne!(m1, m0, "another connection's commit did not move the mark");
        write(&here).await;
        let m2 = mark(&probe);
        assert_ne!(m2, m1, "this connection's commit did not move the mark");
        // The log checkpointed and truncated, then written again from its start.
        there
            .execute_unprepared("PRAGMA wal_checkpoint(TRUNCATE)")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        write(&there).await;
        let m3 = mark(&probe);
        assert!(
            m3 != m2 && m3 != m1 && m3 != m0,
            "a commit after the log restarted gave an old mark"
        );
    }

    #[tokio::test]
    async fn a_new_index_file_after_every_connection_closed_is_read_by_name() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("w.db");
        let first = open(&path).await;
        let probe = Probe::for_db(&first).unwrap_or_else(|| panic!("no probe"));
        write(&first).await;
        let before = mark(&probe);
        first.close().await.unwrap_or_else(|e| panic!("{e}"));
        assert!(
            !probe.shm.exists(),
            "SQLite kept the index file after its last connection closed"
        );
        let again = open(&path).await;
        write(&again).await;
        // The file read before is no longer linked: no mark from it, then the new file's.
        let after = probe.mark().or_else(|| probe.mark());
        assert!(
            after.is_some_and(|m| m != before),
            "the probe kept reading the index of closed connections"
        );
    }

    #[tokio::test]
    async fn no_probe_without_a_database_file() {
        let db = crate::connect("sqlite::memory:")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(Probe::for_db(&db).is_none());
    }
}
