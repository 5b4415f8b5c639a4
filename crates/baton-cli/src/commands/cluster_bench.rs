//! `baton bench cluster`: the cluster manager's benchmarks, on processes it starts itself
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
//!   plane serving with every sandbox adopted (its readiness line), then checked.

use crate::cli::BenchClusterArgs;
use anyhow::{Context, bail};
use baton_api::cluster::{self as proto};
use baton_api::cluster_auth::{ClientAuth, ControlConn, control_conn};
use serde_json::{Value, json};
use std::process::{ExitCode, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};

/// A role process, killed on drop.
pub(super) struct Proc {
    pub(super) child: tokio::process::Child,
    /// Its readiness line.
    pub(super) line: String,
}

impl Proc {
    /// The first word after `prefix` in the readiness line: the address a role announced.
    pub(super) fn announced(&self, prefix: &str) -> String {
        self.line
            .strip_prefix(prefix)
            .and_then(|r| r.split_whitespace().next())
            .unwrap_or_default()
            .to_owned()
    }
}

/// Starts `baton <args>` and waits for its stdout line starting with `ready`.
pub(super) async fn spawn(args: &[String], ready: &str) -> anyhow::Result<Proc> {
    let mut child = tokio::process::Command::new(std::env::current_exe()?)
        .args(args)
        .env("BATON_LOG", "warn")
        .env_remove("BATON_TOKEN")
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    let line = tokio::time::timeout(Duration::from_secs(300), async {
        while let Some(line) = lines.next_line().await? {
            if line.starts_with(ready) {
                return anyhow::Ok(line);
            }
        }
        bail!("baton {args:?} exited before it was ready")
    })
    .await
    .context("a role did not get ready within 300 s")??;
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(Proc { child, line })
}

struct Setup {
    dir: tempfile::TempDir,
    port: u16,
    control: Option<Proc>,
    _workers: Proc,
    gateway: Proc,
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
    async fn start(workers: usize, fake: bool) -> anyhow::Result<Setup> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let url = format!("http://127.0.0.1:{port}");
        let control = spawn(&control_args(dir.path(), port), "baton control listening").await?;
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
        let ready = format!(
            "baton worker bench{}",
            if workers > 1 {
                format!("-{}", workers - 1)
            } else {
                String::new()
            }
        );
        let workers_proc = spawn(&worker_args, &ready).await?;
        let gateway = spawn(
            &["gateway", "--control", &url, "--listen", "127.0.0.1:0"].map(String::from),
            "baton gateway listening on ",
        )
        .await?;
        let client = control_conn(&url, &ClientAuth::default())?;
        let setup = Setup {
            dir,
            port,
            control: Some(control),
            _workers: workers_proc,
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
        self.gateway.announced("baton gateway listening on ")
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
                })
                .await
                .map(|r| u64::from(r.into_inner().ready))
        }
    }))
    .await?;
    Ok(ready.iter().sum())
}

async fn creations(args: &BenchClusterArgs) -> anyhow::Result<Value> {
    let setup = Setup::start(args.workers, true).await?;
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
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    runs.sort_by(f64::total_cmp);
    Ok(json!({
        "scenario": "creations", "workers": args.workers, "functions": args.functions,
        "sandboxes": args.functions * per, "fake_delay_ms": 40,
        "creations_per_second": {"runs": runs, "median": runs[runs.len() / 2]},
    }))
}

