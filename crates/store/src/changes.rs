//! Loading a change request aggregate: its row with its system, and the sign-offs of its current
//! round as the domain's rules see them; filing, editing and moving a change request, its
//! subjects and its sign-offs; the lists and pages of change requests. Who may see it is the
//! app's question, not this module's.

use crate::StoreError;
use crate::entity::{change_request as cr, cr_subject, sign_off, system};
use crate::search::contains_all;
use crate::types::{JsonText, Text};
use changegate_api::{ComponentChange, GitFacts, ItemAnswer, WireCondition, WireFinding};
use changegate_domain::change::{Conclusion, CrState, SignOffRecord};
use changegate_domain::{ChangeKind, MajorAspect, Subject};
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect,
};

/// The change request `id`, if it exists.
pub async fn by_id(db: &impl ConnectionTrait, id: i64) -> Result<Option<cr::Model>, StoreError> {
    Ok(cr::Entity::find_by_id(id).one(db).await?)
}

/// The change requests with ids `ids` that exist, in no particular order.
pub async fn by_ids(
    db: &impl ConnectionTrait,
    ids: Vec<i64>,
) -> Result<Vec<cr::Model>, StoreError> {
    Ok(cr::Entity::find()
        .filter(cr::Column::Id.is_in(ids))
        .all(db)
        .await?)
}

/// Which systems' change requests [`newest`] lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OfSystems {
    /// Every system's.
    All,
    /// System `id`'s.
    One(i64),
    /// Those of any of these systems.
    Any(Vec<i64>),
}

/// The newest change requests of `systems`, newest first, at most `limit` of them (`None`: all).
pub async fn newest(
    db: &impl ConnectionTrait,
    systems: OfSystems,
    limit: Option<u64>,
) -> Result<Vec<cr::Model>, StoreError> {
    let mut q = cr::Entity::find()
        .order_by_desc(cr::Column::Id)
        .limit(limit);
    match systems {
        OfSystems::All => {}
        OfSystems::One(id) => q = q.filter(cr::Column::SystemId.eq(id)),
        OfSystems::Any(ids) => q = q.filter(cr::Column::SystemId.is_in(ids)),
    }
    Ok(q.all(db).await?)
}

/// The first `limit` change requests in state `state`, oldest first.
pub async fn oldest_in_state(
    db: &impl ConnectionTrait,
    state: CrState,
    limit: u64,
) -> Result<Vec<cr::Model>, StoreError> {
    Ok(cr::Entity::find()
        .filter(cr::Column::State.eq(Text(state)))
        .order_by_asc(cr::Column::Id)
        .limit(limit)
        .all(db)
        .await?)
}

/// The change request `id` with its system, if the change request exists. A change request
/// whose system is missing is corrupt.
pub async fn with_system(
    db: &impl ConnectionTrait,
    id: i64,
) -> Result<Option<(cr::Model, system::Model)>, StoreError> {
    let Some(row) = cr::Entity::find_by_id(id).one(db).await? else {
        return Ok(None);
    };
    let sys = system::Entity::find_by_id(row.system_id)
        .one(db)
        .await?
        .ok_or_else(|| StoreError::Corrupt {
            what: "change request",
            detail: format!("{id} has no system"),
        })?;
    Ok(Some((row, sys)))
}

/// The sign-offs of round `round` of change request `cr_id`, in the order they were made.
pub async fn round_sign_offs(
    db: &impl ConnectionTrait,
    cr_id: i64,
    round: i32,
) -> Result<Vec<SignOffRecord>, StoreError> {
    let rows = sign_off::Entity::find()
        .filter(sign_off::Column::ChangeRequestId.eq(cr_id))
        .filter(sign_off::Column::Round.eq(round))
        .order_by_asc(sign_off::Column::Id)
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|s| SignOffRecord {
            reviewer: s.reviewer_id,
            conclusion: *s.conclusion,
            at: s.created_at,
        })
        .collect())
}

