//! The level record and re-levelling of a system, the organisations' Form 08 details, and the
//! annual report (Decree 331/2026, Form 08).

use crate::AppState;
use crate::annual_doc::{self, Format};
use crate::error::ApiError;
use crate::extract::{Actor, Json, Path, Query};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use changegate_api::*;
use changegate_app::AppError;
use serde::Deserialize;
use utoipa_axum::{router::OpenApiRouter, routes};

type Answer<T> = Result<axum::Json<T>, ApiError>;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_level_record))
        .routes(routes!(relevel))
        .routes(routes!(get_organisation, edit_organisation))
        .routes(routes!(annual_report))
}

/// Records a system's level record, Form 08 columns 5–11 (admin, or an owner of the system).
#[utoipa::path(put, path = "/api/v1/systems/{code}/level-record", tag = "registry", params(("code" = String, Path, example = "TTHC-TINH")),
    request_body(content = LevelRecord, example = json!({"proposed_level": 3, "approval_status": "approved", "approval_decision": {"number": "1234/QĐ-UBND", "date": "2026-03-12", "issuer": "Ủy ban nhân dân tỉnh"}, "rules_decision": {"number": "56/QĐ-STNMT", "date": "2026-04-01", "issuer": "Sở Tài nguyên và Môi trường"}, "plan_deployment": "partly_deployed", "plan_expected_date": "2027-06-30"})),
    responses((status = 200, body = System), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn put_level_record(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(code): Path<String>,
    Json(r): Json<LevelRecord>,
) -> Answer<System> {
    Ok(axum::Json(app.put_level_record(&who, &code, r).await?))
}

/// Re-levels a system (*xác định lại cấp độ*) with its decision; for a population-database system
/// a `reclassification` change is opened for PA05.
#[utoipa::path(post, path = "/api/v1/systems/{code}/relevel", tag = "registry", params(("code" = String, Path, example = "TTHC-TINH")),
    request_body(content = Relevel, example = json!({"level": 4, "decision": {"number": "88/QĐ-UBND", "date": "2026-11-20", "issuer": "Ủy ban nhân dân tỉnh"}, "reason": "Mở rộng kết nối"})),
    responses((status = 200, body = Relevelled), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn relevel(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(code): Path<String>,
    Json(r): Json<Relevel>,
) -> Answer<Relevelled> {
    Ok(axum::Json(app.relevel(&who, &code, r).await?))
}

/// An organisation with its Form 08 details (owners: their own).
#[utoipa::path(get, path = "/api/v1/organisations/{code}", tag = "registry", params(("code" = String, Path, example = "STNMT")),
    responses((status = 200, body = OrganisationDetails), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn get_organisation(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(code): Path<String>,
) -> Answer<OrganisationDetails> {
    Ok(axum::Json(app.get_organisation(&who, &code).await?))
}

/// Edits an organisation's name and Form 08 details (admin).
#[utoipa::path(patch, path = "/api/v1/organisations/{code}", tag = "registry", params(("code" = String, Path, example = "STNMT")),
    request_body(content = EditOrganisation, example = json!({"contact": {"representative": "Nguyễn Văn A", "representative_title": "Giám đốc", "address": "1 Trần Hưng Đạo", "phone": "0263 3822 000", "email": "stnmt@example.gov.vn", "founding_text": "Quyết định số 12/QĐ-UBND"}})),
    responses((status = 200, body = OrganisationDetails), (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn edit_organisation(
    State(app): State<AppState>,
    Actor(who): Actor,
    Path(code): Path<String>,
    Json(e): Json<EditOrganisation>,
) -> Answer<OrganisationDetails> {
    Ok(axum::Json(app.edit_organisation(&who, &code, e).await?))
}

/// The annual report's parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ReportParams {
    /// Report year (data from 15-12 of the previous year to 14-12), 2020 to next year.
    #[param(example = 2026)]
    year: i32,
    /// Owner organisation code; none: the whole province (an owner always gets its own).
    #[param(example = "STNMT")]
    org: Option<String>,
    /// `json` (default), `csv` or `html`.
    #[param(example = "html")]
    format: Option<String>,
}

/// The annual report on Form 08 (Decree 331/2026/NĐ-CP), for one owner or the whole province:
/// JSON, CSV (section 3, UTF-8 with a BOM) or a printable HTML document.
#[utoipa::path(get, path = "/api/v1/reports/annual", tag = "reports", params(ReportParams),
    responses((status = 200, description = "The report", content((AnnualReport = "application/json"), (String = "text/csv"), (String = "text/html"))),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn annual_report(
    State(app): State<AppState>,
    Actor(who): Actor,
    Query(p): Query<ReportParams>,
) -> Result<Response, ApiError> {
    let format = Format::parse(p.format.as_deref()).map_err(|m| AppError::invalid("format", m))?;
    let r = app
        .annual_report(&who, p.year, p.org.as_deref(), &app.documents.province)
        .await?;
    render(&r, format, None)
}

/// The report in `format`.
pub(crate) fn render(
    r: &AnnualReport,
    format: Format,
    back: Option<&str>,
) -> Result<Response, ApiError> {
    Ok(match format {
        Format::Json => axum::Json(r).into_response(),
        Format::Csv => annual_doc::csv_response(
            r.year,
            annual_doc::csv(r)
                .map_err(|e| AppError::Internal(format!("annual report CSV: {e}")))?,
        ),
        Format::Html => annual_doc::html_response(
            annual_doc::html(r, back)
                .map_err(|e| AppError::Internal(format!("annual report document: {e}")))?,
        ),
    })
}
