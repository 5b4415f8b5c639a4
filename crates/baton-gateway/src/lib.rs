//! The gateway: Baton's only hot path and its HTTP face.
//!
//! Routes, OpenFaaS-compatible where OpenFaaS has the thing:
//! - `ANY /function/{name}[/{rest}]`: synchronous invocation; `{rest}` and the query reach the
//!   function as its path; responses carry `X-Call-Id`, `X-Duration-Seconds` and
//!   `X-Baton-Cold-Start`.
//! - `POST /async-function/{name}[/{rest}]`: 202 with `X-Call-Id`; the result goes to
//!   `X-Callback-Url` when given.
//! - `/system/functions`, `/system/function/{name}`, `/system/info`, `/system/logs`,
//!   `/system/secrets`, `/system/scale-function/{name}`, `/system/namespaces`: the
//!   admin API, behind a bearer token when one is configured.
//! - `/healthz`, `/metrics` (Prometheus text).
//!
//! The gateway holds an [`Invoker`] and a [`FunctionAdmin`]; in `baton up` they are the
//! in-process worker and control plane.
#![deny(missing_docs)]

mod admin;
mod async_calls;
mod async_jetstream;
mod async_journal;
mod auth;
pub mod balance;
pub mod cluster;
mod error;
pub mod https;
mod invoke;
mod listener;
mod metrics;
mod namespace;
mod reserved;
mod secrets;

use axum::Router;
use axum::routing::{any, get, post};
use baton_api::{FunctionAdmin, Invoker};
use std::sync::Arc;

pub use async_calls::{AsyncConfig, AsyncJournal};
pub use async_jetstream::{JetStreamConfig, JetStreamQueue};
pub use listener::{ListenerLimits, ListenerStats, serve};
pub use metrics::Metrics;

/// More metrics for `/metrics`, from the node's other services: appends Prometheus text
/// (without `# EOF`).
pub type MetricsSource = Arc<dyn Fn(&mut String) -> std::fmt::Result + Send + Sync>;

/// Gateway settings.
#[derive(Clone, Default)]
pub struct GatewayConfig {
    /// Bearer token required on `/system/*`; `None` leaves them open (loopback only).
    pub token: Option<String>,
    /// The asynchronous invocation queue.
    pub async_calls: AsyncConfig,
    /// Where accepted asynchronous calls are kept until they ran; `None`: in memory only.
    pub async_journal: Option<Arc<AsyncJournal>>,
    /// The cluster's queue in NATS JetStream: when given, used instead of this gateway's own.
    pub async_jetstream: Option<Arc<JetStreamQueue>>,
    /// The state agent's metrics, when the node runs one.
    pub extra_metrics: Option<MetricsSource>,
    /// More admin routes under `/system/`, behind the same token (the federation's status).
    pub extra_system: Option<Router>,
}

/// What every handler shares.
pub(crate) struct Shared {
    pub(crate) invoker: Arc<dyn Invoker>,
    pub(crate) admin: Arc<dyn FunctionAdmin>,
    pub(crate) metrics: Metrics,
    pub(crate) async_calls: async_calls::AsyncQueue,
    pub(crate) token: Option<String>,
    pub(crate) extra_metrics: Option<MetricsSource>,
}

/// Builds the gateway's router; spawns the asynchronous-call dispatcher.
pub fn router(
    config: GatewayConfig,
    invoker: Arc<dyn Invoker>,
    admin: Arc<dyn FunctionAdmin>,
) -> Router {
    let metrics = Metrics::new();
    let async_calls = async_calls::AsyncQueue::start(
        config.async_calls.clone(),
        config.async_journal.clone(),
        config.async_jetstream.clone(),
        invoker.clone(),
        metrics.clone(),
    );
    let shared = Arc::new(Shared {
        invoker,
        admin,
        metrics,
        async_calls,
        token: config.token,
        extra_metrics: config.extra_metrics,
    });
    let system = Router::new()
        .route(
            "/system/functions",
            get(admin::list)
                .post(admin::create)
                .put(admin::update)
                .delete(admin::delete),
        )
        .route("/system/function/{name}", get(admin::describe))
        .route("/system/info", get(admin::info))
        .route("/system/logs", get(admin::logs))
        .route("/system/nodes", get(admin::nodes))
        .route("/system/namespaces", get(namespace::list))
        .route("/system/scale-function/{name}", post(admin::scale))
        .merge(config.extra_system.unwrap_or_default().with_state(()))
        .route(
            "/system/secrets",
            get(secrets::list)
                .post(secrets::create)
                .put(secrets::update)
                .delete(secrets::delete),
        )
        .layer(axum::middleware::from_fn(namespace::only_ours))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            auth::require_token,
        ));
    let functions = Router::new()
        .route("/function/{name}", any(invoke::sync))
        .route("/function/{name}/", any(invoke::sync))
        .route("/function/{name}/{*rest}", any(invoke::sync))
        .route("/async-function/{name}", post(async_calls::enqueue))
        .route("/async-function/{name}/", post(async_calls::enqueue))
        .route("/async-function/{name}/{*rest}", post(async_calls::enqueue))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            reserved::refuse,
        ));
    Router::new()
        .merge(functions)
        .route("/healthz", get(|| async { "OK\n" }))
        .route("/metrics", get(metrics::render))
        .merge(system)
        .with_state(shared)
}
