//! Change requests: kinds, states, and the one state machine that moves them.
//!
//! [`apply`] is the only way a change request changes state. It enforces who may do what
//! (roles, the owner organisation), separation of duties (nobody from the owner organisation and
//! nobody who filed or edited the change signs it off; one person counts once), checklist
//! completeness, and the quorum per security level from the policy pack. A change reaches
//! `approved` only through it.

use crate::ids::SecurityLevel;
use crate::policy::PolicyPack;
use crate::roles::{OrgKind, Role};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

macro_rules! str_enum {
    ($(#[$m:meta])* $name:ident, $field:literal { $($(#[$vm:meta])* $v:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vm])* $v),+ }
        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$v),+];
            /// The name on the wire and in the database.
            pub const fn as_str(self) -> &'static str { match self { $($name::$v => $s),+ } }
            /// Parses a name.
            pub fn parse(s: &str) -> Result<Self, crate::ParseError> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| crate::ParseError {
                    field: $field,
                    value: s.chars().take(80).collect(),
                    expected: concat!("one of" $(, " ", $s)+),
                })
            }
        }
        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str(self.as_str()) }
        }
        impl crate::StrEnum for $name {
            fn name(self) -> &'static str { self.as_str() }
            fn from_name(s: &str) -> Result<Self, crate::ParseError> { Self::parse(s) }
        }
    };
}

str_enum!(
    /// The kind of a change.
    ChangeKind, "change kind" {
        /// New, replaced or removed equipment.
        Hardware = "hardware",
        /// Application or system software.
        Software = "software",
        /// Configuration of devices, servers, databases or applications.
        Configuration = "configuration",
        /// Network topology, firewall, connections.
        Network = "network",
        /// An urgent fix (break-glass).
        Emergency = "emergency",
        /// The periodic re-review of the whole system (Directive 14/CT-TTg): always evaluated;
        /// a pass restarts the re-review clock, a fail suspends the system.
        ReReview = "re_review",
        /// Re-levelling (*xác định lại cấp độ*) of a population-database system: opened when its
        /// security level is changed, for PA05 to evaluate; always evaluated.
        Reclassification = "reclassification",
    }
);

str_enum!(
    /// Where a change request stands.
    CrState, "state" {
        /// Being written by the owner; editable.
        Draft = "draft",
        /// Waiting for the PA05 evaluation.
        Submitted = "submitted",
        /// Signed off with a pass by the quorum: the gate lets its subjects through until it expires.
        Approved = "approved",
        /// Signed off with a fail.
        Rejected = "rejected",
        /// Withdrawn by the owner.
        Withdrawn = "withdrawn",
        /// The approval's validity ran out.
        Expired = "expired",
        /// The approval was revoked by a reviewer.
        Revoked = "revoked",
    }
);

str_enum!(
    /// Conclusion of a sign-off (*kết luận*).
    Conclusion, "conclusion" {
        /// Đạt.
        Pass = "pass",
        /// Không đạt.
        Fail = "fail",
    }
);

str_enum!(
    /// Kind of a component of a system's inventory.
    ComponentKind, "component kind" {
        /// A machine or a network device.
        Hardware = "hardware",
        /// A program or a library.
        Software = "software",
    }
);

str_enum!(
    /// Result of one checklist item.
    CheckResult, "checklist result" {
        /// Meets the item.
        Pass = "pass",
        /// Does not meet the item.
        Fail = "fail",
        /// Does not apply to this change.
        Na = "na",
    }
);

str_enum!(
    /// Severity of a finding or an incident.
    Severity, "severity" {
        /// Low.
        Low = "low",
        /// Medium.
        Medium = "medium",
        /// High.
        High = "high",
        /// Critical.
        Critical = "critical",
    }
);

/// A person acting, as the rules see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// User id.
    pub id: i64,
    /// Organisation id.
    pub org_id: i64,
    /// Kind of the organisation.
    pub org_kind: OrgKind,
    /// Role.
    pub role: Role,
}

/// Who acts: a person, or the scheduler (expiry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// One named person.
    Person(Person),
    /// The server's scheduled jobs.
    System,
}

str_enum!(
    /// What makes a change a major change (Decree 331/2026, Art. 31.2.c).
    MajorAspect, "major change" {
        /// Its function.
        Function = "function",
        /// Its scope.
        Scope = "scope",
        /// Its architecture.
        Architecture = "architecture",
        /// Its technology.
        Technology = "technology",
    }
);

