//! Reading and verifying the audit log.

use crate::auth::Principal;
use crate::{App, AppError, AppResult};
use changegate_api as wire;
use changegate_domain::Role;
use changegate_domain::audit::{AuditRecord, ChainBreak, Verifier};
use changegate_store::entity::audit_event;
use changegate_store::sea_orm::ConnectionTrait;

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

/// Verifies the whole log in the database, reading it in pages.
pub async fn verify_db(db: &impl ConnectionTrait) -> AppResult<Verified> {
    let (head_seq, head_hash) = changegate_store::audit::head(db).await?;
    let mut v = Verifier::default();
    let mut after = 0;
    loop {
        let page = changegate_store::audit::page(db, after, 5000).await?;
        let Some(last) = page.last().map(|e| e.seq) else {
            break;
        };
        for e in page {
            let e = event_view(e);
            if let Err(b) = v.next(&record(&e), &e.hash) {
                return Ok(Verified::Broken(b));
            }
        }
        after = last;
    }
    Ok(match v.finish(head_seq, &head_hash) {
        Ok(n) => Verified::Intact(n),
        Err(b) => Verified::Broken(b),
    })
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
        let events = changegate_store::audit::page(&self.db, after, limit.clamp(1, 1000)).await?;
        Ok(wire::AuditPage {
            events: events.into_iter().map(event_view).collect(),
        })
    }
}
