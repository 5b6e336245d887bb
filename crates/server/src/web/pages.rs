//! The dashboard and the system pages, with the admin's edit and retire forms.

use super::errors::WebError;
use super::extract::{FormData, Seg, Signed};
use super::msg::{self, Errors};
use super::reply::see_other;
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use changegate_api::{EditSystem, Retirement};
use changegate_app::AppError;
use changegate_app::systems::{PER_PAGE, SystemFilter};
use changegate_domain::Role;
use changegate_domain::gate::SystemStatus;
use minijinja::Value;
use std::collections::HashMap;

/// `GET /`: the dashboard of the person's role.
pub async fn dashboard(State(app): State<AppState>, s: Signed) -> Result<Response, WebError> {
    let d = app.dashboard(s.who()).await?;
    let (owner, pa05, overdue) = app.remediation_counts(s.who()).await?;
    s.ok(
        "dashboard.html",
        minijinja::context! { d => Value::from_serialize(&d),
        rem => minijinja::context! { owner => owner, pa05 => pa05, overdue => overdue } },
    )
}

/// `GET /systems?org=&level=&status=&review_due_before=&page=`: the visible systems with their
/// gate status per environment, filtered, 50 a page.
pub async fn systems(
    State(app): State<AppState>,
    s: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let get = |k: &str| {
        q.get(k)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    let page = match get("page") {
        Some(p) => Some(p.parse::<u64>().map_err(|_| WebError::BadRequest)?),
        None => None,
    };
    let filter = SystemFilter {
        org: get("org"),
        level: get("level"),
        status: get("status"),
        review_due_before: get("review_due_before"),
        page,
    };
    let list = match app.list_systems(s.who(), &filter).await {
        Ok(l) => l,
        // A filter naming nothing: no systems, not an error page.
        Err(AppError::Invalid(_)) => changegate_api::SystemList {
            items: vec![],
            page: 1,
            per_page: PER_PAGE,
            total: 0,
        },
        Err(e) => return Err(e.into()),
    };
    let order: Vec<&str> = list.items.iter().map(|x| x.code.as_str()).collect();
    let mut systems = app.systems_overview(s.who()).await?;
    systems.retain(|x| order.contains(&x.code.as_str()));
    systems.sort_by_key(|x| order.iter().position(|c| *c == x.code));
    let orgs = app.filter_organisations(s.who()).await?;
    let pages = list.total.div_ceil(list.per_page).max(1);
    s.ok(
        "systems.html",
        minijinja::context! { systems => Value::from_serialize(&systems),
        total => list.total, page => list.page, pages => pages, orgs => orgs,
        q => Value::from_serialize(&q), statuses => SystemStatus::ALL.iter().map(|x| x.as_str()).collect::<Vec<_>>() },
    )
}

/// The system page, with the admin's edit form holding `f` and its `errors`.
async fn system_page(
    app: &AppState,
    s: &Signed,
    status: StatusCode,
    code: &str,
    f: Option<HashMap<&str, String>>,
    errors: &Errors,
) -> Result<Response, WebError> {
    let page = app.system_page(s.who(), code).await?;
    let filter = changegate_app::remediation::RemediationFilter {
        system: Some(code.to_owned()),
        ..Default::default()
    };
    let items = app.list_remediations(s.who(), &filter).await?;
    let f = f.unwrap_or_else(|| {
        HashMap::from([
            ("name", page.system.name.clone()),
            ("operating_unit", page.system.operating_unit.clone()),
            ("environments", page.system.environments.join(", ")),
            (
                "population_db",
                if page.system.population_db { "1" } else { "" }.to_owned(),
            ),
        ])
    });
    s.page(
        status,
        "system.html",
        minijinja::context! { p => Value::from_serialize(&page),
        items => Value::from_serialize(&items.items), items_total => items.total,
        may_admin => s.who().role == Role::Admin && page.system.status != changegate_domain::gate::SystemStatus::Retired.as_str(),
        f => f, errors => errors },
    )
}

/// `GET /systems/{code}`: inventory, gate status per environment, changes, incidents, history.
pub async fn system(
    State(app): State<AppState>,
    s: Signed,
    Seg(code): Seg,
) -> Result<Response, WebError> {
    system_page(&app, &s, StatusCode::OK, &code, None, &Errors::new()).await
}

/// `POST /systems/{code}/edit` (admin): `name`, `operating_unit`, `environments` (comma- or
/// space-separated), `population_db`.
pub async fn edit_system(
    State(app): State<AppState>,
    s: Signed,
    Seg(code): Seg,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    let kept = HashMap::from([
        ("name", f.get("name").to_owned()),
        ("operating_unit", f.get("operating_unit").to_owned()),
        ("environments", f.get("environments").to_owned()),
        ("population_db", f.get("population_db").to_owned()),
    ]);
    let edit = EditSystem {
        name: Some(f.get("name").trim().to_owned()),
        operating_unit: Some(f.get("operating_unit").trim().to_owned()),
        environments: Some(
            f.get("environments")
                .split(|c: char| c == ',' || c.is_whitespace())
                .filter(|e| !e.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        population_db: Some(f.get("population_db") == "1"),
    };
    match app.edit_system(s.who(), &code, edit).await {
        Ok(_) => Ok(see_other(&format!(
            "/systems/{}?ok=system_edited",
            urlencode(&code)
        ))),
        Err(AppError::Invalid(errs)) => {
            let mut errors = Errors::new();
            for (field, message) in &errs {
                let field = field.split('[').next().unwrap_or(field);
                if field == "environments" && message.contains("cannot be removed") {
                    msg::add_key(&mut errors, s.lang, field, "err.env_in_use");
                } else {
                    msg::add(&mut errors, s.lang, field);
                }
            }
            system_page(
                &app,
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                &code,
                Some(kept),
                &errors,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /systems/{code}/retire` (admin): `reason`.
pub async fn retire_system(
    State(app): State<AppState>,
    s: Signed,
    Seg(code): Seg,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    let reason = f.get("reason").trim().to_owned();
    match app
        .retire_system(s.who(), &code, Retirement { reason })
        .await
    {
        Ok(_) => Ok(see_other(&format!(
            "/systems/{}?ok=system_retired",
            urlencode(&code)
        ))),
        Err(AppError::Invalid(_)) => {
            let mut errors = Errors::new();
            msg::add(&mut errors, s.lang, "reason");
            system_page(
                &app,
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                &code,
                None,
                &errors,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}