/// One checklist answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ItemResult {
    /// The checklist item id.
    pub item: String,
    /// pass, fail or na.
    pub result: CheckResult,
    /// The reviewer's note.
    #[serde(default)]
    pub note: String,
}

/// A finding of an evaluation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// How serious.
    pub severity: Severity,
    /// What was found.
    pub text: String,
    /// The checklist item it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
}

/// A condition attached to an approval: something the owner must do by a date, which PA05 then
/// verifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// What must be done.
    pub text: String,
    /// How serious (default medium).
    pub severity: Severity,
    /// By when; `None` takes the pack's default for the severity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub due: Option<chrono::NaiveDate>,
}

/// A reviewer's evaluation and sign-off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SignOff {
    /// pass or fail.
    pub conclusion: Conclusion,
    /// One answer per checklist item of the pack.
    pub checklist: Vec<ItemResult>,
    /// Findings.
    #[serde(default)]
    pub findings: Vec<Finding>,
    /// Conditions attached to a pass.
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

/// A sign-off that counted, in the current evaluation round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOffRecord {
    /// The reviewer.
    pub reviewer: i64,
    /// Their conclusion.
    pub conclusion: Conclusion,
    /// When.
    pub at: DateTime<Utc>,
}

/// What the rules need to know about a change request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeRequest {
    /// Current state.
    pub state: CrState,
    /// Kind.
    pub kind: ChangeKind,
    /// Security level of the system.
    pub level: SecurityLevel,
    /// The system's owner organisation.
    pub owner_org: i64,
    /// Who filed it.
    pub filed_by: i64,
    /// Everyone who filed or edited it.
    pub editors: BTreeSet<i64>,
    /// Evaluation round; a request for changes starts a new one and earlier sign-offs stop counting.
    pub round: u32,
    /// Sign-offs of the current round.
    pub signoffs: Vec<SignOffRecord>,
    /// When it was approved.
    pub approved_at: Option<DateTime<Utc>>,
    /// Until when the approval lets its subjects through.
    pub valid_until: Option<DateTime<Utc>>,
    /// For an emergency change, set at its first submission: until when it may deploy without
    /// sign-off (break-glass); its retroactive evaluation must pass by then.
    pub emergency_until: Option<DateTime<Utc>>,
    /// What makes it a major change (empty: not one).
    pub major_change: BTreeSet<MajorAspect>,
    /// The day of its external assessment, once recorded (Decree 331/2026, Art. 31.2.c).
    pub external_assessment: Option<NaiveDate>,
    /// The system is connected to the population database.
    pub population_db: bool,
}

/// What can be done to a change request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// The owner edits the draft.
    Edit,
    /// The owner submits it for evaluation.
    Submit,
    /// The owner withdraws it.
    Withdraw,
    /// A reviewer sends it back to the owner (back to draft, new round).
    RequestChanges {
        /// Why.
        note: String,
        /// What was found, each tracked until PA05 verifies it is fixed.
        findings: Vec<Finding>,
    },
    /// A reviewer signs off.
    SignOff(SignOff),
    /// A reviewer revokes an approval.
    Revoke {
        /// Why.
        reason: String,
    },
    /// The scheduler marks a lapsed approval expired.
    Expire,
}

impl Command {
    /// A short name for messages and the audit log.
    pub fn name(&self) -> &'static str {
        match self {
            Command::Edit => "edit",
            Command::Submit => "submit",
            Command::Withdraw => "withdraw",
            Command::RequestChanges { .. } => "request_changes",
            Command::SignOff(_) => "sign_off",
            Command::Revoke { .. } => "revoke",
            Command::Expire => "expire",
        }
    }
}

/// What a command did, for the audit log and notifications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Edited.
    Edited,
    /// Submitted (and, for a kind the pack does not evaluate, approved at once).
    Submitted,
    /// Withdrawn.
    Withdrawn,
    /// Sent back to draft.
    ChangesRequested,
    /// A sign-off was recorded; the state it reached.
    SignedOff(CrState),
    /// Revoked.
    Revoked,
    /// Expired.
    Expired,
}

