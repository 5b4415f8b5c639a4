use crate::Shared;
use axum::extract::State;
use axum::response::IntoResponse;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionCode {
    function_name: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabel {
    function_name: String,
}

/// The gateway's Prometheus metrics, under OpenFaaS's names where OpenFaaS has them.
#[derive(Clone)]
pub struct Metrics(Arc<Inner>);

struct Inner {
    registry: Registry,
    invocations: Family<FunctionCode, Counter>,
    /// `gateway_function_invocation_started`, by function: rendered by hand, as OpenMetrics
    /// would name a counter `…_started_total` where OpenFaaS's dashboards look for
    /// `…_started`.
    started: RwLock<HashMap<String, AtomicU64>>,
    seconds: Family<FunctionCode, Histogram>,
    cold_starts: Family<FunctionLabel, Counter>,
    cold_start_seconds: Family<FunctionLabel, Histogram>,
    replicas: Family<FunctionLabel, Gauge>,
    async_queued: Gauge,
    reserved_refused: Counter,
    /// Per-function totals for `invocationCount` in `/system/functions`.
    totals: RwLock<HashMap<String, AtomicU64>>,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    // 10 µs to ~40 s: cold starts of wasm are microseconds, of processes up to seconds.
    prometheus_client::metrics::histogram::exponential_buckets(0.00001, 2.5, 17)
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let invocations = Family::<FunctionCode, Counter>::default();
        let seconds = Family::<FunctionCode, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        let cold_starts = Family::<FunctionLabel, Counter>::default();
        let cold_start_seconds = Family::<FunctionLabel, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        let replicas = Family::<FunctionLabel, Gauge>::default();
        let async_queued = Gauge::default();
        let reserved_refused = Counter::default();
        registry.register(
            "baton_gateway_reserved_headers_refused",
            "Client requests refused for carrying headers only federation peers send",
            reserved_refused.clone(),
        );
        registry.register(
            "gateway_function_invocation",
            "Invocations completed, by function and status code",
            invocations.clone(),
        );
        registry.register(
            "gateway_functions_seconds",
            "Invocation duration in seconds",
            seconds.clone(),
        );
        registry.register(
            "baton_cold_starts",
            "Requests that had to create a sandbox",
            cold_starts.clone(),
        );
        registry.register(
            "baton_cold_start_seconds",
            "Time to create a sandbox for a request",
            cold_start_seconds.clone(),
        );
        registry.register(
            "gateway_service_count",
            "Sandboxes of each function",
            replicas.clone(),
        );
        registry.register(
            "baton_async_queue_depth",
            "Asynchronous invocations waiting to run",
            async_queued.clone(),
        );
        Metrics(Arc::new(Inner {
            registry,
            invocations,
            started: RwLock::default(),
            seconds,
            cold_starts,
            cold_start_seconds,
            replicas,
            async_queued,
            reserved_refused,
            totals: RwLock::default(),
        }))
    }

    pub(crate) fn started(&self, function: &str) {
        count(&self.0.started, function);
    }

    /// `gateway_function_invocation_started` in OpenMetrics text, typed `unknown` so its
    /// samples may keep OpenFaaS's name (a counter's must end in `_total`).
    fn render_started(&self, out: &mut String) {
        use std::fmt::Write as _;
        let started = self.0.started.read().unwrap();
        let mut names: Vec<&String> = started.keys().collect();
        names.sort();
        out.push_str(
            "# HELP gateway_function_invocation_started Invocations started, by function.\n",
        );
        out.push_str("# TYPE gateway_function_invocation_started unknown\n");
        for name in names {
            let n = started[name].load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "gateway_function_invocation_started{{function_name=\"{name}\"}} {n}"
            );
        }
    }

    pub(crate) fn finished(
        &self,
        function: &str,
        code: u16,
        elapsed: Duration,
        cold_start: Option<Duration>,
    ) {
        let labels = FunctionCode {
            function_name: function.to_owned(),
            code: code.to_string(),
        };
        self.0.invocations.get_or_create(&labels).inc();
        self.0
            .seconds
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        if let Some(cold) = cold_start {
            let label = FunctionLabel {
                function_name: function.to_owned(),
            };
            self.0.cold_starts.get_or_create(&label).inc();
            self.0
                .cold_start_seconds
                .get_or_create(&label)
                .observe(cold.as_secs_f64());
        }
        count(&self.0.totals, function);
    }

    pub(crate) fn total(&self, function: &str) -> u64 {
        self.0
            .totals
            .read()
            .unwrap()
            .get(function)
            .map_or(0, |t| t.load(Ordering::Relaxed))
    }

    pub(crate) fn reserved_refused(&self) {
        self.0.reserved_refused.inc();
    }

    pub(crate) fn set_async_queued(&self, depth: usize) {
        self.0.async_queued.set(depth as i64);
    }
}

/// Adds one to `function`'s count (a read lock on the common path).
fn count(counts: &RwLock<HashMap<String, AtomicU64>>, function: &str) {
    if let Some(n) = counts.read().unwrap().get(function) {
        n.fetch_add(1, Ordering::Relaxed);
        return;
    }
    counts
        .write()
        .unwrap()
        .entry(function.to_owned())
        .or_default()
        .fetch_add(1, Ordering::Relaxed);
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// `GET /metrics`.
pub(crate) async fn render(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    // Without a control plane (cluster mode, while it is down) the gauges keep their values;
    // with one, a deleted function's gauge goes.
    if let Ok(functions) = shared.admin.list().await {
        let metrics = &shared.metrics.0;
        metrics.replicas.clear();
        for status in functions {
            metrics
                .replicas
                .get_or_create(&FunctionLabel {
                    function_name: status.name,
                })
                .set(status.replicas as i64);
        }
    }
    let mut text = String::new();
    let encoded =
        prometheus_client::encoding::text::encode_registry(&mut text, &shared.metrics.0.registry)
            .map(|()| shared.metrics.render_started(&mut text))
            .and_then(|()| match &shared.extra_metrics {
                Some(extra) => extra(&mut text),
                None => Ok(()),
            })
            .and_then(|()| prometheus_client::encoding::text::encode_eof(&mut text));
    if let Err(error) = encoded {
        tracing::error!(%error, "encoding metrics");
    }
    (
        [(
            http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
}
