//! changegate-api: the JSON wire types shared by the server and its clients (the HTTP client
//! is `changegate-client`), and the signed attestations of gate decisions.
//!
//! Wire types carry plain strings and numbers where the server parses them into domain types (so
//! that a bad value is answered with the field it was in); the codes a client acts on (decision,
//! reason, problem and field error codes) are enums.

mod annual;
pub mod attestation;
mod codes;
mod enforce;
mod people;
mod types;

pub use annual::*;
pub use codes::{Decision, ProblemCode, ReasonCode};
pub use enforce::*;
pub use people::*;
pub use types::*;
