//! changegate-domain: the pure rules of changegate.
//!
//! Owns ids and newtypes that parse outside input (`parse` refuses what is invalid, so an invalid
//! value cannot exist past the edge), security levels and roles, the change-request state machine
//! with separation of duties and quorum, the policy pack, the gate decision function and the
//! audit hash chain.
//!
//! It must not do IO, be async, or know sea-orm or axum. Errors are `thiserror` enums.

pub mod audit;
pub mod change;
pub mod gate;
pub mod ids;
pub mod password;
pub mod policy;
pub mod roles;

pub use change::{
    Actor, ChangeKind, ChangeRequest, CheckResult, Command, Conclusion, CrState, Effect, Finding,
    ItemResult, Refusal, Severity, SignOff, SignOffRecord,
};
pub use gate::{CandidateChange, Decision, GateQuery, Reason, ReasonCode, SystemFacts};
pub use ids::{
    ArtifactDigest, Code, CommitId, EnvName, ParseError, SecurityLevel, Subject, TreeId, Username,
};
pub use policy::{PolicyError, PolicyPack};
pub use roles::{OrgKind, Role};
