//! `/system/*`: the OpenFaaS admin API.

use crate::Shared;
use crate::error::HttpError;
use axum::Json;
use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use baton_api::{
    ApiError, DeployMode, DeployRequest, ErrorKind, FunctionStatus, LogQuery, ResourceLimits,
    SystemInfo,
};
use bytes::Bytes;
use futures_util::StreamExt;
use http_body_util::{BodyExt, Limited};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;

/// Largest JSON body of an admin call.
const MAX_JSON: usize = 1 << 20;
/// Largest uploaded component.
const MAX_UPLOAD: usize = 256 << 20;

type Reply<T> = Result<T, HttpError>;

fn with_counts(shared: &Shared, mut status: FunctionStatus) -> FunctionStatus {
    status.invocation_count = shared.metrics.total(&status.name);
    status
}

/// `GET /system/functions`.
pub(crate) async fn list(State(shared): State<Arc<Shared>>) -> Reply<Json<Vec<FunctionStatus>>> {
    let statuses = shared.admin.list().await?;
    Ok(Json(
        statuses
            .into_iter()
            .map(|s| with_counts(&shared, s))
            .collect(),
    ))
}

/// `GET /system/function/{name}`.
pub(crate) async fn describe(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
) -> Reply<Json<FunctionStatus>> {
    let status = shared.admin.get(&name).await?;
    Ok(Json(with_counts(&shared, status)))
}

/// `POST /system/functions`: create.
pub(crate) async fn create(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    deploy(shared, request, DeployMode::Create).await
}

/// `PUT /system/functions`: update.
pub(crate) async fn update(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    deploy(shared, request, DeployMode::Update).await
}

async fn deploy(shared: Arc<Shared>, request: Request, mode: DeployMode) -> Response {
    let result = async {
        let (deploy, upload) = parse_deploy(request).await?;
        shared.admin.deploy(deploy, upload, mode).await
    }
    .await;
    match result {
        Ok(status) => {
            let code = if mode == DeployMode::Create {
                http::StatusCode::CREATED
            } else {
                http::StatusCode::ACCEPTED
            };
            (code, Json(status)).into_response()
        }
        Err(error) => HttpError(error).into_response(),
    }
}

/// Header carrying the full deployment JSON next to an uploaded component.
pub(crate) const DEPLOYMENT_HEADER: &str = "x-baton-deployment";

/// A deployment as JSON (`FunctionDeployment`), or a component uploaded as the body with
/// `Content-Type: application/wasm` and its settings either as deployment JSON in the
/// `X-Baton-Deployment` header or in the query: `service` (required), `exec_timeout`,
/// `memory`, `max_inflight`.
async fn parse_deploy(request: Request) -> Result<(DeployRequest, Option<Bytes>), ApiError> {
    let is_wasm = request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/wasm"));
    if is_wasm {
        if let Some(header) = request.headers().get(DEPLOYMENT_HEADER) {
            let deploy: DeployRequest = serde_json::from_slice(header.as_bytes()).map_err(|e| {
                ApiError::bad_request(format!("invalid X-Baton-Deployment JSON: {e}"))
            })?;
            let body = read_upload(request).await?;
            return Ok((deploy, Some(body)));
        }
        let Query(query) = Query::<HashMap<String, String>>::try_from_uri(request.uri())
            .map_err(|e| ApiError::bad_request(format!("bad query: {e}")))?;
        let service = query
            .get("service")
            .cloned()
            .ok_or_else(|| ApiError::bad_request("an uploaded component needs ?service=<name>"))?;
        let mut deploy = DeployRequest {
            service,
            image: String::new(),
            ..DeployRequest::default()
        };
        for key in ["exec_timeout", "max_inflight"] {
            if let Some(value) = query.get(key) {
                deploy.env_vars.insert(key.to_owned(), value.clone());
            }
        }
        if let Some(memory) = query.get("memory") {
            deploy.limits = Some(ResourceLimits {
                memory: Some(memory.clone()),
                cpu: None,
            });
        }
        let body = read_upload(request).await?;
        return Ok((deploy, Some(body)));
    }
    let body = read_body(request, MAX_JSON).await?;
    let deploy: DeployRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid deployment JSON: {e}")))?;
    Ok((deploy, None))
}

/// Uploads read at once, node-wide: each may hold up to [`MAX_UPLOAD`] bytes.
const UPLOADS_AT_ONCE: usize = 2;
/// Longest an upload may take to arrive: a client trickling bytes must not hold one of the
/// few upload places for ever (256 MiB at 1 MiB/s fits).
const UPLOAD_DEADLINE: std::time::Duration = std::time::Duration::from_secs(300);

static UPLOADS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(UPLOADS_AT_ONCE);

