//! The `sessions` table: browser sessions of the web UI. The token itself is never stored, only
//! its SHA-256 (hex), so a copy of the database does not hold usable sessions.

use crate::types::Text;
use changegate_domain::roles::SessionStage;
use sea_orm::entity::prelude::*;

/// A row of `sessions`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// SHA-256 of the session token, hex.
    #[sea_orm(unique)]
    pub token_hash: String,
    pub user_id: i64,
    /// What the session may do next (`change_password`, `enrol_second_factor`,
    /// `second_factor`, `active`).
    pub stage: Text<SessionStage>,
    /// The session's CSRF token.
    pub csrf: String,
    /// The address it was opened from.
    pub ip: String,
    pub user_agent: String,
    pub created_at: DateTimeUtc,
    pub last_seen_at: DateTimeUtc,
    /// Idle expiry, never later than the absolute expiry.
    pub expires_at: DateTimeUtc,
    pub revoked_at: Option<DateTimeUtc>,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
