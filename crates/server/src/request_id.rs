//! One id per request: taken from the caller's `x-request-id` when it is a short token (a
//! balancer's), otherwise made here; returned in the `x-request-id` header, put in every
//! problem+json answer (`request_id`), and in the one log line written per request (method,
//! path, status, duration, request id; JSON with `log_format = "json"`). Also counts the
//! answer for `/metrics`.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use std::time::Instant;

/// The header.
pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static CURRENT: String;
}

/// The id of the request being answered (inside the middleware's scope).
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok()
}

/// A caller's id is kept when it is 1-64 characters of `[A-Za-z0-9._-]`.
fn acceptable(v: &str) -> bool {
    (1..=64).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

fn fresh() -> String {
    hex::encode(rand::random::<[u8; 12]>())
}

/// The middleware.
pub async fn layer(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map_or_else(fresh, str::to_owned);
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let mut res = CURRENT.scope(id.clone(), next.run(req)).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(HEADER, v);
    }
    let took = started.elapsed();
    let status = res.status().as_u16();
    tracing::info!(
        target: "changegate::http",
        method = %method,
        path = %path,
        status,
        duration_ms = took.as_secs_f64() * 1000.0,
        request_id = %id,
        "request"
    );
    crate::metrics::http_answered(&method, &path, status, took);
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_ids_are_taken_from_the_caller() {
        assert!(acceptable("lb-1234.abc_DEF"));
        assert!(!acceptable(""));
        assert!(!acceptable(&"a".repeat(65)));
        assert!(!acceptable("a b"));
        assert!(!acceptable("x\r\ny"));
        assert_eq!(fresh().len(), 24);
        assert_ne!(fresh(), fresh());
    }
}
