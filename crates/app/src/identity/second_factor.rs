//! The second factor: TOTP enrolment, the code at sign-in, and the sign-off with its code (web
//! and API), where the code is consumed in the sign-off's own transaction.

use crate::identity::tokens::Principal;
use crate::{App, AppError, AppResult, event, totp};
use changegate_api as wire;
use changegate_domain::Role;
use changegate_store::entity::{session, user};
use changegate_store::identity;
use serde::Serialize;
use std::net::IpAddr;
use tracing::instrument;

use super::*;

/// A second factor being enrolled: what the authenticator app needs.
#[derive(Debug, Clone, Serialize)]
pub struct TotpEnrolment {
    /// The secret, base32.
    pub secret_base32: String,
    /// The `otpauth://` URI (for a QR code).
    pub otpauth_uri: String,
}
pub(super) fn may_enrol(stage: Stage, u: &user::Model) -> AppResult<()> {
    match stage {
        Stage::EnrolSecondFactor | Stage::Active if u.totp_secret.is_none() => Ok(()),
        Stage::EnrolSecondFactor | Stage::Active => Err(AppError::Conflict(
            wire::ProblemCode::AlreadyEnrolled,
            "Tài khoản đã có xác thực hai lớp / the account already has a second factor".into(),
        )),
        other => Err(wrong_stage(other)),
    }
}
impl App {
    /// Starts (or shows again) the enrolment of a second factor: a new secret is stored as
    /// pending until a code from it is confirmed. In the [`Stage::EnrolSecondFactor`] stage, or
    /// from an active session of a user without one.
    pub async fn totp_enrolment(&self, s: &WebSession) -> AppResult<TotpEnrolment> {
        let (_, stage, u) = self.live_user(s).await?;
        may_enrol(stage, &u)?;
        let secret = match u.totp_pending.clone() {
            Some(p) => p,
            None => {
                let secret = totp::new_secret();
                let tx = self.begin().await?;
                let fresh = user_row(&tx.txn, u.id).await?;
                identity::start_totp_enrolment(&tx.txn, fresh, secret.clone()).await?;
                tx.audit(event(
                    Some(&s.principal),
                    "user.second_factor_enrolment",
                    "user",
                    &u.username,
                    None,
                    None,
                    Some(serde_json::json!({ "started": true })),
                ))
                .await?;
                tx.commit().await?;
                secret
            }
        };
        Ok(TotpEnrolment {
            otpauth_uri: totp::otpauth_uri(&u.username, &secret),
            secret_base32: secret,
        })
    }

    /// Confirms the pending second factor with a code from it; the session becomes active.
    /// A wrong code is `Invalid` on `code` and counts as a failure towards the lock.
    pub async fn confirm_totp(&self, s: &WebSession, code: &str) -> AppResult<WebSession> {
        let (row, stage, u) = self.live_user(s).await?;
        may_enrol(stage, &u)?;
        let Some(pending) = u.totp_pending.clone() else {
            return Err(AppError::Conflict(
                wire::ProblemCode::NoEnrolment,
                "Chưa bắt đầu đăng ký xác thực hai lớp / no second-factor enrolment was started"
                    .into(),
            ));
        };
        let key = totp::base32_decode(&pending)
            .ok_or_else(|| AppError::Internal("stored TOTP secret is not base32".into()))?;
        let Some(step) = totp::verify(&key, code, crate::now().timestamp(), None) else {
            return Err(self.second_factor_failed(&s.code_use(), &u).await);
        };
        let tx = self.begin().await?;
        let at = tx.at();
        let row = live_row(&tx.txn, row.id, at).await?;
        let fresh = user_row(&tx.txn, u.id).await?;
        if fresh.totp_secret.is_some() {
            return Err(AppError::Conflict(
                wire::ProblemCode::AlreadyEnrolled,
                "Tài khoản đã có xác thực hai lớp / the account already has a second factor".into(),
            ));
        }
        if fresh.totp_pending.as_deref() != Some(pending.as_str()) {
            return Err(AppError::Conflict(
                wire::ProblemCode::NoEnrolment,
                "Việc đăng ký đã thay đổi, hãy thử lại / the enrolment changed meanwhile, try again"
                    .into(),
            ));
        }
        let fresh = identity::enrol_totp(&tx.txn, fresh, pending, at, step).await?;
        let row = identity::set_session_stage(&tx.txn, row, Stage::Active).await?;
        // Any other session of the account (which could have read the same pending secret) ends.
        let revoked = revoke_sessions(&tx.txn, u.id, Some(row.id), at).await?;
        tx.audit(event(
            Some(&s.principal),
            "user.second_factor_enrol",
            "user",
            &u.username,
            None,
            Some(serde_json::json!({ "second_factor": false })),
            Some(serde_json::json!({ "second_factor": true, "stage": Stage::Active.as_str(), "other_sessions_signed_out": revoked })),
        ))
        .await?;
        tx.commit().await?;
        web_session(&row, s.principal.clone(), &fresh)
    }

