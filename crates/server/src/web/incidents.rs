//! Incidents: the list, the report form, an incident's page (its deadlines, notices and
//! history), recording a notice, resolving with a note after a confirmation.

use super::errors::WebError;
use super::extract::{FormData, Seg, Signed};
use super::msg::{self, Errors};
use super::query::ListQuery;
use super::reply::see_other;
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use changegate_api::NewIncident;
use changegate_app::AppError;
use changegate_app::incident_list::{INCIDENTS_PER_PAGE, IncidentFilter};
use changegate_domain::gate::IncidentStatus;
use chrono::TimeZone;
use minijinja::Value;
use serde::Serialize;
use std::collections::HashMap;

/// The severities, for the filter and the form.
fn severities() -> Vec<&'static str> {
    changegate_domain::Severity::ALL
        .iter()
        .map(|s| s.as_str())
        .collect()
}

/// `GET /incidents[?state=&system=&org=&kind=&severity=&from=&to=&q=&page=]`: open incidents
/// first, then resolved ones, newest first; filtered, searched (with or without diacritics),
/// paged.
pub async fn list(
    State(app): State<AppState>,
    s: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let lq = ListQuery(&q);
    let get = |k: &str| lq.get(k);
    let page = lq.page()?;
    let filter = IncidentFilter {
        state: get("state"),
        system: get("system"),
        org: get("org"),
        kind: get("kind"),
        severity: get("severity"),
        from: get("from"),
        to: get("to"),
        q: get("q"),
        page,
        limit: None,
    };
    let list = match app.list_incidents(s.who(), &filter).await {
        Ok(l) => l,
        // A filter naming nothing: no incidents, not an error page.
        Err(AppError::Invalid(_)) => changegate_api::IncidentList {
            items: vec![],
            page: 1,
            per_page: INCIDENTS_PER_PAGE,
            total: 0,
        },
        Err(e) => return Err(e.into()),
    };
    let systems: Vec<String> = app
        .visible_systems(s.who())
        .await?
        .into_iter()
        .map(|x| x.code)
        .collect();
    let orgs = app.filter_organisations(s.who()).await?;
    let pages = list.total.div_ceil(list.per_page.max(1)).max(1);
    s.ok(
        "incidents.html",
        minijinja::context! { incidents => Value::from_serialize(&list.items),
        total => list.total, page => list.page, pages => pages, systems => systems, orgs => orgs,
        q => Value::from_serialize(&q), states => IncidentStatus::ALL.iter().map(|x| x.as_str()).collect::<Vec<_>>(),
        kinds => changegate_app::incidents::KINDS, severities => severities() },
    )
}

#[derive(Serialize, Default)]
struct IncidentForm {
    system: String,
    kind: String,
    severity: String,
    summary: String,
}

impl IncidentForm {
    fn from(f: &FormData) -> Self {
        IncidentForm {
            system: f.get("system").trim().to_owned(),
            kind: f.get("kind").trim().to_owned(),
            severity: f.get("severity").trim().to_owned(),
            summary: f.get("summary").to_owned(),
        }
    }
}

async fn form_page(
    app: &AppState,
    s: &Signed,
    status: StatusCode,
    form: &IncidentForm,
    errors: &Errors,
) -> Result<Response, WebError> {
    let systems: Vec<(String, String)> = app
        .visible_systems(s.who())
        .await?
        .into_iter()
        .map(|x| (x.code, x.name))
        .collect();
    s.page(
        status,
        "incident_new.html",
        minijinja::context! {
        systems => systems, kinds => changegate_app::incidents::KINDS, severities => severities(),
        f => Value::from_serialize(form), errors => errors },
    )
}

/// `GET /incidents/new[?system=CODE]`.
pub async fn new_form(
    State(app): State<AppState>,
    s: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let form = match s.draft(&app).await? {
        Some(d) => IncidentForm::from(&d),
        None => IncidentForm {
            system: q.get("system").cloned().unwrap_or_default(),
            ..Default::default()
        },
    };
    form_page(&app, &s, StatusCode::OK, &form, &Errors::new()).await
}

