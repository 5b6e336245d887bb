//! One error type at the edge, rendered as `application/problem+json` (RFC 9457) with a stable
//! `code`. 5xx bodies stay generic; the cause goes to the log.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use changegate_api::{Decision, FieldError, Problem, ProblemCode};
use changegate_app::AppError;

/// An error answer.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: ProblemCode,
    title: &'static str,
    detail: Option<String>,
    errors: Vec<FieldError>,
    deny: bool,
}

impl ApiError {
    /// An error with a status, code and detail.
    pub fn new(
        status: StatusCode,
        code: ProblemCode,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code,
            title,
            detail: Some(detail.into()),
            errors: vec![],
            deny: false,
        }
    }

    /// The answer's status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The problem's code.
    pub fn code(&self) -> &ProblemCode {
        &self.code
    }

    /// Marks the answer as a gate denial (fail closed).
    pub fn as_gate_denial(mut self) -> Self {
        self.deny = true;
        self
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        use StatusCode as S;
        match e {
            AppError::Unauthorized(m) => ApiError::new(
                S::UNAUTHORIZED,
                ProblemCode::Unauthorized,
                "Not authenticated",
                m,
            ),
            AppError::TokenExpired(at) => ApiError::new(
                S::UNAUTHORIZED,
                ProblemCode::TokenExpired,
                "Token expired",
                format!("the token expired at {at}"),
            ),
            AppError::Forbidden(m) => {
                ApiError::new(S::FORBIDDEN, ProblemCode::Forbidden, "Forbidden", m)
            }
            AppError::Throttled(until) => ApiError::new(
                S::TOO_MANY_REQUESTS,
                ProblemCode::SignInThrottled,
                "Too many failed sign-ins",
                format!(
                    "Quá nhiều lần đăng nhập sai từ địa chỉ này, hãy thử lại sau {} / too many failed sign-ins from this address, try again after {}",
                    until.to_rfc3339(),
                    until.to_rfc3339()
                ),
            ),
            AppError::Locked(until) => ApiError::new(
                S::FORBIDDEN,
                ProblemCode::AccountLocked,
                "Account locked",
                format!(
                    "Tài khoản đang bị khoá đến {} sau nhiều lần nhập sai / the account is locked until {} after repeated failures",
                    until.to_rfc3339(),
                    until.to_rfc3339()
                ),
            ),
            AppError::SeparationOfDuties(m) => ApiError::new(
                S::FORBIDDEN,
                ProblemCode::SeparationOfDuties,
                "Separation of duties",
                m,
            ),
            AppError::NotFound(m) => ApiError::new(
                S::NOT_FOUND,
                ProblemCode::NotFound,
                "Not found",
                format!("{m} not found"),
            ),
            AppError::Invalid(errs) => {
                let detail = errs
                    .iter()
                    .map(|(f, m)| format!("{f}: {m}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                let mut a = ApiError::new(
                    S::UNPROCESSABLE_ENTITY,
                    ProblemCode::ValidationFailed,
                    "Invalid input",
                    detail,
                );
                a.errors = errs
                    .into_iter()
                    .map(|(field, message)| FieldError { field, message })
                    .collect();
                a
            }
            AppError::Conflict(code, m) => ApiError::new(S::CONFLICT, code, "Conflict", m),
            AppError::Unavailable(m) => {
                tracing::error!(cause = %m, "gate unavailable");
                ApiError::new(
                    S::SERVICE_UNAVAILABLE,
                    ProblemCode::GateUnavailable,
                    "Service unavailable",
                    "the server cannot decide now; deny",
                )
                .as_gate_denial()
            }
            AppError::Internal(m) => {
                tracing::error!(cause = %m, "internal error");
                ApiError::new(
                    S::INTERNAL_SERVER_ERROR,
                    ProblemCode::InternalError,
                    "Internal error",
                    "the server failed; see its log",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let p = Problem {
            type_: format!("urn:changegate:problem:{}", self.code),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            code: self.code,
            detail: self.detail,
            errors: self.errors,
            decision: self.deny.then_some(Decision::Deny),
            request_id: crate::request_id::current(),
        };
        let body = serde_json::to_vec(&p).unwrap_or_default();
        (
            self.status,
            [(header::CONTENT_TYPE, "application/problem+json")],
            body,
        )
            .into_response()
    }
}

/// Fallback for unknown paths.
pub async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ProblemCode::NotFound,
        "Not found",
        "no such endpoint",
    )
}

/// Fallback for a known path with another method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        ProblemCode::MethodNotAllowed,
        "Method not allowed",
        "this endpoint does not take that method",
    )
}

/// A handler panicked: answer 500 without details.
pub fn panic_response(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a handler panicked");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        ProblemCode::InternalError,
        "Internal error",
        "the server failed; see its log",
    )
    .into_response()
}
