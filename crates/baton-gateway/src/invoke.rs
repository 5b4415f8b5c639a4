use crate::Shared;
use crate::error::error_response;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use baton_api::{ApiError, ErrorKind, InvokeOutcome};
use bytes::Bytes;
use http::{HeaderValue, Uri};
use http_body_util::{BodyExt, Limited};
use std::sync::Arc;
use std::time::Instant;

/// Header carrying the id of one invocation, as in OpenFaaS.
pub(crate) const CALL_ID: &str = "x-call-id";

/// A request addressed to a function, split into its parts.
pub(crate) struct Addressed {
    pub(crate) function: String,
    pub(crate) call_id: String,
    pub(crate) request: http::Request<Bytes>,
}

/// Splits `/{prefix}/{name}/{rest}?q` into the function name and the request the function
/// sees (`/{rest}?q`), reading the body up to the function's limit.
pub(crate) async fn address(
    shared: &Shared,
    prefix: &str,
    request: Request,
) -> Result<Addressed, ApiError> {
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path().strip_prefix(prefix).unwrap_or_default();
    let (function, rest) = path.split_once('/').unwrap_or((path, ""));
    let function = function.to_owned();
    let max_body = shared
        .invoker
        .max_body_bytes(&function)
        .ok_or_else(|| ApiError::not_found(&function))?;
    let too_large = || {
        ApiError::new(
            ErrorKind::PayloadTooLarge,
            format!("request body exceeds the limit of {max_body} bytes for {function}"),
        )
    };
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > max_body) {
        return Err(too_large());
    }
    let body = match Limited::new(body, max_body as usize).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => return Err(crate::listener::body_error(error, too_large)),
    };
    let mut function_path =
        String::with_capacity(rest.len() + 1 + parts.uri.query().map_or(0, |q| q.len() + 1));
    function_path.push('/');
    function_path.push_str(rest);
    if let Some(query) = parts.uri.query() {
        function_path.push('?');
        function_path.push_str(query);
    }
    parts.uri = Uri::try_from(function_path)
        .map_err(|e| ApiError::bad_request(format!("bad path: {e}")))?;
    let call_id = match parts.headers.get(CALL_ID).and_then(|v| v.to_str().ok()) {
        Some(id) if !id.is_empty() && id.len() <= 128 => id.to_owned(),
        _ => uuid::Uuid::new_v4().to_string(),
    };
    if let Ok(value) = HeaderValue::from_str(&call_id) {
        parts.headers.insert(CALL_ID, value);
    }
    Ok(Addressed {
        function,
        call_id,
        request: http::Request::from_parts(parts, body),
    })
}

/// `ANY /function/{name}[/{rest}]`.
pub(crate) async fn sync(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let started = Instant::now();
    let addressed = match address(&shared, "/function/", request).await {
        Ok(addressed) => addressed,
        Err(error) => return refused(&error, started),
    };
    shared.metrics.started(&addressed.function);
    let result = shared
        .invoker
        .invoke(&addressed.function, addressed.request)
        .await;
    let elapsed = started.elapsed();
    let (mut response, cold_start) = match result {
        Ok(InvokeOutcome {
            response,
            cold_start,
        }) => (response.map(Body::from), cold_start),
        Err(error) => (error_response(&error), None),
    };
    shared.metrics.finished(
        &addressed.function,
        response.status().as_u16(),
        elapsed,
        cold_start,
    );
    decorate(
        &mut response,
        &addressed.call_id,
        started,
        cold_start.is_some(),
    );
    response
}

/// Adds `X-Call-Id`, `X-Duration-Seconds` and `X-Baton-Cold-Start`.
pub(crate) fn decorate(response: &mut Response, call_id: &str, started: Instant, cold: bool) {
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(call_id) {
        headers.insert(CALL_ID, value);
    }
    if let Ok(value) = HeaderValue::from_str(&format!("{:.6}", started.elapsed().as_secs_f64())) {
        headers.insert("x-duration-seconds", value);
    }
    headers.insert(
        "x-baton-cold-start",
        HeaderValue::from_static(if cold { "true" } else { "false" }),
    );
}

/// An error answered before any function ran (unknown function, body too large), with the
/// same headers as every other answer.
fn refused(error: &ApiError, started: Instant) -> Response {
    let mut response = error_response(error);
    decorate(
        &mut response,
        &uuid::Uuid::new_v4().to_string(),
        started,
        false,
    );
    response
}
