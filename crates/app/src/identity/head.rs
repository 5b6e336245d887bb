//! A fresh read of the audit log's head, shared by the requests that wait for it at once.
//!
//! Every write transaction moves the head row first ([`changegate_store::audit::lock_head`]), so
//! a head that has not moved since a token was last checked means nothing was written since:
//! no revocation, deactivation or role change, on this replica or on any other. A request asks
//! for a read that *started after it arrived* (so it sees every write committed before the
//! request was sent); requests that arrive while such a read is in flight share it, and those
//! that arrived during an older read start the next one together. Under load that is one small
//! read per batch of requests instead of one row read per request, with the same guarantee.
//!
//! On SQLite the batch read is skipped altogether while nothing is committed: each read of the
//! head remembers the WAL index's mark taken just before it ([`changegate_store::wal`]); a
//! request that finds the mark unchanged since then knows no transaction committed (here or on
//! another replica of the host) after that read began, so its answer is the head now. A mark
//! that moved, or none (PostgreSQL), asks the database as above.

use crate::{AppError, AppResult};
use changegate_store::sea_orm::{ConnectionTrait, DatabaseConnection};
use changegate_store::wal::{Mark, Probe};
use std::sync::Mutex;
use tokio::sync::watch;

/// Where the head stood: its sequence number and its write counter.
pub type Head = (i64, i64);

#[derive(Clone)]
struct Done {
    /// The read this answer came from (0: none yet).
    id: u64,
    /// Its answer (None: a leader gave up before it had one).
    head: Option<Result<Head, String>>,
}

struct Flight {
    /// The id the next read to start will get.
    next: u64,
    /// Whether a read is in flight.
    in_flight: bool,
}

/// Shares fresh reads of the head among concurrent requests.
pub struct HeadReads {
    flight: Mutex<Flight>,
    done: watch::Sender<Done>,
    /// The database's WAL index (SQLite on disk), read instead of the database while nothing
    /// is committed.
    probe: Option<Probe>,
    /// The last head read and the mark taken just before that read began.
    known: Mutex<Option<(Mark, Head)>>,
}

impl Default for HeadReads {
    fn default() -> Self {
        Self {
            flight: Mutex::new(Flight {
                next: 1,
                in_flight: false,
            }),
            done: watch::Sender::new(Done { id: 0, head: None }),
            probe: None,
            known: Mutex::new(None),
        }
    }
}

/// Ends a read's flight even when the request that led it is dropped mid-read: the waiters
/// then start another one.
struct Landing<'a> {
    reads: &'a HeadReads,
    id: u64,
    head: Option<Result<Head, String>>,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        if let Ok(mut f) = self.reads.flight.lock() {
            f.in_flight = false;
        }
        let (id, head) = (self.id, self.head.take());
        self.reads.done.send_modify(|d| {
            if head.is_some() {
                *d = Done { id, head };
            }
        });
    }
}

impl HeadReads {
    /// Shared reads of `db`'s head that skip the database while its WAL index shows no commit.
    pub fn watching(db: &DatabaseConnection) -> Self {
        Self {
            probe: Probe::for_db(db),
            ..Self::default()
        }
    }

    /// Reads of the database started so far.
    #[cfg(test)]
    fn reads_made(&self) -> u64 {
        self.lock().map_or(0, |f| f.next - 1)
    }

    /// The head as read by a read that started after this call began (or, on SQLite, the last
    /// head read when the WAL index shows that nothing was committed since that read began).
    pub async fn fresh(&self, db: &impl ConnectionTrait) -> AppResult<Head> {
        // The mark now: unchanged since the last read began, that read's head is the head now;
        // else, taken before any read this request leads, it goes with that read's answer.
        let mut seen = self.probe.as_ref().and_then(Probe::mark);
        if let Some(now) = seen
            && let Some((mark, head)) = *self.known_lock()?
            && mark == now
        {
            return Ok(head);
        }
        let need = self.lock()?.next;
        let mut rx = self.done.subscribe();
        loop {
            {
                let d = rx.borrow_and_update();
                if d.id >= need
                    && let Some(head) = &d.head
                {
                    return head.clone().map_err(AppError::Internal);
                }
            }
            let lead = {
                let mut f = self.lock()?;
                (!f.in_flight).then(|| {
                    f.in_flight = true;
                    f.next += 1;
                    f.next - 1
                })
            };
            let Some(id) = lead else {
                // A read is in flight: wait for it (and, if it started before this request,
                // for the chance to start the next one).
                rx.changed()
                    .await
                    .map_err(|e| AppError::Internal(e.to_string()))?;
                // A mark this old would still be true of a later read, but would make the next
                // question read again: a leader after a wait takes its own.
                seen = None;
                continue;
            };
            let mut landing = Landing {
                reads: self,
                id,
                head: None,
            };
            // The mark before the read: whatever committed before it is in what the read sees.
            let mark = seen.or_else(|| self.probe.as_ref().and_then(Probe::mark));
            let head = read(db).await;
            if let Ok(h) = &head {
                *self.known_lock()? = mark.map(|m| (m, *h));
            }
            landing.head = Some(head.clone());
            drop(landing);
            return head.map_err(AppError::Internal);
        }
    }

