//! The evaluation form (each checklist item pass, fail or not applicable with a note; findings,
//! conditions, conclusion, second factor) and the printable evaluation report.

use super::errors::WebError;
use super::extract::{FormData, Seg, Signed};
use super::login::is_wrong_code;
use super::msg::{self, Errors};
use super::reply::see_other;
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use changegate_api::{
    ChangeRequest, ConditionSpec, ItemAnswer, NewSignOff, WireCondition, WireFinding,
};
use changegate_app::AppError;
use changegate_domain::Role;
use minijinja::Value;
use serde::Serialize;
use std::collections::HashMap;

/// Finding and condition rows the form shows at first, and how many more "add a row" gives.
const FINDING_ROWS: usize = 3;
const CONDITION_ROWS: usize = 2;
const MORE_ROWS: usize = 3;
/// At most this many rows of each (the API's limits are higher).
const MAX_ROWS: usize = 60;

/// One finding row of the form.
#[derive(Serialize, Default, Clone)]
struct FindingRow {
    severity: String,
    item: String,
    text: String,
}

/// One condition row of the form.
#[derive(Serialize, Default, Clone)]
struct ConditionRow {
    text: String,
    severity: String,
    due: String,
}

/// The values of the form, kept when it is shown again (never the code).
#[derive(Serialize, Default)]
struct EvalForm {
    results: Vec<String>,
    notes: Vec<String>,
    findings: Vec<FindingRow>,
    conditions: Vec<ConditionRow>,
    /// The note to the owner when the change is sent back.
    return_note: String,
    conclusion: String,
}

/// How many rows to show: the rows posted (or the default), one more when `add` asks for it.
fn rows(f: &FormData, prefix: &str, default: usize, add: bool) -> usize {
    let posted =
        f.0.iter()
            .filter_map(|(k, _)| k.strip_prefix(prefix)?.parse::<usize>().ok())
            .map(|i| i + 1)
            .max()
            .unwrap_or(default)
            .max(default);
    (posted + if add { MORE_ROWS } else { 0 }).min(MAX_ROWS)
}

impl EvalForm {
    fn from(f: &FormData, n: usize) -> Self {
        let add = f.get("add");
        EvalForm {
            results: (0..n)
                .map(|i| f.get(&format!("result_{i}")).to_owned())
                .collect(),
            notes: (0..n)
                .map(|i| f.get(&format!("note_{i}")).to_owned())
                .collect(),
            findings: (0..rows(f, "finding_text_", FINDING_ROWS, add == "finding"))
                .map(|k| FindingRow {
                    severity: f.get(&format!("finding_sev_{k}")).to_owned(),
                    item: f.get(&format!("finding_item_{k}")).to_owned(),
                    text: f.get(&format!("finding_text_{k}")).to_owned(),
                })
                .collect(),
            conditions: (0..rows(f, "cond_text_", CONDITION_ROWS, add == "condition"))
                .map(|k| ConditionRow {
                    text: f.get(&format!("cond_text_{k}")).to_owned(),
                    severity: f.get(&format!("cond_sev_{k}")).to_owned(),
                    due: f.get(&format!("cond_due_{k}")).to_owned(),
                })
                .collect(),
            return_note: f.get("return_note").to_owned(),
            conclusion: f.get("conclusion").to_owned(),
        }
    }

    fn blank(n: usize) -> Self {
        EvalForm {
            results: vec![String::new(); n],
            notes: vec![String::new(); n],
            findings: vec![FindingRow::default(); FINDING_ROWS],
            conditions: vec![ConditionRow::default(); CONDITION_ROWS],
            ..Default::default()
        }
    }

