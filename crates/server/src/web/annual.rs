//! The annual report (Form 08) pages: a system's level record and re-levelling, the
//! organisations' section-2 details, and the report itself (page, printable document, CSV).

use super::errors::WebError;
use super::extract::{FormData, Seg, Signed};
use super::msg::{self, Errors};
use super::reply::see_other;
use crate::AppState;
use crate::annual_doc::{self, Format};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use changegate_api::{Contact, EditOrganisation, LevelDecision, LevelRecord, Relevel};
use changegate_app::AppError;
use changegate_domain::annual::{ApprovalStatus, PlanDeployment};
use changegate_domain::{OrgKind, Role};
use chrono::{Datelike, NaiveDate};
use minijinja::Value;
use std::collections::HashMap;

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Field errors from the app, each shown with the translated message of its form field.
fn errors_of(s: &Signed, errs: &[(String, String)]) -> Errors {
    let mut errors = Errors::new();
    for (field, _) in errs {
        // `approval_decision.date` is the form field `approval_decision_date`.
        let f = field.replace('.', "_");
        errors.insert(f, msg::field(s.lang, "generic"));
    }
    errors
}

fn date(s: &str) -> Result<Option<NaiveDate>, ()> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| ())
}

/// A decision from the form fields `<p>_number`, `<p>_date`, `<p>_issuer`; none when all are
/// blank.
fn decision_of(f: &FormData, p: &str, bad: &mut Vec<(String, String)>) -> Option<LevelDecision> {
    let (n, d, i) = (
        f.get(&format!("{p}_number")).trim().to_owned(),
        f.get(&format!("{p}_date")),
        f.get(&format!("{p}_issuer")).trim().to_owned(),
    );
    if n.is_empty() && d.trim().is_empty() && i.is_empty() {
        return None;
    }
    match date(d) {
        Ok(Some(date)) => Some(LevelDecision {
            number: n,
            date,
            issuer: i,
        }),
        _ => {
            bad.push((format!("{p}.date"), "not a date".into()));
            None
        }
    }
}

async fn level_page(
    app: &AppState,
    s: &Signed,
    status: StatusCode,
    code: &str,
    f: Option<HashMap<String, String>>,
    errors: &Errors,
    saved: bool,
) -> Result<Response, WebError> {
    let sys = app.get_system(s.who(), code).await?;
    let f = f.unwrap_or_else(|| {
        let r = sys.level_record.clone().unwrap_or_default();
        let mut m = HashMap::new();
        let mut put = |k: &str, v: String| {
            m.insert(k.to_owned(), v);
        };
        put(
            "proposed_level",
            r.proposed_level.map(|l| l.to_string()).unwrap_or_default(),
        );
        put("approval_status", r.approval_status.unwrap_or_default());
        put("plan_deployment", r.plan_deployment.unwrap_or_default());
        let day = |d: Option<NaiveDate>| d.map(|d| d.to_string()).unwrap_or_default();
        put("expected_approval_date", day(r.expected_approval_date));
        put("plan_expected_date", day(r.plan_expected_date));
        for (p, d) in [
            ("approval_decision", &r.approval_decision),
            ("rules_decision", &r.rules_decision),
        ] {
            put(
                &format!("{p}_number"),
                d.as_ref().map(|d| d.number.clone()).unwrap_or_default(),
            );
            put(
                &format!("{p}_date"),
                d.as_ref().map(|d| d.date.to_string()).unwrap_or_default(),
            );
            put(
                &format!("{p}_issuer"),
                d.as_ref().map(|d| d.issuer.clone()).unwrap_or_default(),
            );
        }
        m
    });
    let may_edit = matches!(s.who().role, Role::Admin | Role::Owner)
        && sys.status != changegate_domain::gate::SystemStatus::Retired.as_str();
    s.page(
        status,
        "level_record.html",
        minijinja::context! {
            sys => Value::from_serialize(&sys), f => f, errors => errors, may_edit => may_edit,
            saved => saved,
            statuses => ApprovalStatus::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
            deployments => PlanDeployment::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>(),
        },
    )
}

/// `GET /systems/{code}/level-record`: the level record (Form 08 columns 5–12) and its forms.
pub async fn level_record(
    State(app): State<AppState>,
    s: Signed,
    Seg(code): Seg,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let saved = q.contains_key("saved");
    level_page(&app, &s, StatusCode::OK, &code, None, &Errors::new(), saved).await
}

