//! Admin resets: unlock an account, reset its password or its second factor.

use crate::identity::tokens::Principal;
use crate::registry::user_by_name;
use crate::{App, AppError, AppResult, event};
use changegate_domain::Role;
use tracing::instrument;

use super::*;

impl App {
    /// Unlocks an account locked after failed sign-ins (admin).
    #[instrument(skip_all, fields(username = ?username), err(level = "info"))]
    pub async fn unlock_user(&self, who: &Principal, username: &str) -> AppResult<()> {
        who.require(&[Role::Admin], "unlocking an account")?;
        let tx = self.begin().await?;
        let u = user_by_name(&tx.txn, username).await?;
        let before =
            serde_json::json!({ "locked_until": u.locked_until, "failed_logins": u.failed_logins });
        store::unlock_user(&tx.txn, &u).await?;
        tx.audit(event(
            Some(who),
            "user.unlock",
            "user",
            &u.username,
            None,
            Some(before),
            Some(serde_json::json!({ "locked_until": null, "failed_logins": 0 })),
        ))
        .await?;
        tx.commit().await?;
        // The sign-in throttles of the account end too (in this process).
        self.sessions.throttle.forget_account(&u.username);
        Ok(())
    }

    /// Gives an account a new one-time password (admin; a forgotten password), to be changed at
    /// the next sign-in; the account is unlocked and its sessions are signed out. Returns the
    /// one-time password, to be shown once.
    #[instrument(skip_all, fields(username = ?username), err(level = "info"))]
    pub async fn reset_password(&self, who: &Principal, username: &str) -> AppResult<String> {
        who.require(&[Role::Admin], "resetting a password")?;
        if username == crate::registry::SERVICE_USER {
            return Err(AppError::invalid(
                "username",
                "Tài khoản của việc định kỳ không đăng nhập được / the scheduled-jobs account cannot sign in",
            ));
        }
        let otp = crate::identity::tokens::one_time_password();
        let hash = self.auth.hash_password(&otp).await?;
        let tx = self.begin().await?;
        let at = tx.at();
        let u = user_by_name(&tx.txn, username).await?;
        store::reset_password(&tx.txn, &u, hash).await?;
        // A reset answers a compromise: the API step-up windows close too.
        close_step_up(&tx.txn, u.id).await?;
        let revoked = revoke_sessions(&tx.txn, u.id, None, at).await?;
        tx.audit(event(
            Some(who),
            "user.reset_password",
            "user",
            &u.username,
            None,
            None,
            Some(
                serde_json::json!({ "must_change_password": true, "sessions_signed_out": revoked }),
            ),
        ))
        .await?;
        tx.commit().await?;
        Ok(otp)
    }

    /// Removes an account's second factor (admin; a lost phone): its sessions are signed out,
    /// and at the next sign-in a reviewer or admin must enrol again.
    #[instrument(skip_all, fields(username = ?username), err(level = "info"))]
    pub async fn reset_second_factor(&self, who: &Principal, username: &str) -> AppResult<()> {
        who.require(&[Role::Admin], "resetting a second factor")?;
        let tx = self.begin().await?;
        let at = tx.at();
        let u = user_by_name(&tx.txn, username).await?;
        let had = u.totp_secret.is_some();
        store::remove_second_factor(&tx.txn, &u).await?;
        close_step_up(&tx.txn, u.id).await?;
        let revoked = revoke_sessions(&tx.txn, u.id, None, at).await?;
        tx.audit(event(
            Some(who),
            "user.second_factor_reset",
            "user",
            &u.username,
            None,
            Some(serde_json::json!({ "second_factor": had })),
            Some(serde_json::json!({ "second_factor": false, "sessions_signed_out": revoked })),
        ))
        .await?;
        tx.commit().await
    }
}
