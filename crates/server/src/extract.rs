//! Extractors: the authenticated [`Actor`], and JSON, query and path extractors whose rejections
//! are problem documents.

use crate::AppState;
use crate::error::ApiError;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use changegate_api::ProblemCode;
use changegate_app::Principal;
use serde::de::DeserializeOwned;

/// The peer's address (unspecified when the server runs without connect info).
pub struct PeerIp(pub std::net::IpAddr);

impl FromRequestParts<AppState> for PeerIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(PeerIp(crate::web::client_ip::peer_ip(
            parts,
            &app.edge.trusted_proxies,
        )))
    }
}

/// The authenticated person behind `Authorization: Bearer <token>`.
pub struct Actor(pub std::sync::Arc<Principal>);

impl FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, ApiError> {
        let missing = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                ProblemCode::Unauthorized,
                "Not authenticated",
                "send Authorization: Bearer <token>",
            )
        };
        let value = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(missing)?;
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(missing)?;
        Ok(Actor(app.auth.authenticate(&app.db, token).await?))
    }
}

/// A JSON body; rejections become problems (400 malformed, 413 too large, 415 not JSON, 422 wrong shape).
pub struct Json<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Json(v)),
            Err(r) => Err(json_rejection(r)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    use StatusCode as S;
    let text = r.body_text();
    match r {
        JsonRejection::JsonSyntaxError(_) => ApiError::new(
            S::BAD_REQUEST,
            ProblemCode::MalformedJson,
            "Malformed JSON",
            text,
        ),
        JsonRejection::JsonDataError(_) => ApiError::new(
            S::UNPROCESSABLE_ENTITY,
            ProblemCode::InvalidBody,
            "Invalid body",
            text,
        ),
        JsonRejection::MissingJsonContentType(_) => ApiError::new(
            S::UNSUPPORTED_MEDIA_TYPE,
            ProblemCode::UnsupportedMediaType,
            "Unsupported media type",
            "send Content-Type: application/json",
        ),
        _ if r.status() == S::PAYLOAD_TOO_LARGE => ApiError::new(
            S::PAYLOAD_TOO_LARGE,
            ProblemCode::PayloadTooLarge,
            "Payload too large",
            format!("the body is larger than {} bytes", crate::BODY_LIMIT),
        ),
        _ => ApiError::new(S::BAD_REQUEST, ProblemCode::BadRequest, "Bad request", text),
    }
}

/// A query string; rejections become 400 problems.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|r: QueryRejection| {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    ProblemCode::InvalidQuery,
                    "Invalid query",
                    r.body_text(),
                )
            })
    }
}

/// A path parameter; one that does not parse is a 404 (no such resource).
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send + 'static, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        // An id is written one way: `01` or `+1` is not change request 1.
        if std::any::TypeId::of::<T>() == std::any::TypeId::of::<i64>()
            && let Ok(raw) = axum::extract::RawPathParams::from_request_parts(parts, state).await
            && raw
                .iter()
                .any(|(_, v)| v.parse::<i64>().is_ok_and(|n| n.to_string() != v))
        {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                ProblemCode::NotFound,
                "Not found",
                "an id is written in plain digits, without leading zeros or a sign",
            ));
        }
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|r: PathRejection| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    ProblemCode::NotFound,
                    "Not found",
                    r.body_text(),
                )
            })
    }
}
