//! Security signals: the shared-account signal (one account used from two addresses at once)
//! and the list of signals for admins.

use crate::identity::tokens::Principal;
use crate::{App, AppResult, event};
use changegate_domain::Role;
use changegate_domain::roles::SignalKind;
use changegate_store::entity::user;
use changegate_store::identity;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use std::collections::HashMap;

use super::*;

/// Something admins should look at.
#[derive(Debug, Clone, Serialize)]
pub struct SecuritySignal {
    /// `account_locked` or `shared_account`.
    pub kind: String,
    /// The account.
    pub username: String,
    /// Its owner's name.
    pub display_name: String,
    /// Its organisation.
    pub org: String,
    /// For `shared_account`, the two addresses; for `account_locked`, empty.
    pub ips: Vec<String>,
    /// When it was raised (for a lock: when it ends, see `until`).
    pub at: DateTime<Utc>,
    /// For `account_locked`: locked until then.
    pub until: Option<DateTime<Utc>>,
}
impl App {
    /// Raises the shared-account signal for `p` seen from `a` and `b` at once: audited
    /// (`account.shared_suspected`) and notified (`account.shared`) once per pair and day.
    /// Best effort: a failure is logged, never shown to the user.
    pub(super) async fn flag_shared(&self, p: &Principal, a: &str, b: &str) {
        if let Err(e) = self.try_flag_shared(p, a, b).await {
            tracing::warn!(error = %e, user = %p.username, "could not record the shared-account signal");
        }
    }

    pub(super) async fn try_flag_shared(&self, p: &Principal, a: &str, b: &str) -> AppResult<()> {
        if a == b {
            return Ok(());
        }
        let (lo, hi) = if a < b { (a, b) } else { (b, a) };
        let detail = format!("{lo} {hi}");
        let day = crate::now().date_naive().to_string();
        let key = (p.user_id, detail.clone(), day.clone());
        if self.sessions.signalled.contains_key(&key) {
            return Ok(());
        }
        let tx = self.begin().await?;
        let signal = identity::NewSignal {
            user_id: p.user_id,
            kind: SignalKind::SharedAccount,
            detail: detail.clone(),
            day: day.clone(),
            at: tx.at(),
        };
        if !identity::signal_recorded(&tx.txn, &signal).await? {
            identity::record_signal(&tx.txn, signal).await?;
            tx.audit(event(
                None,
                "account.shared_suspected",
                "user",
                &p.username,
                None,
                None,
                Some(serde_json::json!({ "ips": [lo, hi], "org": p.org_code })),
            ))
            .await?;
            tx.notify(
                "account.shared",
                serde_json::json!({ "username": p.username, "display_name": p.display_name,
                    "org": p.org_code, "ips": [lo, hi] }),
            )
            .await?;
            tx.commit().await?;
        }
        self.sessions.signalled.insert(key, ());
        Ok(())
    }

    /// What admins and inspectors should look at: accounts locked now, and accounts used from
    /// two addresses at once in the last 30 days (newest first).
    pub async fn security_signals(&self, who: &Principal) -> AppResult<Vec<SecuritySignal>> {
        who.require(&[Role::Admin, Role::Auditor], "reading security signals")?;
        let now = crate::now();
        let mut out = vec![];
        let locked = identity::users_locked_after(&self.db, now).await?;
        let orgs: HashMap<i64, String> = identity::organisation_codes(&self.db).await?;
        for u in locked {
            out.push(SecuritySignal {
                kind: SignalKind::AccountLocked.as_str().into(),
                org: orgs.get(&u.org_id).cloned().unwrap_or_default(),
                username: u.username,
                display_name: u.display_name,
                ips: vec![],
                at: u.locked_until.map_or(now, |t| t - LOCK_FOR),
                until: u.locked_until,
            });
        }
        let shared = identity::signals_since(&self.db, now - Duration::days(30)).await?;
        let mut users: HashMap<i64, user::Model> = HashMap::new();
        for s in shared {
            if let std::collections::hash_map::Entry::Vacant(e) = users.entry(s.user_id)
                && let Some(u) = identity::user_by_id(&self.db, s.user_id).await?
            {
                e.insert(u);
            }
            let Some(u) = users.get(&s.user_id) else {
                continue;
            };
            out.push(SecuritySignal {
                kind: s.kind.as_str().into(),
                username: u.username.clone(),
                display_name: u.display_name.clone(),
                org: orgs.get(&u.org_id).cloned().unwrap_or_default(),
                ips: s.detail.split(' ').map(str::to_owned).collect(),
                at: s.created_at,
                until: None,
            });
        }
        Ok(out)
    }
}
