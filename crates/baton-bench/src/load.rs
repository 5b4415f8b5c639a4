//! The load generator: closed loop (N connections, each sending as soon as its last answer
//! came) and open loop (arrivals at a constant rate or as a Poisson process, latency measured
//! from the intended send time, so a slow server cannot hide latency by slowing the
//! generator: no coordinated omission).

use anyhow::{Context, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How requests arrive.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// `connections` connections, each sending its next request when the last one finished.
    Closed {
        /// Concurrent connections.
        connections: usize,
    },
    /// Requests sent at `rate` per second, evenly spaced or as a Poisson process, over at most
    /// `connections` connections.
    Open {
        /// Requests per second.
        rate: f64,
        /// Exponential gaps (Poisson arrivals) rather than even ones.
        poisson: bool,
        /// Most requests in flight at once; arrivals beyond it count as `dropped`.
        connections: usize,
    },
}

/// What to send, how, and for how long.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Absolute `http://` URL.
    pub url: http::Uri,
    /// Method.
    pub method: http::Method,
    /// Headers added to every request.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    /// Body of every request, unless `template` is set.
    pub body: Bytes,
    /// A body rendered per request (`{{seq}}`, `{{random}}`).
    pub template: Option<crate::template::BodyTemplate>,
    /// Arrival shape.
    pub shape: Shape,
    /// Load sent but not recorded, before the measured part.
    pub warmup: Duration,
    /// Length of the measured part.
    pub duration: Duration,
    /// Stop after this many measured requests, if sooner.
    pub max_requests: Option<u64>,
    /// HTTP/2 (prior knowledge, h2c) instead of HTTP/1.1 keep-alive.
    pub http2: bool,
    /// Deadline of one request.
    pub timeout: Duration,
}

/// One completed request, for time series.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Milliseconds since the measured part began, at completion.
    pub at_ms: u32,
    /// Latency in microseconds.
    pub latency_us: u32,
}

/// What one run measured.
#[derive(Debug)]
pub struct LoadReport {
    /// Latency of every measured request that got an answer, in microseconds.
    pub latency: Histogram<u64>,
    /// Answers by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no answer: connection errors and timeouts, by message.
    pub errors: BTreeMap<String, u64>,
    /// Open loop only: arrivals not sent because `connections` were all busy.
    pub dropped: u64,
    /// Length of the measured part.
    pub elapsed: Duration,
    /// Completed requests in time order (bounded; see `samples_truncated`).
    pub samples: Vec<Sample>,
    /// True when more requests completed than `samples` keeps.
    pub samples_truncated: bool,
}

/// How early the open loop wakes before an arrival, to absorb the timer's granularity.
pub const TIMER_SLACK: Duration = Duration::from_micros(1500);

/// Yields until `instant`: the last stretch of a wait that slept until `TIMER_SLACK` before it.
pub async fn yield_until(instant: Instant) {
    while Instant::now() < instant {
        tokio::task::yield_now().await;
    }
}

/// How early [`wait_until`]'s thread sleep aims: a thread's sleep ends 50–100 µs late (the
/// kernel's timer slack and a wake-up), the rest is yielded through.
const THREAD_SLEEP_MARGIN: Duration = Duration::from_micros(150);

/// Waits until `instant` to within a few microseconds, for one arrival of an open loop at a
/// time. tokio's timer fires up to a millisecond late, so waiting on it alone would count up
/// to a millisecond of the generator's own in every latency, and waking early to yield
/// through the rest spun a core at 1,000 arrivals a second (a core the measured node, on the
/// same machine, then lacked). A blocking thread's sleep is late by a tenth of that and costs
/// nothing while it waits; only the last stretch is yielded through.
pub async fn wait_until(instant: Instant) {
    let Some(sleep) = instant
        .checked_sub(THREAD_SLEEP_MARGIN)
        .map(|wake| wake.saturating_duration_since(Instant::now()))
        .filter(|sleep| !sleep.is_zero())
    else {
        return yield_until(instant).await;
    };
    let _ = tokio::task::spawn_blocking(move || std::thread::sleep(sleep)).await;
    yield_until(instant).await;
}