/// Why a command was refused. Each maps to one stable code at the edge.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The actor's role or organisation may not do this at all.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Separation of duties forbids this person from this sign-off.
    #[error("separation of duties: {0}")]
    SeparationOfDuties(String),
    /// The change request is not in a state where this can happen.
    #[error("cannot {action} a change request that is {from}")]
    IllegalTransition {
        /// Current state.
        from: CrState,
        /// What was attempted.
        action: &'static str,
    },
    /// Something other than a change request is not in a state where this can happen.
    #[error("{0}")]
    WrongState(String),
    /// A major change's external assessment is not recorded yet.
    #[error("{0}")]
    ExternalAssessmentRequired(String),
    /// This reviewer already signed off in this round.
    #[error("this reviewer has already signed off this change request")]
    AlreadySigned,
    /// The input does not hold together.
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field.
        field: String,
        /// What is wrong.
        message: String,
    },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> Refusal {
    Refusal::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// Checks a free text field: not blank where required, at most `max` characters, no control
/// characters other than newlines and tabs.
pub fn check_text(field: &str, s: &str, max: usize, required: bool) -> Result<(), Refusal> {
    if required && s.trim().is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if s.chars().count() > max {
        return Err(invalid(field, format!("must be at most {max} characters")));
    }
    if s.chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// An emergency change needs a justification: why it cannot wait for the evaluation.
pub fn check_justification(kind: ChangeKind, description: &str) -> Result<(), Refusal> {
    if kind == ChangeKind::Emergency && description.trim().chars().count() < 20 {
        return Err(invalid(
            "description",
            "an emergency change needs a justification of at least 20 characters: why it cannot wait for the PA05 evaluation",
        ));
    }
    Ok(())
}

/// May this person file a change request for a system of `owner_org`?
pub fn may_file(actor: &Actor, owner_org: i64) -> Result<(), Refusal> {
    match actor {
        Actor::Person(p) if p.role == Role::Owner && p.org_id == owner_org => Ok(()),
        Actor::Person(p) if p.role == Role::Owner => Err(Refusal::Forbidden(
            "owners file changes only for their own organisation's systems".into(),
        )),
        _ => Err(Refusal::Forbidden(
            "only a system owner files change requests".into(),
        )),
    }
}

/// Is this person eligible to sign off this change? Encodes separation of duties.
pub fn eligible_reviewer(cr: &ChangeRequest, p: &Person) -> Result<(), Refusal> {
    if p.role != Role::Reviewer || p.org_kind != OrgKind::Reviewer {
        return Err(Refusal::Forbidden(
            "only a reviewer of a reviewing organisation (PA05) evaluates changes".into(),
        ));
    }
    if p.org_id == cr.owner_org {
        return Err(Refusal::SeparationOfDuties(
            "nobody from the system's owner organisation may evaluate its change".into(),
        ));
    }
    if p.id == cr.filed_by || cr.editors.contains(&p.id) {
        return Err(Refusal::SeparationOfDuties(
            "nobody who filed or edited a change may evaluate it".into(),
        ));
    }
    Ok(())
}

fn owner_of(cr: &ChangeRequest, actor: &Actor) -> Result<i64, Refusal> {
    match actor {
        Actor::Person(p) if p.role == Role::Owner && p.org_id == cr.owner_org => Ok(p.id),
        _ => Err(Refusal::Forbidden(
            "only an owner of the system's organisation may do this".into(),
        )),
    }
}

fn reviewer_of<'a>(cr: &ChangeRequest, actor: &'a Actor) -> Result<&'a Person, Refusal> {
    match actor {
        Actor::Person(p) => eligible_reviewer(cr, p).map(|()| p),
        Actor::System => Err(Refusal::Forbidden("only a person evaluates changes".into())),
    }
}

/// Checks a sign-off against the pack's checklist: one answer per item, no unknown or repeated
/// item, a note on every failed item, and no `pass` conclusion over a failed item.
pub fn check_sign_off(s: &SignOff, pack: &PolicyPack) -> Result<(), Refusal> {
    let mut seen = BTreeSet::new();
    for (i, r) in s.checklist.iter().enumerate() {
        if pack.item(&r.item).is_none() {
            return Err(invalid(
                format!("checklist[{i}].item"),
                format!("{:?} is not an item of the checklist", r.item),
            ));
        }
        if !seen.insert(r.item.as_str()) {
            return Err(invalid(
                format!("checklist[{i}].item"),
                format!("{:?} is answered twice", r.item),
            ));
        }
        check_text(
            &format!("checklist[{i}].note"),
            &r.note,
            4000,
            r.result == CheckResult::Fail,
        )?;
    }
    if let Some(missing) = pack
        .checklist
        .iter()
        .find(|it| !seen.contains(it.id.as_str()))
    {
        return Err(invalid(
            "checklist",
            format!(
                "item {:?} has no answer; every item needs pass, fail or na",
                missing.id
            ),
        ));
    }
    if s.conclusion == Conclusion::Pass && s.checklist.iter().any(|r| r.result == CheckResult::Fail)
    {
        return Err(invalid(
            "conclusion",
            "a change with a failed checklist item cannot pass",
        ));
    }
    check_findings(&s.findings, pack)?;
    for (i, c) in s.conditions.iter().enumerate() {
        check_text(&format!("conditions[{i}].text"), &c.text, 2000, true)?;
    }
    if s.conditions.len() > 100 {
        return Err(invalid("conditions", "at most 100 conditions"));
    }
    if s.conclusion == Conclusion::Fail && !s.conditions.is_empty() {
        return Err(invalid(
            "conditions",
            "conditions go with a pass; a failed evaluation lists findings",
        ));
    }
    Ok(())
}

