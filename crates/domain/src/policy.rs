//! Policy packs: the rules a province can adjust without a new release, as data
//! (`workflows/*.toml`). A pack is parsed and validated at start-up; a bad pack is a
//! [`PolicyError`] naming the file, the line where it can, and the field.

use crate::change::ChangeKind;
use crate::ids::SecurityLevel;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A pack that could not be read or does not hold together.
#[derive(Debug, thiserror::Error)]
#[error("policy pack {file}: {message}")]
pub struct PolicyError {
    /// The file the pack came from.
    pub file: String,
    /// What is wrong, naming the field (and the line where known).
    pub message: String,
}

/// One checklist item of an evaluation.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ChecklistItem {
    /// Stable id (`no-default-passwords`).
    pub id: String,
    /// Group the item belongs to (`accounts`, `network`, …).
    pub group: String,
    /// Vietnamese text.
    pub vi: String,
    /// English text.
    pub en: String,
}

/// Rules per security level.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LevelRule {
    /// Distinct eligible reviewers whose passing sign-off approves a change.
    pub quorum: u32,
    /// Months between periodic re-reviews; 0 means no periodic re-review.
    pub re_review_months: u32,
}

/// What registering a population-database-connected system below the minimum level does.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum BelowMinimum {
    /// Registered, with a warning in the answer and the audit log.
    Warn,
    /// Refused.
    Refuse,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPack {
    pack: PackMeta,
    approval: Approval,
    registration: Registration,
    evaluation: Evaluation,
    reminders: Reminders,
    emergency: Emergency,
    incidents: Incidents,
    #[serde(default)]
    observations: Observations,
    #[serde(default)]
    remediation: Remediation,
    #[serde(default)]
    changes: Changes,
    #[serde(default)]
    legal: Legal,
    annual_report: crate::annual::AnnualReportRules,
    levels: BTreeMap<String, toml::Spanned<LevelRule>>,
    checklist: Vec<toml::Spanned<ChecklistItem>>,
}

/// Name and version of a pack.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackMeta {
    /// Stable id (`population-db`).
    pub id: String,
    /// Version of the pack's content.
    pub version: u32,
    /// Vietnamese name.
    pub name_vi: String,
    /// English name.
    pub name_en: String,
}

/// The pack a decision was made under: its id and version.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PackRef {
    /// Pack id.
    pub id: String,
    /// Pack version.
    pub version: u32,
}

/// How long an approval lasts.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approval {
    /// Days an approval stays valid after the sign-off that approved it.
    pub validity_days: u32,
}

/// Registration rules.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registration {
    /// Minimum level of a system connected to the population database (3 under TT 46/2022).
    pub population_db_min_level: u8,
    /// What happens below it.
    pub below_min_level: BelowMinimum,
}

/// Which changes need an evaluation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Evaluation {
    /// Change kinds that need a PA05 evaluation and sign-off before they deploy.
    pub required_for: BTreeSet<ChangeKind>,
}

/// Reminder offsets before a due date.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reminders {
    /// Days before a re-review falls due when owners and PA05 are reminded.
    pub days_before: Vec<u32>,
}

/// Break-glass rules.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Emergency {
    /// Hours an emergency change may deploy before its retroactive evaluation must pass.
    pub window_hours: u32,
}

/// Incident rules.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incidents {
    /// Severities of an open incident that close the gate.
    pub blocking_severities: BTreeSet<crate::change::Severity>,
    /// Hours to notify A05 of a personal-data breach, counted from its detection (Decree
    /// 356/2025).
    pub breach_notify_hours: u32,
    /// Hours from detection to the initial notice of a serious (high, critical) incident
    /// (Decree 331/2026, Art. 31.2.d; default 24).
    #[serde(default = "default_initial_notice_hours")]
    pub initial_notice_hours: u32,
    /// Hours from detection to the incident report (Decree 331/2026, Art. 31.2.d; default 72).
    #[serde(default = "default_report_hours")]
    pub report_hours: u32,
    /// Hours before a notice's deadline when its reminder goes out (default 6 and 1).
    #[serde(default = "default_notice_reminders")]
    pub notice_reminder_hours: Vec<u32>,
}

