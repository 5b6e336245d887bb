//! Appending to and reading the hash-chained audit log (its head, its pages, the events about an
//! entity or a system, the audit search's filtered pages), and storing and reading its signed
//! checkpoints (what is signed, when, and whether a checkpoint vouches for the log is the app's).
//!
//! Every write transaction first takes the chain's head row ([`lock_head`]): on PostgreSQL that
//! row lock serialises writers across replicas; on SQLite the first write takes the database's
//! write lock. The event is then appended in the same transaction as the change it records.

use crate::StoreError;
use crate::entity::{audit_checkpoint, audit_event, audit_head};
use crate::search::like_escape;
use changegate_domain::audit::{AuditRecord, chain_hash};
use chrono::NaiveDate;
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, OnConflict};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};

/// Takes the head row for the rest of the transaction. Call first in every write transaction.
pub async fn lock_head(db: &impl ConnectionTrait) -> Result<(), StoreError> {
    audit_head::Entity::update_many()
        .col_expr(
            audit_head::Column::Touched,
            Expr::col(audit_head::Column::Touched).add(1),
        )
        .filter(audit_head::Column::Id.eq(1))
        .exec(db)
        .await?;
    Ok(())
}

/// One event to append.
#[derive(Debug, Clone)]
pub struct NewEvent {
    /// Username, or `system`.
    pub actor: String,
    /// User id, if a person.
    pub actor_id: Option<i64>,
    /// `change_request.submit`, …
    pub action: String,
    /// `change_request`, …
    pub entity: String,
    /// Id or code.
    pub entity_id: String,
    /// The system the event concerns, if any (the gate refreshes it).
    pub system_id: Option<i64>,
    /// JSON before.
    pub before: Option<String>,
    /// JSON after.
    pub after: Option<String>,
}

