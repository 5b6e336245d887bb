//! The level record of a system and the annual report (Decree 331/2026/NĐ-CP, Art. 35–36,
//! Form 08, *Mẫu số 08*).
//!
//! The level record holds what columns 5–12 of Form 08's table ask about a system: its proposed
//! level, where its level approval stands (the four values of column 6), the level-approval
//! decision, the decision issuing its security rules, how far its security plan is deployed (the
//! three values of column 10) and the expected dates. Column 12 (checks done) is not typed: it is
//! derived from the evaluations changegate holds ([`checks_done`]).
//!
//! The report covers 15-12 of the previous year to 14-12 of its year ([`period`]); units report to
//! the owner before 20-12 and the owner to the Ministry of Public Security before 25-12: those
//! dates and the reminders before them are pack data ([`AnnualReportRules`]).

use crate::change::{ChangeKind, check_text};
use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;

str_enum!(
    /// Where a system's level approval stands (Form 08, column 6).
    ApprovalStatus, "level approval status" {
        /// *Đang dự thảo*: the level dossier is being drafted.
        Drafting = "drafting",
        /// *Đã gửi thẩm định*: sent for appraisal.
        SubmittedForAppraisal = "submitted_for_appraisal",
        /// *Đã thẩm định*: appraised.
        Appraised = "appraised",
        /// *Đã được phê duyệt*: the level is approved.
        Approved = "approved",
    }
);

str_enum!(
    /// How far the system's security plan is deployed (Form 08, column 10).
    PlanDeployment, "security plan deployment" {
        /// *Chưa triển khai*.
        NotDeployed = "not_deployed",
        /// *Đã triển khai một số hạng mục*.
        Partly = "partly_deployed",
        /// *Đã triển khai đầy đủ*.
        Fully = "fully_deployed",
    }
);

impl ApprovalStatus {
    /// The dossier has at least been appraised.
    pub fn appraised(self) -> bool {
        matches!(self, ApprovalStatus::Appraised | ApprovalStatus::Approved)
    }
}

/// A decision: its number, date and issuer (Form 08, columns 7 and 8).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    /// Number, e.g. `123/QĐ-UBND`.
    pub number: String,
    /// Date signed.
    pub date: NaiveDate,
    /// Who issued it.
    pub issuer: String,
}

/// What Form 08 asks about a system's level (columns 5–11).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LevelRecord {
    /// The proposed level, 1–5 (column 5).
    pub proposed_level: Option<u8>,
    /// Where the level approval stands (column 6).
    pub approval_status: Option<ApprovalStatus>,
    /// The level-approval decision (column 7).
    pub approval_decision: Option<Decision>,
    /// When approval is expected, if not approved (column 9).
    pub expected_approval_date: Option<NaiveDate>,
    /// The decision issuing the system's security rules (column 8).
    pub rules_decision: Option<Decision>,
    /// How far the security plan is deployed (column 10).
    pub plan_deployment: Option<PlanDeployment>,
    /// When full deployment is expected (column 11).
    pub plan_expected_date: Option<NaiveDate>,
}

/// What Form 08 section 2 asks about an organisation or its cybersecurity unit (*đơn vị chuyên
/// trách về an ninh mạng*).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contact {
    /// The unit's name (for the cybersecurity unit; the organisation's own name is its row's).
    #[serde(default)]
    pub name: String,
    /// The text that founded it and set its functions (*văn bản thành lập, quy định chức năng*).
    #[serde(default)]
    pub founding_text: String,
    /// Its representative.
    #[serde(default)]
    pub representative: String,
    /// The representative's title.
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

/// An organisation's details for Form 08 section 2.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgDetails {
    /// The organisation itself (its `name` field is unused: the organisation has its name).
    #[serde(default)]
    pub contact: Contact,
    /// For an owner: its cybersecurity unit.
    #[serde(default)]
    pub security_unit: Option<Contact>,
}

