//! The evaluation form (each checklist item pass, fail or not applicable with a note; findings,
//! conditions, conclusion, second factor) and the printable evaluation report.

use super::login::is_wrong_code;
use super::msg::{self, Errors};
use super::session::{FormData, Seg, Signed, WebError, see_other};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use changegate_api::{ChangeRequest, ItemAnswer, NewSignOff, WireFinding};
use changegate_app::AppError;
use changegate_domain::Role;
use changegate_domain::change::Command;
use minijinja::Value;
use serde::Serialize;
use std::collections::HashMap;

const SEVERITIES: [&str; 4] = ["low", "medium", "high", "critical"];

/// The values of the form, kept when it is shown again (never the code).
#[derive(Serialize, Default)]
struct EvalForm {
    results: Vec<String>,
    notes: Vec<String>,
    findings: String,
    conditions: String,
    conclusion: String,
}

impl EvalForm {
    fn from(f: &FormData, n: usize) -> Self {
        EvalForm {
            results: (0..n)
                .map(|i| f.get(&format!("result_{i}")).to_owned())
                .collect(),
            notes: (0..n)
                .map(|i| f.get(&format!("note_{i}")).to_owned())
                .collect(),
            findings: f.get("findings").to_owned(),
            conditions: f.get("conditions").to_owned(),
            conclusion: f.get("conclusion").to_owned(),
        }
    }
}

fn lines(s: &str) -> impl Iterator<Item = &str> {
    s.lines().map(str::trim).filter(|l| !l.is_empty())
}

/// A finding per line; a line may start with its severity (`high: …`), else it is `medium`.
fn findings(s: &str) -> Vec<WireFinding> {
    lines(s)
        .map(|l| match l.split_once(':') {
            Some((sev, text)) if SEVERITIES.contains(&sev.trim().to_ascii_lowercase().as_str()) => {
                WireFinding {
                    severity: sev.trim().to_ascii_lowercase(),
                    text: text.trim().to_owned(),
                }
            }
            _ => WireFinding {
                severity: "medium".into(),
                text: l.to_owned(),
            },
        })
        .collect()
}

async fn page(
    s: &Signed,
    status: StatusCode,
    cr: &ChangeRequest,
    form: &EvalForm,
    errors: &Errors,
) -> Result<Response, WebError> {
    s.page(
        status,
        "evaluate.html",
        minijinja::context! {
        cr => Value::from_serialize(cr), f => Value::from_serialize(form), errors => errors },
    )
}

/// `GET /changes/{id}/evaluate` (PA05 reviewers).
pub async fn form(State(app): State<AppState>, s: Signed, id: Seg) -> Result<Response, WebError> {
    let cr = app.get_change(s.who(), id.id()?).await?;
    if s.who().role != Role::Reviewer {
        return Err(WebError::Forbidden);
    }
    let n = cr.checklist.len();
    let form = EvalForm {
        results: vec![String::new(); n],
        notes: vec![String::new(); n],
        ..Default::default()
    };
    page(&s, StatusCode::OK, &cr, &form, &Errors::new()).await
}

/// Which form field an app error names (`checklist[3].note` is `note_3`).
fn form_field(app_field: &str) -> String {
    if let Some((i, what)) = app_field
        .strip_prefix("checklist[")
        .and_then(|rest| rest.split_once("]."))
    {
        return match what {
            "note" => format!("note_{i}"),
            _ => format!("result_{i}"),
        };
    }
    match app_field {
        f if f.starts_with("findings") => "findings".into(),
        f if f.starts_with("conditions") => "conditions".into(),
        "checklist" | "conclusion" | "code" => app_field.into(),
        _ => "generic".into(),
    }
}

