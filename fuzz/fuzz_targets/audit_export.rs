//! Audit export files, as `changegate audit verify --file` reads them: a head line
//! `{"changegate_audit_export":1,"head_seq":N,"head_hash":"…"}` then one event's JSON per line,
//! checked by `changegate_app::audit::verify_events`. The CLI's line reading is a few lines inside
//! `crates/cli/src/admin.rs` (a binary crate, so not linkable here); [`read`] does the same steps
//! with the same calls.
//!
//! First byte `b'0'`/other: the rest is a whole file. `b'1'`: the rest drives a generator of a
//! genuine export (events made from fuzzed fields, hashed as the server does, written as the CLI
//! writes them) and one tampering with it.
//!
//! Checked: a file judged intact holds exactly `head_seq` events numbered from 1 whose hashes
//! recompute (each from the one before, the last equal to the head); a break names a place that
//! is really broken there; a genuine export is intact; changing one field of one event, deleting
//! one, swapping two or changing the head is always found, at the right event.
#![no_main]

use changegate_api::AuditEvent;
use changegate_app::audit::{Verified, verify_events};
use changegate_domain::audit::{AuditRecord, ChainBreak, GENESIS, chain_hash};
use libfuzzer_sys::arbitrary::{self, Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use std::io::BufRead;

fn record(e: &AuditEvent) -> AuditRecord<'_> {
    AuditRecord {
        seq: e.seq,
        at: &e.at,
        actor: &e.actor,
        actor_id: e.actor_id,
        action: &e.action,
        entity: &e.entity,
        entity_id: &e.entity_id,
        system_id: e.system_id,
        before: e.before.as_deref(),
        after: e.after.as_deref(),
    }
}

/// The CLI's reading of an export file: `None` where it stops with an error.
fn read(file: &[u8]) -> Option<(i64, String, Vec<AuditEvent>)> {
    let mut lines = std::io::Cursor::new(file).lines();
    let head: serde_json::Value =
        serde_json::from_str(&lines.next().transpose().ok()?.unwrap_or_default()).ok()?;
    let (Some(seq), Some(hash)) = (head["head_seq"].as_i64(), head["head_hash"].as_str()) else {
        return None;
    };
    let mut events = vec![];
    for l in lines {
        events.push(serde_json::from_str::<AuditEvent>(&l.ok()?).ok()?);
    }
    Some((seq, hash.to_owned(), events))
}

/// What the verdict says holds, checked by recomputing the chain.
fn judge(head_seq: i64, head_hash: &str, events: &[AuditEvent]) -> Verified {
    let verdict = verify_events(events.to_vec(), (head_seq, head_hash));
    // The longest intact prefix: events numbered from 1 whose hashes recompute.
    let mut prev = GENESIS.to_owned();
    let mut good = 0usize;
    for (i, e) in events.iter().enumerate() {
        if e.seq != i as i64 + 1 || chain_hash(&prev, &record(e)) != e.hash {
            break;
        }
        prev = e.hash.clone();
        good += 1;
    }
    match &verdict {
        Verified::Intact(n) => {
            assert_eq!(
                good,
                events.len(),
                "judged intact, but event {} is broken",
                good + 1
            );
            assert_eq!(*n, head_seq);
            assert_eq!(*n, events.len() as i64);
            if head_seq > 0 {
                assert_eq!(prev, head_hash, "judged intact, but the head hash differs");
            }
        }
        Verified::Broken(ChainBreak::Gap { expected, found }) => {
            assert_eq!(*expected, good as i64 + 1);
            assert_ne!(expected, found);
            assert_eq!(events[good].seq, *found);
        }
        Verified::Broken(ChainBreak::HashMismatch { seq }) => {
            if good < events.len() {
                assert_eq!(*seq, good as i64 + 1);
                assert_ne!(chain_hash(&prev, &record(&events[good])), events[good].hash);
            } else {
                // Every event is fine: the head is what does not match.
                assert_eq!(*seq, good as i64);
                assert!(head_seq < good as i64 || prev != head_hash);
            }
        }
        Verified::Broken(ChainBreak::Truncated { last, head }) => {
            assert_eq!(good, events.len());
            assert_eq!((*last, *head), (good as i64, head_seq));
            assert!(last < head);
        }
        // Signed checkpoints are not part of an export: it never judges by them.
        Verified::Broken(other) => panic!("an export judged by a checkpoint: {other}"),
    }
    verdict
}

#[derive(Arbitrary, Debug)]
struct Fields {
    at: String,
    actor: String,
    actor_id: Option<i64>,
    action: String,
    entity: String,
    entity_id: String,
    system_id: Option<i64>,
    before: Option<String>,
    after: Option<String>,
}