/// Checks a contact's fields, by field under `prefix`.
pub fn check_contact(prefix: &str, c: &Contact) -> Vec<(String, String)> {
    let mut errors = vec![];
    for (f, s, max) in [
        ("name", &c.name, 300),
        ("founding_text", &c.founding_text, 500),
        ("representative", &c.representative, 200),
        ("representative_title", &c.representative_title, 200),
        ("address", &c.address, 500),
        ("phone", &c.phone, 50),
        ("email", &c.email, 254),
    ] {
        if let Err(e) = check_text(f, s, max, false) {
            errors.push((format!("{prefix}{f}"), e.to_string()));
        }
    }
    if !c.phone.is_empty()
        && !c
            .phone
            .chars()
            .all(|ch| ch.is_ascii_digit() || " +-.()".contains(ch))
    {
        errors.push((
            format!("{prefix}phone"),
            "digits, spaces and + - . ( ) only".into(),
        ));
    }
    if !c.email.is_empty() {
        let ok = c.email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !c.email.chars().any(char::is_whitespace)
        });
        if !ok {
            errors.push((
                format!("{prefix}email"),
                format!("{:?} is not an e-mail address", c.email),
            ));
        }
    }
    errors
}

/// Checks a decision: number and issuer given, the date not after `today`.
pub fn check_decision(field: &str, d: &Decision, today: NaiveDate) -> Vec<(String, String)> {
    let mut errors = vec![];
    for (f, s, max) in [("number", &d.number, 100), ("issuer", &d.issuer, 300)] {
        if let Err(e) = check_text(f, s, max, true) {
            errors.push((format!("{field}.{f}"), e.to_string()));
        }
    }
    if d.date > today {
        errors.push((
            format!("{field}.date"),
            format!("{} is in the future", d.date),
        ));
    }
    if d.date.year() < 2000 {
        errors.push((format!("{field}.date"), "is before 2000".into()));
    }
    errors
}

/// Checks a level record against itself and today's date; every fault, by field.
pub fn check_level_record(r: &LevelRecord, today: NaiveDate) -> Vec<(String, String)> {
    let mut errors = vec![];
    if let Some(l) = r.proposed_level
        && !(1..=5).contains(&l)
    {
        errors.push((
            "proposed_level".into(),
            format!("{l} is not a level from 1 to 5"),
        ));
    }
    if let Some(d) = &r.approval_decision {
        errors.extend(check_decision("approval_decision", d, today));
    }
    if let Some(d) = &r.rules_decision {
        errors.extend(check_decision("rules_decision", d, today));
    }
    if r.approval_status == Some(ApprovalStatus::Approved) && r.approval_decision.is_none() {
        errors.push((
            "approval_decision".into(),
            "an approved level names its approval decision (number, date, issuer)".into(),
        ));
    }
    if r.approval_status == Some(ApprovalStatus::Approved) && r.proposed_level.is_none() {
        errors.push((
            "proposed_level".into(),
            "an approved level names the level".into(),
        ));
    }
    for (f, d) in [
        ("expected_approval_date", r.expected_approval_date),
        ("plan_expected_date", r.plan_expected_date),
    ] {
        if let Some(d) = d
            && !(2000..=2100).contains(&d.year())
        {
            errors.push((f.into(), format!("{d} is not a plausible date")));
        }
    }
    errors
}

/// Form 08 column 12: the checks done on a system.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecksDone {
    /// Checked before it was put into operation (*Trước khi đưa vào sử dụng*).
    pub before_operation: bool,
    /// Checked periodically (*Định kỳ*).
    pub periodic: bool,
}

/// One concluded evaluation of a system: what kind of change it was and when it concluded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Evaluated {
    /// The change's kind.
    pub kind: ChangeKind,
    /// When the evaluation concluded.
    pub on: NaiveDate,
}

/// Column 12 from the evaluations: a check before operation is an evaluation recorded at
/// registration (`taken_on_with_review`) or any concluded evaluation of a change other than the
/// periodic re-review, up to `to`; a periodic check is a concluded re-review from `from` to `to`.
pub fn checks_done(
    evaluations: &[Evaluated],
    taken_on_with_review: bool,
    from: Option<NaiveDate>,
    to: NaiveDate,
) -> ChecksDone {
    ChecksDone {
        before_operation: taken_on_with_review
            || evaluations
                .iter()
                .any(|e| e.kind != ChangeKind::ReReview && e.on <= to),
        periodic: evaluations.iter().any(|e| {
            e.kind == ChangeKind::ReReview && e.on <= to && from.is_none_or(|f| e.on >= f)
        }),
    }
}

/// The first year a report may be asked for.
pub const FIRST_YEAR: i32 = 2020;

