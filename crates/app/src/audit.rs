//! Reading and verifying the audit log; its signed checkpoints are [`checkpoints`].

pub mod checkpoints;

use crate::identity::tokens::Principal;
use crate::{App, AppError, AppResult};
use changegate_api as wire;
use changegate_domain::Role;
use changegate_domain::audit::{AuditRecord, ChainBreak, GENESIS, Verifier, chain_hash};
use changegate_store::entity::audit_event;
use changegate_store::sea_orm::DatabaseConnection;

/// The wire view of an event.
pub fn event_view(e: audit_event::Model) -> wire::AuditEvent {
    wire::AuditEvent {
        seq: e.seq,
        at: e.at,
        actor: e.actor,
        actor_id: e.actor_id,
        action: e.action,
        entity: e.entity,
        entity_id: e.entity_id,
        system_id: e.system_id,
        before: e.before,
        after: e.after,
        hash: e.hash,
    }
}

fn record(e: &wire::AuditEvent) -> AuditRecord<'_> {
    AuditRecord {
        seq: e.seq,
        at: &e.at,
        actor: &e.actor,
        actor_id: e.actor_id,
        action: &e.action,
        entity: &e.entity,
        entity_id: &e.entity_id,
        system_id: e.system_id,
        before: e.before.as_deref(),
        after: e.after.as_deref(),
    }
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// Intact, with this many events.
    Intact(i64),
    /// Broken.
    Broken(ChainBreak),
}

/// Verifies events in order against the recorded head.
pub fn verify_events<I: IntoIterator<Item = wire::AuditEvent>>(
    events: I,
    head: (i64, &str),
) -> Verified {
    let mut v = Verifier::default();
    for e in events {
        if let Err(b) = v.next(&record(&e), &e.hash) {
            return Verified::Broken(b);
        }
    }
    match v.finish(head.0, head.1) {
        Ok(n) => Verified::Intact(n),
        Err(b) => Verified::Broken(b),
    }
}

/// Events read per page by [`verify_db`].
const VERIFY_PAGE: u64 = 5000;

/// The first event of `page` that breaks the chain, given the stored hash of the event before
/// it (`prev`) and the seq expected first: a gap, or a hash that does not match its content.
///
/// Each event is checked against the stored hash of the one before it, so the checks are
/// independent of one another and the page is split across threads. The answer is the one the
/// sequential [`Verifier`] gives: while every event before the first failure passes, its stored
/// hash is the recomputed one.
async fn first_break(
    prev: String,
    expected: i64,
    page: Vec<audit_event::Model>,
) -> AppResult<Option<ChainBreak>> {
    let page = std::sync::Arc::new(page);
    let parts = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, 8);
    let len = page.len().div_ceil(parts).max(1);
    let mut tasks = vec![];
    for start in (0..page.len()).step_by(len) {
        let (page, first_prev) = (page.clone(), prev.clone());
        tasks.push(tokio::task::spawn_blocking(move || {
            let end = (start + len).min(page.len());
            for i in start..end {
                let e = &page[i];
                let want = expected + i as i64;
                if e.seq != want {
                    return Some(ChainBreak::Gap {
                        expected: want,
                        found: e.seq,
                    });
                }
                let prev = if i == 0 {
                    first_prev.as_str()
                } else {
                    page[i - 1].hash.as_str()
                };
                let record = AuditRecord {
                    seq: e.seq,
                    at: &e.at,
                    actor: &e.actor,
                    actor_id: e.actor_id,
                    action: &e.action,
                    entity: &e.entity,
                    entity_id: &e.entity_id,
                    system_id: e.system_id,
                    before: e.before.as_deref(),
                    after: e.after.as_deref(),
                };
                if chain_hash(prev, &record) != e.hash {
                    return Some(ChainBreak::HashMismatch { seq: e.seq });
                }
            }
            None
        }));
    }
    // The parts are in order: the first part with a break holds the first break.
    for t in tasks {
        if let Some(b) = t
            .await
            .map_err(|e| AppError::Internal(format!("verifying a page of the audit log: {e}")))?
        {
            return Ok(Some(b));
        }
    }
    Ok(None)
}

/// Verifies the whole log in the database, reading it in pages. A task reads the next pages
/// while the current one is checked, so reading and hashing use two cores.
pub async fn verify_db(db: &DatabaseConnection) -> AppResult<Verified> {
    let (head_seq, head_hash) = changegate_store::audit::head(db).await?;
    let (send, mut pages) = tokio::sync::mpsc::channel(2);
    let reader = {
        let db = db.clone();
        tokio::spawn(async move {
            let mut after = 0;
            loop {
                let page = changegate_store::audit::page(&db, after, VERIFY_PAGE).await;
                let last = page.as_ref().ok().and_then(|p| p.last().map(|e| e.seq));
                if send.send(page).await.is_err() {
                    break;
                }
                match last {
                    Some(last) => after = last,
                    None => break,
                }
            }
        })
    };
    let outcome = async {
        let mut prev = GENESIS.to_owned();
        let mut expected = 1;
        while let Some(page) = pages.recv().await {
            let page = page?;
            let Some(last) = page.last() else {
                break;
            };
            let next_prev = last.hash.clone();
            let n = page.len() as i64;
            if let Some(b) = first_break(prev, expected, page).await? {
                return Ok(Verified::Broken(b));
            }
            prev = next_prev;
            expected += n;
        }
        // As `Verifier::finish`: the chain must end at the recorded head.
        let last = expected - 1;
        Ok(if last < head_seq {
            Verified::Broken(ChainBreak::Truncated {
                last,
                head: head_seq,
            })
        } else if last > head_seq || (head_seq > 0 && prev != head_hash) {
            Verified::Broken(ChainBreak::HashMismatch { seq: last })
        } else {
            Verified::Intact(last)
        })
    }
    .await;
    reader.abort();
    outcome
}

impl App {
    /// A page of the audit log (reviewers, auditors, admins).
    pub async fn audit_page(
        &self,
        who: &Principal,
        after: i64,
        limit: u64,
    ) -> AppResult<wire::AuditPage> {
        who.require(
            &[Role::Reviewer, Role::Auditor, Role::Admin],
            "reading the audit log",
        )?;
        if after < 0 {
            return Err(AppError::invalid("after", "must not be negative"));
        }
        // `limit=0` asks for no event: none is what it gets.
        if limit == 0 {
            return Ok(wire::AuditPage { events: vec![] });
        }
        let events = changegate_store::audit::page(&self.db, after, limit.min(1000)).await?;
        Ok(wire::AuditPage {
            events: events.into_iter().map(event_view).collect(),
        })
    }
}
