use crate::codes::{Decision, ProblemCode, ReasonCode};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// An RFC 9457 problem document. Every error answer of the API is one.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Problem {
    /// A URI naming the problem type (`urn:changegate:problem:<code>`).
    #[serde(rename = "type")]
    pub type_: String,
    /// Short summary.
    pub title: String,
    /// HTTP status.
    pub status: u16,
    /// Stable machine-readable code.
    #[schema(value_type = String)]
    pub code: ProblemCode,
    /// What happened, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// Field errors of a validation failure.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// Present on gate errors: the gate failed closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub decision: Option<Decision>,
    /// The request's id (also in the `x-request-id` header and the server's log line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// One invalid field.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct FieldError {
    /// The field (`subjects[0].commit`).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// `GET /healthz`, `GET /readyz`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}

/// The gate's answer (`GET /api/v1/gate`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct GateDecision {
    /// `allow` or `deny`.
    #[schema(value_type = String)]
    pub decision: Decision,
    /// Every reason for a denial (empty on allow).
    pub reasons: Vec<GateReason>,
    /// The approved change request that allows it.
    pub change_request: Option<i64>,
    /// Until when an allow holds.
    pub valid_until: Option<DateTime<Utc>>,
    /// The system asked about.
    pub system: String,
    /// The environment asked about.
    pub environment: String,
    /// When the decision was made.
    pub decided_at: DateTime<Utc>,
    /// The decision, signed by the server: a DSSE envelope of an in-toto statement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attestation: Option<crate::attestation::Envelope>,
}

impl GateDecision {
    /// Whether the gate allowed.
    pub fn allowed(&self) -> bool {
        self.decision == Decision::Allow
    }
    /// The reason codes, in order.
    pub fn codes(&self) -> Vec<&str> {
        self.reasons.iter().map(|r| r.code.as_str()).collect()
    }
}

/// One reason of a denial.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct GateReason {
    /// Stable code (`pending_evaluation`, …).
    #[schema(value_type = String)]
    pub code: ReasonCode,
    /// A sentence for people.
    pub message: String,
}

/// Query of `GET /api/v1/gate`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GateParams {
    /// System code.
    pub system: String,
    /// Environment.
    pub env: String,
    /// Git commit id (40 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Git tree id (40 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tree: Option<String>,
    /// Artifact digest (`sha256:` + 64 hex digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
    /// Long-poll: hold the request up to this many seconds (at most 60) and answer as soon as
    /// the decision changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wait: Option<u32>,
    /// A fresh value of the asker (16 to 128 characters `A-Z a-z 0-9 - _`), repeated in the
    /// signed statement: an answer carrying it cannot have been captured before it was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
}

/// `POST /api/v1/organisations`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOrganisation {
    /// Code (`STNMT`).
    pub code: String,
    /// Name, e.g. `Sở Tài nguyên và Môi trường`.
    pub name: String,
    /// `owner`, `reviewer` or `inspector`.
    pub kind: String,
}

/// An organisation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Organisation {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: String,
}

/// `POST /api/v1/users`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    /// Username (one person).
    pub username: String,
    /// Full name, e.g. `Nguyễn Văn An`.
    pub display_name: String,
    /// Organisation code.
    pub org: String,
    /// `owner`, `reviewer`, `auditor`, `admin` or `ci`.
    pub role: String,
}

/// A user.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct User {
    /// Username.
    pub username: String,
    /// Full name.
    pub display_name: String,
    /// Organisation code.
    pub org: String,
    /// Role.
    pub role: String,
    /// Must set a new password at the next login.
    pub must_change_password: bool,
    /// Active.
    pub active: bool,
}

/// A new user with their one-time password, shown once.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedUser {
    /// The user.
    pub user: User,
    /// One-time password; must be changed at first login.
    pub one_time_password: String,
}

/// `POST /api/v1/tokens`: a token for oneself.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// What it is for (`gitlab-ci tthc`).
    pub name: String,
    /// Days until it expires (1-366, default 90).
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// A token, without its secret.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct TokenInfo {
    /// Public id (the part of the token before the secret).
    pub id: String,
    /// Name.
    pub name: String,
    /// Owner.
    pub username: String,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Expires.
    pub expires_at: DateTime<Utc>,
    /// Revoked, if so.
    pub revoked_at: Option<DateTime<Utc>>,
}