/// Most samples kept for time series.
const MAX_SAMPLES: usize = 5_000_000;

impl LoadReport {
    /// Requests answered per second over the measured part.
    pub fn throughput(&self) -> f64 {
        self.latency.len() as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Requests that got no answer.
    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// A connection that sends requests: one HTTP/1.1 connection or a shared HTTP/2 one.
#[derive(Clone)]
enum Sender {
    Http1(Arc<tokio::sync::Mutex<http1::SendRequest<Full<Bytes>>>>),
    Http2(http2::SendRequest<Full<Bytes>>),
}

async fn connect(spec: &LoadSpec) -> anyhow::Result<Sender> {
    let authority = spec
        .url
        .authority()
        .context("the URL has no host")?
        .as_str()
        .to_owned();
    let stream = tokio::net::TcpStream::connect(&authority)
        .await
        .with_context(|| format!("connecting to {authority}"))?;
    stream.set_nodelay(true)?;
    let io = TokioIo::new(stream);
    if spec.http2 {
        let (sender, connection) = http2::handshake(TokioExecutor::new(), io)
            .await
            .context("HTTP/2 handshake")?;
        tokio::spawn(connection);
        Ok(Sender::Http2(sender))
    } else {
        let (sender, connection) = http1::handshake(io).await.context("HTTP/1.1 handshake")?;
        tokio::spawn(connection);
        Ok(Sender::Http1(Arc::new(tokio::sync::Mutex::new(sender))))
    }
}

fn request(spec: &LoadSpec) -> http::Request<Full<Bytes>> {
    let mut builder = http::Request::builder()
        .method(spec.method.clone())
        .uri(spec.url.clone());
    if !spec.http2 {
        builder = builder.header(
            http::header::HOST,
            spec.url
                .authority()
                .map(|a| a.as_str())
                .unwrap_or("localhost"),
        );
    }
    for (name, value) in &spec.headers {
        builder = builder.header(name, value);
    }
    let body = spec
        .template
        .as_ref()
        .map_or_else(|| spec.body.clone(), |t| t.render());
    builder.body(Full::new(body)).expect("validated parts")
}

/// Sends one request and reads its answer; `Err` when there was no answer.
async fn exchange(sender: &Sender, spec: &LoadSpec) -> Result<u16, String> {
    let send = async {
        let response = match sender {
            Sender::Http1(sender) => {
                let mut sender = sender.lock().await;
                sender.ready().await.map_err(|e| e.to_string())?;
                sender
                    .send_request(request(spec))
                    .await
                    .map_err(|e| e.to_string())?
            }
            Sender::Http2(sender) => {
                let mut sender = sender.clone();
                sender.ready().await.map_err(|e| e.to_string())?;
                sender
                    .send_request(request(spec))
                    .await
                    .map_err(|e| e.to_string())?
            }
        };
        let status = response.status().as_u16();
        response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?;
        Ok(status)
    };
    tokio::time::timeout(spec.timeout, send)
        .await
        .unwrap_or_else(|_| Err("timeout".into()))
}

/// What each sending task records; merged at the end.
struct Recorder {
    latency: Histogram<u64>,
    statuses: BTreeMap<u16, u64>,
    errors: BTreeMap<String, u64>,
    samples: Vec<Sample>,
}

impl Recorder {
    fn new() -> Self {
        Recorder {
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("static bounds"),
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
            samples: Vec::new(),
        }
    }

    fn record(&mut self, result: Result<u16, String>, latency: Duration, at: Duration) {
        match result {
            Ok(status) => {
                let micros = latency.as_micros().clamp(1, 3_600_000_000) as u64;
                self.latency.saturating_record(micros);
                *self.statuses.entry(status).or_default() += 1;
                if self.samples.len() < MAX_SAMPLES {
                    self.samples.push(Sample {
                        at_ms: at.as_millis() as u32,
                        latency_us: micros.min(u64::from(u32::MAX)) as u32,
                    });
                }
            }
            Err(error) => *self.errors.entry(error).or_default() += 1,
        }
    }

    fn merge(&mut self, other: Recorder) {
        self.latency.add(&other.latency).expect("same bounds");
        for (status, count) in other.statuses {
            *self.statuses.entry(status).or_default() += count;
        }
        for (error, count) in other.errors {
            *self.errors.entry(error).or_default() += count;
        }
        self.samples.extend(other.samples);
    }
}

/// Phases of a run, shared by its tasks.
struct Clock {
    start: Instant,
    measured_from: Instant,
    end: Instant,
    counted: AtomicU64,
    max_requests: Option<u64>,
    stopped: AtomicBool,
}

impl Clock {
    fn done(&self, now: Instant) -> bool {
        now >= self.end || self.stopped.load(Ordering::Relaxed)
    }

    /// Counts a measured request; stops the run at `max_requests`.
    fn count(&self) {
        let counted = self.counted.fetch_add(1, Ordering::Relaxed) + 1;
        if self.max_requests.is_some_and(|max| counted >= max) {
            self.stopped.store(true, Ordering::Relaxed);
        }
    }
}

/// Runs `spec`; `progress` is called about every 250 ms with the completed fraction.
pub async fn run(
    spec: &LoadSpec,
    progress: impl Fn(f64) + Send + Sync + 'static,
) -> anyhow::Result<LoadReport> {
    if spec.url.scheme_str() != Some("http") {
        bail!("target {} must be an http:// URL", spec.url);
    }
    let connections = match spec.shape {
        Shape::Closed { connections } | Shape::Open { connections, .. } => connections.max(1),
    };
    // One connection first, so an unreachable target is an error, not a run full of errors.
    let first = connect(spec).await?;
    let start = Instant::now();
    let clock = Arc::new(Clock {
        start,
        measured_from: start + spec.warmup,
        end: start + spec.warmup + spec.duration,
        counted: AtomicU64::new(0),
        max_requests: spec.max_requests,
        stopped: AtomicBool::new(false),
    });
    let spec = Arc::new(spec.clone());
    let ticker = {
        let clock = clock.clone();
        let total = (clock.end - clock.start).as_secs_f64();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                progress((clock.start.elapsed().as_secs_f64() / total).min(1.0));
            }
        })
    };
    let (recorder, dropped) = match spec.shape {
        Shape::Closed { .. } => (closed_loop(&spec, &clock, first, connections).await?, 0),
        Shape::Open { rate, poisson, .. } => {
            open_loop(&spec, &clock, first, connections, rate, poisson).await?
        }
    };
    ticker.abort();
    let elapsed = Instant::now()
        .min(clock.end)
        .saturating_duration_since(clock.measured_from);
    let mut samples = recorder.samples;
    let samples_truncated = samples.len() >= MAX_SAMPLES;
    samples.sort_by_key(|s| s.at_ms);
    Ok(LoadReport {
        latency: recorder.latency,
        statuses: recorder.statuses,
        errors: recorder.errors,
        dropped,
        elapsed,
        samples,
        samples_truncated,
    })
}

