//! The registry's rows: organisations and systems, created, read, edited, retired and listed for
//! the app crate's registry and systems use cases and its web pages. Only reads and writes:
//! codes, levels, reserved names, who may register or see what, and the audit events are the
//! app's and the domain's.

use crate::StoreError;
use crate::entity::{organisation, system};
use crate::types::{JsonText, Text};
use changegate_api::Component;
use changegate_domain::gate::SystemStatus;
use changegate_domain::{OrgKind, SecurityLevel};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder,
};
use std::collections::HashMap;

// Organisations.

/// The organisation with code `code` (exactly), if any.
pub async fn organisation_by_code(
    db: &impl ConnectionTrait,
    code: &str,
) -> Result<Option<organisation::Model>, StoreError> {
    Ok(organisation::Entity::find()
        .filter(organisation::Column::Code.eq(code))
        .one(db)
        .await?)
}

/// Sets the IP allow-list of organisation `org` (`None`: any address); returns the row as it
/// now is.
pub async fn set_allowed_ips(
    db: &impl ConnectionTrait,
    org: organisation::Model,
    allowed: Option<Vec<String>>,
) -> Result<organisation::Model, StoreError> {
    let mut am: organisation::ActiveModel = org.into();
    am.allowed_ips = Set(allowed.map(JsonText));
    Ok(am.update(db).await?)
}

/// Every organisation, by code.
pub async fn organisations(
    db: &impl ConnectionTrait,
) -> Result<Vec<organisation::Model>, StoreError> {
    Ok(organisation::Entity::find()
        .order_by_asc(organisation::Column::Code)
        .all(db)
        .await?)
}

/// The organisations of kind `kind`, by code.
pub async fn organisations_of_kind(
    db: &impl ConnectionTrait,
    kind: OrgKind,
) -> Result<Vec<organisation::Model>, StoreError> {
    Ok(organisation::Entity::find()
        .filter(organisation::Column::Kind.eq(Text(kind)))
        .order_by_asc(organisation::Column::Code)
        .all(db)
        .await?)
}

/// An organisation to create.
#[derive(Debug, Clone)]
pub struct NewOrganisation {
    /// Its code (unique).
    pub code: String,
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: OrgKind,
    /// When.
    pub at: DateTime<Utc>,
}

