//! Kubernetes validating admission: `POST /k8s/validate` (AdmissionReview `admission.k8s.io/v1`).
//! Answered 200 with the decision in the body; 400 for a body that is not an AdmissionReview v1
//! with a uid, 401 without a valid token or accepted client certificate. Never a 5xx: what the
//! server cannot decide, it denies.
//!
//! The API server authenticates with a bearer token (role `admission` or `ci`), or with a client
//! certificate verified against `[tls] client_ca_file` whose CN or a DNS SAN is listed in
//! `[[tls.admission_clients]]`; a valid token is used first, then the certificate.

use crate::AppState;
use crate::error::ApiError;
use crate::extract::Actor;
use crate::tls::{AdmissionClients, ClientCertificate};
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use changegate_api::{Problem, ProblemCode};
use changegate_app::enforce::admission::{API_VERSION, Review};
use utoipa_axum::{router::OpenApiRouter, routes};

pub(crate) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(validate))
}

/// A denial for a review whose caller could not be checked (the database did not answer).
fn deny_unchecked(body: &[u8]) -> Response {
    let uid = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("request")?.get("uid")?.as_str().map(str::to_owned));
    match uid {
        Some(uid) => axum::Json(serde_json::json!({
            "apiVersion": API_VERSION, "kind": "AdmissionReview",
            "response": {"uid": uid, "allowed": false, "status": {"code": 403,
                "message": "changegate: gate_unavailable (the caller could not be checked; denied)"}}
        }))
        .into_response(),
        None => ApiError::new(
            StatusCode::BAD_REQUEST,
            ProblemCode::NotAdmissionReview,
            "Not an AdmissionReview",
            "the body is not an AdmissionReview v1 with a uid",
        )
        .into_response(),
    }
}

/// Kubernetes validating admission webhook (roles admission, ci): every image of the Pod or pod
/// template must be pinned by digest and allowed by the gate for the object's system and
/// environment (labels `changegate.io/system` and `changegate.io/env`, else the namespace
/// mapping). The answer is an AdmissionReview whose `response.allowed` carries the decision.
#[utoipa::path(post, path = "/k8s/validate", tag = "enforcement",
    request_body(content = Object, description = "AdmissionReview admission.k8s.io/v1", example = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {"uid": "705ab4f5-6393-11e8-b7cc-42010a800002", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "namespace": "tthc-prod", "operation": "CREATE", "object": {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "web", "image": "registry.local/tthc:1.0"}]}}, "dryRun": false}})),
    responses((status = 200, body = Object, description = "AdmissionReview with response.uid, response.allowed, response.status, response.warnings"),
        (status = "4XX", body = Problem, content_type = "application/problem+json")))]
async fn validate(
    State(app): State<AppState>,
    who: Result<Actor, ApiError>,
    cert: Option<Extension<ClientCertificate>>,
    clients: Option<Extension<AdmissionClients>>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let by_cert = cert
        .as_ref()
        .zip(clients.as_ref())
        .and_then(|(c, l)| l.principal(c));
    let who = match (who, by_cert) {
        (Ok(Actor(who)), _) => who,
        (Err(_), Some(p)) => p,
        (Err(e), None) if *e.code() == ProblemCode::InternalError => {
            return deny_unchecked(&body);
        }
        (Err(e), None) => {
            let Some(Extension(c)) = cert else {
                return e.into_response();
            };
            if !headers.contains_key(axum::http::header::AUTHORIZATION) {
                return ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    ProblemCode::Unauthorized,
                    "Not authenticated",
                    format!(
                        "the client certificate {} is not an accepted admission client ([[tls.admission_clients]]); send Authorization: Bearer <token> or a listed certificate",
                        c.shown()
                    ),
                )
                .into_response();
            }
            return e.into_response();
        }
    };
    match app.admission_review(&who, &body).await {
        Ok(Review::Answer(v)) => axum::Json(v).into_response(),
        Ok(Review::NotAReview(m)) => ApiError::new(
            StatusCode::BAD_REQUEST,
            ProblemCode::NotAdmissionReview,
            "Not an AdmissionReview",
            m,
        )
        .into_response(),
        Err(e) => {
            let e = ApiError::from(e);
            if *e.code() == ProblemCode::InternalError {
                deny_unchecked(&body)
            } else {
                e.into_response()
            }
        }
    }
}
