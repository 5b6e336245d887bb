//! The dashboard and the system pages.

use super::session::{Seg, Signed, WebError};
use crate::AppState;
use axum::extract::State;
use axum::response::Response;
use minijinja::Value;

/// `GET /`: the dashboard of the person's role.
pub async fn dashboard(State(app): State<AppState>, s: Signed) -> Result<Response, WebError> {
    let d = app.dashboard(s.who()).await?;
    s.ok(
        "dashboard.html",
        minijinja::context! { d => Value::from_serialize(&d) },
    )
}

/// `GET /systems`: every visible system with its gate status per environment.
pub async fn systems(State(app): State<AppState>, s: Signed) -> Result<Response, WebError> {
    let systems = app.systems_overview(s.who()).await?;
    s.ok(
        "systems.html",
        minijinja::context! { systems => Value::from_serialize(&systems) },
    )
}

/// `GET /systems/{code}`: inventory, gate status per environment, changes, incidents, history.
pub async fn system(
    State(app): State<AppState>,
    s: Signed,
    Seg(code): Seg,
) -> Result<Response, WebError> {
    let page = app.system_page(s.who(), &code).await?;
    s.ok(
        "system.html",
        minijinja::context! { p => Value::from_serialize(&page) },
    )
}
