//! Wire types of the account administration and the incident list (issue 11).

use crate::types::Incident;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An account as an admin sees it in the list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct UserSummary {
    /// Username.
    pub username: String,
    /// Full name.
    pub display_name: String,
    /// Organisation code.
    pub org: String,
    /// Role.
    pub role: String,
    /// Whether it may sign in and use its tokens.
    pub active: bool,
    /// Must set a new password at the next sign-in.
    pub must_change_password: bool,
    /// Locked after repeated failed sign-ins until then (None: not locked).
    pub locked_until: Option<DateTime<Utc>>,
    /// Has enrolled a second factor.
    pub second_factor: bool,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// When it was deactivated (inactive accounts).
    pub deactivated_at: Option<DateTime<Utc>>,
    /// Who deactivated it.
    pub deactivated_by: Option<String>,
    /// Why.
    pub deactivation_reason: Option<String>,
}

/// `GET /api/v1/users`: one page of accounts.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct UserList {
    /// Items, by username.
    pub items: Vec<UserSummary>,
    /// Page (from 1).
    pub page: u64,
    /// Items per page.
    pub per_page: u64,
    /// Items matching the filters, all pages.
    pub total: u64,
}

/// `POST /api/v1/users/{username}/deactivate`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Deactivation {
    /// Why (kept with the account and in the audit log): someone who left, a compromised
    /// account.
    pub reason: String,
}

/// `PATCH /api/v1/users/{username}`: another role, another organisation, or both. The account's
/// sessions and tokens end.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditUser {
    /// The new role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The new organisation's code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
}

/// `GET /api/v1/incidents`: one page of incidents, newest first.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct IncidentList {
    /// Items, newest first.
    pub items: Vec<Incident>,
    /// Page (from 1).
    pub page: u64,
    /// Items per page.
    pub per_page: u64,
    /// Items matching the filters, all pages.
    pub total: u64,
}
