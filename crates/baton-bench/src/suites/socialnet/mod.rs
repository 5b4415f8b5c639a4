//! `baton bench socialnet`: DeathStarBench's social network on Baton, measured the way
//! DeathStarBench measures it. Starts a node (or a cluster of workers), deploys
//! `apps/socialnet`, loads the `socfb-Reed98` graph (every user with
//! `register-user-with-id`, every edge followed both ways), seeds posts, then:
//! - per request type alone at one rate: function invocations and CPU per request;
//! - compose-post alone at each `--compose-rates`;
//! - the mixed workload (60/30/10) open-loop at each `--rates`, p50/p90/p99 per type.

mod drive;
mod target;
pub mod workload;

use anyhow::{Context, bail};
use drive::Measured;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use target::Target;
use workload::{Graph, Kind};

/// What to run.
#[derive(Debug, Clone)]
pub struct SocialBench {
    /// The `baton` binary whose roles are started.
    pub binary: PathBuf,
    /// The directory holding `socfb-Reed98.nodes` and `socfb-Reed98.edges` (or another graph
    /// with the same two files, named by the directory).
    pub graph: PathBuf,
    /// Offered rates of the mixed workload, requests a second.
    pub rates: Vec<f64>,
    /// Offered rates of compose-post alone.
    pub compose_rates: Vec<f64>,
    /// Seconds each rate is measured.
    pub seconds: u64,
    /// Posts per user seeded before measuring, on average.
    pub seed_posts: u32,
    /// Rate of the per-type runs that count invocations and CPU.
    pub profile_rate: f64,
    /// Workers of a cluster (control plane, gateway, workers with their state agents);
    /// `None` for one `baton up` node.
    pub workers: Option<usize>,
    /// `durable` or `async` state writes.
    pub durability: String,
    /// Calls at once while loading the graph and seeding.
    pub load_concurrency: usize,
    /// Where the JSON and SVG go.
    pub out: Option<PathBuf>,
}

fn read_graph(dir: &std::path::Path) -> anyhow::Result<Graph> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("the graph directory has no name")?;
    let read = |ext: &str| {
        let path = dir.join(format!("{name}.{ext}"));
        std::fs::read_to_string(&path).with_context(|| {
            format!(
                "reading {} (DeathStarBench ships the graph in \
                 socialNetwork/datasets/social-graph/{name}/; pass its directory with --graph)",
                path.display()
            )
        })
    };
    Graph::parse(&read("nodes")?, &read("edges")?).map_err(anyhow::Error::msg)
}

fn ms(h: &hdrhistogram::Histogram<u64>, q: f64) -> f64 {
    if h.is_empty() {
        0.0
    } else {
        h.value_at_quantile(q) as f64 / 1000.0
    }
}

fn latency_json(h: &hdrhistogram::Histogram<u64>) -> Value {
    json!({"requests": h.len(), "p50_ms": ms(h, 0.5), "p90_ms": ms(h, 0.9),
           "p99_ms": ms(h, 0.99), "max_ms": ms(h, 1.0)})
}

fn measured_json(rate: f64, m: &Measured) -> Value {
    let mut all = hdrhistogram::Histogram::<u64>::new(3).expect("3 significant digits");
    let mut kinds = serde_json::Map::new();
    for (kind, h) in &m.latency {
        all.add(h).expect("same bounds");
        let mut entry = latency_json(h);
        entry["errors"] = json!(m.errors.get(kind).copied().unwrap_or(0));
        if !h.is_empty() || entry["errors"] != 0 {
            kinds.insert(kind.name().into(), entry);
        }
    }
    let errors: u64 = m.errors.values().sum();
    json!({
        "offered_rps": rate,
        "achieved_rps": (all.len() + errors) as f64 / m.elapsed.as_secs_f64(),
        "all": latency_json(&all),
        "by_type": kinds,
        "errors": errors,
        "dropped": m.dropped,
        "error_samples": m.samples,
    })
}

