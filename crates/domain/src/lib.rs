//! changegate-domain: the pure rules of changegate.
//!
//! Owns ids and newtypes that parse outside input (`parse` refuses what is invalid, so an invalid
//! value cannot exist past the edge), security levels and roles, the change-request state machine
//! with separation of duties and quorum, the policy pack, the gate decision function and the
//! audit hash chain.
//!
//! It must not do IO, be async, or know sea-orm or axum. Errors are `thiserror` enums.

#[macro_use]
pub mod change;
pub mod annual;
pub mod audit;
pub mod enforce;
pub mod gate;
pub mod ids;
pub mod incident;
pub mod notify;
pub mod password;
pub mod policy;
pub mod remediation;
pub mod roles;

pub use change::{
    Actor, ChangeKind, ChangeRequest, CheckResult, Command, ComponentKind, Conclusion, Condition,
    CrState, Effect, Finding, ItemResult, MajorAspect, Refusal, Severity, SignOff, SignOffRecord,
};
pub use gate::{CandidateChange, Decision, GateQuery, Reason, ReasonCode, SystemFacts};
pub use ids::{
    ArtifactDigest, Code, CommitId, EnvName, ParseError, SecurityLevel, Subject, TreeId, Username,
};
pub use policy::{PackRef, PolicyError, PolicyPack};
pub use roles::{
    Account, AccountChange, AccountRefusal, AccountStatus, OrgKind, Role, check_account_change,
};

/// A closed set of values with one name each: how a state, kind or role is written on the wire
/// and in the database. The store keeps such values as text through this trait alone.
pub trait StrEnum: Copy + Sized + Send + Sync + 'static {
    /// The value's name.
    fn name(self) -> &'static str;
    /// The value of a name.
    fn from_name(s: &str) -> Result<Self, ParseError>;
}
