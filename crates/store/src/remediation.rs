//! The remediation loop's rows: findings and conditions raised on a change request, the steps
//! that fulfil and verify them, their history in the audit log, the list and its counts. Who may
//! see or move an item, and what its next state is, are the app's and the domain's questions.

use crate::StoreError;
use crate::entity::{audit_event, organisation, remediation as rem, system, user};
use crate::types::Text;
use changegate_domain::change::Severity;
use changegate_domain::remediation::{RemediationKind, RemediationState};
use chrono::{DateTime, NaiveDate, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, Select,
};
use std::collections::HashMap;

/// An item to raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewItem {
    /// Finding or condition.
    pub kind: RemediationKind,
    /// The system it is raised on.
    pub system_id: i64,
    /// The system's owner organisation, which must fulfil it.
    pub owner_org_id: i64,
    /// The change request it is raised on.
    pub change_request_id: i64,
    /// The evaluation round it is raised in.
    pub round: i32,
    /// Severity.
    pub severity: Severity,
    /// What must be done.
    pub text: String,
    /// The checklist item it concerns, if any.
    pub item: Option<String>,
    /// Its due date.
    pub due: NaiveDate,
    /// The state it starts in.
    pub state: RemediationState,
    /// Who raised it.
    pub raised_by: i64,
    /// When (also its last update).
    pub raised_at: DateTime<Utc>,
}

