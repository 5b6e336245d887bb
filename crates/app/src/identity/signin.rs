//! Sign-in with throttling and backoff: wrong usernames and wrong passwords get the same answer
//! after the same work; failures throttle the address that sends them ([`throttle`]), and lock
//! the account only far above that; five wrong codes in a row lock the account for 15 minutes.

use crate::identity::tokens::principal_and_org;
use crate::{App, AppError, AppResult, event};
use changegate_store::audit::NewEvent;
use changegate_store::entity::user;
use changegate_store::identity::NewSession;
use chrono::{DateTime, Duration, Utc};
use std::collections::HashSet;
use std::net::IpAddr;
use tracing::instrument;

use super::*;

/// How long to wait before answering after the `n`th failure in a row: 200 ms doubling, at most
/// 3.2 s.
pub fn backoff(n: i32) -> std::time::Duration {
    if n <= 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::from_millis(200u64 << (n - 1).clamp(0, 4))
}
/// The audit event of a sign-in attempt in the name of whoever was claimed.
pub(super) fn attempt_event(
    claimed: &str,
    user_id: Option<i64>,
    action: &str,
    after: serde_json::Value,
) -> NewEvent {
    let who = if claimed.is_empty() {
        "anonymous".to_owned()
    } else {
        clip(claimed, 64)
    };
    NewEvent {
        actor: who.clone(),
        actor_id: user_id,
        action: action.to_owned(),
        entity: "user".to_owned(),
        entity_id: who,
        system_id: None,
        before: None,
        after: Some(after.to_string()),
    }
}
/// Counts a failed second-factor code or current password of user `user_id` in `tx` (someone
/// who holds the password or a session): audited, and the fifth in a row locks the account
/// (audited and notified; its sessions still signing in end). Returns the count.
pub(super) async fn record_failure_in(
    tx: &crate::WriteTx<'_>,
    user_id: i64,
    claimed: &str,
    reason: &str,
    ip: IpAddr,
    ua: &str,
    session: Option<i64>,
) -> AppResult<i32> {
    let at = tx.at();
    let fresh = user_row(&tx.txn, user_id).await?;
    let already_locked = fresh.locked_until.is_some_and(|t| t > at);
    let n = if already_locked {
        LOCK_AFTER
    } else {
        fresh.failed_logins.saturating_add(1)
    };
    let locks = !already_locked && n >= LOCK_AFTER;
    if !already_locked && !locks {
        store::set_failures(&tx.txn, &fresh, n).await?;
    }
    let action = if reason == "wrong_second_factor" {
        "auth.second_factor_failed"
    } else {
        "auth.login_failed"
    };
    tx.audit(attempt_event(
            claimed,
            Some(fresh.id),
            action,
            serde_json::json!({ "reason": reason, "ip": ip.to_string(), "user_agent": ua, "failures": n, "session": session }),
        ))
        .await?;
    if locks {
        lock_account_in(tx, &fresh, at + LOCK_FOR, n, ip).await?;
    }
    Ok(n)
}

