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

impl crate::StrEnum for Role {
    fn name(self) -> &'static str {
        self.as_str()
    }
    fn from_name(s: &str) -> Result<Self, crate::ParseError> {
        Self::parse(s)
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

impl crate::StrEnum for OrgKind {
    fn name(self) -> &'static str {
        self.as_str()
    }
    fn from_name(s: &str) -> Result<Self, crate::ParseError> {
        Self::parse(s)
    }
}

str_enum!(
    /// Where an account stands, as a list of accounts is filtered by it.
    AccountStatus, "account status" {
        /// May sign in and use its tokens.
        Active = "active",
        /// Deactivated (someone who left): no sign-in, no session, no token.
        Inactive = "inactive",
        /// Active, but locked for a while after repeated failed sign-ins.
        Locked = "locked",
    }
);

str_enum!(
    /// What a web session may do next.
    SessionStage, "session stage" {
        /// Signed in with a one-time password: must set a new one.
        ChangePassword = "change_password",
        /// A reviewer or admin without a second factor: must enrol one.
        EnrolSecondFactor = "enrol_second_factor",
        /// Enrolled: must give a code.
        SecondFactor = "second_factor",
        /// Signed in fully.
        Active = "active",
    }
);

str_enum!(
    /// What a security signal is about.
    SignalKind, "signal kind" {
        /// An account used from two addresses at once.
        SharedAccount = "shared_account",
        /// An account locked after repeated failed sign-ins (read from the account, not stored
        /// as a signal).
        AccountLocked = "account_locked",
    }
);

/// An account as the account rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Account {
    /// User id.
    pub id: i64,
    /// Role.
    pub role: Role,
    /// Whether it may sign in and use its tokens.
    pub active: bool,
}

/// What an admin asks to do to an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountChange {
    /// Deactivate it (someone who left): sessions and tokens end, sign-in refused.
    Deactivate,
    /// Make it active again.
    Reactivate,
    /// Give it another role, another organisation, or both (sessions and tokens end).
    Move {
        /// The new role.
        role: Role,
        /// The kind of the new organisation.
        org_kind: OrgKind,
    },
}

/// Why an account change is refused. Each has a stable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccountRefusal {
    /// An admin cannot deactivate or move their own account (nobody locks themself out, or
    /// gives themself another role).
    #[error("an admin cannot deactivate or change their own account; another admin must")]
    OwnAccount,
    /// The change would leave no active admin.
    #[error("this is the last active admin; make another admin first")]
    LastAdmin,
    /// Deactivating an account that is not active.
    #[error("the account is already inactive")]
    AlreadyInactive,
    /// Reactivating an account that is active.
    #[error("the account is already active")]
    AlreadyActive,
    /// Moving an inactive account (reactivate it first).
    #[error("the account is inactive; reactivate it first")]
    Inactive,
    /// The role does not fit the organisation's kind.
    #[error("this role cannot belong to an organisation of that kind")]
    RoleDoesNotFitOrg,
}

impl AccountRefusal {
    /// The refusal's stable code.
    pub fn code(self) -> &'static str {
        match self {
            AccountRefusal::OwnAccount => "own_account",
            AccountRefusal::LastAdmin => "last_admin",
            AccountRefusal::AlreadyInactive => "already_inactive",
            AccountRefusal::AlreadyActive => "already_active",
            AccountRefusal::Inactive => "account_inactive",
            AccountRefusal::RoleDoesNotFitOrg => "role_does_not_fit_org",
        }
    }
}

