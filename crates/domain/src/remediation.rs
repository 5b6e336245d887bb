//! Findings and conditions tracked to closure (*khắc phục*): from the reviewer's pen to the
//! reviewer's verification.
//!
//! Every finding of a failed or sent-back evaluation and every condition of an approval becomes
//! an item. The owner's organisation fulfils it with evidence; a PA05 reviewer who did not fulfil
//! it verifies it (accepted: closed; rejected: reopened with the reviewer's note). [`apply`] is
//! the only way an item changes state, and holds who may do what.

use crate::change::{Actor, Refusal, Severity, check_text};
use crate::policy::PolicyPack;
use crate::roles::{OrgKind, Role};
use chrono::{DateTime, Duration, NaiveDate, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Longest evidence text.
pub const MAX_EVIDENCE: usize = 10_000;

str_enum!(
    /// What an item came from.
    RemediationKind, "remediation kind" {
        /// A finding of a failed or sent-back evaluation (*phát hiện*).
        Finding = "finding",
        /// A condition attached to an approval (*điều kiện kèm theo*).
        Condition = "condition",
    }
);

str_enum!(
    /// Where an item stands.
    RemediationState, "remediation state" {
        /// Waiting for the owner.
        Open = "open",
        /// The owner says it is done, with evidence; waiting for PA05.
        Fulfilled = "fulfilled",
        /// PA05 verified it: closed.
        Verified = "verified",
        /// PA05 did not accept the evidence: waiting for the owner again.
        Reopened = "reopened",
    }
);

impl RemediationState {
    /// Waiting for the owner (open or reopened).
    pub fn awaits_owner(self) -> bool {
        matches!(self, RemediationState::Open | RemediationState::Reopened)
    }
}

/// What the rules need to know about an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// State.
    pub state: RemediationState,
    /// The system's owner organisation.
    pub owner_org: i64,
    /// Who fulfilled it last, if anyone.
    pub fulfilled_by: Option<i64>,
}

/// What can be done to an item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The owner says it is done.
    Fulfil {
        /// What was done, how to check it.
        evidence: String,
    },
    /// PA05 checks the evidence.
    Verify {
        /// Accepted (closed) or not (reopened).
        accepted: bool,
        /// The reviewer's note (required when not accepted).
        note: String,
    },
}

impl Step {
    /// A short name for messages and the audit log.
    pub fn name(&self) -> &'static str {
        match self {
            Step::Fulfil { .. } => "fulfil",
            Step::Verify { .. } => "verify",
        }
    }
}

/// May `actor` fulfil `item` now? (An owner of the system's organisation, the item waiting for
/// its owner.)
pub fn may_fulfil(item: &Item, actor: &Actor) -> Result<(), Refusal> {
    match actor {
        Actor::Person(p) if p.role == Role::Owner && p.org_id == item.owner_org => {}
        _ => {
            return Err(Refusal::Forbidden(
                "only an owner of the system's organisation fulfils its items".into(),
            ));
        }
    }
    if !item.state.awaits_owner() {
        return Err(wrong_state(item, "fulfil"));
    }
    Ok(())
}

/// May `actor` verify `item` now? (A PA05 reviewer outside the owner organisation who did not
/// fulfil it, the item fulfilled.)
pub fn may_verify(item: &Item, actor: &Actor) -> Result<(), Refusal> {
    let p = match actor {
        Actor::Person(p) if p.role == Role::Reviewer && p.org_kind == OrgKind::Reviewer => p,
        _ => {
            return Err(Refusal::Forbidden(
                "only a PA05 reviewer verifies an item".into(),
            ));
        }
    };
    if p.org_id == item.owner_org {
        return Err(Refusal::SeparationOfDuties(
            "nobody from the system's owner organisation verifies its items".into(),
        ));
    }
    if item.fulfilled_by == Some(p.id) {
        return Err(Refusal::SeparationOfDuties(
            "nobody verifies their own fulfilment".into(),
        ));
    }
    if item.state != RemediationState::Fulfilled {
        return Err(wrong_state(item, "verify"));
    }
    Ok(())
}

fn wrong_state(item: &Item, action: &str) -> Refusal {
    Refusal::WrongState(format!("cannot {action} an item that is {}", item.state))
}

/// Applies a step: the item's new state, or why it was refused (and then nothing changed).
pub fn apply(item: &Item, actor: &Actor, step: &Step) -> Result<RemediationState, Refusal> {
    match step {
        Step::Fulfil { evidence } => {
            may_fulfil(item, actor)?;
            check_text("evidence", evidence, MAX_EVIDENCE, true)?;
            Ok(RemediationState::Fulfilled)
        }
        Step::Verify { accepted, note } => {
            may_verify(item, actor)?;
            check_text("note", note, 4000, !accepted)?;
            Ok(if *accepted {
                RemediationState::Verified
            } else {
                RemediationState::Reopened
            })
        }
    }
}

/// The default due date of an item of `severity` signed on `today`.
pub fn default_due(pack: &PolicyPack, severity: Severity, today: NaiveDate) -> NaiveDate {
    today + Duration::days(i64::from(pack.remediation.due_days.of(severity)))
}

