//! Wire types of the level record, the organisations' Form 08 details and the annual report
//! (Decree 331/2026/NĐ-CP, Form 08).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A decision: number, date, issuer (Form 08 columns 7 and 8; a re-levelling's decision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LevelDecision {
    /// Number, e.g. `1234/QĐ-UBND`.
    pub number: String,
    /// Date signed (not in the future).
    pub date: NaiveDate,
    /// Issuer, e.g. `Ủy ban nhân dân tỉnh`.
    pub issuer: String,
}

/// A system's level record (Form 08 columns 5–11). `PUT /api/v1/systems/{code}/level-record`
/// replaces it whole; absent fields are blank.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LevelRecord {
    /// Proposed level, 1–5 (column 5).
    #[serde(default)]
    pub proposed_level: Option<i64>,
    /// `drafting`, `submitted_for_appraisal`, `appraised` or `approved` (column 6).
    #[serde(default)]
    pub approval_status: Option<String>,
    /// The level-approval decision (column 7); required when approved.
    #[serde(default)]
    pub approval_decision: Option<LevelDecision>,
    /// Expected approval date if not approved (column 9).
    #[serde(default)]
    pub expected_approval_date: Option<NaiveDate>,
    /// The decision issuing the system's security rules (column 8).
    #[serde(default)]
    pub rules_decision: Option<LevelDecision>,
    /// `not_deployed`, `partly_deployed` or `fully_deployed` (column 10).
    #[serde(default)]
    pub plan_deployment: Option<String>,
    /// Expected date of full deployment (column 11).
    #[serde(default)]
    pub plan_expected_date: Option<NaiveDate>,
}

/// Form 08 column 12, derived from the evaluations changegate holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChecksDone {
    /// Evaluated before operation (at registration, or a change evaluated by PA05).
    pub before_operation: bool,
    /// Evaluated by a periodic re-review.
    pub periodic: bool,
}

/// `POST /api/v1/systems/{code}/relevel`: re-levelling (*xác định lại cấp độ*) with its decision.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Relevel {
    /// The new level, 1–5.
    pub level: i64,
    /// The decision that set it.
    pub decision: LevelDecision,
    /// Why (kept in the audit log and the reclassification change).
    #[serde(default)]
    pub reason: String,
}

/// The answer to a re-levelling.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Relevelled {
    /// The system after it (with warnings, e.g. below the pack's minimum level).
    pub system: crate::System,
    /// The reclassification change opened for PA05 (population-database systems).
    pub change_request: Option<i64>,
}

/// Contact details of an organisation or its cybersecurity unit (Form 08 section 2).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// Name (of the cybersecurity unit; blank for the organisation itself).
    #[serde(default)]
    pub name: String,
    /// The text that founded it and set its functions.
    #[serde(default)]
    pub founding_text: String,
    /// Representative.
    #[serde(default)]
    pub representative: String,
    /// Representative's title.
    #[serde(default)]
    pub representative_title: String,
    /// Address.
    #[serde(default)]
    pub address: String,
    /// Telephone.
    #[serde(default)]
    pub phone: String,
    /// E-mail.
    #[serde(default)]
    pub email: String,
}

/// An organisation with its Form 08 details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OrganisationDetails {
    /// Code.
    pub code: String,
    /// Name.
    pub name: String,
    /// `owner`, `reviewer` or `inspector`.
    pub kind: String,
    /// The organisation's own details.
    pub contact: Contact,
    /// For an owner, its cybersecurity unit (*đơn vị chuyên trách về an ninh mạng*).
    pub security_unit: Option<Contact>,
}

/// `PATCH /api/v1/organisations/{code}` (admin): absent fields stay.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditOrganisation {
    /// Name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The organisation's details (replaced whole).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<Contact>,
    /// Its cybersecurity unit (replaced whole; owners only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_unit: Option<Contact>,
}

/// Form 08 section 1: counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReportSummary {
    /// Systems in scope (not retired).
    pub systems: u32,
    /// Classified: a proposed level is recorded.
    pub classified: u32,
    /// With a level dossier (any approval status).
    pub with_dossier: u32,
    /// Dossier appraised (appraised or approved).
    pub appraised: u32,
    /// Level approved.
    pub approved: u32,
    /// Level-approved systems checked periodically in the period.
    pub approved_checked_periodically: u32,
    /// Expected date by which all are approved (the latest expected approval date).
    pub all_approved_by: Option<NaiveDate>,
}

/// Form 08 section 3: one row per system (12 columns).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReportRow {
    /// (1) Number.
    pub no: u32,
    /// System code.
    pub code: String,
    /// (2) System name.
    pub name: String,
    /// (3) Owner organisation code.
    pub owner_org: String,
    /// (3) Owner organisation name.
    pub owner_name: String,
    /// (4) Operating unit.
    pub operating_unit: String,
    /// (5) Proposed level.
    pub proposed_level: Option<i64>,
    /// (6) Level approval status.
    pub approval_status: Option<String>,
    /// (7) Level-approval decision.
    pub approval_decision: Option<LevelDecision>,
    /// (8) Security rules decision.
    pub rules_decision: Option<LevelDecision>,
    /// (9) Expected approval date, if not approved.
    pub expected_approval_date: Option<NaiveDate>,
    /// (10) Security plan deployment.
    pub plan_deployment: Option<String>,
    /// (11) Expected date of full deployment.
    pub plan_expected_date: Option<NaiveDate>,
    /// (12) Checks done.
    pub checks_done: ChecksDone,
    /// The level the system is registered at now.
    pub level: i64,
}

/// A count by kind or severity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct KindCount {
    /// The kind (change kind).
    pub kind: String,
    /// How many.
    pub count: u32,
}

/// Incidents of one severity in the period, and their notices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct IncidentCount {
    /// `low`, `medium`, `high` or `critical`.
    pub severity: String,
    /// Incidents detected in the period.
    pub incidents: u32,
    /// Notices they called for (initial notice, report, A05 notice).
    pub notices_due: u32,
    /// Sent by their deadline.
    pub notices_on_time: u32,
    /// Sent late, or not sent and past their deadline.
    pub notices_late: u32,
}

/// What changegate knows beyond the form for the period.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReportActivity {
    /// Evaluations concluded in the period.
    pub evaluations: u32,
    /// Of which passed (*Đạt*).
    pub passed: u32,
    /// Of which failed (*Không đạt*).
    pub failed: u32,
    /// Changes evaluated, by kind.
    pub changes_evaluated: Vec<KindCount>,
    /// Incidents by severity.
    pub incidents: Vec<IncidentCount>,
    /// Remediation items still open at the end of the period.
    pub remediation_open: u32,
    /// Remediation items closed (verified) in the period.
    pub remediation_closed: u32,
    /// Of the open ones, past their due date at the end of the period.
    pub remediation_overdue: u32,
}

/// The annual report (Decree 331/2026, Form 08).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AnnualReport {
    /// Report year.
    pub year: i32,
    /// First day of the data period (15-12 of the previous year).
    pub period_from: NaiveDate,
    /// Last day of the data period (14-12 of the year).
    pub period_to: NaiveDate,
    /// When it was made.
    pub made_on: NaiveDate,
    /// The province (configuration `[documents] province`).
    pub province: String,
    /// The owner organisation it is for; none for the whole province.
    pub organisation: Option<OrganisationDetails>,
    /// Section 1.
    pub summary: ReportSummary,
    /// Section 2: the owners and their cybersecurity units.
    pub owners: Vec<OrganisationDetails>,
    /// Section 3.
    pub systems: Vec<ReportRow>,
    /// Beyond the form.
    pub activity: ReportActivity,
}
