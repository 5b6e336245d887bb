//! Incident clocks (Decree 331/2026, Art. 31.2.d; Decree 356/2025): the notices an incident
//! calls for and when each is due, counted from the incident's detection, not its report.
//!
//! - a serious (high, critical) incident: an initial notice within the pack's
//!   `initial_notice_hours` (24) of detection;
//! - one touching national security or public order: the initial notice "at once", that is by the
//!   time it is reported (never before the report);
//! - every incident: the report within `report_hours` (72) of detection;
//! - a personal-data breach: the notice to A05 within `breach_notify_hours` (72) of detection.
//!
//! Interim and final reports are recorded when sent; they start no clock of their own.

use crate::change::Severity;
use crate::policy::PolicyPack;
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

str_enum!(
    /// A notice about an incident.
    NoticeKind, "notice kind" {
        /// The initial notice (*thông báo ban đầu*).
        Initial = "initial",
        /// The incident report (*báo cáo sự cố*).
        Report = "report",
        /// An interim report.
        Interim = "interim",
        /// The final report, once it is handled.
        Final = "final",
        /// The notice of a personal-data breach to A05 (Decree 356/2025).
        A05 = "a05",
    }
);

str_enum!(
    /// What kind of incident it is. Stored and sent by these names.
    IncidentKind, "incident kind" {
        /// Malware found.
        Malware = "malware",
        /// A vulnerability or weakness found.
        Vulnerability = "vulnerability",
        /// Abnormal access (from unidentified IP addresses, shared accounts…).
        AbnormalAccess = "abnormal_access",
        /// A personal-data breach (Decree 356/2025): its notice to A05 is due within 72 hours.
        DataBreach = "data_breach",
        /// Anything else.
        Other = "other",
        /// Content observed running that no valid approval covers: opened by changegate
        /// itself (enforcement), never reported by a person.
        UnapprovedContent = "unapproved_content",
    }
);

impl IncidentKind {
    /// The kinds a person reports (all but [`IncidentKind::UnapprovedContent`]).
    pub const REPORTED: [IncidentKind; 5] = [
        IncidentKind::Malware,
        IncidentKind::Vulnerability,
        IncidentKind::AbnormalAccess,
        IncidentKind::DataBreach,
        IncidentKind::Other,
    ];

    /// The names of [`IncidentKind::REPORTED`], in that order.
    pub const REPORTED_NAMES: [&'static str; 5] = [
        IncidentKind::Malware.as_str(),
        IncidentKind::Vulnerability.as_str(),
        IncidentKind::AbnormalAccess.as_str(),
        IncidentKind::DataBreach.as_str(),
        IncidentKind::Other.as_str(),
    ];

    /// Parses the kind of an incident a person reports: one of [`IncidentKind::REPORTED`].
    pub fn parse_reported(s: &str) -> Result<Self, crate::ParseError> {
        match Self::parse(s) {
            Ok(k) if Self::REPORTED.contains(&k) => Ok(k),
            _ => Err(crate::ParseError {
                field: "incident kind",
                value: s.chars().take(80).collect(),
                expected: "one of malware, vulnerability, abnormal_access, data_breach, other",
            }),
        }
    }

    /// Whether it is a personal-data breach, with its notice to A05 and its breach record.
    pub fn is_breach(self) -> bool {
        self == IncidentKind::DataBreach
    }
}

/// The normalised text an incident is searched by: its summary in lower case without Vietnamese
/// diacritics, as [`crate::change::search_text`] does for change requests (search with
/// [`crate::change::search_words`]).
pub fn search_text(summary: &str) -> String {
    crate::password::fold(summary)
}

impl NoticeKind {
    /// Whether it is sent once (a second record of it is refused); interim reports may be many.
    pub fn once(self) -> bool {
        self != NoticeKind::Interim
    }
}

/// What the clocks need to know about an incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facts {
    /// When it was detected (at or before the report).
    pub detected_at: DateTime<Utc>,
    /// When it was reported to changegate.
    pub reported_at: DateTime<Utc>,
    /// How serious.
    pub severity: Severity,
    /// It touches national security or public order.
    pub national_security: bool,
    /// It is a personal-data breach.
    pub breach: bool,
}

