//! The notification outbox: registered webhooks and their deliveries, queued in a use case's
//! transaction, leased by a dispatcher (one replica at a time) and finished. What is sent, when
//! it is retried and when it is given up are the app's questions.

use crate::StoreError;
use crate::entity::{delivery, webhook};
use crate::types::{JsonText, Text};
use changegate_domain::notify::DeliveryStatus;
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

// Webhooks.

/// An active webhook and the event types it subscribes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// The webhook.
    pub webhook_id: i64,
    /// Its event types (`*`: every one).
    pub events: Vec<String>,
}

/// The active webhooks' subscriptions. A webhook whose stored list does not parse (a row edited
/// by hand) is left out rather than failing the write that queues deliveries.
pub async fn subscriptions(db: &impl ConnectionTrait) -> Result<Vec<Subscription>, StoreError> {
    let rows: Vec<(i64, String)> = webhook::Entity::find()
        .select_only()
        .column(webhook::Column::Id)
        .column(webhook::Column::Events)
        .filter(webhook::Column::Active.eq(true))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|(webhook_id, text)| {
            serde_json::from_str(&text)
                .ok()
                .map(|events| Subscription { webhook_id, events })
        })
        .collect())
}

/// Every registered webhook, in the order they were registered.
pub async fn webhooks(db: &impl ConnectionTrait) -> Result<Vec<webhook::Model>, StoreError> {
    Ok(webhook::Entity::find()
        .order_by_asc(webhook::Column::Id)
        .all(db)
        .await?)
}

/// The webhook `id`, if it exists.
pub async fn webhook(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<webhook::Model>, StoreError> {
    Ok(webhook::Entity::find_by_id(id).one(db).await?)
}

/// A webhook to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWebhook {
    /// Where deliveries go.
    pub url: String,
    /// Its Standard Webhooks secret (`whsec_…`).
    pub secret: String,
    /// The event types it subscribes to.
    pub events: Vec<String>,
    /// Who registers it.
    pub created_by: i64,
    /// When.
    pub at: DateTime<Utc>,
}

/// Registers webhook `n`, active; returns its row.
pub async fn create_webhook(
    db: &impl ConnectionTrait,
    n: NewWebhook,
) -> Result<webhook::Model, StoreError> {
    Ok(webhook::ActiveModel {
        url: Set(n.url),
        secret: Set(n.secret),
        events: Set(JsonText(n.events)),
        active: Set(true),
        created_by: Set(n.created_by),
        created_at: Set(n.at),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

// Deliveries.

/// A delivery to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The webhook it goes to.
    pub webhook_id: i64,
    /// Its `webhook-id`, the same on every retry.
    pub msg_id: String,
    /// Its event type.
    pub event: String,
    /// Its body.
    pub payload: String,
    /// When it is queued (and first due).
    pub at: DateTime<Utc>,
}

/// Queues `rows` as pending deliveries, due at once, in one statement (the caller keeps it under
/// the backend's limit of bound values).
pub async fn queue_deliveries(
    db: &impl ConnectionTrait,
    rows: Vec<NewDelivery>,
) -> Result<(), StoreError> {
    let rows = rows.into_iter().map(|n| delivery::ActiveModel {
        webhook_id: Set(n.webhook_id),
        msg_id: Set(n.msg_id),
        event: Set(n.event),
        payload: Set(n.payload),
        status: Set(Text(DeliveryStatus::Pending)),
        attempts: Set(0),
        next_attempt_at: Set(n.at),
        locked_until: Set(None),
        last_error: Set(None),
        created_at: Set(n.at),
        delivered_at: Set(None),
        ..Default::default()
    });
    delivery::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// The newest `limit` deliveries, newest first, only those in `status` when given.
pub async fn recent_deliveries(
    db: &impl ConnectionTrait,
    status: Option<DeliveryStatus>,
    limit: u64,
) -> Result<Vec<delivery::Model>, StoreError> {
    let mut q = delivery::Entity::find()
        .order_by_desc(delivery::Column::Id)
        .limit(limit);
    if let Some(s) = status {
        q = q.filter(delivery::Column::Status.eq(Text(s)));
    }
    Ok(q.all(db).await?)
}

/// Not leased at `now`: no lease, or one that ran out.
fn unleased(now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(delivery::Column::LockedUntil.is_null())
        .add(delivery::Column::LockedUntil.lt(now))
}

/// Up to `limit` pending deliveries due at `now` and not leased, except those to
/// `skip_webhooks`, the longest due first.
pub async fn due_deliveries(
    db: &impl ConnectionTrait,
    now: DateTime<Utc>,
    skip_webhooks: Vec<i64>,
    limit: u64,
) -> Result<Vec<delivery::Model>, StoreError> {
    Ok(delivery::Entity::find()
        .filter(delivery::Column::Status.eq(Text(DeliveryStatus::Pending)))
        .filter(delivery::Column::WebhookId.is_not_in(skip_webhooks))
        .filter(delivery::Column::NextAttemptAt.lte(now))
        .filter(unleased(now))
        .order_by_asc(delivery::Column::NextAttemptAt)
        .limit(limit)
        .all(db)
        .await?)
}

/// Leases delivery `id` until `until` if it is not leased at `now`: true when this call took
/// it (a conditional update, so one replica wins).
pub async fn lease_delivery(
    db: &impl ConnectionTrait,
    id: i64,
    now: DateTime<Utc>,
    until: DateTime<Utc>,
) -> Result<bool, StoreError> {
    Ok(delivery::Entity::update_many()
        .col_expr(delivery::Column::LockedUntil, Expr::value(Some(until)))
        .filter(delivery::Column::Id.eq(id))
        .filter(unleased(now))
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

/// Keeps delivery `id` as failed with `error`, its lease released, without another attempt.
pub async fn give_up_delivery(
    db: &impl ConnectionTrait,
    id: i64,
    error: &str,
) -> Result<(), StoreError> {
    delivery::Entity::update_many()
        .col_expr(
            delivery::Column::Status,
            Expr::value(Text(DeliveryStatus::Failed)),
        )
        .col_expr(delivery::Column::LastError, Expr::value(Some(error)))
        .col_expr(
            delivery::Column::LockedUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .filter(delivery::Column::Id.eq(id))
        .exec(db)
        .await?;
    Ok(())
}

/// How an attempt at a delivery ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Delivered at this time.
    Delivered(DateTime<Utc>),
    /// Failed: retried at `next_attempt_at`, unless `give_up` keeps it as failed.
    Failed {
        /// Why.
        error: String,
        /// When it is tried again.
        next_attempt_at: DateTime<Utc>,
        /// Whether it is kept as failed now.
        give_up: bool,
    },
}

/// Records attempt `attempt` at delivery `id`, its `attempts`-th, and releases its lease.
pub async fn record_attempt(
    db: &impl ConnectionTrait,
    id: i64,
    attempts: i32,
    attempt: Attempt,
) -> Result<(), StoreError> {
    let mut am = delivery::ActiveModel {
        id: Set(id),
        locked_until: Set(None),
        ..Default::default()
    };
    match attempt {
        Attempt::Delivered(at) => {
            am.status = Set(Text(DeliveryStatus::Delivered));
            am.delivered_at = Set(Some(at));
            am.attempts = Set(attempts);
        }
        Attempt::Failed {
            error,
            next_attempt_at,
            give_up,
        } => {
            am.attempts = Set(attempts);
            am.last_error = Set(Some(error));
            am.next_attempt_at = Set(next_attempt_at);
            if give_up {
                am.status = Set(Text(DeliveryStatus::Failed));
            }
        }
    }
    am.update(db).await?;
    Ok(())
}
