//! The gate: may this exact content be deployed to this system and environment now?
//!
//! [`decide`] is a pure function of the query, the facts about the system and the change requests
//! whose subjects match the query. It allows only when every condition holds and otherwise denies
//! with every reason that applies. The caller fails closed: if it cannot gather the facts, it
//! denies without calling this function.

use crate::change::{ChangeKind, CrState};
use crate::ids::{ArtifactDigest, CommitId, EnvName, TreeId};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The content a pipeline wants to deploy. At least one of the git ids or the digest is set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateQuery {
    /// Target environment.
    pub env: EnvName,
    /// Git commit, if deploying from git.
    pub commit: Option<CommitId>,
    /// Git tree of that commit.
    pub tree: Option<TreeId>,
    /// Artifact digest, if deploying an artifact.
    pub artifact: Option<ArtifactDigest>,
}

impl GateQuery {
    fn asks_git(&self) -> bool {
        self.commit.is_some() || self.tree.is_some()
    }
}

str_enum!(
    /// Operating status of a system.
    SystemStatus, "system status" {
        /// In operation.
        Active = "active",
        /// Suspended: nothing deploys until an evaluation passes.
        Suspended = "suspended",
        /// Decommissioned.
        Retired = "retired",
    }
);

str_enum!(
    /// Whether an incident is still open.
    IncidentStatus, "incident status" {
        /// Reported, not yet resolved.
        Open = "open",
        /// Resolved.
        Resolved = "resolved",
    }
);

/// What the gate needs to know about the system.
#[derive(Debug, Clone, PartialEq)]
pub struct SystemFacts {
    /// Status.
    pub status: SystemStatus,
    /// The system's environments.
    pub environments: Vec<EnvName>,
    /// When its periodic re-review falls due, if it has one.
    pub next_review_due: Option<DateTime<Utc>>,
    /// Open incidents whose severity closes the gate (their ids).
    pub blocking_incidents: Vec<i64>,
    /// Freeze windows.
    pub freezes: Vec<Freeze>,
    /// Emergency changes that used break-glass.
    pub emergencies: Vec<EmergencyFacts>,
    /// When a change of the system was last approved (an evaluation passed).
    pub last_approval_at: Option<DateTime<Utc>>,
    /// Conditions not yet verified whose severity closes the gate once overdue: (item id, the
    /// instant it becomes overdue).
    pub gating_conditions: Vec<(i64, DateTime<Utc>)>,
}

/// An emergency change that was submitted (break-glass).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmergencyFacts {
    /// Change request id.
    pub id: i64,
    /// Its retroactive evaluation must pass before this.
    pub until: DateTime<Utc>,
    /// It has passed (approved).
    pub approved: bool,
}

/// When a freeze window applies.
#[derive(Debug, Clone, PartialEq)]
pub enum FreezeSpan {
    /// From `starts` to `ends`.
    Fixed {
        /// Start.
        starts: DateTime<Utc>,
        /// End.
        ends: DateTime<Utc>,
    },
    /// Starting at each occurrence of a cron pattern (in `tz`) and lasting `duration`.
    Recurring {
        /// Start pattern.
        cron: Box<croner::Cron>,
        /// Length of each window.
        duration: Duration,
        /// Time zone of the pattern.
        tz: chrono_tz::Tz,
    },
}

/// A freeze window: nothing but emergency changes deploys during it.
#[derive(Debug, Clone, PartialEq)]
pub struct Freeze {
    /// Id.
    pub id: i64,
    /// The environment it applies to (None: all).
    pub environment: Option<EnvName>,
    /// When.
    pub span: FreezeSpan,
    /// Why (`Tết`, `kỳ thi`).
    pub reason: String,
}