/// Creates organisation `n`, without an allow-list of addresses; returns its row.
pub async fn create_organisation(
    db: &impl ConnectionTrait,
    n: NewOrganisation,
) -> Result<organisation::Model, StoreError> {
    Ok(organisation::ActiveModel {
        code: Set(n.code),
        name: Set(n.name),
        kind: Set(Text(n.kind)),
        allowed_ips: Set(None),
        created_at: Set(n.at),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

// Systems.

/// The systems of organisation `owner_org`, or every system with `None`, by code.
pub async fn systems(
    db: &impl ConnectionTrait,
    owner_org: Option<i64>,
) -> Result<Vec<system::Model>, StoreError> {
    let mut q = system::Entity::find().order_by_asc(system::Column::Code);
    if let Some(o) = owner_org {
        q = q.filter(system::Column::OwnerOrgId.eq(o));
    }
    Ok(q.all(db).await?)
}

/// The systems with ids `ids` that exist, by id.
pub async fn systems_by_ids(
    db: &impl ConnectionTrait,
    ids: Vec<i64>,
) -> Result<HashMap<i64, system::Model>, StoreError> {
    Ok(system::Entity::find()
        .filter(system::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|s| (s.id, s))
        .collect())
}

/// A system to register.
#[derive(Debug, Clone)]
pub struct NewSystem {
    /// Its code (unique).
    pub code: String,
    /// Its name.
    pub name: String,
    /// Its owner organisation.
    pub owner_org_id: i64,
    /// Its operating unit.
    pub operating_unit: String,
    /// Its security level.
    pub level: SecurityLevel,
    /// Whether it is connected to the National Population Database.
    pub population_db: bool,
    /// Its environments' names.
    pub environments: Vec<String>,
    /// Its inventory components.
    pub components: Vec<Component>,
    /// When it was last evaluated, if recorded.
    pub last_evaluated_on: Option<NaiveDate>,
    /// When its periodic re-review falls due.
    pub next_review_due: Option<DateTime<Utc>>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Registers system `n`, active; returns its row.
pub async fn create_system(
    db: &impl ConnectionTrait,
    n: NewSystem,
) -> Result<system::Model, StoreError> {
    Ok(system::ActiveModel {
        code: Set(n.code),
        name: Set(n.name),
        owner_org_id: Set(n.owner_org_id),
        operating_unit: Set(n.operating_unit),
        level: Set(i16::from(n.level.get())),
        population_db: Set(n.population_db),
        environments: Set(JsonText(n.environments)),
        components: Set(JsonText(n.components)),
        status: Set(Text(SystemStatus::Active)),
        last_evaluated_on: Set(n.last_evaluated_on),
        next_review_due: Set(n.next_review_due),
        created_at: Set(n.at),
        updated_at: Set(n.at),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// What an edit of a system changes (`None`: left as it is).
#[derive(Debug, Clone, Default)]
pub struct SystemEdit {
    /// A new name.
    pub name: Option<String>,
    /// A new operating unit.
    pub operating_unit: Option<String>,
    /// New environments' names.
    pub environments: Option<Vec<String>>,
    /// A new population-database flag.
    pub population_db: Option<bool>,
}

/// Writes edit `e` of system `s` at `at`; returns the row as it now is.
pub async fn edit_system(
    db: &impl ConnectionTrait,
    s: &system::Model,
    e: SystemEdit,
    at: DateTime<Utc>,
) -> Result<system::Model, StoreError> {
    let mut am: system::ActiveModel = s.clone().into();
    if let Some(n) = e.name {
        am.name = Set(n);
    }
    if let Some(u) = e.operating_unit {
        am.operating_unit = Set(u);
    }
    if let Some(envs) = e.environments {
        am.environments = Set(JsonText(envs));
    }
    if let Some(p) = e.population_db {
        am.population_db = Set(p);
    }
    am.updated_at = Set(at);
    Ok(am.update(db).await?)
}

/// Gives system `s` status `status` at `at`; returns the row as it now is.
pub async fn set_system_status(
    db: &impl ConnectionTrait,
    s: system::Model,
    status: SystemStatus,
    at: DateTime<Utc>,
) -> Result<system::Model, StoreError> {
    let mut am: system::ActiveModel = s.into();
    am.status = Set(Text(status));
    am.updated_at = Set(at);
    Ok(am.update(db).await?)
}

/// Records a passing evaluation of system `s` on `on`, its next re-review due `next_review_due`,
/// at `at`; a system not retired becomes active. Returns the row as it now is.
pub async fn record_evaluation(
    db: &impl ConnectionTrait,
    s: &system::Model,
    on: NaiveDate,
    next_review_due: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Result<system::Model, StoreError> {
    let mut am: system::ActiveModel = s.clone().into();
    am.last_evaluated_on = Set(Some(on));
    am.next_review_due = Set(next_review_due);
    if *s.status != SystemStatus::Retired {
        am.status = Set(Text(SystemStatus::Active));
    }
    am.updated_at = Set(at);
    Ok(am.update(db).await?)
}

/// Which systems [`systems_page`] lists (every condition given must hold).
#[derive(Debug, Clone, Default)]
pub struct SystemFilter {
    /// Only systems of the organisation the reader is confined to.
    pub visible_to_org: Option<i64>,
    /// Only systems of this owner organisation.
    pub owner_org: Option<i64>,
    /// Only systems of this security level.
    pub level: Option<SecurityLevel>,
    /// Only systems with this status.
    pub status: Option<SystemStatus>,
    /// Only systems whose re-review falls due before this time.
    pub review_due_before: Option<DateTime<Utc>>,
}

/// A page of systems.
#[derive(Debug, Clone)]
pub struct SystemPage {
    /// The systems of the page, by code.
    pub items: Vec<system::Model>,
    /// How many systems match, on every page.
    pub total: u64,
}

/// Page `page` (from 1) of `per_page` systems matching `f`, by code.
pub async fn systems_page(
    db: &impl ConnectionTrait,
    f: &SystemFilter,
    page: u64,
    per_page: u64,
) -> Result<SystemPage, StoreError> {
    let mut q = system::Entity::find();
    if let Some(o) = f.visible_to_org {
        q = q.filter(system::Column::OwnerOrgId.eq(o));
    }
    if let Some(o) = f.owner_org {
        q = q.filter(system::Column::OwnerOrgId.eq(o));
    }
    if let Some(l) = f.level {
        q = q.filter(system::Column::Level.eq(i16::from(l.get())));
    }
    if let Some(st) = f.status {
        q = q.filter(system::Column::Status.eq(Text(st)));
    }
    if let Some(at) = f.review_due_before {
        q = q.filter(system::Column::NextReviewDue.lt(at));
    }
    let q = q.order_by_asc(system::Column::Code);
    let total = q.clone().count(db).await?;
    let items = q
        .paginate(db, per_page)
        .fetch_page(page.saturating_sub(1))
        .await?;
    Ok(SystemPage { items, total })
}
