//! Baton's measurement harness: every figure in `BENCHMARKS.md` comes from here.
//!
//! - [`harness`]: starting Baton's roles as processes and waiting until they are ready,
//!   shared with the integration tests.
//! - [`load`]: the load generator, closed loop and open loop (constant or Poisson arrivals),
//!   HTTP/1.1 keep-alive or HTTP/2, latency in HDR histograms.
//! - [`scenario`]: scenario files under `benchmarks/`.
//! - [`suites`]: the state and cluster suites, on nodes and clusters they start.
//! - [`report`]: terminal summary, JSON, CSV time series and SVG plots.
//! - [`serve_baseline`]: a bare hyper hello-world answering what the `hello` example answers,
//!   so a scenario reports Baton's figures as a ratio to the best this machine can do with
//!   the same generator in the same run.
#![deny(missing_docs)]

pub mod harness;
pub mod load;
pub mod report;
pub mod scenario;
#[cfg(feature = "suites")]
pub mod suites;
mod svg;
pub mod template;
pub mod trace;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;

/// What the baseline answers: the same bytes as `GET /function/hello`.
pub const BASELINE_BODY: &[u8] = b"Hello, world!\n";

/// Serves the baseline on `listener` until the task is dropped; HTTP/1.1 keep-alive and h2c.
pub async fn serve_baseline(listener: tokio::net::TcpListener) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let service = service_fn(|_request| async {
                Ok::<_, Infallible>(
                    http::Response::builder()
                        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                        .body(Full::new(Bytes::from_static(BASELINE_BODY)))
                        .expect("static response"),
                )
            });
            if let Err(error) = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, "baseline connection ended");
            }
        });
    }
}
