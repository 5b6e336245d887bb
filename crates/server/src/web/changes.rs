//! Change requests: the list, the form, the page, submit and withdraw.

use super::errors::WebError;
use super::extract::{FormData, Seg, Signed};
use super::msg::{self, Errors};
use super::query::ListQuery;
use super::reply::see_other;
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use changegate_api::{NewChangeRequest, WireSubject};
use changegate_app::AppError;
use changegate_app::changes::{ChangeFilter, PER_PAGE};
use changegate_domain::change::Command;
use changegate_domain::{ChangeKind, CrState};
use minijinja::Value;
use serde::Serialize;
use std::collections::HashMap;

/// Kinds an owner files from the form (periodic re-reviews are opened by the scheduler).
const KINDS: [ChangeKind; 5] = [
    ChangeKind::Software,
    ChangeKind::Hardware,
    ChangeKind::Configuration,
    ChangeKind::Network,
    ChangeKind::Emergency,
];

/// `GET /changes`: the visible change requests, newest first.
pub async fn list(
    State(app): State<AppState>,
    s: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let lq = ListQuery(&q);
    let get = |k: &str| lq.get(k);
    let page = lq.page()?;
    let filter = ChangeFilter {
        system: get("system"),
        org: get("org"),
        state: get("state"),
        kind: get("kind"),
        from: get("from"),
        to: get("to"),
        q: get("q"),
        page,
        limit: None,
    };
    let list = match app.list_changes(s.who(), &filter).await {
        Ok(l) => l,
        // A filter naming nothing: no changes, not an error page.
        Err(AppError::Invalid(_)) => changegate_api::ChangeRequestList {
            items: vec![],
            page: 1,
            per_page: PER_PAGE,
            total: 0,
        },
        Err(e) => return Err(e.into()),
    };
    let ids: Vec<i64> = list.items.iter().map(|c| c.id).collect();
    let changes = app.change_rows_of(s.who(), &ids).await?;
    let systems: Vec<(String, String)> = app
        .visible_systems(s.who())
        .await?
        .into_iter()
        .map(|x| (x.code, x.name))
        .collect();
    let orgs = app.filter_organisations(s.who()).await?;
    let pages = list.total.div_ceil(list.per_page).max(1);
    s.ok(
        "changes.html",
        minijinja::context! { changes => Value::from_serialize(&changes),
        total => list.total, page => list.page, pages => pages, systems => systems, orgs => orgs,
        q => Value::from_serialize(&q),
        states => CrState::ALL.iter().map(|x| x.as_str()).collect::<Vec<_>>(),
        kinds => ChangeKind::ALL.iter().map(|x| x.as_str()).collect::<Vec<_>>() },
    )
}

#[derive(Serialize)]
struct SystemChoice {
    code: String,
    name: String,
    environments: Vec<String>,
}

/// The values of the form, kept when it is shown again.
#[derive(Serialize, Default)]
struct ChangeForm {
    system: String,
    kind: String,
    title: String,
    description: String,
    environments: Vec<String>,
    commit: String,
    tree: String,
    artifact: String,
    submit: bool,
    /// Aspects of a major change checked on the form.
    major_change: Vec<String>,
}

impl ChangeForm {
    fn from(f: &FormData) -> Self {
        ChangeForm {
            system: f.get("system").trim().to_owned(),
            kind: f.get("kind").trim().to_owned(),
            title: f.get("title").to_owned(),
            description: f.get("description").to_owned(),
            environments: f.all("environments"),
            commit: f.get("commit").trim().to_owned(),
            tree: f.get("tree").trim().to_owned(),
            artifact: f.get("artifact").trim().to_owned(),
            submit: f.get("submit") == "1",
            major_change: f.all("major_change"),
        }
    }

    fn subjects(&self) -> Vec<WireSubject> {
        let mut out = vec![];
        if !self.commit.is_empty() || !self.tree.is_empty() {
            out.push(WireSubject::GitCommit {
                commit: self.commit.to_ascii_lowercase(),
                tree: self.tree.to_ascii_lowercase(),
            });
        }
        if !self.artifact.is_empty() {
            out.push(WireSubject::Artifact {
                digest: self.artifact.clone(),
            });
        }
        out
    }
}

async fn form_page(
    app: &AppState,
    s: &Signed,
    status: StatusCode,
    form: &ChangeForm,
    errors: &Errors,
) -> Result<Response, WebError> {
    edit_page(app, s, status, form, errors, None).await
}

