//! The `api_tokens` table.

use sea_orm::entity::prelude::*;

/// A row of `api_tokens`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "api_tokens")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub public_id: String,
    pub user_id: i64,
    pub name: String,
    pub secret_hash: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
    /// Until then, API sign-offs with this token need no fresh second-factor code: a code given
    /// with it opens this short step-up window.
    pub step_up_until: Option<DateTimeUtc>,
    /// HMAC-SHA-256 (hex) of the whole token under the server's token key; None on rows of
    /// older databases until their first use.
    #[sea_orm(unique)]
    pub token_digest: Option<String>,
    /// Which token key made `token_digest` (the first 16 hex digits of its SHA-256).
    pub digest_key: Option<String>,
    /// The token that minted this one, if any.
    pub parent_token_id: Option<i64>,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