/// `POST /changes/{id}/evaluate`: signs off (asking the second factor again), or sends the
/// change back to its owner (`conclusion=changes_requested`, the findings are the note).
pub async fn submit(
    State(app): State<AppState>,
    s: Signed,
    id: Seg,
    f: FormData,
) -> Result<Response, WebError> {
    s.check_csrf(&f)?;
    let id = id.id()?;
    let cr = app.get_change(s.who(), id).await?;
    let form = EvalForm::from(&f, cr.checklist.len());
    let mut errors = Errors::new();
    let conclusion = form.conclusion.as_str();
    if conclusion == "changes_requested" {
        let note = form.findings.trim();
        if note.is_empty() {
            msg::add_key(&mut errors, s.lang, "findings", "err.note_required");
            return page(&s, StatusCode::UNPROCESSABLE_ENTITY, &cr, &form, &errors).await;
        }
        let cmd = Command::RequestChanges {
            note: note.to_owned(),
        };
        app.act_on_change(Some(s.who()), id, cmd).await?;
        return Ok(see_other(&format!("/changes/{id}?ok=changes_requested")));
    }
    if !matches!(conclusion, "pass" | "fail") {
        msg::add(&mut errors, s.lang, "conclusion");
    }
    for (i, r) in form.results.iter().enumerate() {
        if !matches!(r.as_str(), "pass" | "fail" | "na") {
            msg::add(&mut errors, s.lang, &format!("result_{i}"));
        }
    }
    let code = f.get("code").trim();
    if code.is_empty() {
        msg::add(&mut errors, s.lang, "code");
    }
    if !errors.is_empty() {
        return page(&s, StatusCode::UNPROCESSABLE_ENTITY, &cr, &form, &errors).await;
    }
    let req = NewSignOff {
        conclusion: conclusion.to_owned(),
        checklist: cr
            .checklist
            .iter()
            .zip(form.results.iter().zip(&form.notes))
            .map(|(item, (result, note))| ItemAnswer {
                item: item.item.clone(),
                result: result.clone(),
                note: note.trim().to_owned(),
            })
            .collect(),
        findings: findings(&form.findings),
        conditions: lines(&form.conditions).map(str::to_owned).collect(),
        second_factor_code: None,
    };
    match app.sign_off_with_second_factor(&s.s, id, req, code).await {
        Ok(_) => Ok(see_other(&format!("/changes/{id}?ok=signed_off"))),
        Err(e) if is_wrong_code(&e) => {
            msg::add_key(&mut errors, s.lang, "code", "err.code_wrong");
            page(&s, StatusCode::UNPROCESSABLE_ENTITY, &cr, &form, &errors).await
        }
        Err(AppError::Invalid(errs)) => {
            for (field, message) in &errs {
                let ff = form_field(field);
                if ff == "conclusion" && message.contains("failed") {
                    msg::add_key(
                        &mut errors,
                        s.lang,
                        "conclusion",
                        "err.conclusion_fail_item",
                    );
                } else {
                    msg::add(&mut errors, s.lang, &ff);
                }
            }
            page(&s, StatusCode::UNPROCESSABLE_ENTITY, &cr, &form, &errors).await
        }
        Err(e) => Err(e.into()),
    }
}

/// `GET /changes/{id}/report[?round=N]`: the printable evaluation report.
pub async fn report(
    State(app): State<AppState>,
    s: Signed,
    id: Seg,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let round = match q.get("round") {
        Some(r) => Some(r.parse::<i32>().map_err(|_| WebError::NotFound)?),
        None => None,
    };
    let r = app.evaluation_report(s.who(), id.id()?, round).await?;
    s.ok(
        "report.html",
        minijinja::context! { r => Value::from_serialize(&r) },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_take_an_optional_severity_prefix() {
        let f = findings("high: tài khoản dùng chung\n\n  thiếu nhật ký  \nCRITICAL: mã độc");
        let got: Vec<_> = f
            .iter()
            .map(|x| (x.severity.as_str(), x.text.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("high", "tài khoản dùng chung"),
                ("medium", "thiếu nhật ký"),
                ("critical", "mã độc")
            ]
        );
    }

    #[test]
    fn app_fields_map_to_form_fields() {
        assert_eq!(form_field("checklist[3].note"), "note_3");
        assert_eq!(form_field("checklist[0].item"), "result_0");
        assert_eq!(form_field("conditions[1]"), "conditions");
        assert_eq!(form_field("findings[0].text"), "findings");
        assert_eq!(form_field("conclusion"), "conclusion");
        assert_eq!(form_field("whatever"), "generic");
    }
}
