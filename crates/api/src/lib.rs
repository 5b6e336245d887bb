//! changegate-api: the JSON wire types shared by the server and its clients, and a typed HTTP
//! client (reqwest) used by the CLI and the end-to-end tests.
//!
//! Wire types carry plain strings and numbers; the server parses them into domain types so that a
//! bad value is answered with the field it was in.

pub mod attestation;
pub mod client;
mod types;

pub use client::{Client, ClientError};
pub use types::*;
