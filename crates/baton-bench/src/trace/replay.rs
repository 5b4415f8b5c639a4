use super::Arrival;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What happened to one arrival.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Index of the function.
    pub function: usize,
    /// Execution time asked of the synthetic function, ms.
    pub duration_ms: u64,
    /// From the intended send time to the full response.
    pub response: Duration,
    /// The status, or `None` when there was no answer.
    pub status: Option<u16>,
    /// The node created a sandbox for this request.
    pub cold: bool,
}

impl Outcome {
    /// Response time over execution time.
    pub fn slowdown(&self) -> f64 {
        self.response.as_secs_f64() * 1000.0 / self.duration_ms.max(1) as f64
    }
}

/// Sends every arrival at its time to `{base}/function/{names[function]}?ms=…&mb=…`, at most
/// `max_in_flight` at once (beyond that an arrival fails as "generator saturated").
pub async fn replay(
    arrivals: &[Arrival],
    base: &str,
    names: &[String],
    timeout: Duration,
    max_in_flight: usize,
    progress: impl Fn(f64),
) -> Vec<Outcome> {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(max_in_flight)
        .build(connector);
    let permits = Arc::new(tokio::sync::Semaphore::new(max_in_flight));
    let start = Instant::now();
    let total = arrivals.last().map_or(Duration::ZERO, |a| a.at);
    let mut tasks = Vec::with_capacity(arrivals.len());
    let mut last_progress = Instant::now();
    for arrival in arrivals {
        let intended = start + arrival.at;
        crate::load::wait_until(intended).await;
        if last_progress.elapsed() > Duration::from_millis(250) {
            progress(arrival.at.as_secs_f64() / total.as_secs_f64().max(1e-9));
            last_progress = Instant::now();
        }
        let uri = format!(
            "{base}/function/{}?ms={}&mb={}",
            names[arrival.function], arrival.duration_ms, arrival.memory_mb
        );
        let (function, duration_ms) = (arrival.function, arrival.duration_ms);
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tasks.push(tokio::spawn(async move {
                Outcome {
                    function,
                    duration_ms,
                    response: Duration::ZERO,
                    status: None,
                    cold: false,
                }
            }));
            continue;
        };
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let request = http::Request::get(uri)
                .body(Full::new(Bytes::new()))
                .expect("valid URI");
            let exchange = async {
                let response = client.request(request).await.ok()?;
                let cold = response
                    .headers()
                    .get("x-baton-cold-start")
                    .is_some_and(|v| v == "true");
                let status = response.status().as_u16();
                response.into_body().collect().await.ok()?;
                Some((status, cold))
            };
            let result = tokio::time::timeout(timeout, exchange).await.ok().flatten();
            drop(permit);
            Outcome {
                function,
                duration_ms,
                response: intended.elapsed(),
                status: result.map(|r| r.0),
                cold: result.is_some_and(|r| r.1),
            }
        }));
    }
    let mut outcomes = Vec::with_capacity(tasks.len());
    for task in tasks {
        if let Ok(outcome) = task.await {
            outcomes.push(outcome);
        }
    }
    progress(1.0);
    outcomes
}

/// Per-function figures of a replay.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionSummary {
    /// The trace's function id.
    pub id: String,
    /// The name it was deployed under.
    pub name: String,
    /// Invocations sent.
    pub invocations: usize,
    /// Invocations without a 200 answer.
    pub failures: usize,
    /// Invocations that created a sandbox.
    pub cold_starts: usize,
    /// Median of response time over execution time.
    pub slowdown_median: f64,
    /// 99th percentile of the same.
    pub slowdown_p99: f64,
}

