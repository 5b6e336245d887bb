//! Accounts over their life (issue 11): the list an admin filters and pages, deactivation of
//! someone who left, reactivation, another role or organisation. The rules (not oneself, not the
//! last active admin, one way each) are the domain's ([`check_account_change`]); here each change
//! is one write transaction with its audit event, and ends the account's sessions and API tokens
//! in that same transaction. Token verification reads the account's active flag and the token's
//! revocation from the database on every request ([`super::tokens::AuthCache::authenticate`]),
//! so no cache, in this replica or another, keeps a deactivated account's token alive.

use crate::identity::tokens::Principal;
use crate::registry::{SERVICE_USER, org_by_code, user_by_name};
use crate::{App, AppError, AppResult, event};
use changegate_api as wire;
use changegate_domain::change::{check_text, search_words};
use changegate_domain::password::fold;
use changegate_domain::{
    Account, AccountChange, AccountRefusal, AccountStatus, Role, check_account_change,
};
use changegate_store::entity::user;
use changegate_store::identity::{self as store, UserQuery};
use changegate_store::sea_orm::ConnectionTrait;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use tracing::instrument;

use super::{close_step_up, revoke_sessions};

/// Accounts per page of the list, unless `limit` says otherwise.
pub const USERS_PER_PAGE: u64 = 50;

/// Filters of the list of accounts (all optional; a bad one is refused naming its field).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct UserFilter {
    /// Organisation code.
    pub org: Option<String>,
    /// Role.
    pub role: Option<String>,
    /// `active`, `inactive` or `locked`.
    pub status: Option<String>,
    /// Words of the username or full name, with or without diacritics.
    pub q: Option<String>,
    /// Page, from 1.
    pub page: Option<u64>,
    /// Items per page, 1-500 (default 50).
    pub limit: Option<u64>,
}