/// The form, to file a change or (`editing`: the change's id) to edit a draft.
async fn edit_page(
    app: &AppState,
    s: &Signed,
    status: StatusCode,
    form: &ChangeForm,
    errors: &Errors,
    editing: Option<i64>,
) -> Result<Response, WebError> {
    let mut systems = vec![];
    for sys in app.visible_systems(s.who()).await? {
        systems.push(SystemChoice {
            environments: sys.environments.0,
            code: sys.code,
            name: sys.name,
        });
    }
    let mut envs: Vec<String> = match systems.iter().find(|x| x.code == form.system) {
        Some(sys) => sys.environments.clone(),
        None => systems
            .iter()
            .flat_map(|x| x.environments.clone())
            .collect(),
    };
    // A value sent that the system does not have stays on the form, checked, next to its error.
    envs.extend(form.environments.iter().take(20).cloned());
    envs.sort();
    envs.dedup();
    s.page(
        status,
        "change_new.html",
        minijinja::context! {
        systems => Value::from_serialize(&systems), envs => envs, kinds => KINDS.map(ChangeKind::as_str),
        f => Value::from_serialize(form), errors => errors, editing => editing,
        majors => changegate_domain::MajorAspect::ALL.iter().map(|a| a.as_str()).collect::<Vec<_>>() },
    )
}

/// `GET /changes/new?system=CODE`: the form.
pub async fn new_form(
    State(app): State<AppState>,
    s: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let form = match s.draft(&app).await? {
        Some(d) => ChangeForm::from(&d),
        None => ChangeForm {
            system: q.get("system").cloned().unwrap_or_default(),
            kind: ChangeKind::Software.as_str().into(),
            ..Default::default()
        },
    };
    form_page(&app, &s, StatusCode::OK, &form, &Errors::new()).await
}

/// Which form field an app error names (`subjects[0].commit` is `commit`).
fn form_field(app_field: &str) -> &'static str {
    let last = app_field.rsplit('.').next().unwrap_or(app_field);
    match (app_field, last) {
        (f, _) if f.starts_with("environments") => "environments",
        (_, "commit") | ("subjects", _) | ("git", _) => "commit",
        (_, "tree") => "tree",
        (_, "digest") => "artifact",
        ("system", _) => "system",
        ("kind", _) | ("remediates_incident", _) => "kind",
        (f, _) if f.starts_with("major_change") => "major_change",
        ("title", _) => "title",
        ("description", _) => "description",
        _ => "generic",
    }
}

/// `POST /changes`: files the change (and submits it with `submit=1`), then its page.
pub async fn file(
    State(app): State<AppState>,
    s: Signed,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    let form = ChangeForm::from(&f);
    let new = NewChangeRequest {
        system: form.system.clone(),
        kind: form.kind.clone(),
        title: form.title.clone(),
        description: form.description.clone(),
        environments: form.environments.clone(),
        subjects: form.subjects(),
        components: vec![],
        git: None,
        remediates_incident: None,
        major_change: form.major_change.clone(),
    };
    let cr = match app.file_change(s.who(), new).await {
        Ok(cr) => cr,
        Err(AppError::Invalid(errs)) => {
            // Every problem at once: the app stops at an unknown system, the page also names
            // the other fields left empty.
            let mut errors = Errors::new();
            for (field, _) in &errs {
                msg::add(&mut errors, s.lang, form_field(field));
            }
            for (field, empty) in [
                ("title", form.title.trim().is_empty()),
                ("environments", form.environments.is_empty()),
                ("kind", form.kind.is_empty()),
            ] {
                if empty {
                    msg::add(&mut errors, s.lang, field);
                }
            }
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return form_page(&app, &s, status, &form, &errors).await;
        }
        Err(e) => return Err(e.into()),
    };
    if !form.submit {
        return Ok(see_other(&format!("/changes/{}?ok=filed", cr.id)));
    }
    Ok(
        match app
            .act_on_change(Some(s.who()), cr.id, Command::Submit)
            .await
        {
            Ok(_) => see_other(&format!("/changes/{}?ok=submitted", cr.id)),
            Err(AppError::Internal(m)) => return Err(AppError::Internal(m).into()),
            Err(_) => see_other(&format!("/changes/{}?err=submit_failed", cr.id)),
        },
    )
}