    /// The findings filled in, with the row each came from. Text is kept as typed (line breaks
    /// included); a row without text is not a finding.
    fn wire_findings(&self) -> (Vec<WireFinding>, Vec<usize>) {
        self.findings
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.text.trim().is_empty())
            .map(|(k, r)| {
                let f = WireFinding {
                    severity: r.severity.clone(),
                    text: r.text.clone(),
                    item: Some(r.item.clone()).filter(|i| !i.is_empty()),
                };
                (f, k)
            })
            .unzip()
    }

    /// The conditions filled in, with the row each came from.
    fn wire_conditions(&self) -> (Vec<WireCondition>, Vec<usize>) {
        self.conditions
            .iter()
            .enumerate()
            .filter(|(_, r)| !r.text.trim().is_empty())
            .map(|(k, r)| {
                let c = WireCondition::Full(ConditionSpec {
                    text: r.text.clone(),
                    severity: Some(r.severity.clone()).filter(|s| !s.is_empty()),
                    due: Some(r.due.trim().to_owned()).filter(|d| !d.is_empty()),
                });
                (c, k)
            })
            .unzip()
    }
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

/// Whether `s` may still evaluate `cr`: it is submitted and not yet signed by them this round.
fn open_to(s: &Signed, cr: &ChangeRequest) -> bool {
    cr.state == changegate_domain::CrState::Submitted.as_str()
        && !cr
            .sign_offs
            .iter()
            .any(|x| x.round == cr.round && x.reviewer == s.who().username)
}

/// `GET /changes/{id}/evaluate` (PA05 reviewers): the form, or once the change is signed by
/// this reviewer or no longer open to evaluation, what came of it.
pub async fn form(State(app): State<AppState>, s: Signed, id: Seg) -> Result<Response, WebError> {
    let cr = app.get_change(s.who(), id.id()?).await?;
    if s.who().role != Role::Reviewer {
        return Err(WebError::Forbidden);
    }
    if !open_to(&s, &cr) {
        let mine: Vec<_> = cr
            .sign_offs
            .iter()
            .filter(|x| x.reviewer == s.who().username)
            .collect();
        return s.ok(
            "evaluate.html",
            minijinja::context! { cr => Value::from_serialize(&cr), done => true,
            mine => Value::from_serialize(&mine) },
        );
    }
    let form = match s.draft(&app).await? {
        Some(d) => EvalForm::from(&d, cr.checklist.len()),
        None => EvalForm::blank(cr.checklist.len()),
    };
    page(&s, StatusCode::OK, &cr, &form, &Errors::new()).await
}