/// Appends an event after the current head and moves the head. Returns its seq.
pub async fn append(
    db: &impl ConnectionTrait,
    ev: NewEvent,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<i64, StoreError> {
    append_many(db, vec![ev], at).await
}

/// Rows per multi-row insert of [`append_many`] (11 columns: well under SQLite's 32,766
/// variables).
const INSERT_BATCH: usize = 1000;

/// Appends `events`, in order, after the current head, all at `at`: hashed in memory, inserted in
/// multi-row statements, and the head moved once. Returns the seq of the last event (the head;
/// the current head when `events` is empty).
pub async fn append_many(
    db: &impl ConnectionTrait,
    events: Vec<NewEvent>,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<i64, StoreError> {
    let (mut seq, mut prev) = head(db).await?;
    if events.is_empty() {
        return Ok(seq);
    }
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut rows = Vec::with_capacity(events.len());
    for ev in events {
        seq += 1;
        let hash = chain_hash(
            &prev,
            &AuditRecord {
                seq,
                at: &at,
                actor: &ev.actor,
                actor_id: ev.actor_id,
                action: &ev.action,
                entity: &ev.entity,
                entity_id: &ev.entity_id,
                system_id: ev.system_id,
                before: ev.before.as_deref(),
                after: ev.after.as_deref(),
            },
        );
        prev.clone_from(&hash);
        rows.push(audit_event::ActiveModel {
            seq: Set(seq),
            at: Set(at.clone()),
            actor: Set(ev.actor),
            actor_id: Set(ev.actor_id),
            action: Set(ev.action),
            entity: Set(ev.entity),
            entity_id: Set(ev.entity_id),
            system_id: Set(ev.system_id),
            before: Set(ev.before),
            after: Set(ev.after),
            hash: Set(hash),
        });
    }
    while !rows.is_empty() {
        let rest = rows.split_off(INSERT_BATCH.min(rows.len()));
        audit_event::Entity::insert_many(rows)
            .exec_without_returning(db)
            .await?;
        rows = rest;
    }
    audit_head::Entity::update_many()
        .col_expr(audit_head::Column::Seq, Expr::value(seq))
        .col_expr(audit_head::Column::Hash, Expr::value(prev))
        .filter(audit_head::Column::Id.eq(1))
        .exec(db)
        .await?;
    Ok(seq)
}

/// The recorded head: last seq and hash.
pub async fn head(db: &impl ConnectionTrait) -> Result<(i64, String), StoreError> {
    let h = head_row(db).await?;
    Ok((h.seq, h.hash))
}

/// Where the head stands: its last seq and its write counter (every write transaction moves the
/// counter, [`lock_head`]), so that an unchanged pair means nothing was written in between.
pub async fn head_mark(db: &impl ConnectionTrait) -> Result<(i64, i64), StoreError> {
    let h = head_row(db).await?;
    Ok((h.seq, h.touched))
}

async fn head_row(db: &impl ConnectionTrait) -> Result<audit_head::Model, StoreError> {
    audit_head::Entity::find_by_id(1)
        .one(db)
        .await?
        .ok_or(StoreError::Corrupt {
            what: "audit head",
            detail: "missing".into(),
        })
}

/// A page of events after `after_seq`, in order.
pub async fn page(
    db: &impl ConnectionTrait,
    after_seq: i64,
    limit: u64,
) -> Result<Vec<audit_event::Model>, StoreError> {
    Ok(audit_event::Entity::find()
        .filter(audit_event::Column::Seq.gt(after_seq))
        .order_by_asc(audit_event::Column::Seq)
        .limit(limit)
        .all(db)
        .await?)
}

/// The events that record changes after `after_seq`: (seq, entity, entity_id, system_id).
pub async fn changes_since(
    db: &impl ConnectionTrait,
    after_seq: i64,
    limit: u64,
) -> Result<Vec<(i64, String, String, Option<i64>)>, StoreError> {
    Ok(audit_event::Entity::find()
        .select_only()
        .columns([
            audit_event::Column::Seq,
            audit_event::Column::Entity,
            audit_event::Column::EntityId,
            audit_event::Column::SystemId,
        ])
        .filter(audit_event::Column::Seq.gt(after_seq))
        .order_by_asc(audit_event::Column::Seq)
        .limit(limit)
        .into_tuple()
        .all(db)
        .await?)
}

/// The latest event with action `action` about entity `entity` `entity_id`, if any.
pub async fn latest_about(
    db: &impl ConnectionTrait,
    entity: &str,
    entity_id: &str,
    action: &str,
) -> Result<Option<audit_event::Model>, StoreError> {
    Ok(audit_event::Entity::find()
        .filter(audit_event::Column::Entity.eq(entity))
        .filter(audit_event::Column::EntityId.eq(entity_id))
        .filter(audit_event::Column::Action.eq(action))
        .order_by_desc(audit_event::Column::Seq)
        .one(db)
        .await?)
}

/// The events about entity `entity` `entity_id`, in order.
pub async fn about(
    db: &impl ConnectionTrait,
    entity: &str,
    entity_id: &str,
) -> Result<Vec<audit_event::Model>, StoreError> {
    Ok(audit_event::Entity::find()
        .filter(audit_event::Column::Entity.eq(entity))
        .filter(audit_event::Column::EntityId.eq(entity_id))
        .order_by_asc(audit_event::Column::Seq)
        .all(db)
        .await?)
}

/// The events with action `action` about any of the entities `entity` `entity_ids`, in order.
pub async fn about_any(
    db: &impl ConnectionTrait,
    entity: &str,
    entity_ids: Vec<String>,
    action: &str,
) -> Result<Vec<audit_event::Model>, StoreError> {
    Ok(audit_event::Entity::find()
        .filter(audit_event::Column::Entity.eq(entity))
        .filter(audit_event::Column::EntityId.is_in(entity_ids))
        .filter(audit_event::Column::Action.eq(action))
        .order_by_asc(audit_event::Column::Seq)
        .all(db)
        .await?)
}

/// The latest `limit` events concerning system `system_id`, newest first.
pub async fn latest_of_system(
    db: &impl ConnectionTrait,
    system_id: i64,
    limit: u64,
) -> Result<Vec<audit_event::Model>, StoreError> {
    Ok(audit_event::Entity::find()
        .filter(audit_event::Column::SystemId.eq(system_id))
        .order_by_desc(audit_event::Column::Seq)
        .limit(limit)
        .all(db)
        .await?)
}

/// Which events [`search`] lists (every condition given must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery<'a> {
    /// Only events of this actor, exactly.
    pub actor: Option<&'a str>,
    /// Only events with this action, exactly, or an action under it (`change_request` matches
    /// `change_request.submit`).
    pub action: Option<&'a str>,
    /// Only events concerning this system.
    pub system_id: Option<i64>,
    /// Only events on or after this day (UTC).
    pub from: Option<NaiveDate>,
    /// Only events before this day (UTC).
    pub before: Option<NaiveDate>,
}

/// The events matching `q`, newest first: `limit` of them after skipping `offset`.
pub async fn search(
    db: &impl ConnectionTrait,
    q: &AuditQuery<'_>,
    offset: u64,
    limit: u64,
) -> Result<Vec<audit_event::Model>, StoreError> {
    let mut find = audit_event::Entity::find().order_by_desc(audit_event::Column::Seq);
    if let Some(a) = q.actor {
        find = find.filter(audit_event::Column::Actor.eq(a));
    }
    if let Some(a) = q.action {
        find = find.filter(
            Condition::any().add(audit_event::Column::Action.eq(a)).add(
                audit_event::Column::Action
                    .like(LikeExpr::new(format!("{}.%", like_escape(a))).escape('\\')),
            ),
        );
    }
    if let Some(id) = q.system_id {
        find = find.filter(audit_event::Column::SystemId.eq(id));
    }
    // `at` is RFC 3339 text, so a day compares as its text.
    if let Some(d) = q.from {
        find = find.filter(audit_event::Column::At.gte(d.format("%Y-%m-%d").to_string()));
    }
    if let Some(d) = q.before {
        find = find.filter(audit_event::Column::At.lt(d.format("%Y-%m-%d").to_string()));
    }
    Ok(find.offset(offset).limit(limit).all(db).await?)
}

/// The chain hash of event `seq`, if the log holds that event.
pub async fn event_hash(db: &impl ConnectionTrait, seq: i64) -> Result<Option<String>, StoreError> {
    Ok(audit_event::Entity::find()
        .select_only()
        .column(audit_event::Column::Hash)
        .filter(audit_event::Column::Seq.eq(seq))
        .into_tuple()
        .one(db)
        .await?)
}

/// The seq of the last event the log holds (not the head row's: the events'), if any.
pub async fn last_event_seq(db: &impl ConnectionTrait) -> Result<Option<i64>, StoreError> {
    Ok(audit_event::Entity::find()
        .select_only()
        .column(audit_event::Column::Seq)
        .order_by_desc(audit_event::Column::Seq)
        .into_tuple()
        .one(db)
        .await?)
}

// Checkpoints.

/// A signed checkpoint to store.
#[derive(Debug, Clone)]
pub struct NewCheckpoint {
    /// The last event it vouches for.
    pub seq: i64,
    /// That event's chain hash.
    pub hash: String,
    /// When it was signed (RFC 3339, microseconds, UTC).
    pub signed_at: String,
    /// The signing key.
    pub keyid: String,
    /// Base64 of the signature.
    pub sig: String,
}

/// Stores checkpoint `n`; a checkpoint of the same event already there is kept (nothing
/// written).
pub async fn record_checkpoint(
    db: &impl ConnectionTrait,
    n: NewCheckpoint,
) -> Result<(), StoreError> {
    audit_checkpoint::Entity::insert(audit_checkpoint::ActiveModel {
        seq: Set(n.seq),
        hash: Set(n.hash),
        signed_at: Set(n.signed_at),
        keyid: Set(n.keyid),
        sig: Set(n.sig),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(audit_checkpoint::Column::Seq)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The checkpoint of event `seq`, if any.
pub async fn checkpoint_at(
    db: &impl ConnectionTrait,
    seq: i64,
) -> Result<Option<audit_checkpoint::Model>, StoreError> {
    Ok(audit_checkpoint::Entity::find()
        .filter(audit_checkpoint::Column::Seq.eq(seq))
        .one(db)
        .await?)
}

/// The checkpoint of the highest seq signed with key `keyid`, if any.
pub async fn latest_checkpoint_by(
    db: &impl ConnectionTrait,
    keyid: &str,
) -> Result<Option<audit_checkpoint::Model>, StoreError> {
    Ok(audit_checkpoint::Entity::find()
        .filter(audit_checkpoint::Column::Keyid.eq(keyid))
        .order_by_desc(audit_checkpoint::Column::Seq)
        .one(db)
        .await?)
}

/// Every checkpoint, by seq.
pub async fn checkpoints(
    db: &impl ConnectionTrait,
) -> Result<Vec<audit_checkpoint::Model>, StoreError> {
    Ok(audit_checkpoint::Entity::find()
        .order_by_asc(audit_checkpoint::Column::Seq)
        .all(db)
        .await?)
}

/// Up to `limit` checkpoints of events below `before`, the highest seq first.
pub async fn checkpoints_before(
    db: &impl ConnectionTrait,
    before: i64,
    limit: u64,
) -> Result<Vec<audit_checkpoint::Model>, StoreError> {
    Ok(audit_checkpoint::Entity::find()
        .filter(audit_checkpoint::Column::Seq.lt(before))
        .order_by_desc(audit_checkpoint::Column::Seq)
        .limit(limit)
        .all(db)
        .await?)
}