/// One notice due, and by when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline {
    /// Which notice.
    pub kind: NoticeKind,
    /// By when.
    pub due: DateTime<Utc>,
}

/// The notices an incident calls for, each with its deadline.
pub fn deadlines(f: &Facts, pack: &PolicyPack) -> Vec<Deadline> {
    let hours = |h: u32| f.detected_at + Duration::hours(i64::from(h));
    let mut out = vec![];
    if f.national_security {
        out.push(Deadline {
            kind: NoticeKind::Initial,
            due: f.reported_at.max(f.detected_at),
        });
    } else if matches!(f.severity, Severity::High | Severity::Critical) {
        out.push(Deadline {
            kind: NoticeKind::Initial,
            due: hours(pack.incidents.initial_notice_hours),
        });
    }
    out.push(Deadline {
        kind: NoticeKind::Report,
        due: hours(pack.incidents.report_hours),
    });
    if f.breach {
        out.push(Deadline {
            kind: NoticeKind::A05,
            due: hours(pack.incidents.breach_notify_hours),
        });
    }
    out
}

/// Why a detection time is refused: in the future, or after the report.
pub fn check_detected(
    detected_at: DateTime<Utc>,
    reported_at: DateTime<Utc>,
) -> Result<(), String> {
    if detected_at > reported_at {
        return Err(format!(
            "{} is after the report ({}): an incident is detected before it is reported",
            detected_at.to_rfc3339(),
            reported_at.to_rfc3339()
        ));
    }
    if reported_at - detected_at > Duration::days(3650) {
        return Err("more than ten years before the report".into());
    }
    Ok(())
}

/// The fields of Decree 356/2025's notice of a personal-data breach that changegate knows, and
/// the reference of the confirmation record (*biên bản xác nhận*) drawn up about it. Each is
/// optional until the notice is sent; texts are kept exactly as given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreachRecord {
    /// What happened.
    pub description: Option<String>,
    /// The categories of personal data concerned.
    pub data_categories: Option<String>,
    /// About how many data subjects.
    pub subjects: Option<i64>,
    /// The likely consequences.
    pub consequences: Option<String>,
    /// The measures taken.
    pub measures: Option<String>,
    /// The confirmation record's number or reference.
    pub confirmation_ref: Option<String>,
}

/// Checks a breach record, naming each bad field: texts of at most 4000 characters (the
/// reference 200) without control characters but line breaks, a number of subjects from 0.
pub fn check_breach(b: &BreachRecord) -> Vec<(String, String)> {
    let mut errors = vec![];
    for (field, v, max) in [
        ("description", &b.description, 4000),
        ("data_categories", &b.data_categories, 4000),
        ("consequences", &b.consequences, 4000),
        ("measures", &b.measures, 4000),
        ("confirmation_ref", &b.confirmation_ref, 200),
    ] {
        if let Some(v) = v
            && let Err(e) = crate::change::check_text(field, v, max, false)
        {
            errors.push((format!("breach.{field}"), e.to_string()));
        }
    }
    if b.subjects.is_some_and(|n| n < 0) {
        errors.push((
            "breach.subjects".into(),
            "the number of data subjects is 0 or more".into(),
        ));
    }
    errors
}