#[derive(Arbitrary, Debug)]
enum Tamper {
    /// Replace one event's fields (if they differ).
    Change(usize, Fields),
    Delete(usize),
    Swap(usize, usize),
    HeadSeq(i64),
    HeadHash(String),
}

/// The file the CLI's `audit export --file` writes.
fn export(head_seq: i64, head_hash: &str, events: &[AuditEvent]) -> Vec<u8> {
    let mut out = serde_json::json!({ "changegate_audit_export": 1, "head_seq": head_seq, "head_hash": head_hash })
        .to_string();
    out.push('\n');
    for e in events {
        out.push_str(&serde_json::to_string(e).unwrap_or_default());
        out.push('\n');
    }
    out.into_bytes()
}

fn event(seq: i64, f: Fields, prev: &str) -> AuditEvent {
    let mut e = AuditEvent {
        seq,
        at: f.at,
        actor: f.actor,
        actor_id: f.actor_id,
        action: f.action,
        entity: f.entity,
        entity_id: f.entity_id,
        system_id: f.system_id,
        before: f.before,
        after: f.after,
        hash: String::new(),
    };
    e.hash = chain_hash(prev, &record(&e));
    e
}

fn generated(data: &[u8]) -> arbitrary::Result<()> {
    let mut u = Unstructured::new(data);
    let n = u.int_in_range(0..=12)?;
    let mut events: Vec<AuditEvent> = vec![];
    for i in 0..n {
        let prev = events.last().map_or(GENESIS.to_owned(), |e| e.hash.clone());
        events.push(event(i + 1, Fields::arbitrary(&mut u)?, &prev));
    }
    let head_hash = events.last().map_or(GENESIS.to_owned(), |e| e.hash.clone());
    let file = export(n, &head_hash, &events);
    let read_back = read(&file);
    assert_eq!(
        read_back.as_ref().map(|r| &r.2),
        Some(&events),
        "an export does not read back"
    );
    assert_eq!(judge(n, &head_hash, &events), Verified::Intact(n));

    let tamper = Tamper::arbitrary(&mut u)?;
    let (mut seq, mut hash, mut evs) = (n, head_hash.clone(), events.clone());
    let len = events.len();
    let expect = match tamper {
        Tamper::Change(i, f) if len > 0 => {
            let i = i % len;
            let old = &events[i];
            let mut new = event(old.seq, f, "");
            new.hash = old.hash.clone();
            if serde_json::to_string(&record(&new)).ok() == serde_json::to_string(&record(old)).ok()
            {
                return Ok(());
            }
            evs[i] = new;
            Some(ChainBreak::HashMismatch { seq: i as i64 + 1 })
        }
        Tamper::Delete(i) if len > 0 => {
            let i = i % len;
            evs.remove(i);
            Some(if i + 1 == len {
                ChainBreak::Truncated {
                    last: i as i64,
                    head: n,
                }
            } else {
                ChainBreak::Gap {
                    expected: i as i64 + 1,
                    found: i as i64 + 2,
                }
            })
        }
        Tamper::Swap(i, j) if len > 1 => {
            let (i, j) = (i % len, j % len);
            if i == j {
                return Ok(());
            }
            evs.swap(i, j);
            let k = i.min(j) as i64;
            Some(ChainBreak::Gap {
                expected: k + 1,
                found: evs[k as usize].seq,
            })
        }
        Tamper::HeadSeq(s) if s != n => {
            seq = s;
            Some(if s > n {
                ChainBreak::Truncated { last: n, head: s }
            } else {
                ChainBreak::HashMismatch { seq: n }
            })
        }
        Tamper::HeadHash(h) if h != head_hash && n > 0 => {
            hash = h;
            Some(ChainBreak::HashMismatch { seq: n })
        }
        _ => None,
    };
    let Some(expect) = expect else {
        return Ok(());
    };
    let Some((s, h, e)) = read(&export(seq, &hash, &evs)) else {
        panic!("a tampered export does not read back");
    };
    assert_eq!(judge(s, &h, &e), Verified::Broken(expect));
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    match data.split_first() {
        Some((b'1', rest)) => {
            let _ = generated(rest);
        }
        Some((b'0', rest)) => {
            if let Some((seq, hash, events)) = read(rest) {
                judge(seq, &hash, &events);
            }
        }
        _ => {
            if let Some((seq, hash, events)) = read(data) {
                judge(seq, &hash, &events);
            }
        }
    }
});
