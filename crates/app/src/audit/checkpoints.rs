//! Signed checkpoints of the audit chain (issue 16).
//!
//! The hash chain alone is plain SHA-256: whoever can write the database can recompute it, or
//! delete the last events and move the head row back. So the server's ed25519 key, which lives
//! outside the database (`signing.key`), signs the chain's head every [`Settings::every`] events
//! (in the transaction that crosses the mark) and at every job slot. The latest checkpoint is
//! also kept in a file beside the data (`<data_dir>/audit-checkpoint.json`), so deleting
//! checkpoint rows along with the events they vouch for is seen too.
//!
//! `audit verify` checks every checkpoint signed by a trusted key against the events; `serve`
//! checks from the last signed checkpoint to the head at start (cheap: not the whole log) and
//! refuses to serve, or serves read-only, when the log does not hold what was signed.

use crate::{App, AppError, AppResult};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use changegate_api::attestation::PublicKey;
use changegate_domain::audit::{AuditRecord, ChainBreak, Verifier, checkpoint_message};
use changegate_store::audit as store;
use changegate_store::entity::{audit_checkpoint, audit_event};
use changegate_store::sea_orm::ConnectionTrait;
use ed25519_dalek::{Signature, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A checkpoint every this many events, by default.
pub const DEFAULT_EVERY: i64 = 1000;

/// What `serve` does when the log does not hold what was signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnBreak {
    /// Refuse to start.
    #[default]
    Refuse,
    /// Serve reads only; every write is refused, and the log says why at start.
    ReadOnly,
}

/// Checkpoint settings. The default signs none: only a process holding the server's key (a
/// serving one) signs, never a command with a throw-away key.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// A checkpoint every this many events; 0: none at all (nor at job slots).
    pub every: i64,
    /// The file that keeps the latest checkpoint outside the database (none: not kept).
    pub anchor: Option<PathBuf>,
}

/// A signed checkpoint: the server vouches that event `seq` had chain hash `hash` at
/// `signed_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The last event it vouches for.
    pub seq: i64,
    /// That event's chain hash.
    pub hash: String,
    /// When it was signed (RFC 3339, microseconds, UTC).
    pub signed_at: String,
    /// The signing key.
    pub keyid: String,
    /// Base64 of the ed25519 signature over [`checkpoint_message`].
    pub sig: String,
}

impl From<audit_checkpoint::Model> for Checkpoint {
    fn from(m: audit_checkpoint::Model) -> Self {
        Self {
            seq: m.seq,
            hash: m.hash,
            signed_at: m.signed_at,
            keyid: m.keyid,
            sig: m.sig,
        }
    }
}

impl Checkpoint {
    /// Whether its signature verifies: `None` when its key is not among `keys` (another
    /// replica's key, or anyone's: it vouches for nothing here).
    pub fn verifies(&self, keys: &[PublicKey]) -> Option<bool> {
        let key = keys.iter().find(|k| k.keyid == self.keyid)?;
        let ok = (|| {
            let raw: [u8; 32] = B64.decode(&key.public_key).ok()?.try_into().ok()?;
            let vk = VerifyingKey::from_bytes(&raw).ok()?;
            let sig: [u8; 64] = B64.decode(&self.sig).ok()?.try_into().ok()?;
            let msg = checkpoint_message(self.seq, &self.hash, &self.signed_at);
            vk.verify(&msg, &Signature::from_bytes(&sig)).ok()
        })();
        Some(ok.is_some())
    }
}