/// How long an allow holds: the approval's end, but no later than the next moment the gate would
/// deny on its own (a freeze window starting, the re-review falling due, a break-glass window
/// closing unevaluated), so that a signed allow never promises more than the gate honours.
fn allow_until(
    sys: &SystemFacts,
    env: &EnvName,
    approval_until: DateTime<Utc>,
    emergency: bool,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let mut until = approval_until;
    if let Some(due) = sys.next_review_due.filter(|d| *d > now) {
        until = until.min(due);
    }
    for (_, at) in sys.gating_conditions.iter().filter(|(_, at)| *at > now) {
        until = until.min(*at);
    }
    for e in sys
        .emergencies
        .iter()
        .filter(|e| !e.approved && e.until > now)
    {
        until = until.min(e.until);
    }
    if !emergency {
        for f in sys
            .freezes
            .iter()
            .filter(|f| f.environment.as_ref().is_none_or(|e| e == env))
        {
            if let Some(start) = f.next_start(now) {
                until = until.min(start);
            }
        }
    }
    until
}

impl Freeze {
    /// When it next begins after `now` (None for a fixed window already begun or past).
    pub fn next_start(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match &self.span {
            FreezeSpan::Fixed { starts, .. } => (*starts > now).then_some(*starts),
            FreezeSpan::Recurring { cron, tz, .. } => cron
                .find_next_occurrence(&now.with_timezone(tz), false)
                .ok()
                .map(|t| t.with_timezone(&Utc)),
        }
    }

    /// Whether it applies to `env` at `now`.
    pub fn active(&self, env: &EnvName, now: DateTime<Utc>) -> bool {
        if self.environment.as_ref().is_some_and(|e| e != env) {
            return false;
        }
        match &self.span {
            FreezeSpan::Fixed { starts, ends } => *starts <= now && now < *ends,
            FreezeSpan::Recurring { cron, duration, tz } => cron
                .find_previous_occurrence(&now.with_timezone(tz), true)
                .is_ok_and(|start| now < start.with_timezone(&Utc) + *duration),
        }
    }
}

/// Parses a 5-field cron pattern (minute hour day-of-month month day-of-week).
pub fn parse_cron(s: &str) -> Result<croner::Cron, crate::ParseError> {
    let err = || crate::ParseError {
        field: "cron",
        value: s.chars().take(80).collect(),
        expected: "a cron pattern of 5 fields: minute hour day-of-month month day-of-week",
    };
    if s.split_whitespace().count() != 5 {
        return Err(err());
    }
    s.parse::<croner::Cron>().map_err(|_| err())
}

/// A change request of the system with a subject matching the query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidateChange {
    /// Id.
    pub id: i64,
    /// State.
    pub state: CrState,
    /// Kind.
    pub kind: ChangeKind,
    /// Environments it covers.
    pub environments: Vec<EnvName>,
    /// End of the approval's validity.
    pub valid_until: Option<DateTime<Utc>>,
    /// For an emergency change: until when it may deploy without sign-off.
    pub emergency_until: Option<DateTime<Utc>>,
    /// The incident an emergency change remediates.
    pub remediates_incident: Option<i64>,
    /// It has a git subject whose commit or tree matches the query.
    pub matches_git: bool,
    /// It has an artifact subject whose digest matches the query.
    pub matches_artifact: bool,
}

/// Stable reason codes. CI pipelines depend on these strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReasonCode {
    /// No system has that code.
    UnknownSystem,
    /// The system is suspended.
    SystemSuspended,
    /// The system is retired.
    SystemRetired,
    /// An open incident of blocking severity.
    IncidentOpen,
    /// The periodic re-review is overdue.
    ReReviewOverdue,
    /// A condition of an approval, of a severity that closes the gate, is overdue and not yet
    /// verified by PA05.
    ConditionOverdue,
    /// Inside a freeze window.
    FreezeWindow,
    /// No approved change request covers the content.
    NoApprovedChange,
    /// A change request covering it waits for its evaluation.
    PendingEvaluation,
    /// The evaluation of a change request covering it failed.
    EvaluationFailed,
    /// The approval covering it has expired.
    ApprovalExpired,
    /// The approval covering it was revoked.
    ApprovalRevoked,
    /// The approval does not cover that environment.
    EnvironmentNotCovered,
    /// The server could not gather the facts; fail closed.
    GateUnavailable,
}