/// Which form field an app error names (`checklist[3].note` is `note_3`; `findings[1].text` is
/// the text of the row the second finding came from).
fn form_field(app_field: &str, finding_rows: &[usize], condition_rows: &[usize]) -> String {
    for (list, rows, prefix) in [
        ("findings[", finding_rows, "finding"),
        ("conditions[", condition_rows, "cond"),
    ] {
        if let Some((i, what)) = app_field
            .strip_prefix(list)
            .and_then(|rest| rest.split_once(']'))
        {
            let row = i.parse::<usize>().ok().and_then(|i| rows.get(i));
            let what = match what.trim_start_matches('.') {
                "severity" => "sev",
                "item" => "item",
                "due" => "due",
                _ => "text",
            };
            return match row {
                Some(k) => format!("{prefix}_{what}_{k}"),
                None => "generic".into(),
            };
        }
    }
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
        "findings" => "findings".into(),
        "conditions" => "conditions".into(),
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
    // Signed already (the back button, a second tab) or closed: what came of it, not again.
    if s.who().role == Role::Reviewer && !open_to(&s, &cr) {
        return Ok(see_other(&format!("/changes/{id}/evaluate")));
    }
    let form = EvalForm::from(&f, cr.checklist.len());
    let mut errors = Errors::new();
    // "Add rows": the same form again, with what was typed and more empty rows.
    if !f.get("add").is_empty() {
        return page(&s, StatusCode::OK, &cr, &form, &errors).await;
    }
    let conclusion = form.conclusion.as_str();
    let (wire_findings, finding_rows) = form.wire_findings();
    let (wire_conditions, condition_rows) = form.wire_conditions();
    let app_errors = |errors: &mut Errors, errs: &[(String, String)]| {
        for (field, _) in errs {
            msg::add(
                errors,
                s.lang,
                &form_field(field, &finding_rows, &condition_rows),
            );
        }
    };
    if conclusion == "changes_requested" {
        if form.return_note.trim().is_empty() {
            msg::add_key(&mut errors, s.lang, "return_note", "err.note_required");
            return page(&s, StatusCode::UNPROCESSABLE_ENTITY, &cr, &form, &errors).await;
        }
        let n = changegate_api::Note {
            note: form.return_note.clone(),
            findings: wire_findings,
        };
        return match app.request_changes(s.who(), id, n).await {
            Ok(_) => Ok(see_other(&format!("/changes/{id}?ok=changes_requested"))),
            Err(AppError::Invalid(errs)) => {
                app_errors(&mut errors, &errs);
                page(&s, StatusCode::UNPROCESSABLE_ENTITY, &cr, &form, &errors).await
            }
            Err(AppError::Locked(until)) => {
                errors.insert("return_note".into(), locked_message(&s, until));
                page(&s, StatusCode::FORBIDDEN, &cr, &form, &errors).await
            }
            Err(e) => Err(e.into()),
        };
    }
    if changegate_domain::Conclusion::parse(conclusion).is_err() {
        msg::add(&mut errors, s.lang, "conclusion");
    }
    for (i, r) in form.results.iter().enumerate() {
        if changegate_domain::CheckResult::parse(r).is_err() {
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
        findings: wire_findings,
        conditions: wire_conditions,
        second_factor_code: None,
    };
    match app.sign_off_with_second_factor(&s.s, id, req, code).await {
        Ok(_) => Ok(see_other(&format!("/changes/{id}?ok=signed_off"))),
        Err(e) if is_wrong_code(&e) => {
            msg::add_key(&mut errors, s.lang, "code", "err.code_wrong");
            page(&s, StatusCode::UNPROCESSABLE_ENTITY, &cr, &form, &errors).await
        }
        Err(AppError::Conflict(changegate_api::ProblemCode::ExternalAssessmentRequired, _)) => {
            // Decree 331/2026 Art. 31.2.c: a major change passes only after its external
            // assessment; the answers stay on the form.
            msg::add_key(
                &mut errors,
                s.lang,
                "conclusion",
                "major.assessment_missing",
            );
            page(&s, StatusCode::CONFLICT, &cr, &form, &errors).await
        }
        Err(AppError::Locked(until)) => {
            // The answers stay on the form; the reviewer learns when it can be sent again.
            errors.insert("code".into(), locked_message(&s, until));
            page(&s, StatusCode::FORBIDDEN, &cr, &form, &errors).await
        }
        Err(AppError::Invalid(errs)) => {
            // The rule broken is read from the form itself, never from the message's prose: a
            // passing conclusion over a failed item.
            let passes_over_a_failure = conclusion == changegate_domain::Conclusion::Pass.as_str()
                && form
                    .results
                    .iter()
                    .any(|r| r == changegate_domain::CheckResult::Fail.as_str());
            for (field, _) in &errs {
                let ff = form_field(field, &finding_rows, &condition_rows);
                if ff == "conclusion" && passes_over_a_failure {
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

/// "The account is locked until …", in the reader's language and the server's time zone.
fn locked_message(s: &Signed, until: chrono::DateTime<chrono::Utc>) -> String {
    super::i18n::text(s.lang, "err.account_locked")
        .replace("{until}", &super::login::until_text(s.lang, &s.tz, until))
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
        minijinja::context! { r => Value::from_serialize(&r),
        doc => Value::from_serialize(&app.edge.documents), pack_name => app.pack.meta.name_vi.clone() },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_fields_map_to_form_fields() {
        let ff = |f| form_field(f, &[0, 2], &[1]);
        assert_eq!(ff("checklist[3].note"), "note_3");
        assert_eq!(ff("checklist[0].item"), "result_0");
        // The second finding filled in came from row 2 of the form.
        assert_eq!(ff("findings[1].text"), "finding_text_2");
        assert_eq!(ff("findings[0].item"), "finding_item_0");
        assert_eq!(ff("conditions[0].due"), "cond_due_1");
        assert_eq!(ff("conditions[5].text"), "generic");
        assert_eq!(ff("conclusion"), "conclusion");
        assert_eq!(ff("whatever"), "generic");
    }
}
