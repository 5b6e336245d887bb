//! The one follower of the audit log: every write appends an event naming the entity and system it
//! touched, and [`App::catch_up`] applies events after the last one seen to the gate index and to
//! the token cache. A write in this process catches up before it answers; writes by other
//! replicas or the command line are picked up by the poller within [`POLL`]. If the poller has not
//! succeeded within [`STALE_AFTER`], the gate refuses to decide (fail closed).

use crate::{App, AppResult};
use chrono::Utc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How often the poller reads the audit log for writes made elsewhere.
pub const POLL: Duration = Duration::from_millis(200);
/// After this long without a successful poll the gate fails closed.
pub const STALE_AFTER: Duration = Duration::from_secs(5);

impl App {
    /// Applies audit events after the last one seen to the gate index and the token cache.
    pub async fn catch_up(&self) -> AppResult<()> {
        let _one_at_a_time = self.gate.catch_up_lock.lock().await;
        let mut applied_any = false;
        let result = self.apply_new_events(&mut applied_any).await;
        if applied_any {
            self.gate.changed.notify_waiters();
        }
        result
    }

    async fn apply_new_events(&self, applied_any: &mut bool) -> AppResult<()> {
        loop {
            let events =
                match changegate_store::audit::changes_since(&self.db, self.gate.last_seq(), 1000)
                    .await
                {
                    Ok(events) => events,
                    Err(e) => {
                        // The index may now be behind the database: forget it (fail closed).
                        self.gate.clear();
                        return Err(e.into());
                    }
                };
            let n = events.len();
            for (seq, entity, entity_id, system_id) in events {
                let applied = match (entity.as_str(), system_id) {
                    ("change_request", Some(sid)) => match entity_id.parse() {
                        Ok(id) => self.gate.refresh_change(&self.db, sid, id).await,
                        Err(_) => Ok(()),
                    },
                    ("deployment", _) => Ok(()),
                    ("system", sid) => {
                        self.gate.drop_system(sid, Some(&entity_id));
                        Ok(())
                    }
                    (_, Some(sid)) => {
                        self.gate
                            .refresh_facts(&self.db, &self.pack, self.tz, sid)
                            .await
                    }
                    ("api_token", None) => {
                        self.auth.forget_token(&entity_id);
                        Ok(())
                    }
                    ("user", None) => {
                        self.auth.forget_username(&entity_id);
                        Ok(())
                    }
                    _ => Ok(()),
                };
                if let Err(e) = applied {
                    // Forget the system so the next decision reloads it; retry from this event.
                    self.gate.drop_system(system_id, None);
                    return Err(e);
                }
                self.gate.last_seq.store(seq, Ordering::SeqCst);
                *applied_any = true;
            }
            if n < 1000 {
                break;
            }
        }
        self.gate
            .last_ok_ms
            .store(Utc::now().timestamp_millis(), Ordering::SeqCst);
        Ok(())
    }

    /// Follows the audit log in the background until the app is dropped.
    pub fn spawn_poller(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(POLL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(app) = weak.upgrade() else { break };
                if let Err(e) = app.catch_up().await {
                    tracing::warn!(error = %e, "gate index could not follow the audit log");
                }
            }
        })
    }
}
