//! How a cluster gateway reaches a sandbox: HTTP to its worker's data listener
//! (`ANY /sandbox/{id}/{path}`), or, in `baton up`, a call into the worker in the same
//! process. The gateway's routing, queueing and retries are the same either way.

use async_trait::async_trait;
use baton_api::FunctionSpec;
use baton_api::data_plane::{SANDBOX_MISSING, SANDBOX_WAIT};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use std::time::Duration;

/// One request for one sandbox.
pub struct SandboxCall<'a> {
    /// The worker the sandbox is on.
    pub worker: &'a str,
    /// `http://{worker data address}/sandbox/{id}`.
    pub base: &'a str,
    /// The sandbox.
    pub sandbox: &'a str,
    /// How long the worker may hold the request for a sandbox placed but not created yet.
    pub hold: Option<Duration>,
    /// The function.
    pub spec: &'a FunctionSpec,
    /// The request as the client sent it (URI: the function-relative path and query).
    pub parts: &'a http::request::Parts,
    /// Its body, read once at the gateway.
    pub body: &'a Bytes,
}

/// Why a sandbox did not answer.
#[derive(Debug)]
pub enum Forward {
    /// Nothing reached the worker: safe to try another sandbox.
    Unreachable(String),
    /// The sandbox is not on the worker (deleted meanwhile): nothing ran.
    Missing,
    /// The request may have run; it is not retried.
    Failed(String),
}

/// Sends requests to sandboxes.
#[async_trait]
pub trait DataPlane: Send + Sync + 'static {
    /// Runs `call` on its sandbox.
    async fn call(&self, call: SandboxCall<'_>) -> Result<http::Response<Bytes>, Forward>;
}

/// The network data plane: HTTP/1.1 to each worker's data listener, connections kept.
pub struct HttpDataPlane {
    http: Client<HttpConnector, Full<Bytes>>,
}

impl HttpDataPlane {
    /// A client with Nagle off and a 1 s connect timeout (an unreachable worker is reported
    /// and its sandboxes tried elsewhere).
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(1)));
        HttpDataPlane {
            http: Client::builder(hyper_util::rt::TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
        }
    }
}

impl Default for HttpDataPlane {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait]
impl DataPlane for HttpDataPlane {
    async fn call(&self, call: SandboxCall<'_>) -> Result<http::Response<Bytes>, Forward> {
        let SandboxCall {
            worker,
            base,
            hold,
            spec,
            parts,
            body,
            ..
        } = call;
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let mut builder = http::Request::builder()
            .method(parts.method.clone())
            .uri(format!("{base}{path}"));
        for (name, value) in &parts.headers {
            if name != http::header::HOST && name != http::header::CONNECTION {
                builder = builder.header(name, value);
            }
        }
        if let Some(hold) = hold {
            builder = builder.header(SANDBOX_WAIT, hold.as_millis().to_string());
        }
        let request = builder
            .body(Full::new(body.clone()))
            .map_err(|e| Forward::Failed(format!("building the request: {e}")))?;
        let deadline = spec.limits.timeout() + Duration::from_secs(2);
        let response = match tokio::time::timeout(deadline, self.http.request(request)).await {
            Err(_) => {
                return Err(Forward::Failed(format!(
                    "worker {worker} did not answer within the function's timeout"
                )));
            }
            Ok(Err(error)) if error.is_connect() => {
                return Err(Forward::Unreachable(format!("{error}")));
            }
            Ok(Err(error)) => {
                return Err(Forward::Failed(format!(
                    "worker {worker} failed during the request: {error}"
                )));
            }
            Ok(Ok(response)) => response,
        };
        if response.headers().contains_key(SANDBOX_MISSING) {
            return Err(Forward::Missing);
        }
        let (parts, body) = response.into_parts();
        let limit = spec.limits.max_output_bytes as usize + 64 * 1024;
        let body = Limited::new(body, limit)
            .collect()
            .await
            .map_err(|e| Forward::Failed(format!("reading the answer from worker {worker}: {e}")))?
            .to_bytes();
        Ok(http::Response::from_parts(parts, body))
    }
}
