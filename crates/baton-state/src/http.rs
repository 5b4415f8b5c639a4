//! The node-local HTTP API (the address in `BATON_API`), for process functions and tools:
//!
//! - `GET /v1/state/{ns}`: the namespace's objects.
//! - `POST /v1/state/{ns}`: a batch, `[{"object": "hits", "op": "counter-add", "amount": 1}, ..]`,
//!   answered with one result per operation, in order, after one group commit.
//! - `GET /v1/state/{ns}/{object}`: `{"type", "version", "value"}`; `?query=contains&member=`,
//!   `map-get&key=`, `map-keys`, `map-page&stop=[&start=&reverse=true]`,
//!   `vector-range&offset=&len=`, `vector-sum[&offset=&len=]`;
//!   `?after=V&wait=10s` waits (at most 60 s) for a version past `V` (watch).
//! - `POST /v1/state/{ns}/{object}`: one operation, e.g. `{"op": "set-add", "member": "x"}`;
//!   `?durable=false` acknowledges before the log commit.
//! - `DELETE /v1/state/{ns}/{object}`.
//! - `POST /v1/faults` `{"partitioned": true}`: only when fault injection is enabled (tests).
//!
//! Every request carries `Authorization: Bearer <token>`: a process function's own token
//! (`BATON_API_TOKEN`) reaches its namespace only; the node's admin token reaches all.

use crate::{Agent, Capabilities, Durability, ObjectKey, Op, Query, StateError};
use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, Query as UrlQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// Longest a watch may wait.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// Operations in one batch.
const MAX_BATCH: usize = 100_000;

/// The local API's router; `faults` enables `POST /v1/faults`; every route checks the
/// caller's token against `capabilities`.
pub fn router(agent: Agent, faults: bool, capabilities: Arc<Capabilities>) -> axum::Router {
    let mut router = axum::Router::new()
        .route("/v1/state/{namespace}", get(list).post(batch))
        .route(
            "/v1/state/{namespace}/{*object}",
            get(read).post(apply).delete(delete),
        );
    if faults {
        router = router.route("/v1/faults", post(fault));
    }
    router
        .layer(DefaultBodyLimit::max(64 << 20))
        .layer(axum::middleware::from_fn_with_state(
            capabilities,
            authorize,
        ))
        .with_state(agent)
}

/// Lets a request through when its token may reach the namespace in its path.
async fn authorize(
    State(capabilities): State<Arc<Capabilities>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let checked =
        capabilities.authorize_path(request.headers(), request.uri().path(), "/v1/state/");
    match checked {
        Ok(()) => next.run(request).await,
        Err(error) => error.into_response(),
    }
}

impl IntoResponse for StateError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        (status, Json(json!({ "error": self.to_string() }))).into_response()
    }
}

fn body<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, StateError> {
    serde_json::from_slice(bytes).map_err(|e| StateError::Invalid(format!("bad request body: {e}")))
}

async fn list(State(agent): State<Agent>, Path(namespace): Path<String>) -> Response {
    match ObjectKey::new(&namespace, "x") {
        Ok(_) => Json(json!({ "objects": agent.list(&namespace) })).into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Deserialize)]
