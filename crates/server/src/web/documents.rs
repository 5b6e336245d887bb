//! Printed documents and the rules behind them: the "about the rules" page (the legal texts the
//! policy pack encodes), the printable draft of a personal-data breach notice to A05 (Decree
//! 356/2025, Form 08), and the print style sheet that numbers the pages of a document in the
//! reader's language ("Trang 1/2").

use super::errors::WebError;
use super::extract::{Seg, Signed};
use super::i18n::{self, Lang};
use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use minijinja::Value;

/// `GET /about/rules`: the pack in force, its main settings and the legal texts it encodes.
pub async fn about_rules(State(app): State<AppState>, s: Signed) -> Result<Response, WebError> {
    let p = &app.pack;
    s.ok(
        "about_rules.html",
        minijinja::context! {
            pack => Value::from_serialize(&p.meta),
            texts => Value::from_serialize(&p.legal.texts),
            changes => Value::from_serialize(&p.changes),
            incidents => Value::from_serialize(&p.incidents),
        },
    )
}

/// `GET /incidents/{id}/breach-notice`: the draft notice of a personal-data breach to A05, on
/// A4 from the browser's print.
pub async fn breach_notice(
    State(app): State<AppState>,
    s: Signed,
    id: Seg,
) -> Result<Response, WebError> {
    let n = app.breach_notice(s.who(), id.id()?).await?;
    s.ok(
        "breach_notice.html",
        minijinja::context! { n => Value::from_serialize(&n) },
    )
}

/// `GET /static/print/{lang}.css`: page numbers of printed documents, in that language.
pub async fn print_css(Seg(file): Seg) -> Result<Response, WebError> {
    let lang = file
        .strip_suffix(".css")
        .and_then(Lang::parse)
        .ok_or(WebError::NotFound)?;
    // The label is our own text; quotes and backslashes are kept out of the CSS string anyway.
    let label: String = i18n::text(lang, "bb.page")
        .chars()
        .filter(|c| !matches!(c, '"' | '\\' | '\n'))
        .collect();
    let css = format!(
        "@media print {{\n  @page {{\n    @bottom-right {{ content: \"{label} \" counter(page) \"/\" counter(pages); font-family: \"Times New Roman\", Times, \"Noto Serif\", serif; font-size: 11pt; }}\n  }}\n}}\n"
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        css,
    )
        .into_response())
}