/// The instant an item due on `due` becomes overdue: the end of that day in `tz`.
pub fn overdue_at(due: NaiveDate, tz: chrono_tz::Tz) -> DateTime<Utc> {
    let next = due.succ_opt().unwrap_or(due);
    let midnight = next.and_hms_opt(0, 0, 0).unwrap_or_default();
    tz.from_local_datetime(&midnight)
        .earliest()
        .map_or_else(|| midnight.and_utc(), |t| t.with_timezone(&Utc))
}

/// Whether an overdue, unverified item of this kind and severity closes the gate.
pub fn closes_gate(pack: &PolicyPack, kind: RemediationKind, severity: Severity) -> bool {
    kind == RemediationKind::Condition
        && pack.remediation.gate_closing_severities.contains(&severity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::change::Person;

    fn person(id: i64, org_id: i64, org_kind: OrgKind, role: Role) -> Actor {
        Actor::Person(Person {
            id,
            org_id,
            org_kind,
            role,
        })
    }

    const OWNER: i64 = 1;
    fn owner(id: i64) -> Actor {
        person(id, OWNER, OrgKind::Owner, Role::Owner)
    }
    fn reviewer(id: i64) -> Actor {
        person(id, 2, OrgKind::Reviewer, Role::Reviewer)
    }

    fn item(state: RemediationState) -> Item {
        Item {
            state,
            owner_org: OWNER,
            fulfilled_by: None,
        }
    }

    fn fulfil() -> Step {
        Step::Fulfil {
            evidence: "Đã bổ sung hồ sơ CO/CQ".into(),
        }
    }

    #[test]
    fn the_owner_fulfils_and_another_reviewer_verifies() {
        let it = item(RemediationState::Open);
        assert_eq!(
            apply(&it, &owner(3), &fulfil()),
            Ok(RemediationState::Fulfilled)
        );
        let it = Item {
            state: RemediationState::Fulfilled,
            fulfilled_by: Some(3),
            ..it
        };
        let verify = |accepted, note: &str| Step::Verify {
            accepted,
            note: note.into(),
        };
        assert_eq!(
            apply(&it, &reviewer(4), &verify(true, "")),
            Ok(RemediationState::Verified)
        );
        assert_eq!(
            apply(&it, &reviewer(4), &verify(false, "Chưa đủ")),
            Ok(RemediationState::Reopened)
        );
        assert!(matches!(
            apply(&it, &reviewer(4), &verify(false, " ")),
            Err(Refusal::Invalid { .. })
        ));
    }

    #[test]
    fn nobody_verifies_their_own_fulfilment_or_an_unfulfilled_item() {
        let mut it = item(RemediationState::Fulfilled);
        it.fulfilled_by = Some(4);
        let ok = Step::Verify {
            accepted: true,
            note: String::new(),
        };
        assert!(matches!(
            apply(&it, &reviewer(4), &ok),
            Err(Refusal::SeparationOfDuties(_))
        ));
        assert!(matches!(
            apply(&item(RemediationState::Open), &reviewer(5), &ok),
            Err(Refusal::WrongState(_))
        ));
        assert!(matches!(
            apply(&it, &owner(3), &ok),
            Err(Refusal::Forbidden(_))
        ));
        // A reviewer-role person placed in the owner organisation may not verify.
        let inside = person(6, OWNER, OrgKind::Reviewer, Role::Reviewer);
        assert!(matches!(
            apply(&it, &inside, &ok),
            Err(Refusal::SeparationOfDuties(_))
        ));
    }

    #[test]
    fn only_the_owner_organisation_fulfils_and_only_what_awaits_it() {
        assert!(matches!(
            apply(
                &item(RemediationState::Open),
                &person(9, 7, OrgKind::Owner, Role::Owner),
                &fulfil()
            ),
            Err(Refusal::Forbidden(_))
        ));
        assert!(matches!(
            apply(&item(RemediationState::Verified), &owner(3), &fulfil()),
            Err(Refusal::WrongState(_))
        ));
        assert_eq!(
            apply(&item(RemediationState::Reopened), &owner(3), &fulfil()),
            Ok(RemediationState::Fulfilled)
        );
        let long = Step::Fulfil {
            evidence: "x".repeat(MAX_EVIDENCE + 1),
        };
        assert!(matches!(
            apply(&item(RemediationState::Open), &owner(3), &long),
            Err(Refusal::Invalid { .. })
        ));
    }

    #[test]
    fn an_item_is_overdue_from_the_end_of_its_due_day_in_local_time() {
        let tz = chrono_tz::Asia::Ho_Chi_Minh;
        let due = NaiveDate::from_ymd_opt(2026, 12, 20).unwrap_or_default();
        // 2026-12-21 00:00 in UTC+7 is 2026-12-20 17:00 UTC.
        assert_eq!(
            overdue_at(due, tz).to_rfc3339(),
            "2026-12-20T17:00:00+00:00"
        );
    }
}
