//! The `audit_checkpoints` table: the chain's head at a moment, signed with the server's key.

use sea_orm::entity::prelude::*;

/// A row of `audit_checkpoints`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_checkpoints")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// The last event it vouches for.
    #[sea_orm(unique)]
    pub seq: i64,
    /// That event's chain hash.
    pub hash: String,
    /// When it was signed (RFC 3339, microseconds, UTC).
    pub signed_at: String,
    /// The signing key.
    pub keyid: String,
    /// Base64 of the ed25519 signature over `changegate_domain::audit::checkpoint_message`.
    pub sig: String,
}

/// No relations are navigated through sea-orm.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