/// A new token; `token` is shown this once and stored only as a hash.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedToken {
    /// The token's details.
    pub info: TokenInfo,
    /// The secret token for `Authorization: Bearer`.
    pub token: String,
}

/// A hardware or software component of a system's inventory.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Component {
    /// `hardware` or `software`.
    pub kind: String,
    /// Name (`PostgreSQL`, `Máy chủ Dell R740`).
    pub name: String,
    /// Version or model.
    #[serde(default)]
    pub version: String,
}

/// `POST /api/v1/systems`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSystem {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Owner organisation code (*chủ quản*).
    pub owner_org: String,
    /// Operating unit (*đơn vị vận hành*).
    #[serde(default)]
    pub operating_unit: String,
    /// Security level 1-5.
    pub level: i64,
    /// Connected to the National Population Database.
    #[serde(default)]
    pub population_db: bool,
    /// Environments (`production`, `staging`); default `production`.
    #[serde(default)]
    pub environments: Vec<String>,
    /// Inventory.
    #[serde(default)]
    pub components: Vec<Component>,
    /// Date of the last evaluation, for a system taken on.
    #[serde(default)]
    pub last_review: Option<NaiveDate>,
}

/// A system.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct System {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Owner organisation code.
    pub owner_org: String,
    /// Operating unit.
    pub operating_unit: String,
    /// Level 1-5.
    pub level: u8,
    /// Connected to the population database.
    pub population_db: bool,
    /// Environments.
    pub environments: Vec<String>,
    /// Inventory.
    pub components: Vec<Component>,
    /// `active`, `suspended` or `retired`.
    pub status: String,
    /// Date of the last passing evaluation.
    pub last_evaluated_on: Option<NaiveDate>,
    /// When the periodic re-review falls due.
    pub next_review_due: Option<DateTime<Utc>>,
    /// Warnings raised at registration (a connected system below level 3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Form 08 columns 5–11, once recorded.
    #[serde(default)]
    pub level_record: Option<crate::LevelRecord>,
    /// Form 08 column 12, from the evaluations.
    #[serde(default)]
    pub checks_done: crate::ChecksDone,
}

/// `PATCH /api/v1/systems/{code}`: edit a system (admin); absent fields stay.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditSystem {
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Operating unit (*đơn vị vận hành*).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operating_unit: Option<String>,
    /// Environments; one that an open change request names cannot be removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<String>>,
    /// Connected to the National Population Database.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub population_db: Option<bool>,
}

/// `POST /api/v1/systems/{code}/retire`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Retirement {
    /// Why the system is retired (kept in the audit log).
    pub reason: String,
}

/// `GET /api/v1/systems`: one page of systems.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SystemList {
    /// Items, by code.
    pub items: Vec<System>,
    /// Page (from 1).
    pub page: u64,
    /// Items per page.
    pub per_page: u64,
    /// Items matching the filters, all pages.
    pub total: u64,
}

/// A subject of a change request: what content it covers.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum WireSubject {
    /// A git commit and its tree.
    GitCommit {
        /// 40 hex digits.
        commit: String,
        /// 40 hex digits.
        tree: String,
    },
    /// An artifact by digest.
    Artifact {
        /// `sha256:` + 64 hex digits.
        digest: String,
    },
}

/// An affected component, before and after the change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ComponentChange {
    /// Component name.
    pub name: String,
    /// Version or description before (empty when added).
    #[serde(default)]
    pub before: String,
    /// Version or description after (empty when removed).
    #[serde(default)]
    pub after: String,
}

/// `POST /api/v1/change-requests`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChangeRequest {
    /// System code.
    pub system: String,
    /// `hardware`, `software`, `configuration`, `network` or `emergency`.
    pub kind: String,
    /// Title.
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Environments it may deploy to (default: every environment of the system).
    #[serde(default)]
    pub environments: Vec<String>,
    /// Content it covers.
    #[serde(default)]
    pub subjects: Vec<WireSubject>,
    /// Affected components.
    #[serde(default)]
    pub components: Vec<ComponentChange>,
    /// The commits and changed files of the change (`changegate request --repo`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub git: Option<GitFacts>,
    /// For an emergency change: the open incident it remediates; it may then deploy while that
    /// incident is open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediates_incident: Option<i64>,
    /// What makes it a major change of the system (Decree 331/2026 Art. 31.2.c): any of
    /// `function`, `scope`, `architecture`, `technology`; empty or absent: not a major change.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub major_change: Vec<String>,
}

