//! The audit log with filters and paging.

use super::errors::WebError;
use super::extract::Signed;
use super::msg::{self, Errors};
use crate::AppState;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use changegate_app::views::AuditFilter;
use chrono::NaiveDate;
use minijinja::Value;
use std::collections::HashMap;

fn text(q: &HashMap<String, String>, k: &str) -> Option<String> {
    q.get(k)
        .map(|v| v.trim().chars().take(200).collect::<String>())
        .filter(|v| !v.is_empty())
}

/// Parses the filters; a date that does not parse is a field error.
fn parse(q: &HashMap<String, String>, lang: super::i18n::Lang) -> (AuditFilter, Errors) {
    let mut errors = Errors::new();
    let mut date = |k: &str| {
        let v = text(q, k)?;
        NaiveDate::parse_from_str(&v, "%Y-%m-%d")
            .map_err(|_| msg::add(&mut errors, lang, k))
            .ok()
    };
    let from = date("from");
    let to = date("to");
    let filter = AuditFilter {
        actor: text(q, "actor"),
        action: text(q, "action"),
        system: text(q, "system"),
        from,
        to,
        page: q
            .get("page")
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or(1)
            .max(1),
    };
    (filter, errors)
}

/// The query string of the filters, for the paging links.
fn query(q: &HashMap<String, String>) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for k in ["actor", "action", "system", "from", "to"] {
        if let Some(v) = text(q, k) {
            ser.append_pair(k, &v);
        }
    }
    ser.finish()
}

/// One group of the action list: an entity and its actions, in the page's language.
#[derive(serde::Serialize)]
struct ActionGroup {
    entity: String,
    label: String,
    actions: Vec<(String, String)>,
}

/// The actions the filter offers, by entity, labelled in `lang` (the value is the code).
fn action_groups(lang: super::i18n::Lang) -> Vec<ActionGroup> {
    let mut groups: Vec<ActionGroup> = vec![];
    for (key, label) in super::i18n::under(lang, "action.") {
        let code = &key["action.".len()..];
        let Some((entity, _)) = code.split_once('.') else {
            continue;
        };
        if groups.last().is_none_or(|g| g.entity != entity) {
            groups.push(ActionGroup {
                entity: entity.to_owned(),
                label: super::i18n::get(lang, &format!("entity.{entity}"))
                    .unwrap_or(entity)
                    .to_owned(),
                actions: vec![],
            });
        }
        if let Some(g) = groups.last_mut() {
            g.actions.push((code.to_owned(), label.to_owned()));
        }
    }
    groups
}

/// `GET /audit?actor=&action=&system=&from=&to=&page=` (reviewers, inspectors, admins).
pub async fn search(
    State(app): State<AppState>,
    s: Signed,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let (filter, errors) = parse(&q, s.lang);
    let values: HashMap<&str, String> = ["actor", "action", "system", "from", "to"]
        .into_iter()
        .map(|k| (k, q.get(k).cloned().unwrap_or_default()))
        .collect();
    let status = if errors.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    let results = app.audit_search(s.who(), &filter).await?;
    s.page(
        status,
        "audit.html",
        minijinja::context! {
        r => Value::from_serialize(&results), f => values, errors => errors, query => query(&q),
        action_groups => Value::from_serialize(action_groups(s.lang)) },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_dates_are_field_errors_and_pages_start_at_one() {
        let q: HashMap<String, String> =
            [("from", "2026-13-01"), ("to", "2026-11-24"), ("page", "-3")]
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect();
        let (f, errors) = parse(&q, super::super::i18n::Lang::En);
        assert!(errors.contains_key("from"));
        assert!(!errors.contains_key("to"));
        assert_eq!(f.from, None);
        assert_eq!(f.to, NaiveDate::from_ymd_opt(2026, 11, 24));
        assert_eq!(f.page, 1);
    }
}
