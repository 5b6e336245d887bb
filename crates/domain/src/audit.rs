//! The audit hash chain. Each event's hash covers the previous event's hash and the event's own
//! fields, so a changed, deleted or reordered event breaks every hash after it.

use serde::Serialize;
use sha2::{Digest, Sha256};

/// The hash before the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The fields of an audit event that its hash covers.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRecord<'a> {
    /// Position in the chain, from 1 without gaps.
    pub seq: i64,
    /// When, RFC 3339 with microseconds, UTC.
    pub at: &'a str,
    /// Who: a username, or `system`.
    pub actor: &'a str,
    /// The user id of a person.
    pub actor_id: Option<i64>,
    /// What was done (`change_request.submit`).
    pub action: &'a str,
    /// The kind of thing acted on (`change_request`).
    pub entity: &'a str,
    /// Its id or code.
    pub entity_id: &'a str,
    /// The system the event concerns (the gate index follows it).
    pub system_id: Option<i64>,
    /// JSON before, if any.
    pub before: Option<&'a str>,
    /// JSON after, if any.
    pub after: Option<&'a str>,
}

/// The hash of an event, as 64 lowercase hex digits.
pub fn chain_hash(prev_hash: &str, record: &AuditRecord<'_>) -> String {
    let mut h = Sha256::new();
    h.update(b"changegate-audit-v2\n");
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    // Serialising a struct of strings and integers cannot fail.
    h.update(serde_json::to_vec(record).unwrap_or_default());
    hex::encode(h.finalize())
}

/// The bytes a signed checkpoint covers: the event it vouches for, that event's chain hash and
/// when it was signed. Whoever holds the key vouches that the log held exactly this chain up to
/// `seq` at `signed_at`.
pub fn checkpoint_message(seq: i64, hash: &str, signed_at: &str) -> Vec<u8> {
    format!("changegate-audit-checkpoint-v1\n{seq}\n{hash}\n{signed_at}").into_bytes()
}

/// A break in the chain found by [`verify`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChainBreak {
    /// Sequence numbers skip (an event was deleted) or repeat (reordered or inserted).
    Gap {
        /// The seq expected here.
        expected: i64,
        /// The seq found.
        found: i64,
    },
    /// The stored hash does not match the recomputed one (the event or an earlier one changed).
    HashMismatch {
        /// The first event whose hash does not match.
        seq: i64,
    },
    /// The chain ends before the recorded head (events at the end were deleted).
    Truncated {
        /// Last seq present.
        last: i64,
        /// Seq of the recorded head.
        head: i64,
    },
    /// A checkpoint signed with the server's key vouches for an event the log no longer holds
    /// (events at the end were deleted, and the head row moved back).
    SignedBeyondEnd {
        /// The event the checkpoint vouches for.
        signed: i64,
        /// When it was signed.
        signed_at: String,
        /// Last seq present.
        last: i64,
    },
    /// The event a signed checkpoint vouches for is not the one that was signed (the log was
    /// rewritten, even if its hashes were recomputed).
    SignedMismatch {
        /// The event.
        seq: i64,
        /// When the checkpoint was signed.
        signed_at: String,
    },
    /// A checkpoint claims the server's key but its signature does not verify (forged).
    ForgedCheckpoint {
        /// The event it claims to vouch for.
        seq: i64,
    },
}

impl std::fmt::Display for ChainBreak {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChainBreak::Gap { expected, found } => {
                write!(
                    f,
                    "event {expected} is missing or out of order (found event {found} in its place)"
                )
            }
            ChainBreak::HashMismatch { seq } => write!(
                f,
                "event {seq} was changed: its hash does not match its content"
            ),
            ChainBreak::Truncated { last, head } => {
                write!(
                    f,
                    "events after {last} were deleted: the log's head records event {head}"
                )
            }
            ChainBreak::SignedBeyondEnd {
                signed,
                signed_at,
                last,
            } => write!(
                f,
                "events after {last} were deleted: a checkpoint signed at {signed_at} vouches for event {signed}"
            ),
            ChainBreak::SignedMismatch { seq, signed_at } => write!(
                f,
                "event {seq} is not the one signed at {signed_at}: the log was rewritten"
            ),
            ChainBreak::ForgedCheckpoint { seq } => write!(
                f,
                "the checkpoint of event {seq} has a signature that does not verify: it was forged"
            ),
        }
    }
}