/// The change requests of system `system_id` in one of `states`, by id.
pub async fn of_system_in_states(
    db: &impl ConnectionTrait,
    system_id: i64,
    states: &[CrState],
) -> Result<Vec<cr::Model>, StoreError> {
    Ok(cr::Entity::find()
        .filter(cr::Column::SystemId.eq(system_id))
        .filter(cr::Column::State.is_in(states.iter().copied().map(Text)))
        .order_by_asc(cr::Column::Id)
        .all(db)
        .await?)
}

/// A change request of system `system_id` of kind `kind`, if any (whichever the database finds
/// first).
pub async fn one_of_system_of_kind(
    db: &impl ConnectionTrait,
    system_id: i64,
    kind: ChangeKind,
) -> Result<Option<cr::Model>, StoreError> {
    Ok(cr::Entity::find()
        .filter(cr::Column::SystemId.eq(system_id))
        .filter(cr::Column::Kind.eq(Text(kind)))
        .one(db)
        .await?)
}

/// The subjects (content) change request `cr_id` covers, in the order they were given.
pub async fn subjects(
    db: &impl ConnectionTrait,
    cr_id: i64,
) -> Result<Vec<cr_subject::Model>, StoreError> {
    Ok(cr_subject::Entity::find()
        .filter(cr_subject::Column::ChangeRequestId.eq(cr_id))
        .order_by_asc(cr_subject::Column::Id)
        .all(db)
        .await?)
}

/// Makes `subjects` the content change request `cr_id` of system `system_id` covers, in that
/// order, instead of what it covered.
pub async fn replace_subjects(
    db: &impl ConnectionTrait,
    cr_id: i64,
    system_id: i64,
    subjects: &[Subject],
) -> Result<(), StoreError> {
    cr_subject::Entity::delete_many()
        .filter(cr_subject::Column::ChangeRequestId.eq(cr_id))
        .exec(db)
        .await?;
    if !subjects.is_empty() {
        cr_subject::Entity::insert_many(subjects.iter().map(|s| subject_row(cr_id, system_id, s)))
            .exec_without_returning(db)
            .await?;
    }
    Ok(())
}

/// The row of subject `s` of change request `cr_id`.
fn subject_row(cr_id: i64, system_id: i64, s: &Subject) -> cr_subject::ActiveModel {
    let (commit, tree, digest) = match s {
        Subject::GitCommit { commit, tree } => {
            (Some(commit.to_string()), Some(tree.to_string()), None)
        }
        Subject::Artifact { digest } => (None, None, Some(digest.to_string())),
    };
    cr_subject::ActiveModel {
        change_request_id: Set(cr_id),
        system_id: Set(system_id),
        kind: Set(Text(s.kind())),
        commit_id: Set(commit),
        tree_id: Set(tree),
        digest: Set(digest),
        ..Default::default()
    }
}

/// Every sign-off of any of change requests `cr_ids`, of every round, in the order they were
/// made.
pub async fn sign_offs(
    db: &impl ConnectionTrait,
    cr_ids: impl IntoIterator<Item = i64>,
) -> Result<Vec<sign_off::Model>, StoreError> {
    Ok(sign_off::Entity::find()
        .filter(sign_off::Column::ChangeRequestId.is_in(cr_ids))
        .order_by_asc(sign_off::Column::Id)
        .all(db)
        .await?)
}

/// The rows of the sign-offs of round `round` of change request `cr_id`, in the order they were
/// made (with their checklists, findings and conditions).
pub async fn round_sign_off_rows(
    db: &impl ConnectionTrait,
    cr_id: i64,
    round: i32,
) -> Result<Vec<sign_off::Model>, StoreError> {
    Ok(sign_off::Entity::find()
        .filter(sign_off::Column::ChangeRequestId.eq(cr_id))
        .filter(sign_off::Column::Round.eq(round))
        .order_by_asc(sign_off::Column::Id)
        .all(db)
        .await?)
}

