//! Routes, one module per area, merged here.

use crate::AppState;
use utoipa_axum::router::OpenApiRouter;

mod annual;
pub(crate) use annual::render as render_annual;
mod audit;
mod changes;
mod ci;
mod examples;
mod gate;
mod health;
mod incidents;
mod people;
mod registry;
mod remediations;
mod webhooks;
// Enforcement beyond the pipeline file (issue 13).
mod github;
mod k8s;
mod observations;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(health::router())
        .merge(gate::router())
        .merge(registry::router())
        .merge(changes::router())
        .merge(ci::router())
        .merge(incidents::router())
        .merge(people::router())
        .merge(remediations::router())
        .merge(audit::router())
        .merge(webhooks::router())
        .merge(k8s::router())
        .merge(github::router())
        .merge(observations::router())
        .merge(annual::router())
}