/// The change's content as the form shows it; `None` when its subjects are more than one commit
/// and one artifact (those are edited through the API, the form leaves them as they are).
fn form_of(cr: &changegate_api::ChangeRequest) -> (ChangeForm, bool) {
    let mut form = ChangeForm {
        system: cr.system.clone(),
        kind: cr.kind.clone(),
        title: cr.title.clone(),
        description: cr.description.clone(),
        environments: cr.environments.clone(),
        major_change: cr.major_change.clone(),
        ..Default::default()
    };
    let (mut gits, mut artifacts) = (0, 0);
    for sub in &cr.subjects {
        match sub {
            WireSubject::GitCommit { commit, tree } => {
                gits += 1;
                form.commit = commit.clone();
                form.tree = tree.clone();
            }
            WireSubject::Artifact { digest } => {
                artifacts += 1;
                form.artifact = digest.clone();
            }
        }
    }
    (form, gits <= 1 && artifacts <= 1)
}

/// `GET /changes/{id}/edit`: the form of a draft (an owner of its organisation), filled in.
pub async fn edit_form(
    State(app): State<AppState>,
    s: Signed,
    id: Seg,
) -> Result<Response, WebError> {
    let id = id.id()?;
    let cr = app.get_change(s.who(), id).await?;
    if s.who().role != changegate_domain::Role::Owner {
        return Err(WebError::Forbidden);
    }
    if cr.state != changegate_domain::CrState::Draft.as_str() {
        return Ok(see_other(&format!("/changes/{id}?err=not_editable")));
    }
    let (mut form, _) = form_of(&cr);
    if let Some(d) = s.draft(&app).await? {
        let (system, kind) = (form.system, form.kind);
        form = ChangeForm {
            system,
            kind,
            ..ChangeForm::from(&d)
        };
    }
    edit_page(&app, &s, StatusCode::OK, &form, &Errors::new(), Some(id)).await
}

/// `POST /changes/{id}/edit`: saves the draft (and submits it again with `submit=1`).
pub async fn edit(
    State(app): State<AppState>,
    s: Signed,
    id: Seg,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    let id = id.id()?;
    let cr = app.get_change(s.who(), id).await?;
    let (before, simple) = form_of(&cr);
    let mut form = ChangeForm::from(&f);
    form.system = before.system.clone();
    form.kind = before.kind.clone();
    let subjects_changed = (&form.commit, &form.tree, &form.artifact)
        != (&before.commit, &before.tree, &before.artifact);
    let e = changegate_api::EditChangeRequest {
        title: Some(form.title.clone()),
        description: Some(form.description.clone()),
        environments: Some(form.environments.clone()),
        subjects: (simple && subjects_changed).then(|| form.subjects()),
        components: None,
        major_change: Some(form.major_change.clone()),
    };
    if let Err(err) = app.edit_change(s.who(), id, e).await {
        return match err {
            AppError::Invalid(errs) => {
                let mut errors = Errors::new();
                for (field, _) in &errs {
                    msg::add(&mut errors, s.lang, form_field(field));
                }
                let status = StatusCode::UNPROCESSABLE_ENTITY;
                edit_page(&app, &s, status, &form, &errors, Some(id)).await
            }
            e => Err(e.into()),
        };
    }
    if !form.submit {
        return Ok(see_other(&format!("/changes/{id}?ok=edited")));
    }
    Ok(
        match app.act_on_change(Some(s.who()), id, Command::Submit).await {
            Ok(_) => see_other(&format!("/changes/{id}?ok=submitted")),
            Err(AppError::Internal(m)) => return Err(AppError::Internal(m).into()),
            Err(_) => see_other(&format!("/changes/{id}?err=submit_failed")),
        },
    )
}

/// `GET /changes/{id}`: subjects, commits and files, checklist, sign-offs, timeline, state.
pub async fn show(State(app): State<AppState>, s: Signed, id: Seg) -> Result<Response, WebError> {
    let id = id.id()?;
    change_page(
        &app,
        &s,
        StatusCode::OK,
        id,
        &HashMap::new(),
        &Errors::new(),
    )
    .await
}

/// The fields of the external assessment form.
const ASSESSMENT_FIELDS: [&str; 4] = ["organisation", "licence", "report_ref", "assessed_on"];

