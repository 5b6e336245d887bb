//! Long-polling: a gate request that waits (`wait`) until the decision changes or the time is up,
//! woken by the follower of the audit log.

use crate::identity::tokens::Principal;
use crate::{App, AppError, AppResult};
use changegate_api as wire;
use std::time::Duration;

/// The longest a gate request may be held (`wait`).
pub const MAX_WAIT_SECONDS: u32 = 60;

impl App {
    /// Asks the gate; with `wait`, holds the request until the decision changes (or becomes an
    /// allow) or the time is up, and answers at once when it does.
    pub async fn gate_decision_waiting(
        &self,
        who: &Principal,
        p: &wire::GateParams,
    ) -> AppResult<std::sync::Arc<super::signer::Answer>> {
        let wait = p.wait.unwrap_or(0);
        if wait > MAX_WAIT_SECONDS {
            return Err(AppError::invalid(
                "wait",
                format!(
                    "at most {MAX_WAIT_SECONDS} seconds per request, not {wait}; changegate check --wait asks again until its own time is up"
                ),
            ));
        }
        if wait == 0 {
            return self.gate_decision(who, p).await;
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(u64::from(wait));
        let mut first: Option<(wire::Decision, Vec<wire::ReasonCode>)> = None;
        loop {
            let notified = self.gate.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let d = self.gate_decision(who, p).await?;
            let shape = (
                d.decision.clone(),
                d.reasons.iter().map(|r| r.code.clone()).collect::<Vec<_>>(),
            );
            let changed = first.as_ref().is_some_and(|f| *f != shape);
            if d.allowed() || changed || tokio::time::Instant::now() >= deadline {
                return Ok(d);
            }
            first.get_or_insert(shape);
            tokio::select! {
                () = &mut notified => {}
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}
