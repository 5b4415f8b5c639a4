//! `baton bench federation`: DFaaS's experiments on Baton sites. N sites (`baton up`, each
//! with its own data directory, site key and federation listener on loopback) list each other
//! as members; every site deploys the same federated function, site 1 with one sandbox and the
//! others with three (a site sizes its own copy), as many requests waiting as it runs at once,
//! so site 1 serves C requests a second and
//! the others 3 C each (the function waits `2000 / C` ms, two at a time per sandbox: a site's
//! capacity is its slots, not its cores, and three sites fit on two cores). Then, per strategy,
//! open-loop load as the scenario says, and per second: what was offered, what was served and
//! by which site; the time to converge; the added latency of a forwarded hop.

use super::local::LocalNode;
use crate::svg::{Series, line_chart};
use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Requests a sandbox serves at once.
const SLOTS_PER_SANDBOX: u32 = 2;
/// A client gives up on a request after this long (the function's own timeout is 10 s).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);
/// A second counts as converged when at least this share of what was offered was served.
pub const CONVERGED: f64 = 0.99;

/// Who gets load in a run, as multiples of C per site.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// DFaaS's paper run: 5 C to site 1, nothing to the others.
    Paper,
    /// DFaaS's scenario 1: site 2 overloaded too (4 C on its 3 C).
    SecondOverloaded,
    /// DFaaS's scenario 3: every site gets twice what it serves.
    AllOverloaded,
}

impl Scenario {
    /// Every scenario, in the order reported.
    pub const ALL: [Scenario; 3] = [
        Scenario::Paper,
        Scenario::SecondOverloaded,
        Scenario::AllOverloaded,
    ];

    /// Its name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Paper => "paper",
            Scenario::SecondOverloaded => "second-overloaded",
            Scenario::AllOverloaded => "all-overloaded",
        }
    }

    /// The scenario called `name`.
    pub fn parse(name: &str) -> anyhow::Result<Scenario> {
        Scenario::ALL
            .into_iter()
            .find(|s| s.name() == name)
            .with_context(|| {
                format!(
                    "no scenario {name:?}: one of {}",
                    Scenario::ALL.map(|s| s.name()).join(", ")
                )
            })
    }

    /// Requests a second offered to each of `capacities`' sites.
    pub fn rates(self, capacities: &[f64]) -> Vec<f64> {
        let c = capacities[0];
        capacities
            .iter()
            .enumerate()
            .map(|(i, cap)| match (self, i) {
                (Scenario::Paper, 0) => 5.0 * c,
                (Scenario::Paper, _) => 0.0,
                (Scenario::SecondOverloaded, 0) => 5.0 * c,
                (Scenario::SecondOverloaded, 1) => cap + c,
                (Scenario::SecondOverloaded, _) => 0.0,
                (Scenario::AllOverloaded, _) => 2.0 * cap,
            })
            .collect()
    }
}

/// The run's settings.
#[derive(Debug, Clone)]
pub struct FederationBench {
    /// The `baton` binary whose sites run.
    pub binary: PathBuf,
    /// Sites (at least 2).
    pub sites: usize,
    /// Strategies, in order.
    pub strategies: Vec<String>,
    /// Scenarios, in order.
    pub scenarios: Vec<Scenario>,
    /// Requests a second site 1 serves (C).
    pub capacity: f64,
    /// How long the load lasts.
    pub seconds: u64,
    /// How long it lasts with `dfaas-recalc`, whose rounds are a minute.
    pub recalc_seconds: u64,
    /// Rounds every this long, when not the strategy's own.
    pub period: Option<Duration>,
    /// Where the SVG plots go.
    pub out: Option<PathBuf>,
    /// Every exchange between two sites crosses a link with this delay each way (a delaying
    /// proxy in front of each site's federation listener); `None`: plain loopback.
    pub link_delay: Option<Duration>,
}

/// One request's fate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Seconds from the load's start to sending it.
    pub sent: f64,
    /// The site it was sent to.
    pub to: usize,
    /// Its status (0: no answer).
    pub status: u16,
    /// Milliseconds to the whole answer.
    pub latency_ms: f64,
    /// The site that served it (from `X-Baton-Site`).
    pub served_by: Option<usize>,
}

