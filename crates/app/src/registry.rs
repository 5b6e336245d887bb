//! The registry: organisations, users, API tokens, systems.

use crate::identity::tokens::{
    Principal, hash_secret, hash_token_secret, new_token, one_time_password,
};
use crate::{App, AppError, AppResult, event};
use changegate_api as wire;
use changegate_domain::change::check_text;
use changegate_domain::policy::BelowMinimum;
use changegate_domain::{Code, EnvName, OrgKind, Role, SecurityLevel, Username};
use changegate_store::entity::{api_token, organisation, system, user};
use changegate_store::sea_orm::ConnectionTrait;
use changegate_store::{gate, identity, registry};
use chrono::{DateTime, Months, NaiveDate, Utc};
use tracing::instrument;

fn text_field(field: &str, s: &str, max: usize) -> AppResult<()> {
    check_text(field, s, max, true).map_err(AppError::from)
}

/// The account in whose name scheduled jobs file what they open (periodic re-reviews). It cannot
/// log in: it is inactive, has no usable password, and tokens are refused to inactive users.
pub const SERVICE_USER: &str = "changegate";
/// Its organisation.
pub const SERVICE_ORG: &str = "CHANGEGATE";

/// Finds an organisation by code.
pub async fn org_by_code(db: &impl ConnectionTrait, code: &str) -> AppResult<organisation::Model> {
    registry::organisation_by_code(db, code)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("organisation {code:?}")))
}

/// Finds a user by username.
pub async fn user_by_name(db: &impl ConnectionTrait, username: &str) -> AppResult<user::Model> {
    identity::user_by_username(db, username)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("user {username:?}")))
}

/// Finds a system by code.
pub async fn system_by_code(db: &impl ConnectionTrait, code: &str) -> AppResult<system::Model> {
    gate::system_by_code(db, code)
        .await?
        .ok_or_else(|| AppError::NotFound(format!("system {code:?}")))
}

/// Whether this principal may see the systems (and changes) of `owner_org`.
pub fn may_see_org(p: &Principal, owner_org: i64) -> bool {
    p.role.may_see(p.org_id, owner_org)
}

fn org_view(o: &organisation::Model) -> wire::Organisation {
    wire::Organisation {
        code: o.code.clone(),
        name: o.name.clone(),
        kind: o.kind.to_string(),
    }
}

fn user_view(u: &user::Model, org: &str) -> wire::User {
    wire::User {
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        org: org.to_owned(),
        role: u.role.to_string(),
        must_change_password: u.must_change_password,
        active: u.active,
    }
}

fn token_view(t: &api_token::Model, username: &str) -> wire::TokenInfo {
    wire::TokenInfo {
        id: t.public_id.clone(),
        name: t.name.clone(),
        username: username.to_owned(),
        created_at: t.created_at,
        expires_at: t.expires_at,
        revoked_at: t.revoked_at,
    }
}

/// The system's view.
pub async fn system_view(db: &impl ConnectionTrait, s: &system::Model) -> AppResult<wire::System> {
    let org = identity::organisation_by_id(db, s.owner_org_id).await?;
    let (level_record, checks_done) = crate::annual::level_view(db, s).await?;
    Ok(wire::System {
        code: s.code.clone(),
        name: s.name.clone(),
        owner_org: org.map(|o| o.code).unwrap_or_default(),
        operating_unit: s.operating_unit.clone(),
        level: u8::try_from(s.level).unwrap_or(0),
        population_db: s.population_db,
        environments: s.environments.0.clone(),
        components: s.components.0.clone(),
        status: s.status.as_str().to_owned(),
        last_evaluated_on: s.last_evaluated_on,
        next_review_due: s.next_review_due,
        warnings: vec![],
        level_record,
        checks_done,
    })
}

/// When the periodic re-review falls due after an evaluation on `on`.
pub fn review_due(months: u32, on: NaiveDate) -> Option<DateTime<Utc>> {
    (months > 0)
        .then(|| on.checked_add_months(Months::new(months)))
        .flatten()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc())
}

