//! The replicated-state suite (`baton bench state`), on nodes or a cluster it starts itself.
//!
//! - allreduce (MISO's): 1000 calls of the `allreduce` function, each adding a chunk of 1000
//!   elements into a 1,000,000-element vector, 5 at a time, spread over the nodes; timed until
//!   every node reads the complete sum. Side by side, the same data through Redis: 1000
//!   awaited `SET`s of a chunk over a pool of 5 connections, then every "node" (5 readers)
//!   `MGET`s all chunks and sums them. The Redis side skips the function hop, so it is a lower
//!   bound of any function-based Redis allreduce. Before each run, the floor: the same 1000
//!   calls to `hello`, which touches no state, so what the state work adds can be read off.
//! - counter increments per second on one node through the local API, in batches and one per
//!   request.
//! - convergence: after a write on one node, the time until every other node has it.
//! - replication bytes per operation against the size of the full state MISO would ship, and
//!   each node's resident memory.

use super::{Http, LocalNode, bench_token, upload};
use crate::harness::Process;
use anyhow::{Context, bail};
use bytes::Bytes;
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const ELEMENTS: u64 = 1_000_000;
const CHUNK: u64 = 1000;
const CONCURRENCY: usize = 5;
/// Elements have values `(i % 10) + 1`: the complete vector sums to this.
const EXPECTED_SUM: f64 = (ELEMENTS / 10 * 55) as f64;

/// Longest a write may take to reach every node: a deadline against hangs.
const CONVERGE_DEADLINE: Duration = Duration::from_secs(60);

/// Longest the nodes may take to link to each other: a deadline against hangs.
const LINK_DEADLINE: Duration = Duration::from_secs(60);

/// What one run of the suite measures and on what.
#[derive(Debug, Clone)]
pub struct StateBench {
    /// The `baton` binary that is started.
    pub binary: PathBuf,
    /// Nodes (or workers, with `cluster`).
    pub nodes: usize,
    /// Allreduce runs.
    pub runs: usize,
    /// The Redis to compare with; `None` skips that side.
    pub redis: Option<String>,
    /// `async` or `durable`.
    pub durability: String,
    /// Seconds of each counter-throughput measurement.
    pub seconds: u64,
    /// Writes timed for convergence.
    pub writes: usize,
    /// A control plane, a gateway and `nodes` workers instead of `nodes` nodes.
    pub cluster: bool,
}

fn stats(mut samples: Vec<f64>) -> Value {
    samples.sort_by(f64::total_cmp);
    let at = |q: f64| samples[((samples.len() - 1) as f64 * q).round() as usize];
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    json!({"n": samples.len(), "mean": mean, "p50": at(0.5), "p99": at(0.99), "min": samples[0], "max": at(1.0)})
}

async fn start_nodes(
    config: &StateBench,
    http: &Http,
    token: &str,
) -> anyhow::Result<Vec<LocalNode>> {
    let (n, durability) = (config.nodes, config.durability.as_str());
    let ports: Vec<u16> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").map(|l| l.local_addr().unwrap().port()))
        .collect::<Result<_, _>>()?;
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("state.toml");
    std::fs::write(&file, format!("[state]\ndurability = \"{durability}\"\n"))?;
    let mut nodes = Vec::new();
    for (i, port) in ports.iter().enumerate() {
        let peers: Vec<String> = ports
            .iter()
            .filter(|p| *p != port)
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let env = [
            (
                "BATON_STATE_LISTEN".to_string(),
                format!("127.0.0.1:{port}"),
            ),
            ("BATON_STATE_PEERS".to_string(), peers.join(",")),
            ("BATON_CONFIG".to_string(), file.display().to_string()),
            ("BATON_TOKEN".to_string(), token.to_string()),
        ];
        eprintln!("starting node {}/{n}", i + 1);
        nodes.push(LocalNode::start(&config.binary, true, &env).await?);
    }
    await_links(http, &nodes).await?;
    Ok(nodes)
}

/// Waits until every node's state agent is linked to all the others.
async fn await_links(http: &Http, nodes: &[LocalNode]) -> anyhow::Result<()> {
    let deadline = Instant::now() + LINK_DEADLINE;
    let peers = (nodes.len() - 1) as f64;
    for node in nodes {
        let connected = "baton_state_peers_connected";
        http.await_metric(&node.metrics, connected, |n| n >= peers, deadline)
            .await?;
    }
    Ok(())
}