/// A sign-off to record.
#[derive(Debug, Clone)]
pub struct NewSignOff {
    /// The change request.
    pub change_request_id: i64,
    /// Its round.
    pub round: i32,
    /// The reviewer.
    pub reviewer_id: i64,
    /// The conclusion.
    pub conclusion: Conclusion,
    /// The checklist's answers.
    pub checklist: Vec<ItemAnswer>,
    /// The findings.
    pub findings: Vec<WireFinding>,
    /// The conditions with their due dates resolved.
    pub conditions: Vec<WireCondition>,
    /// When.
    pub at: DateTime<Utc>,
    /// The policy pack's id.
    pub pack_id: String,
    /// The policy pack's version.
    pub pack_version: i32,
}

/// Records sign-off `n`.
pub async fn record_sign_off(db: &impl ConnectionTrait, n: NewSignOff) -> Result<(), StoreError> {
    sign_off::ActiveModel {
        change_request_id: Set(n.change_request_id),
        round: Set(n.round),
        reviewer_id: Set(n.reviewer_id),
        conclusion: Set(Text(n.conclusion)),
        checklist: Set(JsonText(n.checklist)),
        findings: Set(JsonText(n.findings)),
        conditions: Set(JsonText(n.conditions)),
        created_at: Set(n.at),
        pack_id: Set(n.pack_id),
        pack_version: Set(n.pack_version),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(())
}

/// A change request to file, as a draft of round 0.
#[derive(Debug, Clone)]
pub struct NewChange {
    /// Its system.
    pub system_id: i64,
    /// Its kind.
    pub kind: ChangeKind,
    /// Its title.
    pub title: String,
    /// Its description.
    pub description: String,
    /// Its environments' names.
    pub environments: Vec<String>,
    /// Its components.
    pub components: Vec<ComponentChange>,
    /// Its git facts, if given.
    pub git_facts: Option<GitFacts>,
    /// The incident it remediates, if any.
    pub remediates_incident: Option<i64>,
    /// The aspects that make it a major change.
    pub major_change: Vec<MajorAspect>,
    /// Who files it.
    pub filed_by: i64,
    /// Who may edit it: the ids of everyone who filed or edited it.
    pub editors: Vec<i64>,
    /// When.
    pub at: DateTime<Utc>,
}

/// Files change request `n`, a draft; returns its row.
pub async fn create(db: &impl ConnectionTrait, n: NewChange) -> Result<cr::Model, StoreError> {
    Ok(cr::ActiveModel {
        system_id: Set(n.system_id),
        kind: Set(Text(n.kind)),
        title: Set(n.title),
        description: Set(n.description),
        state: Set(Text(CrState::Draft)),
        environments: Set(JsonText(n.environments)),
        components: Set(JsonText(n.components)),
        git_facts: Set(n.git_facts.map(JsonText)),
        remediates_incident: Set(n.remediates_incident),
        major_change: Set(JsonText(n.major_change)),
        filed_by: Set(n.filed_by),
        editors: Set(JsonText(n.editors)),
        round: Set(0),
        approved_at: Set(None),
        valid_until: Set(None),
        created_at: Set(n.at),
        updated_at: Set(n.at),
        ..Default::default()
    }
    .insert(db)
    .await?)
}

/// What an edit of a change request changes (`None`: left as it is).
#[derive(Debug, Clone)]
pub struct ChangeEdit {
    /// A new title.
    pub title: Option<String>,
    /// A new description.
    pub description: Option<String>,
    /// New environments' names.
    pub environments: Option<Vec<String>>,
    /// New components.
    pub components: Option<Vec<ComponentChange>>,
    /// New major-change aspects.
    pub major_change: Option<Vec<MajorAspect>>,
    /// Who may edit it now.
    pub editors: Vec<i64>,
}

/// Writes edit `e` of change request `row` at `at`; returns the row as it now is.
pub async fn edit(
    db: &impl ConnectionTrait,
    row: &cr::Model,
    e: ChangeEdit,
    at: DateTime<Utc>,
) -> Result<cr::Model, StoreError> {
    let mut am: cr::ActiveModel = row.clone().into();
    if let Some(t) = e.title {
        am.title = Set(t);
    }
    if let Some(d) = e.description {
        am.description = Set(d);
    }
    if let Some(v) = e.environments {
        am.environments = Set(JsonText(v));
    }
    if let Some(c) = e.components {
        am.components = Set(JsonText(c));
    }
    if let Some(m) = e.major_change {
        am.major_change = Set(JsonText(m));
    }
    am.editors = Set(JsonText(e.editors));
    am.updated_at = Set(at);
    Ok(am.update(db).await?)
}

/// A change request's state as a transition leaves it.
#[derive(Debug, Clone)]
pub struct StateUpdate {
    /// Its state.
    pub state: CrState,
    /// Its round.
    pub round: i32,
    /// Who may edit it.
    pub editors: Vec<i64>,
    /// When it was approved, if it is.
    pub approved_at: Option<DateTime<Utc>>,
    /// Until when its approval holds.
    pub valid_until: Option<DateTime<Utc>>,
    /// Until when it may deploy as an emergency.
    pub emergency_until: Option<DateTime<Utc>>,
}

/// Writes state `s` of change request `row` at `at`; returns the row as it now is.
pub async fn save_state(
    db: &impl ConnectionTrait,
    row: cr::Model,
    s: StateUpdate,
    at: DateTime<Utc>,
) -> Result<cr::Model, StoreError> {
    let mut am: cr::ActiveModel = row.into();
    am.state = Set(Text(s.state));
    am.round = Set(s.round);
    am.editors = Set(JsonText(s.editors));
    am.approved_at = Set(s.approved_at);
    am.valid_until = Set(s.valid_until);
    am.emergency_until = Set(s.emergency_until);
    am.updated_at = Set(at);
    Ok(am.update(db).await?)
}

/// Which change requests [`page`] lists (every condition given must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChangeFilter {
    /// Only change requests of these systems.
    pub systems: Option<Vec<i64>>,
    /// Only in this state.
    pub state: Option<CrState>,
    /// Only of this kind.
    pub kind: Option<ChangeKind>,
    /// Filed at or after.
    pub created_from: Option<DateTime<Utc>>,
    /// Filed before.
    pub created_before: Option<DateTime<Utc>>,
    /// Words that must all occur in the search text (normalised as it is).
    pub words: Vec<String>,
}

