//! Sending the workload: many calls at a bounded concurrency (loading the graph, seeding
//! posts) and open-loop arrivals at a rate (the measured runs), latency from the intended
//! send time as wrk2 measures it.

use super::workload::{self, Kind};
use crate::suites::Http;
use futures_util::StreamExt;
use hdrhistogram::Histogram;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Picks a request's kind from a uniform draw in `[0, 1)`.
pub type Pick = fn(f64) -> Kind;

/// Most requests in flight in an open-loop run; arrivals beyond it are counted as dropped.
const MAX_IN_FLIGHT: usize = 8192;

/// Whether a reply is a success of the application: 200 and `"status": "success"` (the
/// timeline front ends answer a downstream failure with 200 and another status).
pub fn succeeded(status: u16, body: &[u8]) -> bool {
    status == 200
        && serde_json::from_slice::<Value>(body)
            .is_ok_and(|v| v.get("status").and_then(Value::as_str) == Some("success"))
}

/// Calls `function` with every body, `concurrency` at a time; the failures' messages (the
/// first few) and their count. Prints progress on stderr every 10 %.
pub async fn bulk(
    http: &Http,
    base: &str,
    function: &str,
    bodies: Vec<Value>,
    concurrency: usize,
    what: &str,
) -> (u64, Vec<String>) {
    bulk_accepting(http, base, function, bodies, concurrency, what, succeeded).await
}

/// [`bulk`], with `accept` saying which answers are successes.
pub async fn bulk_accepting(
    http: &Http,
    base: &str,
    function: &str,
    bodies: Vec<Value>,
    concurrency: usize,
    what: &str,
    accept: fn(u16, &[u8]) -> bool,
) -> (u64, Vec<String>) {
    let total = bodies.len();
    let url = format!("{base}/function/{function}");
    let done = std::sync::atomic::AtomicUsize::new(0);
    let started = Instant::now();
    let results: Vec<Option<String>> = futures_util::stream::iter(bodies)
        .map(|body| {
            let (http, url, done) = (http, &url, &done);
            async move {
                let result = http.call("POST", url, body.to_string()).await;
                let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                if total >= 10 && n % (total / 10) == 0 {
                    eprintln!(
                        "  {what}: {n} of {total} ({:.0} a second)",
                        n as f64 / started.elapsed().as_secs_f64()
                    );
                }
                match result {
                    Ok((status, body)) if accept(status, &body) => None,
                    Ok((status, body)) => Some(format!(
                        "{status} {}",
                        String::from_utf8_lossy(&body).trim()
                    )),
                    Err(e) => Some(format!("{e:#}")),
                }
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let failures: Vec<String> = results.into_iter().flatten().collect();
    let count = failures.len() as u64;
    (count, failures.into_iter().take(5).collect())
}

/// What an open-loop run measured, per kind of request.
pub struct Measured {
    /// Latency of the successful requests, microseconds.
    pub latency: BTreeMap<Kind, Histogram<u64>>,
    /// Requests that failed (any answer but success, or none), per kind.
    pub errors: BTreeMap<Kind, u64>,
    /// The first failure messages.
    pub samples: Vec<String>,
    /// Arrivals not sent because [`MAX_IN_FLIGHT`] requests were in flight.
    pub dropped: u64,
    /// How long arrivals were sent for.
    pub elapsed: Duration,
}

/// Sends requests at `rate` a second (exponential gaps, as wrk2's `-D exp`) for `duration`,
/// each of the kind `pick` draws, by a uniformly drawn user of `users`.
pub async fn open_loop(
    http: &Http,
    base: &str,
    rate: f64,
    duration: Duration,
    users: usize,
    pick: Pick,
    seed: u64,
) -> Measured {
    let mut rng = fastrand::Rng::with_seed(seed);
    let shared = Arc::new(Mutex::new(Measured {
        latency: Kind::ALL
            .iter()
            .map(|k| (*k, Histogram::new(3).expect("3 significant digits")))
            .collect(),
        errors: BTreeMap::new(),
        samples: Vec::new(),
        dropped: 0,
        elapsed: duration,
    }));
    let in_flight = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    let start = Instant::now();
    let mut next = start;
    loop {
        let gap = -(1.0 - rng.f64()).ln() / rate;
        next += Duration::from_secs_f64(gap);
        if next >= start + duration {
            break;
        }
        crate::load::wait_until(next).await;
        if in_flight.load(std::sync::atomic::Ordering::Relaxed) >= MAX_IN_FLIGHT {
            shared.lock().unwrap().dropped += 1;
            continue;
        }
        let kind = pick(rng.f64());
        let body = workload::request(&mut rng, users, kind).to_string();
        let url = format!("{base}/function/{}", kind.function());
        let (http, shared, in_flight, intended) =
            (http.clone(), shared.clone(), in_flight.clone(), next);
        in_flight.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tasks.spawn(async move {
            let result = http.call("POST", &url, body).await;
            let latency = intended.elapsed().as_micros() as u64;
            in_flight.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            let mut measured = shared.lock().unwrap();
            let failure = match result {
                Ok((status, body)) if succeeded(status, &body) => None,
                Ok((status, body)) => Some(format!(
                    "{status} {}",
                    String::from_utf8_lossy(&body)
                        .chars()
                        .take(300)
                        .collect::<String>()
                )),
                Err(e) => Some(format!("{e:#}")),
            };
            match failure {
                None => {
                    let _ = measured
                        .latency
                        .entry(kind)
                        .or_insert_with(|| Histogram::new(3).expect("3 significant digits"))
                        .record(latency.max(1));
                }
                Some(message) => {
                    *measured.errors.entry(kind).or_default() += 1;
                    if measured.samples.len() < 5 {
                        measured.samples.push(format!("{}: {message}", kind.name()));
                    }
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let mut measured = shared.lock().unwrap();
    Measured {
        latency: std::mem::take(&mut measured.latency),
        errors: std::mem::take(&mut measured.errors),
        samples: std::mem::take(&mut measured.samples),
        dropped: measured.dropped,
        elapsed: measured.elapsed,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn success_is_200_with_status_success() {
        assert!(super::succeeded(200, b"{\"status\":\"success\"}\n"));
        assert!(!super::succeeded(
            200,
            b"{\"status\":\"UserTimelineReadFrontendError\"}"
        ));
        assert!(!super::succeeded(
            500,
            b"exit status 1\n{\"status\":\"success\"}"
        ));
        assert!(!super::succeeded(200, b"not json"));
    }
}
