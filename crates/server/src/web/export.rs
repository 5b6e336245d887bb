//! CSV exports of the visible systems and change requests.

use super::session::{Signed, WebError};
use crate::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

fn csv(name: &'static str, body: String) -> Response {
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

/// `GET /export/systems.csv`.
pub async fn systems(State(app): State<AppState>, s: Signed) -> Result<Response, WebError> {
    Ok(csv("systems.csv", app.systems_csv(s.who()).await?))
}

/// `GET /export/changes.csv`.
pub async fn changes(State(app): State<AppState>, s: Signed) -> Result<Response, WebError> {
    Ok(csv("changes.csv", app.changes_csv(s.who()).await?))
}
