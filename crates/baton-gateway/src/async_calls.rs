//! Asynchronous invocations: accepted with 202 into a bounded queue, run by a bounded number of
//! tasks, and their results POSTed to `X-Callback-Url` when the caller gave one, as the
//! OpenFaaS queue worker does. The queue is in memory: calls accepted but not yet run are lost
//! if the node stops.

use crate::Shared;
use crate::error::HttpError;
use crate::invoke::{CALL_ID, address};
use crate::metrics::Metrics;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use baton_api::{ApiError, ErrorKind, Invoker};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};

/// Settings of the asynchronous queue.
#[derive(Debug, Clone)]
pub struct AsyncConfig {
    /// Calls that may wait; more get 429. Default 1024.
    pub queue: usize,
    /// Calls run at once. Default 16.
    pub concurrency: usize,
    /// Attempts to deliver a result to its callback URL. Default 3.
    pub callback_attempts: u32,
    /// Deadline of one callback attempt. Default 10 s.
    pub callback_timeout: Duration,
}

impl Default for AsyncConfig {
    fn default() -> Self {
        AsyncConfig {
            queue: 1024,
            concurrency: 16,
            callback_attempts: 3,
            callback_timeout: Duration::from_secs(10),
        }
    }
}

struct Call {
    function: String,
    call_id: String,
    callback: Option<http::Uri>,
    request: http::Request<Bytes>,
}

/// The sending side of the queue.
pub(crate) struct AsyncQueue {
    sender: mpsc::Sender<Call>,
}

impl AsyncQueue {
    pub(crate) fn start(config: AsyncConfig, invoker: Arc<dyn Invoker>, metrics: Metrics) -> Self {
        let (sender, mut receiver) = mpsc::channel::<Call>(config.queue.max(1));
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(TokioExecutor::new()).build_http();
        let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
        let depth = sender.clone();
        tokio::spawn(async move {
            while let Some(call) = receiver.recv().await {
                metrics.set_async_queued(depth.max_capacity() - depth.capacity());
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let (invoker, metrics, client, config) = (
                    invoker.clone(),
                    metrics.clone(),
                    client.clone(),
                    config.clone(),
                );
                tokio::spawn(async move {
                    run(call, invoker, metrics, client, config).await;
                    drop(permit);
                });
            }
        });
        AsyncQueue { sender }
    }
}

async fn run(
    call: Call,
    invoker: Arc<dyn Invoker>,
    metrics: Metrics,
    client: Client<HttpConnector, Full<Bytes>>,
    config: AsyncConfig,
) {
    let started = Instant::now();
    metrics.started(&call.function);
    let (status, headers, body, cold) = match invoker.invoke(&call.function, call.request).await {
        Ok(outcome) => {
            let (parts, body) = outcome.response.into_parts();
            (parts.status, parts.headers, body, outcome.cold_start)
        }
        Err(error) => {
            let status = http::StatusCode::from_u16(error.kind.http_status())
                .unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
            (
                status,
                http::HeaderMap::new(),
                Bytes::from(error.message),
                None,
            )
        }
    };
    let elapsed = started.elapsed();
    metrics.finished(&call.function, status.as_u16(), elapsed, cold);
    tracing::debug!(function = %call.function, call_id = %call.call_id, status = status.as_u16(), "async call finished");
    let Some(callback) = call.callback else {
        return;
    };
    for attempt in 1..=config.callback_attempts {
        let mut request = http::Request::post(callback.clone())
            .header(CALL_ID, &call.call_id)
            .header("x-function-name", &call.function)
            .header("x-function-status", status.as_u16())
            .header(
                "x-duration-seconds",
                format!("{:.6}", elapsed.as_secs_f64()),
            );
        if let Some(content_type) = headers.get(http::header::CONTENT_TYPE) {
            request = request.header(http::header::CONTENT_TYPE, content_type);
        }
        let Ok(request) = request.body(Full::new(body.clone())) else {
            return;
        };
        match tokio::time::timeout(config.callback_timeout, client.request(request)).await {
            Ok(Ok(response)) if !response.status().is_server_error() => return,
            Ok(Ok(response)) => {
                tracing::warn!(call_id = %call.call_id, status = %response.status(), attempt, "callback refused the result")
            }
            Ok(Err(error)) => {
                tracing::warn!(call_id = %call.call_id, %error, attempt, "callback failed")
            }
            Err(_) => tracing::warn!(call_id = %call.call_id, attempt, "callback timed out"),
        }
        tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
    }
    tracing::error!(call_id = %call.call_id, %callback, "result not delivered to callback; giving up");
}

/// `POST /async-function/{name}[/{rest}]`.
pub(crate) async fn enqueue(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    match accept(&shared, request).await {
        Ok(call_id) => (http::StatusCode::ACCEPTED, [(CALL_ID, call_id)]).into_response(),
        Err(error) => HttpError(error).into_response(),
    }
}

async fn accept(shared: &Shared, request: Request) -> Result<String, ApiError> {
    let callback = match request.headers().get("x-callback-url") {
        None => None,
        Some(value) => {
            let uri: http::Uri = value
                .to_str()
                .ok()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| ApiError::bad_request("X-Callback-Url is not a URL"))?;
            if uri.scheme_str() != Some("http") || uri.authority().is_none() {
                return Err(ApiError::bad_request(
                    "X-Callback-Url must be an absolute http:// URL",
                ));
            }
            Some(uri)
        }
    };
    let addressed = address(shared, "/async-function/", request).await?;
    let call_id = addressed.call_id.clone();
    let call = Call {
        function: addressed.function,
        call_id: addressed.call_id,
        callback,
        request: addressed.request,
    };
    shared.async_calls.sender.try_send(call).map_err(|_| {
        ApiError::new(
            ErrorKind::Overloaded,
            "the asynchronous queue is full; retry later",
        )
    })?;
    Ok(call_id)
}