async fn recovery(args: &BenchClusterArgs) -> anyhow::Result<Value> {
    let mut setup = Setup::start(args.workers, true).await?;
    let per = args.sandboxes.div_ceil(args.functions);
    register_fake(&setup, args.functions, per).await?;
    scale_all(&setup, args.functions, per as u32).await?;
    let before = setup.sandboxes().await?;
    let mut runs = Vec::new();
    for run in 0..args.runs {
        if let Some(mut control) = setup.control.take() {
            control.child.kill().await?;
        }
        let started = Instant::now();
        let control = spawn(
            &control_args(setup.dir.path(), setup.port),
            "baton control listening",
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
        node: Box<Proc>,
        url: String,
        token: String,
        _dir: tempfile::TempDir,
    },
}

impl ColdTarget {
    async fn start(args: &BenchClusterArgs) -> anyhow::Result<ColdTarget> {
        if !args.node {
            return Ok(ColdTarget::Cluster(Box::new(
                Setup::start(args.workers, false).await?,
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
        let node = spawn(&up, "baton listening on ").await?;
        let url = node.announced("baton listening on ");
        let token = crate::token::read(&data).context("the node's admin token")?;
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

    /// Waits until the workers have finished preparing what was deployed (their CPU is
    /// idle), at most until `deadline`.
    async fn settle(&self, deadline: Instant) -> anyhow::Result<()> {
        tokio::time::sleep(Duration::from_secs(2)).await;
        while Instant::now() < deadline {
            let idle = match self {
                ColdTarget::Cluster(setup) => {
                    let nodes = setup.nodes().await?;
                    nodes.workers.iter().all(|w| w.cpu_used < 0.05)
                }
                ColdTarget::Node { node, .. } => {
                    let ticks = |pid| -> Option<f64> {
                        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                        let after = stat
                            .rsplit_once(')')?
                            .1
                            .split_whitespace()
                            .collect::<Vec<_>>();
                        Some(
                            after.get(11)?.parse::<f64>().ok()?
                                + after.get(12)?.parse::<f64>().ok()?,
                        )
                    };
                    let pid = node.child.id().unwrap_or_default();
                    let before = ticks(pid).unwrap_or_default();
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    let used = ticks(pid).unwrap_or_default() - before;
                    // Less than 5 % of a core over the half second.
                    used <= 0.025 * procfs_ticks() as f64
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

/// Deploys `component` as `name` through the gateway at `url` (`POST /system/functions`).
pub(super) async fn upload(
    url: &str,
    token: &str,
    name: &str,
    component: &[u8],
) -> anyhow::Result<()> {
    let request = http::Request::post(format!("{url}/system/functions"))
        .header("content-type", "application/wasm")
        .header("x-baton-deployment", json!({"service": name}).to_string())
        .header("authorization", format!("Bearer {token}"))
        .body(http_body_util::Full::new(bytes::Bytes::copy_from_slice(
            component,
        )))?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    let response = client.request(request).await?;
    if !response.status().is_success() {
        bail!("deploying {name}: {}", response.status());
    }
    Ok(())
}

/// Clock ticks per second, as `/proc/<pid>/stat` counts CPU time.
fn procfs_ticks() -> u64 {
    // SAFETY: sysconf takes an integer name and reads no memory of ours.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).unwrap_or(100)
}

async fn cold_starts(args: &BenchClusterArgs) -> anyhow::Result<Value> {
    let setup = ColdTarget::start(args).await?;
    let component = baton_guests::HELLO.to_vec();
    let rates: Vec<f64> = args
        .rates
        .split(',')
        .map(|r| r.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .context("--rates: comma-separated numbers")?;
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
    setup
        .settle(Instant::now() + Duration::from_secs(args.settle))
        .await?;
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
        let start = tokio::time::Instant::now()
            + Duration::from_millis(100)
            + baton_bench::load::TIMER_SLACK;
        let mut tasks = Vec::new();
        for k in 0..count {
            let intended = start + Duration::from_secs_f64(k as f64 / rate);
            let url: http::Uri = format!("{gateway}/function/cold{}", next + k).parse()?;
            let (client, latencies, failures) =
                (client.clone(), latencies.clone(), failures.clone());
            tasks.push(tokio::spawn(async move {
                // Wake early and yield to the arrival: the timer alone is up to 1 ms late,
                // which latency measured from the intended time would count.
                tokio::time::sleep_until(intended - baton_bench::load::TIMER_SLACK).await;
                baton_bench::load::yield_until(intended.into_std()).await;
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

pub async fn run(args: BenchClusterArgs) -> anyhow::Result<ExitCode> {
    let result = match args.scenario.as_str() {
        "creations" => creations(&args).await?,
        "cold-starts" => cold_starts(&args).await?,
        "recovery" => recovery(&args).await?,
        other => bail!("unknown scenario {other:?}; expected creations, cold-starts or recovery"),
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&result)?);
    } else {
        println!("{result:#}");
    }
    Ok(ExitCode::SUCCESS)
}
