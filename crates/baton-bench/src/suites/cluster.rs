//! The cluster manager's suite (`baton bench cluster`), on processes it starts itself
//! (`baton control`, `baton gateway`, `baton worker`) on loopback.
//!
//! - `creations`: sandbox creations per second by one control plane, with fake workers
//!   (`--workers`, in one process, each with its own gRPC and data ports) and one gateway
//!   receiving every endpoint delta. Functions are registered, then all scaled at once to
//!   `--sandboxes` in total through the control plane's `Scale` call; timed until every
//!   sandbox is created and ready.
//! - `cold-starts`: end-to-end scale-from-zero latency with the wasm runtime: open-loop
//!   requests at `--rates` per second, each to a different function with no sandbox, timed
//!   from each request's intended send time to its full response, through the gateway.
//! - `recovery`: `--functions` functions and `--sandboxes` sandboxes on fake workers, then
//!   `kill -9` of the control plane and a restart; timed from the restart to the control
//!   plane serving with every sandbox adopted (its ready file), then checked.

use super::{Http, start_role, upload};
use crate::harness::Process;
use anyhow::{Context, bail};
use baton_api::cluster::{self as proto};
use baton_api::cluster_auth::{ClientAuth, ControlConn, control_conn};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Which measurement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Sandbox creations per second with fake workers.
    Creations,
    /// Scale-from-zero latency with the wasm runtime.
    ColdStarts,
    /// Control-plane restart to every sandbox adopted.
    Recovery,
}

impl std::str::FromStr for Scenario {
    type Err = anyhow::Error;

    fn from_str(name: &str) -> anyhow::Result<Self> {
        Ok(match name {
            "creations" => Scenario::Creations,
            "cold-starts" => Scenario::ColdStarts,
            "recovery" => Scenario::Recovery,
            other => {
                bail!("unknown scenario {other:?}; expected creations, cold-starts or recovery")
            }
        })
    }
}

/// What one run of the suite measures and on what.
#[derive(Debug, Clone)]
pub struct ClusterBench {
    /// The `baton` binary that is started.
    pub binary: PathBuf,
    /// The measurement.
    pub scenario: Scenario,
    /// Workers (fake ones for creations and recovery).
    pub workers: usize,
    /// Functions registered (creations, recovery).
    pub functions: usize,
    /// Sandboxes in total (creations, recovery).
    pub sandboxes: usize,
    /// Repetitions (creations, recovery).
    pub runs: usize,
    /// Arrival rates per second (cold starts).
    pub rates: Vec<f64>,
    /// Seconds at each rate (cold starts).
    pub seconds: u64,
    /// Longest wait for the workers to finish preparing (cold starts).
    pub settle: Duration,
    /// Cold starts through one `baton up` rather than a cluster.
    pub node: bool,
}

struct Setup {
    dir: tempfile::TempDir,
    port: u16,
    binary: PathBuf,
    control: Option<Process>,
    workers: Process,
    gateway: Process,
    client: ControlConn,
}

fn control_args(dir: &std::path::Path, port: u16) -> Vec<String> {
    vec![
        "control".into(),
        "--listen".into(),
        format!("127.0.0.1:{port}"),
        "--data-dir".into(),
        dir.join("control").display().to_string(),
        "--scale-to-zero-grace".into(),
        "10m".into(),
    ]
}

impl Setup {
    async fn start(binary: &Path, workers: usize, fake: bool) -> anyhow::Result<Setup> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let control = start_role(binary, &control_args(dir.path(), port), dir.path()).await?;
        let mut worker_args: Vec<String> = [
            "worker",
            "--control",
            &url,
            "--count",
            &workers.to_string(),
            "--id",
            "bench",
            "--data-dir",
            dir.path().join("workers").to_str().unwrap_or("workers"),
        ]
        .map(String::from)
        .to_vec();
        if fake {
            worker_args.extend(
                [
                    "--runtime",
                    "fake",
                    "--fake-delay",
                    "40ms",
                    "--cpu",
                    "64",
                    "--memory",
                    "256Gi",
                ]
                .map(String::from),
            );
        }
        let workers_proc = start_role(binary, &worker_args, dir.path()).await?;
        let gateway = start_role(
            binary,
            &["gateway", "--control", &url, "--listen", "127.0.0.1:0"].map(String::from),
            dir.path(),
        )
        .await?;
        let client = control_conn(&url, &ClientAuth::default())?;
        let setup = Setup {
            dir,
            port,
            binary: binary.to_path_buf(),
            control: Some(control),
            workers: workers_proc,
            gateway,
            client,
        };
        // Wait until every worker has registered.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let nodes = setup.nodes().await?;
            if nodes.workers.iter().filter(|w| w.alive).count() >= workers {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "only {} of {workers} workers registered",
                    nodes.workers.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(setup)
    }