    pub(super) async fn second_factor_failed(&self, by: &CodeUse<'_>, u: &user::Model) -> AppError {
        match self
            .record_failure(u, &u.username, "wrong_second_factor", by.ip, "", by.session)
            .await
        {
            Ok(n) => {
                tokio::time::sleep(backoff(n)).await;
                AppError::invalid(by.field, WRONG_CODE)
            }
            Err(e) => e,
        }
    }

    /// Checks a code from the user's authenticator and consumes its step (a code is accepted
    /// once), in `tx`: the caller's write transaction, so the code is used up only if what it
    /// authorises commits with it. The lock, the check and the failure count happen in that one
    /// transaction, so guesses sent at once are counted one after another and none gets past the
    /// lock. A right code of a step already used is refused without counting: it cannot
    /// succeed, and a script that resends its code should not lock its owner out. With a web
    /// session and `next`, the session moves to that stage; returns the session row then.
    /// Through the API, a code opens the token's step-up window.
    ///
    /// A wrong code is `Ok(Err(failures))`: the failure is counted in `tx`, which the caller
    /// commits (and nothing else) before it answers [`WRONG_CODE`] after [`backoff`].
    pub(super) async fn use_code_in(
        &self,
        tx: &crate::WriteTx<'_>,
        by: &CodeUse<'_>,
        u: &user::Model,
        code: &str,
        purpose: serde_json::Value,
        next: Option<Stage>,
    ) -> AppResult<Result<Option<session::Model>, i32>> {
        let at = tx.at();
        let row = match by.session {
            Some(id) => Some(live_row(&tx.txn, id, at).await?),
            None => None,
        };
        let fresh = user_row(&tx.txn, u.id).await?;
        let Some(secret) = fresh.totp_secret.clone() else {
            return Err(AppError::Forbidden(NO_SECOND_FACTOR.into()));
        };
        if let Some(until) = fresh.locked_until.filter(|t| *t > at) {
            return Err(locked(until));
        }
        let key = totp::base32_decode(&secret)
            .ok_or_else(|| AppError::Internal("stored TOTP secret is not base32".into()))?;
        let Some(step) = totp::verify(&key, code, at.timestamp(), fresh.totp_last_step) else {
            if totp::verify(&key, code, at.timestamp(), None).is_some() {
                // Already used (another tab, a replay): refused, not counted.
                return Err(AppError::invalid(by.field, WRONG_CODE));
            }
            let n = record_failure_in(
                tx,
                fresh.id,
                &fresh.username,
                "wrong_second_factor",
                by.ip,
                "",
                by.session,
            )
            .await?;
            return Ok(Err(n));
        };
        let fresh_id = fresh.id;
        identity::use_totp_step(&tx.txn, fresh, step).await?;
        if let (None, Some(token)) = (by.session, by.principal.token_id) {
            identity::open_step_up_window(&tx.txn, token, fresh_id, at + API_STEP_UP).await?;
        }
        let row = match (row, next) {
            (Some(row), Some(stage)) => {
                Some(identity::set_session_stage(&tx.txn, row, stage).await?)
            }
            _ => None,
        };
        let (entity, entity_id) = match by.session {
            Some(id) => ("session", id.to_string()),
            None => ("user", u.username.clone()),
        };
        tx.audit(event(
            Some(by.principal),
            "auth.second_factor",
            entity,
            entity_id,
            None,
            None,
            Some(purpose),
        ))
        .await?;
        Ok(Ok(row))
    }

