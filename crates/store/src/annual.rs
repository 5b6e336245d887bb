//! The annual report's rows (Decree 331/2026/NĐ-CP, Form 08): the systems' level records and
//! re-levelling, the organisations' section-2 details, and what the report counts (concluded
//! evaluations, the owners and their systems). The report's rules and sums are the domain's and
//! the app's.

use crate::StoreError;
use crate::entity::{change_request as cr, organisation, system};
use crate::types::{JsonText, Text};
use changegate_domain::annual::{LevelRecord, OrgDetails};
use changegate_domain::gate::SystemStatus;
use changegate_domain::{CrState, OrgKind};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder,
};

/// The change requests of `system_ids` whose evaluation concluded: approved (and since expired
/// or revoked) or rejected.
pub async fn concluded_changes(
    db: &impl ConnectionTrait,
    system_ids: Vec<i64>,
) -> Result<Vec<cr::Model>, StoreError> {
    Ok(cr::Entity::find()
        .filter(cr::Column::SystemId.is_in(system_ids))
        .filter(
            cr::Column::State.is_in(
                [
                    CrState::Approved,
                    CrState::Expired,
                    CrState::Revoked,
                    CrState::Rejected,
                ]
                .map(Text),
            ),
        )
        .all(db)
        .await?)
}

/// Replaces the level record of `s` with `record`, updated at `at`.
pub async fn set_level_record(
    db: &impl ConnectionTrait,
    s: system::Model,
    record: LevelRecord,
    at: DateTime<Utc>,
) -> Result<system::Model, StoreError> {
    let mut am: system::ActiveModel = s.into();
    am.level_record = Set(Some(JsonText(record)));
    am.updated_at = Set(at);
    Ok(am.update(db).await?)
}

/// Records that `s` is re-levelled to `level`, with its level record `record` and its next
/// re-review due `next_review_due`, updated at `at`.
pub async fn record_relevel(
    db: &impl ConnectionTrait,
    s: system::Model,
    level: i16,
    record: LevelRecord,
    next_review_due: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> Result<system::Model, StoreError> {
    let mut am: system::ActiveModel = s.into();
    am.level = Set(level);
    am.level_record = Set(Some(JsonText(record)));
    am.next_review_due = Set(next_review_due);
    am.updated_at = Set(at);
    Ok(am.update(db).await?)
}

/// The organisations other than `except_code`, only organisation `only` when given, by code.
pub async fn organisations(
    db: &impl ConnectionTrait,
    except_code: &str,
    only: Option<i64>,
) -> Result<Vec<organisation::Model>, StoreError> {
    let mut q = organisation::Entity::find().filter(organisation::Column::Code.ne(except_code));
    if let Some(id) = only {
        q = q.filter(organisation::Column::Id.eq(id));
    }
    Ok(q.order_by_asc(organisation::Column::Code).all(db).await?)
}

/// Renames `o` to `name` when given and replaces its details with `details`.
pub async fn update_organisation(
    db: &impl ConnectionTrait,
    o: organisation::Model,
    name: Option<String>,
    details: OrgDetails,
) -> Result<organisation::Model, StoreError> {
    let mut am: organisation::ActiveModel = o.into();
    if let Some(n) = name {
        am.name = Set(n);
    }
    am.details = Set(Some(JsonText(details)));
    Ok(am.update(db).await?)
}

/// The owner organisations, by name.
pub async fn owner_organisations(
    db: &impl ConnectionTrait,
) -> Result<Vec<organisation::Model>, StoreError> {
    Ok(organisation::Entity::find()
        .filter(organisation::Column::Kind.eq(Text(OrgKind::Owner)))
        .order_by_asc(organisation::Column::Name)
        .all(db)
        .await?)
}

/// The systems of owner organisations `owner_ids` that are not retired, by code.
pub async fn live_systems_of(
    db: &impl ConnectionTrait,
    owner_ids: Vec<i64>,
) -> Result<Vec<system::Model>, StoreError> {
    Ok(system::Entity::find()
        .filter(system::Column::OwnerOrgId.is_in(owner_ids))
        .filter(system::Column::Status.ne(Text(SystemStatus::Retired)))
        .order_by_asc(system::Column::Code)
        .all(db)
        .await?)
}
