//! `baton bench`: scenarios, ad-hoc load, and the baseline server.

use super::deploy::deploy_one;
use crate::cli::{BenchLoadArgs, BenchRunArgs, Target};
use crate::client::ApiClient;
use anyhow::Context;
use baton_api::DeployRequest;
use baton_bench::load::{LoadReport, LoadSpec, Shape};
use baton_bench::report::{Summary, write_files};
use baton_bench::scenario::{DeploySpec, Scenario};
use baton_bench::suites::LocalNode;
use bytes::Bytes;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

fn duration(text: &str, what: &str) -> anyhow::Result<Duration> {
    baton_api::parse_duration(text).map_err(|e| anyhow::anyhow!("{what}: {e}"))
}

fn headers(raw: &[String]) -> anyhow::Result<Vec<(http::HeaderName, http::HeaderValue)>> {
    raw.iter()
        .map(|header| {
            let (name, value) = header
                .split_once(':')
                .with_context(|| format!("header {header:?} is not `Name: value`"))?;
            Ok((
                name.trim().parse().context("bad header name")?,
                value.trim().parse().context("bad header value")?,
            ))
        })
        .collect()
}

/// A progress bar on stderr when it is a terminal; nothing otherwise.
pub(super) fn progress(label: String) -> impl Fn(f64) + Send + Sync + 'static {
    let show = std::io::stderr().is_terminal();
    move |fraction: f64| {
        if show {
            let filled = (fraction * 30.0) as usize;
            eprint!(
                "\r{label} [{}{}] {:3.0}%",
                "#".repeat(filled),
                " ".repeat(30 - filled.min(30)),
                fraction * 100.0
            );
            if fraction >= 1.0 {
                eprintln!();
            }
        }
    }
}

pub(super) async fn run_load(label: &str, spec: &LoadSpec) -> anyhow::Result<LoadReport> {
    let report = baton_bench::load::run(spec, progress(label.to_owned())).await?;
    if std::io::stderr().is_terminal() {
        eprintln!();
    }
    Ok(report)
}

pub async fn load(args: BenchLoadArgs) -> anyhow::Result<ExitCode> {
    let body = match (&args.body, &args.body_file) {
        (Some(body), _) => Bytes::from(body.clone()),
        (None, Some(file)) => {
            Bytes::from(std::fs::read(file).with_context(|| format!("reading {}", file.display()))?)
        }
        (None, None) => Bytes::new(),
    };
    let shape = match args.rate {
        Some(rate) => Shape::Open {
            rate,
            poisson: args.poisson,
            connections: args.connections,
        },
        None => Shape::Closed {
            connections: args.connections,
        },
    };
    let spec = LoadSpec {
        url: args
            .url
            .parse()
            .with_context(|| format!("{:?} is not a URL", args.url))?,
        method: http::Method::from_bytes(args.method.as_bytes()).context("bad method")?,
        headers: headers(&args.headers)?,
        body,
        template: args
            .body_template
            .as_deref()
            .map(baton_bench::template::BodyTemplate::parse)
            .transpose()?,
        shape,
        warmup: duration(&args.warmup, "--warmup")?,
        duration: duration(&args.duration, "--duration")?,
        max_requests: args.requests,
        http2: args.http2,
        timeout: duration(&args.timeout, "--timeout")?,
    };
    let report = run_load(&args.url, &spec).await?;
    let summary = Summary::of(&args.url, &report);
    if let Some(out) = &args.out {
        for file in write_files(out, "load", &summary, &report)? {
            eprintln!("wrote {file}");
        }
    }
    if args.json {
        crate::output::json(&summary)?;
    } else {
        print!("{}", summary.text());
    }
    Ok(ExitCode::SUCCESS)
}

/// `local` (a node started for the run) or a node's URL, with a client of its API; keep the
/// first value alive for as long as the node is needed.
pub(super) async fn resolve_target(
    target: &str,
) -> anyhow::Result<(Option<LocalNode>, String, ApiClient)> {
    let local = if target == "local" {
        let binary = std::env::current_exe().context("finding the baton binary")?;
        Some(LocalNode::start(&binary, false, &[]).await?)
    } else {
        None
    };
    let url = local
        .as_ref()
        .map_or(target.to_owned(), |node| node.url.clone());
    let client = ApiClient::new(&Target {
        gateway: url.clone(),
        token: match &local {
            Some(node) => Some(node.token.clone()),
            None => std::env::var("BATON_TOKEN").ok(),
        },
        json: false,
    })?;
    Ok((local, url, client))
}

/// The component a scenario names: an embedded example or test guest, or a file.
fn component(spec: &DeploySpec, base: &Path) -> anyhow::Result<Option<Bytes>> {
    let Some(wasm) = &spec.wasm else {
        return Ok(None);
    };
    let embedded: Option<&'static [u8]> = match wasm.as_str() {
        "examples/hello" => Some(baton_guests::HELLO),
        "examples/echo" => Some(baton_guests::ECHO),
        "examples/json-transform" => Some(baton_guests::JSON_TRANSFORM),
        "guests/misbehave" => Some(baton_guests::MISBEHAVE),
        _ => None,
    };
    if let Some(bytes) = embedded {
        return Ok(Some(Bytes::from_static(bytes)));
    }
    let path = base.join(wasm);
    Ok(Some(Bytes::from(std::fs::read(&path).with_context(
        || format!("deploy {:?}: reading {}", spec.name, path.display()),
    )?)))
}