/// Streaming verifier: feed events in seq order.
#[derive(Debug, Clone)]
pub struct Verifier {
    expected: i64,
    prev: String,
}

impl Default for Verifier {
    fn default() -> Self {
        Self {
            expected: 1,
            prev: GENESIS.to_owned(),
        }
    }
}

impl Verifier {
    /// A verifier that continues after event `seq`, whose hash is `hash` (a signed checkpoint).
    pub fn resume(seq: i64, hash: &str) -> Self {
        Self {
            expected: seq + 1,
            prev: hash.to_owned(),
        }
    }

    /// Checks the next event and its stored hash.
    pub fn next(&mut self, record: &AuditRecord<'_>, stored_hash: &str) -> Result<(), ChainBreak> {
        if record.seq != self.expected {
            return Err(ChainBreak::Gap {
                expected: self.expected,
                found: record.seq,
            });
        }
        let h = chain_hash(&self.prev, record);
        if h != stored_hash {
            return Err(ChainBreak::HashMismatch { seq: record.seq });
        }
        self.prev = h;
        self.expected += 1;
        Ok(())
    }

    /// Checks the end against the recorded head (last seq and hash).
    pub fn finish(&self, head_seq: i64, head_hash: &str) -> Result<i64, ChainBreak> {
        let last = self.expected - 1;
        if last < head_seq {
            return Err(ChainBreak::Truncated {
                last,
                head: head_seq,
            });
        }
        if last > head_seq || (head_seq > 0 && self.prev != head_hash) {
            return Err(ChainBreak::HashMismatch { seq: last });
        }
        Ok(last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(seq: i64, after: &str) -> AuditRecord<'_> {
        AuditRecord {
            seq,
            at: "2026-11-24T00:00:00.000000Z",
            actor: "an",
            actor_id: Some(1),
            action: "x",
            entity: "e",
            entity_id: "1",
            system_id: None,
            before: None,
            after: Some(after),
        }
    }

    fn chain(afters: &[&'static str]) -> Vec<(AuditRecord<'static>, String)> {
        let mut prev = GENESIS.to_owned();
        afters
            .iter()
            .enumerate()
            .map(|(i, a)| {
                let r = rec(i as i64 + 1, a);
                prev = chain_hash(&prev, &r);
                (r, prev.clone())
            })
            .collect()
    }

    fn verify(c: &[(AuditRecord<'_>, String)], head: (i64, &str)) -> Result<i64, ChainBreak> {
        let mut v = Verifier::default();
        for (r, h) in c {
            v.next(r, h)?;
        }
        v.finish(head.0, head.1)
    }

    #[test]
    fn an_intact_chain_verifies_and_a_change_is_found() {
        let c = chain(&["{\"a\":1}", "{\"b\":\"Nguyễn\"}", "{}"]);
        let head = (3, c[2].1.clone());
        assert_eq!(verify(&c, (head.0, &head.1)), Ok(3));
        let mut changed = c.clone();
        changed[1].0.after = Some("{\"b\":\"Nguyen\"}");
        assert_eq!(
            verify(&changed, (head.0, &head.1)),
            Err(ChainBreak::HashMismatch { seq: 2 })
        );
    }

    #[test]
    fn deleted_and_reordered_events_are_found() {
        let c = chain(&["1", "2", "3"]);
        let head = c[2].1.clone();
        let deleted = vec![c[0].clone(), c[2].clone()];
        assert_eq!(
            verify(&deleted, (3, &head)),
            Err(ChainBreak::Gap {
                expected: 2,
                found: 3
            })
        );
        let reordered = vec![c[0].clone(), c[2].clone(), c[1].clone()];
        assert!(verify(&reordered, (3, &head)).is_err());
        let truncated = vec![c[0].clone(), c[1].clone()];
        assert_eq!(
            verify(&truncated, (3, &head)),
            Err(ChainBreak::Truncated { last: 2, head: 3 })
        );
    }
}