fn default_initial_notice_hours() -> u32 {
    24
}

fn default_report_hours() -> u32 {
    72
}

fn default_notice_reminders() -> Vec<u32> {
    vec![6, 1]
}

/// Observed content (`POST /api/v1/observations`).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Observations {
    /// Minutes after which a source that has reported before and has not reported since raises
    /// a signal (default 60).
    pub source_silence_minutes: u32,
}

impl Default for Observations {
    fn default() -> Self {
        Self {
            source_silence_minutes: 60,
        }
    }
}

/// Findings and conditions tracked to closure (`[remediation]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Remediation {
    /// Days from the sign-off to the due date of an item given no date, per severity.
    #[serde(default)]
    pub due_days: DueDays,
    /// Days before an item's due date when its owners are reminded.
    #[serde(default = "default_remediation_reminders")]
    pub reminder_days_before: Vec<u32>,
    /// Severities of an overdue, unverified condition that close the gate for its system.
    #[serde(default = "default_gate_closing")]
    pub gate_closing_severities: BTreeSet<crate::change::Severity>,
}

/// Days to the default due date, per severity.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DueDays {
    /// Low.
    pub low: u32,
    /// Medium.
    pub medium: u32,
    /// High.
    pub high: u32,
    /// Critical.
    pub critical: u32,
}

impl Default for DueDays {
    fn default() -> Self {
        Self {
            low: 90,
            medium: 90,
            high: 30,
            critical: 7,
        }
    }
}

impl DueDays {
    /// Days for a severity.
    pub fn of(&self, s: crate::change::Severity) -> u32 {
        use crate::change::Severity::*;
        match s {
            Low => self.low,
            Medium => self.medium,
            High => self.high,
            Critical => self.critical,
        }
    }
}

fn default_remediation_reminders() -> Vec<u32> {
    vec![7, 1]
}

fn default_gate_closing() -> BTreeSet<crate::change::Severity> {
    BTreeSet::from([
        crate::change::Severity::High,
        crate::change::Severity::Critical,
    ])
}

impl Default for Remediation {
    fn default() -> Self {
        Self {
            due_days: DueDays::default(),
            reminder_days_before: default_remediation_reminders(),
            gate_closing_severities: default_gate_closing(),
        }
    }
}

/// Decree 331/2026 rules on changes (`[changes]`); a pack without the table (version 1) asks
/// for neither.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Changes {
    /// Art. 31.2.c: a major change of function, scope, architecture or technology is assessed by
    /// a licensed or designated external organisation before it is signed off.
    #[serde(default)]
    pub major_change_external_assessment: bool,
    /// Art. 10.2: the checklist item that records whether the owner's risk assessment was
    /// updated; a change of a population-database system answers it pass or fail, never n/a.
    #[serde(default)]
    pub risk_assessment_item: Option<String>,
}

/// The legal texts a pack encodes (`[legal]`), shown on the "about the rules" page.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Legal {
    /// The texts, in the order shown.
    #[serde(default)]
    pub texts: Vec<LegalText>,
}

/// One legal text and what the pack takes from it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LegalText {
    /// Stable id (`decree-331-2026`).
    pub id: String,
    /// Its number and name, in Vietnamese (`Nghị định số 331/2026/NĐ-CP …`).
    pub title_vi: String,
    /// The same in English.
    pub title_en: String,
    /// The articles the pack relies on (`Điều 10.2, 31.2.c, 31.2.d`).
    #[serde(default)]
    pub articles: String,
    /// When it came into force (`2026-08-19`).
    pub in_force: chrono::NaiveDate,
    /// What the pack encodes from it, in Vietnamese.
    pub encodes_vi: String,
    /// The same in English.
    pub encodes_en: String,
}

