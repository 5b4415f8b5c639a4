use crate::Shared;
use crate::error::error_response;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use baton_api::{ApiError, ErrorKind};
use std::sync::Arc;

/// Lets a request through when no token is configured, or when it carries the token as
/// `Authorization: Bearer <token>` or as the password of Basic auth (what `faas-cli login`
/// sends).
pub(crate) async fn require_token(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(token) = &shared.token else {
        return next.run(request).await;
    };
    let presented = request
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(credential);
    if presented.is_some_and(|p| constant_time_eq(p.as_bytes(), token.as_bytes())) {
        return next.run(request).await;
    }
    let mut response = error_response(&ApiError::new(
        ErrorKind::Unauthorized,
        "a valid bearer token is required (Authorization: Bearer <token>)",
    ));
    response.headers_mut().insert(
        http::header::WWW_AUTHENTICATE,
        http::HeaderValue::from_static("Bearer"),
    );
    response
}

fn credential(header: &str) -> Option<String> {
    if let Some(token) = header.strip_prefix("Bearer ") {
        return Some(token.trim().to_owned());
    }
    let encoded = header.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    text.split_once(':')
        .map(|(_, password)| password.to_owned())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_bearer_and_basic_credentials() {
        assert_eq!(credential("Bearer s3cret").as_deref(), Some("s3cret"));
        // admin:s3cret
        assert_eq!(
            credential("Basic YWRtaW46czNjcmV0").as_deref(),
            Some("s3cret")
        );
        assert_eq!(credential("Basic !!!"), None);
        assert_eq!(credential("Digest x"), None);
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