    fn gateway_url(&self) -> String {
        self.gateway.url()
    }

    async fn deploy(&self, request: Value, upload: Option<Vec<u8>>) -> anyhow::Result<()> {
        self.client
            .clone()
            .deploy(proto::DeployRequest {
                request_json: request.to_string().into_bytes(),
                upload,
                mode: proto::DeployMode::Upsert as i32,
            })
            .await
            .map_err(|s| anyhow::anyhow!("deploy: {}", s.message()))?;
        Ok(())
    }

    async fn nodes(&self) -> anyhow::Result<proto::Nodes> {
        Ok(self
            .client
            .clone()
            .list_nodes(proto::Empty {})
            .await?
            .into_inner())
    }

    /// Waits until no worker holds a sandbox.
    async fn await_workers_empty(&self, deadline: Instant) -> anyhow::Result<()> {
        let http = Http::new("");
        for worker in &self.workers.ready().workers {
            let metrics = format!("http://{}/metrics", worker.data);
            http.await_metric(&metrics, "baton_worker_sandboxes", |n| n == 0.0, deadline)
                .await?;
        }
        Ok(())
    }

    async fn sandboxes(&self) -> anyhow::Result<usize> {
        Ok(self
            .nodes()
            .await?
            .workers
            .iter()
            .map(|w| w.sandboxes.len())
            .sum())
    }
}

/// Registers `functions` fake-runtime functions (process specs the fake workers ignore),
/// eight deploys at a time.
async fn register_fake(setup: &Setup, functions: usize, per: usize) -> anyhow::Result<()> {
    let names: Vec<String> = (0..functions).map(|i| format!("f{i}")).collect();
    for chunk in names.chunks(8) {
        futures_util::future::try_join_all(chunk.iter().map(|name| {
            setup.deploy(
                json!({"service": name, "envProcess": "true",
                       "labels": {"com.openfaas.scale.max": per.to_string()}}),
                None,
            )
        }))
        .await?;
    }
    Ok(())
}

async fn scale_all(setup: &Setup, functions: usize, per: u32) -> anyhow::Result<u64> {
    let ready = futures_util::future::try_join_all((0..functions).map(|i| {
        let mut client = setup.client.clone();
        async move {
            client
                .scale(proto::ScaleRequest {
                    function: format!("f{i}"),
                    replicas: per,
                    no_wait: false,
                })
                .await
                .map(|r| u64::from(r.into_inner().ready))
        }
    }))
    .await?;
    Ok(ready.iter().sum())
}

async fn creations(args: &ClusterBench) -> anyhow::Result<Value> {
    let setup = Setup::start(&args.binary, args.workers, true).await?;
    let per = args.sandboxes.div_ceil(args.functions);
    register_fake(&setup, args.functions, per).await?;
    let mut runs = Vec::new();
    for run in 0..args.runs {
        let started = Instant::now();
        let ready = scale_all(&setup, args.functions, per as u32).await?;
        let elapsed = started.elapsed().as_secs_f64();
        let counted = setup.sandboxes().await?;
        if ready as usize != args.functions * per || counted != args.functions * per {
            bail!(
                "run {run}: {ready} ready, {counted} listed, {} wanted",
                args.functions * per
            );
        }
        eprintln!(
            "run {run}: {counted} sandboxes on {} workers in {:.1} ms: {:.0}/s",
            args.workers,
            elapsed * 1e3,
            counted as f64 / elapsed
        );
        runs.push(counted as f64 / elapsed);
        // Back to zero for the next run.
        scale_all(&setup, args.functions, 0).await?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while setup.sandboxes().await? > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Let the workers finish draining and destroying before the next run.
        setup.await_workers_empty(deadline).await?;
    }
    runs.sort_by(f64::total_cmp);
    Ok(json!({
        "scenario": "creations", "workers": args.workers, "functions": args.functions,
        "sandboxes": args.functions * per, "fake_delay_ms": 40,
        "creations_per_second": {"runs": runs, "median": runs[runs.len() / 2]},
    }))
}

