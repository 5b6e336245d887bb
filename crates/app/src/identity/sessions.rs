//! Browser sessions: the session of a cookie, sign-out (here or everywhere), the forced and the
//! voluntary password change, the list of live sessions.

use crate::identity::tokens::principal_and_org;
use crate::{App, AppError, AppResult, event};
use changegate_api as wire;
use changegate_store::entity::{session, user};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::net::IpAddr;
use tracing::instrument;

use super::*;

/// One of a user's live sessions.
#[derive(Debug, Clone, Serialize)]
pub struct SessionRow {
    /// Row id.
    pub id: i64,
    /// Address it was opened from.
    pub ip: String,
    /// Browser.
    pub user_agent: String,
    /// Stage.
    pub stage: Stage,
    /// Signed in at.
    pub created_at: DateTime<Utc>,
    /// Last request.
    pub last_seen_at: DateTime<Utc>,
    /// Ends at.
    pub expires_at: DateTime<Utc>,
    /// Whether it is the session asking.
    pub current: bool,
}
impl App {
    /// The session of a cookie's token, used from `ip`: refreshes its idle expiry. Unknown,
    /// expired or revoked: Unauthorized ([`SESSION_ENDED`]). Used from an address outside the
    /// organisation's allow-list: Forbidden. Used from another address than the one it was
    /// opened from: the shared-account signal.
    pub async fn web_session(&self, token: &str, ip: IpAddr) -> AppResult<WebSession> {
        if !(20..=100).contains(&token.len()) {
            return Err(unauthorized_session());
        }
        let ip = ip.to_canonical();
        let now = crate::now();
        let row = store::session_by_token_hash(&self.db, &token_hash(token))
            .await?
            .filter(|r| is_live(r, now))
            .ok_or_else(unauthorized_session)?;
        let u = user_row(&self.db, row.user_id).await?;
        if !u.active {
            return Err(unauthorized_session());
        }
        let (principal, org) = principal_and_org(&self.db, &u).await?;
        if !ip_allowed(allow_list(&org), ip) {
            return Err(AppError::Forbidden(IP_NOT_ALLOWED.into()));
        }
        let mut row = row;
        if now - row.last_seen_at >= TOUCH_EVERY {
            let expires = (now + IDLE).min(row.created_at + ABSOLUTE);
            store::touch_session(&self.db, row.id, now, expires).await?;
            row.last_seen_at = now;
            row.expires_at = expires;
        }
        let here = ip.to_string();
        if here != row.ip {
            self.flag_shared(&principal, &row.ip, &here).await;
        }
        web_session(&row, principal, &u)
    }

    /// Signs out this session, or every session of its user (`everywhere`).
    pub async fn sign_out(&self, s: &WebSession, everywhere: bool) -> AppResult<()> {
        let tx = self.begin().await?;
        let at = tx.at();
        let n = if everywhere {
            revoke_sessions(&tx.txn, s.principal.user_id, None, at).await?
        } else {
            store::revoke_session(&tx.txn, s.id, at).await?
        };
        tx.audit(event(
            Some(&s.principal),
            "auth.logout",
            "session",
            s.id,
            None,
            None,
            Some(serde_json::json!({ "everywhere": everywhere, "sessions": n })),
        ))
        .await?;
        tx.commit().await
    }

    pub(super) async fn live_user(
        &self,
        s: &WebSession,
    ) -> AppResult<(session::Model, Stage, user::Model)> {
        let row = live_row(&self.db, s.id, crate::now()).await?;
        let stage = stage_of(&row)?;
        let u = user_row(&self.db, row.user_id).await?;
        if !u.active {
            return Err(unauthorized_session());
        }
        // A locked account's sessions that have not finished signing in cannot go on guessing.
        if stage != Stage::Active && u.locked_until.is_some_and(|t| t > crate::now()) {
            return Err(unauthorized_session());
        }
        Ok((row, stage, u))
    }

