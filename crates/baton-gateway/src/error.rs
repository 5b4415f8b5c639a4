use axum::body::Body;
use axum::response::{IntoResponse, Response};
use baton_api::{ApiError, ErrorKind};

/// An [`ApiError`] as an HTTP response: the status of its kind and the message as plain text,
/// as OpenFaaS answers; 429 carries `Retry-After`.
pub(crate) struct HttpError(pub(crate) ApiError);

impl From<ApiError> for HttpError {
    fn from(error: ApiError) -> Self {
        HttpError(error)
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        error_response(&self.0)
    }
}

pub(crate) fn error_response(error: &ApiError) -> Response {
    let status = http::StatusCode::from_u16(error.kind.http_status())
        .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    let mut builder = http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8");
    if error.kind == ErrorKind::Overloaded {
        builder = builder.header(http::header::RETRY_AFTER, "1");
    }
    let mut body = error.message.clone();
    if !body.ends_with('\n') {
        body.push('\n');
    }
    builder
        .body(Body::from(body))
        .expect("static headers are valid")
}