async fn closed_loop(
    spec: &Arc<LoadSpec>,
    clock: &Arc<Clock>,
    first: Sender,
    connections: usize,
) -> anyhow::Result<Recorder> {
    let mut tasks = Vec::new();
    for index in 0..connections {
        let sender = if index == 0 || spec.http2 {
            Some(first.clone())
        } else {
            None
        };
        let (spec, clock) = (spec.clone(), clock.clone());
        tasks.push(tokio::spawn(async move {
            let mut recorder = Recorder::new();
            let mut sender = match sender {
                Some(sender) => sender,
                None => match connect(&spec).await {
                    Ok(sender) => sender,
                    Err(error) => {
                        recorder.errors.insert(format!("{error:#}"), 1);
                        return recorder;
                    }
                },
            };
            loop {
                let sent = Instant::now();
                if clock.done(sent) {
                    return recorder;
                }
                let result = exchange(&sender, &spec).await;
                let now = Instant::now();
                if sent >= clock.measured_from && now <= clock.end {
                    recorder.record(result.clone(), now - sent, now - clock.measured_from);
                    clock.count();
                }
                if result.is_err() {
                    // The connection may be broken: open another, as wrk does.
                    match connect(&spec).await {
                        Ok(fresh) => sender = fresh,
                        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                    }
                }
            }
        }));
    }
    let mut total = Recorder::new();
    for task in tasks {
        total.merge(task.await?);
    }
    Ok(total)
}

