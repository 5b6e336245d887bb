//! Notifications' bookkeeping: where a webhook delivery stands, and which reminder (sent once
//! per subject, due date and offset) a reminder row records.

use serde::{Deserialize, Serialize};
use std::fmt;

str_enum!(
    /// Where a webhook delivery stands.
    DeliveryStatus, "delivery status" {
        /// Waiting for its (next) attempt.
        Pending = "pending",
        /// Delivered.
        Delivered = "delivered",
        /// Given up after a day of retries, or undeliverable (its webhook is gone).
        Failed = "failed",
    }
);

str_enum!(
    /// What a reminder row is about: each is sent once per subject, due date and offset.
    ReminderKind, "reminder kind" {
        /// A system's periodic re-review falls due.
        ReReview = "re_review",
        /// The 72-hour clock of a personal-data breach notice.
        Breach = "breach",
        /// An approval expires.
        Approval = "approval",
        /// A remediation item falls due, or is overdue.
        Remediation = "remediation",
        /// An incident's initial notice falls due.
        IncidentInitial = "incident_initial",
        /// An incident's report falls due.
        IncidentReport = "incident_report",
        /// The annual report falls due.
        AnnualReport = "annual_report",
    }
);