/// `POST /systems/{code}/level-record`: replaces the level record.
pub async fn save_level_record(
    State(app): State<AppState>,
    s: Signed,
    Seg(code): Seg,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    let mut bad = vec![];
    let level = f.get("proposed_level").trim();
    let proposed_level = if level.is_empty() {
        None
    } else {
        match level.parse::<i64>() {
            Ok(l) => Some(l),
            Err(_) => {
                bad.push(("proposed_level".into(), "not a number".into()));
                None
            }
        }
    };
    let mut day = |field: &str| match date(f.get(field)) {
        Ok(d) => d,
        Err(()) => {
            bad.push((field.to_owned(), "not a date".into()));
            None
        }
    };
    let expected_approval_date = day("expected_approval_date");
    let plan_expected_date = day("plan_expected_date");
    let approval_decision = decision_of(&f, "approval_decision", &mut bad);
    let rules_decision = decision_of(&f, "rules_decision", &mut bad);
    let some = |k: &str| Some(f.get(k).trim().to_owned()).filter(|v| !v.is_empty());
    let r = LevelRecord {
        proposed_level,
        approval_status: some("approval_status"),
        approval_decision,
        expected_approval_date,
        rules_decision,
        plan_deployment: some("plan_deployment"),
        plan_expected_date,
    };
    let result = if bad.is_empty() {
        app.put_level_record(s.who(), &code, r).await
    } else {
        Err(AppError::Invalid(bad))
    };
    match result {
        Ok(_) => Ok(see_other(&format!(
            "/systems/{}/level-record?saved=1",
            urlencode(&code)
        ))),
        Err(AppError::Invalid(errs)) => {
            let kept = f.0.iter().cloned().collect();
            level_page(
                &app,
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                &code,
                Some(kept),
                &errors_of(&s, &errs),
                false,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `POST /systems/{code}/relevel`: re-levelling with its decision.
pub async fn relevel(
    State(app): State<AppState>,
    s: Signed,
    Seg(code): Seg,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    let mut bad = vec![];
    let level = f.get("level").trim().parse::<i64>().unwrap_or(0);
    let decision = decision_of(&f, "decision", &mut bad);
    let result = match (decision, bad.is_empty()) {
        (Some(decision), true) => {
            app.relevel(
                s.who(),
                &code,
                Relevel {
                    level,
                    decision,
                    reason: f.get("reason").trim().to_owned(),
                },
            )
            .await
        }
        _ => Err(AppError::invalid("decision.number", "required")),
    };
    match result {
        Ok(_) => Ok(see_other(&format!(
            "/systems/{}/level-record?saved=1",
            urlencode(&code)
        ))),
        Err(AppError::Invalid(errs)) => {
            let errs: Vec<(String, String)> = errs
                .into_iter()
                .map(|(k, v)| {
                    let k = if k == "level" { "new_level".into() } else { k };
                    (k, v)
                })
                .collect();
            level_page(
                &app,
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                &code,
                None,
                &errors_of(&s, &errs),
                false,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /organisations`: the organisations and whether their Form 08 details are complete.
pub async fn organisations(State(app): State<AppState>, s: Signed) -> Result<Response, WebError> {
    let list = app.organisation_details(s.who()).await?;
    s.ok(
        "organisations.html",
        minijinja::context! { orgs => Value::from_serialize(&list), may_edit => s.who().role == Role::Admin },
    )
}

const CONTACT_FIELDS: [&str; 7] = [
    "name",
    "founding_text",
    "representative",
    "representative_title",
    "address",
    "phone",
    "email",
];

fn contact_of(f: &FormData, p: &str) -> Contact {
    let g = |k: &str| f.get(&format!("{p}_{k}")).trim().to_owned();
    Contact {
        name: g("name"),
        founding_text: g("founding_text"),
        representative: g("representative"),
        representative_title: g("representative_title"),
        address: g("address"),
        phone: g("phone"),
        email: g("email"),
    }
}

async fn org_page(
    app: &AppState,
    s: &Signed,
    status: StatusCode,
    code: &str,
    f: Option<HashMap<String, String>>,
    errors: &Errors,
    saved: bool,
) -> Result<Response, WebError> {
    let o = app.get_organisation(s.who(), code).await?;
    let f = f.unwrap_or_else(|| {
        let mut m = HashMap::from([("name".to_owned(), o.name.clone())]);
        let unit = o.security_unit.clone().unwrap_or_default();
        for (p, c) in [("contact", &o.contact), ("unit", &unit)] {
            let v = serde_json::to_value(c).unwrap_or_default();
            for k in CONTACT_FIELDS {
                m.insert(
                    format!("{p}_{k}"),
                    v[k].as_str().unwrap_or_default().to_owned(),
                );
            }
        }
        m
    });
    s.page(
        status,
        "organisation.html",
        minijinja::context! {
            o => Value::from_serialize(&o), f => f, errors => errors, saved => saved,
            may_edit => s.who().role == Role::Admin, fields => CONTACT_FIELDS,
        },
    )
}

/// `GET /organisations/{code}`.
pub async fn organisation(
    State(app): State<AppState>,
    s: Signed,
    Seg(code): Seg,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let saved = q.contains_key("saved");
    org_page(&app, &s, StatusCode::OK, &code, None, &Errors::new(), saved).await
}

/// `POST /organisations/{code}` (admin): name, details, cybersecurity unit.
pub async fn save_organisation(
    State(app): State<AppState>,
    s: Signed,
    Seg(code): Seg,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    let unit = contact_of(&f, "unit");
    let e = EditOrganisation {
        name: Some(f.get("name").trim().to_owned()),
        contact: Some(contact_of(&f, "contact")),
        security_unit: (unit != Contact::default()).then_some(unit),
    };
    match app.edit_organisation(s.who(), &code, e).await {
        Ok(_) => Ok(see_other(&format!(
            "/organisations/{}?saved=1",
            urlencode(&code)
        ))),
        Err(AppError::Invalid(errs)) => {
            let errs: Vec<(String, String)> = errs
                .into_iter()
                .map(|(k, v)| (k.replace("security_unit.", "unit."), v))
                .collect();
            let kept = f.0.iter().cloned().collect();
            org_page(
                &app,
                &s,
                StatusCode::UNPROCESSABLE_ENTITY,
                &code,
                Some(kept),
                &errors_of(&s, &errs),
                false,
            )
            .await
        }
        Err(e) => Err(e.into()),
    }
}

/// The year and organisation asked for (`year` defaults to the report year in progress).
fn params(q: &HashMap<String, String>) -> Result<(i32, Option<String>), WebError> {
    let today = changegate_app::now().date_naive();
    // Until 14-12 the period in progress is this year's; from 15-12, next year's.
    let current = if (today.month(), today.day()) >= (12, 15) {
        today.year() + 1
    } else {
        today.year()
    };
    let year = match q.get("year").map(|y| y.trim()).filter(|y| !y.is_empty()) {
        None => current,
        Some(y) => y.parse::<i32>().map_err(|_| {
            WebError::from(AppError::invalid("year", format!("{y:?} is not a year")))
        })?,
    };
    let org = q
        .get("org")
        .map(|o| o.trim().to_owned())
        .filter(|o| !o.is_empty());
    Ok((year, org))
}

/// `GET /reports/annual?year=&org=`: the report on a page, with the printable document and CSV.
pub async fn report(
    State(app): State<AppState>,
    s: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let (year, org) = params(&q)?;
    let r = app
        .annual_report(s.who(), year, org.as_deref(), &app.documents.province)
        .await?;
    let orgs = if s.who().role.sees_every_organisation() {
        app.organisation_details(s.who())
            .await?
            .into_iter()
            .filter(|o| o.kind == OrgKind::Owner.as_str())
            .collect()
    } else {
        vec![]
    };
    let query = format!(
        "year={year}{}",
        org.as_deref()
            .map(|o| format!("&org={}", urlencode(o)))
            .unwrap_or_default()
    );
    s.ok(
        "annual.html",
        minijinja::context! {
            r => Value::from_serialize(&r), orgs => Value::from_serialize(&orgs),
            year => year, org => org, query => query,
        },
    )
}

/// `GET /reports/annual/print?year=&org=`: the printable document.
pub async fn print(
    State(app): State<AppState>,
    s: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let (year, org) = params(&q)?;
    let r = app
        .annual_report(s.who(), year, org.as_deref(), &app.documents.province)
        .await?;
    let back = format!(
        "/reports/annual?year={year}{}",
        org.as_deref()
            .map(|o| format!("&org={}", urlencode(o)))
            .unwrap_or_default()
    );
    crate::routes::render_annual(&r, Format::Html, Some(&back)).map_err(|_| {
        WebError::from(AppError::Internal(
            "the annual report document could not be made".into(),
        ))
    })
}

/// `GET /reports/annual.csv?year=&org=`.
pub async fn csv(
    State(app): State<AppState>,
    s: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let (year, org) = params(&q)?;
    let r = app
        .annual_report(s.who(), year, org.as_deref(), &app.documents.province)
        .await?;
    let body = annual_doc::csv(&r)
        .map_err(|e| WebError::from(AppError::Internal(format!("annual report CSV: {e}"))))?;
    Ok(annual_doc::csv_response(year, body))
}