impl App {
    /// Creates an organisation (admin).
    #[instrument(skip_all, fields(code = ?n.code), err(level = "info"))]
    pub async fn create_organisation(
        &self,
        who: &Principal,
        n: wire::NewOrganisation,
    ) -> AppResult<wire::Organisation> {
        who.require(&[Role::Admin], "creating an organisation")?;
        let code = Code::parse(&n.code).map_err(|e| AppError::parse("code", e))?;
        if code.as_str().eq_ignore_ascii_case(SERVICE_ORG) {
            return Err(AppError::invalid(
                "code",
                format!("{SERVICE_ORG} is reserved for changegate's own jobs"),
            ));
        }
        let kind = OrgKind::parse(&n.kind).map_err(|e| AppError::parse("kind", e))?;
        text_field("name", &n.name, 300)?;
        let tx = self.begin().await?;
        if registry::organisation_by_code(&tx.txn, code.as_str())
            .await?
            .is_some()
        {
            return Err(AppError::Conflict(
                wire::ProblemCode::AlreadyExists,
                format!("an organisation with the code {code} exists"),
            ));
        }
        let o = registry::create_organisation(
            &tx.txn,
            registry::NewOrganisation {
                code: code.to_string(),
                name: n.name,
                kind,
                at: tx.at(),
            },
        )
        .await?;
        let view = org_view(&o);
        tx.audit(event(
            Some(who),
            "organisation.create",
            "organisation",
            &o.code,
            None,
            None,
            Some(serde_json::json!(view)),
        ))
        .await?;
        tx.commit().await?;
        Ok(view)
    }

    /// Creates a user (admin) with a one-time password that must be changed at first login.
    #[instrument(skip_all, fields(username = ?n.username), err(level = "info"))]
    pub async fn create_user(
        &self,
        who: &Principal,
        n: wire::NewUser,
    ) -> AppResult<wire::CreatedUser> {
        who.require(&[Role::Admin], "creating a user")?;
        let username = Username::parse(&n.username).map_err(|e| AppError::parse("username", e))?;
        if username.as_str() == SERVICE_USER {
            return Err(AppError::invalid(
                "username",
                format!("{SERVICE_USER} is reserved for changegate's own jobs"),
            ));
        }
        let role = Role::parse(&n.role).map_err(|e| AppError::parse("role", e))?;
        text_field("display_name", &n.display_name, 200)?;
        let org = org_by_code(&self.db, &n.org).await.map_err(|_| {
            AppError::invalid("org", format!("no organisation has the code {:?}", n.org))
        })?;
        let kind = *org.kind;
        if !role.fits_org(kind) {
            return Err(AppError::invalid(
                "role",
                format!(
                    "a {role} cannot belong to an organisation of kind {}",
                    kind.as_str()
                ),
            ));
        }
        let otp = one_time_password();
        let hash = hash_secret(&otp)?;
        let tx = self.begin().await?;
        if identity::user_by_username(&tx.txn, username.as_str())
            .await?
            .is_some()
        {
            return Err(AppError::Conflict(
                wire::ProblemCode::AlreadyExists,
                format!("a user named {username} exists"),
            ));
        }
        let u = identity::create_user(
            &tx.txn,
            identity::NewUser {
                username: username.to_string(),
                display_name: n.display_name,
                org_id: org.id,
                role,
                password_hash: hash,
                at: tx.at(),
            },
        )
        .await?;
        let view = user_view(&u, &org.code);
        tx.audit(event(
            Some(who),
            "user.create",
            "user",
            &u.username,
            None,
            None,
            Some(serde_json::json!(view)),
        ))
        .await?;
        tx.commit().await?;
        Ok(wire::CreatedUser {
            user: view,
            one_time_password: otp,
        })
    }