/// `POST /changes/{id}/external-assessment` (`organisation`, `licence`, `report_ref`,
/// `assessed_on`): the owner or a PA05 reviewer records a major change's external assessment
/// (Decree 331/2026 Art. 31.2.c). A refused value shows the page again (422) with the message
/// and what was typed.
pub async fn external_assessment(
    State(app): State<AppState>,
    s: Signed,
    id: Seg,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    let id = id.id()?;
    let kept: HashMap<&str, String> = ASSESSMENT_FIELDS
        .iter()
        .map(|k| (*k, f.get(k).trim().to_owned()))
        .collect();
    let mut errors = Errors::new();
    match chrono::NaiveDate::parse_from_str(&kept["assessed_on"], "%Y-%m-%d") {
        Err(_) => msg::add(&mut errors, s.lang, "assessed_on"),
        Ok(assessed_on) => {
            let n = changegate_api::NewExternalAssessment {
                organisation: kept["organisation"].clone(),
                licence: kept["licence"].clone(),
                report_ref: kept["report_ref"].clone(),
                assessed_on,
            };
            match app.record_external_assessment(s.who(), id, n).await {
                Ok(_) => return Ok(see_other(&format!("/changes/{id}?ok=assessment_recorded"))),
                Err(AppError::Invalid(fields)) => {
                    for (field, _) in fields {
                        msg::add(&mut errors, s.lang, &field);
                    }
                }
                Err(AppError::Conflict(..)) => {
                    msg::add_key(&mut errors, s.lang, "organisation", "err.assessment_exists");
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    change_page(&app, &s, status, id, &kept, &errors).await
}

/// The change page, with the external assessment form's values and errors.
async fn change_page(
    app: &AppState,
    s: &Signed,
    status: StatusCode,
    id: i64,
    f: &HashMap<&str, String>,
    errors: &Errors,
) -> Result<Response, WebError> {
    let cr = app.get_change(s.who(), id).await?;
    let timeline = app.change_timeline(s.who(), id).await?;
    let signed_by_me = cr
        .sign_offs
        .iter()
        .any(|x| x.round == cr.round && x.reviewer == s.who().username);
    let filter = changegate_app::remediation::RemediationFilter {
        change_request: Some(id),
        ..Default::default()
    };
    let items = app.list_remediations(s.who(), &filter).await?;
    // A major change still open for evaluation, without its external assessment: its owner or
    // a PA05 reviewer records it here.
    let may_assess = !cr.major_change.is_empty()
        && cr.external_assessment.is_none()
        && [CrState::Draft.as_str(), CrState::Submitted.as_str()].contains(&cr.state.as_str())
        && matches!(
            s.who().role,
            changegate_domain::Role::Owner | changegate_domain::Role::Reviewer
        );
    s.page(
        status,
        "change.html",
        minijinja::context! {
        cr => Value::from_serialize(&cr), timeline => Value::from_serialize(&timeline),
        signed_by_me => signed_by_me, items => Value::from_serialize(&items.items),
        may_assess => may_assess, f => f, errors => errors },
    )
}

async fn act(
    app: &AppState,
    s: &Signed,
    id: Seg,
    f: &FormData,
    cmd: Command,
    ok: &str,
) -> Result<Response, WebError> {
    s.check_csrf(f)?;
    let id = id.id()?;
    app.act_on_change(Some(s.who()), id, cmd).await?;
    Ok(see_other(&format!("/changes/{id}?ok={ok}")))
}

/// `POST /changes/{id}/submit`.
pub async fn submit(
    State(app): State<AppState>,
    s: Signed,
    id: Seg,
    f: FormData,
) -> Result<Response, WebError> {
    act(&app, &s, id, &f, Command::Submit, "submitted").await
}

/// `GET /changes/{id}/withdraw`: the confirmation (an owner, a change that can be withdrawn;
/// anyone else goes back to the change).
pub async fn confirm_withdraw(
    State(app): State<AppState>,
    s: Signed,
    id: Seg,
) -> Result<Response, WebError> {
    let id = id.id()?;
    let cr = app.get_change(s.who(), id).await?;
    let can = s.who().role == changegate_domain::Role::Owner
        && [CrState::Draft.as_str(), CrState::Submitted.as_str()].contains(&cr.state.as_str())
        && cr.emergency_until.is_none();
    if !can {
        return Ok(see_other(&format!("/changes/{id}")));
    }
    s.ok(
        "confirm.html",
        minijinja::context! { heading_key => "ui.withdraw_heading",
        question_key => "ui.withdraw_question", what => format!("#{} · {}", cr.id, cr.title),
        action => format!("/changes/{id}/withdraw"), back => format!("/changes/{id}"),
        yes_key => "change.withdraw", danger => true },
    )
}

/// `POST /changes/{id}/withdraw`: with `confirmed=1`; without, the confirmation.
pub async fn withdraw(
    State(app): State<AppState>,
    s: Signed,
    id: Seg,
    f: FormData,
) -> Result<Response, WebError> {
    if f.get("confirmed") != "1" {
        s.check_csrf(&f)?;
        let id = id.id()?;
        // Another organisation's change is not found, as everywhere.
        app.get_change(s.who(), id).await?;
        return Ok(see_other(&format!("/changes/{id}/withdraw")));
    }
    act(&app, &s, id, &f, Command::Withdraw, "withdrawn").await
}
