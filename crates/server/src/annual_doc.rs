//! The annual report (Form 08) as a document: JSON, CSV (UTF-8 with a byte-order mark,
//! Vietnamese column headers, no cell that a spreadsheet would read as a formula) and HTML that
//! prints on A4 as an official document (issuing body and national motto, number, place and
//! date, page numbers from CSS page-margin boxes, a signature block). Used by the API and the
//! web pages alike.

use crate::web::i18n::{self, Lang};
use crate::web::render;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use changegate_api::{AnnualReport, ChecksDone, LevelDecision};
use changegate_domain::annual::csv_cell;
use chrono::Datelike;
use sha2::{Digest, Sha256};
use std::sync::LazyLock;

/// The document's style sheet, carried inside it (a saved copy prints the same).
pub const CSS: &str = include_str!("../static/annual-report.css");

/// The content security policy of the document: nothing but its own style sheet, by hash.
pub static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(CSS.as_bytes()));
    format!(
        "default-src 'none'; style-src 'sha256-{hash}'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    )
});

/// The formats the report is given in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON (the wire type).
    Json,
    /// CSV of section 3.
    Csv,
    /// The printable document.
    Html,
}

impl Format {
    /// Parses `json`, `csv` or `html` (none: JSON).
    pub fn parse(s: Option<&str>) -> Result<Self, String> {
        match s.unwrap_or("json") {
            "json" | "" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            "html" => Ok(Format::Html),
            other => Err(format!("{other:?} is not a format: json, csv or html")),
        }
    }
}

fn vi(key: &str) -> String {
    i18n::text(Lang::Vi, key)
}

fn decision(d: Option<&LevelDecision>) -> String {
    d.map(|d| {
        vi("annual.decision_text")
            .replace("{number}", &d.number)
            .replace("{date}", &d.date.format("%d/%m/%Y").to_string())
            .replace("{issuer}", &d.issuer)
    })
    .unwrap_or_default()
}

fn checks(c: ChecksDone) -> String {
    let mut out = vec![];
    if c.before_operation {
        out.push(vi("checks.before_operation"));
    }
    if c.periodic {
        out.push(vi("checks.periodic"));
    }
    out.join("; ")
}

/// Section 3 as CSV: a byte-order mark, then the twelve columns of Form 08 with their Vietnamese
/// headers, one row per system.
pub fn csv(r: &AnnualReport) -> Result<Vec<u8>, csv::Error> {
    let mut w = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    let headers: Vec<String> = (1..=12).map(|i| vi(&format!("annual.col{i}"))).collect();
    w.write_record(&headers)?;
    let day = |d: Option<chrono::NaiveDate>| {
        d.map(|d| d.format("%d/%m/%Y").to_string())
            .unwrap_or_default()
    };
    for s in &r.systems {
        let row = [
            s.no.to_string(),
            s.name.clone(),
            s.owner_name.clone(),
            s.operating_unit.clone(),
            s.proposed_level.map(|l| l.to_string()).unwrap_or_default(),
            s.approval_status
                .as_ref()
                .map(|a| vi(&format!("approval_status.{a}")))
                .unwrap_or_default(),
            decision(s.approval_decision.as_ref()),
            decision(s.rules_decision.as_ref()),
            day(s.expected_approval_date),
            s.plan_deployment
                .as_ref()
                .map(|p| vi(&format!("plan_deployment.{p}")))
                .unwrap_or_default(),
            day(s.plan_expected_date),
            checks(s.checks_done),
        ];
        w.write_record(row.iter().map(|c| csv_cell(c).into_owned()))?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// The printable document. `back`: a link back (web pages; hidden in print).
pub fn html(r: &AnnualReport, back: Option<&str>) -> Result<String, minijinja::Error> {
    let issuer = r
        .organisation
        .as_ref()
        .map(|o| o.name.clone())
        .unwrap_or_else(|| {
            if r.province.is_empty() {
                vi("annual.issuer_province_blank")
            } else {
                vi("annual.issuer_province").replace("{province}", &r.province)
            }
        })
        .to_uppercase();
    let signer = r
        .organisation
        .as_ref()
        .map(|o| o.contact.representative.clone())
        .unwrap_or_default();
    let suffix = r
        .organisation
        .as_ref()
        .map(|o| o.code.clone())
        .unwrap_or_else(|| "UBND".to_owned());
    let province = if r.province.is_empty() {
        "…………".to_owned()
    } else {
        r.province.clone()
    };
    render::render(
        "annual_report.html",
        minijinja::context! {
            r => r,
            lang => "vi",
            css => CSS,
            issuer => issuer,
            signer => signer,
            number_suffix => suffix,
            province => province,
            made_day => format!("{:02}", r.made_on.day()),
            made_month => format!("{:02}", r.made_on.month()),
            made_year => r.made_on.year(),
            back => back,
        },
    )
}

/// An HTML document answer with its own content security policy.
pub fn html_response(body: String) -> Response {
    let mut res = (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(&CSP) {
        res.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    res
}

/// A CSV answer, to be saved as `bao-cao-nam-<year>.csv`.
pub fn csv_response(year: i32, body: Vec<u8>) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"bao-cao-nam-{year}.csv\""),
            ),
            (header::CACHE_CONTROL, "no-store".to_owned()),
        ],
        body,
    )
        .into_response()
}
