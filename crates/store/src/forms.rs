//! The web forms' rows: the uses of a form id (`web_form_uses`, guarding against a resubmission)
//! and the drafts kept for a page (`web_drafts`). Only reads and writes: how keys are derived,
//! which fields are kept and how long uses and drafts live are the app's.

use crate::StoreError;
use crate::entity::{web_draft, web_form_use};
use chrono::{DateTime, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

// Form uses.

/// Records the first use of form key `key` at `at`, without an outcome yet; whether it was the
/// first (false: the key was used before).
pub async fn claim_use(
    db: &impl ConnectionTrait,
    key: &str,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inserted = web_form_use::Entity::insert(web_form_use::ActiveModel {
        form_key: Set(key.to_owned()),
        outcome: Set(String::new()),
        created_at: Set(at),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::column(web_form_use::Column::FormKey)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(inserted > 0)
}

/// Forgets the form uses recorded before `before`.
pub async fn forget_uses_before(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<(), StoreError> {
    web_form_use::Entity::delete_many()
        .filter(web_form_use::Column::CreatedAt.lt(before))
        .exec(db)
        .await?;
    Ok(())
}

/// The use of form key `key`, if recorded.
pub async fn form_use(
    db: &impl ConnectionTrait,
    key: &str,
) -> Result<Option<web_form_use::Model>, StoreError> {
    Ok(web_form_use::Entity::find()
        .filter(web_form_use::Column::FormKey.eq(key))
        .one(db)
        .await?)
}

/// Records `outcome` (where the first submission sent the browser) for form key `key`.
pub async fn record_outcome(
    db: &impl ConnectionTrait,
    key: &str,
    outcome: &str,
) -> Result<(), StoreError> {
    web_form_use::Entity::update_many()
        .col_expr(web_form_use::Column::Outcome, Expr::value(outcome))
        .filter(web_form_use::Column::FormKey.eq(key))
        .exec(db)
        .await?;
    Ok(())
}

/// Forgets the use of form key `key`.
pub async fn release_use(db: &impl ConnectionTrait, key: &str) -> Result<(), StoreError> {
    web_form_use::Entity::delete_many()
        .filter(web_form_use::Column::FormKey.eq(key))
        .exec(db)
        .await?;
    Ok(())
}

// Drafts.

/// Forgets the drafts kept before `before`.
pub async fn forget_drafts_before(
    db: &impl ConnectionTrait,
    before: DateTime<Utc>,
) -> Result<(), StoreError> {
    web_draft::Entity::delete_many()
        .filter(web_draft::Column::CreatedAt.lt(before))
        .exec(db)
        .await?;
    Ok(())
}

/// A draft to keep.
#[derive(Debug, Clone)]
pub struct NewDraft {
    /// The hash of its id.
    pub draft_hash: String,
    /// The page it was sent from.
    pub page: String,
    /// Its fields, URL-encoded.
    pub fields: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Keeps draft `n`.
pub async fn keep_draft(db: &impl ConnectionTrait, n: NewDraft) -> Result<(), StoreError> {
    web_draft::Entity::insert(web_draft::ActiveModel {
        draft_hash: Set(n.draft_hash),
        page: Set(n.page),
        fields: Set(n.fields),
        created_at: Set(n.at),
        ..Default::default()
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The draft whose id hashes to `draft_hash`, if kept.
pub async fn draft(
    db: &impl ConnectionTrait,
    draft_hash: &str,
) -> Result<Option<web_draft::Model>, StoreError> {
    Ok(web_draft::Entity::find()
        .filter(web_draft::Column::DraftHash.eq(draft_hash))
        .one(db)
        .await?)
}

/// Forgets draft `id`.
pub async fn forget_draft(db: &impl ConnectionTrait, id: i64) -> Result<(), StoreError> {
    web_draft::Entity::delete_by_id(id).exec(db).await?;
    Ok(())
}