    fn lock(&self) -> AppResult<std::sync::MutexGuard<'_, Flight>> {
        self.flight
            .lock()
            .map_err(|_| AppError::Internal("the head reads' lock is poisoned".into()))
    }

    fn known_lock(&self) -> AppResult<std::sync::MutexGuard<'_, Option<(Mark, Head)>>> {
        self.known
            .lock()
            .map_err(|_| AppError::Internal("the head reads' lock is poisoned".into()))
    }
}

async fn read(db: &impl ConnectionTrait) -> Result<Head, String> {
    changegate_store::audit::head_mark(db)
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    async fn db() -> (
        changegate_store::sea_orm::DatabaseConnection,
        tempfile::TempDir,
    ) {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("h.db").display());
        let db = changegate_store::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        changegate_store::migrate(&db)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        (db, dir)
    }

    async fn write(db: &impl ConnectionTrait) {
        changegate_store::audit::lock_head(db)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    #[tokio::test]
    async fn a_read_sees_every_write_committed_before_it_was_asked_for() {
        let (db, _dir) = db().await;
        let reads = HeadReads::default();
        let first = reads.fresh(&db).await.unwrap_or_else(|e| panic!("{e}"));
        write(&db).await;
        let second = reads.fresh(&db).await.unwrap_or_else(|e| panic!("{e}"));
        assert_ne!(first, second, "a write before the question was not seen");
        assert_eq!(second.1, first.1 + 1);
        assert_eq!(
            reads.fresh(&db).await.unwrap_or_else(|e| panic!("{e}")),
            second
        );
    }

    #[tokio::test]
    async fn concurrent_questions_share_reads_and_each_sees_the_writes_before_it() {
        let (db, _dir) = db().await;
        let reads = Arc::new(HeadReads::default());
        let mut tasks = vec![];
        for i in 0..200u32 {
            let (db, reads) = (db.clone(), reads.clone());
            tasks.push(tokio::spawn(async move {
                if i % 20 == 0 {
                    write(&db).await;
                }
                // What was committed before asking must be seen.
                let before = read(&db).await.map(|h| h.1).unwrap_or(i64::MAX);
                let seen = reads.fresh(&db).await.unwrap_or_else(|e| panic!("{e}"));
                assert!(
                    seen.1 >= before,
                    "saw {} after {before} was written",
                    seen.1
                );
            }));
        }
        for t in tasks {
            t.await.unwrap_or_else(|e| panic!("{e}"));
        }
        let reads_made = reads.lock().map(|f| f.next - 1).unwrap_or(0);
        assert!(
            reads_made < 200,
            "{reads_made} reads for 200 questions: none were shared"
        );
    }

    #[tokio::test]
    async fn while_nothing_is_committed_no_question_reads_the_database_and_a_commit_anywhere_is_seen()
     {
        let (db, dir) = db().await;
        // Another pool on the same file: another replica.
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("h.db").display());
        let other = changegate_store::connect(&url)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let reads = HeadReads::watching(&db);
        let first = reads.fresh(&db).await.unwrap_or_else(|e| panic!("{e}"));
        for _ in 0..100 {
            assert_eq!(
                reads.fresh(&db).await.unwrap_or_else(|e| panic!("{e}")),
                first
            );
        }
        assert_eq!(
            reads.reads_made(),
            1,
            "questions read the database though nothing was committed"
        );
        for (i, by) in [&other, &db, &other].into_iter().enumerate() {
            write(by).await;
            let seen = reads.fresh(&db).await.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(seen.1, first.1 + 1 + i as i64, "commit {i} was not seen");
            assert_eq!(
                reads.fresh(&db).await.unwrap_or_else(|e| panic!("{e}")),
                seen
            );
        }
        assert_eq!(reads.reads_made(), 4, "one read per commit seen");
    }

    #[tokio::test]
    async fn a_leader_dropped_mid_read_does_not_strand_the_others() {
        let (db, _dir) = db().await;
        let reads = Arc::new(HeadReads::default());
        {
            // Lead a read and give up at once.
            let fut = reads.fresh(&db);
            let _ = tokio::time::timeout(std::time::Duration::from_nanos(1), fut).await;
        }
        let head = tokio::time::timeout(std::time::Duration::from_secs(5), reads.fresh(&db))
            .await
            .unwrap_or_else(|_| panic!("a dropped leader stranded the next question"));
        assert!(head.is_ok());
    }
}