    /// Commits `tx` holding only a wrong code's failure count, waits the backoff and answers
    /// [`WRONG_CODE`] on the code's field.
    async fn wrong_code(&self, tx: crate::WriteTx<'_>, by: &CodeUse<'_>, n: i32) -> AppError {
        if let Err(e) = tx.commit().await {
            return e;
        }
        tokio::time::sleep(backoff(n)).await;
        AppError::invalid(by.field, WRONG_CODE)
    }

    /// [`App::use_code_in`] in a transaction of its own (the code at sign-in).
    async fn consume_code(
        &self,
        by: CodeUse<'_>,
        u: &user::Model,
        code: &str,
        purpose: serde_json::Value,
        next: Option<Stage>,
    ) -> AppResult<Option<session::Model>> {
        let tx = self.begin().await?;
        match self.use_code_in(&tx, &by, u, code, purpose, next).await? {
            Ok(row) => {
                tx.commit().await?;
                Ok(row)
            }
            Err(n) => Err(self.wrong_code(tx, &by, n).await),
        }
    }

    /// Signs off change request `cr_id` in one write transaction with the code that authorises
    /// it: the code is used up (and an API token's step-up window opened) only if the sign-off
    /// commits. A sign-off that loses a race (the change was approved meanwhile, the reviewer
    /// signed in another tab) leaves the code unused. `code` None: within the token's step-up
    /// window, checked again in the transaction.
    pub(super) async fn sign_off_coded(
        &self,
        by: CodeUse<'_>,
        u: &user::Model,
        code: Option<&str>,
        purpose: serde_json::Value,
        cr_id: i64,
        req: wire::NewSignOff,
    ) -> AppResult<wire::ChangeRequest> {
        let tx = self.begin().await?;
        match code {
            Some(code) => {
                if let Err(n) = self.use_code_in(&tx, &by, u, code, purpose, None).await? {
                    return Err(self.wrong_code(tx, &by, n).await);
                }
            }
            None => {
                let fresh = user_row(&tx.txn, u.id).await?;
                let window = match by.principal.token_id {
                    Some(id) => identity::token_by_id(&tx.txn, id)
                        .await?
                        .and_then(|t| t.step_up_until),
                    None => None,
                };
                let at = tx.at();
                if fresh.totp_secret.is_none() {
                    return Err(AppError::Forbidden(NO_SECOND_FACTOR.into()));
                }
                if let Some(until) = fresh.locked_until.filter(|t| *t > at) {
                    return Err(locked(until));
                }
                if window.is_none_or(|t| t <= at) {
                    return Err(AppError::invalid(by.field, CODE_REQUIRED));
                }
            }
        }
        let view = self.sign_off_in(&tx, by.principal, cr_id, req).await?;
        tx.commit().await?;
        Ok(view)
    }

    /// The second factor at sign-in: a right code (not used before) makes the session active.
    /// A wrong one is `Invalid` on `code` and counts as a failure towards the lock.
    pub async fn check_second_factor(&self, s: &WebSession, code: &str) -> AppResult<WebSession> {
        let (_, stage, u) = self.live_user(s).await?;
        if stage != Stage::SecondFactor {
            return Err(wrong_stage(stage));
        }
        let row = self
            .consume_code(
                s.code_use(),
                &u,
                code,
                serde_json::json!({ "purpose": "sign_in", "stage": changegate_domain::roles::SessionStage::Active.as_str() }),
                Some(Stage::Active),
            )
            .await?
            .ok_or_else(|| AppError::Internal("the session was not updated".into()))?;
        web_session(&row, s.principal.clone(), &u)
    }