/// Decree 331/2026 rules on a sign-off, as the pack sets them: a major change passes only once
/// its external assessment is recorded (Art. 31.2.c), and a change of a population-database
/// system says whether the owner's risk assessment was updated (Art. 10.2): pass or fail, not n/a.
pub fn check_assessments(
    cr: &ChangeRequest,
    s: &SignOff,
    pack: &PolicyPack,
) -> Result<(), Refusal> {
    if pack.changes.major_change_external_assessment
        && !cr.major_change.is_empty()
        && cr.external_assessment.is_none()
        && s.conclusion == Conclusion::Pass
    {
        let aspects: Vec<&str> = cr.major_change.iter().map(|a| a.as_str()).collect();
        return Err(Refusal::ExternalAssessmentRequired(format!(
            "a major change ({}) passes only after its external assessment is recorded",
            aspects.join(", ")
        )));
    }
    if cr.population_db
        && let Some(item) = &pack.changes.risk_assessment_item
        && s.checklist
            .iter()
            .any(|r| &r.item == item && r.result == CheckResult::Na)
    {
        return Err(invalid(
            "checklist",
            format!(
                "item {item:?}: a change of a population-database system says whether the owner's risk assessment was updated (pass or fail, not na)"
            ),
        ));
    }
    Ok(())
}

/// Checks the record of an external assessment: made on or before `today` and, when the change
/// was already signed off, on or before that sign-off.
pub fn check_external_assessment(
    assessed_on: NaiveDate,
    today: NaiveDate,
    signed_off_on: Option<NaiveDate>,
) -> Result<(), Refusal> {
    if assessed_on > today {
        return Err(invalid(
            "assessed_on",
            format!("{assessed_on} is in the future"),
        ));
    }
    if let Some(d) = signed_off_on
        && assessed_on > d
    {
        return Err(invalid(
            "assessed_on",
            format!(
                "{assessed_on} is after the sign-off ({d}): an assessment the sign-off relied on came before it"
            ),
        ));
    }
    Ok(())
}

/// Checks findings: text, at most 200, and an item that is one of the pack's checklist.
pub fn check_findings(findings: &[Finding], pack: &PolicyPack) -> Result<(), Refusal> {
    if findings.len() > 200 {
        return Err(invalid("findings", "at most 200 findings"));
    }
    for (i, f) in findings.iter().enumerate() {
        check_text(&format!("findings[{i}].text"), &f.text, 4000, true)?;
        if let Some(item) = &f.item
            && pack.item(item).is_none()
        {
            return Err(invalid(
                format!("findings[{i}].item"),
                format!("{item:?} is not an item of the checklist"),
            ));
        }
    }
    Ok(())
}

/// Checks a due date given by a reviewer: not before `today` (the server's local date).
pub fn check_due(
    field: &str,
    due: chrono::NaiveDate,
    today: chrono::NaiveDate,
) -> Result<(), Refusal> {
    if due < today {
        return Err(invalid(
            field,
            format!("{due} is in the past (today is {today})"),
        ));
    }
    if due > today + Duration::days(3650) {
        return Err(invalid(field, format!("{due} is more than ten years away")));
    }
    Ok(())
}