/// The git facts of a change: its range, commits and diffstat, for the reviewer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GitFacts {
    /// The range as resolved (`origin/main..HEAD`).
    pub range: String,
    /// Base commit.
    pub base: String,
    /// Head commit.
    pub head: String,
    /// Head commit's tree.
    pub head_tree: String,
    /// Commits, newest first.
    pub commits: Vec<GitCommit>,
    /// The commit or file list was cut.
    #[serde(default)]
    pub truncated: bool,
    /// Changed files.
    pub files: Vec<GitFile>,
    /// Files changed in all.
    pub files_changed: u32,
    /// Lines added in all.
    pub insertions: u32,
    /// Lines removed in all.
    pub deletions: u32,
}

/// A commit of a change.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GitCommit {
    /// Commit id.
    pub id: String,
    /// First line of the message.
    pub summary: String,
    /// `Name <email>`.
    pub author: String,
    /// Author time, Unix seconds.
    pub time: i64,
}

/// A changed file.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct GitFile {
    /// Path.
    pub path: String,
    /// Lines added.
    pub added: u32,
    /// Lines removed.
    pub removed: u32,
    /// Binary file.
    #[serde(default)]
    pub binary: bool,
}

/// `PATCH /api/v1/change-requests/{id}`: edit a draft; absent fields stay.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditChangeRequest {
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Environments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environments: Option<Vec<String>>,
    /// Subjects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subjects: Option<Vec<WireSubject>>,
    /// Components.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<ComponentChange>>,
    /// What makes it a major change (an empty list: not one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub major_change: Option<Vec<String>>,
}

/// A checklist item the evaluation must answer.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ChecklistItem {
    /// Stable id.
    pub item: String,
    /// Group.
    pub group: String,
    /// Vietnamese text.
    pub vi: String,
    /// English text.
    pub en: String,
}

/// One answer of a sign-off.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ItemAnswer {
    /// Checklist item id.
    pub item: String,
    /// `pass`, `fail` or `na`.
    pub result: String,
    /// Note (required on `fail`).
    #[serde(default)]
    pub note: String,
}

/// A finding.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WireFinding {
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// Text.
    pub text: String,
    /// The checklist item it concerns (an `item` id of the change's checklist).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
}

/// A condition attached to a pass: a plain text (severity medium, the pack's default due date)
/// or an object.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(untagged)]
pub enum WireCondition {
    /// Just the text.
    Text(String),
    /// Text, severity and due date.
    Full(ConditionSpec),
}

/// A condition with its severity and due date.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ConditionSpec {
    /// What the owner must do.
    pub text: String,
    /// `low`, `medium` (default), `high` or `critical`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<String>,
    /// By when, `YYYY-MM-DD` (default: the pack's number of days for the severity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "2027-01-15")]
    pub due: Option<String>,
}

impl From<&str> for WireCondition {
    fn from(s: &str) -> Self {
        WireCondition::Text(s.to_owned())
    }
}

impl WireCondition {
    /// The condition's text.
    pub fn text(&self) -> &str {
        match self {
            WireCondition::Text(t) => t,
            WireCondition::Full(c) => &c.text,
        }
    }
}

/// `POST /api/v1/change-requests/{id}/sign-off`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSignOff {
    /// `pass` or `fail`.
    pub conclusion: String,
    /// One answer per checklist item.
    pub checklist: Vec<ItemAnswer>,
    /// Findings.
    #[serde(default)]
    pub findings: Vec<WireFinding>,
    /// Conditions of a pass: each a text, or `{text, severity?, due?}`.
    #[serde(default)]
    pub conditions: Vec<WireCondition>,
    /// A current code from the reviewer's authenticator app (TOTP, RFC 6238), required when
    /// signing off through the API; each code is accepted once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "492039")]
    pub second_factor_code: Option<String>,
}

