//! Serving a router on a TCP listener with bounds no client can get around: a deadline for
//! request headers (which also closes HTTP/1 connections idle between requests), a deadline
//! for each request's body, and a cap on open connections; a connection beyond the cap is
//! closed at once and counted, so slow or idle clients cannot exhaust the node's file
//! descriptors and starve everyone else.

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use std::fmt::Write;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

/// Bounds of one listener.
#[derive(Debug, Clone)]
pub struct ListenerLimits {
    /// How long a client may take to send a request's headers, and how long an HTTP/1
    /// connection may sit idle between requests. Default 30 s (hyper's own default).
    pub header_read_timeout: Duration,
    /// How long a client may take to send a request's body, from the end of its headers;
    /// past it the request gets `408`. Default 60 s.
    pub body_read_timeout: Duration,
    /// Connections open at once; more are closed as they arrive. Default 8,192.
    pub max_connections: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            header_read_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(60),
            max_connections: 8192,
        }
    }
}

/// The error a request body gives once its deadline has passed.
#[derive(Debug)]
pub struct BodyDeadline(Duration);

impl std::fmt::Display for BodyDeadline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the request body did not arrive within {} s",
            self.0.as_secs_f64()
        )
    }
}

impl std::error::Error for BodyDeadline {}

/// A request body that fails with [`BodyDeadline`] if it has not ended by its deadline.
struct DeadlineBody {
    inner: axum::body::Body,
    limit: Duration,
    deadline: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl http_body::Body for DeadlineBody {
    type Data = bytes::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        if let std::task::Poll::Ready(frame) = std::pin::Pin::new(&mut self.inner).poll_frame(cx) {
            return std::task::Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return std::task::Poll::Ready(Some(Err(Box::new(BodyDeadline(self.limit)))));
        }
        std::task::Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// What reading a request body failed with, as the client should hear it: `413` past the
/// size limit (`too_large` says which), `408` past the listener's deadline, `400` otherwise.
pub(crate) fn body_error(
    error: Box<dyn std::error::Error + Send + Sync>,
    too_large: impl FnOnce() -> baton_api::ApiError,
) -> baton_api::ApiError {
    if error.is::<http_body_util::LengthLimitError>() {
        return too_large();
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error.as_ref());
    while let Some(error) = source {
        if let Some(deadline) = error.downcast_ref::<BodyDeadline>() {
            return baton_api::ApiError::new(
                baton_api::ErrorKind::RequestTimeout,
                deadline.to_string(),
            );
        }
        source = error.source();
    }
    baton_api::ApiError::bad_request(format!("reading the request body: {error}"))
}

/// What a listener has seen, for `/metrics`.
pub struct ListenerStats {
    name: &'static str,
    limits: ListenerLimits,
    slots: Arc<Semaphore>,
    refused: AtomicU64,
}

impl ListenerStats {
    /// The stats of a listener called `name` (the metric's label) under `limits`.
    pub fn new(name: &'static str, limits: &ListenerLimits) -> Arc<Self> {
        let limits = ListenerLimits {
            max_connections: limits.max_connections.max(1),
            ..limits.clone()
        };
        Arc::new(ListenerStats {
            name,
            slots: Arc::new(Semaphore::new(limits.max_connections)),
            limits,
            refused: AtomicU64::new(0),
        })
    }

    /// Appends `baton_listener_connections` and `baton_listener_refused_total` of this
    /// listener in Prometheus text.
    pub fn render(&self, out: &mut String) -> std::fmt::Result {
        let open = self.limits.max_connections - self.slots.available_permits();
        writeln!(
            out,
            "# HELP baton_listener_connections Connections open on a listener.\n# TYPE baton_listener_connections gauge\nbaton_listener_connections{{listener=\"{}\"}} {open}",
            self.name
        )?;
        writeln!(
            out,
            "# HELP baton_listener_refused_total Connections closed on arrival because the listener was at its cap.\n# TYPE baton_listener_refused_total counter\nbaton_listener_refused_total{{listener=\"{}\"}} {}",
            self.name,
            self.refused.load(Ordering::Relaxed)
        )
    }
}

/// Serves `router` on `listener` under the limits `stats` was made with, until `shutdown`
/// resolves, then gives open requests up to 10 s to finish.
pub async fn serve(
    stats: Arc<ListenerStats>,
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let name = stats.name;
    let limits = &stats.limits;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(limits.header_read_timeout)
        .max_concurrent_streams(256);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let body_limit = limits.body_read_timeout;
    let router = router.layer(axum::middleware::map_request(
        move |request: axum::extract::Request| async move {
            // Requests without a body (most GETs) carry no timer.
            use http_body::Body as _;
            request.map(|body| match body.is_end_stream() {
                true => body,
                false => axum::body::Body::new(DeadlineBody {
                    inner: body,
                    limit: body_limit,
                    deadline: Box::pin(tokio::time::sleep(body_limit)),
                }),
            })
        },
    ));
    let service = hyper_util::service::TowerToHyperService::new(router);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of descriptors or a transient network error: back off briefly
                    // rather than spin, then accept again.
                    tracing::warn!(listener = name, %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(permit) = stats.slots.clone().try_acquire_owned() else {
            stats.refused.fetch_add(1, Ordering::Relaxed);
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service.clone())
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    // Open requests get a bounded time to finish.
    let _ = tokio::time::timeout(Duration::from_secs(10), graceful.shutdown()).await;
}