/// Applies a command. Returns the new change request and what happened, or why it was refused
/// (and then nothing changed).
pub fn apply(
    cr: &ChangeRequest,
    actor: &Actor,
    cmd: &Command,
    pack: &PolicyPack,
    now: DateTime<Utc>,
) -> Result<(ChangeRequest, Effect), Refusal> {
    use CrState::*;
    let illegal = |action| Refusal::IllegalTransition {
        from: cr.state,
        action,
    };
    let mut next = cr.clone();
    let effect = match (cr.state, cmd) {
        (Draft, Command::Edit) => {
            next.editors.insert(owner_of(cr, actor)?);
            Effect::Edited
        }
        (Draft, Command::Submit) => {
            next.editors.insert(owner_of(cr, actor)?);
            next.state = Submitted;
            if cr.kind == ChangeKind::Emergency && cr.emergency_until.is_none() {
                next.emergency_until =
                    Some(now + Duration::hours(i64::from(pack.emergency.window_hours)));
            }
            next.signoffs.clear();
            if !pack.requires_evaluation(cr.kind) {
                approve(&mut next, pack, now);
            }
            Effect::Submitted
        }
        (Draft | Submitted, Command::Withdraw) => {
            owner_of(cr, actor)?;
            if cr.emergency_until.is_some() {
                return Err(Refusal::Forbidden(
                    "an emergency change may already be deployed: it cannot be withdrawn, its retroactive evaluation must pass".into(),
                ));
            }
            next.state = Withdrawn;
            Effect::Withdrawn
        }
        (Submitted, Command::RequestChanges { note, findings }) => {
            reviewer_of(cr, actor)?;
            check_text("note", note, 4000, true)?;
            check_findings(findings, pack)?;
            next.state = Draft;
            next.round += 1;
            next.signoffs.clear();
            Effect::ChangesRequested
        }
        (Submitted, Command::SignOff(s)) => {
            let p = reviewer_of(cr, actor)?;
            if cr.signoffs.iter().any(|r| r.reviewer == p.id) {
                return Err(Refusal::AlreadySigned);
            }
            check_sign_off(s, pack)?;
            check_assessments(cr, s, pack)?;
            next.signoffs.push(SignOffRecord {
                reviewer: p.id,
                conclusion: s.conclusion,
                at: now,
            });
            if s.conclusion == Conclusion::Fail {
                next.state = Rejected;
            } else if passing_reviewers(&next) >= pack.level(cr.level).quorum as usize {
                approve(&mut next, pack, now);
            }
            Effect::SignedOff(next.state)
        }
        (Approved, Command::Revoke { reason }) => {
            match actor {
                Actor::Person(p) if p.role == Role::Reviewer && p.org_kind == OrgKind::Reviewer => {
                }
                _ => {
                    return Err(Refusal::Forbidden(
                        "only a PA05 reviewer revokes an approval".into(),
                    ));
                }
            }
            check_text("reason", reason, 4000, true)?;
            next.state = Revoked;
            Effect::Revoked
        }
        (Approved, Command::Expire) => {
            if actor != &Actor::System {
                return Err(Refusal::Forbidden("approvals expire by themselves".into()));
            }
            if cr.valid_until.is_some_and(|v| v > now) {
                return Err(illegal("expire (still valid)"));
            }
            next.state = Expired;
            Effect::Expired
        }
        (_, cmd) => return Err(illegal(cmd.name())),
    };
    Ok((next, effect))
}

fn passing_reviewers(cr: &ChangeRequest) -> usize {
    cr.signoffs
        .iter()
        .filter(|s| s.conclusion == Conclusion::Pass)
        .map(|s| s.reviewer)
        .collect::<BTreeSet<_>>()
        .len()
}