/// A recorded sign-off.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct SignOffView {
    /// Reviewer username.
    pub reviewer: String,
    /// Reviewer's full name.
    pub reviewer_name: String,
    /// Evaluation round.
    pub round: i32,
    /// `pass` or `fail`.
    pub conclusion: String,
    /// Answers.
    pub checklist: Vec<ItemAnswer>,
    /// Findings.
    pub findings: Vec<WireFinding>,
    /// Conditions, as given (a text, or `{text, severity?, due?}`).
    pub conditions: Vec<WireCondition>,
    /// When.
    pub at: DateTime<Utc>,
    /// The policy pack it was made under (id and version).
    #[serde(default)]
    pub pack: Option<PackRef>,
}

/// The policy pack a decision was made under.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct PackRef {
    /// Pack id (`population-db`).
    pub id: String,
    /// Pack version.
    pub version: u32,
}

/// `POST /api/v1/change-requests/{id}/external-assessment`: the assessment of a major change by
/// a licensed or designated external organisation (Decree 331/2026 Art. 31.2.c).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct NewExternalAssessment {
    /// The organisation that assessed the change.
    pub organisation: String,
    /// Its licence or designation (number, issuer).
    pub licence: String,
    /// The assessment report's reference.
    pub report_ref: String,
    /// The day of the assessment: not in the future, not after the sign-off.
    pub assessed_on: NaiveDate,
}

/// A recorded external assessment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ExternalAssessment {
    /// The organisation that assessed the change.
    pub organisation: String,
    /// Its licence or designation.
    pub licence: String,
    /// The assessment report's reference.
    pub report_ref: String,
    /// The day of the assessment.
    pub assessed_on: NaiveDate,
    /// Who recorded it (username).
    pub recorded_by: String,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// `PUT /api/v1/incidents/{id}/breach`: the fields of Decree 356/2025's notice of a personal-data
/// breach that changegate knows, and the confirmation record's reference. Kept exactly as given.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct BreachRecord {
    /// What happened.
    #[serde(default)]
    pub description: Option<String>,
    /// The categories of personal data concerned.
    #[serde(default)]
    pub data_categories: Option<String>,
    /// About how many data subjects.
    #[serde(default)]
    pub subjects: Option<i64>,
    /// The likely consequences.
    #[serde(default)]
    pub consequences: Option<String>,
    /// The measures taken.
    #[serde(default)]
    pub measures: Option<String>,
    /// The confirmation record's (biên bản xác nhận) number or reference.
    #[serde(default)]
    pub confirmation_ref: Option<String>,
}

/// `POST .../request-changes`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Note {
    /// Why.
    pub note: String,
    /// What was found; each finding becomes a remediation item of the owner's organisation.
    #[serde(default)]
    pub findings: Vec<WireFinding>,
}

/// The last round's conclusion of a change that PA05 sent back to its owner.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct SentBack {
    /// The round that was sent back.
    pub round: i32,
    /// Reviewer username.
    pub reviewer: String,
    /// Reviewer's full name.
    pub reviewer_name: String,
    /// The reviewer's note.
    pub note: String,
    /// The findings, each a remediation item.
    pub findings: Vec<Remediation>,
    /// When.
    pub at: DateTime<Utc>,
}

/// What changed in a change request since PA05 sent it back.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct FieldChange {
    /// `title`, `description`, `environments`, `components` or `subjects`.
    pub field: String,
    /// The value PA05 looked at (text, or JSON of a list).
    pub before: String,
    /// The value now.
    pub after: String,
    /// For lists: the entries added.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub added: Vec<String>,
    /// For lists: the entries removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed: Vec<String>,
}

/// One step in a remediation item's life.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct RemediationEvent {
    /// `raise`, `fulfil`, `verify`, `reopen`.
    pub action: String,
    /// Who (username), or `changegate` for the server.
    pub actor: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Evidence or note given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A finding or a condition tracked to closure.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Remediation {
    /// Id.
    pub id: i64,
    /// `finding` or `condition`.
    pub kind: String,
    /// System code.
    pub system: String,
    /// The owner organisation's code.
    pub organisation: String,
    /// The change request it was raised on.
    pub change_request: i64,
    /// The evaluation round it was raised in.
    pub round: i32,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// What was found or must be done.
    pub text: String,
    /// The checklist item it concerns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<String>,
    /// Due date (`YYYY-MM-DD`, the server's local date).
    #[schema(value_type = String, example = "2027-01-15")]
    pub due: NaiveDate,
    /// Past its due date and not verified.
    pub overdue: bool,
    /// Overdue now closes the gate for the system (a condition of a gate-closing severity).
    pub closes_gate: bool,
    /// `open`, `fulfilled`, `verified` or `reopened`.
    pub state: String,
    /// Who raised it (username).
    pub raised_by: String,
    /// When.
    pub raised_at: DateTime<Utc>,
    /// The owner's evidence of the last fulfilment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub evidence: Option<String>,
    /// Who fulfilled it last (username).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfilled_by: Option<String>,
    /// Who verified it (username).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_by: Option<String>,
    /// PA05's note of the last verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify_note: Option<String>,
    /// Every step, oldest first (in the answer about one item).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<RemediationEvent>,
}