impl ReasonCode {
    /// The code's string.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::UnknownSystem => "unknown_system",
            ReasonCode::SystemSuspended => "system_suspended",
            ReasonCode::SystemRetired => "system_retired",
            ReasonCode::IncidentOpen => "incident_open",
            ReasonCode::ReReviewOverdue => "re_review_overdue",
            ReasonCode::ConditionOverdue => "condition_overdue",
            ReasonCode::FreezeWindow => "freeze_window",
            ReasonCode::NoApprovedChange => "no_approved_change",
            ReasonCode::PendingEvaluation => "pending_evaluation",
            ReasonCode::EvaluationFailed => "evaluation_failed",
            ReasonCode::ApprovalExpired => "approval_expired",
            ReasonCode::ApprovalRevoked => "approval_revoked",
            ReasonCode::EnvironmentNotCovered => "environment_not_covered",
            ReasonCode::GateUnavailable => "gate_unavailable",
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One reason for a denial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reason {
    /// Stable code.
    pub code: ReasonCode,
    /// A sentence for people.
    pub message: String,
}

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Allowed?
    pub allow: bool,
    /// Every reason that applies (empty when allowed).
    pub reasons: Vec<Reason>,
    /// The approved change request that lets it through.
    pub change_request: Option<i64>,
    /// Until when the allow holds.
    pub valid_until: Option<DateTime<Utc>>,
}

str_enum!(
    /// The gate's answer in one word, as a deployment records it.
    Verdict, "decision" {
        /// The content may deploy.
        Allow = "allow",
        /// It may not.
        Deny = "deny",
    }
);

impl Decision {
    /// The answer in one word.
    pub fn verdict(&self) -> Verdict {
        if self.allow {
            Verdict::Allow
        } else {
            Verdict::Deny
        }
    }