/// Loads the graph: registrations, then both follows of every edge.
async fn load_graph(config: &SocialBench, target: &Target, graph: &Graph) -> anyhow::Result<Value> {
    let started = Instant::now();
    let bodies = (0..graph.users).map(workload::registration).collect();
    eprintln!("registering {} users", graph.users);
    let (failed, samples) = drive::bulk(
        &target.http,
        &target.url,
        "register-user-with-id",
        bodies,
        config.load_concurrency,
        "registered",
    )
    .await;
    if failed > 0 {
        bail!("{failed} registrations failed, e.g. {samples:?}");
    }
    let registered = started.elapsed();
    let follows: Vec<Value> = graph
        .edges
        .iter()
        .flat_map(|&(u, v)| [(u, v), (v, u)])
        .map(|(u, v)| json!({"user_id": u.to_string(), "followee_id": v.to_string()}))
        .collect();
    eprintln!(
        "following {} edges both ways ({} calls)",
        graph.edges.len(),
        follows.len()
    );
    let (failed, samples) = drive::bulk(
        &target.http,
        &target.url,
        "social-graph-follow",
        follows,
        config.load_concurrency,
        "followed",
    )
    .await;
    if failed > 0 {
        bail!("{failed} follows failed, e.g. {samples:?}");
    }
    let followed = started.elapsed() - registered;
    let mut rng = fastrand::Rng::with_seed(1);
    let mut posts: Vec<Value> = Vec::new();
    for author in 0..graph.users {
        for _ in 0..workload::seeded_posts(&mut rng, config.seed_posts) {
            posts.push(workload::compose(&mut rng, graph.users, author));
        }
    }
    eprintln!("seeding {} posts", posts.len());
    let seeded_count = posts.len();
    let (failed, samples) = drive::bulk(
        &target.http,
        &target.url,
        "compose-post-frontend",
        posts,
        config.load_concurrency,
        "posted",
    )
    .await;
    if failed > 0 {
        bail!("{failed} seeded posts failed, e.g. {samples:?}");
    }
    let seeded = started.elapsed() - registered - followed;
    Ok(json!({
        "users": graph.users, "edges": graph.edges.len(), "follow_calls": graph.edges.len() * 2,
        "seeded_posts": seeded_count,
        "register_s": registered.as_secs_f64(), "follow_s": followed.as_secs_f64(),
        "seed_s": seeded.as_secs_f64(),
    }))
}

/// Each request type alone at `profile_rate`: invocations and CPU per request.
async fn profile(
    config: &SocialBench,
    target: &Target,
    users: usize,
) -> anyhow::Result<Vec<Value>> {
    let mut rows = Vec::new();
    let picks: [(Kind, drive::Pick); 3] = [
        (Kind::ReadHomeTimeline, |_| Kind::ReadHomeTimeline),
        (Kind::ReadUserTimeline, |_| Kind::ReadUserTimeline),
        (Kind::ComposePost, |_| Kind::ComposePost),
    ];
    // What the target burns idle (heartbeats, replication rounds), taken off each run's CPU
    // so the figure is what the requests cost.
    let idle_for = Duration::from_secs(3);
    let idle_cpu = target.cpu_seconds();
    tokio::time::sleep(idle_for).await;
    let idle_rate = (target.cpu_seconds() - idle_cpu) / idle_for.as_secs_f64();
    for (kind, pick) in picks {
        let invocations = target.invocations().await?;
        let composed = target.composed().await?;
        let cpu = target.cpu_seconds();
        let started = Instant::now();
        let duration = Duration::from_secs(config.seconds);
        let m = drive::open_loop(
            &target.http,
            &target.url,
            config.profile_rate,
            duration,
            users,
            pick,
            7,
        )
        .await;
        let cpu = target.cpu_seconds() - cpu - idle_rate * started.elapsed().as_secs_f64();
        let invocations = target.invocations().await? - invocations;
        let composed = target.composed().await? - composed;
        let requests =
            m.latency.values().map(|h| h.len()).sum::<u64>() + m.errors.values().sum::<u64>();
        let mut row = measured_json(config.profile_rate, &m);
        row["type"] = json!(kind.name());
        row["invocations_per_request"] = json!(invocations / requests.max(1) as f64);
        row["cpu_ms_per_request"] = json!(cpu.max(0.0) * 1000.0 / requests.max(1) as f64);
        row["idle_cpu_cores"] = json!(idle_rate);
        if kind == Kind::ComposePost {
            // Exactly once: one compose-and-upload per successful compose.
            let succeeded = m.latency.values().map(|h| h.len()).sum::<u64>();
            row["compose_and_upload_calls"] = json!(composed);
            row["composed_exactly_once"] = json!(composed == succeeded as f64);
        }
        eprintln!(
            "  {}: {:.1} invocations and {:.2} ms CPU a request",
            kind.name(),
            row["invocations_per_request"].as_f64().unwrap_or(0.0),
            row["cpu_ms_per_request"].as_f64().unwrap_or(0.0)
        );
        rows.push(row);
    }
    Ok(rows)
}