/// A page of remediation items.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RemediationList {
    /// Items, soonest due first.
    pub items: Vec<Remediation>,
    /// Page (from 1).
    pub page: u64,
    /// Items per page.
    pub per_page: u64,
    /// Items matching the filters, all pages.
    pub total: u64,
}

/// `POST /api/v1/remediations/{id}/fulfil`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Fulfilment {
    /// What was done and how PA05 can check it (at most 10,000 characters); may name an artifact
    /// digest or a URL.
    pub evidence: String,
}

/// `POST /api/v1/remediations/{id}/verify`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    /// Accepted (the item is closed) or not (it is reopened).
    pub accepted: bool,
    /// Why (required when not accepted).
    #[serde(default)]
    pub note: String,
}

/// `POST .../revoke`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeReason {
    /// Why.
    pub reason: String,
}

/// A change request.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ChangeRequest {
    /// Id.
    pub id: i64,
    /// System code.
    pub system: String,
    /// Kind.
    pub kind: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// `draft`, `submitted`, `approved`, `rejected`, `withdrawn`, `expired`, `revoked`.
    pub state: String,
    /// Environments.
    pub environments: Vec<String>,
    /// Subjects.
    pub subjects: Vec<WireSubject>,
    /// Affected components.
    pub components: Vec<ComponentChange>,
    /// Who filed it.
    pub filed_by: String,
    /// Evaluation round.
    pub round: i32,
    /// Passing sign-offs needed.
    pub quorum: u32,
    /// Approved at.
    pub approved_at: Option<DateTime<Utc>>,
    /// Approval valid until.
    pub valid_until: Option<DateTime<Utc>>,
    /// An emergency change may deploy until then without sign-off (break-glass); its
    /// retroactive evaluation must pass by then.
    #[serde(default)]
    pub emergency_until: Option<DateTime<Utc>>,
    /// Commits and changed files, when filed from a repository.
    #[serde(default)]
    pub git: Option<GitFacts>,
    /// The incident an emergency change remediates.
    #[serde(default)]
    pub remediates_incident: Option<i64>,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Updated.
    pub updated_at: DateTime<Utc>,
    /// The checklist the evaluation must answer.
    pub checklist: Vec<ChecklistItem>,
    /// Sign-offs, every round.
    pub sign_offs: Vec<SignOffView>,
    /// What makes it a major change (`function`, `scope`, `architecture`, `technology`; Decree
    /// 331/2026 Art. 31.2.c); empty: not one.
    #[serde(default)]
    pub major_change: Vec<String>,
    /// Its external assessment, once recorded.
    #[serde(default)]
    pub external_assessment: Option<ExternalAssessment>,
    /// The evaluation record's number and year, assigned when its evaluation concluded.
    #[serde(default)]
    pub record_number: Option<i32>,
    /// The year of that number.
    #[serde(default)]
    pub record_year: Option<i32>,
    /// When PA05 sent it back to its owner and it is a draft again: that round's note and findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_back: Option<SentBack>,
    /// After PA05 sent it back: what the owner changed since, field by field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes_since_review: Vec<FieldChange>,
}

/// A page of change requests.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ChangeRequestList {
    /// Items, newest first.
    pub items: Vec<ChangeRequestSummary>,
    /// Page (from 1).
    #[serde(default)]
    pub page: u64,
    /// Items per page (`limit`, default 50).
    #[serde(default)]
    pub per_page: u64,
    /// Items matching the filters, all pages.
    #[serde(default)]
    pub total: u64,
}

