//! The gateway of a cluster (`baton gateway`): a data plane fed by the control plane.
//!
//! The control plane pushes functions and their endpoints (sandboxes on workers) over one
//! stream, a snapshot first and deltas after; the gateway keeps serving from what it has
//! when the control plane is away, and resynchronises when it is back. A request takes a
//! slot in a sandbox with room (chosen by the [`LoadBalancer`]); when there is none it
//! waits in a bounded per-function queue until its deadline, and when the function has no
//! sandbox at all it asks the control plane to scale from zero at once. In-flight counts go
//! to the control plane's autoscaler every second.

mod admin;
mod data;
mod logs;
mod route;
mod synced;

pub use admin::ClusterAdmin;
pub use data::{DataPlane, Forward, HttpDataPlane, SandboxCall};
pub use synced::SyncedAdmin;

use crate::balance::{AFFINITY_HEADER, LoadBalancer, load_balancer, stable_hash};
use async_trait::async_trait;
use baton_api::cluster::{self as proto, GatewayUpdate};
use baton_api::cluster_auth::{ClientAuth, ControlConn, control_conn};
use baton_api::{ApiError, ErrorKind, FunctionSpec, InvokeOutcome, Invoker, WorkerId};
use bytes::Bytes;
use route::Route;
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Longest a worker holds a request for a placed sandbox. A wasm sandbox is created in well
/// under a millisecond; a creation slower than this (a process function starting, or one
/// that never reached the worker) costs no more than this: the request then waits here for
/// the endpoint to be announced, as without the hold.
const PLACED_HOLD: Duration = Duration::from_secs(1);

/// Settings of a cluster gateway.
#[derive(Debug, Clone)]
pub struct ClusterGatewayConfig {
    /// Unique among the control plane's gateways.
    pub id: String,
    /// Where this gateway serves clients (shown by `baton ls --nodes`).
    pub address: String,
    /// The control plane's gRPC URL, e.g. `http://127.0.0.1:9090`.
    pub control: String,
    /// `random`, `round-robin`, `least-in-flight` or `power-of-two`.
    pub load_balancing: String,
    /// How often load goes to the autoscaler. Default 1 s.
    pub metrics_interval: Duration,
    /// The cluster token sent to the control plane.
    pub auth: ClientAuth,
}

/// The gateway's [`Invoker`] in cluster mode.
pub struct ClusterInvoker {
    config: ClusterGatewayConfig,
    control: ControlConn,
    routes: RwLock<HashMap<String, Arc<Route>>>,
    balancer: Box<dyn LoadBalancer>,
    data: Arc<dyn DataPlane>,
    connected: AtomicBool,
    /// Woken after every update from the control plane.
    applied: tokio::sync::Notify,
}

impl ClusterInvoker {
    /// A gateway following the control plane at `config.control`; spawns the update stream
    /// and the load reports.
    pub fn start(config: ClusterGatewayConfig) -> anyhow::Result<Arc<Self>> {
        let control = control_conn(&config.control, &config.auth)?;
        Self::start_with(config, control, Arc::new(HttpDataPlane::new()))
    }

    /// A gateway that reaches the control plane through `control` and sandboxes through
    /// `data` (`baton up`: both in the same process).
    pub fn start_with(
        config: ClusterGatewayConfig,
        control: ControlConn,
        data: Arc<dyn DataPlane>,
    ) -> anyhow::Result<Arc<Self>> {
        let balancer = load_balancer(&config.load_balancing).map_err(anyhow::Error::msg)?;
        let invoker = Arc::new(ClusterInvoker {
            control,
            config,
            routes: RwLock::default(),
            balancer,
            data,
            connected: AtomicBool::new(false),
            applied: tokio::sync::Notify::new(),
        });
        tokio::spawn(invoker.clone().follow());
        tokio::spawn(invoker.clone().report_load());
        Ok(invoker)
    }