/// A validated policy pack.
#[derive(Debug, Clone)]
pub struct PolicyPack {
    /// Name and version.
    pub meta: PackMeta,
    /// Approval validity.
    pub approval: Approval,
    /// Registration rules.
    pub registration: Registration,
    /// Which change kinds need an evaluation.
    pub evaluation: Evaluation,
    /// Reminder offsets.
    pub reminders: Reminders,
    /// Break-glass rules.
    pub emergency: Emergency,
    /// Incident rules.
    pub incidents: Incidents,
    /// Observed-content rules.
    pub observations: Observations,
    /// Findings and conditions: due dates, reminders, what closes the gate.
    pub remediation: Remediation,
    /// Major changes and risk assessments.
    pub changes: Changes,
    /// The legal texts it encodes.
    pub legal: Legal,
    /// The annual report (Form 08): due days and reminders.
    pub annual_report: crate::annual::AnnualReportRules,
    levels: [LevelRule; 5],
    /// The checklist, in order.
    pub checklist: Vec<ChecklistItem>,
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).map_or(0, |t| t.matches('\n').count()) + 1
}

impl PolicyPack {
    /// Parses and validates a pack. `file` names it in errors.
    pub fn parse(file: &str, text: &str) -> Result<Self, PolicyError> {
        let err = |message: String| PolicyError {
            file: file.to_owned(),
            message,
        };
        let raw: RawPack = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| format!("line {}: ", line_of(text, s.start)))
                .unwrap_or_default();
            err(format!("{line}{}", e.message()))
        })?;
        let mut levels = [LevelRule {
            quorum: 0,
            re_review_months: 0,
        }; 5];
        let mut named = [false; 5];
        for (key, rule) in &raw.levels {
            let at = line_of(text, rule.span().start);
            let level = SecurityLevel::parse(key).map_err(|_| {
                err(format!(
                    "line {at}: levels.{key}: a level is a whole number from 1 to 5"
                ))
            })?;
            // `3`, `03` and `"3 "` are different keys for the same level: with two of them, the
            // rule that applied was the one whose key sorts last, not the one a reader sees.
            if std::mem::replace(&mut named[usize::from(level.get() - 1)], true) {
                return Err(err(format!(
                    "line {at}: levels.{key}: level {level} is given twice"
                )));
            }
            let r = *rule.get_ref();
            if r.quorum == 0 || r.quorum > 9 {
                return Err(err(format!(
                    "line {at}: levels.{key}.quorum: must be from 1 to 9, not {}",
                    r.quorum
                )));
            }
            if r.re_review_months > 120 {
                return Err(err(format!(
                    "line {at}: levels.{key}.re_review_months: at most 120"
                )));
            }
            levels[usize::from(level.get() - 1)] = r;
        }
        if let Some(missing) = (1..=5).find(|l| levels[l - 1].quorum == 0) {
            return Err(err(format!(
                "levels.{missing}: every level from 1 to 5 needs a rule"
            )));
        }
        if raw.approval.validity_days == 0 || raw.approval.validity_days > 3650 {
            return Err(err("approval.validity_days: must be from 1 to 3650".into()));
        }
        if !(1..=5).contains(&raw.registration.population_db_min_level) {
            return Err(err(
                "registration.population_db_min_level: must be from 1 to 5".into(),
            ));
        }
        if raw.emergency.window_hours == 0 || raw.emergency.window_hours > 720 {
            return Err(err("emergency.window_hours: must be from 1 to 720".into()));
        }
        if raw.incidents.initial_notice_hours == 0
            || raw.incidents.report_hours == 0
            || raw.incidents.initial_notice_hours > raw.incidents.report_hours
        {
            return Err(err(
                "incidents: initial_notice_hours and report_hours must be at least 1, the initial notice not after the report".into(),
            ));
        }
        if raw
            .incidents
            .notice_reminder_hours
            .iter()
            .any(|h| *h == 0 || *h > 720)
        {
            return Err(err(
                "incidents.notice_reminder_hours: each must be from 1 to 720".into(),
            ));
        }
        if raw.incidents.breach_notify_hours == 0 {
            return Err(err(
                "incidents.breach_notify_hours: must be at least 1".into()
            ));
        }
        if raw
            .reminders
            .days_before
            .iter()
            .any(|d| *d == 0 || *d > 365)
        {
            return Err(err(
                "reminders.days_before: each offset must be from 1 to 365 days".into(),
            ));
        }
        if !(1..=10_080).contains(&raw.observations.source_silence_minutes) {
            return Err(err(
                "observations.source_silence_minutes: must be from 1 to 10080 (a week)".into(),
            ));
        }
        let d = raw.remediation.due_days;
        if [d.low, d.medium, d.high, d.critical]
            .iter()
            .any(|n| *n == 0 || *n > 3650)
        {
            return Err(err(
                "remediation.due_days: each must be from 1 to 3650 days".into(),
            ));
        }
        if raw
            .remediation
            .reminder_days_before
            .iter()
            .any(|d| *d == 0 || *d > 365)
        {
            return Err(err(
                "remediation.reminder_days_before: each offset must be from 1 to 365 days".into(),
            ));
        }
        let mut seen = BTreeSet::new();
        let mut checklist = Vec::with_capacity(raw.checklist.len());
        for item in raw.checklist {
            let at = line_of(text, item.span().start);
            let item = item.into_inner();
            let id_ok = !item.id.is_empty()
                && item.id.len() <= 64
                && item
                    .id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !id_ok {
                return Err(err(format!(
                    "line {at}: checklist.id: {:?} is not lowercase letters, digits and '-'",
                    item.id
                )));
            }
            if !seen.insert(item.id.clone()) {
                return Err(err(format!(
                    "line {at}: checklist.id: {:?} appears twice",
                    item.id
                )));
            }
            if item.vi.trim().is_empty() || item.en.trim().is_empty() {
                return Err(err(format!(
                    "line {at}: checklist {:?}: both vi and en text are needed",
                    item.id
                )));
            }
            checklist.push(item);
        }
        if checklist.is_empty() {
            return Err(err("checklist: at least one item is needed".into()));
        }
        if let Some(item) = &raw.changes.risk_assessment_item
            && !checklist.iter().any(|i| &i.id == item)
        {
            return Err(err(format!(
                "changes.risk_assessment_item: {item:?} is not an item of the checklist"
            )));
        }
        let mut ids = BTreeSet::new();
        for t in &raw.legal.texts {
            if t.id.trim().is_empty() || !ids.insert(t.id.as_str()) {
                return Err(err(format!(
                    "legal.texts: the id {:?} is blank or given twice",
                    t.id
                )));
            }
            if [&t.title_vi, &t.title_en, &t.encodes_vi, &t.encodes_en]
                .iter()
                .any(|x| x.trim().is_empty())
            {
                return Err(err(format!(
                    "legal.texts {:?}: title_vi, title_en, encodes_vi and encodes_en are needed",
                    t.id
                )));
            }
        }
        Ok(Self {
            meta: raw.pack,
            approval: raw.approval,
            registration: raw.registration,
            evaluation: raw.evaluation,
            reminders: raw.reminders,
            emergency: raw.emergency,
            incidents: raw.incidents,
            observations: raw.observations,
            remediation: raw.remediation,
            changes: raw.changes,
            legal: raw.legal,
            annual_report: raw.annual_report,
            levels,
            checklist,
        })
    }

    /// Rules for a level.
    pub fn level(&self, level: SecurityLevel) -> LevelRule {
        self.levels[usize::from(level.get() - 1)]
    }

    /// Whether a change of this kind needs an evaluation before it deploys.
    pub fn requires_evaluation(&self, kind: ChangeKind) -> bool {
        // A re-review is an evaluation: no pack can make it pass by itself.
        matches!(kind, ChangeKind::ReReview | ChangeKind::Reclassification)
            || self.evaluation.required_for.contains(&kind)
    }

    /// The pack's id and version, as every decision records them.
    pub fn pack_ref(&self) -> PackRef {
        PackRef {
            id: self.meta.id.clone(),
            version: self.meta.version,
        }
    }

    /// The checklist item with this id.
    pub fn item(&self, id: &str) -> Option<&ChecklistItem> {
        self.checklist.iter().find(|i| i.id == id)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) const PACK: &str = include_str!("../../../workflows/population-db.toml");

    #[test]
    fn the_default_pack_parses_with_about_twenty_items_in_both_languages() {
        let pack = PolicyPack::parse("population-db.toml", PACK);
        let pack = match pack {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        };
        assert!(pack.checklist.len() >= 18, "{}", pack.checklist.len());
        assert!(pack.item("no-default-passwords").is_some());
        assert!(pack.item("approved-access-only").is_some());
        assert_eq!(
            pack.level(SecurityLevel::new(3).ok().unwrap_or_else(|| unreachable!()))
                .quorum,
            1
        );
        assert_eq!(
            pack.level(SecurityLevel::new(5).ok().unwrap_or_else(|| unreachable!()))
                .quorum,
            2
        );
        assert_eq!(
            pack.level(SecurityLevel::new(5).ok().unwrap_or_else(|| unreachable!()))
                .re_review_months,
            6
        );
        assert_eq!(pack.approval.validity_days, 30);
    }

    #[test]
    fn version_2_encodes_the_2026_texts_and_keeps_circular_46_as_the_trigger() {
        let pack = PolicyPack::parse("population-db.toml", PACK).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pack.meta.version, 2);
        let ids: Vec<&str> = pack.legal.texts.iter().map(|t| t.id.as_str()).collect();
        for id in [
            "circular-46-2022",
            "law-116-2025",
            "decree-331-2026",
            "decree-356-2025",
        ] {
            assert!(ids.contains(&id), "{id} missing from {ids:?}");
        }
        assert!(!ids.contains(&"decree-85-2016") && !ids.contains(&"decree-13-2023"));
        assert!(!PACK.contains("Decree 85/2016,") && !PACK.contains("Decree 13/2023 Art"));
        assert!(pack.changes.major_change_external_assessment);
        assert_eq!(
            pack.changes.risk_assessment_item.as_deref(),
            Some("risk-assessed")
        );
        assert!(pack.item("risk-assessed").is_some());
    }

    #[test]
    fn a_version_1_pack_without_the_new_tables_still_parses() {
        let start = PACK.find("[changes]").unwrap_or(0);
        let end = PACK.find("[observations]").unwrap_or(0);
        let v1 =
            format!("{}{}", &PACK[..start], &PACK[end..]).replace("version = 2", "version = 1");
        let pack = PolicyPack::parse("v1.toml", &v1).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(pack.pack_ref().version, 1);
        assert!(!pack.changes.major_change_external_assessment);
        assert!(pack.legal.texts.is_empty());
    }

    #[test]
    fn a_risk_assessment_item_missing_from_the_checklist_is_refused() {
        let bad = PACK.replacen(
            "risk_assessment_item = \"risk-assessed\"",
            "risk_assessment_item = \"risk-assesed\"",
            1,
        );
        let e = PolicyPack::parse("p.toml", &bad)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("changes.risk_assessment_item"), "{e}");
    }

    #[test]
    fn an_unknown_field_is_named_with_its_line() {
        let bad = PACK.replacen("validity_days = 30", "validity_days = 30\nvalidty = 2", 1);
        let e = PolicyPack::parse("p.toml", &bad)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("p.toml") && e.contains("validty") && e.contains("line "),
            "{e}"
        );
    }

    #[test]
    fn a_level_given_twice_under_two_spellings_is_refused() {
        for key in ["\"5 \"", "\"05\"", "\"+5\""] {
            let bad = PACK.replacen(
                "[levels.5]",
                &format!("[levels.{key}]\nquorum = 1\nre_review_months = 0\n\n[levels.5]"),
                1,
            );
            let e = PolicyPack::parse("p.toml", &bad)
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(e.contains("level 5 is given twice"), "{key}: {e}");
        }
    }

    #[test]
    fn a_zero_quorum_is_refused_naming_the_field() {
        let bad = PACK.replacen("quorum = 2", "quorum = 0", 1);
        let e = PolicyPack::parse("p.toml", &bad)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains(".quorum"), "{e}");
    }
}