/// Inserts an item, nothing fulfilled or verified yet.
pub async fn insert_item(db: &impl ConnectionTrait, n: NewItem) -> Result<rem::Model, StoreError> {
    Ok(rem::ActiveModel {
        kind: Set(Text(n.kind)),
        system_id: Set(n.system_id),
        owner_org_id: Set(n.owner_org_id),
        change_request_id: Set(n.change_request_id),
        round: Set(n.round),
        severity: Set(Text(n.severity)),
        text: Set(n.text),
        item: Set(n.item),
        due: Set(n.due),
        state: Set(Text(n.state)),
        raised_by: Set(n.raised_by),
        raised_at: Set(n.raised_at),
        evidence: Set(None),
        fulfilled_by: Set(None),
        fulfilled_at: Set(None),
        verified_by: Set(None),
        verified_at: Set(None),
        verify_note: Set(None),
        updated_at: Set(n.raised_at),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// The item `id`, if it exists.
pub async fn item(db: &impl ConnectionTrait, id: i64) -> Result<Option<rem::Model>, StoreError> {
    Ok(rem::Entity::find_by_id(id).one(db).await?)
}

/// The audit events of item `id`, in order: its history.
pub async fn history(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Vec<audit_event::Model>, StoreError> {
    Ok(audit_event::Entity::find()
        .filter(audit_event::Column::Entity.eq("remediation"))
        .filter(audit_event::Column::EntityId.eq(id.to_string()))
        .order_by_asc(audit_event::Column::Seq)
        .all(db)
        .await?)
}

/// What the views of some items name by id: system codes, organisation codes, usernames.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels {
    /// System code by id.
    pub systems: HashMap<i64, String>,
    /// Organisation code by id.
    pub orgs: HashMap<i64, String>,
    /// Username by id (those who raised, fulfilled or verified the items).
    pub people: HashMap<i64, String>,
}

/// The [`Labels`] of `rows`: their systems, owner organisations and the people who raised,
/// fulfilled or verified them.
pub async fn labels(db: &impl ConnectionTrait, rows: &[rem::Model]) -> Result<Labels, StoreError> {
    let ids = |f: fn(&rem::Model) -> Vec<i64>| -> Vec<i64> { rows.iter().flat_map(f).collect() };
    let systems = system::Entity::find()
        .filter(system::Column::Id.is_in(ids(|r| vec![r.system_id])))
        .all(db)
        .await?
        .into_iter()
        .map(|s| (s.id, s.code))
        .collect();
    let orgs = organisation::Entity::find()
        .filter(organisation::Column::Id.is_in(ids(|r| vec![r.owner_org_id])))
        .all(db)
        .await?
        .into_iter()
        .map(|o| (o.id, o.code))
        .collect();
    let people = user::Entity::find()
        .filter(user::Column::Id.is_in(ids(|r| {
            [Some(r.raised_by), r.fulfilled_by, r.verified_by]
                .into_iter()
                .flatten()
                .collect()
        })))
        .all(db)
        .await?
        .into_iter()
        .map(|u| (u.id, u.username))
        .collect();
    Ok(Labels {
        systems,
        orgs,
        people,
    })
}

/// Which items a list or a count covers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ItemFilter {
    /// Only items of this owner organisation: the principal's own, unless it sees every one.
    pub visible_to_org: Option<i64>,
    /// Only items of this owner organisation (asked for).
    pub owner_org: Option<i64>,
    /// Only items of this system.
    pub system: Option<i64>,
    /// Only items raised on this change request.
    pub change_request: Option<i64>,
    /// Only items in this state.
    pub state: Option<RemediationState>,
    /// Only findings or only conditions.
    pub kind: Option<RemediationKind>,
    /// Only overdue items on `today` (true) or only those not overdue (false).
    pub overdue: Option<bool>,
}

/// A page of items and how many there are in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemPage {
    /// The items of the page.
    pub items: Vec<rem::Model>,
    /// How many items match, on every page.
    pub total: u64,
}

/// Items of the owner organisation `visible_to_org` (every item when `None`).
fn visible(visible_to_org: Option<i64>) -> Select<rem::Entity> {
    let q = rem::Entity::find();
    match visible_to_org {
        Some(org) => q.filter(rem::Column::OwnerOrgId.eq(org)),
        None => q,
    }
}

/// Page `page` (from 1) of `per_page` items matching `f`, overdue as of `today`, soonest due
/// first.
pub async fn page(
    db: &impl ConnectionTrait,
    f: &ItemFilter,
    today: NaiveDate,
    page: u64,
    per_page: u64,
) -> Result<ItemPage, StoreError> {
    let mut q = visible(f.visible_to_org);
    if let Some(id) = f.system {
        q = q.filter(rem::Column::SystemId.eq(id));
    }
    if let Some(id) = f.owner_org {
        q = q.filter(rem::Column::OwnerOrgId.eq(id));
    }
    if let Some(id) = f.change_request {
        q = q.filter(rem::Column::ChangeRequestId.eq(id));
    }
    if let Some(s) = f.state {
        q = q.filter(rem::Column::State.eq(Text(s)));
    }
    if let Some(k) = f.kind {
        q = q.filter(rem::Column::Kind.eq(Text(k)));
    }
    match f.overdue {
        Some(true) => {
            q = q
                .filter(rem::Column::Due.lt(today))
                .filter(rem::Column::State.ne(Text(RemediationState::Verified)))
        }
        Some(false) => {
            q = q.filter(
                Condition::any()
                    .add(rem::Column::Due.gte(today))
                    .add(rem::Column::State.eq(Text(RemediationState::Verified))),
            )
        }
        None => {}
    }
    let q = q
        .order_by_asc(rem::Column::Due)
        .order_by_asc(rem::Column::Id);
    let total = q.clone().count(db).await?;
    let items = q
        .paginate(db, per_page)
        .fetch_page(page.saturating_sub(1))
        .await?;
    Ok(ItemPage { items, total })
}

/// How many items await someone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Waiting {
    /// Open or reopened: awaiting the owner's organisation.
    pub owner: u64,
    /// Fulfilled: awaiting PA05's verification.
    pub pa05: u64,
    /// Not verified and due before `today`.
    pub overdue: u64,
}

