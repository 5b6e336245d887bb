//! The `users` table.

use crate::types::Text;
use changegate_domain::Role;
use sea_orm::entity::prelude::*;

/// A row of `users`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub username: String,
    pub display_name: String,
    pub org_id: i64,
    pub role: Text<Role>,
    pub password_hash: String,
    pub must_change_password: bool,
    pub active: bool,
    pub created_at: DateTimeUtc,
    /// The confirmed TOTP secret (base32), when enrolled.
    pub totp_secret: Option<String>,
    /// A TOTP secret shown for enrolment and not yet confirmed.
    pub totp_pending: Option<String>,
    /// When the second factor was enrolled.
    pub totp_enrolled_at: Option<DateTimeUtc>,
    /// The last 30-second step whose code was accepted (a code is accepted once).
    pub totp_last_step: Option<i64>,
    /// Failed sign-ins (or second factors) in a row.
    pub failed_logins: i32,
    /// Locked until then after too many failures.
    pub locked_until: Option<DateTimeUtc>,
    /// When the account was deactivated (None: active, or never deactivated).
    pub deactivated_at: Option<DateTimeUtc>,
    /// Who deactivated it (user id; 0 for the operator at the command line).
    pub deactivated_by: Option<i64>,
    /// Why (someone who left, a compromised account…).
    pub deactivation_reason: Option<String>,
}

/// No relations are navigated through sea-orm; queries join explicitly.
#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