async fn recovery(args: &ClusterBench) -> anyhow::Result<Value> {
    let mut setup = Setup::start(&args.binary, args.workers, true).await?;
    let per = args.sandboxes.div_ceil(args.functions);
    register_fake(&setup, args.functions, per).await?;
    scale_all(&setup, args.functions, per as u32).await?;
    let before = setup.sandboxes().await?;
    let mut runs = Vec::new();
    for run in 0..args.runs {
        if let Some(mut control) = setup.control.take() {
            control.kill();
        }
        let started = Instant::now();
        let control = start_role(
            &setup.binary,
            &control_args(setup.dir.path(), setup.port),
            setup.dir.path(),
        )
        .await?;
        let ready = started.elapsed().as_secs_f64();
        setup.control = Some(control);
        let after = setup.sandboxes().await?;
        if after != before {
            bail!("run {run}: {before} sandboxes before the restart, {after} adopted");
        }
        eprintln!(
            "run {run}: restarted and reconciled {after} sandboxes in {:.1} ms",
            ready * 1e3
        );
        runs.push(ready * 1e3);
    }
    runs.sort_by(f64::total_cmp);
    Ok(json!({
        "scenario": "recovery", "workers": args.workers, "functions": args.functions,
        "sandboxes": before,
        "restart_to_reconciled_ms": {"runs": runs, "median": runs[runs.len() / 2], "max": runs[runs.len() - 1]},
    }))
}

/// Where cold starts are measured: a cluster of processes, or one `baton up`.
enum ColdTarget {
    Cluster(Box<Setup>),
    Node {
        node: Box<Process>,
        url: String,
        token: String,
        _dir: tempfile::TempDir,
    },
}

impl ColdTarget {
    async fn start(args: &ClusterBench) -> anyhow::Result<ColdTarget> {
        if !args.node {
            return Ok(ColdTarget::Cluster(Box::new(
                Setup::start(&args.binary, args.workers, false).await?,
            )));
        }
        let dir = tempfile::tempdir()?;
        let data = dir.path().join("node");
        let up = [
            "up",
            "--listen",
            "127.0.0.1:0",
            "--examples",
            "false",
            "--data-dir",
            data.to_str().unwrap_or("node"),
        ]
        .map(String::from);
        let node = start_role(&args.binary, &up, dir.path()).await?;
        let url = node.url();
        // Without a token of its own, a node makes one in its data directory.
        let token = std::fs::read_to_string(data.join("admin-token"))
            .context("the node's admin token")?
            .trim()
            .to_owned();
        let node = Box::new(node);
        Ok(ColdTarget::Node {
            node,
            url,
            token,
            _dir: dir,
        })
    }

    fn gateway_url(&self) -> String {
        match self {
            ColdTarget::Cluster(setup) => setup.gateway_url(),
            ColdTarget::Node { url, .. } => url.clone(),
        }
    }

    async fn deploy(&self, name: &str, component: &[u8]) -> anyhow::Result<()> {
        let (url, token) = match self {
            ColdTarget::Cluster(setup) => {
                return setup
                    .deploy(json!({"service": name}), Some(component.to_vec()))
                    .await;
            }
            ColdTarget::Node { url, token, .. } => (url, token),
        };
        upload(url, token, name, component).await
    }

