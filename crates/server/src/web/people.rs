//! One account's page for an admin (issue 11): what it is, another role or organisation, and
//! deactivation with its reason behind a confirmation that needs no script (a checkbox the form
//! requires, checked again by the server), or reactivation.

use super::errors::WebError;
use super::extract::{FormData, Seg, Signed};
use super::msg::{self, Errors};
use super::query::ListQuery;
use super::reply::see_other;
use crate::AppState;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use changegate_api::{EditUser, ProblemCode};
use changegate_app::AppError;
use changegate_app::identity::accounts::UserFilter;
use changegate_domain::{AccountStatus, Role};
use minijinja::Value;
use std::collections::HashMap;

/// The list's filters and page from the query string (empty values are no filter).
pub fn user_filter(q: &HashMap<String, String>) -> Result<UserFilter, WebError> {
    let q = ListQuery(q);
    Ok(UserFilter {
        org: q.get("org"),
        role: q.get("role"),
        status: q.get("status"),
        q: q.get("q"),
        page: q.page()?,
        limit: None,
    })
}

/// The statuses a list may be filtered by.
pub fn statuses() -> Vec<&'static str> {
    AccountStatus::ALL.iter().map(|s| s.as_str()).collect()
}

async fn page(
    app: &AppState,
    s: &Signed,
    status: StatusCode,
    username: &str,
    ctx: Value,
) -> Result<Response, WebError> {
    let user = app.get_user(s.who(), username).await?;
    let orgs = app.list_organisations(s.who()).await?;
    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    s.page(
        status,
        "admin_user.html",
        minijinja::context! {
        u => Value::from_serialize(&user), orgs => Value::from_serialize(&orgs), roles => roles,
        own => user.username == s.who().username, ..ctx },
    )
}

/// `GET /admin/users/{username}`.
pub async fn show(
    State(app): State<AppState>,
    s: Signed,
    username: Seg,
) -> Result<Response, WebError> {
    let ctx = minijinja::context! { errors => Errors::new() };
    page(&app, &s, StatusCode::OK, &username.0, ctx).await
}

/// The refusal of an account change shown on the account's page, by its stable code.
fn refused(lang: super::i18n::Lang, e: AppError, errors: &mut Errors) -> Result<(), WebError> {
    match e {
        AppError::Conflict(code, _) => {
            let key = match code {
                ProblemCode::OwnAccount => "people.refused.own_account",
                ProblemCode::LastAdmin => "people.refused.last_admin",
                ProblemCode::AlreadyInactive => "people.refused.already_inactive",
                ProblemCode::AlreadyActive => "people.refused.already_active",
                ProblemCode::AccountInactive => "people.refused.account_inactive",
                _ => return Err(WebError::Conflict),
            };
            msg::add_key(errors, lang, "generic", key);
        }
        AppError::Invalid(errs) => {
            for (field, _) in &errs {
                let ff = match field.as_str() {
                    "role" | "org" | "reason" => field.as_str(),
                    _ => "generic",
                };
                msg::add(errors, lang, ff);
            }
        }
        e => return Err(e.into()),
    }
    Ok(())
}

/// `POST /admin/users/{username}/deactivate`: only with the confirmation box ticked.
pub async fn deactivate(
    State(app): State<AppState>,
    s: Signed,
    username: Seg,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    let reason = f.get("reason").trim().to_owned();
    let mut errors = Errors::new();
    if f.get("confirm") != "1" {
        msg::add_key(&mut errors, s.lang, "confirm", "people.confirm_required");
    } else {
        match app.deactivate_user(s.who(), &username.0, &reason).await {
            Ok(_) => return Ok(see_other("/admin/users?ok=people.deactivated")),
            Err(e) => refused(s.lang, e, &mut errors)?,
        }
    }
    let ctx = minijinja::context! { errors => errors, reason => reason };
    page(&app, &s, StatusCode::UNPROCESSABLE_ENTITY, &username.0, ctx).await
}

/// `POST /admin/users/{username}/reactivate`.
pub async fn reactivate(
    State(app): State<AppState>,
    s: Signed,
    username: Seg,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    let mut errors = Errors::new();
    match app.reactivate_user(s.who(), &username.0).await {
        Ok(_) => return Ok(see_other("/admin/users?ok=people.reactivated")),
        Err(e) => refused(s.lang, e, &mut errors)?,
    }
    let ctx = minijinja::context! { errors => errors };
    page(&app, &s, StatusCode::CONFLICT, &username.0, ctx).await
}

/// `POST /admin/users/{username}/edit`: another role or organisation.
pub async fn edit(
    State(app): State<AppState>,
    s: Signed,
    username: Seg,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    let e = EditUser {
        role: Some(f.get("role").trim().to_owned()).filter(|v| !v.is_empty()),
        org: Some(f.get("org").trim().to_owned()).filter(|v| !v.is_empty()),
    };
    let mut errors = Errors::new();
    match app.edit_user(s.who(), &username.0, e).await {
        Ok(_) => return Ok(see_other("/admin/users?ok=people.edited")),
        Err(e) => refused(s.lang, e, &mut errors)?,
    }
    let ctx = minijinja::context! { errors => errors };
    page(&app, &s, StatusCode::UNPROCESSABLE_ENTITY, &username.0, ctx).await
}

/// How many pages `total` items make at `per_page` a page (at least one).
pub fn pages(total: u64, per_page: u64) -> u64 {
    total.div_ceil(per_page.max(1)).max(1)
}
