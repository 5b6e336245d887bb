//! CSV exports of the visible systems and change requests, in the page's language: headers,
//! kinds, states and yes/no translated, times in the server's time zone. Written with the `csv`
//! crate (quoting as RFC 4180 asks, CRLF line ends), UTF-8 with a byte-order mark so that
//! spreadsheets read Vietnamese; a cell that a spreadsheet would run as a formula is made text.

use super::errors::WebError;
use super::extract::Signed;
use super::i18n::{self, Lang};
use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

fn csv(name: &'static str, body: Vec<u8>) -> Response {
    let disposition = format!("attachment; filename=\"{name}\"");
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}

/// A cell a spreadsheet shows as text: a leading `=`, `+`, `-`, `@`, tab or carriage return is
/// prefixed with `'` (it would otherwise run as a formula).
pub fn guard(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    }
}

/// A CSV document of `header` (translation keys under `csv.`) and `rows`.
fn document(lang: Lang, header: &[&str], rows: Vec<Vec<String>>) -> Result<Vec<u8>, WebError> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer("\u{feff}".as_bytes().to_vec());
    let fail = |e: csv::Error| {
        tracing::error!(error = %e, "a CSV export failed");
        WebError::Internal
    };
    w.write_record(header.iter().map(|h| i18n::text(lang, &format!("csv.{h}"))))
        .map_err(fail)?;
    for r in rows {
        w.write_record(r.iter().map(|c| guard(c))).map_err(fail)?;
    }
    w.into_inner().map_err(|e| {
        tracing::error!(error = %e, "a CSV export failed");
        WebError::Internal
    })
}

/// A time in the server's time zone, as the pages show it.
fn time(s: &Signed, t: Option<DateTime<Utc>>) -> String {
    let tz: chrono_tz::Tz = s.tz.parse().unwrap_or(chrono_tz::Asia::Ho_Chi_Minh);
    t.map(|t| {
        let t = t.with_timezone(&tz);
        match s.lang {
            Lang::Vi => t.format("%d/%m/%Y %H:%M").to_string(),
            Lang::En => t.format("%Y-%m-%d %H:%M").to_string(),
        }
    })
    .unwrap_or_default()
}

fn word(lang: Lang, family: &str, code: &str) -> String {
    i18n::get(lang, &format!("{family}.{code}")).map_or_else(|| code.to_owned(), str::to_owned)
}

/// `GET /export/systems.csv`.
pub async fn systems(State(app): State<AppState>, s: Signed) -> Result<Response, WebError> {
    let rows = app
        .systems_export(s.who())
        .await?
        .into_iter()
        .map(|x| {
            vec![
                x.code,
                x.name,
                x.owner_org,
                x.owner_org_name,
                x.level.to_string(),
                word(s.lang, "csv", &x.population_db.to_string()),
                word(s.lang, "system_status", &x.status),
                x.environments.join(" "),
                x.next_review_due
                    .map(|t| time(&s, Some(t)))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    let header = [
        "code",
        "name",
        "org",
        "org_name",
        "level",
        "population_db",
        "status",
        "environments",
        "next_review_due",
    ];
    Ok(csv("systems.csv", document(s.lang, &header, rows)?))
}

/// `GET /export/changes.csv`.
pub async fn changes(State(app): State<AppState>, s: Signed) -> Result<Response, WebError> {
    let rows = app
        .changes_export(s.who())
        .await?
        .into_iter()
        .map(|x| {
            vec![
                x.id.to_string(),
                x.system,
                word(s.lang, "kind", &x.kind),
                x.title,
                word(s.lang, "state", &x.state),
                x.environments.join(" "),
                x.filed_by,
                time(&s, Some(x.created_at)),
                time(&s, x.approved_at),
                time(&s, x.valid_until),
            ]
        })
        .collect();
    let header = [
        "id",
        "system",
        "kind",
        "title",
        "state",
        "environments",
        "filed_by",
        "created_at",
        "approved_at",
        "valid_until",
    ];
    Ok(csv("changes.csv", document(s.lang, &header, rows)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_become_text_and_fields_are_quoted_when_needed() {
        assert_eq!(guard("=HYPERLINK(\"x\")"), "'=HYPERLINK(\"x\")");
        assert_eq!(guard("-1"), "'-1");
        assert_eq!(guard("Sở Tài nguyên"), "Sở Tài nguyên");
        let doc = document(
            Lang::Vi,
            &["code", "name"],
            vec![vec!["1".into(), "Hệ thống, \"tỉnh\"".into()]],
        )
        .unwrap_or_default();
        assert_eq!(
            String::from_utf8(doc).unwrap_or_default(),
            "\u{feff}Mã,Tên\r\n1,\"Hệ thống, \"\"tỉnh\"\"\"\r\n"
        );
    }
}