/// Locks account `fresh` until `until` in `tx` after `failures`: every session of the account
/// still signing in ends; audited (`account.locked`) and notified.
pub(super) async fn lock_account_in(
    tx: &crate::WriteTx<'_>,
    fresh: &user::Model,
    until: DateTime<Utc>,
    failures: i32,
    ip: IpAddr,
) -> AppResult<()> {
    let at = tx.at();
    store::lock_user(&tx.txn, fresh, until).await?;
    // A signed-in session that failed (a wrong code on the sign-off form) stays, so that the
    // form's answers are not lost: every code is refused until the lock lifts anyway.
    let revoked = store::revoke_unfinished_sessions_of(&tx.txn, fresh.id, at).await?;
    tx.audit(event(
            None,
            "account.locked",
            "user",
            &fresh.username,
            None,
            None,
            Some(serde_json::json!({ "until": until, "failures": failures, "ip": ip.to_string(), "revoked_sessions": revoked })),
        ))
        .await?;
    tx.notify(
        "account.locked",
        serde_json::json!({ "username": fresh.username, "display_name": fresh.display_name,
                "until": until.to_rfc3339(), "ip": ip.to_string(), "failures": failures }),
    )
    .await?;
    Ok(())
}
impl App {
    /// Signs in with a username and password from `ip`. A wrong username, a wrong password, an
    /// inactive or a pipeline account all answer [`WRONG_CREDENTIALS`] after the same work and
    /// backoff; every failure is audited (`auth.login_failed`, with the reason), as is every
    /// success (`auth.login`). Failures throttle the address that sends them ([`throttle`]):
    /// while throttled, a sign-in is refused with the time it lifts ([`AppError::Throttled`])
    /// before any password is looked at; a locked account answers [`AppError::Locked`] with the
    /// time it lifts. From outside the organisation's IP allow-list a right and a wrong password
    /// get the same answer ([`IP_NOT_ALLOWED`]) after the same work, and never count towards the
    /// account's lock.
    #[instrument(skip_all, fields(%ip), err(level = "info"))]
    pub async fn sign_in(
        &self,
        username: &str,
        password: &str,
        ip: IpAddr,
        user_agent: &str,
    ) -> AppResult<SignedIn> {
        let ip = ip.to_canonical();
        let claimed = clip(&username.trim().to_lowercase(), 64);
        let ua = clip(user_agent, 300);
        if let Some(blocked) = self.sessions.throttle.blocked(&claimed, ip, crate::now()) {
            return self.refuse_blocked(&claimed, blocked, ip, &ua).await;
        }
        let found = if claimed.is_empty() {
            None
        } else {
            store::user_by_username(&self.db, &claimed).await?
        };
        let phc = found
            .as_ref()
            .map_or_else(|| DUMMY_HASH.clone(), |u| u.password_hash.clone());
        let right = self.auth.verify_password(password, &phc).await? && found.is_some();
        let now = crate::now();
        let Some(u) = found else {
            return self.unknown_user_failed(&claimed, ip, &ua, now).await;
        };
        let role = *u.role;
        let (principal, org) = principal_and_org(&self.db, &u).await?;
        if !ip_allowed(allow_list(&org), ip) {
            // A right and a wrong password alike: the same count (towards this address's
            // throttle only), audit, wait and answer, so the refusal tells nothing.
            let f = self.sessions.throttle.failed(&claimed, ip, false, now);
            let tx = self.begin().await?;
            tx.audit(attempt_event(
                &claimed,
                Some(u.id),
                "auth.login_failed",
                serde_json::json!({ "reason": "ip_not_allowed", "ip": ip.to_string(), "user_agent": ua, "failures": f.pair }),
            ))
            .await?;
            tx.commit().await?;
            tokio::time::sleep(backoff(f.pair as i32)).await;
            return Err(AppError::Forbidden(IP_NOT_ALLOWED.into()));
        }
        if let Some(until) = u.locked_until.filter(|t| *t > now) {
            let tx = self.begin().await?;
            tx.audit(attempt_event(
                &claimed,
                Some(u.id),
                "auth.login_failed",
                serde_json::json!({ "reason": "locked", "ip": ip.to_string(), "user_agent": ua, "until": until }),
            ))
            .await?;
            tx.commit().await?;
            return Err(AppError::Locked(until));
        }
        let refusal = if !u.active {
            Some("inactive")
        } else if role.is_machine() {
            Some("pipeline_account")
        } else if !right {
            Some("wrong_password")
        } else {
            None
        };
        if let Some(reason) = refusal {
            let f = self.sessions.throttle.failed(&claimed, ip, true, now);
            let tx = self.begin().await?;
            tx.audit(attempt_event(
                &claimed,
                Some(u.id),
                "auth.login_failed",
                serde_json::json!({ "reason": reason, "ip": ip.to_string(), "user_agent": ua, "failures": f.pair }),
            ))
            .await?;
            if let Some(until) = f.locks_account {
                let fresh = user_row(&tx.txn, u.id).await?;
                let n = i32::try_from(throttle::ACCOUNT_LOCK_AFTER).unwrap_or(i32::MAX);
                lock_account_in(&tx, &fresh, until, n, ip).await?;
            }
            tx.commit().await?;
            tokio::time::sleep(backoff(f.pair as i32)).await;
            return Err(AppError::Unauthorized(WRONG_CREDENTIALS.into()));
        }
        self.sessions.throttle.succeeded(&claimed, ip);
        let stage = super::after_password(&u, role);
        let token = random_token();
        let tx = self.begin().await?;
        let at = tx.at();
        // The failure count starts again only once the whole sign-in succeeded: a right password
        // alone must not reset the count of wrong second-factor codes (sign in, guess four codes,
        // sign in again, ...).
        if stage == Stage::Active {
            store::clear_failures(&tx.txn, &u).await?;
        }
        let row = store::open_session(
            &tx.txn,
            NewSession {
                token_hash: token_hash(&token),
                user_id: u.id,
                stage,
                csrf: random_token(),
                ip: ip.to_string(),
                user_agent: ua.clone(),
                at,
                expires_at: at + IDLE,
            },
        )
        .await?;
        // The account's sessions that ended over a day ago are deleted (the audit log keeps
        // their sign-in and sign-out), so that the table holds live sessions, not every one ever.
        let ended = at - Duration::days(1);
        let pruned = store::prune_sessions_of(&tx.txn, u.id, ended, ended - ABSOLUTE).await?;
        tx.audit(event(
            Some(&principal),
            "auth.login",
            "session",
            row.id,
            None,
            None,
            Some(serde_json::json!({ "ip": row.ip, "user_agent": ua, "stage": stage.as_str(), "ended_sessions_deleted": pruned })),
        ))
        .await?;
        tx.commit().await?;
        // Other live sessions of this account from other addresses: the shared-account signal.
        let others = store::live_sessions_elsewhere(&self.db, u.id, now, &row.ip).await?;
        let ips: HashSet<String> = others.into_iter().map(|s| s.ip).collect();
        for other in ips {
            self.flag_shared(&principal, &other, &row.ip).await;
        }
        let session = web_session(&row, principal, &u)?;
        Ok(SignedIn { token, session })
    }