/// Reads an uploaded component, refusing it as soon as its size or its first bytes show it
/// is not one: an announced length over the cap before reading, a body that does not start
/// with the WebAssembly magic after its first 8 bytes.
async fn read_upload(request: Request) -> Result<Bytes, ApiError> {
    let too_large = || {
        ApiError::new(
            ErrorKind::PayloadTooLarge,
            format!("an uploaded component may have at most {MAX_UPLOAD} bytes"),
        )
    };
    let declared = request
        .headers()
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_UPLOAD as u64) {
        return Err(too_large());
    }
    let Ok(_permit) = UPLOADS.try_acquire() else {
        return Err(ApiError::new(
            ErrorKind::Overloaded,
            format!("{UPLOADS_AT_ONCE} uploads are in progress; retry when one ends"),
        ));
    };
    let mut body = Limited::new(request.into_body(), MAX_UPLOAD);
    let mut bytes = bytes::BytesMut::new();
    let mut checked = false;
    let deadline = tokio::time::Instant::now() + UPLOAD_DEADLINE;
    let late = || {
        ApiError::bad_request(format!(
            "the upload did not arrive within {} s",
            UPLOAD_DEADLINE.as_secs()
        ))
    };
    while let Some(frame) = tokio::time::timeout_at(deadline, body.frame())
        .await
        .map_err(|_| late())?
    {
        let frame = frame.map_err(|error| crate::listener::body_error(error, too_large))?;
        if let Ok(data) = frame.into_data() {
            bytes.extend_from_slice(&data);
        }
        if !checked && bytes.len() >= 8 {
            check_component_header(&bytes)?;
            checked = true;
        }
    }
    check_component_header(&bytes)?;
    Ok(bytes.freeze())
}

/// The first 8 bytes of a component: the magic, then the component layer's version.
fn check_component_header(bytes: &[u8]) -> Result<(), ApiError> {
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return Err(ApiError::bad_request(
            "the upload is not a WebAssembly component (it does not start with \\0asm)",
        ));
    }
    if bytes[4..8] == [1, 0, 0, 0] {
        return Err(ApiError::bad_request(
            "this is a core wasm module, not a component; build for wasm32-wasip2 or run `wasm-tools component new`",
        ));
    }
    Ok(())
}

async fn read_body(request: Request, limit: usize) -> Result<Bytes, ApiError> {
    match Limited::new(request.into_body(), limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) => Err(crate::listener::body_error(error, || {
            ApiError::new(
                ErrorKind::PayloadTooLarge,
                format!("request body exceeds {limit} bytes"),
            )
        })),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DeleteRequest {
    function_name: String,
}

/// `DELETE /system/functions` with `{"functionName": "…"}`.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Reply<http::StatusCode> {
    let body = read_body(request, MAX_JSON).await?;
    let delete: DeleteRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("expected {{\"functionName\": \"…\"}}: {e}")))?;
    shared.admin.delete(&delete.function_name).await?;
    Ok(http::StatusCode::ACCEPTED)
}

/// `GET /system/info`.
pub(crate) async fn info() -> Json<SystemInfo> {
    Json(SystemInfo::current(env!("CARGO_PKG_VERSION")))
}

/// OpenFaaS's `ScaleServiceRequest`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ScaleRequest {
    #[serde(default)]
    service_name: String,
    #[serde(default)]
    service_namespace: String,
    replicas: u64,
}

/// `POST /system/scale-function/{name}` with `{"serviceName", "replicas"}`: `202` once the
/// change is made; the sandboxes follow.
pub(crate) async fn scale(
    State(shared): State<Arc<Shared>>,
    Path(name): Path<String>,
    body: Bytes,
) -> Reply<http::StatusCode> {
    let request: ScaleRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("invalid scale request: {e}")))?;
    if !request.service_name.is_empty() && request.service_name != name {
        return Err(ApiError::bad_request(format!(
            "serviceName {:?} is not the function in the path, {name:?}",
            request.service_name
        ))
        .into());
    }
    let namespace = request.service_namespace.as_str();
    if !namespace.is_empty() && namespace != baton_api::NAMESPACE {
        return Err(ApiError::bad_request(format!(
            "namespace {namespace:?} does not exist: Baton has one namespace, {:?}",
            baton_api::NAMESPACE
        ))
        .into());
    }
    let replicas = u32::try_from(request.replicas)
        .map_err(|_| ApiError::bad_request(format!("replicas {} is too many", request.replicas)))?;
    shared.admin.scale(&name, replicas).await?;
    Ok(http::StatusCode::ACCEPTED)
}

#[derive(Deserialize)]
pub(crate) struct LogsQuery {
    name: String,
    /// OpenFaaS's meaning: the last N lines; 0 or less (faas-cli sends -1) means all.
    tail: Option<i64>,
    /// `true` keeps the stream open (`faas-cli logs` sends it by default).
    follow: Option<String>,
    /// RFC 3339 time: only lines read at or after it.
    since: Option<String>,
    /// Only the lines of one sandbox (the `instance` of a line).
    instance: Option<String>,
}

/// Most log lines one request returns before following.
const MAX_LOG_LINES: usize = 10_000;

/// The lines `tail` asks for: at most [`MAX_LOG_LINES`], all of them when 0 or less.
fn log_lines(tail: Option<i64>) -> usize {
    match tail {
        None => 100,
        Some(n) if n <= 0 => MAX_LOG_LINES,
        Some(n) => usize::try_from(n).map_or(MAX_LOG_LINES, |n| n.min(MAX_LOG_LINES)),
    }
}