/// Whether admin `actor` (user id) may make `change` to `target`, given how many admins are
/// active now (`active_admins`, the target included when it is one).
pub fn check_account_change(
    actor: i64,
    target: Account,
    change: AccountChange,
    active_admins: u64,
) -> Result<(), AccountRefusal> {
    let stays_admin = match change {
        AccountChange::Deactivate => {
            if !target.active {
                return Err(AccountRefusal::AlreadyInactive);
            }
            false
        }
        AccountChange::Reactivate => {
            return if target.active {
                Err(AccountRefusal::AlreadyActive)
            } else {
                Ok(())
            };
        }
        AccountChange::Move { role, org_kind } => {
            if !target.active {
                return Err(AccountRefusal::Inactive);
            }
            if !role.fits_org(org_kind) {
                return Err(AccountRefusal::RoleDoesNotFitOrg);
            }
            role == Role::Admin
        }
    };
    if target.id == actor {
        return Err(AccountRefusal::OwnAccount);
    }
    if target.role == Role::Admin && target.active && !stays_admin && active_admins <= 1 {
        return Err(AccountRefusal::LastAdmin);
    }
    Ok(())
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

    const ADMIN: Account = Account {
        id: 1,
        role: Role::Admin,
        active: true,
    };

    #[test]
    fn an_admin_cannot_deactivate_themself_nor_the_last_admin() {
        use AccountChange::*;
        assert_eq!(
            check_account_change(1, ADMIN, Deactivate, 2),
            Err(AccountRefusal::OwnAccount)
        );
        let other = Account { id: 2, ..ADMIN };
        assert_eq!(
            check_account_change(1, other, Deactivate, 1),
            Err(AccountRefusal::LastAdmin)
        );
        assert_eq!(check_account_change(1, other, Deactivate, 2), Ok(()));
        let demote = Move {
            role: Role::Auditor,
            org_kind: OrgKind::Inspector,
        };
        assert_eq!(
            check_account_change(1, other, demote, 1),
            Err(AccountRefusal::LastAdmin)
        );
        assert_eq!(check_account_change(1, other, demote, 2), Ok(()));
        assert_eq!(
            check_account_change(1, ADMIN, demote, 2),
            Err(AccountRefusal::OwnAccount)
        );
    }

    #[test]
    fn deactivation_and_reactivation_go_one_way_each() {
        use AccountChange::*;
        let owner = Account {
            id: 5,
            role: Role::Owner,
            active: true,
        };
        let gone = Account {
            active: false,
            ..owner
        };
        assert_eq!(check_account_change(1, owner, Deactivate, 1), Ok(()));
        assert_eq!(
            check_account_change(1, gone, Deactivate, 1),
            Err(AccountRefusal::AlreadyInactive)
        );
        assert_eq!(check_account_change(1, gone, Reactivate, 1), Ok(()));
        assert_eq!(
            check_account_change(1, owner, Reactivate, 1),
            Err(AccountRefusal::AlreadyActive)
        );
        let to_reviewer_at_owner = Move {
            role: Role::Reviewer,
            org_kind: OrgKind::Owner,
        };
        assert_eq!(
            check_account_change(1, owner, to_reviewer_at_owner, 1),
            Err(AccountRefusal::RoleDoesNotFitOrg)
        );
        assert_eq!(
            check_account_change(1, gone, to_reviewer_at_owner, 1),
            Err(AccountRefusal::Inactive)
        );
    }

    proptest::proptest! {
        /// Whatever an admin (or the operator at the command line, id 0) asks, an accepted change
        /// never leaves zero active admins where there was one, and never touches the asker's
        /// own account.
        #[test]
        fn no_accepted_change_leaves_no_active_admin(
            actor in 0i64..4, id in 1i64..4, role in 0usize..7, active: bool,
            change in 0usize..3, new_role in 0usize..7, kind in 0usize..3, others in 0u64..3,
        ) {
            let target = Account { id, role: Role::ALL[role], active };
            let kinds = [OrgKind::Owner, OrgKind::Reviewer, OrgKind::Inspector];
            let c = match change {
                0 => AccountChange::Deactivate,
                1 => AccountChange::Reactivate,
                _ => AccountChange::Move { role: Role::ALL[new_role], org_kind: kinds[kind] },
            };
            let before = u64::from(target.role == Role::Admin && target.active);
            // The asker is an active admin account unless it is the operator or the target.
            let admins = others + before + u64::from(actor != 0 && actor != id);
            if check_account_change(actor, target, c, admins).is_ok() {
                let target_admin_after = match c {
                    AccountChange::Deactivate => false,
                    AccountChange::Reactivate => target.role == Role::Admin,
                    AccountChange::Move { role, .. } => role == Role::Admin,
                };
                let after = admins - before + u64::from(target_admin_after);
                proptest::prop_assert!(admins == 0 || after >= 1);
                proptest::prop_assert!(id != actor || c == AccountChange::Reactivate);
            }
        }
    }
}
