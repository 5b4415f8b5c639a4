//! Serving a router on a TCP listener with bounds no client can get around: a deadline for
//! request headers (which also closes HTTP/1 connections idle between requests), and a cap on
//! open connections; a connection beyond the cap is closed at once and counted, so slow or
//! idle clients cannot exhaust the node's file descriptors and starve everyone else.

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
    /// Connections open at once; more are closed as they arrive. Default 8,192.
    pub max_connections: usize,
}

impl Default for ListenerLimits {
    fn default() -> Self {
        ListenerLimits {
            header_read_timeout: Duration::from_secs(30),
            max_connections: 8192,
        }
    }
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