fn given(o: &Option<String>) -> Option<&str> {
    o.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn refusal(r: AccountRefusal, username: &str) -> AppError {
    use wire::ProblemCode as P;
    let code = match r {
        AccountRefusal::OwnAccount => P::OwnAccount,
        AccountRefusal::LastAdmin => P::LastAdmin,
        AccountRefusal::AlreadyInactive => P::AlreadyInactive,
        AccountRefusal::AlreadyActive => P::AlreadyActive,
        AccountRefusal::Inactive => P::AccountInactive,
        AccountRefusal::RoleDoesNotFitOrg => {
            return AppError::invalid("role", format!("{username}: {r}"));
        }
    };
    AppError::Conflict(code, format!("{username}: {r}"))
}

fn account(u: &user::Model) -> Account {
    Account {
        id: u.id,
        role: *u.role,
        active: u.active,
    }
}

/// The user row of `username`, which must not be changegate's own jobs account.
async fn target(db: &impl ConnectionTrait, username: &str) -> AppResult<user::Model> {
    if username == SERVICE_USER {
        return Err(AppError::NotFound(format!("user {username:?}")));
    }
    user_by_name(db, username).await
}

async fn active_admins(db: &impl ConnectionTrait) -> AppResult<u64> {
    Ok(store::count_active_with_role(db, Role::Admin).await?)
}

/// Ends everything the account signed in with: its API step-up windows, its sessions and its
/// tokens. Answers how many sessions ended and which tokens were revoked.
async fn end_credentials(
    db: &impl ConnectionTrait,
    user_id: i64,
    at: DateTime<Utc>,
) -> AppResult<(u64, Vec<String>)> {
    close_step_up(db, user_id).await?;
    let sessions = revoke_sessions(db, user_id, None, at).await?;
    Ok((sessions, store::revoke_tokens_of(db, user_id, at).await?))
}

fn summary(
    u: user::Model,
    orgs: &HashMap<i64, String>,
    names: &HashMap<i64, String>,
    now: DateTime<Utc>,
) -> wire::UserSummary {
    wire::UserSummary {
        org: orgs.get(&u.org_id).cloned().unwrap_or_default(),
        deactivated_by: u
            .deactivated_by
            .map(|id| names.get(&id).cloned().unwrap_or_default()),
        locked_until: u.locked_until.filter(|t| *t > now && u.active),
        second_factor: u.totp_secret.is_some(),
        username: u.username,
        display_name: u.display_name,
        role: u.role.to_string(),
        active: u.active,
        must_change_password: u.must_change_password,
        created_at: u.created_at,
        deactivated_at: u.deactivated_at.filter(|_| !u.active),
        deactivation_reason: u.deactivation_reason.filter(|_| !u.active),
    }
}

impl App {
    async fn org_codes(&self, db: &impl ConnectionTrait) -> AppResult<HashMap<i64, String>> {
        Ok(store::organisation_codes(db).await?)
    }

    async fn user_summary(
        &self,
        db: &impl ConnectionTrait,
        u: user::Model,
    ) -> AppResult<wire::UserSummary> {
        let orgs = self.org_codes(db).await?;
        let mut names = HashMap::new();
        if let Some(by) = u.deactivated_by
            && let Some(b) = store::user_by_id(db, by).await?
        {
            names.insert(b.id, b.username);
        }
        Ok(summary(u, &orgs, &names, crate::now()))
    }

    /// One page of the accounts (admin), by username, filtered by organisation, role, status
    /// and words of the username or full name (with or without diacritics). Accounts are few
    /// (hundreds in a province): they are filtered in memory, where the search can fold the
    /// full names as the domain does.
    pub async fn users_page(&self, who: &Principal, f: &UserFilter) -> AppResult<wire::UserList> {
        who.require(&[Role::Admin], "listing users")?;
        let mut errors: Vec<(String, String)> = vec![];
        let orgs = self.org_codes(&self.db).await?;
        let org = given(&f.org).and_then(|code| {
            let id = orgs
                .iter()
                .find(|(_, c)| c.as_str() == code)
                .map(|(i, _)| *i);
            if id.is_none() {
                errors.push((
                    "org".into(),
                    format!("no organisation has the code {code:?}"),
                ));
            }
            id
        });
        let role = given(&f.role).and_then(|r| {
            Role::parse(r)
                .map_err(|e| errors.push(("role".into(), e.to_string())))
                .ok()
        });
        let status = given(&f.status).and_then(|s| {
            AccountStatus::parse(s)
                .map_err(|e| errors.push(("status".into(), e.to_string())))
                .ok()
        });
        let words = given(&f.q).map(search_words).unwrap_or_default();
        if given(&f.q).is_some_and(|q| q.chars().count() > 200) {
            errors.push(("q".into(), "at most 200 characters".into()));
        }
        let (page, per_page) = crate::lists::paging(f.page, f.limit, USERS_PER_PAGE, &mut errors);
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let all = store::users(
            &self.db,
            UserQuery {
                org_id: org,
                role,
                except_username: Some(SERVICE_USER),
            },
        )
        .await?;
        let names: HashMap<i64, String> = all.iter().map(|u| (u.id, u.username.clone())).collect();
        let now = crate::now();
        let matching: Vec<user::Model> = all
            .into_iter()
            .filter(|u| {
                let locked = u.active && u.locked_until.is_some_and(|t| t > now);
                match status {
                    None => true,
                    Some(AccountStatus::Active) => u.active,
                    Some(AccountStatus::Inactive) => !u.active,
                    Some(AccountStatus::Locked) => locked,
                }
            })
            .filter(|u| {
                let text = fold(&format!("{}\n{}", u.username, u.display_name));
                words.iter().all(|w| text.contains(w.as_str()))
            })
            .collect();
        let total = matching.len() as u64;
        let skip = usize::try_from((page - 1) * per_page).unwrap_or(usize::MAX);
        let items = matching
            .into_iter()
            .skip(skip)
            .take(usize::try_from(per_page).unwrap_or(50))
            .map(|u| summary(u, &orgs, &names, now))
            .collect();
        Ok(wire::UserList {
            items,
            page,
            per_page,
            total,
        })
    }

    /// One account (admin).
    pub async fn get_user(&self, who: &Principal, username: &str) -> AppResult<wire::UserSummary> {
        who.require(&[Role::Admin], "reading an account")?;
        let u = target(&self.db, username).await?;
        self.user_summary(&self.db, u).await
    }

    /// Deactivates an account (admin; someone who left, a compromised account), with a reason.
    /// From the commit on, its sessions and API tokens are refused everywhere and it cannot sign
    /// in; the account stays, so everything it did stays attributed to it.
    #[instrument(skip_all, fields(username = ?username), err(level = "info"))]
    pub async fn deactivate_user(
        &self,
        who: &Principal,
        username: &str,
        reason: &str,
    ) -> AppResult<wire::UserSummary> {
        who.require(&[Role::Admin], "deactivating an account")?;
        check_text("reason", reason, 1000, true).map_err(AppError::from)?;
        let tx = self.begin().await?;
        let at = tx.at();
        let u = target(&tx.txn, username).await?;
        let admins = active_admins(&tx.txn).await?;
        check_account_change(who.user_id, account(&u), AccountChange::Deactivate, admins)
            .map_err(|r| refusal(r, username))?;
        let by = (who.user_id > 0).then_some(who.user_id);
        let u = store::deactivate_user(&tx.txn, &u, at, by, reason.trim().to_owned()).await?;
        let (sessions, tokens) = end_credentials(&tx.txn, u.id, at).await?;
        tx.audit(event(
            Some(who),
            "user.deactivate",
            "user",
            &u.username,
            None,
            Some(serde_json::json!({ "active": true })),
            Some(
                serde_json::json!({ "active": false, "reason": reason.trim(),
                "sessions_signed_out": sessions, "tokens_revoked": tokens }),
            ),
        ))
        .await?;
        let view = self.user_summary(&tx.txn, u.clone()).await?;
        tx.commit().await?;
        self.auth.forget_user(u.id);
        Ok(view)
    }

    /// Reactivates a deactivated account (admin). Its old sessions and tokens stay ended: the
    /// person signs in again and is issued new tokens.
    #[instrument(skip_all, fields(username = ?username), err(level = "info"))]
    pub async fn reactivate_user(
        &self,
        who: &Principal,
        username: &str,
    ) -> AppResult<wire::UserSummary> {
        who.require(&[Role::Admin], "reactivating an account")?;
        let tx = self.begin().await?;
        let u = target(&tx.txn, username).await?;
        let admins = active_admins(&tx.txn).await?;
        check_account_change(who.user_id, account(&u), AccountChange::Reactivate, admins)
            .map_err(|r| refusal(r, username))?;
        let before = serde_json::json!({ "active": false, "deactivated_at": u.deactivated_at,
            "reason": u.deactivation_reason });
        let u = store::reactivate_user(&tx.txn, &u).await?;
        tx.audit(event(
            Some(who),
            "user.reactivate",
            "user",
            &u.username,
            None,
            Some(before),
            Some(serde_json::json!({ "active": true })),
        ))
        .await?;
        let view = self.user_summary(&tx.txn, u).await?;
        tx.commit().await?;
        self.sessions.throttle.forget_account(username);
        Ok(view)
    }

    /// Gives an account another role, another organisation, or both (admin). The role must fit
    /// the organisation's kind; the last active admin keeps the role; an admin cannot change
    /// their own account. The account's sessions and API tokens end (what they were issued for
    /// no longer holds).
    #[instrument(skip_all, fields(username = ?username), err(level = "info"))]
    pub async fn edit_user(
        &self,
        who: &Principal,
        username: &str,
        e: wire::EditUser,
    ) -> AppResult<wire::UserSummary> {
        who.require(&[Role::Admin], "changing an account's role or organisation")?;
        let mut errors: Vec<(String, String)> = vec![];
        let role = e.role.as_deref().map(str::trim).and_then(|r| {
            Role::parse(r)
                .map_err(|err| errors.push(("role".into(), err.to_string())))
                .ok()
        });
        if e.role.is_none() && e.org.is_none() {
            errors.push((
                "role".into(),
                "give a new role, a new organisation or both".into(),
            ));
        }
        let org = match e.org.as_deref().map(str::trim) {
            Some(code) => match org_by_code(&self.db, code).await {
                Ok(o) if o.code != crate::registry::SERVICE_ORG => Some(o),
                Ok(_) | Err(AppError::NotFound(_)) => {
                    errors.push((
                        "org".into(),
                        format!("no organisation has the code {code:?}"),
                    ));
                    None
                }
                Err(err) => return Err(err),
            },
            None => None,
        };
        if !errors.is_empty() {
            return Err(AppError::Invalid(errors));
        }
        let tx = self.begin().await?;
        let at = tx.at();
        let u = target(&tx.txn, username).await?;
        let org = match org {
            Some(o) => o,
            None => store::organisation_by_id(&tx.txn, u.org_id)
                .await?
                .ok_or_else(|| {
                    AppError::Internal(format!("user {username} has no organisation"))
                })?,
        };
        let old_role = *u.role;
        let role = role.unwrap_or(old_role);
        let kind = *org.kind;
        let admins = active_admins(&tx.txn).await?;
        check_account_change(
            who.user_id,
            account(&u),
            AccountChange::Move {
                role,
                org_kind: kind,
            },
            admins,
        )
        .map_err(|r| refusal(r, username))?;
        if role == old_role && org.id == u.org_id {
            return Err(AppError::invalid(
                "role",
                format!("{username} already has this role in this organisation"),
            ));
        }
        let old_org = self
            .org_codes(&tx.txn)
            .await?
            .remove(&u.org_id)
            .unwrap_or_default();
        let u = store::move_user(&tx.txn, &u, role, org.id).await?;
        let (sessions, tokens) = end_credentials(&tx.txn, u.id, at).await?;
        tx.audit(event(
            Some(who),
            "user.edit",
            "user",
            &u.username,
            None,
            Some(serde_json::json!({ "role": old_role.as_str(), "org": old_org })),
            Some(serde_json::json!({ "role": role.as_str(), "org": org.code,
                "sessions_signed_out": sessions, "tokens_revoked": tokens })),
        ))
        .await?;
        let view = self.user_summary(&tx.txn, u.clone()).await?;
        tx.commit().await?;
        self.auth.forget_user(u.id);
        Ok(view)
    }
}