/// A cluster: a control plane, one gateway and `n` workers with their state agents (peers
/// through the control plane's membership). Each "node" is the gateway with one worker's
/// platform API: calls go through the gateway (the cluster places the sandboxes), reads go
/// to each worker. The other processes are returned to be kept alive.
async fn start_cluster(
    config: &StateBench,
    http: &Http,
    token: &str,
) -> anyhow::Result<(Vec<LocalNode>, Vec<Process>, tempfile::TempDir)> {
    let roles = super::roles::start_cluster(&super::roles::ClusterSpec {
        binary: &config.binary,
        workers: config.nodes,
        durability: &config.durability,
        token,
        gateway_listen: "127.0.0.1:0",
        worker_args: &[],
        gateway_args: &[],
    })
    .await?;
    let super::roles::ClusterRoles {
        control,
        workers,
        gateway,
        dir,
    } = roles;
    let url = gateway.url();
    upload(&url, token, "hello", baton_guests::HELLO).await?;
    upload(&url, token, "allreduce", baton_guests::ALLREDUCE).await?;
    let nodes = workers
        .into_iter()
        .map(|worker| LocalNode::worker(worker, url.clone(), token.to_owned()))
        .collect::<anyhow::Result<Vec<_>>>()?;
    // Every agent learns its peers from the control plane (a heartbeat) and links to them.
    await_links(http, &nodes).await?;
    Ok((nodes, vec![control, gateway], dir))
}

fn api(node: &LocalNode) -> &str {
    node.state_api.as_deref().unwrap_or_default()
}

/// Waits until `node` reads the complete sum of `vector`, by watching its version.
async fn await_sum(http: &Http, node: &LocalNode, vector: &str) -> anyhow::Result<()> {
    let url = format!("{}/v1/state/allreduce/{vector}?query=vector-sum", api(node));
    let mut version = 0;
    let deadline = Instant::now() + CONVERGE_DEADLINE;
    loop {
        if Instant::now() > deadline {
            bail!("{url}: the sum never arrived within {CONVERGE_DEADLINE:?}");
        }
        let (status, body) = http
            .call(
                "GET",
                &format!("{url}&after={version}&wait=5s"),
                Bytes::new(),
            )
            .await?;
        if status == 200 {
            let reading: Value = serde_json::from_slice(&body)?;
            if reading["value"].as_f64() == Some(EXPECTED_SUM) {
                return Ok(());
            }
            version = reading["version"].as_u64().unwrap_or(version);
        } else {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
}

/// One allreduce's times in ms: until every call returned, and until every node read the sum.
struct Timed {
    write: f64,
    total: f64,
}

/// POSTs to `url(node, chunk)` for each of the 1,000 chunks, [`CONCURRENCY`] at a time, chunk
/// `i` to node `i % nodes`; returns the milliseconds until every call returned.
async fn chunk_calls(
    http: &Http,
    nodes: &[LocalNode],
    url: impl Fn(&LocalNode, u64) -> String,
) -> anyhow::Result<f64> {
    let next = AtomicU64::new(0);
    let started = Instant::now();
    let workers = (0..CONCURRENCY).map(|_| async {
        loop {
            let chunk = next.fetch_add(1, Ordering::Relaxed);
            if chunk >= ELEMENTS / CHUNK {
                return anyhow::Ok(());
            }
            let url = url(&nodes[chunk as usize % nodes.len()], chunk);
            let (status, body) = http.call("POST", &url, Bytes::new()).await?;
            if status != 200 {
                bail!("{url}: {status} {}", String::from_utf8_lossy(&body));
            }
        }
    });
    for result in join_all(workers).await {
        result?;
    }
    Ok(started.elapsed().as_secs_f64() * 1e3)
}

/// The floor under any function-based allreduce: the same 1,000 calls, same concurrency and
/// spread, to `hello`, which does nothing with state.
async fn call_floor(http: &Http, nodes: &[LocalNode]) -> anyhow::Result<f64> {
    chunk_calls(http, nodes, |node, chunk| {
        format!("{}/function/hello?name={chunk}", node.url)
    })
    .await
}

async fn allreduce_baton(http: &Http, nodes: &[LocalNode], run: usize) -> anyhow::Result<Timed> {
    let vector = format!("run{run}");
    let started = Instant::now();
    let write = chunk_calls(http, nodes, |node, chunk| {
        format!(
            "{}/function/allreduce/{vector}?chunk={chunk}&size={CHUNK}",
            node.url
        )
    })
    .await?;
    for result in join_all(nodes.iter().map(|n| await_sum(http, n, &vector))).await {
        result?;
    }
    let total = started.elapsed().as_secs_f64() * 1e3;
    // Free the space for the next run (not timed).
    for node in nodes {
        let _ = http
            .call(
                "DELETE",
                &format!("{}/v1/state/allreduce/{vector}", api(node)),
                Bytes::new(),
            )
            .await;
    }
    Ok(Timed { write, total })
}

async fn allreduce_redis(
    pool: &[redis::aio::MultiplexedConnection],
    run: usize,
) -> anyhow::Result<f64> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let writers = pool.iter().cloned().map(|mut conn| {
        let next = next.clone();
        async move {
            loop {
                let chunk = next.fetch_add(1, Ordering::Relaxed);
                if chunk >= ELEMENTS / CHUNK {
                    return anyhow::Ok(());
                }
                let offset = chunk * CHUNK;
                let bytes: Vec<u8> = (offset..offset + CHUNK)
                    .flat_map(|i| ((i % 10 + 1) as f64).to_le_bytes())
                    .collect();
                let () = redis::cmd("SET")
                    .arg(format!("allreduce:{run}:{chunk}"))
                    .arg(bytes)
                    .query_async(&mut conn)
                    .await?;
            }
        }
    });
    for result in join_all(writers).await {
        result?;
    }
    let keys: Vec<String> = (0..ELEMENTS / CHUNK)
        .map(|c| format!("allreduce:{run}:{c}"))
        .collect();
    let readers = pool.iter().cloned().map(|mut conn| {
        let keys = keys.clone();
        async move {
            let chunks: Vec<Vec<u8>> = redis::cmd("MGET").arg(&keys).query_async(&mut conn).await?;
            let mut vector = vec![0.0f64; ELEMENTS as usize];
            for (c, chunk) in chunks.iter().enumerate() {
                for (j, bytes) in chunk.chunks_exact(8).enumerate() {
                    vector[c * CHUNK as usize + j] += f64::from_le_bytes(bytes.try_into().unwrap());
                }
            }
            let sum: f64 = vector.iter().sum();
            if sum != EXPECTED_SUM {
                bail!("redis allreduce summed to {sum}");
            }
            anyhow::Ok(())
        }
    });
    for result in join_all(readers).await {
        result?;
    }
    let elapsed = started.elapsed().as_secs_f64() * 1e3;
    let mut conn = pool[0].clone();
    let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut conn).await?;
    Ok(elapsed)
}