    /// Issues an API token for `username`: to oneself, or by an admin to anyone.
    #[instrument(skip_all, fields(username = ?username), err(level = "info"))]
    pub async fn create_token(
        &self,
        who: &Principal,
        username: &str,
        n: wire::NewToken,
    ) -> AppResult<wire::CreatedToken> {
        if who.username != username {
            who.require(&[Role::Admin], "issuing a token for someone else")?;
        }
        if who.role.is_machine() {
            // A leaked pipeline token must not be able to outlive its revocation.
            return Err(AppError::Forbidden(
                "a pipeline's token cannot issue tokens; an admin issues them".into(),
            ));
        }
        text_field("name", &n.name, 200)?;
        let days = n.expires_in_days.unwrap_or(90);
        if !(1..=366).contains(&days) {
            return Err(AppError::invalid(
                "expires_in_days",
                format!("must be from 1 to 366, not {days}"),
            ));
        }
        let u = user_by_name(&self.db, username).await?;
        if !u.active {
            return Err(AppError::invalid(
                "username",
                format!("user {username} is not active"),
            ));
        }
        let (public_id, secret, token) = new_token();
        // The argon2id hash stays beside the digest, so that a replica with another token key
        // can still verify the token (the slow way).
        let hash = hash_token_secret(&secret)?;
        let (digest, digest_key) = self.auth.digest_of(&token);
        let tx = self.begin().await?;
        let mut expires_at = tx.at() + chrono::Duration::days(i64::from(days));
        // A token minted with a token lives no longer than its parent, and dies with it.
        if let Some(parent_id) = who.token_id {
            let parent = identity::token_by_id(&tx.txn, parent_id)
                .await?
                .filter(|p| p.revoked_at.is_none() && p.expires_at > tx.at())
                .ok_or_else(|| AppError::Unauthorized("the token is not valid".into()))?;
            expires_at = expires_at.min(parent.expires_at);
        }
        let t = identity::issue_token(
            &tx.txn,
            identity::NewToken {
                public_id,
                token_digest: digest,
                digest_key,
                parent_token_id: who.token_id,
                user_id: u.id,
                name: n.name,
                secret_hash: hash,
                at: tx.at(),
                expires_at,
            },
        )
        .await?;
        let info = token_view(&t, &u.username);
        tx.audit(event(
            Some(who),
            "api_token.create",
            "api_token",
            &t.public_id,
            None,
            None,
            Some(serde_json::json!(info)),
        ))
        .await?;
        tx.commit().await?;
        Ok(wire::CreatedToken { info, token })
    }

    /// The principal's own tokens.
    pub async fn list_tokens(&self, who: &Principal) -> AppResult<Vec<wire::TokenInfo>> {
        let rows = identity::tokens_of(&self.db, who.user_id).await?;
        Ok(rows.iter().map(|t| token_view(t, &who.username)).collect())
    }

    /// Revokes a token: one's own, or any as admin.
    #[instrument(skip_all, fields(token = ?public_id), err(level = "info"))]
    pub async fn revoke_token(
        &self,
        who: &Principal,
        public_id: &str,
    ) -> AppResult<wire::TokenInfo> {
        let tx = self.begin().await?;
        let t = identity::token_by_public_id(&tx.txn, public_id)
            .await?
            .filter(|t| t.user_id == who.user_id || who.role == Role::Admin)
            .ok_or_else(|| AppError::NotFound(format!("token {public_id:?}")))?;
        let owner = identity::user_by_id(&tx.txn, t.user_id)
            .await?
            .map(|u| u.username)
            .unwrap_or_default();
        if t.revoked_at.is_some() {
            return Ok(token_view(&t, &owner));
        }
        let t = identity::revoke_token(&tx.txn, t, tx.at()).await?;
        let info = token_view(&t, &owner);
        // What it minted, and what those minted, are revoked with it.
        let mut minted: Vec<String> = vec![];
        let mut parents = vec![t.id];
        while !parents.is_empty() {
            let children = identity::tokens_minted_by(&tx.txn, parents.clone()).await?;
            parents = children.iter().map(|c| c.id).collect();
            let live: Vec<i64> = children
                .iter()
                .filter(|c| c.revoked_at.is_none())
                .map(|c| c.id)
                .collect();
            if !live.is_empty() {
                identity::revoke_tokens(&tx.txn, live, tx.at()).await?;
            }
            minted.extend(
                children
                    .into_iter()
                    .filter(|c| c.revoked_at.is_none())
                    .map(|c| c.public_id),
            );
        }
        let mut after = serde_json::json!(info);
        if !minted.is_empty() {
            after["revoked_with_it"] = serde_json::json!(minted);
        }
        tx.audit(event(
            Some(who),
            "api_token.revoke",
            "api_token",
            &t.public_id,
            None,
            None,
            Some(after),
        ))
        .await?;
        tx.commit().await?;
        self.auth.forget_token(public_id);
        for p in &minted {
            self.auth.forget_token(p);
        }
        Ok(info)
    }