/// A change request in a list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ChangeRequestSummary {
    /// Id.
    pub id: i64,
    /// System code.
    pub system: String,
    /// Kind.
    pub kind: String,
    /// Title.
    pub title: String,
    /// State.
    pub state: String,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// `POST /api/v1/systems/{code}/incidents`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    /// `malware`, `vulnerability`, `abnormal_access`, `data_breach` or `other`.
    pub kind: String,
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// What happened.
    pub summary: String,
    /// When it was detected (default: now); its notice clocks count from then. Not in the future.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detected_at: Option<DateTime<Utc>>,
    /// It touches national security or public order: the initial notice is due at once.
    #[serde(default)]
    pub national_security: bool,
}

/// A notice an incident calls for, and by when (Decree 331/2026 Art. 31.2.d; Decree 356/2025).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct IncidentDeadline {
    /// `initial`, `report` or `a05`.
    pub kind: String,
    /// By when.
    pub due: DateTime<Utc>,
    /// When the notice was sent, if it was.
    #[serde(default)]
    pub sent_at: Option<DateTime<Utc>>,
    /// Past due and not sent.
    pub overdue: bool,
}

/// A notice sent about an incident.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct IncidentNotice {
    /// `initial`, `report`, `interim`, `final` or `a05`.
    pub kind: String,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
    /// To whom (e.g. "Cục A05 – Bộ Công an").
    pub recipient: String,
    /// How (e.g. "văn bản", "email", "hệ thống báo cáo").
    pub channel: String,
    /// The document's number, if any.
    #[serde(default)]
    pub document_number: Option<String>,
    /// Who recorded it (username).
    pub recorded_by: String,
}

/// `POST /api/v1/incidents/{id}/notices`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIncidentNotice {
    /// `initial`, `report`, `interim`, `final` or `a05`.
    pub kind: String,
    /// When it was sent (default: now; not in the future, not before the detection).
    #[serde(default)]
    pub sent_at: Option<DateTime<Utc>>,
    /// To whom (1–300 characters).
    pub recipient: String,
    /// How (1–100 characters).
    pub channel: String,
    /// The document's number (at most 100 characters).
    #[serde(default)]
    pub document_number: Option<String>,
}

/// An incident.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Incident {
    /// Id.
    pub id: i64,
    /// System code.
    pub system: String,
    /// Kind.
    pub kind: String,
    /// Severity.
    pub severity: String,
    /// Summary.
    pub summary: String,
    /// `open` or `resolved`.
    pub status: String,
    /// Reporter.
    pub reported_by: String,
    /// Reported at.
    pub reported_at: DateTime<Utc>,
    /// Resolved at.
    pub resolved_at: Option<DateTime<Utc>>,
    /// For a personal-data breach: A05 must be notified by then, 72 hours from detection
    /// (Decree 356/2025).
    #[serde(default)]
    pub a05_deadline: Option<DateTime<Utc>>,
    /// When A05 was notified.
    #[serde(default)]
    pub a05_notified_at: Option<DateTime<Utc>>,
    /// When it was detected; the clocks count from then.
    #[serde(default)]
    pub detected_at: Option<DateTime<Utc>>,
    /// It touches national security or public order.
    #[serde(default)]
    pub national_security: bool,
    /// The notices it calls for, each with its deadline.
    #[serde(default)]
    pub deadlines: Vec<IncidentDeadline>,
    /// The notices sent, oldest first.
    #[serde(default)]
    pub notices: Vec<IncidentNotice>,
    /// A personal-data breach: the fields of its notice to A05 (Decree 356/2025).
    #[serde(default)]
    pub breach: Option<BreachRecord>,
}

/// `POST /api/v1/incidents/{id}/a05-notified`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct A05Notified {
    /// When A05 was notified (default: now).
    #[serde(default)]
    pub notified_at: Option<DateTime<Utc>>,
}

/// An audit event.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct AuditEvent {
    /// Position in the chain.
    pub seq: i64,
    /// When (RFC 3339, microseconds).
    pub at: String,
    /// Who.
    pub actor: String,
    /// The user id of a person.
    #[serde(default)]
    pub actor_id: Option<i64>,
    /// What.
    pub action: String,
    /// On what.
    pub entity: String,
    /// Which.
    pub entity_id: String,
    /// The system concerned.
    #[serde(default)]
    pub system_id: Option<i64>,
    /// JSON before.
    pub before: Option<String>,
    /// JSON after.
    pub after: Option<String>,
    /// Chain hash.
    pub hash: String,
}