fn approve(cr: &mut ChangeRequest, pack: &PolicyPack, now: DateTime<Utc>) {
    cr.state = CrState::Approved;
    cr.approved_at = Some(now);
    cr.valid_until = Some(now + Duration::days(i64::from(pack.approval.validity_days)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::tests::PACK;
    use proptest::prelude::*;

    static PARSED: std::sync::LazyLock<PolicyPack> = std::sync::LazyLock::new(|| {
        PolicyPack::parse("population-db.toml", PACK).unwrap_or_else(|e| panic!("{e}"))
    });

    fn pack() -> PolicyPack {
        PARSED.clone()
    }

    const OWNER_ORG: i64 = 1;
    const PA05: i64 = 2;
    const OTHER_OWNER_ORG: i64 = 3;

    /// People in the test world: ids 1-3 owners of the system's org, 4-7 PA05 reviewers,
    /// 8 a reviewer-role user placed in the owner org, 9 an admin, 10 an owner of another org.
    fn person(id: i64) -> Person {
        let (org_id, org_kind, role) = match id {
            1..=3 => (OWNER_ORG, OrgKind::Owner, Role::Owner),
            4..=7 => (PA05, OrgKind::Reviewer, Role::Reviewer),
            8 => (OWNER_ORG, OrgKind::Reviewer, Role::Reviewer),
            9 => (PA05, OrgKind::Reviewer, Role::Admin),
            _ => (OTHER_OWNER_ORG, OrgKind::Owner, Role::Owner),
        };
        Person {
            id,
            org_id,
            org_kind,
            role,
        }
    }

    fn new_cr(level: u8, filed_by: i64) -> ChangeRequest {
        ChangeRequest {
            state: CrState::Draft,
            kind: ChangeKind::Software,
            level: SecurityLevel::new(i64::from(level)).unwrap_or_else(|e| panic!("{e}")),
            owner_org: OWNER_ORG,
            filed_by,
            editors: BTreeSet::from([filed_by]),
            round: 0,
            signoffs: vec![],
            approved_at: None,
            valid_until: None,
            emergency_until: None,
            major_change: BTreeSet::new(),
            external_assessment: None,
            population_db: true,
        }
    }

    #[test]
    fn a_major_change_passes_only_after_its_external_assessment() {
        let p = pack();
        let mut cr = new_cr(3, 1);
        cr.major_change = BTreeSet::from([MajorAspect::Architecture]);
        let cr = run(&cr, 1, Command::Submit).unwrap_or_else(|e| panic!("{e}"));
        let pass = Command::SignOff(full_sign_off(&p, Conclusion::Pass));
        assert!(matches!(
            run(&cr, 4, pass.clone()),
            Err(Refusal::ExternalAssessmentRequired(_))
        ));
        // PA05 may still reject it.
        let fail = Command::SignOff(full_sign_off(&p, Conclusion::Fail));
        assert_eq!(
            run(&cr, 4, fail).map(|c| c.state).ok(),
            Some(CrState::Rejected)
        );
        let assessed = ChangeRequest {
            external_assessment: NaiveDate::from_ymd_opt(2026, 11, 30),
            ..cr.clone()
        };
        assert_eq!(
            run(&assessed, 4, pass).map(|c| c.state).ok(),
            Some(CrState::Approved)
        );
    }

    #[test]
    fn a_population_database_change_answers_the_risk_assessment_item() {
        let p = pack();
        let cr = run(&new_cr(3, 1), 1, Command::Submit).unwrap_or_else(|e| panic!("{e}"));
        let mut s = full_sign_off(&p, Conclusion::Pass);
        for r in &mut s.checklist {
            if r.item == "risk-assessed" {
                r.result = CheckResult::Na;
            }
        }
        match run(&cr, 4, Command::SignOff(s.clone())) {
            Err(Refusal::Invalid { message, .. }) => assert!(message.contains("risk-assessed")),
            other => panic!("{other:?}"),
        }
        let other_system = ChangeRequest {
            population_db: false,
            ..cr
        };
        assert!(run(&other_system, 4, Command::SignOff(s)).is_ok());
    }

    #[test]
    fn an_external_assessment_after_the_sign_off_or_in_the_future_is_refused() {
        let d = |day| NaiveDate::from_ymd_opt(2026, 12, day).unwrap_or_default();
        assert!(check_external_assessment(d(1), d(2), None).is_ok());
        assert!(check_external_assessment(d(3), d(2), None).is_err());
        assert!(check_external_assessment(d(2), d(5), Some(d(2))).is_ok());
        assert!(check_external_assessment(d(3), d(5), Some(d(2))).is_err());
    }

    proptest! {
        /// Whatever the dates, an accepted assessment is never after today nor after the sign-off.
        #[test]
        fn an_accepted_external_assessment_is_never_after_today_or_the_sign_off(
            a in 0i64..800, t in 0i64..800, s in proptest::option::of(0i64..800),
        ) {
            let base = NaiveDate::from_ymd_opt(2025, 1, 1).unwrap_or_default();
            let day = |n: i64| base + Duration::days(n);
            let ok = check_external_assessment(day(a), day(t), s.map(day)).is_ok();
            prop_assert_eq!(ok, a <= t && s.is_none_or(|s| a <= s));
        }
    }

    #[test]
    fn an_emergency_change_gets_its_break_glass_window_once_and_cannot_be_withdrawn() {
        let mut cr = new_cr(3, 1);
        cr.kind = ChangeKind::Emergency;
        let cr = run(&cr, 1, Command::Submit).unwrap_or_else(|e| panic!("{e}"));
        let until = cr.emergency_until.unwrap_or_else(|| panic!("no window"));
        assert!(until > Utc::now() + Duration::hours(23));
        assert!(matches!(
            run(&cr, 1, Command::Withdraw),
            Err(Refusal::Forbidden(_))
        ));
        let back = run(
            &cr,
            4,
            Command::RequestChanges {
                note: "bổ sung".into(),
                findings: vec![],
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let again = run(&back, 1, Command::Submit).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            again.emergency_until,
            Some(until),
            "resubmitting does not extend the window"
        );
        assert!(check_justification(ChangeKind::Emergency, "gấp").is_err());
        assert!(check_justification(ChangeKind::Software, "").is_ok());
    }

    fn full_sign_off(p: &PolicyPack, conclusion: Conclusion) -> SignOff {
        SignOff {
            conclusion,
            checklist: p
                .checklist
                .iter()
                .map(|i| ItemResult {
                    item: i.id.clone(),
                    result: if conclusion == Conclusion::Pass {
                        CheckResult::Pass
                    } else {
                        CheckResult::Fail
                    },
                    note: "Đã kiểm tra".into(),
                })
                .collect(),
            findings: vec![],
            conditions: vec![],
        }
    }

    fn run(cr: &ChangeRequest, who: i64, cmd: Command) -> Result<ChangeRequest, Refusal> {
        apply(cr, &Actor::Person(person(who)), &cmd, &PARSED, Utc::now()).map(|(n, _)| n)
    }

    #[test]
    fn level_three_is_approved_by_one_passing_pa05_reviewer() {
        let p = pack();
        let cr = run(&new_cr(3, 1), 1, Command::Submit).unwrap_or_else(|e| panic!("{e}"));
        let cr = run(
            &cr,
            4,
            Command::SignOff(full_sign_off(&p, Conclusion::Pass)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cr.state, CrState::Approved);
        assert!(cr.valid_until.is_some());
    }

    #[test]
    fn level_four_needs_two_distinct_reviewers() {
        let p = pack();
        let cr = run(&new_cr(4, 1), 1, Command::Submit).unwrap_or_else(|e| panic!("{e}"));
        let cr = run(
            &cr,
            4,
            Command::SignOff(full_sign_off(&p, Conclusion::Pass)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cr.state, CrState::Submitted);
        assert_eq!(
            run(
                &cr,
                4,
                Command::SignOff(full_sign_off(&p, Conclusion::Pass))
            ),
            Err(Refusal::AlreadySigned)
        );
        let cr = run(
            &cr,
            5,
            Command::SignOff(full_sign_off(&p, Conclusion::Pass)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cr.state, CrState::Approved);
    }

    #[test]
    fn owner_cannot_sign_off_own_change() {
        let p = pack();
        let cr = run(&new_cr(3, 1), 1, Command::Submit).unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            run(
                &cr,
                1,
                Command::SignOff(full_sign_off(&p, Conclusion::Pass))
            ),
            Err(Refusal::Forbidden(_))
        ));
        assert!(matches!(
            run(
                &cr,
                8,
                Command::SignOff(full_sign_off(&p, Conclusion::Pass))
            ),
            Err(Refusal::SeparationOfDuties(_))
        ));
    }

    #[test]
    fn a_reviewer_who_edited_the_change_cannot_sign_it_off() {
        let p = pack();
        let mut cr = run(&new_cr(3, 1), 1, Command::Submit).unwrap_or_else(|e| panic!("{e}"));
        cr.editors.insert(4);
        assert!(matches!(
            run(
                &cr,
                4,
                Command::SignOff(full_sign_off(&p, Conclusion::Pass))
            ),
            Err(Refusal::SeparationOfDuties(_))
        ));
    }

    #[test]
    fn an_incomplete_checklist_is_refused_naming_the_missing_item() {
        let p = pack();
        let cr = run(&new_cr(3, 1), 1, Command::Submit).unwrap_or_else(|e| panic!("{e}"));
        let mut s = full_sign_off(&p, Conclusion::Pass);
        let dropped = s.checklist.remove(3).item;
        match run(&cr, 4, Command::SignOff(s)) {
            Err(Refusal::Invalid { message, .. }) => {
                assert!(message.contains(&dropped), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_pass_over_a_failed_item_is_refused() {
        let p = pack();
        let cr = run(&new_cr(3, 1), 1, Command::Submit).unwrap_or_else(|e| panic!("{e}"));
        let mut s = full_sign_off(&p, Conclusion::Pass);
        s.checklist[0].result = CheckResult::Fail;
        assert!(matches!(
            run(&cr, 4, Command::SignOff(s)),
            Err(Refusal::Invalid { .. })
        ));
    }

    #[test]
    fn requesting_changes_starts_a_new_round_where_old_sign_offs_do_not_count() {
        let p = pack();
        let cr = run(&new_cr(4, 1), 1, Command::Submit).unwrap_or_else(|e| panic!("{e}"));
        let cr = run(
            &cr,
            4,
            Command::SignOff(full_sign_off(&p, Conclusion::Pass)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let cr = run(
            &cr,
            5,
            Command::RequestChanges {
                note: "Bổ sung tài liệu".into(),
                findings: vec![],
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cr.state, CrState::Draft);
        let cr = run(&cr, 2, Command::Submit).unwrap_or_else(|e| panic!("{e}"));
        let cr = run(
            &cr,
            5,
            Command::SignOff(full_sign_off(&p, Conclusion::Pass)),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            cr.state,
            CrState::Submitted,
            "reviewer 4's pass was in the earlier round"
        );
    }

    fn command(kind: u8, p: &PolicyPack) -> Command {
        match kind % 8 {
            0 => Command::Edit,
            1 => Command::Submit,
            2 => Command::Withdraw,
            3 => Command::RequestChanges {
                note: "x".into(),
                findings: vec![],
            },
            4 | 5 => Command::SignOff(full_sign_off(p, Conclusion::Pass)),
            6 => Command::SignOff(full_sign_off(p, Conclusion::Fail)),
            _ => Command::Revoke { reason: "r".into() },
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// No sequence of events reaches `approved` without the quorum of passing sign-offs, in
        /// the current round, by distinct people who are PA05 reviewers outside the owner
        /// organisation and never filed or edited the change. Eligibility is computed here from
        /// the test world, independently of the domain's own check.
        #[test]
        fn no_sequence_reaches_approved_without_the_quorum_of_eligible_passes(
            level in 1u8..=5,
            steps in proptest::collection::vec((1i64..=10, 0u8..8), 1..40),
        ) {
            let p = pack();
            let quorum = p.level(SecurityLevel::new(i64::from(level)).unwrap_or_else(|e| panic!("{e}"))).quorum as usize;
            let mut cr = new_cr(level, 1);
            let mut touched: BTreeSet<i64> = BTreeSet::from([1]);
            let mut passes_this_round: BTreeSet<i64> = BTreeSet::new();
            for (who, k) in steps {
                let cmd = command(k, &p);
                let before = cr.clone();
                match run(&cr, who, cmd.clone()) {
                    Err(_) => prop_assert_eq!(&cr, &before),
                    Ok(next) => {
                        if matches!(cmd, Command::Edit | Command::Submit) { touched.insert(who); }
                        if matches!(cmd, Command::RequestChanges { .. }) { passes_this_round.clear(); }
                        if matches!(cmd, Command::Submit) { passes_this_round.clear(); }
                        if let Command::SignOff(s) = &cmd {
                            let q = person(who);
                            let eligible = q.role == Role::Reviewer && q.org_kind == OrgKind::Reviewer
                                && q.org_id != OWNER_ORG && !touched.contains(&who);
                            prop_assert!(eligible, "an ineligible person {who} signed off");
                            if s.conclusion == Conclusion::Pass { passes_this_round.insert(who); }
                        }
                        if next.state == CrState::Approved && before.state != CrState::Approved {
                            prop_assert!(passes_this_round.len() >= quorum,
                                "approved with {} eligible passes, quorum {quorum}", passes_this_round.len());
                        }
                        cr = next;
                    }
                }
            }
        }
    }
}

/// The normalised text a change request is searched by: its title and description in lower case
/// without Vietnamese diacritics ("Nâng cấp" is found by "nang cap"; đ/Đ become d).
pub fn search_text(title: &str, description: &str) -> String {
    crate::password::fold(&format!("{title}\n{description}"))
}

/// The words of a search, normalised like [`search_text`]; every word must occur.
pub fn search_words(q: &str) -> Vec<String> {
    crate::password::fold(q)
        .split_whitespace()
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod search_tests {
    use super::*;

    #[test]
    fn a_search_without_diacritics_finds_the_vietnamese_text() {
        let t = search_text("Nâng cấp Cổng dịch vụ công", "Đổi máy chủ ĐẮK LẮK");
        for w in search_words("nang CAP  cong") {
            assert!(t.contains(&w), "{w} in {t}");
        }
        assert!(t.contains("doi may chu dak lak"), "{t}");
        assert_eq!(search_words(" Nâng  cấp "), ["nang", "cap"]);
        assert!(!t.contains("nâng"));
    }
}