/// A page of change requests.
#[derive(Debug, Clone)]
pub struct ChangePage {
    /// The change requests of the page, newest first.
    pub items: Vec<cr::Model>,
    /// How many change requests match, on every page.
    pub total: u64,
}

/// Page `page` (from 1) of `per_page` change requests matching `f`, newest first.
pub async fn page(
    db: &impl ConnectionTrait,
    f: &ChangeFilter,
    page: u64,
    per_page: u64,
) -> Result<ChangePage, StoreError> {
    let mut q = cr::Entity::find();
    if let Some(ids) = &f.systems {
        q = q.filter(cr::Column::SystemId.is_in(ids.clone()));
    }
    if let Some(st) = f.state {
        q = q.filter(cr::Column::State.eq(Text(st)));
    }
    if let Some(k) = f.kind {
        q = q.filter(cr::Column::Kind.eq(Text(k)));
    }
    if let Some(a) = f.created_from {
        q = q.filter(cr::Column::CreatedAt.gte(a));
    }
    if let Some(b) = f.created_before {
        q = q.filter(cr::Column::CreatedAt.lt(b));
    }
    for w in contains_all(cr::Column::SearchText, &f.words) {
        q = q.filter(w);
    }
    let q = q.order_by_desc(cr::Column::Id);
    let total = q.clone().count(db).await?;
    let items = q
        .paginate(db, per_page)
        .fetch_page(page.saturating_sub(1))
        .await?;
    Ok(ChangePage { items, total })
}