fn deploy_request(spec: &DeploySpec, base: &Path) -> DeployRequest {
    let mut env = spec.env.clone();
    if let Some(mode) = &spec.mode {
        env.insert("mode".into(), mode.clone());
    }
    DeployRequest {
        service: spec.name.clone(),
        image: spec.wasm.clone().unwrap_or_default(),
        env_process: spec.process.clone(),
        env_vars: env,
        labels: spec.labels.clone(),
        working_dir: spec.process.as_ref().map(|_| base.display().to_string()),
        ..DeployRequest::default()
    }
}

fn load_spec(scenario: &Scenario, base_url: &str, base: &Path) -> anyhow::Result<LoadSpec> {
    let load = &scenario.load;
    let body = match (&load.body, &load.body_file) {
        (Some(body), _) => Bytes::from(body.clone()),
        (None, Some(file)) => Bytes::from(
            std::fs::read(base.join(file))
                .with_context(|| format!("load.body_file {}", file.display()))?,
        ),
        (None, None) => Bytes::new(),
    };
    let shape = match load.shape.as_str() {
        "closed" => Shape::Closed {
            connections: load.connections,
        },
        poisson => Shape::Open {
            rate: load.rate.unwrap_or(1.0),
            poisson: poisson == "poisson",
            connections: load.connections,
        },
    };
    let raw_headers: Vec<String> = load
        .headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    Ok(LoadSpec {
        url: format!("{}{}", base_url.trim_end_matches('/'), load.path)
            .parse()
            .context("target URL")?,
        method: http::Method::from_bytes(load.method.as_bytes()).context("load.method")?,
        headers: headers(&raw_headers)?,
        body,
        template: load
            .body_template
            .as_deref()
            .map(baton_bench::template::BodyTemplate::parse)
            .transpose()?,
        shape,
        warmup: Scenario::duration_of(&load.warmup),
        duration: Scenario::duration_of(&load.duration),
        max_requests: load.requests,
        http2: load.http2,
        timeout: Scenario::duration_of(&load.timeout),
    })
}

pub async fn run(args: BenchRunArgs) -> anyhow::Result<ExitCode> {
    let scenario = Scenario::load(&args.scenario)?;
    let base = args
        .scenario
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let base = base.canonicalize().unwrap_or(base);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("benchmarks/results").join(&scenario.name));
    let (_local, target, client) = resolve_target(&scenario.target).await?;
    for spec in &scenario.deploy {
        let status = deploy_one(
            &client,
            &deploy_request(spec, &base),
            component(spec, &base)?,
        )
        .await
        .with_context(|| format!("deploying {:?}", spec.name))?;
        eprintln!("deployed {} (version {})", status.name, status.version);
    }
    let mut summaries = Vec::new();
    if scenario.baseline {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let server = tokio::spawn(baton_bench::serve_baseline(listener));
        let mut spec = load_spec(&scenario, &format!("http://{address}"), &base)?;
        spec.url = format!("http://{address}/").parse()?;
        spec.method = http::Method::GET;
        let report = run_load("baseline", &spec).await?;
        server.abort();
        let summary = Summary::of("baseline", &report);
        write_files(&out, "baseline", &summary, &report)?;
        summaries.push(summary);
    }
    let spec = load_spec(&scenario, &target, &base)?;
    let report = run_load(&scenario.name, &spec).await?;
    let summary = Summary::of(&scenario.name, &report);
    let files = write_files(&out, "target", &summary, &report)?;
    summaries.push(summary);
    let ratio = (summaries.len() == 2)
        .then(|| summaries[1].throughput_rps / summaries[0].throughput_rps.max(1e-9));
    let combined = serde_json::json!({
        "scenario": scenario.name,
        "file": args.scenario.display().to_string(),
        "date_unix_seconds": unix_seconds_now(),
        "machine": format!("{} cores, {}", std::thread::available_parallelism().map_or(0, |n| n.get()), std::env::consts::ARCH),
        "runs": summaries,
        "throughput_ratio_to_baseline": ratio,
    });
    std::fs::write(
        out.join("summary.json"),
        serde_json::to_string_pretty(&combined)?,
    )?;
    if args.json {
        crate::output::json(&combined)?;
    } else {
        for summary in &summaries {
            print!("{}", summary.text());
        }
        if let Some(ratio) = ratio {
            println!("throughput ratio to baseline: {ratio:.2}");
        }
        println!("results in {} ({} files)", out.display(), files.len() + 1);
    }
    Ok(ExitCode::SUCCESS)
}

fn unix_seconds_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    format!("{}", now.as_secs())
}