    /// Changes the password of the session's user. The new one must pass the policy
    /// (`changegate_domain::password::check`) and differ from the current one; refusals are
    /// `Invalid` on `new_password`. The current password is required (`current_password`)
    /// except in the [`Stage::ChangePassword`] stage, right after signing in with it. Moves the
    /// stage on; the user's other sessions are signed out.
    #[instrument(skip_all, fields(session = s.id), err(level = "info"))]
    pub async fn change_password(
        &self,
        s: &WebSession,
        current: Option<&str>,
        new: &str,
    ) -> AppResult<WebSession> {
        let (row, stage, u) = self.live_user(s).await?;
        if !matches!(stage, Stage::ChangePassword | Stage::Active) {
            return Err(wrong_stage(stage));
        }
        changegate_domain::password::check(&u.username, new)
            .map_err(|p| AppError::invalid("new_password", p.to_string()))?;
        if stage == Stage::Active {
            let Some(current) = current.filter(|c| !c.is_empty()) else {
                return Err(AppError::invalid(
                    "current_password",
                    "Hãy nhập mật khẩu hiện tại / enter the current password",
                ));
            };
            if !self.auth.verify_password(current, &u.password_hash).await? {
                let n = self
                    .record_failure(
                        &u,
                        &u.username,
                        "wrong_current_password",
                        s.ip,
                        "",
                        Some(s.id),
                    )
                    .await?;
                tokio::time::sleep(backoff(n)).await;
                return Err(AppError::invalid(
                    "current_password",
                    "Mật khẩu hiện tại không đúng / the current password is wrong",
                ));
            }
        }
        if self.auth.verify_password(new, &u.password_hash).await? {
            return Err(AppError::invalid(
                "new_password",
                "Mật khẩu mới phải khác mật khẩu hiện tại / the new password must differ from the current one",
            ));
        }
        let hash = self.auth.hash_password(new).await?;
        let role = *u.role;
        let next = if stage == Stage::Active {
            Stage::Active
        } else {
            super::after_password_change(&u, role)
        };
        let tx = self.begin().await?;
        let at = tx.at();
        let row = live_row(&tx.txn, row.id, at).await?;
        let fresh = user_row(&tx.txn, u.id).await?;
        if fresh.password_hash != u.password_hash {
            return Err(AppError::Conflict(
                wire::ProblemCode::PasswordChanged,
                "Mật khẩu vừa được đổi ở nơi khác / the password was changed meanwhile".into(),
            ));
        }
        let fresh = store::set_password(&tx.txn, &fresh, hash, next == Stage::Active).await?;
        let row = store::set_session_stage(&tx.txn, row, next).await?;
        // Every other session ends, also one opened with the same one-time password by someone
        // else (it could otherwise set a password without knowing the current one).
        let revoked = revoke_sessions(&tx.txn, u.id, Some(row.id), at).await?;
        tx.audit(event(
            Some(&s.principal),
            "user.password_change",
            "user",
            &u.username,
            None,
            Some(serde_json::json!({ "must_change_password": u.must_change_password })),
            Some(serde_json::json!({ "must_change_password": false, "stage": next.as_str(), "other_sessions_signed_out": revoked })),
        ))
        .await?;
        tx.commit().await?;
        web_session(&row, s.principal.clone(), &fresh)
    }

    /// The live sessions of the session's user, the most recently used first.
    pub async fn list_sessions(&self, s: &WebSession) -> AppResult<Vec<SessionRow>> {
        s.active()?;
        let now = crate::now();
        let rows = store::live_sessions_of(&self.db, s.principal.user_id, now).await?;
        Ok(rows
            .into_iter()
            .filter(|r| r.created_at + ABSOLUTE > now)
            .map(|r| SessionRow {
                id: r.id,
                current: r.id == s.id,
                stage: *r.stage,
                ip: r.ip,
                user_agent: r.user_agent,
                created_at: r.created_at,
                last_seen_at: r.last_seen_at,
                expires_at: r.expires_at,
            })
            .collect())
    }
}
