//! Administration: users (create with a one-time password shown once, unlock, reset the second
//! factor) and security signals (locked accounts, accounts used from two addresses at once).

use super::errors::WebError;
use super::extract::{FormData, Seg, Signed};
use super::msg::{self, Errors};
use super::reply::see_other;
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use changegate_api::NewUser;
use changegate_api::ProblemCode;
use changegate_app::AppError;
use changegate_app::identity::accounts::USERS_PER_PAGE;
use changegate_domain::Role;
use minijinja::Value;
use serde::Serialize;
use std::collections::HashMap;

#[derive(Serialize, Default)]
struct UserForm {
    username: String,
    display_name: String,
    org: String,
    role: String,
}

async fn page(
    app: &AppState,
    s: &Signed,
    status: StatusCode,
    q: &HashMap<String, String>,
    ctx: Value,
) -> Result<Response, WebError> {
    let filter = super::people::user_filter(q)?;
    let list = match app.users_page(s.who(), &filter).await {
        Ok(l) => l,
        // A filter naming nothing: no accounts, not an error page.
        Err(AppError::Invalid(_)) => changegate_api::UserList {
            items: vec![],
            page: 1,
            per_page: USERS_PER_PAGE,
            total: 0,
        },
        Err(e) => return Err(e.into()),
    };
    let orgs = app.list_organisations(s.who()).await?;
    let roles: Vec<&str> = Role::ALL.iter().map(|r| r.as_str()).collect();
    let pages = super::people::pages(list.total, list.per_page);
    s.page(
        status,
        "admin_users.html",
        minijinja::context! {
        users => Value::from_serialize(&list.items), total => list.total, page => list.page,
        pages => pages, q => Value::from_serialize(q), statuses => super::people::statuses(),
        orgs => Value::from_serialize(&orgs), roles => roles, ..ctx },
    )
}

/// `GET /admin/users[?org=&role=&status=&q=&page=]`.
pub async fn users(
    State(app): State<AppState>,
    s: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let ctx = minijinja::context! { f => Value::from_serialize(UserForm::default()), errors => Errors::new() };
    page(&app, &s, StatusCode::OK, &q, ctx).await
}

/// `POST /admin/users`: creates a user; the one-time password is shown once.
pub async fn create_user(
    State(app): State<AppState>,
    s: Signed,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    let form = UserForm {
        username: f.get("username").trim().to_owned(),
        display_name: f.get("display_name").trim().to_owned(),
        org: f.get("org").trim().to_owned(),
        role: f.get("role").trim().to_owned(),
    };
    let new = NewUser {
        username: form.username.clone(),
        display_name: form.display_name.clone(),
        org: form.org.clone(),
        role: form.role.clone(),
    };
    let mut errors = Errors::new();
    match app.create_user(s.who(), new).await {
        Ok(created) => {
            let ctx = minijinja::context! { f => Value::from_serialize(UserForm::default()), errors => errors,
            created => Value::from_serialize(&created.user), one_time_password => created.one_time_password };
            return page(&app, &s, StatusCode::OK, &HashMap::new(), ctx).await;
        }
        Err(AppError::Invalid(errs)) => {
            for (field, _) in &errs {
                let ff = match field.as_str() {
                    "username" | "display_name" | "org" | "role" => field.as_str(),
                    _ => "generic",
                };
                msg::add(&mut errors, s.lang, ff);
            }
        }
        Err(AppError::Conflict(ProblemCode::AlreadyExists, _)) => {
            msg::add_key(&mut errors, s.lang, "username", "err.already_exists");
        }
        Err(e) => return Err(e.into()),
    }
    let ctx = minijinja::context! { f => Value::from_serialize(&form), errors => errors };
    page(
        &app,
        &s,
        StatusCode::UNPROCESSABLE_ENTITY,
        &HashMap::new(),
        ctx,
    )
    .await
}

/// `POST /admin/users/{username}/unlock`.
pub async fn unlock(
    State(app): State<AppState>,
    s: Signed,
    username: Seg,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    app.unlock_user(s.who(), &username.0).await?;
    Ok(see_other("/admin/users?ok=user_unlocked"))
}

/// `POST /admin/users/{username}/reset-password`: a new one-time password, shown once; the
/// account is unlocked and its sessions end.
pub async fn reset_password(
    State(app): State<AppState>,
    s: Signed,
    username: Seg,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    let otp = app.reset_password(s.who(), &username.0).await?;
    let created = minijinja::context! { username => username.0 };
    let ctx = minijinja::context! { f => Value::from_serialize(UserForm::default()), errors => Errors::new(),
    created => created, one_time_password => otp, reset => true };
    page(&app, &s, StatusCode::OK, &HashMap::new(), ctx).await
}

/// `POST /admin/users/{username}/reset-second-factor`.
pub async fn reset_second_factor(
    State(app): State<AppState>,
    s: Signed,
    username: Seg,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    app.reset_second_factor(s.who(), &username.0).await?;
    Ok(see_other("/admin/users?ok=second_factor_reset"))
}

/// `GET /admin/signals`.
pub async fn signals(State(app): State<AppState>, s: Signed) -> Result<Response, WebError> {
    let signals = app.security_signals(s.who()).await?;
    s.ok(
        "admin_signals.html",
        minijinja::context! { signals => Value::from_serialize(&signals) },
    )
}
