//! Asynchronous invocations, as OpenFaaS's queue worker runs them: accepted with `202` into a
//! bounded queue, run by a bounded number of tasks, retried with backoff and jitter while the
//! function is overloaded or unavailable, and their results POSTed to `X-Callback-Url` with
//! the function's response headers. With a journal (`baton up`: a file in the data directory)
//! an accepted call is on disk before its `202`, and runs after a crash (at least once); a
//! cluster gateway keeps them in NATS JetStream when given a server (`async_jetstream.rs`),
//! otherwise in memory, lost if it stops.

use crate::Shared;
use crate::async_journal::{Journal, Record};
use crate::error::HttpError;
use crate::invoke::{CALL_ID, address};
use crate::metrics::Metrics;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use baton_api::{ApiError, ErrorKind, Invoker};
use bytes::Bytes;
use http_body_util::Full;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};

/// Settings of the asynchronous queue.
#[derive(Debug, Clone)]
pub struct AsyncConfig {
    /// Calls that may wait; more get 429. Default 1024.
    pub queue: usize,
    /// Calls run at once. Default 16.
    pub concurrency: usize,
    /// Attempts to run a call while the function answers 429, 502, 503 or 504. Default 5.
    pub attempts: u32,
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
            attempts: 5,
            callback_attempts: 3,
            callback_timeout: Duration::from_secs(10),
        }
    }
}

/// The journal of accepted calls, opened before the gateway starts (so a node that cannot
/// open it does not start), with the calls a previous run left.
pub struct AsyncJournal {
    journal: Journal,
    left: Mutex<Vec<(u64, Record)>>,
}

impl AsyncJournal {
    /// Opens (or makes) the journal file at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Arc<AsyncJournal>> {
        let (journal, left) = Journal::open(path)?;
        if !left.is_empty() {
            tracing::info!(
                calls = left.len(),
                "asynchronous calls accepted before a stop will run"
            );
        }
        Ok(Arc::new(AsyncJournal {
            journal,
            left: Mutex::new(left),
        }))
    }
}

struct Call {
    key: u64,
    record: Record,
}

/// The accepting side of the queue: this gateway's own, or the cluster's in JetStream.
pub(crate) enum AsyncQueue {
    Local(LocalQueue),
    JetStream(Arc<crate::async_jetstream::JetStreamQueue>),
}

impl AsyncQueue {
    /// Starts running calls from `jetstream` when given, else from a queue of this gateway's
    /// own (kept in `journal` when given).
    pub(crate) fn start(
        config: AsyncConfig,
        journal: Option<Arc<AsyncJournal>>,
        jetstream: Option<Arc<crate::async_jetstream::JetStreamQueue>>,
        invoker: Arc<dyn Invoker>,
        metrics: Metrics,
    ) -> Self {
        match jetstream {
            Some(queue) => {
                queue.clone().start(config, invoker, metrics);
                AsyncQueue::JetStream(queue)
            }
            None => AsyncQueue::Local(LocalQueue::start(config, journal, invoker, metrics)),
        }
    }

    async fn push(&self, record: Record) -> Result<(), ApiError> {
        match self {
            AsyncQueue::Local(queue) => queue.push(record).await,
            AsyncQueue::JetStream(queue) => queue.push(&record).await,
        }
    }
}

/// A gateway's own queue: a bounded channel, and the journal where there is one.
pub(crate) struct LocalQueue {
    sender: mpsc::Sender<Call>,
    journal: Option<Journal>,
    next_key: AtomicU64,
    /// Calls accepted and not yet finished, against `capacity`.
    pending: Arc<AtomicUsize>,
    capacity: usize,
}