/// Checks the year of a report asked for on `today`: from [`FIRST_YEAR`] to next year.
pub fn check_year(year: i32, today: NaiveDate) -> Result<(), String> {
    if year < FIRST_YEAR || year > today.year() + 1 {
        return Err(format!(
            "{year} is not a report year: from {FIRST_YEAR} to {}",
            today.year() + 1
        ));
    }
    Ok(())
}

/// The data period of the report of `year`: 15-12 of the previous year to 14-12 of `year`, both
/// included (Decree 331/2026, Art. 35).
pub fn period(year: i32) -> Option<(NaiveDate, NaiveDate)> {
    Some((
        NaiveDate::from_ymd_opt(year - 1, 12, 15)?,
        NaiveDate::from_ymd_opt(year, 12, 14)?,
    ))
}

/// A day of the year, written `MM-DD` in the pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayOfYear {
    /// Month, 1–12.
    pub month: u32,
    /// Day, 1–31 (valid in every year for the month).
    pub day: u32,
}

impl DayOfYear {
    /// Parses `MM-DD`.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a day of the year written MM-DD");
        let (m, d) = s.split_once('-').ok_or_else(bad)?;
        let (month, day) = (
            m.parse::<u32>().map_err(|_| bad())?,
            d.parse::<u32>().map_err(|_| bad())?,
        );
        // A day that exists in a leap year and a common year.
        NaiveDate::from_ymd_opt(2023, month, day).ok_or_else(bad)?;
        Ok(Self { month, day })
    }
    /// The date in `year`.
    pub fn in_year(self, year: i32) -> Option<NaiveDate> {
        NaiveDate::from_ymd_opt(year, self.month, self.day)
    }
}

impl fmt::Display for DayOfYear {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}-{:02}", self.month, self.day)
    }
}

