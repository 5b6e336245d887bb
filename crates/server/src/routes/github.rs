//! GitHub custom deployment protection rule: `POST /integrations/github/webhook`.

use crate::AppState;
use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use changegate_api::Problem;
use utoipa_axum::{router::OpenApiRouter, routes};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(webhook))
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// GitHub App webhook (event `deployment_protection_rule`), signed with `X-Hub-Signature-256`.
/// Answered 202 at once; the decision is sent to the deployment's callback URL (approved, or
/// rejected when the denial will not clear by itself; pending ones are answered on sign-off). A
/// delivery id seen before is answered 200 and not acted on again. 401 when the signature does
/// not verify; 404 when no GitHub App is configured.
#[utoipa::path(post, path = "/integrations/github/webhook", tag = "enforcement", security(()),
    request_body(content = Object, description = "GitHub webhook payload"),
    params(("X-GitHub-Event" = Option<String>, Header), ("X-GitHub-Delivery" = Option<String>, Header), ("X-Hub-Signature-256" = Option<String>, Header)),
    responses((status = 200, body = Object), (status = 202, body = Object),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn webhook(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<(StatusCode, axum::Json<changegate_app::enforce::github::Ack>), ApiError> {
    let ack = app
        .github_webhook(
            header(&headers, "x-github-event"),
            header(&headers, "x-github-delivery"),
            header(&headers, "x-hub-signature-256"),
            &body,
        )
        .await?;
    let status = if ack.status == "queued" {
        StatusCode::ACCEPTED
    } else {
        StatusCode::OK
    };
    Ok((status, axum::Json(ack)))
}