impl LocalQueue {
    fn start(
        config: AsyncConfig,
        journal: Option<Arc<AsyncJournal>>,
        invoker: Arc<dyn Invoker>,
        metrics: Metrics,
    ) -> Self {
        let left = journal
            .as_ref()
            .map(|j| std::mem::take(&mut *j.left.lock().unwrap()))
            .unwrap_or_default();
        let capacity = config.queue.max(1);
        // Room for what a previous run left, even beyond a capacity lowered since.
        let (sender, mut receiver) = mpsc::channel::<Call>(capacity.max(left.len()).max(1));
        let next_key = left.iter().map(|(key, _)| key + 1).max().unwrap_or(1);
        let pending = Arc::new(AtomicUsize::new(left.len()));
        for (key, record) in left {
            sender
                .try_send(Call { key, record })
                .unwrap_or_else(|_| unreachable!("the channel holds every call left"));
        }
        let client = crate::https::client();
        let permits = Arc::new(Semaphore::new(config.concurrency.max(1)));
        let journal = journal.map(|j| j.journal.clone());
        let (runner_journal, runner_pending) = (journal.clone(), pending.clone());
        tokio::spawn(async move {
            while let Some(call) = receiver.recv().await {
                metrics.set_async_queued(receiver.len());
                let Ok(permit) = permits.clone().acquire_owned().await else {
                    return;
                };
                let (invoker, metrics, client, config) = (
                    invoker.clone(),
                    metrics.clone(),
                    client.clone(),
                    config.clone(),
                );
                let (journal, pending) = (runner_journal.clone(), runner_pending.clone());
                tokio::spawn(async move {
                    let key = call.key;
                    run(call.record, invoker, metrics, client, config).await;
                    if let Some(journal) = journal {
                        journal.remove(key);
                    }
                    pending.fetch_sub(1, Ordering::SeqCst);
                    drop(permit);
                });
            }
        });
        LocalQueue {
            sender,
            journal,
            next_key: AtomicU64::new(next_key),
            pending,
            capacity,
        }
    }

    /// Takes `record`: journaled first where there is a journal; 429 when the queue is full.
    async fn push(&self, record: Record) -> Result<(), ApiError> {
        if self.pending.fetch_add(1, Ordering::SeqCst) >= self.capacity {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            return Err(ApiError::new(
                ErrorKind::Overloaded,
                "the asynchronous queue is full; retry later",
            ));
        }
        let key = self.next_key.fetch_add(1, Ordering::SeqCst);
        if let Some(journal) = &self.journal
            && let Err(error) = journal.put(key, &record).await
        {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            tracing::error!(%error, "an asynchronous call could not be journaled");
            return Err(ApiError::new(
                ErrorKind::Unavailable,
                "the asynchronous queue cannot record calls now; retry later",
            ));
        }
        // Never full: `pending` keeps calls below the channel's capacity.
        self.sender
            .try_send(Call { key, record })
            .map_err(|_| ApiError::new(ErrorKind::Unavailable, "the asynchronous queue stopped"))
    }
}

/// The pause before attempt `attempt + 1` of a call (`attempt` ≥ 1): 0.5 s doubling up to
/// 30 s, spread by `jitter` in [0, 1) to between half and one and a half of that, so calls
/// refused together do not come back together.
fn backoff(attempt: u32, jitter: f64) -> Duration {
    let base = Duration::from_millis(500)
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(Duration::from_secs(30));
    base.mul_f64(0.5 + jitter.clamp(0.0, 1.0))
}