    /// Whether the update stream is up.
    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::Acquire)
    }

    fn route(&self, function: &str) -> Option<Arc<Route>> {
        self.routes.read().unwrap().get(function).cloned()
    }

    /// Follows the control plane's update stream forever, reconnecting with backoff.
    async fn follow(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(50);
        loop {
            let info = proto::GatewayInfo {
                id: self.config.id.clone(),
                address: self.config.address.clone(),
            };
            match self.control.clone().register_gateway(info).await {
                Ok(response) => {
                    let mut stream = response.into_inner();
                    loop {
                        match stream.message().await {
                            Ok(Some(update)) => {
                                if update.snapshot {
                                    self.connected.store(true, Ordering::Release);
                                    backoff = Duration::from_millis(50);
                                    tracing::info!(
                                        functions = update.functions.len(),
                                        "synchronised with the control plane"
                                    );
                                }
                                self.apply(update);
                            }
                            Ok(None) => break,
                            Err(status) => {
                                tracing::warn!(error = %status.message(), "control-plane stream broke");
                                break;
                            }
                        }
                    }
                }
                Err(status) => {
                    tracing::debug!(error = %status.message(), "control plane unreachable")
                }
            }
            if self.connected.swap(false, Ordering::AcqRel) {
                tracing::warn!("lost the control plane; serving from the last known endpoints");
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(1));
        }
    }

    /// Applies one update from the control plane.
    fn apply(&self, update: GatewayUpdate) {
        let mut routes = self.routes.write().unwrap();
        if update.snapshot {
            let mut fresh = HashMap::new();
            for function in &update.functions {
                let Some(spec) = parse_spec(function) else {
                    continue;
                };
                let route = match routes.get(&function.name) {
                    Some(r) if r.version == function.version => r.clone(),
                    _ => Arc::new(Route::new(spec, function.version)),
                };
                fresh.insert(function.name.clone(), route);
            }
            for (name, old) in routes.iter() {
                if !fresh.get(name).is_some_and(|r| Arc::ptr_eq(r, old)) {
                    old.retire();
                }
            }
            for delta in &update.endpoints {
                if let Some(route) = fresh.get(&delta.function)
                    && route.version == delta.version
                {
                    route.set_endpoints(&delta.added);
                }
            }
            *routes = fresh;
            return;
        }
        for function in &update.functions {
            let Some(spec) = parse_spec(function) else {
                continue;
            };
            if routes
                .get(&function.name)
                .is_some_and(|r| r.version == function.version)
            {
                continue;
            }
            if let Some(old) = routes.insert(
                function.name.clone(),
                Arc::new(Route::new(spec, function.version)),
            ) {
                old.retire();
            }
        }
        for name in &update.removed_functions {
            if let Some(old) = routes.remove(name) {
                old.retire();
            }
        }
        for delta in &update.endpoints {
            if let Some(route) = routes.get(&delta.function)
                && route.version == delta.version
            {
                route.update_endpoints(&delta.added, &delta.removed);
            }
        }
        drop(routes);
        self.applied.notify_waiters();
    }

    /// Waits until this gateway serves `function` at `version` or later (`None`: no longer
    /// serves it), for at most `limit`; true when it does. `baton up` answers a deploy only
    /// once its own gateway routes to it, so the next request sees what was deployed.
    pub async fn synced(&self, function: &str, version: Option<u64>, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let applied = self.applied.notified();
            tokio::pin!(applied);
            applied.as_mut().enable();
            let serving = self.route(function).map(|r| r.version);
            let done = match version {
                Some(version) => serving.is_some_and(|v| v >= version),
                None => serving.is_none(),
            };
            if done {
                return true;
            }
            if tokio::time::timeout_at(deadline, applied).await.is_err() {
                return false;
            }
        }
    }

    /// Samples each function's concurrency ten times a second and reports the mean.
    async fn report_load(self: Arc<Self>) {
        let samples_per_report = 10u32;
        let sample = self.config.metrics_interval / samples_per_report;
        let mut tick = tokio::time::interval(sample.max(Duration::from_millis(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut n = 0u32;
        let mut reported_last_time: HashSet<String> = HashSet::new();
        loop {
            tick.tick().await;
            let routes: Vec<(String, Arc<Route>)> = self
                .routes
                .read()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            for (_, route) in &routes {
                route.sample();
            }
            n += 1;
            if n < samples_per_report {
                continue;
            }
            n = 0;
            let mut load = Vec::new();
            for (name, route) in &routes {
                let (concurrency, queued, requests) = route.take_load(samples_per_report);
                if concurrency > 0.0
                    || queued > 0
                    || requests > 0
                    || reported_last_time.contains(name)
                {
                    load.push(proto::FunctionLoad {
                        function: name.clone(),
                        concurrency,
                        queued,
                        requests,
                    });
                }
            }
            reported_last_time = load
                .iter()
                .filter(|l| l.concurrency > 0.0)
                .map(|l| l.function.clone())
                .collect();
            if load.is_empty() {
                continue;
            }
            let mut request = tonic::Request::new(proto::GatewayMetrics {
                gateway_id: self.config.id.clone(),
                load,
            });
            request.set_timeout(Duration::from_secs(1));
            if let Err(status) = self.control.clone().report_metrics(request).await {
                tracing::debug!(error = %status.message(), "load report not delivered");
            }
        }
    }

    /// Asks the control plane for a sandbox of `function`; what it places is used at once
    /// (the worker holds the request until the sandbox exists), which saves waiting for the
    /// creation's round trip and its announcement.
    fn request_scale_from_zero(&self, route: &Arc<Route>, function: &str) {
        if route.from_zero_requested.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut control = self.control.clone();
        let function = function.to_owned();
        let route = route.clone();
        tokio::spawn(async move {
            let mut request = tonic::Request::new(proto::ScaleFromZero {
                function: function.clone(),
            });
            request.set_timeout(Duration::from_secs(2));
            match control.request_scale_from_zero(request).await {
                Ok(placed) => route.add_placed(&placed.into_inner().endpoints),
                Err(status) => {
                    tracing::warn!(%function, error = %status.message(), "could not ask for a scale from zero");
                }
            }
        });
    }

    /// A worker did not answer: drop its endpoints here and tell the control plane.
    fn worker_unreachable(&self, worker: &WorkerId, reason: String) {
        for route in self.routes.read().unwrap().values() {
            route.drop_worker(worker);
        }
        let mut control = self.control.clone();
        let failure = proto::Failure {
            worker_id: worker.to_string(),
            sandbox_id: String::new(),
            reason,
        };
        tokio::spawn(async move {
            let mut request = tonic::Request::new(failure);
            request.set_timeout(Duration::from_secs(2));
            let _ = control.report_failure(request).await;
        });
    }

    /// Prometheus text for `/metrics`: sandboxes, queued and in-flight requests per function.
    pub fn render_metrics(&self, out: &mut String) -> std::fmt::Result {
        let routes = self.routes.read().unwrap();
        let mut names: Vec<&String> = routes.keys().collect();
        names.sort();
        writeln!(
            out,
            "# HELP baton_function_sandboxes Sandboxes this gateway routes to."
        )?;
        writeln!(out, "# TYPE baton_function_sandboxes gauge")?;
        for name in &names {
            writeln!(
                out,
                "baton_function_sandboxes{{function_name=\"{name}\"}} {}",
                routes[*name].endpoint_count()
            )?;
        }
        writeln!(
            out,
            "# HELP baton_function_queued Requests waiting for a sandbox."
        )?;
        writeln!(out, "# TYPE baton_function_queued gauge")?;
        for name in &names {
            writeln!(
                out,
                "baton_function_queued{{function_name=\"{name}\"}} {}",
                routes[*name].queued()
            )?;
        }
        writeln!(
            out,
            "# HELP baton_control_plane_connected Whether the control-plane stream is up."
        )?;
        writeln!(out, "# TYPE baton_control_plane_connected gauge")?;
        writeln!(
            out,
            "baton_control_plane_connected {}",
            u8::from(self.is_connected())
        )
    }
}

fn parse_spec(function: &proto::Function) -> Option<FunctionSpec> {
    match serde_json::from_slice(&function.spec_json) {
        Ok(spec) => Some(spec),
        Err(error) => {
            tracing::error!(function = %function.name, %error, "unreadable function spec from the control plane");
            None
        }
    }
}

#[async_trait]
impl Invoker for ClusterInvoker {
    async fn invoke(
        &self,
        function: &str,
        request: http::Request<Bytes>,
    ) -> Result<InvokeOutcome, ApiError> {
        let started = Instant::now();
        let mut latest = self
            .route(function)
            .ok_or_else(|| ApiError::not_found(function))?;
        let deadline = started + latest.spec.limits.timeout();
        let (parts, body) = request.into_parts();
        let key = parts
            .headers
            .get(AFFINITY_HEADER)
            .map(|value| stable_hash(value.as_bytes()));
        let mut cold = false;
        let mut attempts = 0u32;
        loop {
            let current = latest.clone();
            let route = &current;
            let changed = route.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            if let Some(lease) = route.acquire(self.balancer.as_ref(), key) {
                let endpoint = lease.endpoint.clone();
                let held = endpoint.placed.load(Ordering::Acquire);
                let hold = endpoint
                    .placed
                    .load(Ordering::Acquire)
                    .then(|| route.spec.limits.timeout().min(PLACED_HOLD));
                let call = SandboxCall {
                    worker: endpoint.worker.as_str(),
                    base: &endpoint.base,
                    sandbox: endpoint.sandbox.as_str(),
                    hold,
                    spec: &route.spec,
                    parts: &parts,
                    body: &body,
                };
                let result = self.data.call(call).await;
                drop(lease);
                attempts += 1;
                match result {
                    Ok(response) => {
                        return Ok(InvokeOutcome {
                            response,
                            cold_start: cold.then(|| started.elapsed()),
                        });
                    }
                    // A held request's hold may have ended just before its sandbox was
                    // created: once the control plane has announced the sandbox, it exists
                    // (its deletion would be announced too), so it is tried again.
                    Err(Forward::Missing) if !held || endpoint.placed.load(Ordering::Acquire) => {
                        route.remove_endpoint(&endpoint.sandbox)
                    }
                    Err(Forward::Missing) => {}
                    Err(Forward::Unreachable(reason)) => {
                        tracing::warn!(worker = %endpoint.worker, %reason, "worker unreachable; trying another sandbox");
                        self.worker_unreachable(&endpoint.worker, reason);
                    }
                    Err(Forward::Failed(message)) => {
                        return Err(ApiError::new(ErrorKind::BadGateway, message));
                    }
                }
                if attempts >= 8 {
                    return Err(ApiError::new(
                        ErrorKind::BadGateway,
                        format!("no sandbox of {function} could be reached after {attempts} tries"),
                    ));
                }
                continue;
            }
            if route.endpoint_count() == 0 {
                cold = true;
                self.request_scale_from_zero(route, function);
            }
            let Some(_waiting) = route.wait_slot() else {
                return Err(ApiError::new(
                    ErrorKind::Overloaded,
                    format!(
                        "{function} is busy and {} requests are already waiting",
                        route.spec.scaling.queue
                    ),
                ));
            };
            if tokio::time::timeout_at(deadline.into(), changed)
                .await
                .is_err()
            {
                let timeout = baton_api::format_duration(route.spec.limits.timeout());
                return Err(if route.endpoint_count() > 0 {
                    ApiError::new(
                        ErrorKind::Timeout,
                        format!(
                            "every sandbox of {function} stayed busy for its timeout of {timeout}"
                        ),
                    )
                } else if self.is_connected() {
                    // A sandbox was asked for and did not start in time: the function's
                    // own start is too slow (or never listens), a timeout as a cold start
                    // in the request's path would be.
                    ApiError::new(
                        ErrorKind::Timeout,
                        format!(
                            "no sandbox of {function} became ready within its timeout of {timeout}"
                        ),
                    )
                } else {
                    ApiError::new(
                        ErrorKind::Unavailable,
                        format!(
                            "no sandbox of {function} became ready within its timeout of {timeout} (the control plane is unreachable)"
                        ),
                    )
                });
            }
            latest = self
                .route(function)
                .ok_or_else(|| ApiError::not_found(function))?;
        }
    }

    fn max_body_bytes(&self, function: &str) -> Option<u64> {
        self.route(function).map(|r| r.spec.limits.max_body_bytes)
    }
}
