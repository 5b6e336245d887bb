//! The gate, in one place: the in-memory index ([`index`]), loading systems into it ([`load`]),
//! the one follower of the audit log that keeps it and the token cache up to date
//! ([`follower`]), deciding and signing the answer ([`decision`], [`signing`], [`signer`]) and
//! long-polling ([`longpoll`]), and the status per environment that the pages show
//! ([`status`]).
//!
//! Per system (loaded on first use) the index holds its facts (status, environments, re-review
//! due date, open blocking incidents, freezes, overdue conditions, emergency changes that may
//! still suspend it, the last approval) and its live change requests (awaiting evaluation, or
//! approved and not yet expired), keyed by subject: memory and the first answer grow with what
//! is live, not with history. Content that no live change lets through is also asked of the
//! database by its subject (an index), so that an expired, revoked or rejected change still
//! gives its reason; those answers are cached per system (bounded) until one of its change
//! requests changes. The domain's `decide` judges; this module only gathers the facts, and
//! fails closed when it cannot.

pub(crate) mod decision;
mod follower;
mod index;
mod load;
mod longpoll;
pub mod signer;
mod signing;
mod status;

pub use decision::parse_query;
pub use follower::{POLL, STALE_AFTER};
pub use index::GateIndex;
pub use longpoll::MAX_WAIT_SECONDS;
pub use status::EnvGate;