/// Whether a status means "try again later" rather than the call's own answer.
fn retryable(status: http::StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

fn request_of(record: &Record) -> http::Request<Bytes> {
    let mut request = http::Request::builder()
        .method(record.method.as_str())
        .uri(record.uri.as_str());
    for (name, value) in &record.headers {
        request = request.header(name.as_str(), value.as_slice());
    }
    request
        .body(record.body.clone())
        .unwrap_or_else(|_| http::Request::new(record.body.clone()))
}

/// Runs one accepted call: attempts with backoff while the function is overloaded, then the
/// callback.
pub(crate) async fn run(
    record: Record,
    invoker: Arc<dyn Invoker>,
    metrics: Metrics,
    client: crate::https::HttpsClient,
    config: AsyncConfig,
) {
    let started = Instant::now();
    let mut attempt = 1;
    let (status, headers, body) = loop {
        metrics.started(&record.function);
        let attempt_started = Instant::now();
        let (status, headers, body, cold) =
            match invoker.invoke(&record.function, request_of(&record)).await {
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
        metrics.finished(
            &record.function,
            status.as_u16(),
            attempt_started.elapsed(),
            cold,
        );
        if !retryable(status) || attempt >= config.attempts {
            break (status, headers, body);
        }
        let pause = backoff(attempt, fastrand::f64());
        tracing::debug!(call_id = %record.call_id, status = status.as_u16(), attempt, ?pause, "async call retried");
        tokio::time::sleep(pause).await;
        attempt += 1;
    };
    let elapsed = started.elapsed();
    tracing::debug!(function = %record.function, call_id = %record.call_id, status = status.as_u16(), attempt, "async call finished");
    let Some(callback) = record
        .callback
        .as_deref()
        .and_then(|c| c.parse::<http::Uri>().ok())
    else {
        return;
    };
    for attempt in 1..=config.callback_attempts {
        let mut request = http::Request::post(callback.clone());
        // The function's own headers first, as OpenFaaS's queue worker copies them; the
        // platform's then win.
        for (name, value) in &headers {
            if !matches!(
                name.as_str(),
                "content-length" | "transfer-encoding" | "connection" | "keep-alive"
            ) {
                request = request.header(name, value);
            }
        }
        let request = request
            .header(CALL_ID, &record.call_id)
            .header("x-function-name", &record.function)
            .header("x-function-status", status.as_u16())
            .header(
                "x-duration-seconds",
                format!("{:.6}", elapsed.as_secs_f64()),
            );
        let Ok(request) = request.body(Full::new(body.clone())) else {
            return;
        };
        match tokio::time::timeout(config.callback_timeout, client.request(request)).await {
            Ok(Ok(response)) if !response.status().is_server_error() => return,
            Ok(Ok(response)) => {
                tracing::warn!(call_id = %record.call_id, status = %response.status(), attempt, "callback refused the result")
            }
            Ok(Err(error)) => {
                tracing::warn!(call_id = %record.call_id, %error, attempt, "callback failed")
            }
            Err(_) => tracing::warn!(call_id = %record.call_id, attempt, "callback timed out"),
        }
        tokio::time::sleep(backoff(attempt, fastrand::f64())).await;
    }
    tracing::error!(call_id = %record.call_id, %callback, "result not delivered to callback; giving up");
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
            let scheme_ok = matches!(uri.scheme_str(), Some("http" | "https"));
            if !scheme_ok || uri.authority().is_none() {
                return Err(ApiError::bad_request(
                    "X-Callback-Url must be an absolute http:// or https:// URL",
                ));
            }
            Some(uri.to_string())
        }
    };
    let addressed = address(shared, "/async-function/", request).await?;
    let call_id = addressed.call_id.clone();
    let (parts, body) = addressed.request.into_parts();
    let record = Record {
        function: addressed.function,
        call_id: addressed.call_id,
        callback,
        method: parts.method.to_string(),
        uri: parts
            .uri
            .path_and_query()
            .map_or_else(|| "/".to_owned(), |p| p.as_str().to_owned()),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
            .collect(),
        body,
    };
    shared.async_calls.push(record).await?;
    Ok(call_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap_and_jitter_spreads_it() {
        for (attempt, jitter, millis) in [
            (1, 0.5, 500),
            (2, 0.5, 1_000),
            (3, 0.5, 2_000),
            (7, 0.5, 30_000),
            (40, 0.5, 30_000),
            (1, 0.0, 250),
            (1, 0.999_999, 749),
            (2, 7.0, 1_500),
        ] {
            assert_eq!(
                backoff(attempt, jitter).as_millis(),
                millis,
                "attempt {attempt}, jitter {jitter}"
            );
        }
    }

    #[test]
    fn only_overload_and_unavailability_are_retried() {
        for (status, again) in [(429, true), (502, true), (503, true), (504, true)] {
            assert_eq!(
                retryable(http::StatusCode::from_u16(status).unwrap()),
                again
            );
        }
        for status in [200, 400, 404, 413, 500] {
            assert!(
                !retryable(http::StatusCode::from_u16(status).unwrap()),
                "{status}"
            );
        }
    }
}