async fn open_loop(
    spec: &Arc<LoadSpec>,
    clock: &Arc<Clock>,
    first: Sender,
    connections: usize,
    rate: f64,
    poisson: bool,
) -> anyhow::Result<(Recorder, u64)> {
    if !(rate > 0.0 && rate.is_finite()) {
        bail!("open-loop rate must be a positive number of requests per second");
    }
    let mut idle: Vec<Sender> = vec![first];
    if spec.http2 {
        idle.extend(std::iter::repeat_n(idle[0].clone(), connections - 1));
    }
    let (return_sender, mut returned) =
        tokio::sync::mpsc::unbounded_channel::<(Option<Sender>, Recorder)>();
    let mut total = Recorder::new();
    let mut in_flight = 0usize;
    let mut dropped = 0u64;
    let mut intended = clock.start;
    let mut rng = fastrand::Rng::new();
    loop {
        let gap = if poisson {
            -(1.0 - rng.f64()).ln() / rate
        } else {
            1.0 / rate
        };
        intended += Duration::from_secs_f64(gap);
        if clock.done(intended) || clock.done(Instant::now()) {
            break;
        }
        // Collect what finished while waiting for the next arrival.
        let sleep = wait_until(intended);
        tokio::pin!(sleep);
        loop {
            tokio::select! {
                _ = &mut sleep => break,
                Some((sender, recorder)) = returned.recv() => {
                    in_flight -= 1;
                    total.merge(recorder);
                    if let Some(sender) = sender { idle.push(sender); }
                }
            }
        }
        if in_flight >= connections {
            if intended >= clock.measured_from {
                dropped += 1;
            }
            continue;
        }
        in_flight += 1;
        let sender = idle.pop();
        let (spec, clock, back) = (spec.clone(), clock.clone(), return_sender.clone());
        tokio::spawn(async move {
            let mut recorder = Recorder::new();
            let sender = match sender {
                Some(sender) => Some(sender),
                None => match connect(&spec).await {
                    Ok(sender) => Some(sender),
                    Err(error) => {
                        recorder.errors.insert(format!("{error:#}"), 1);
                        None
                    }
                },
            };
            let mut keep = None;
            if let Some(sender) = sender {
                let result = exchange(&sender, &spec).await;
                let now = Instant::now();
                if intended >= clock.measured_from && now <= clock.end {
                    // From the intended send time, not the actual one.
                    recorder.record(result.clone(), now - intended, now - clock.measured_from);
                    clock.count();
                }
                if result.is_ok() {
                    keep = Some(sender);
                }
            }
            let _ = back.send((keep, recorder));
        });
    }
    drop(return_sender);
    while in_flight > 0 {
        match tokio::time::timeout(spec.timeout + Duration::from_secs(1), returned.recv()).await {
            Ok(Some((_, recorder))) => {
                in_flight -= 1;
                total.merge(recorder);
            }
            _ => break,
        }
    }
    Ok((total, dropped))
}