    /// Waits until the workers have prepared the `functions` deployed and their CPU is
    /// idle again, at most until `deadline`.
    async fn settle(&self, functions: usize, deadline: Instant) -> anyhow::Result<()> {
        if let ColdTarget::Cluster(setup) = self {
            let http = Http::new("");
            for worker in &setup.workers.ready().workers {
                let metrics = format!("http://{}/metrics", worker.data);
                let prepared = "baton_worker_functions_prepared";
                if let Err(error) = http
                    .await_metric(&metrics, prepared, |n| n >= functions as f64, deadline)
                    .await
                {
                    eprintln!("settling: {error:#}");
                    return Ok(());
                }
            }
        }
        while Instant::now() < deadline {
            let idle = match self {
                ColdTarget::Cluster(setup) => {
                    let nodes = setup.nodes().await?;
                    nodes.workers.iter().all(|w| w.cpu_used < 0.05)
                }
                ColdTarget::Node { node, .. } => {
                    let cpu = |pid: u32| -> Option<f64> {
                        let stat = procfs::process::Process::new(pid as i32)
                            .ok()?
                            .stat()
                            .ok()?;
                        Some((stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64)
                    };
                    let before = cpu(node.pid()).unwrap_or_default();
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    // Less than 5 % of a core over the half second.
                    cpu(node.pid()).unwrap_or_default() - before <= 0.025
                }
            };
            if idle {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        Ok(())
    }
}

async fn cold_starts(args: &ClusterBench) -> anyhow::Result<Value> {
    let setup = ColdTarget::start(args).await?;
    let component = baton_guests::HELLO.to_vec();
    let rates = &args.rates;
    let per_rate: Vec<usize> = rates
        .iter()
        .map(|r| (r * args.seconds as f64).ceil() as usize)
        .collect();
    let total: usize = per_rate.iter().sum();
    eprintln!("deploying {total} functions ...");
    // A node takes two uploads at once (more are 429); the control plane's gRPC has no limit.
    let at_once = if args.node { 2 } else { 8 };
    for chunk in (0..total).collect::<Vec<_>>().chunks(at_once) {
        futures_util::future::try_join_all(chunk.iter().map(|i| {
            let name = format!("cold{i}");
            let (setup, component) = (&setup, &component);
            async move { setup.deploy(&name, component).await }
        }))
        .await?;
    }
    // Let every worker finish preparing (the pre-pull each deploy triggers): wait until the
    // workers report an idle CPU, at most `--settle` seconds.
    setup.settle(total, Instant::now() + args.settle).await?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let gateway = setup.gateway_url();
    // Warm the gateway's connections to itself and the path through one function.
    let warm = format!("{gateway}/function/cold0");
    let _ = client.get(warm.parse()?).await;
    let mut results = Vec::new();
    let mut next = 1usize;
    for (rate, count) in rates.iter().zip(per_rate) {
        let count = count.min(total - next);
        let latencies = Arc::new(std::sync::Mutex::new(Vec::with_capacity(count)));
        let failures = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let start =
            tokio::time::Instant::now() + Duration::from_millis(100) + crate::load::TIMER_SLACK;
        let mut tasks = Vec::new();
        for k in 0..count {
            let intended = start + Duration::from_secs_f64(k as f64 / rate);
            let url: http::Uri = format!("{gateway}/function/cold{}", next + k).parse()?;
            let (client, latencies, failures) =
                (client.clone(), latencies.clone(), failures.clone());
            tasks.push(tokio::spawn(async move {
                // Wake early and yield to the arrival: the timer alone is up to 1 ms late,
                // which latency measured from the intended time would count.
                tokio::time::sleep_until(intended - crate::load::TIMER_SLACK).await;
                crate::load::yield_until(intended.into_std()).await;
                match client.get(url).await {
                    Ok(response) if response.status() == 200 => {
                        let cold = response
                            .headers()
                            .get("x-baton-cold-start")
                            .is_some_and(|v| v == "true");
                        let _ = http_body_util::BodyExt::collect(response.into_body()).await;
                        let us = intended.elapsed().as_secs_f64() * 1e6;
                        if cold {
                            latencies.lock().unwrap().push(us);
                        } else {
                            failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    _ => {
                        failures.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            }));
        }
        for task in tasks {
            task.await?;
        }
        next += count;
        let mut l = latencies.lock().unwrap().clone();
        l.sort_by(f64::total_cmp);
        let at = |q: f64| {
            l.get(((l.len().max(1) - 1) as f64 * q).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        let failed = failures.load(std::sync::atomic::Ordering::Relaxed);
        eprintln!(
            "{rate}/s: {} cold starts, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, {failed} not cold or failed",
            l.len(),
            at(0.5) / 1e3,
            at(0.99) / 1e3,
            at(1.0) / 1e3
        );
        results.push(
            json!({"rate": rate, "cold_starts": l.len(), "not_cold_or_failed": failed,
            "p50_ms": at(0.5) / 1e3, "p99_ms": at(0.99) / 1e3, "max_ms": at(1.0) / 1e3}),
        );
    }
    Ok(
        json!({"scenario": "cold-starts", "target": if args.node { "baton up" } else { "cluster" },
            "workers": if args.node { 1 } else { args.workers }, "runtime": "wasm (hello)", "rates": results}),
    )
}

/// Runs the suite; its report as JSON.
pub async fn run(config: &ClusterBench) -> anyhow::Result<Value> {
    match config.scenario {
        Scenario::Creations => creations(config).await,
        Scenario::ColdStarts => cold_starts(config).await,
        Scenario::Recovery => recovery(config).await,
    }
}