/// CPU milliseconds one call of `function` with `body` costs the target (its idle burn
/// taken off), over 4,000 calls; `accept` says which answers are the expected ones.
async fn cpu_per_call(
    target: &Target,
    function: &str,
    body: Value,
    accept: fn(u16, &[u8]) -> bool,
) -> anyhow::Result<f64> {
    let calls = 4000;
    let bodies = vec![body; calls];
    let idle_for = Duration::from_secs(2);
    let idle_cpu = target.cpu_seconds();
    tokio::time::sleep(idle_for).await;
    let idle_rate = (target.cpu_seconds() - idle_cpu) / idle_for.as_secs_f64();
    let cpu = target.cpu_seconds();
    let started = Instant::now();
    let (failed, samples) = drive::bulk_accepting(
        &target.http,
        &target.url,
        function,
        bodies,
        16,
        function,
        accept,
    )
    .await;
    if failed > 0 {
        bail!("{failed} calls of {function} failed, e.g. {samples:?}");
    }
    let cpu = target.cpu_seconds() - cpu - idle_rate * started.elapsed().as_secs_f64();
    Ok(cpu.max(0.0) * 1000.0 / calls as f64)
}

/// The floor under each request type: its invocations times what `hello` (which does
/// nothing) costs one. Beside it, what an invocation of the application's own component
/// costs when it does nothing (a request refused at its first field check): the
/// component's size over hello's, before any of the application's work.
async fn floor(target: &Target, per_type: &[Value]) -> anyhow::Result<Value> {
    target.deploy_hello().await?;
    let hello_ms = cpu_per_call(target, "hello", Value::Null, |status, _| status == 200).await?;
    let component_ms = cpu_per_call(target, "get-user-id", json!({}), |status, body| {
        status == 500 && String::from_utf8_lossy(body).contains("MissingFieldError")
    })
    .await?;
    let mut floors = serde_json::Map::new();
    let mut mixed_floor = 0.0;
    let mut mixed_measured = 0.0;
    for row in per_type {
        let invocations = row["invocations_per_request"].as_f64().unwrap_or(0.0);
        let measured = row["cpu_ms_per_request"].as_f64().unwrap_or(0.0);
        let kind = row["type"].as_str().unwrap_or("?");
        let share = match kind {
            "read-home-timeline" => 0.6,
            "read-user-timeline" => 0.3,
            _ => 0.1,
        };
        mixed_floor += share * invocations * hello_ms;
        mixed_measured += share * measured;
        floors.insert(
            kind.into(),
            json!({"floor_cpu_ms": invocations * hello_ms,
                                          "measured_cpu_ms": measured}),
        );
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    Ok(json!({
        "hello_cpu_ms": hello_ms,
        "component_cpu_ms": component_ms,
        "by_type": floors,
        "mixed_floor_cpu_ms": mixed_floor,
        "mixed_measured_cpu_ms": mixed_measured,
        "cores": cores,
        "mixed_floor_capacity_rps": cores * 1000.0 / mixed_floor.max(1e-9),
        "mixed_measured_capacity_rps": cores * 1000.0 / mixed_measured.max(1e-9),
    }))
}

/// Open-loop runs at each rate: of compose-post alone (at `--compose-rates`), or of the
/// mixed workload (at `--rates`).
async fn at_rates(
    config: &SocialBench,
    target: &Target,
    users: usize,
    compose_alone: bool,
) -> Vec<Value> {
    let (rates, what, pick, seed): (&[f64], &str, drive::Pick, u64) = match compose_alone {
        true => (
            &config.compose_rates,
            "compose-post alone",
            |_| Kind::ComposePost,
            11,
        ),
        false => (&config.rates, "mixed workload", workload::mixed, 13),
    };
    let mut runs = Vec::new();
    for &rate in rates {
        eprintln!("{what} at {rate} a second for {}s", config.seconds);
        let duration = Duration::from_secs(config.seconds);
        let cpu = target.cpu_seconds();
        let m =
            drive::open_loop(&target.http, &target.url, rate, duration, users, pick, seed).await;
        // Under load, not alone at the profile's rate: what a request costs when the node
        // is busy (wakeups and commits shared) says whether a rate fits the cores.
        let cpu = target.cpu_seconds() - cpu;
        let mut run = measured_json(rate, &m);
        let requests =
            run["all"]["requests"].as_u64().unwrap_or(0) + run["errors"].as_u64().unwrap_or(0);
        run["cpu_ms_per_request"] = json!(cpu * 1000.0 / requests.max(1) as f64);
        run["cpu_cores"] = json!(cpu / m.elapsed.as_secs_f64());
        runs.push(run);
    }
    runs
}

/// Runs the benchmark; the report as JSON (also written to `out`, with SVG plots).
pub async fn run(config: &SocialBench) -> anyhow::Result<Value> {
    let graph = read_graph(&config.graph)?;
    let target = Target::start(config).await?;
    target.deploy().await?;
    let setup = load_graph(config, &target, &graph).await?;
    eprintln!(
        "each request type alone at {} a second",
        config.profile_rate
    );
    let profile = profile(config, &target, graph.users).await?;
    eprintln!("the floor: hello, which does nothing, and the component doing nothing");
    let floor = floor(&target, &profile).await?;
    let compose = at_rates(config, &target, graph.users, true).await;
    let mixed = at_rates(config, &target, graph.users, false).await;
    let report = json!({
        "target": target.describe(),
        "durability": config.durability,
        "seconds": config.seconds,
        "setup": setup,
        "per_type": profile,
        "floor": floor,
        "compose_alone": compose,
        "mixed": mixed,
    });
    if let Some(out) = &config.out {
        write(out, &report)?;
    }
    Ok(report)
}

fn write(out: &std::path::Path, report: &Value) -> anyhow::Result<()> {
    std::fs::create_dir_all(out)?;
    let name = report["target"]
        .as_str()
        .unwrap_or("node")
        .replace(' ', "-");
    std::fs::write(
        out.join(format!("socialnet-{name}.json")),
        serde_json::to_string_pretty(report)?,
    )?;
    let mut series = Vec::new();
    for kind in Kind::ALL {
        for (q, label) in [("p50_ms", "p50"), ("p99_ms", "p99")] {
            let points: Vec<(f64, f64)> = report["mixed"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|run| {
                    Some((
                        run["offered_rps"].as_f64()?,
                        run["by_type"][kind.name()][q].as_f64()?,
                    ))
                })
                .collect();
            series.push(crate::svg::Series::new(
                &format!("{} {label}", kind.name()),
                points,
            ));
        }
    }
    let svg = crate::svg::line_chart(
        &format!("Social network, mixed workload ({name})"),
        "offered requests per second",
        "latency (ms)",
        &series,
    );
    std::fs::write(out.join(format!("socialnet-{name}.svg")), svg)?;
    Ok(())
}

/// The report as a table.
pub fn text(report: &Value) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let setup = &report["setup"];
    let _ = writeln!(
        out,
        "social network on {} ({} users, {} follow calls, {} seeded posts; loaded in {:.1}s + {:.1}s + {:.1}s)",
        report["target"].as_str().unwrap_or("?"),
        setup["users"],
        setup["follow_calls"],
        setup["seeded_posts"],
        setup["register_s"].as_f64().unwrap_or(0.0),
        setup["follow_s"].as_f64().unwrap_or(0.0),
        setup["seed_s"].as_f64().unwrap_or(0.0)
    );
    let _ = writeln!(out, "\nper request type alone:");
    let _ = writeln!(
        out,
        "  {:<20} {:>8} {:>12} {:>10} {:>9} {:>9}",
        "type", "rate", "invocations", "CPU ms", "p50 ms", "p99 ms"
    );
    for row in report["per_type"].as_array().into_iter().flatten() {
        let t = row["type"].as_str().unwrap_or("?");
        let _ = writeln!(
            out,
            "  {:<20} {:>8} {:>12.1} {:>10.2} {:>9.2} {:>9.2}",
            t,
            row["offered_rps"],
            row["invocations_per_request"].as_f64().unwrap_or(0.0),
            row["cpu_ms_per_request"].as_f64().unwrap_or(0.0),
            row["by_type"][t]["p50_ms"].as_f64().unwrap_or(0.0),
            row["by_type"][t]["p99_ms"].as_f64().unwrap_or(0.0)
        );
    }
    let runs = |title: &str, key: &str, out: &mut String| {
        let _ = writeln!(out, "\n{title}:");
        let _ = writeln!(
            out,
            "  {:>8} {:>9} {:<20} {:>8} {:>8} {:>8} {:>8} {:>7}",
            "offered", "achieved", "type", "requests", "p50 ms", "p90 ms", "p99 ms", "errors"
        );
        for run in report[key].as_array().into_iter().flatten() {
            let mut rows: Vec<(String, &Value)> = vec![("all".into(), &run["all"])];
            if let Some(kinds) = run["by_type"].as_object() {
                rows.extend(kinds.iter().map(|(k, v)| (k.clone(), v)));
            }
            for (name, v) in rows {
                let _ = writeln!(
                    out,
                    "  {:>8} {:>9.1} {:<20} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>7}",
                    run["offered_rps"],
                    run["achieved_rps"].as_f64().unwrap_or(0.0),
                    name,
                    v["requests"],
                    v["p50_ms"].as_f64().unwrap_or(0.0),
                    v["p90_ms"].as_f64().unwrap_or(0.0),
                    v["p99_ms"].as_f64().unwrap_or(0.0),
                    if name == "all" {
                        run["errors"].clone()
                    } else {
                        v["errors"].clone()
                    }
                );
            }
            let _ = writeln!(
                out,
                "  {:>8} node CPU {:.2} ms a request ({:.2} cores)",
                "",
                run["cpu_ms_per_request"].as_f64().unwrap_or(0.0),
                run["cpu_cores"].as_f64().unwrap_or(0.0)
            );
            if let Some(samples) = run["error_samples"].as_array().filter(|s| !s.is_empty()) {
                let _ = writeln!(out, "    first errors: {samples:?}");
            }
        }
    };
    for row in report["per_type"].as_array().into_iter().flatten() {
        if let Some(once) = row["composed_exactly_once"].as_bool() {
            let _ = writeln!(
                out,
                "  compose-and-upload ran {} times for {} composed posts: exactly once {}",
                row["compose_and_upload_calls"],
                row["by_type"]["compose-post"]["requests"],
                if once { "yes" } else { "NO" }
            );
        }
    }
    let floor = &report["floor"];
    let _ = writeln!(
        out,
        "\nthe floor (hello, which does nothing: {:.3} ms CPU an invocation, same run; the \
         application's component doing nothing: {:.3} ms):",
        floor["hello_cpu_ms"].as_f64().unwrap_or(0.0),
        floor["component_cpu_ms"].as_f64().unwrap_or(0.0)
    );
    if let Some(kinds) = floor["by_type"].as_object() {
        for (kind, v) in kinds {
            let _ = writeln!(
                out,
                "  {:<20} floor {:>6.2} ms CPU, measured {:>6.2} ms",
                kind,
                v["floor_cpu_ms"].as_f64().unwrap_or(0.0),
                v["measured_cpu_ms"].as_f64().unwrap_or(0.0)
            );
        }
    }
    let _ = writeln!(
        out,
        "  mixed request: floor {:.2} ms CPU ({:.0} req/s on {} cores), measured {:.2} ms ({:.0} req/s)",
        floor["mixed_floor_cpu_ms"].as_f64().unwrap_or(0.0),
        floor["mixed_floor_capacity_rps"].as_f64().unwrap_or(0.0),
        floor["cores"],
        floor["mixed_measured_cpu_ms"].as_f64().unwrap_or(0.0),
        floor["mixed_measured_capacity_rps"].as_f64().unwrap_or(0.0)
    );
    runs("compose-post alone", "compose_alone", &mut out);
    runs(
        "mixed workload (60 % home timeline, 30 % user timeline, 10 % compose)",
        "mixed",
        &mut out,
    );
    out
}
