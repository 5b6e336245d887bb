//! Wire types of enforcement beyond the pipeline file (issue 13): observed content.

use crate::{GateReason, WireSubject};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/v1/observations`: content observed running on a system (role `ci` or `observer`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewObservation {
    /// System code.
    pub system: String,
    /// Environment.
    pub env: String,
    /// Who observed it: a host name, a cluster (1–200 characters). A source that stops reporting
    /// raises a signal after the pack's interval.
    pub source: String,
    /// What runs there (1–100 subjects).
    pub subjects: Vec<WireSubject>,
    /// When it was observed (default: now).
    #[serde(default)]
    pub observed_at: Option<DateTime<Utc>>,
}

/// The gate's verdict on one observed subject.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ObservedSubject {
    /// The subject.
    pub subject: WireSubject,
    /// Whether a valid approval covers it for the environment.
    pub covered: bool,
    /// The approved change request covering it.
    pub change_request: Option<i64>,
    /// Why it is not covered (empty when covered).
    pub reasons: Vec<GateReason>,
}

/// A recorded observation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Observation {
    /// Id.
    pub id: i64,
    /// System code.
    pub system: String,
    /// Environment.
    pub env: String,
    /// Source.
    pub source: String,
    /// The subjects with the gate's verdict on each.
    pub subjects: Vec<ObservedSubject>,
    /// Some subject is not covered by a valid approval.
    pub unapproved: bool,
    /// The `unapproved_content` incident naming this content (opened now or before).
    pub incident: Option<i64>,
    /// Whether this observation opened that incident.
    pub incident_opened: bool,
    /// When it was observed.
    pub observed_at: DateTime<Utc>,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
}

/// A source of observations.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct ObservationSource {
    /// System code.
    pub system: String,
    /// Environment.
    pub env: String,
    /// Source.
    pub source: String,
    /// When it last observed.
    pub last_observed_at: DateTime<Utc>,
    /// Since when its silence has been signalled (none while it reports in time).
    pub silent_since: Option<DateTime<Utc>>,
}