/// The [`Waiting`] counts of the items of owner organisation `visible_to_org` (every item when
/// `None`), overdue as of `today`.
pub async fn waiting(
    db: &impl ConnectionTrait,
    visible_to_org: Option<i64>,
    today: NaiveDate,
) -> Result<Waiting, StoreError> {
    let owner = visible(visible_to_org)
        .filter(rem::Column::State.is_in([
            Text(RemediationState::Open),
            Text(RemediationState::Reopened),
        ]))
        .count(db)
        .await?;
    let pa05 = visible(visible_to_org)
        .filter(rem::Column::State.eq(Text(RemediationState::Fulfilled)))
        .count(db)
        .await?;
    let overdue = visible(visible_to_org)
        .filter(rem::Column::Due.lt(today))
        .filter(rem::Column::State.ne(Text(RemediationState::Verified)))
        .count(db)
        .await?;
    Ok(Waiting {
        owner,
        pa05,
        overdue,
    })
}

/// Records that `by` fulfilled `row` at `at` with `evidence`, moving it to `next`.
pub async fn record_fulfilment(
    db: &impl ConnectionTrait,
    row: rem::Model,
    next: RemediationState,
    evidence: String,
    by: i64,
    at: DateTime<Utc>,
) -> Result<rem::Model, StoreError> {
    let mut am: rem::ActiveModel = row.into();
    am.state = Set(Text(next));
    am.updated_at = Set(at);
    am.evidence = Set(Some(evidence));
    am.fulfilled_by = Set(Some(by));
    am.fulfilled_at = Set(Some(at));
    Ok(am.update(db).await?)
}

/// Records that `by` verified `row` at `at` (accepted or not: `next` says which), with `note`
/// (an empty note is kept as none).
pub async fn record_verification(
    db: &impl ConnectionTrait,
    row: rem::Model,
    next: RemediationState,
    note: String,
    by: i64,
    at: DateTime<Utc>,
) -> Result<rem::Model, StoreError> {
    let mut am: rem::ActiveModel = row.into();
    am.state = Set(Text(next));
    am.updated_at = Set(at);
    am.verified_by = Set(Some(by));
    am.verified_at = Set(Some(at));
    am.verify_note = Set(Some(note).filter(|n| !n.is_empty()));
    Ok(am.update(db).await?)
}

/// The findings and conditions raised on change request `cr_id` in round `round`, in the order
/// they were raised.
pub async fn round_items(
    db: &impl ConnectionTrait,
    cr_id: i64,
    round: i32,
) -> Result<Vec<rem::Model>, StoreError> {
    Ok(of_round(cr_id, round).all(db).await?)
}

/// The items of change request `cr_id` raised in round `round`, in the order they were raised.
fn of_round(cr_id: i64, round: i32) -> sea_orm::Select<rem::Entity> {
    rem::Entity::find()
        .filter(rem::Column::ChangeRequestId.eq(cr_id))
        .filter(rem::Column::Round.eq(round))
        .order_by_asc(rem::Column::Id)
}

/// The findings raised on change request `cr_id` in round `round`, in the order they were
/// raised.
pub async fn round_findings(
    db: &impl ConnectionTrait,
    cr_id: i64,
    round: i32,
) -> Result<Vec<rem::Model>, StoreError> {
    Ok(of_round(cr_id, round)
        .filter(rem::Column::Kind.eq(Text(RemediationKind::Finding)))
        .all(db)
        .await?)
}

/// The items not verified whose due date is `by` at the latest, in the order they were raised.
pub async fn unverified_due_by(
    db: &impl ConnectionTrait,
    by: NaiveDate,
) -> Result<Vec<rem::Model>, StoreError> {
    Ok(rem::Entity::find()
        .filter(rem::Column::State.ne(Text(RemediationState::Verified)))
        .filter(rem::Column::Due.lte(by))
        .order_by_asc(rem::Column::Id)
        .all(db)
        .await?)
}

/// The items raised on any of `system_ids`.
pub async fn items_of_systems(
    db: &impl ConnectionTrait,
    system_ids: Vec<i64>,
) -> Result<Vec<rem::Model>, StoreError> {
    Ok(rem::Entity::find()
        .filter(rem::Column::SystemId.is_in(system_ids))
        .all(db)
        .await?)
}