/// `POST /incidents/new`.
pub async fn report(
    State(app): State<AppState>,
    s: Signed,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    let form = IncidentForm::from(&f);
    let mut errors = Errors::new();
    // `datetime-local`: the server's local time, to the minute.
    let detected_at = match f.get("detected_at").trim() {
        "" => None,
        v => match chrono::NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M") {
            Ok(t) => app
                .tz
                .from_local_datetime(&t)
                .earliest()
                .map(|t| t.with_timezone(&chrono::Utc)),
            Err(_) => {
                msg::add(&mut errors, s.lang, "detected_at");
                None
            }
        },
    };
    let new = NewIncident {
        kind: form.kind.clone(),
        severity: form.severity.clone(),
        summary: form.summary.clone(),
        detected_at,
        national_security: f.get("national_security") == "1",
    };
    if !errors.is_empty() {
        return form_page(&app, &s, StatusCode::UNPROCESSABLE_ENTITY, &form, &errors).await;
    }
    match app.report_incident(s.who(), &form.system, new).await {
        Ok(_) => return Ok(see_other("/incidents?ok=incident_reported")),
        Err(AppError::Invalid(errs)) => {
            for (field, _) in &errs {
                let ff = match field.as_str() {
                    "kind" | "severity" | "summary" | "detected_at" => field.as_str(),
                    _ => "generic",
                };
                msg::add(&mut errors, s.lang, ff);
            }
        }
        // The system is unknown or another organisation's: the same answer either way.
        Err(AppError::NotFound(_)) => msg::add(&mut errors, s.lang, "system"),
        Err(e) => return Err(e.into()),
    }
    form_page(&app, &s, StatusCode::UNPROCESSABLE_ENTITY, &form, &errors).await
}

/// `POST /incidents/{id}/notices`: records a notice sent (kind, recipient, channel, number).
pub async fn notice(
    State(app): State<AppState>,
    s: Signed,
    id: Seg,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    let n = changegate_api::NewIncidentNotice {
        kind: f.get("kind").trim().to_owned(),
        sent_at: None,
        recipient: f.get("recipient").trim().to_owned(),
        channel: f.get("channel").trim().to_owned(),
        document_number: Some(f.get("document_number").trim().to_owned()).filter(|d| !d.is_empty()),
    };
    let id = id.id()?;
    match app.record_incident_notice(s.who(), id, n).await {
        Ok(_) => Ok(see_other(&format!("/incidents/{id}?ok=notice_recorded"))),
        Err(AppError::Invalid(_)) => Ok(see_other(&format!("/incidents/{id}?err=notice_invalid"))),
        Err(e) => Err(e.into()),
    }
}

/// `GET /incidents/{id}`: the incident, its notice deadlines, the notices sent, its history.
pub async fn show(State(app): State<AppState>, s: Signed, id: Seg) -> Result<Response, WebError> {
    let id = id.id()?;
    let incident = app.incident(s.who(), id).await?;
    let history = app.incident_timeline(s.who(), id).await?;
    s.ok(
        "incident.html",
        minijinja::context! { i => Value::from_serialize(&incident),
        history => Value::from_serialize(&history) },
    )
}

/// `GET /incidents/{id}/resolve`: the confirmation, with the note of what was done (PA05
/// reviewers, an open incident; anyone else goes back to the incident).
pub async fn confirm_resolve(
    State(app): State<AppState>,
    s: Signed,
    id: Seg,
) -> Result<Response, WebError> {
    let id = id.id()?;
    let i = app.incident(s.who(), id).await?;
    if s.who().role != changegate_domain::Role::Reviewer
        || i.status != changegate_domain::gate::IncidentStatus::Open.as_str()
    {
        return Ok(see_other(&format!("/incidents/{id}")));
    }
    resolve_page(&s, StatusCode::OK, &i, "", &Errors::new())
}

fn resolve_page(
    s: &Signed,
    status: StatusCode,
    i: &changegate_api::Incident,
    note: &str,
    errors: &Errors,
) -> Result<Response, WebError> {
    let what = format!("#{} · {}", i.id, i.summary);
    s.page(
        status,
        "confirm.html",
        minijinja::context! { heading_key => "ui.resolve_heading", question_key => "ui.resolve_question",
        what => what, action => format!("/incidents/{}/resolve", i.id), back => format!("/incidents/{}", i.id),
        yes_key => "incidents.resolve", note_key => "ui.resolve_note", note => note, errors => errors,
        danger => false },
    )
}

/// `POST /incidents/{id}/resolve` (PA05 reviewers): with `confirmed=1` and the note, resolves;
/// without, the confirmation.
pub async fn resolve(
    State(app): State<AppState>,
    s: Signed,
    id: Seg,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    let id = id.id()?;
    if f.get("confirmed") != "1" {
        // An incident not visible is not found, as everywhere.
        app.incident(s.who(), id).await?;
        return Ok(see_other(&format!("/incidents/{id}/resolve")));
    }
    let note = f.get("note");
    match app.resolve_incident_noted(s.who(), id, Some(note)).await {
        Ok(_) => Ok(see_other(&format!("/incidents/{id}?ok=incident_resolved"))),
        Err(AppError::Invalid(_)) => {
            let i = app.incident(s.who(), id).await?;
            let mut errors = Errors::new();
            msg::add(&mut errors, s.lang, "note");
            resolve_page(&s, StatusCode::UNPROCESSABLE_ENTITY, &i, note, &errors)
        }
        Err(e) => Err(e.into()),
    }
}
