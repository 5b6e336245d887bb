//! The pipelines' rows: recorded deployments and the freeze windows declared on systems, written
//! and read for the app crate's ci use cases. Only reads and writes: the gate's decision, who may
//! record or lift what, and the audit events are the app's.

use crate::StoreError;
use crate::entity::{deployment, freeze_window, system, user};
use crate::types::{JsonText, Text};
use changegate_api::GateReason;
use changegate_domain::gate::Verdict;
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect,
};
use std::collections::BTreeMap;

// Deployments.

/// A deployment to record.
#[derive(Debug, Clone)]
pub struct NewDeployment {
    /// Its system.
    pub system_id: i64,
    /// Its environment's name.
    pub environment: String,
    /// The commit deployed, if given.
    pub commit_id: Option<String>,
    /// The tree deployed, if given.
    pub tree_id: Option<String>,
    /// The artifact's digest, if given.
    pub digest: Option<String>,
    /// The gate's verdict.
    pub decision: Verdict,
    /// The gate's reasons.
    pub reasons: Vec<GateReason>,
    /// The change request that allowed it, if one did.
    pub change_request_id: Option<i64>,
    /// Whether it went ahead without the gate's allow.
    pub flagged: bool,
    /// Who recorded it.
    pub recorded_by: i64,
    /// When it was deployed.
    pub deployed_at: DateTime<Utc>,
    /// When it is recorded.
    pub at: DateTime<Utc>,
}

/// Records deployment `n`; returns its row.
pub async fn record_deployment(
    db: &impl ConnectionTrait,
    n: NewDeployment,
) -> Result<deployment::Model, StoreError> {
    Ok(deployment::ActiveModel {
        system_id: Set(n.system_id),
        environment: Set(n.environment),
        commit_id: Set(n.commit_id),
        tree_id: Set(n.tree_id),
        digest: Set(n.digest),
        decision: Set(Text(n.decision)),
        reasons: Set(JsonText(n.reasons)),
        change_request_id: Set(n.change_request_id),
        flagged: Set(n.flagged),
        recorded_by: Set(n.recorded_by),
        deployed_at: Set(n.deployed_at),
        recorded_at: Set(n.at),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// The `limit` latest recorded deployments (only the flagged ones with `flagged_only`), newest
/// first.
pub async fn latest_deployments(
    db: &impl ConnectionTrait,
    flagged_only: bool,
    limit: u64,
) -> Result<Vec<deployment::Model>, StoreError> {
    let mut q = deployment::Entity::find()
        .order_by_desc(deployment::Column::Id)
        .limit(limit);
    if flagged_only {
        q = q.filter(deployment::Column::Flagged.eq(true));
    }
    Ok(q.all(db).await?)
}

/// Every system, by id.
pub async fn systems_by_id(
    db: &impl ConnectionTrait,
) -> Result<BTreeMap<i64, system::Model>, StoreError> {
    Ok(system::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect())
}

/// Every account's username, by id.
pub async fn usernames(db: &impl ConnectionTrait) -> Result<BTreeMap<i64, String>, StoreError> {
    Ok(user::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|u| (u.id, u.username))
        .collect())
}

// Freeze windows.

/// A freeze window to declare: either a date range or a cron pattern with a duration.
#[derive(Debug, Clone)]
pub struct NewFreezeWindow {
    /// Its system.
    pub system_id: i64,
    /// Only this environment (`None`: all of them).
    pub environment: Option<String>,
    /// Start of a date range.
    pub starts_at: Option<DateTime<Utc>>,
    /// End of a date range.
    pub ends_at: Option<DateTime<Utc>>,
    /// A recurring window's cron pattern.
    pub cron: Option<String>,
    /// A recurring window's length.
    pub duration_minutes: Option<i32>,
    /// Why.
    pub reason: String,
    /// Who declares it.
    pub created_by: i64,
    /// When.
    pub at: DateTime<Utc>,
}

/// Declares freeze window `n`, in force; returns its row.
pub async fn create_freeze_window(
    db: &impl ConnectionTrait,
    n: NewFreezeWindow,
) -> Result<freeze_window::Model, StoreError> {
    Ok(freeze_window::ActiveModel {
        system_id: Set(n.system_id),
        environment: Set(n.environment),
        starts_at: Set(n.starts_at),
        ends_at: Set(n.ends_at),
        cron: Set(n.cron),
        duration_minutes: Set(n.duration_minutes),
        reason: Set(n.reason),
        created_by: Set(n.created_by),
        created_at: Set(n.at),
        active: Set(true),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// The freeze window `id`, if any (in force or not).
pub async fn freeze_window_by_id(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<freeze_window::Model>, StoreError> {
    Ok(freeze_window::Entity::find_by_id(id).one(db).await?)
}

/// Lifts freeze window `w` (no longer in force); returns the row as stored.
pub async fn lift_freeze_window(
    db: &impl ConnectionTrait,
    w: freeze_window::Model,
) -> Result<freeze_window::Model, StoreError> {
    let mut am: freeze_window::ActiveModel = w.into();
    am.active = Set(false);
    Ok(am.update(db).await?)
}

/// The freeze windows of system `system_id` in force, by id.
pub async fn freeze_windows_in_force(
    db: &impl ConnectionTrait,
    system_id: i64,
) -> Result<Vec<freeze_window::Model>, StoreError> {
    Ok(freeze_window::Entity::find()
        .filter(freeze_window::Column::SystemId.eq(system_id))
        .filter(freeze_window::Column::Active.eq(true))
        .order_by_asc(freeze_window::Column::Id)
        .all(db)
        .await?)
}