/// A boolean query parameter as Go's `strconv.ParseBool` (which OpenFaaS uses) reads it.
fn parse_bool(text: &str, key: &str) -> Result<bool, ApiError> {
    match text {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Ok(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Ok(false),
        other => Err(ApiError::bad_request(format!(
            "{key}={other:?}: expected true or false"
        ))),
    }
}

/// An RFC 3339 time as Go's `time.RFC3339` writes it: `Z` or a `±hh:mm` offset, with or
/// without fractional seconds.
fn parse_rfc3339(text: &str) -> Result<std::time::SystemTime, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "since={text:?}: expected an RFC 3339 time such as 2026-12-03T08:00:00Z"
        ))
    };
    let (local, offset) = match text
        .len()
        .checked_sub(6)
        .filter(|&i| text.is_char_boundary(i))
        .map(|i| text.split_at(i))
    {
        Some((local, offset))
            if (offset.starts_with('+') || offset.starts_with('-'))
                && offset.as_bytes()[3] == b':' =>
        {
            let hours: u64 = offset[1..3].parse().map_err(|_| bad())?;
            let minutes: u64 = offset[4..6].parse().map_err(|_| bad())?;
            let seconds = std::time::Duration::from_secs(hours * 3600 + minutes * 60);
            (local, Some((offset.starts_with('+'), seconds)))
        }
        _ => (text, None),
    };
    let local =
        humantime::parse_rfc3339_weak(local.trim_end_matches(['Z', 'z'])).map_err(|_| bad())?;
    Ok(match offset {
        // 10:00+02:00 is 08:00 UTC.
        Some((true, by)) => local - by,
        Some((false, by)) => local + by,
        None => local,
    })
}

impl LogsQuery {
    fn into_query(self) -> Result<LogQuery, ApiError> {
        Ok(LogQuery {
            tail: log_lines(self.tail),
            follow: match self.follow.as_deref() {
                None | Some("") => false,
                Some(text) => parse_bool(text, "follow")?,
            },
            since: match self.since.as_deref() {
                None | Some("") => None,
                Some(text) => Some(parse_rfc3339(text)?),
            },
            instance: self.instance.filter(|i| !i.is_empty()),
            name: self.name,
        })
    }
}

/// `GET /system/logs?name=…&tail=N&follow=…&since=…&instance=…`: newline-delimited JSON,
/// one line per log line, streamed (and kept open with `follow=true`).
pub(crate) async fn logs(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<LogsQuery>,
) -> Reply<Response> {
    let entries = shared.admin.logs(query.into_query()?).await?;
    let lines = entries.map(|entry| {
        let mut line = serde_json::to_vec(&entry).expect("log entries serialize");
        line.push(b'\n');
        Ok::<_, std::convert::Infallible>(Bytes::from(line))
    });
    Ok((
        [(http::header::CONTENT_TYPE, "application/x-ndjson")],
        axum::body::Body::from_stream(lines),
    )
        .into_response())
}

/// `GET /system/nodes`: workers, their sandboxes and load, and gateways (cluster mode).
pub(crate) async fn nodes(State(shared): State<Arc<Shared>>) -> Reply<Json<serde_json::Value>> {
    let nodes = shared.admin.nodes().await?;
    Ok(Json(nodes.unwrap_or_else(
        || serde_json::json!({"mode": "single-node", "workers": [], "gateways": []}),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_as_go_writes_it() {
        let utc = humantime::parse_rfc3339("2026-12-03T08:00:00Z").unwrap();
        let cases = [
            ("2026-12-03T08:00:00Z", Some(utc)),
            ("2026-12-03T08:00:00.000Z", Some(utc)),
            ("2026-12-03T10:00:00+02:00", Some(utc)),
            ("2026-12-03T03:30:00-04:30", Some(utc)),
            ("2026-12-03T08:00:00", Some(utc)),
            ("yesterday", None),
            ("2026-12-03T08:00:00+2", None),
            ("2026-12-03T08:00:00+éé", None),
            ("ééééé", None),
            ("", None),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_rfc3339(text).ok(), expected, "{text:?}");
        }
    }

    #[test]
    fn follow_reads_as_go_parses_booleans() {
        for (text, expected) in [
            ("true", Some(true)),
            ("1", Some(true)),
            ("False", Some(false)),
            ("yes", None),
        ] {
            assert_eq!(parse_bool(text, "follow").ok(), expected, "{text}");
        }
    }

    #[test]
    fn tail_reads_as_openfaas_means_it() {
        let cases = [
            (None, 100),
            (Some(-1), MAX_LOG_LINES),
            (Some(0), MAX_LOG_LINES),
            (Some(5), 5),
            (Some(1 << 40), MAX_LOG_LINES),
        ];
        for (tail, lines) in cases {
            assert_eq!(log_lines(tail), lines, "{tail:?}");
        }
    }
}