impl fmt::Display for Deadline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} by {}", self.kind, self.due.to_rfc3339())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::tests::PACK;
    use proptest::prelude::*;

    fn pack() -> PolicyPack {
        PolicyPack::parse("population-db.toml", PACK).unwrap_or_else(|e| panic!("{e}"))
    }

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_790_000_000 + secs, 0).unwrap_or_default()
    }

    fn due(d: &[Deadline], k: NoticeKind) -> Option<DateTime<Utc>> {
        d.iter().find(|x| x.kind == k).map(|x| x.due)
    }

    #[test]
    fn a_serious_incident_detected_23_hours_before_its_report_has_one_hour_left() {
        let f = Facts {
            detected_at: at(0),
            reported_at: at(23 * 3600),
            severity: Severity::High,
            national_security: false,
            breach: true,
        };
        let d = deadlines(&f, &pack());
        assert_eq!(due(&d, NoticeKind::Initial), Some(at(24 * 3600)));
        assert_eq!(due(&d, NoticeKind::Report), Some(at(72 * 3600)));
        assert_eq!(
            due(&d, NoticeKind::A05),
            Some(at(72 * 3600)),
            "a breach's 72 hours count from detection"
        );
        let low = Facts {
            severity: Severity::Low,
            breach: false,
            ..f
        };
        let d = deadlines(&low, &pack());
        assert_eq!(due(&d, NoticeKind::Initial), None);
        assert_eq!(due(&d, NoticeKind::A05), None);
    }

    #[test]
    fn a_breach_record_names_each_bad_field() {
        let ok = BreachRecord {
            description: Some("Lộ dữ liệu\ntra cứu".into()),
            subjects: Some(0),
            ..BreachRecord::default()
        };
        assert!(check_breach(&ok).is_empty());
        let bad = BreachRecord {
            subjects: Some(-1),
            confirmation_ref: Some("x".repeat(201)),
            ..BreachRecord::default()
        };
        let fields: Vec<String> = check_breach(&bad).into_iter().map(|e| e.0).collect();
        assert_eq!(fields, ["breach.confirmation_ref", "breach.subjects"]);
    }

    #[test]
    fn a_person_reports_every_kind_but_unapproved_content() {
        for k in IncidentKind::ALL {
            assert_eq!(IncidentKind::parse(k.as_str()), Ok(*k));
            assert_eq!(
                IncidentKind::parse_reported(k.as_str()).is_ok(),
                *k != IncidentKind::UnapprovedContent,
                "{k}"
            );
        }
        assert_eq!(
            IncidentKind::REPORTED.map(IncidentKind::as_str),
            IncidentKind::REPORTED_NAMES
        );
        let e = IncidentKind::parse_reported("unapproved_content").unwrap_err();
        assert_eq!(e.value, "unapproved_content");
        assert!(e.expected.contains("data_breach") && !e.expected.contains("unapproved"));
        assert!(IncidentKind::parse("Malware").is_err());
        assert!(IncidentKind::DataBreach.is_breach() && !IncidentKind::Other.is_breach());
    }

    #[test]
    fn a_detection_after_the_report_is_refused() {
        assert!(check_detected(at(10), at(5)).is_err());
        assert!(check_detected(at(5), at(5)).is_ok());
    }

    proptest! {
        /// Every deadline is detection + the pack's hours, except "at once", which is the report
        /// itself: never before the report, never before the detection.
        #[test]
        fn deadlines_count_from_detection_and_at_once_is_never_before_the_report(
            detected in 0i64..1_000_000,
            delay in 0i64..500_000,
            sev in 0usize..4,
            national in any::<bool>(),
            breach in any::<bool>(),
        ) {
            let p = pack();
            let f = Facts {
                detected_at: at(detected),
                reported_at: at(detected + delay),
                severity: Severity::ALL[sev],
                national_security: national,
                breach,
            };
            let hours = |h: u32| f.detected_at + Duration::hours(i64::from(h));
            for d in deadlines(&f, &p) {
                match d.kind {
                    NoticeKind::Initial if national => prop_assert_eq!(d.due, f.reported_at),
                    NoticeKind::Initial => prop_assert_eq!(d.due, hours(p.incidents.initial_notice_hours)),
                    NoticeKind::Report => prop_assert_eq!(d.due, hours(p.incidents.report_hours)),
                    NoticeKind::A05 => prop_assert_eq!(d.due, hours(p.incidents.breach_notify_hours)),
                    other => prop_assert!(false, "no clock for {other}"),
                }
                prop_assert!(d.due >= f.detected_at);
            }
            let serious = national || matches!(f.severity, Severity::High | Severity::Critical);
            prop_assert_eq!(deadlines(&f, &p).iter().any(|d| d.kind == NoticeKind::Initial), serious);
        }
    }
}
