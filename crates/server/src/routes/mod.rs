//! Routes, one module per area, merged here.

use crate::AppState;
use utoipa_axum::router::OpenApiRouter;

mod audit;
mod changes;
mod ci;
mod examples;
mod gate;
mod health;
mod incidents;
mod registry;
mod webhooks;

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .merge(health::router())
        .merge(gate::router())
        .merge(registry::router())
        .merge(changes::router())
        .merge(ci::router())
        .merge(incidents::router())
        .merge(audit::router())
        .merge(webhooks::router())
}