/// Counter increments per second on one node: `clients` connections each sending `per_request`
/// increments per request for `seconds`.
async fn counter_rate(
    http: &Http,
    node: &LocalNode,
    clients: usize,
    per_request: usize,
    seconds: u64,
) -> anyhow::Result<f64> {
    let done = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let body: Bytes = if per_request == 1 {
        json!({"op": "counter-add", "amount": 1}).to_string().into()
    } else {
        let batch: Vec<_> = (0..per_request)
            .map(|_| json!({"object": "rate", "op": "counter-add", "amount": 1}))
            .collect();
        json!(batch).to_string().into()
    };
    let url = if per_request == 1 {
        format!("{}/v1/state/bench/rate", api(node))
    } else {
        format!("{}/v1/state/bench", api(node))
    };
    let started = Instant::now();
    let workers = (0..clients).map(|_| {
        let (done, body, url) = (done.clone(), body.clone(), url.clone());
        async move {
            while Instant::now() < deadline {
                let (status, reply) = http.call("POST", &url, body.clone()).await?;
                if status != 200 {
                    bail!("counter add: {status} {}", String::from_utf8_lossy(&reply));
                }
                done.fetch_add(per_request, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }
    });
    for result in join_all(workers).await {
        result?;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

/// Milliseconds from a write's acknowledgement on one node until every other node has it.
async fn convergence(http: &Http, nodes: &[LocalNode], writes: usize) -> anyhow::Result<Vec<f64>> {
    let mut samples = Vec::with_capacity(writes);
    for w in 0..writes {
        let writer = w % nodes.len();
        let url = |n: &LocalNode| format!("{}/v1/state/bench/converge", api(n));
        let versions = join_all(nodes.iter().map(|n| {
            let u = url(n);
            async move { http.json("GET", &u, Bytes::new()).await }
        }))
        .await;
        let watchers = nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != writer)
            .map(|(i, n)| {
                let after = versions[i]
                    .as_ref()
                    .ok()
                    .and_then(|v| v["version"].as_u64())
                    .unwrap_or(0);
                let target = (w + 1) as i64;
                async move {
                    let mut after = after;
                    let deadline = Instant::now() + CONVERGE_DEADLINE;
                    loop {
                        if Instant::now() > deadline {
                            bail!("a write did not reach every node within {CONVERGE_DEADLINE:?}");
                        }
                        let reading = http
                            .json(
                                "GET",
                                &format!("{}?after={after}&wait=5s", url(n)),
                                Bytes::new(),
                            )
                            .await;
                        match reading {
                            Ok(r) if r["value"].as_i64() >= Some(target) => {
                                return Ok(Instant::now());
                            }
                            Ok(r) => after = r["version"].as_u64().unwrap_or(after),
                            Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
                        }
                    }
                }
            });
        let watching = join_all(watchers);
        let write = async {
            // Give the watchers a moment to be waiting before the write.
            tokio::time::sleep(Duration::from_millis(2)).await;
            let body = json!({"op": "counter-add", "amount": 1}).to_string();
            http.json("POST", &url(&nodes[writer]), body).await?;
            anyhow::Ok(Instant::now())
        };
        let (seen, acked) = tokio::join!(watching, write);
        let acked = acked?;
        let seen = seen.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
        let last = seen.into_iter().max().unwrap_or(acked);
        samples.push(last.saturating_duration_since(acked).as_secs_f64() * 1e3);
    }
    Ok(samples)
}

async fn sent_bytes(http: &Http, nodes: &[LocalNode]) -> anyhow::Result<f64> {
    let mut total = 0.0;
    for node in nodes {
        total += http
            .metric(&node.metrics, "baton_state_sent_bytes_total")
            .await?;
    }
    Ok(total)
}

/// Replication bytes per operation for `ops` adds of distinct members to one set on node 0,
/// against the full state's size at the end (what full-state shipping sends per message then).
async fn set_bytes(http: &Http, nodes: &[LocalNode], ops: usize) -> anyhow::Result<(f64, f64)> {
    let before = sent_bytes(http, nodes).await?;
    let url = format!("{}/v1/state/bench/members", api(&nodes[0]));
    for i in 0..ops {
        let body = json!({"op": "set-add", "member": format!("user-{i:06}")}).to_string();
        http.json("POST", &url, body).await?;
    }
    // Every add has reached every node before the bytes are counted.
    let deadline = Instant::now() + LINK_DEADLINE;
    for node in nodes {
        let url = format!("{}/v1/state/bench/members", api(node));
        loop {
            let reading = http.json("GET", &url, Bytes::new()).await?;
            if reading["value"].as_array().map_or(0, Vec::len) >= ops {
                break;
            }
            if Instant::now() > deadline {
                bail!("{url}: not every member arrived: {reading}");
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let delta = (sent_bytes(http, nodes).await? - before) / ops as f64 / (nodes.len() - 1) as f64;
    let state = http
        .metric(&nodes[0].metrics, "baton_state_state_bytes")
        .await?;
    Ok((delta, state))
}

/// Runs the suite; its report as JSON (see [`text`] for people).
pub async fn run(config: &StateBench) -> anyhow::Result<Value> {
    if config.nodes < 2 {
        bail!("--nodes must be at least 2");
    }
    if !matches!(config.durability.as_str(), "async" | "durable") {
        bail!("--durability must be `async` or `durable`");
    }
    let token = bench_token();
    let http = Http::new(&token);
    let (nodes, _roles, _dir) = match config.cluster {
        true => start_cluster(config, &http, &token).await?,
        false => (
            start_nodes(config, &http, &token).await?,
            Vec::new(),
            tempfile::tempdir()?,
        ),
    };
    let idle_rss: Vec<u64> = nodes.iter().filter_map(LocalNode::rss_bytes).collect();
    let redis = if let Some(url) = &config.redis {
        let client = redis::Client::open(url.as_str())?;
        let mut pool = Vec::new();
        for _ in 0..CONCURRENCY {
            pool.push(
                client
                    .get_multiplexed_async_connection()
                    .await
                    .with_context(|| format!("connecting to {url} (or pass --redis none)"))?,
            );
        }
        Some(pool)
    } else {
        None
    };
    let (mut baton_ms, mut baton_write_ms, mut redis_ms) = (Vec::new(), Vec::new(), Vec::new());
    let mut floor_ms = Vec::new();
    for run in 0..config.runs {
        floor_ms.push(call_floor(&http, &nodes).await?);
        let timed = allreduce_baton(&http, &nodes, run).await?;
        baton_ms.push(timed.total);
        baton_write_ms.push(timed.write);
        if let Some(pool) = &redis {
            redis_ms.push(allreduce_redis(pool, run).await?);
        }
        eprintln!(
            "allreduce run {}/{}: baton {:.1} ms (calls done at {:.1}; hello calls {:.1}){}",
            run + 1,
            config.runs,
            baton_ms[run],
            baton_write_ms[run],
            floor_ms[run],
            redis_ms
                .get(run)
                .map_or(String::new(), |r| format!(", redis {r:.1} ms"))
        );
    }
    let peak_rss: Vec<u64> = nodes.iter().filter_map(LocalNode::rss_bytes).collect();
    eprintln!("counter throughput on node 1...");
    let batched = counter_rate(&http, &nodes[0], 4, 1000, config.seconds).await?;
    let single = counter_rate(&http, &nodes[0], 64, 1, config.seconds).await?;
    eprintln!("convergence over {} writes...", config.writes);
    let converge = convergence(&http, &nodes, config.writes).await?;
    let (set_delta, set_state) = set_bytes(&http, &nodes, 2000).await?;
    let mib = |v: &[u64]| {
        v.iter()
            .map(|b| *b as f64 / (1 << 20) as f64)
            .collect::<Vec<_>>()
    };
    let baton_stats = stats(baton_ms);
    let redis_stats = (!redis_ms.is_empty()).then(|| stats(redis_ms));
    Ok(json!({
        "nodes": config.nodes,
        "cluster": config.cluster,
        "durability": config.durability,
        "allreduce_ms": {
            "baton": baton_stats,
            "baton_calls_done": stats(baton_write_ms),
            "hello_calls_floor": stats(floor_ms),
            "redis": redis_stats,
            "redis_over_baton_mean": redis_stats.as_ref().map(|r| r["mean"].as_f64().unwrap() / baton_stats["mean"].as_f64().unwrap()),
        },
        "counter_increments_per_second": {"batched_1000": batched, "one_per_request_64_clients": single},
        "convergence_ms": stats(converge),
        "set_add_replication_bytes_per_op_per_peer": set_delta,
        "set_full_state_bytes_at_end": set_state,
        "rss_mib": {"idle": mib(&idle_rss), "after_allreduce": mib(&peak_rss)},
    }))
}

/// The report for people.
pub fn text(r: &Value) -> String {
    use std::fmt::Write as _;
    let f = |v: &Value| v.as_f64().unwrap_or(0.0);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "allreduce (1M elements, 1000 chunks, 5 concurrent, {} {}, {}):",
        r["nodes"],
        if r["cluster"] == true {
            "workers"
        } else {
            "nodes"
        },
        r["durability"].as_str().unwrap_or_default()
    );
    let a = &r["allreduce_ms"];
    let _ = writeln!(
        out,
        "  baton  mean {:.1} ms  p50 {:.1}  p99 {:.1}",
        f(&a["baton"]["mean"]),
        f(&a["baton"]["p50"]),
        f(&a["baton"]["p99"])
    );
    let _ = writeln!(
        out,
        "         calls done after mean {:.1} ms, then every node reads the sum",
        f(&a["baton_calls_done"]["mean"])
    );
    let _ = writeln!(
        out,
        "  floor  mean {:.1} ms for the same 1000 calls to `hello` (no state)",
        f(&a["hello_calls_floor"]["mean"])
    );
    if a["redis"].is_object() {
        let _ = writeln!(
            out,
            "  redis  mean {:.1} ms  p50 {:.1}  p99 {:.1}",
            f(&a["redis"]["mean"]),
            f(&a["redis"]["p50"]),
            f(&a["redis"]["p99"])
        );
    }
    let c = &r["counter_increments_per_second"];
    let _ = writeln!(
        out,
        "counter increments/s on one node: {:.0} (batches of 1000), {:.0} (one per request)",
        f(&c["batched_1000"]),
        f(&c["one_per_request_64_clients"])
    );
    let _ = writeln!(
        out,
        "convergence after a write: p50 {:.2} ms  p99 {:.2} ms",
        f(&r["convergence_ms"]["p50"]),
        f(&r["convergence_ms"]["p99"])
    );
    let _ = writeln!(
        out,
        "set add: {:.0} replication bytes/op/peer; full state at the end {:.0} bytes",
        f(&r["set_add_replication_bytes_per_op_per_peer"]),
        f(&r["set_full_state_bytes_at_end"])
    );
    let list = |v: &Value| {
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|m| format!("{:.0}", f(m)))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    let _ = writeln!(
        out,
        "node RSS MiB idle {}, after allreduce {}",
        list(&r["rss_mib"]["idle"]),
        list(&r["rss_mib"]["after_allreduce"])
    );
    out
}