    /// Signs off a change request after asking the second factor again. A form the sign-off would
    /// refuse is refused first, with the code left unused; then the code is checked and used up,
    /// and [`App::sign_off`] records the evaluation.
    pub async fn sign_off_with_second_factor(
        &self,
        s: &WebSession,
        cr_id: i64,
        req: wire::NewSignOff,
        code: &str,
    ) -> AppResult<wire::ChangeRequest> {
        let (_, stage, u) = self.live_user(s).await?;
        if stage != Stage::Active {
            return Err(wrong_stage(stage));
        }
        s.principal
            .require(&[Role::Reviewer], "signing off a change request")?;
        // A form the sign-off would refuse (a missing note, separation of duties, a change no
        // longer submitted) is refused before the code is used up.
        self.check_sign_off(&s.principal, cr_id, &req).await?;
        self.sign_off_coded(
            s.code_use(),
            &u,
            Some(code),
            serde_json::json!({ "purpose": "sign_off", "change_request": cr_id }),
            cr_id,
            req,
        )
        .await
    }

    /// Signs off a change request through the API (a bearer token). A token alone cannot sign
    /// off: the request carries a code from the reviewer's authenticator in
    /// `second_factor_code`, which opens a step-up window of [`API_STEP_UP`] in which that
    /// token's further API sign-offs need no code. As on the web, a sign-off that would be
    /// refused is refused before the code is looked at, and a wrong code counts towards the lock.
    #[instrument(skip_all, fields(id = cr_id), err(level = "info"))]
    pub async fn sign_off_with_code(
        &self,
        who: &Principal,
        cr_id: i64,
        mut req: wire::NewSignOff,
        ip: IpAddr,
    ) -> AppResult<wire::ChangeRequest> {
        let code = req.second_factor_code.take().unwrap_or_default();
        let code = code.trim();
        let u = user_row(&self.db, who.user_id).await?;
        let now = crate::now();
        let locked_until = u.locked_until.filter(|t| *t > now);
        // The window is the token's that gave the code: another token of the account (an old
        // script's, a leaked one) still needs a code of its own.
        let stepped_up = match who.token_id {
            Some(id) => identity::token_by_id(&self.db, id)
                .await?
                .and_then(|t| t.step_up_until)
                .is_some_and(|t| t > now),
            None => false,
        };
        let by = CodeUse {
            principal: who,
            session: None,
            ip,
            field: "second_factor_code",
        };
        let purpose = serde_json::json!({ "purpose": "sign_off", "change_request": cr_id, "via": "api",
                "ip": ip.to_string(), "token": who.token_id });
        if code.is_empty() && stepped_up && u.totp_secret.is_some() && locked_until.is_none() {
            // Within the window: the sign-off checks it again, and everything else, in its
            // transaction.
            return self.sign_off_coded(by, &u, None, purpose, cr_id, req).await;
        }
        // Whether this person may sign off this change with this form at all, first: the
        // answers of a caller who may not see the change or sign off stay as they were, and a
        // refused form leaves the code unused.
        self.check_sign_off(who, cr_id, &req).await?;
        if u.totp_secret.is_none() {
            return Err(AppError::Forbidden(NO_SECOND_FACTOR.into()));
        }
        if let Some(until) = locked_until {
            return Err(locked(until));
        }
        if code.is_empty() {
            return Err(AppError::invalid("second_factor_code", CODE_REQUIRED));
        }
        self.sign_off_coded(by, &u, Some(code), purpose, cr_id, req)
            .await
    }
}