    /// A denial with one reason.
    pub fn deny(code: ReasonCode, message: impl Into<String>) -> Self {
        Self {
            allow: false,
            reasons: vec![Reason {
                code,
                message: message.into(),
            }],
            change_request: None,
            valid_until: None,
        }
    }
}

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Decides. `system` is `None` when no system has the queried code; `candidates` are the system's
/// change requests with a subject matching the query's commit, tree or digest.
pub fn decide(
    q: &GateQuery,
    system_code: &str,
    system: Option<&SystemFacts>,
    candidates: &[CandidateChange],
    now: DateTime<Utc>,
) -> Decision {
    let Some(sys) = system else {
        return Decision::deny(
            ReasonCode::UnknownSystem,
            format!("no system has the code {system_code:?}"),
        );
    };
    let mut reasons: Vec<Reason> = Vec::new();
    fn add(reasons: &mut Vec<Reason>, code: ReasonCode, message: String) {
        if !reasons.iter().any(|r| r.code == code) {
            reasons.push(Reason { code, message });
        }
    }
    macro_rules! say {
        ($code:expr, $msg:expr $(,)?) => {
            add(&mut reasons, $code, $msg)
        };
    }
    match sys.status {
        SystemStatus::Active => {}
        SystemStatus::Suspended => say!(
            ReasonCode::SystemSuspended,
            format!("system {system_code} is suspended")
        ),
        SystemStatus::Retired => say!(
            ReasonCode::SystemRetired,
            format!("system {system_code} is retired")
        ),
    }
    if !sys.environments.contains(&q.env) {
        say!(
            ReasonCode::EnvironmentNotCovered,
            format!(
                "system {system_code} has no environment {:?}",
                q.env.as_str()
            )
        );
    }
    // Decided once the approvals are known (an emergency change may remediate the incident);
    // listed here, in the order of the reasons.
    let incident_at = reasons.len();
    if let Some(due) = sys.next_review_due.filter(|d| *d <= now) {
        say!(
            ReasonCode::ReReviewOverdue,
            format!("the periodic re-review was due on {}", ts(due))
        );
    }
    let overdue: Vec<i64> = sys
        .gating_conditions
        .iter()
        .filter(|(_, at)| *at <= now)
        .map(|(id, _)| *id)
        .collect();
    if !overdue.is_empty() {
        say!(
            ReasonCode::ConditionOverdue,
            format!(
                "{} condition(s) of an approval are overdue and not verified by PA05 (remediation #{})",
                overdue.len(),
                overdue
                    .iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", #")
            )
        );
    }
    // Break-glass not followed by a passing evaluation in time suspends the system until an
    // evaluation of it passes.
    if let Some(e) = sys.emergencies.iter().find(|e| {
        e.until <= now && !e.approved && sys.last_approval_at.is_none_or(|a| a <= e.until)
    }) {
        say!(
            ReasonCode::SystemSuspended,
            format!(
                "emergency change {} was not evaluated and passed by {}; the system is suspended until an evaluation passes",
                e.id,
                ts(e.until)
            )
        );
    }

    type Matches = fn(&CandidateChange) -> bool;
    let mut groups: Vec<(&str, Matches)> = Vec::new();
    if q.asks_git() {
        groups.push(("git commit", |c| c.matches_git));
    }
    if q.artifact.is_some() {
        groups.push(("artifact", |c| c.matches_artifact));
    }
    if groups.is_empty() {
        say!(
            ReasonCode::NoApprovedChange,
            "no commit, tree or artifact digest was given".into()
        );
    }
    let mut approval: Option<(i64, DateTime<Utc>)> = None;
    let mut emergency_only = true;
    let mut remediated: Vec<i64> = Vec::new();
    for (what, matches) in groups {
        let covering = candidates.iter().filter(|c| matches(c));
        let valid = covering.clone().find_map(|c| {
            if !c.environments.contains(&q.env) {
                return None;
            }
            let approved = c.state == CrState::Approved && c.valid_until.is_some_and(|v| v > now);
            let break_glass = c.kind == ChangeKind::Emergency
                && c.state == CrState::Submitted
                && c.emergency_until.is_some_and(|v| v > now);
            match (approved, break_glass) {
                (true, _) => c.valid_until.map(|u| (c, u)),
                (false, true) => c.emergency_until.map(|u| (c, u)),
                _ => None,
            }
        });
        if let Some((c, until)) = valid {
            emergency_only &= c.kind == ChangeKind::Emergency;
            remediated.extend(
                c.remediates_incident
                    .filter(|_| c.kind == ChangeKind::Emergency),
            );
            if approval.is_none_or(|(_, u)| until < u) {
                approval = Some((c.id, until));
            }
            continue;
        }
        let before = reasons.len();
        for c in covering {
            let id = c.id;
            match c.state {
                // A change that cannot cover the environment says so, also while it waits for
                // its evaluation (waiting for it would be in vain).
                CrState::Approved | CrState::Expired | CrState::Submitted
                    if !c.environments.contains(&q.env) =>
                {
                    say!(
                        ReasonCode::EnvironmentNotCovered,
                        format!(
                            "change request {id} does not cover environment {:?}",
                            q.env.as_str()
                        ),
                    )
                }
                CrState::Approved | CrState::Expired => say!(
                    ReasonCode::ApprovalExpired,
                    format!(
                        "the approval of change request {id} expired{}",
                        c.valid_until
                            .map(|v| format!(" on {}", ts(v)))
                            .unwrap_or_default()
                    ),
                ),
                CrState::Revoked => say!(
                    ReasonCode::ApprovalRevoked,
                    format!("the approval of change request {id} was revoked")
                ),
                CrState::Submitted => say!(
                    ReasonCode::PendingEvaluation,
                    format!("change request {id} awaits its PA05 evaluation")
                ),
                CrState::Rejected => say!(
                    ReasonCode::EvaluationFailed,
                    format!("the evaluation of change request {id} failed")
                ),
                CrState::Draft | CrState::Withdrawn => {}
            }
        }
        if reasons.len() == before {
            say!(
                ReasonCode::NoApprovedChange,
                format!("no approved change request of {system_code} covers this {what}")
            );
        }
    }
    // An open blocking incident closes the gate, except to the emergency change that remediates it.
    let open: Vec<i64> = sys
        .blocking_incidents
        .iter()
        .copied()
        .filter(|id| !(approval.is_some() && emergency_only && remediated.contains(id)))
        .collect();
    if !open.is_empty() {
        reasons.insert(
            incident_at.min(reasons.len()),
            Reason {
                code: ReasonCode::IncidentOpen,
                message: format!(
                    "{} open incident(s) of high or critical severity (#{})",
                    open.len(),
                    open.iter()
                        .map(i64::to_string)
                        .collect::<Vec<_>>()
                        .join(", #")
                ),
            },
        );
    }
    // A freeze window holds everything but emergency changes.
    let emergency_allowed = approval.is_some() && emergency_only;
    if let Some(f) = sys
        .freezes
        .iter()
        .find(|f| f.active(&q.env, now))
        .filter(|_| !emergency_allowed)
    {
        say!(
            ReasonCode::FreezeWindow,
            format!("freeze window {} is in force: {}", f.id, f.reason)
        );
    }
    match (reasons.is_empty(), approval) {
        (true, Some((id, until))) => Decision {
            allow: true,
            reasons,
            change_request: Some(id),
            valid_until: Some(allow_until(sys, &q.env, until, emergency_only, now)),
        },
        _ => Decision {
            allow: false,
            reasons,
            change_request: None,
            valid_until: None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn env(s: &str) -> EnvName {
        EnvName::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }
    fn sys() -> SystemFacts {
        SystemFacts {
            status: SystemStatus::Active,
            environments: vec![env("production"), env("staging")],
            next_review_due: None,
            blocking_incidents: vec![],
            freezes: vec![],
            emergencies: vec![],
            last_approval_at: None,
            gating_conditions: vec![],
        }
    }
    fn query() -> GateQuery {
        GateQuery {
            env: env("production"),
            commit: CommitId::parse(&"a".repeat(40)).ok(),
            tree: None,
            artifact: None,
        }
    }
    fn cand(state: CrState, valid_days: i64) -> CandidateChange {
        CandidateChange {
            id: 7,
            state,
            kind: ChangeKind::Software,
            environments: vec![env("production")],
            valid_until: Some(Utc::now() + Duration::days(valid_days)),
            emergency_until: None,
            remediates_incident: None,
            matches_git: true,
            matches_artifact: false,
        }
    }
    fn codes(d: &Decision) -> Vec<&'static str> {
        d.reasons.iter().map(|r| r.code.as_str()).collect()
    }

    #[test]
    fn a_valid_approval_allows_and_names_the_change() {
        let d = decide(
            &query(),
            "S",
            Some(&sys()),
            &[cand(CrState::Approved, 10)],
            Utc::now(),
        );
        assert!(d.allow);
        assert_eq!(d.change_request, Some(7));
    }

    #[test]
    fn nothing_matching_denies_with_no_approved_change() {
        let d = decide(&query(), "S", Some(&sys()), &[], Utc::now());
        assert!(!d.allow);
        assert_eq!(codes(&d), ["no_approved_change"]);
    }

    #[test]
    fn unknown_system_denies() {
        assert_eq!(
            codes(&decide(&query(), "S", None, &[], Utc::now())),
            ["unknown_system"]
        );
    }

    #[test]
    fn every_applicable_reason_is_listed() {
        let mut s = sys();
        s.status = SystemStatus::Suspended;
        s.blocking_incidents = vec![4];
        s.next_review_due = Some(Utc::now() - Duration::days(1));
        let d = decide(
            &query(),
            "S",
            Some(&s),
            &[cand(CrState::Approved, 10)],
            Utc::now(),
        );
        assert!(!d.allow);
        assert_eq!(
            codes(&d),
            ["system_suspended", "incident_open", "re_review_overdue"]
        );
    }

    #[test]
    fn an_approval_past_its_validity_is_expired() {
        let d = decide(
            &query(),
            "S",
            Some(&sys()),
            &[cand(CrState::Approved, -1)],
            Utc::now(),
        );
        assert_eq!(codes(&d), ["approval_expired"]);
    }

    #[test]
    fn a_change_pending_for_another_environment_does_not_cover_this_one() {
        let mut q = query();
        q.env = env("staging");
        let d = decide(
            &q,
            "S",
            Some(&sys()),
            &[cand(CrState::Submitted, 10)],
            Utc::now(),
        );
        assert_eq!(codes(&d), ["environment_not_covered"]);
    }

    #[test]
    fn states_map_to_their_reasons() {
        for (state, code) in [
            (CrState::Submitted, "pending_evaluation"),
            (CrState::Rejected, "evaluation_failed"),
            (CrState::Revoked, "approval_revoked"),
            (CrState::Draft, "no_approved_change"),
        ] {
            assert_eq!(
                codes(&decide(
                    &query(),
                    "S",
                    Some(&sys()),
                    &[cand(state, 10)],
                    Utc::now()
                )),
                [code],
                "{state}"
            );
        }
    }

    #[test]
    fn another_environment_is_not_covered() {
        let mut q = query();
        q.env = env("staging");
        let d = decide(
            &q,
            "S",
            Some(&sys()),
            &[cand(CrState::Approved, 10)],
            Utc::now(),
        );
        assert_eq!(codes(&d), ["environment_not_covered"]);
    }

    #[test]
    fn both_git_and_artifact_must_be_covered() {
        let mut q = query();
        q.artifact = ArtifactDigest::parse(&format!("sha256:{}", "b".repeat(64))).ok();
        let d = decide(
            &q,
            "S",
            Some(&sys()),
            &[cand(CrState::Approved, 10)],
            Utc::now(),
        );
        assert!(!d.allow);
        assert_eq!(codes(&d), ["no_approved_change"]);
    }

    fn freeze(span: FreezeSpan) -> Freeze {
        Freeze {
            id: 3,
            environment: None,
            span,
            reason: "Tết Nguyên đán".into(),
        }
    }

    #[test]
    fn a_fixed_freeze_window_denies_all_but_emergency_changes() {
        let mut s = sys();
        let now = Utc::now();
        s.freezes.push(freeze(FreezeSpan::Fixed {
            starts: now - Duration::hours(1),
            ends: now + Duration::hours(1),
        }));
        let d = decide(&query(), "S", Some(&s), &[cand(CrState::Approved, 10)], now);
        assert_eq!(codes(&d), ["freeze_window"]);
        let mut e = cand(CrState::Submitted, 10);
        e.kind = ChangeKind::Emergency;
        e.emergency_until = Some(now + Duration::hours(2));
        assert!(decide(&query(), "S", Some(&s), &[e], now).allow);
        s.freezes[0] = freeze(FreezeSpan::Fixed {
            starts: now - Duration::hours(2),
            ends: now - Duration::hours(1),
        });
        assert!(decide(&query(), "S", Some(&s), &[cand(CrState::Approved, 10)], now).allow);
    }

    #[test]
    fn a_recurring_freeze_window_applies_only_during_its_duration() {
        let cron = parse_cron("0 8 * * *").unwrap_or_else(|e| panic!("{e}"));
        let tz = chrono_tz::Asia::Ho_Chi_Minh;
        let f = freeze(FreezeSpan::Recurring {
            cron: Box::new(cron),
            duration: Duration::hours(2),
            tz,
        });
        let at = |h: u32, m: u32| {
            chrono::TimeZone::with_ymd_and_hms(&tz, 2026, 11, 24, h, m, 0)
                .single()
                .unwrap_or_else(|| panic!())
                .with_timezone(&Utc)
        };
        let prod = env("production");
        assert!(!f.active(&prod, at(7, 59)));
        assert!(f.active(&prod, at(8, 0)));
        assert!(f.active(&prod, at(9, 59)));
        assert!(!f.active(&prod, at(10, 0)));
        assert!(parse_cron("every day").is_err());
        assert!(parse_cron("0 8 * * * *").is_err());
    }

    #[test]
    fn break_glass_allows_an_emergency_change_until_its_window_closes_then_suspends() {
        let now = Utc::now();
        let mut e = cand(CrState::Submitted, 10);
        e.kind = ChangeKind::Emergency;
        e.emergency_until = Some(now + Duration::hours(1));
        let d = decide(&query(), "S", Some(&sys()), &[e.clone()], now);
        assert!(d.allow);
        assert_eq!(d.valid_until, e.emergency_until);
        // Past the window, not evaluated: the emergency no longer allows and the system is suspended.
        let mut s = sys();
        s.emergencies.push(EmergencyFacts {
            id: 7,
            until: now - Duration::minutes(1),
            approved: false,
        });
        e.emergency_until = Some(now - Duration::minutes(1));
        let d = decide(
            &query(),
            "S",
            Some(&s),
            &[e, cand(CrState::Approved, 10)],
            now,
        );
        assert!(
            d.reasons
                .iter()
                .any(|r| r.code == ReasonCode::SystemSuspended),
            "{d:?}"
        );
        // An evaluation that passed afterwards lifts it.
        s.last_approval_at = Some(now);
        assert!(decide(&query(), "S", Some(&s), &[cand(CrState::Approved, 10)], now).allow);
    }

    #[test]
    fn an_emergency_change_remediating_the_open_incident_passes_and_nothing_else_does() {
        let now = Utc::now();
        let mut s = sys();
        s.blocking_incidents = vec![4];
        let mut e = cand(CrState::Submitted, 10);
        e.kind = ChangeKind::Emergency;
        e.emergency_until = Some(now + Duration::hours(1));
        e.remediates_incident = Some(4);
        assert!(decide(&query(), "S", Some(&s), &[e.clone()], now).allow);
        // Another incident still open: denied.
        s.blocking_incidents = vec![4, 5];
        assert_eq!(
            codes(&decide(&query(), "S", Some(&s), &[e.clone()], now)),
            ["incident_open"]
        );
        // An ordinary approved change: denied.
        s.blocking_incidents = vec![4];
        assert_eq!(
            codes(&decide(
                &query(),
                "S",
                Some(&s),
                &[cand(CrState::Approved, 10)],
                now
            )),
            ["incident_open"]
        );
        // An emergency change that remediates another incident: denied.
        e.remediates_incident = Some(9);
        assert_eq!(
            codes(&decide(&query(), "S", Some(&s), &[e], now)),
            ["incident_open"]
        );
    }

    #[test]
    fn an_allow_holds_only_until_the_gate_would_deny_by_itself() {
        let now = Utc::now();
        let mut s = sys();
        let approved = cand(CrState::Approved, 30);
        let full = decide(
            &query(),
            "S",
            Some(&s),
            std::slice::from_ref(&approved),
            now,
        )
        .valid_until;
        assert_eq!(full, approved.valid_until);
        // A freeze starting tomorrow ends the allow then.
        let tomorrow = now + Duration::days(1);
        s.freezes.push(freeze(FreezeSpan::Fixed {
            starts: tomorrow,
            ends: tomorrow + Duration::days(3),
        }));
        assert_eq!(
            decide(
                &query(),
                "S",
                Some(&s),
                std::slice::from_ref(&approved),
                now
            )
            .valid_until,
            Some(tomorrow)
        );
        // The re-review falling due in an hour ends it sooner.
        s.next_review_due = Some(now + Duration::hours(1));
        assert_eq!(
            decide(
                &query(),
                "S",
                Some(&s),
                std::slice::from_ref(&approved),
                now
            )
            .valid_until,
            s.next_review_due
        );
        // A freeze for another environment does not.
        let mut t = sys();
        t.freezes.push(Freeze {
            environment: Some(env("staging")),
            ..freeze(FreezeSpan::Fixed {
                starts: tomorrow,
                ends: tomorrow + Duration::days(1),
            })
        });
        assert_eq!(
            decide(
                &query(),
                "S",
                Some(&t),
                std::slice::from_ref(&approved),
                now
            )
            .valid_until,
            approved.valid_until
        );
    }

    #[test]
    fn a_query_without_any_subject_denies() {
        let mut q = query();
        q.commit = None;
        assert!(
            !decide(
                &q,
                "S",
                Some(&sys()),
                &[cand(CrState::Approved, 10)],
                Utc::now()
            )
            .allow
        );
    }
}
