//! Remediation items (*việc cần khắc phục*): the list with filters, one item with its history,
//! and the owner's fulfilment and PA05's verification forms.

use super::errors::WebError;
use super::extract::{FormData, Seg, Signed};
use super::msg::{self, Errors};
use super::reply::see_other;
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use changegate_api::Remediation;
use changegate_app::AppError;
use changegate_app::remediation::RemediationFilter;
use minijinja::Value;
use std::collections::HashMap;

/// `GET /remediations?system=&org=&state=&overdue=&page=`.
pub async fn list(
    State(app): State<AppState>,
    s: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let get = |k: &str| q.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
    let page = match get("page") {
        Some(p) => Some(p.parse::<u64>().map_err(|_| WebError::BadRequest)?),
        None => None,
    };
    let overdue = match get("overdue") {
        Some("1" | "true") => Some(true),
        Some("0" | "false") => Some(false),
        Some(_) => return Err(WebError::BadRequest),
        None => None,
    };
    let filter = RemediationFilter {
        system: get("system").map(str::to_owned),
        org: get("org").map(str::to_owned),
        state: get("state").map(str::to_owned),
        kind: get("kind").map(str::to_owned),
        overdue,
        page,
        change_request: None,
    };
    let list = match app.list_remediations(s.who(), &filter).await {
        Ok(l) => l,
        // A filter naming nothing visible, or a state that is not one: no items, not an error page.
        Err(AppError::NotFound(_) | AppError::Invalid(_)) => changegate_api::RemediationList {
            items: vec![],
            page: 1,
            per_page: changegate_app::remediation::PER_PAGE,
            total: 0,
        },
        Err(e) => return Err(e.into()),
    };
    let systems: Vec<(String, String)> = app
        .visible_systems(s.who())
        .await?
        .into_iter()
        .map(|x| (x.code, x.name))
        .collect();
    let orgs = app.filter_organisations(s.who()).await?;
    let pages = list.total.div_ceil(list.per_page).max(1);
    s.ok(
        "remediations.html",
        minijinja::context! {
            items => Value::from_serialize(&list.items), total => list.total, page => list.page,
            pages => pages, systems => systems, orgs => orgs,
            q => Value::from_serialize(&q),
            states => changegate_domain::remediation::RemediationState::ALL.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        },
    )
}

async fn item_page(
    app: &AppState,
    s: &Signed,
    status: StatusCode,
    item: &Remediation,
    f: &HashMap<&str, String>,
    errors: &Errors,
) -> Result<Response, WebError> {
    let (may_fulfil, may_verify) = app.remediation_actions(s.who(), item.id).await?;
    let item_no = item
        .item
        .as_ref()
        .and_then(|i| app.pack.checklist.iter().position(|c| &c.id == i))
        .map(|p| p + 1);
    s.page(
        status,
        "remediation.html",
        minijinja::context! {
            it => Value::from_serialize(item), f => f, errors => errors, item_no => item_no,
            may_fulfil => may_fulfil, may_verify => may_verify,
        },
    )
}

/// `GET /remediations/{id}`.
pub async fn show(State(app): State<AppState>, s: Signed, id: Seg) -> Result<Response, WebError> {
    let item = app.get_remediation(s.who(), id.id()?).await?;
    item_page(
        &app,
        &s,
        StatusCode::OK,
        &item,
        &HashMap::new(),
        &Errors::new(),
    )
    .await
}

/// `POST /remediations/{id}/fulfil` (`evidence`).
pub async fn fulfil(
    State(app): State<AppState>,
    s: Signed,
    id: Seg,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    let id = id.id()?;
    let evidence = f.get("evidence").to_owned();
    let done = app.fulfil_remediation(s.who(), id, evidence.clone()).await;
    answer(&app, &s, id, done, "fulfilled", ("evidence", evidence)).await
}

/// The answer to a step on item `id`: to its page with the flash `ok`, or, when the app refused
/// the field's value, the page again (422) with the message and the value kept.
async fn answer(
    app: &AppState,
    s: &Signed,
    id: i64,
    done: Result<Remediation, AppError>,
    ok: &str,
    (field, value): (&'static str, String),
) -> Result<Response, WebError> {
    match done {
        Ok(_) => Ok(see_other(&format!("/remediations/{id}?ok={ok}"))),
        Err(AppError::Invalid(_)) => {
            let item = app.get_remediation(s.who(), id).await?;
            let mut errors = Errors::new();
            msg::add(&mut errors, s.lang, field);
            let kept = HashMap::from([(field, value)]);
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            item_page(app, s, status, &item, &kept, &errors).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /remediations/{id}/verify` (`accepted=1|0`, `note`).
pub async fn verify(
    State(app): State<AppState>,
    s: Signed,
    id: Seg,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    let id = id.id()?;
    let accepted = match f.get("accepted") {
        "1" => true,
        "0" => false,
        _ => return Err(WebError::BadRequest),
    };
    let note = f.get("verify_note").to_owned();
    let done = app
        .verify_remediation(s.who(), id, accepted, note.clone())
        .await;
    let ok = if accepted { "verified" } else { "reopened" };
    answer(&app, &s, id, done, ok, ("verify_note", note)).await
}