/// A replay's figures.
#[derive(Debug, Clone, Serialize)]
pub struct ReplaySummary {
    /// Invocations sent.
    pub invocations: usize,
    /// Invocations without a 200 answer.
    pub failures: usize,
    /// Invocations that created a sandbox.
    pub cold_starts: usize,
    /// What cold starts cost: over the successful cold invocations, response time minus
    /// execution time, summed (ms).
    pub cold_overhead_ms: f64,
    /// `cold_overhead_ms` over the execution time of every successful invocation: FaasCache's
    /// "cold-start overhead" as a share.
    pub cold_overhead_share: f64,
    /// Failures by cause: an HTTP status, or `no answer` (timeout, connection error,
    /// generator saturated).
    pub failure_causes: std::collections::BTreeMap<String, usize>,
    /// Median slowdown over every successful invocation.
    pub slowdown_median: f64,
    /// 99th-percentile slowdown over every successful invocation.
    pub slowdown_p99: f64,
    /// Median over functions of each function's median slowdown (Dirigent's per-function view).
    pub per_function_median_slowdown: f64,
    /// 99th percentile over functions of each function's median slowdown.
    pub per_function_p99_slowdown: f64,
    /// Each function.
    pub functions: Vec<FunctionSummary>,
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Summarises `outcomes` of the functions named `ids` and `names`.
pub fn summarise(outcomes: &[Outcome], ids: &[String], names: &[String]) -> ReplaySummary {
    let mut all: Vec<f64> = Vec::new();
    let mut functions = Vec::new();
    for (index, (id, name)) in ids.iter().zip(names).enumerate() {
        let mine: Vec<&Outcome> = outcomes.iter().filter(|o| o.function == index).collect();
        if mine.is_empty() {
            continue;
        }
        let mut slowdowns: Vec<f64> = mine
            .iter()
            .filter(|o| o.status == Some(200))
            .map(|o| o.slowdown())
            .collect();
        slowdowns.sort_by(f64::total_cmp);
        all.extend(&slowdowns);
        functions.push(FunctionSummary {
            id: id.clone(),
            name: name.clone(),
            invocations: mine.len(),
            failures: mine.iter().filter(|o| o.status != Some(200)).count(),
            cold_starts: mine.iter().filter(|o| o.cold).count(),
            slowdown_median: quantile(&slowdowns, 0.5),
            slowdown_p99: quantile(&slowdowns, 0.99),
        });
    }
    all.sort_by(f64::total_cmp);
    let mut medians: Vec<f64> = functions
        .iter()
        .filter(|f| f.failures < f.invocations)
        .map(|f| f.slowdown_median)
        .collect();
    medians.sort_by(f64::total_cmp);
    let mut failure_causes = std::collections::BTreeMap::new();
    for outcome in outcomes.iter().filter(|o| o.status != Some(200)) {
        let cause = outcome
            .status
            .map_or_else(|| "no answer".to_owned(), |s| s.to_string());
        *failure_causes.entry(cause).or_insert(0) += 1;
    }
    let succeeded = || outcomes.iter().filter(|o| o.status == Some(200));
    let cold_overhead_ms: f64 = succeeded()
        .filter(|o| o.cold)
        .map(|o| (o.response.as_secs_f64() * 1000.0 - o.duration_ms as f64).max(0.0))
        .sum();
    let executed_ms: f64 = succeeded().map(|o| o.duration_ms as f64).sum();
    ReplaySummary {
        cold_overhead_ms,
        cold_overhead_share: cold_overhead_ms / executed_ms.max(1.0),
        failure_causes,
        invocations: outcomes.len(),
        failures: outcomes.iter().filter(|o| o.status != Some(200)).count(),
        cold_starts: outcomes.iter().filter(|o| o.cold).count(),
        slowdown_median: quantile(&all, 0.5),
        slowdown_p99: quantile(&all, 0.99),
        per_function_median_slowdown: quantile(&medians, 0.5),
        per_function_p99_slowdown: quantile(&medians, 0.99),
        functions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(
        function: usize,
        duration_ms: u64,
        response_ms: u64,
        status: Option<u16>,
        cold: bool,
    ) -> Outcome {
        Outcome {
            function,
            duration_ms,
            response: Duration::from_millis(response_ms),
            status,
            cold,
        }
    }

    #[test]
    fn slowdown_is_response_over_execution_and_failures_are_counted_apart() {
        let outcomes = [
            outcome(0, 100, 150, Some(200), true),
            outcome(0, 100, 110, Some(200), false),
            outcome(0, 100, 120, Some(200), false),
            outcome(1, 10, 40, Some(200), true),
            outcome(1, 10, 0, None, false),
        ];
        let summary = summarise(
            &outcomes,
            &["a".into(), "b".into()],
            &["ta".into(), "tb".into()],
        );
        assert_eq!(
            (summary.invocations, summary.failures, summary.cold_starts),
            (5, 1, 2)
        );
        assert!((summary.functions[0].slowdown_median - 1.2).abs() < 1e-9);
        assert!((summary.functions[1].slowdown_median - 4.0).abs() < 1e-9);
        assert_eq!(summary.functions[1].failures, 1);
        // Across every success: 1.1, 1.2, 1.5, 4.0; the nearest-rank median is 1.5.
        assert!((summary.slowdown_median - 1.5).abs() < 1e-9);
        // Cold: 50 ms over 100, 30 over 10; executed 100 + 100 + 100 + 10.
        assert!((summary.cold_overhead_ms - 80.0).abs() < 1e-6);
        assert!((summary.cold_overhead_share - 80.0 / 310.0).abs() < 1e-9);
    }
}