    pub(super) async fn unknown_user_failed(
        &self,
        claimed: &str,
        ip: IpAddr,
        ua: &str,
        now: DateTime<Utc>,
    ) -> AppResult<SignedIn> {
        // Counted like a known account's failure, so that the answers stay alike.
        let f = self.sessions.throttle.failed(claimed, ip, true, now);
        let tx = self.begin().await?;
        tx.audit(attempt_event(
            claimed,
            None,
            "auth.login_failed",
            serde_json::json!({ "reason": "unknown_user", "ip": ip.to_string(), "user_agent": ua, "failures": f.pair }),
        ))
        .await?;
        tx.commit().await?;
        tokio::time::sleep(backoff(f.pair as i32)).await;
        Err(AppError::Unauthorized(WRONG_CREDENTIALS.into()))
    }

    /// A sign-in stopped before its password is looked at: audited, refused with the time it
    /// lifts.
    async fn refuse_blocked(
        &self,
        claimed: &str,
        blocked: throttle::Blocked,
        ip: IpAddr,
        ua: &str,
    ) -> AppResult<SignedIn> {
        let (reason, until, e) = match blocked {
            throttle::Blocked::Throttled(t) => ("throttled", t, AppError::Throttled(t)),
            throttle::Blocked::Locked(t) => ("locked", t, AppError::Locked(t)),
        };
        let tx = self.begin().await?;
        tx.audit(attempt_event(
            claimed,
            None,
            "auth.login_failed",
            serde_json::json!({ "reason": reason, "ip": ip.to_string(), "user_agent": ua, "until": until }),
        ))
        .await?;
        tx.commit().await?;
        Err(e)
    }

    /// Records a failure of `u` (password at sign-in, current password, second-factor code) in
    /// one transaction: counts it, locks the account at the fifth in a row (and revokes
    /// `session`, the session in which it happened, if any), audits it. Returns the count for
    /// the backoff.
    pub(super) async fn record_failure(
        &self,
        u: &user::Model,
        claimed: &str,
        reason: &str,
        ip: IpAddr,
        ua: &str,
        session: Option<i64>,
    ) -> AppResult<i32> {
        let tx = self.begin().await?;
        let n = record_failure_in(&tx, u.id, claimed, reason, ip, ua, session).await?;
        tx.commit().await?;
        Ok(n)
    }
}