/// One second of a run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Second {
    /// Seconds since the load's start.
    pub t: u64,
    /// Requests sent in it.
    pub offered: u64,
    /// Of those, answered 200.
    pub served: u64,
    /// Of those, by each site.
    pub by_site: Vec<u64>,
}

/// Requests per second, by the second they were sent in.
pub fn per_second(outcomes: &[Outcome], seconds: u64, sites: usize) -> Vec<Second> {
    let mut out: Vec<Second> = (0..seconds)
        .map(|t| Second {
            t,
            offered: 0,
            served: 0,
            by_site: vec![0; sites],
        })
        .collect();
    for o in outcomes {
        let Some(second) = out.get_mut(o.sent as usize) else {
            continue;
        };
        second.offered += 1;
        if o.status == 200 {
            second.served += 1;
            if let Some(site) = o.served_by {
                second.by_site[site] += 1;
            }
        }
    }
    out
}

/// The first second from which every second served at least `threshold` of what it offered
/// (seconds that offered nothing do not count); `None` if the last one did not.
pub fn converged_after(seconds: &[Second], threshold: f64) -> Option<u64> {
    let good = |s: &Second| s.offered == 0 || s.served as f64 >= threshold * s.offered as f64;
    let last_bad = seconds.iter().rposition(|s| !good(s));
    match last_bad {
        None => seconds.first().map(|s| s.t),
        Some(i) => seconds.get(i + 1).map(|s| s.t),
    }
}

/// The `q` quantile (0–1) of `values`, nearest rank; `None` when empty.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((q * values.len() as f64).ceil() as usize).clamp(1, values.len());
    Some(values[rank - 1])
}

/// Site `i`'s requests a second (C for the first, 3 C for the others).
pub fn capacities(sites: usize, c: f64) -> Vec<f64> {
    (0..sites)
        .map(|i| if i == 0 { c } else { 3.0 * c })
        .collect()
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

struct Site {
    node: LocalNode,
    id: String,
}

/// The sites of one run, and the delaying proxies in front of them (stopped after the sites:
/// fields drop in order).
struct Sites {
    sites: Vec<Site>,
    _links: Vec<AbortOnDrop>,
}

/// A task stopped when this is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// `n` distinct loopback ports free now, below the kernel's ephemeral range: no outgoing
/// connection takes one between this check and the site's bind, as one the kernel handed out
/// could.
fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let mut held = Vec::new();
    for _ in 0..10_000 {
        if held.len() == n {
            break;
        }
        let port = fastrand::u16(10_000..ephemeral.max(10_001));
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            held.push(listener);
        }
    }
    if held.len() < n {
        bail!("no {n} free loopback ports below {ephemeral}");
    }
    held.iter().map(|l| Ok(l.local_addr()?.port())).collect()
}