impl Serialize for DayOfYear {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DayOfYear {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// The pack's `[annual_report]` section: when the reports are due, and the reminders before.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnualReportRules {
    /// Operating units and the cybersecurity unit report to the owner before this day (20-12).
    #[serde(default = "default_units_due")]
    pub units_due: DayOfYear,
    /// The owner reports to the Ministry of Public Security before this day (25-12).
    #[serde(default = "default_owner_due")]
    pub owner_due: DayOfYear,
    /// Days before each due day when the reminder is sent (the nearest reached, once each).
    #[serde(default = "default_report_reminders")]
    pub reminder_days_before: Vec<u32>,
}

fn default_units_due() -> DayOfYear {
    DayOfYear { month: 12, day: 20 }
}

fn default_owner_due() -> DayOfYear {
    DayOfYear { month: 12, day: 25 }
}

fn default_report_reminders() -> Vec<u32> {
    vec![10, 3]
}

impl Default for AnnualReportRules {
    fn default() -> Self {
        Self {
            units_due: default_units_due(),
            owner_due: default_owner_due(),
            reminder_days_before: default_report_reminders(),
        }
    }
}

str_enum!(
    /// Who must send the annual report, by when.
    ReportDue, "annual report due" {
        /// Units to the owner (before 20-12).
        UnitsToOwner = "units_to_owner",
        /// The owner to the Ministry of Public Security (before 25-12).
        OwnerToMinistry = "owner_to_ministry",
    }
);

/// A reminder the annual-report clock owes on `today`: which report, its due day, and the
/// offset (days before) it stands for. The nearest offset reached, before the due day only.
pub fn report_reminders(
    rules: &AnnualReportRules,
    today: NaiveDate,
) -> Vec<(ReportDue, NaiveDate, u32)> {
    let mut out = vec![];
    for (which, day) in [
        (ReportDue::UnitsToOwner, rules.units_due),
        (ReportDue::OwnerToMinistry, rules.owner_due),
    ] {
        let Some(due) = day.in_year(today.year()) else {
            continue;
        };
        if today >= due {
            continue;
        }
        let left = (due - today).num_days();
        if let Some(offset) = rules
            .reminder_days_before
            .iter()
            .copied()
            .filter(|d| left <= i64::from(*d))
            .min()
        {
            out.push((which, due, offset));
        }
    }
    out
}

/// A cell of a CSV file safe to open in a spreadsheet: text that would start a formula (`=`,
/// `+`, `-`, `@`, or a tab or carriage return before one) is prefixed with `'` (OWASP, CSV
/// injection).
pub fn csv_cell(s: &str) -> Cow<'_, str> {
    match s.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => Cow::Owned(format!("'{s}")),
        _ => Cow::Borrowed(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn decision(date: NaiveDate) -> Decision {
        Decision {
            number: "12/QĐ-UBND".into(),
            date,
            issuer: "UBND tỉnh".into(),
        }
    }

    #[test]
    fn the_period_runs_from_15_december_to_14_december() {
        assert_eq!(period(2026), Some((day(2025, 12, 15), day(2026, 12, 14))));
    }

    #[test]
    fn a_year_before_2020_or_after_next_year_is_refused() {
        let today = day(2026, 12, 2);
        assert!(check_year(2019, today).is_err());
        assert!(check_year(2020, today).is_ok());
        assert!(check_year(2027, today).is_ok());
        assert!(check_year(2028, today).is_err());
    }

    #[test]
    fn a_decision_dated_in_the_future_or_an_approval_without_decision_is_refused() {
        let today = day(2026, 12, 2);
        let mut r = LevelRecord {
            proposed_level: Some(3),
            approval_status: Some(ApprovalStatus::Approved),
            approval_decision: Some(decision(day(2026, 12, 3))),
            ..Default::default()
        };
        let e = check_level_record(&r, today);
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].0, "approval_decision.date");
        r.approval_decision = None;
        assert_eq!(
            check_level_record(&r, today)[0].0,
            "approval_decision",
            "approved without its decision"
        );
        r.approval_decision = Some(decision(today));
        assert!(check_level_record(&r, today).is_empty());
        r.proposed_level = Some(6);
        assert_eq!(check_level_record(&r, today)[0].0, "proposed_level");
    }

    #[test]
    fn checks_done_come_from_the_evaluations() {
        let ev = |kind, on| Evaluated { kind, on };
        let to = day(2026, 12, 14);
        let from = Some(day(2025, 12, 15));
        assert_eq!(checks_done(&[], false, from, to), ChecksDone::default());
        let c = checks_done(&[ev(ChangeKind::ReReview, day(2025, 1, 1))], true, from, to);
        assert!(
            c.before_operation && !c.periodic,
            "a re-review before the period"
        );
        let c = checks_done(
            &[
                ev(ChangeKind::Software, day(2026, 3, 1)),
                ev(ChangeKind::ReReview, day(2026, 6, 1)),
            ],
            false,
            from,
            to,
        );
        assert!(c.before_operation && c.periodic);
    }

    #[test]
    fn reminders_come_at_the_nearest_offset_before_each_due_day() {
        let rules = AnnualReportRules::default();
        assert!(report_reminders(&rules, day(2026, 12, 1)).is_empty());
        assert_eq!(
            report_reminders(&rules, day(2026, 12, 12)),
            vec![(ReportDue::UnitsToOwner, day(2026, 12, 20), 10)]
        );
        assert_eq!(
            report_reminders(&rules, day(2026, 12, 16)),
            vec![
                (ReportDue::UnitsToOwner, day(2026, 12, 20), 10),
                (ReportDue::OwnerToMinistry, day(2026, 12, 25), 10)
            ]
        );
        assert_eq!(
            report_reminders(&rules, day(2026, 12, 22)),
            vec![(ReportDue::OwnerToMinistry, day(2026, 12, 25), 3)]
        );
        assert!(report_reminders(&rules, day(2026, 12, 25)).is_empty());
    }

    #[test]
    fn a_day_of_the_year_parses_mm_dd_only() {
        assert_eq!(DayOfYear::parse("12-20").unwrap().to_string(), "12-20");
        for bad in ["12/20", "13-01", "02-30", "02-29", "x"] {
            assert!(DayOfYear::parse(bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn no_csv_cell_starts_a_formula(s in ".{0,20}") {
            let c = csv_cell(&s);
            prop_assert!(!c.starts_with(['=', '+', '-', '@', '\t', '\r']));
            prop_assert!(c.ends_with(s.as_str()));
        }

        #[test]
        fn every_status_and_deployment_name_parses_back(i in 0usize..4, j in 0usize..3) {
            let s = ApprovalStatus::ALL[i];
            prop_assert_eq!(ApprovalStatus::parse(s.as_str()), Ok(s));
            let d = PlanDeployment::ALL[j];
            prop_assert_eq!(PlanDeployment::parse(d.as_str()), Ok(d));
        }
    }
}