/// A page of audit events.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    /// Events in order.
    pub events: Vec<AuditEvent>,
}

/// Who the token belongs to.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Me {
    /// Username.
    pub username: String,
    /// Full name.
    pub display_name: String,
    /// Role.
    pub role: String,
    /// Organisation code.
    pub org: String,
}

/// `POST /api/v1/deployments`: what was deployed where and when.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewDeployment {
    /// System code.
    pub system: String,
    /// Environment.
    pub environment: String,
    /// Git commit id.
    #[serde(default)]
    pub commit: Option<String>,
    /// Git tree id.
    #[serde(default)]
    pub tree: Option<String>,
    /// Artifact digest.
    #[serde(default)]
    pub artifact: Option<String>,
    /// When it was deployed (default: now).
    #[serde(default)]
    pub deployed_at: Option<DateTime<Utc>>,
}

/// A recorded deployment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Deployment {
    /// Id.
    pub id: i64,
    /// System code.
    pub system: String,
    /// Environment.
    pub environment: String,
    /// Git commit id.
    pub commit: Option<String>,
    /// Git tree id.
    pub tree: Option<String>,
    /// Artifact digest.
    pub artifact: Option<String>,
    /// The gate's decision for this content when it was recorded.
    pub decision: String,
    /// Reasons of a denial.
    pub reasons: Vec<GateReason>,
    /// The approving change request.
    pub change_request: Option<i64>,
    /// Deployed although the gate did not allow it.
    pub flagged: bool,
    /// Who recorded it.
    pub recorded_by: String,
    /// When it was deployed.
    pub deployed_at: DateTime<Utc>,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// `POST /api/v1/systems/{code}/freeze-windows`: a date range (`starts_at`, `ends_at`) or a
/// recurring window (`cron` for its start, in the server's time zone, and `duration_minutes`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewFreezeWindow {
    /// Environment (default: all).
    #[serde(default)]
    pub environment: Option<String>,
    /// Start of a date range.
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// End of a date range.
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// 5-field cron pattern of a recurring window's start (`0 18 * * 5`).
    #[serde(default)]
    pub cron: Option<String>,
    /// Length of each recurring window, in minutes.
    #[serde(default)]
    pub duration_minutes: Option<i32>,
    /// Why.
    pub reason: String,
}

/// A freeze window.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct FreezeWindow {
    /// Id.
    pub id: i64,
    /// System code.
    pub system: String,
    /// Environment (None: all).
    pub environment: Option<String>,
    /// Start of a date range.
    pub starts_at: Option<DateTime<Utc>>,
    /// End of a date range.
    pub ends_at: Option<DateTime<Utc>>,
    /// Cron pattern of a recurring window.
    pub cron: Option<String>,
    /// Length of a recurring window.
    pub duration_minutes: Option<i32>,
    /// Why.
    pub reason: String,
    /// In force (false once removed).
    pub active: bool,
}

/// `POST /api/v1/webhooks`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewWebhook {
    /// http(s) URL.
    pub url: String,
    /// Standard Webhooks secret: `whsec_` + base64 of 24-64 random bytes.
    pub secret: String,
    /// Event types, or `["*"]` for every event.
    pub events: Vec<String>,
}

/// A webhook (its secret is never shown).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Webhook {
    /// Id.
    pub id: i64,
    /// URL.
    pub url: String,
    /// Event types.
    pub events: Vec<String>,
    /// Receives deliveries.
    pub active: bool,
    /// Created.
    pub created_at: DateTime<Utc>,
}

/// A webhook delivery.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Delivery {
    /// Id.
    pub id: i64,
    /// Webhook id.
    pub webhook: i64,
    /// The `webhook-id` header (the same on every retry).
    pub msg_id: String,
    /// Event type.
    pub event: String,
    /// pending, delivered or failed.
    pub status: String,
    /// Attempts made.
    pub attempts: i32,
    /// Next attempt.
    pub next_attempt_at: DateTime<Utc>,
    /// Last error.
    pub last_error: Option<String>,
    /// Queued at.
    pub created_at: DateTime<Utc>,
    /// Delivered at.
    pub delivered_at: Option<DateTime<Utc>>,
}