/// Reads the checkpoint kept in `file`; none when there is no such file. A file that cannot be
/// read or parsed is an error (it is not silently ignored).
pub fn read_anchor(file: &Path) -> AppResult<Option<Checkpoint>> {
    match std::fs::read_to_string(file) {
        Ok(text) => serde_json::from_str(&text).map(Some).map_err(|e| {
            AppError::Internal(format!(
                "{} is not a changegate audit checkpoint: {e}",
                file.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(AppError::Internal(format!(
            "cannot read {}: {e}",
            file.display()
        ))),
    }
}

fn write_anchor(file: &Path, cp: &Checkpoint) -> std::io::Result<()> {
    if let Ok(Some(old)) = read_anchor(file)
        && old.seq >= cp.seq
    {
        return Ok(());
    }
    let tmp = file.with_extension("json.tmp");
    std::fs::write(&tmp, serde_json::to_vec_pretty(cp).unwrap_or_default())?;
    std::fs::rename(&tmp, file)
}

/// Whether appending events `first..=last` crosses a multiple of `every`.
pub(crate) fn crosses(first: i64, last: i64, every: i64) -> bool {
    every > 0 && first > 0 && last >= first && (first - 1) / every < last / every
}

impl App {
    /// Signs a checkpoint of event `seq` with chain hash `hash` and stores it in `db` (a
    /// transaction of the caller). A checkpoint of that event already there is kept.
    pub(crate) async fn insert_checkpoint(
        &self,
        db: &impl ConnectionTrait,
        seq: i64,
        hash: String,
    ) -> AppResult<Checkpoint> {
        let signed_at = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        let sig = self
            .signer
            .sign_raw(&checkpoint_message(seq, &hash, &signed_at));
        let cp = Checkpoint {
            seq,
            hash,
            signed_at,
            keyid: self.signer.keyid.clone(),
            sig,
        };
        store::record_checkpoint(
            db,
            store::NewCheckpoint {
                seq: cp.seq,
                hash: cp.hash.clone(),
                signed_at: cp.signed_at.clone(),
                keyid: cp.keyid.clone(),
                sig: cp.sig.clone(),
            },
        )
        .await?;
        Ok(cp)
    }

    /// Keeps `cp` in the anchor file, after its transaction committed.
    pub(crate) fn anchor_checkpoint(&self, cp: &Checkpoint) {
        if let Some(file) = &self.checkpoints.anchor
            && let Err(e) = write_anchor(file, cp)
        {
            tracing::warn!(file = %file.display(), error = %e, "cannot keep the latest audit checkpoint outside the database");
        }
    }

    /// Signs a checkpoint of the chain's head, unless one already vouches for it (every job
    /// slot). Returns the head's seq.
    pub async fn checkpoint_audit(&self) -> AppResult<i64> {
        if self.checkpoints.every <= 0 {
            return store::head(&self.db)
                .await
                .map(|(seq, _)| seq)
                .map_err(Into::into);
        }
        let tx = self.begin().await?;
        let (seq, hash) = store::head(&tx.txn).await?;
        let signed = store::checkpoint_at(&tx.txn, seq).await?;
        if seq == 0 || signed.is_some() {
            return Ok(seq);
        }
        let cp = self.insert_checkpoint(&tx.txn, seq, hash).await?;
        tx.commit().await?;
        self.anchor_checkpoint(&cp);
        Ok(seq)
    }

    /// The keys this server trusts for its own checkpoints: its signing key's.
    fn own_keys(&self) -> Vec<PublicKey> {
        vec![self.signer.public()]
    }

    /// Verifies the log at start, from the last signed checkpoint to the head (not the whole
    /// log), and signs the head. With no checkpoint yet (a log written before checkpoints), the
    /// head is signed as it is: run `changegate audit verify` to check what came before.
    pub async fn verify_audit_at_start(&self) -> AppResult<Result<Option<i64>, ChainBreak>> {
        let keys = self.own_keys();
        let anchor = match &self.checkpoints.anchor {
            Some(f) => read_anchor(f)?,
            None => None,
        };
        let latest: Option<Checkpoint> = store::latest_checkpoint_by(&self.db, &self.signer.keyid)
            .await?
            .map(Into::into);
        let (head_seq, head_hash) = store::head(&self.db).await?;
        let mut from: Option<Checkpoint> = None;
        for cp in [latest, anchor].into_iter().flatten() {
            if cp.verifies(&keys) == Some(false) {
                return Ok(Err(ChainBreak::ForgedCheckpoint { seq: cp.seq }));
            }
            if cp.verifies(&keys).is_none() {
                continue;
            }
            if let Err(b) = check_against_log(&self.db, &cp).await? {
                return Ok(Err(b));
            }
            if from.as_ref().is_none_or(|f| cp.seq > f.seq) {
                from = Some(cp);
            }
        }
        if let Some(cp) = &from {
            let mut v = Verifier::resume(cp.seq, &cp.hash);
            let mut after = cp.seq;
            loop {
                let page = store::page(&self.db, after, 5000).await?;
                let Some(last) = page.last().map(|e| e.seq) else {
                    break;
                };
                for e in &page {
                    if let Err(b) = v.next(&record(e), &e.hash) {
                        return Ok(Err(b));
                    }
                }
                after = last;
            }
            if let Err(b) = v.finish(head_seq, &head_hash) {
                return Ok(Err(b));
            }
        }
        if from.as_ref().is_none_or(|f| f.seq < head_seq) {
            self.checkpoint_audit().await?;
        } else if let Some(cp) = &from {
            self.anchor_checkpoint(cp);
        }
        Ok(Ok(from.map(|f| f.seq)))
    }
}

fn record(e: &audit_event::Model) -> AuditRecord<'_> {
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

/// Whether the log holds the event `cp` vouches for, with the hash that was signed.
async fn check_against_log(
    db: &impl ConnectionTrait,
    cp: &Checkpoint,
) -> AppResult<Result<(), ChainBreak>> {
    let hash = store::event_hash(db, cp.seq).await?;
    Ok(match hash {
        None => {
            let present = store::last_event_seq(db).await?;
            Err(ChainBreak::SignedBeyondEnd {
                signed: cp.seq,
                signed_at: cp.signed_at.clone(),
                last: present.unwrap_or(0),
            })
        }
        Some(h) if h != cp.hash => Err(ChainBreak::SignedMismatch {
            seq: cp.seq,
            signed_at: cp.signed_at.clone(),
        }),
        Some(_) => Ok(()),
    })
}

/// What the checkpoints say about a log whose hash chain verified up to `last`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vouched {
    /// The last event a valid signed checkpoint vouches for, and when it was signed.
    pub last: Option<(i64, String)>,
    /// Checkpoints signed by keys not trusted here (not counted).
    pub untrusted: usize,
}

/// Checks every checkpoint (in the database, and the one kept in `anchor`) signed by one of
/// `keys` against the log, whose chain verified up to `last`: the signature, and that the log
/// holds the event signed for with the hash signed for. Returns what they vouch for, or the
/// first break.
pub async fn verify_checkpoints(
    db: &impl ConnectionTrait,
    keys: &[PublicKey],
    anchor: Option<Checkpoint>,
) -> AppResult<Result<Vouched, ChainBreak>> {
    let mut all: Vec<Checkpoint> = store::checkpoints(db)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    all.extend(anchor);
    let mut out = Vouched {
        last: None,
        untrusted: 0,
    };
    for cp in &all {
        match cp.verifies(keys) {
            None => out.untrusted += 1,
            Some(false) => return Ok(Err(ChainBreak::ForgedCheckpoint { seq: cp.seq })),
            Some(true) => {
                if let Err(b) = check_against_log(db, cp).await? {
                    return Ok(Err(b));
                }
                if out.last.as_ref().is_none_or(|(s, _)| cp.seq > *s) {
                    out.last = Some((cp.seq, cp.signed_at.clone()));
                }
            }
        }
    }
    Ok(Ok(out))
}

/// The last event a valid checkpoint signed by `keys` vouches for, below `before` (for the
/// report of a broken log: what can still be trusted).
pub async fn vouched_before(
    db: &impl ConnectionTrait,
    keys: &[PublicKey],
    before: i64,
) -> AppResult<Option<i64>> {
    let rows = store::checkpoints_before(db, before, 100).await?;
    for m in rows {
        let cp = Checkpoint::from(m);
        if cp.verifies(keys) == Some(true) && check_against_log(db, &cp).await?.is_ok() {
            return Ok(Some(cp.seq));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_is_due_when_the_appended_events_cross_a_multiple() {
        assert!(crosses(1000, 1000, 1000));
        assert!(crosses(999, 1001, 1000));
        assert!(!crosses(1001, 1999, 1000));
        assert!(crosses(1, 5000, 1000));
        assert!(!crosses(0, 0, 1000));
        assert!(!crosses(5, 5, 0));
    }
}
