//! Roles of people and kinds of organisations.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What a user may do. One person, one role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Files and edits change requests for the systems of their organisation.
    Owner,
    /// PA05 reviewer: evaluates and signs off.
    Reviewer,
    /// Inspector: reads everything, writes nothing.
    Auditor,
    /// Manages the registry (organisations, users, systems, tokens).
    Admin,
    /// A CI/CD pipeline: asks the gate.
    Ci,
    /// A Kubernetes API server's admission webhook: asks the gate for the images of a workload.
    Admission,
    /// A sensor on a server deployed by hand: reports the content it observes running.
    Observer,
}

impl Role {
    /// All roles.
    pub const ALL: [Role; 7] = [
        Role::Owner,
        Role::Reviewer,
        Role::Auditor,
        Role::Admin,
        Role::Ci,
        Role::Admission,
        Role::Observer,
    ];

    /// The role's name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Reviewer => "reviewer",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
            Role::Ci => "ci",
            Role::Admission => "admission",
            Role::Observer => "observer",
        }
    }

    /// Parses a role name.
    pub fn parse(s: &str) -> Result<Self, crate::ParseError> {
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| crate::ParseError {
                field: "role",
                value: s.chars().take(80).collect(),
                expected: "one of owner, reviewer, auditor, admin, ci, admission, observer",
            })
    }

    /// Whether this role reads the systems and changes of every organisation (PA05 reviewers,
    /// inspectors, admins). Owners and pipelines see only their own organisation's.
    pub fn sees_every_organisation(self) -> bool {
        matches!(self, Role::Reviewer | Role::Auditor | Role::Admin)
    }

    /// Whether a person of this role in `actor_org` may see what belongs to `owner_org`.
    pub fn may_see(self, actor_org: i64, owner_org: i64) -> bool {
        self.sees_every_organisation() || actor_org == owner_org
    }

    /// Whether this role is a machine's (a pipeline, an admission webhook, an observer): it uses
    /// API tokens only and never signs in to the web UI.
    pub fn is_machine(self) -> bool {
        matches!(self, Role::Ci | Role::Admission | Role::Observer)
    }

    /// Whether a person of this role must enrol a second factor (TOTP) before using the web UI:
    /// reviewers sign off, admins manage accounts.
    pub fn needs_second_factor(self) -> bool {
        matches!(self, Role::Reviewer | Role::Admin)
    }

    /// Which organisation kinds a user of this role may belong to.
    pub fn fits_org(self, kind: OrgKind) -> bool {
        match self {
            Role::Owner | Role::Ci | Role::Admission | Role::Observer => kind == OrgKind::Owner,
            Role::Reviewer => kind == OrgKind::Reviewer,
            Role::Auditor => kind == OrgKind::Inspector || kind == OrgKind::Reviewer,
            Role::Admin => true,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The kind of an organisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrgKind {
    /// Owns and operates systems (a department, an agency).
    Owner,
    /// Evaluates changes (the provincial police, PA05).
    Reviewer,
    /// Inspects (the Department of Information and Communications).
    Inspector,
}

impl OrgKind {
    /// The kind's name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            OrgKind::Owner => "owner",
            OrgKind::Reviewer => "reviewer",
            OrgKind::Inspector => "inspector",
        }
    }

    /// Parses an organisation kind.
    pub fn parse(s: &str) -> Result<Self, crate::ParseError> {
        [OrgKind::Owner, OrgKind::Reviewer, OrgKind::Inspector]
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| crate::ParseError {
                field: "organisation kind",
                value: s.chars().take(80).collect(),
                expected: "one of owner, reviewer, inspector",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners_and_pipelines_see_only_their_organisation_and_pa05_and_inspectors_see_all() {
        for r in [Role::Owner, Role::Ci, Role::Admission, Role::Observer] {
            assert!(r.may_see(1, 1));
            assert!(!r.may_see(1, 2), "{r}");
        }
        for r in [Role::Reviewer, Role::Auditor, Role::Admin] {
            assert!(r.may_see(1, 2), "{r}");
        }
    }

    #[test]
    fn reviewers_and_admins_need_a_second_factor_and_the_others_do_not() {
        assert!(Role::Reviewer.needs_second_factor());
        assert!(Role::Admin.needs_second_factor());
        for r in [
            Role::Owner,
            Role::Auditor,
            Role::Ci,
            Role::Admission,
            Role::Observer,
        ] {
            assert!(!r.needs_second_factor(), "{r}");
        }
    }
}