struct BatchItem {
    object: String,
    #[serde(flatten)]
    op: Op,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WriteParams {
    durable: Option<bool>,
}

fn durability(agent: &Agent, params: &WriteParams) -> Durability {
    match params.durable {
        Some(true) => Durability::Durable,
        Some(false) => Durability::Async,
        None => agent.default_durability(),
    }
}

async fn batch(
    State(agent): State<Agent>,
    Path(namespace): Path<String>,
    UrlQuery(params): UrlQuery<WriteParams>,
    bytes: axum::body::Bytes,
) -> Result<Response, StateError> {
    let items: Vec<BatchItem> = body(&bytes)?;
    if items.len() > MAX_BATCH {
        return Err(StateError::TooLarge(format!(
            "a batch of {} operations exceeds {MAX_BATCH}",
            items.len()
        )));
    }
    let ops = items
        .into_iter()
        .map(|item| Ok((ObjectKey::new(&namespace, &item.object)?, item.op)))
        .collect::<Result<Vec<_>, StateError>>()?;
    let results = agent.apply_all(ops, durability(&agent, &params)).await;
    let results: Vec<_> = results
        .into_iter()
        .map(|r| match r {
            Ok(version) => json!({ "version": version }),
            Err(e) => json!({ "error": e.to_string(), "status": e.http_status() }),
        })
        .collect();
    Ok(Json(json!({ "results": results })).into_response())
}

async fn apply(
    State(agent): State<Agent>,
    Path((namespace, object)): Path<(String, String)>,
    UrlQuery(params): UrlQuery<WriteParams>,
    bytes: axum::body::Bytes,
) -> Result<Response, StateError> {
    let key = ObjectKey::new(&namespace, &object)?;
    let op: Op = body(&bytes)?;
    let version = agent.apply(&key, op, durability(&agent, &params)).await?;
    Ok(Json(json!({ "version": version })).into_response())
}

async fn delete(
    State(agent): State<Agent>,
    Path((namespace, object)): Path<(String, String)>,
    UrlQuery(params): UrlQuery<WriteParams>,
) -> Result<Response, StateError> {
    let key = ObjectKey::new(&namespace, &object)?;
    let deleted = agent.delete(&key, durability(&agent, &params)).await?;
    Ok(Json(json!({ "deleted": deleted })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReadParams {
    query: Option<String>,
    member: Option<String>,
    key: Option<String>,
    offset: Option<u64>,
    len: Option<u64>,
    start: Option<u64>,
    stop: Option<u64>,
    reverse: Option<bool>,
    after: Option<u64>,
    wait: Option<String>,
}

impl ReadParams {
    fn query(self) -> Result<Query, StateError> {
        let missing = |what: &str| StateError::Invalid(format!("this query needs `{what}`"));
        Ok(match self.query.as_deref().unwrap_or("value") {
            "value" => Query::Value,
            "contains" => Query::Contains {
                member: self.member.ok_or_else(|| missing("member"))?,
            },
            "map-get" => Query::MapGet {
                key: self.key.ok_or_else(|| missing("key"))?,
            },
            "map-keys" => Query::MapKeys,
            "map-page" => Query::MapPage {
                start: self.start.unwrap_or(0),
                stop: self.stop.ok_or_else(|| missing("stop"))?,
                reverse: self.reverse.unwrap_or(false),
            },
            "vector-range" => Query::VectorRange {
                offset: self.offset.unwrap_or(0),
                len: self.len.ok_or_else(|| missing("len"))?,
            },
            "vector-sum" => Query::VectorSum {
                offset: self.offset.unwrap_or(0),
                len: self.len,
            },
            other => {
                return Err(StateError::Invalid(format!(
                    "unknown query {other:?}: value, contains, map-get, map-keys, map-page, vector-range or vector-sum"
                )));
            }
        })
    }
}

async fn read(
    State(agent): State<Agent>,
    Path((namespace, object)): Path<(String, String)>,
    UrlQuery(mut params): UrlQuery<ReadParams>,
) -> Result<Response, StateError> {
    let key = ObjectKey::new(&namespace, &object)?;
    if let Some(after) = params.after.take() {
        let wait = match params.wait.take() {
            Some(text) => humantime::parse_duration(&text)
                .map_err(|e| StateError::Invalid(format!("wait {text:?}: {e}")))?,
            None => Duration::from_secs(30),
        };
        agent.watch(&key, after, wait.min(MAX_WAIT)).await;
    }
    let reading = agent.read(&key, &params.query()?)?;
    Ok(Json(reading).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fault {
    partitioned: bool,
}

async fn fault(
    State(agent): State<Agent>,
    bytes: axum::body::Bytes,
) -> Result<StatusCode, StateError> {
    let fault: Fault = body(&bytes)?;
    agent
        .inner()
        .partitioned
        .store(fault.partitioned, Ordering::Relaxed);
    tracing::warn!(partitioned = fault.partitioned, "state fault injection");
    Ok(StatusCode::NO_CONTENT)
}