    /// Registers a system (admin).
    #[instrument(skip_all, fields(code = ?n.code), err(level = "info"))]
    pub async fn create_system(
        &self,
        who: &Principal,
        n: wire::NewSystem,
    ) -> AppResult<wire::System> {
        who.require(&[Role::Admin], "registering a system")?;
        let mut errors = vec![];
        let code = Code::parse(&n.code)
            .map_err(|e| errors.push(("code".to_owned(), e.to_string())))
            .ok();
        let level = SecurityLevel::new(n.level)
            .map_err(|e| errors.push(("level".to_owned(), e.to_string())))
            .ok();
        for (f, s, max) in [
            ("name", &n.name, 300),
            ("operating_unit", &n.operating_unit, 300),
        ] {
            if let Err(e) = check_text(f, s, max, f == "name") {
                errors.push((f.to_owned(), e.to_string()));
            }
        }
        let mut envs: Vec<String> = vec![];
        for (i, e) in n.environments.iter().enumerate() {
            match EnvName::parse(e) {
                Ok(e) if !envs.contains(&e.to_string()) => envs.push(e.to_string()),
                Ok(_) => errors.push((
                    format!("environments[{i}]"),
                    format!("{e:?} is listed twice"),
                )),
                Err(err) => errors.push((format!("environments[{i}]"), err.to_string())),
            }
        }
        if envs.is_empty() {
            envs.push("production".into());
        }
        for (i, c) in n.components.iter().enumerate() {
            if changegate_domain::ComponentKind::parse(&c.kind).is_err() {
                errors.push((
                    format!("components[{i}].kind"),
                    format!("{:?} is not hardware or software", c.kind),
                ));
            }
            if let Err(e) = check_text(&format!("components[{i}].name"), &c.name, 300, true) {
                errors.push((format!("components[{i}].name"), e.to_string()));
            }
        }
        if n.last_review.is_some_and(|d| d > Utc::now().date_naive()) {
            errors.push(("last_review".into(), "cannot be in the future".into()));
        }
        let (Some(code), Some(level), true) = (code, level, errors.is_empty()) else {
            return Err(AppError::Invalid(errors));
        };
        let org = org_by_code(&self.db, &n.owner_org).await.map_err(|_| {
            AppError::invalid(
                "owner_org",
                format!("no organisation has the code {:?}", n.owner_org),
            )
        })?;
        if *org.kind != OrgKind::Owner {
            return Err(AppError::invalid(
                "owner_org",
                format!("{} is not an owner organisation", org.code),
            ));
        }
        let mut warnings = vec![];
        let min = self.pack.registration.population_db_min_level;
        if n.population_db && level.get() < min {
            let msg = format!(
                "a system connected to the National Population Database must be security level {min} or higher (Circular 46/2022/TT-BCA, Art. 6); this one is level {level}"
            );
            match self.pack.registration.below_min_level {
                BelowMinimum::Refuse => return Err(AppError::invalid("level", msg)),
                BelowMinimum::Warn => warnings.push(msg),
            }
        }
        let months = self.pack.level(level).re_review_months;
        let tx = self.begin().await?;
        if gate::system_by_code(&tx.txn, code.as_str())
            .await?
            .is_some()
        {
            return Err(AppError::Conflict(
                wire::ProblemCode::AlreadyExists,
                format!("a system with the code {code} exists"),
            ));
        }
        let s = registry::create_system(
            &tx.txn,
            registry::NewSystem {
                code: code.to_string(),
                name: n.name,
                owner_org_id: org.id,
                operating_unit: n.operating_unit,
                level,
                population_db: n.population_db,
                environments: envs,
                components: n.components.clone(),
                last_evaluated_on: n.last_review,
                // Without a recorded evaluation the clock starts at registration.
                next_review_due: review_due(
                    months,
                    n.last_review.unwrap_or_else(|| tx.at().date_naive()),
                ),
                at: tx.at(),
            },
        )
        .await?;
        let mut view = system_view(&tx.txn, &s).await?;
        view.warnings = warnings;
        tx.audit(event(
            Some(who),
            "system.create",
            "system",
            &s.code,
            Some(s.id),
            None,
            Some(serde_json::json!(view)),
        ))
        .await?;
        tx.commit().await?;
        Ok(view)
    }

    /// A system, if the principal may see it.
    pub async fn get_system(&self, who: &Principal, code: &str) -> AppResult<wire::System> {
        let s = self.visible_system(who, code).await?;
        system_view(&self.db, &s).await
    }

    /// The system with this code, if the principal may see it; otherwise not found (another
    /// organisation's system is not revealed to exist).
    pub async fn visible_system(&self, who: &Principal, code: &str) -> AppResult<system::Model> {
        let s = system_by_code(&self.db, code).await?;
        if !may_see_org(who, s.owner_org_id) {
            return Err(AppError::NotFound(format!("system {code:?}")));
        }
        Ok(s)
    }

    /// Who the principal is.
    pub fn me(&self, who: &Principal) -> wire::Me {
        wire::Me {
            username: who.username.clone(),
            display_name: who.display_name.clone(),
            role: who.role.as_str().to_owned(),
            org: who.org_code.clone(),
        }
    }
}