fn site_id(binary: &Path, data: &Path) -> anyhow::Result<String> {
    let output = std::process::Command::new(binary)
        .args(["federation", "id", "--data-dir"])
        .arg(data)
        .output()?;
    if !output.status.success() {
        bail!(
            "baton federation id: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// Starts the sites of one run with `strategy`.
async fn start_sites(
    config: &FederationBench,
    strategy: &str,
    dir: &Path,
) -> anyhow::Result<Sites> {
    // Each site's listener, and where peers reach it (a delaying proxy in front, or itself).
    let ports = free_ports(2 * config.sites)?;
    let mut links = Vec::new();
    let mut prepared = Vec::new();
    for i in 0..config.sites {
        let data = dir.join(format!("site{}", i + 1));
        std::fs::create_dir_all(&data)?;
        let id = site_id(&config.binary, &data)?;
        let listen = format!("127.0.0.1:{}", ports[2 * i]);
        let reached = match config.link_delay {
            Some(delay) => {
                let proxy = format!("127.0.0.1:{}", ports[2 * i + 1]);
                let listener = tokio::net::TcpListener::bind(&proxy).await?;
                links.push(AbortOnDrop(tokio::spawn(super::delay::serve(
                    listener,
                    listen.clone(),
                    delay,
                ))));
                proxy
            }
            None => listen.clone(),
        };
        prepared.push((data, id, listen, reached));
    }
    let mut sites = Vec::new();
    for (i, (data, id, listen, reached)) in prepared.iter().enumerate() {
        let peers: Vec<String> = prepared
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, (_, id, _, reached))| format!("{id}@{reached}"))
            .collect();
        let mut env = vec![
            ("BATON_DATA_DIR".to_string(), data.display().to_string()),
            ("BATON_FEDERATION_LISTEN".into(), listen.clone()),
            ("BATON_FEDERATION_ADVERTISE".into(), reached.clone()),
            ("BATON_FEDERATION_PEERS".into(), peers.join(",")),
            ("BATON_FEDERATION_STRATEGY".into(), strategy.to_string()),
        ];
        if let Some(period) = config.period {
            env.push((
                "BATON_FEDERATION_PERIOD".into(),
                format!("{}ms", period.as_millis()),
            ));
        }
        let node = LocalNode::start(&config.binary, false, &env)
            .await
            .with_context(|| format!("starting site {}", i + 1))?;
        sites.push(Site {
            node,
            id: id.clone(),
        });
    }
    Ok(Sites {
        sites,
        _links: links,
    })
}

async fn call(
    client: &HttpClient,
    method: &str,
    url: &str,
    token: Option<&str>,
    headers: &[(&str, String)],
    body: Bytes,
) -> anyhow::Result<(u16, http::HeaderMap, Bytes)> {
    let mut request = http::Request::builder().method(method).uri(url);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = tokio::time::timeout(
        CLIENT_TIMEOUT,
        client.request(request.body(Full::new(body))?),
    )
    .await
    .context("no answer in time")??;
    let (parts, body) = response.into_parts();
    let body = tokio::time::timeout(CLIENT_TIMEOUT, body.collect())
        .await
        .context("no whole answer in time")??
        .to_bytes();
    Ok((parts.status.as_u16(), parts.headers, body))
}

/// Deploys the federated function on every site (site 1 last, one sandbox; the others three)
/// and waits until every site runs its sandboxes and site 1 holds an answer from every peer
/// about it.
async fn deploy_and_settle(client: &HttpClient, sites: &[Site]) -> anyhow::Result<()> {
    for (i, site) in sites.iter().enumerate().rev() {
        let sandboxes: u32 = if i == 0 { 1 } else { 3 };
        // As many may wait as run at once: a short burst waits, an overload is refused at
        // once (DFaaS's sites had no queue) rather than waiting out its timeout.
        let queue = sandboxes * SLOTS_PER_SANDBOX;
        let settings = json!({
            "service": "work",
            "labels": {
                "baton.federate": "true",
                "com.openfaas.scale.min": sandboxes.to_string(),
                "com.openfaas.scale.max": sandboxes.to_string(),
                "baton.queue": queue.to_string(),
            },
            "envVars": {"max_inflight": SLOTS_PER_SANDBOX.to_string()},
        });
        let (status, _, body) = call(
            client,
            "POST",
            &format!("{}/system/functions", site.node.url),
            Some(&site.node.token),
            &[
                ("content-type", "application/wasm".into()),
                ("x-baton-deployment", settings.to_string()),
            ],
            Bytes::from_static(baton_guests::BUSY),
        )
        .await?;
        if status >= 300 {
            bail!(
                "deploying at site {}: {status} {}",
                i + 1,
                String::from_utf8_lossy(&body)
            );
        }
    }
    let first = &sites[0].node;
    // A recalc round is a minute: the first after the deployment may be that far away.
    let deadline = Instant::now() + Duration::from_secs(150);
    for (i, site) in sites.iter().enumerate() {
        let want = if i == 0 { 1.0 } else { 3.0 };
        loop {
            let (_, _, body) = call(
                client,
                "GET",
                &format!("{}/metrics", site.node.url),
                None,
                &[],
                Bytes::new(),
            )
            .await?;
            let sandboxes = super::local::metric(
                &String::from_utf8_lossy(&body),
                "baton_function_sandboxes{function_name=\"work\"}",
            );
            if sandboxes >= want {
                break;
            }
            if Instant::now() > deadline {
                bail!(
                    "site {} has {sandboxes} sandboxes of work, not {want}",
                    i + 1
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    loop {
        let (_, _, body) = call(
            client,
            "GET",
            &format!("{}/system/federation", first.url),
            Some(&first.token),
            &[],
            Bytes::new(),
        )
        .await?;
        let status: Value = serde_json::from_slice(&body)?;
        let peers = status["peers"].as_array().cloned().unwrap_or_default();
        let answered = peers.len() == sites.len() - 1
            && peers.iter().all(|p| {
                p["functions"].as_array().is_some_and(|fs| {
                    fs.iter()
                        .any(|f| f["name"] == "work" && f.get("granted_to_us").is_some())
                })
            });
        if answered {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("site 1 never heard from every peer about work: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Offers `rates` (per site) for `seconds`, open loop at even intervals; every request's fate.
async fn load(
    client: &HttpClient,
    sites: &[Site],
    rates: &[f64],
    seconds: u64,
    wait_ms: u64,
) -> Vec<Outcome> {
    let ids: HashMap<String, usize> = sites
        .iter()
        .enumerate()
        .map(|(i, s)| (s.id.clone(), i))
        .collect();
    let ids = Arc::new(ids);
    let outcomes = Arc::new(Mutex::new(Vec::new()));
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut senders = tokio::task::JoinSet::new();
    for (to, rate) in rates.iter().enumerate() {
        if *rate <= 0.0 {
            continue;
        }
        let interval = Duration::from_secs_f64(1.0 / rate);
        let url = format!("{}/function/work?sleep={wait_ms}", sites[to].node.url);
        let (client, ids, outcomes) = (client.clone(), ids.clone(), outcomes.clone());
        senders.spawn(async move {
            let mut requests = tokio::task::JoinSet::new();
            let mut next = start;
            while next < end {
                tokio::time::sleep_until(next.into()).await;
                let sent = next.duration_since(start).as_secs_f64();
                let (client, url, ids, outcomes) =
                    (client.clone(), url.clone(), ids.clone(), outcomes.clone());
                requests.spawn(async move {
                    let began = Instant::now();
                    let result = call(&client, "GET", &url, None, &[], Bytes::new()).await;
                    let latency_ms = began.elapsed().as_secs_f64() * 1000.0;
                    let (status, served_by) = match result {
                        Ok((status, headers, _)) => (
                            status,
                            headers
                                .get("x-baton-site")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|id| ids.get(id).copied()),
                        ),
                        Err(_) => (0, None),
                    };
                    outcomes.lock().unwrap().push(Outcome {
                        sent,
                        to,
                        status,
                        latency_ms,
                        served_by,
                    });
                });
                next += interval;
            }
            while requests.join_next().await.is_some() {}
        });
    }
    while senders.join_next().await.is_some() {}
    let mut outcomes = std::mem::take(&mut *outcomes.lock().unwrap());
    outcomes.sort_by(|a, b| a.sent.total_cmp(&b.sent));
    outcomes
}

/// The report of one strategy in one scenario.
fn report(
    strategy: &str,
    scenario: Scenario,
    capacities: &[f64],
    rates: &[f64],
    outcomes: &[Outcome],
    seconds: u64,
) -> Value {
    let sites = capacities.len();
    let series = per_second(outcomes, seconds, sites);
    let offered = outcomes.len() as f64;
    let served = outcomes.iter().filter(|o| o.status == 200).count() as f64;
    let mut by_site = vec![0u64; sites];
    for o in outcomes.iter().filter(|o| o.status == 200) {
        if let Some(site) = o.served_by {
            by_site[site] += 1;
        }
    }
    let mut refused: HashMap<u16, u64> = HashMap::new();
    for o in outcomes.iter().filter(|o| o.status != 200) {
        *refused.entry(o.status).or_default() += 1;
    }
    // Latency of site 1's users' requests served at site 1 and at a peer.
    let mut local: Vec<f64> = outcomes
        .iter()
        .filter(|o| o.to == 0 && o.status == 200 && o.served_by == Some(0))
        .map(|o| o.latency_ms)
        .collect();
    let mut forwarded: Vec<f64> = outcomes
        .iter()
        .filter(|o| o.to == 0 && o.status == 200 && o.served_by.is_some_and(|s| s != 0))
        .map(|o| o.latency_ms)
        .collect();
    let (l50, l99) = (quantile(&mut local, 0.5), quantile(&mut local, 0.99));
    let (f50, f99) = (
        quantile(&mut forwarded, 0.5),
        quantile(&mut forwarded, 0.99),
    );
    let total_rate: f64 = rates.iter().sum();
    json!({
        "strategy": strategy,
        "scenario": scenario.name(),
        "seconds": seconds,
        "capacities": capacities,
        "offered_rates": rates,
        "offered": offered,
        "served": served,
        "served_fraction": if offered > 0.0 { served / offered } else { 0.0 },
        "ideal_fraction": (capacities.iter().sum::<f64>() / total_rate).min(1.0),
        "converged_after_s": converged_after(&series, CONVERGED),
        "served_by_site": by_site,
        "refused_by_status": refused,
        "hop_latency_ms": {
            "local_p50": l50, "local_p99": l99,
            "forwarded_p50": f50, "forwarded_p99": f99,
            "added_p50": f50.zip(l50).map(|(f, l)| f - l),
            "added_p99": f99.zip(l99).map(|(f, l)| f - l),
        },
        "per_second": series,
    })
}

/// Runs every scenario with every strategy; the report as JSON.
pub async fn run(config: &FederationBench) -> anyhow::Result<Value> {
    if config.sites < 2 {
        bail!("a federation needs at least 2 sites");
    }
    if config.capacity <= 0.0 || config.capacity > 1000.0 {
        bail!("--capacity must be between 0 and 1000 requests a second");
    }
    let wait_ms = (1000.0 * f64::from(SLOTS_PER_SANDBOX) / config.capacity).round() as u64;
    let client: HttpClient = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(1024)
        .build_http();
    let capacities = capacities(config.sites, config.capacity);
    let mut runs = Vec::new();
    for scenario in &config.scenarios {
        let rates = scenario.rates(&capacities);
        let mut plotted = Vec::new();
        for strategy in &config.strategies {
            let seconds = match strategy.as_str() {
                "dfaas-recalc" => config.recalc_seconds,
                _ => config.seconds,
            };
            eprintln!(
                "federation: {} with {strategy}: {} sites, {:?} req/s offered, {seconds} s",
                scenario.name(),
                config.sites,
                rates
            );
            let dir = tempfile::tempdir()?;
            let run_sites = start_sites(config, strategy, dir.path()).await?;
            let sites = &run_sites.sites;
            deploy_and_settle(&client, sites).await?;
            let outcomes = load(&client, sites, &rates, seconds, wait_ms).await;
            let run = report(strategy, *scenario, &capacities, &rates, &outcomes, seconds);
            eprintln!(
                "  served {:.1} % (ideal {:.1} %), converged after {} s, by site {}",
                run["served_fraction"].as_f64().unwrap_or(0.0) * 100.0,
                run["ideal_fraction"].as_f64().unwrap_or(0.0) * 100.0,
                run["converged_after_s"],
                run["served_by_site"]
            );
            plotted.push(Series::new(
                strategy,
                per_second(&outcomes, seconds, config.sites)
                    .iter()
                    .filter(|s| s.offered > 0)
                    .map(|s| (s.t as f64, 100.0 * s.served as f64 / s.offered as f64))
                    .collect(),
            ));
            runs.push(run);
            drop(run_sites);
        }
        if let Some(out) = &config.out {
            std::fs::create_dir_all(out)?;
            let path = out.join(format!("federation-{}.svg", scenario.name()));
            std::fs::write(
                &path,
                line_chart(
                    &format!(
                        "Federation, {} scenario: share of requests served each second",
                        scenario.name()
                    ),
                    "seconds since the load began",
                    "% served",
                    &plotted,
                ),
            )?;
        }
    }
    Ok(json!({
        "bench": "federation",
        "sites": config.sites,
        "capacity": config.capacity,
        "function_wait_ms": wait_ms,
        "link_delay_ms": config.link_delay.map(|d| d.as_secs_f64() * 1000.0),
        "runs": runs,
    }))
}

/// The report as text: one line per run.
pub fn text(report: &Value) -> String {
    let mut out = format!(
        "{:<18} {:<13} {:>9} {:>7} {:>10} {:>14} {:>12}  {}\n",
        "SCENARIO",
        "STRATEGY",
        "SERVED %",
        "IDEAL %",
        "CONVERGED",
        "HOP +P50 MS",
        "HOP +P99 MS",
        "SERVED BY SITE"
    );
    let empty = Vec::new();
    for run in report["runs"].as_array().unwrap_or(&empty) {
        let ms = |v: &Value| v.as_f64().map_or("-".into(), |x| format!("{x:.2}"));
        out.push_str(&format!(
            "{:<18} {:<13} {:>9.1} {:>7.1} {:>10} {:>14} {:>12}  {}\n",
            run["scenario"].as_str().unwrap_or(""),
            run["strategy"].as_str().unwrap_or(""),
            run["served_fraction"].as_f64().unwrap_or(0.0) * 100.0,
            run["ideal_fraction"].as_f64().unwrap_or(0.0) * 100.0,
            run["converged_after_s"]
                .as_u64()
                .map_or("never".into(), |s| format!("{s} s")),
            ms(&run["hop_latency_ms"]["added_p50"]),
            ms(&run["hop_latency_ms"]["added_p99"]),
            run["served_by_site"],
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(sent: f64, status: u16, served_by: Option<usize>) -> Outcome {
        Outcome {
            sent,
            to: 0,
            status,
            latency_ms: 1.0,
            served_by,
        }
    }

    #[test]
    fn seconds_count_what_was_offered_and_who_served_it() {
        let outcomes = [
            outcome(0.1, 200, Some(0)),
            outcome(0.5, 429, None),
            outcome(1.2, 200, Some(1)),
            outcome(1.9, 200, Some(0)),
            outcome(7.0, 200, Some(0)),
        ];
        let seconds = per_second(&outcomes, 2, 2);
        assert_eq!(seconds[0].offered, 2);
        assert_eq!(seconds[0].served, 1);
        assert_eq!(seconds[1].by_site, vec![1, 1]);
        assert_eq!(seconds.len(), 2, "past the run's end is not counted");
    }

    #[test]
    fn convergence_is_the_first_second_after_the_last_bad_one() {
        let second = |t: u64, offered: u64, served: u64| Second {
            t,
            offered,
            served,
            by_site: vec![],
        };
        for (seconds, expected) in [
            (vec![second(0, 100, 100), second(1, 100, 100)], Some(0)),
            (
                vec![second(0, 100, 50), second(1, 100, 99), second(2, 100, 100)],
                Some(1),
            ),
            (vec![second(0, 100, 100), second(1, 100, 98)], None),
            // A dip after convergence resets it.
            (
                vec![second(0, 100, 99), second(1, 100, 90), second(2, 100, 100)],
                Some(2),
            ),
            (vec![second(0, 0, 0), second(1, 10, 10)], Some(0)),
        ] {
            assert_eq!(
                converged_after(&seconds, CONVERGED),
                expected,
                "{seconds:?}"
            );
        }
    }

    #[test]
    fn quantiles_are_nearest_rank() {
        let mut values = vec![5.0, 1.0, 3.0, 2.0, 4.0];
        assert_eq!(quantile(&mut values, 0.5), Some(3.0));
        assert_eq!(quantile(&mut values, 0.99), Some(5.0));
        assert_eq!(quantile(&mut [], 0.5), None);
    }

    #[test]
    fn scenarios_offer_what_dfaas_offered() {
        let caps = capacities(3, 20.0);
        assert_eq!(caps, vec![20.0, 60.0, 60.0]);
        assert_eq!(Scenario::Paper.rates(&caps), vec![100.0, 0.0, 0.0]);
        assert_eq!(
            Scenario::SecondOverloaded.rates(&caps),
            vec![100.0, 80.0, 0.0]
        );
        assert_eq!(
            Scenario::AllOverloaded.rates(&caps),
            vec![40.0, 120.0, 120.0]
        );
        assert!(Scenario::parse("paper").is_ok() && Scenario::parse("x").is_err());
    }
}
