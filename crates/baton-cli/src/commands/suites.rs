//! `baton bench state`, `cluster`, `federation` and `socialnet`: flags into the suites' configurations
//! (the suites themselves are `baton_bench::suites`), then their reports printed.

use crate::cli::{BenchClusterArgs, BenchFederationArgs, BenchSocialnetArgs, BenchStateArgs};
use anyhow::Context;
use baton_bench::suites::{cluster, federation, socialnet, state};
use std::process::ExitCode;
use std::time::Duration;

/// The suites start this very binary's roles.
fn binary() -> anyhow::Result<std::path::PathBuf> {
    std::env::current_exe().context("finding the baton binary")
}

pub async fn state(args: BenchStateArgs) -> anyhow::Result<ExitCode> {
    let config = state::StateBench {
        binary: binary()?,
        nodes: args.nodes,
        runs: args.runs,
        redis: (args.redis != "none").then_some(args.redis),
        durability: args.durability,
        seconds: args.seconds,
        writes: args.writes,
        cluster: args.cluster,
    };
    let report = state::run(&config).await?;
    match args.json {
        true => println!("{}", serde_json::to_string_pretty(&report)?),
        false => print!("{}", state::text(&report)),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn cluster(args: BenchClusterArgs) -> anyhow::Result<ExitCode> {
    let rates = args
        .rates
        .split(',')
        .map(|r| r.trim().parse::<f64>())
        .collect::<Result<Vec<_>, _>>()
        .context("--rates: comma-separated numbers")?;
    let config = cluster::ClusterBench {
        binary: binary()?,
        scenario: args.scenario.parse()?,
        workers: args.workers,
        functions: args.functions,
        sandboxes: args.sandboxes,
        runs: args.runs,
        rates,
        seconds: args.seconds,
        settle: Duration::from_secs(args.settle),
        node: args.node,
    };
    let report = cluster::run(&config).await?;
    match args.json {
        true => println!("{}", serde_json::to_string_pretty(&report)?),
        false => println!("{report:#}"),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn federation(args: BenchFederationArgs) -> anyhow::Result<ExitCode> {
    let strategies = match args.strategies.is_empty() {
        true => vec![
            "grant".into(),
            "dfaas-recalc".into(),
            "static".into(),
            "all-local".into(),
        ],
        false => args.strategies,
    };
    for strategy in &strategies {
        anyhow::ensure!(
            baton_federation::strategy::NAMES.contains(&strategy.as_str()),
            "--strategy {strategy:?} is none of {}",
            baton_federation::strategy::NAMES.join(", ")
        );
    }
    let scenarios = match args.scenarios.is_empty() {
        true => vec![federation::Scenario::Paper],
        false => args
            .scenarios
            .iter()
            .map(|s| federation::Scenario::parse(s))
            .collect::<anyhow::Result<_>>()?,
    };
    let period = args
        .period
        .as_deref()
        .map(|p| crate::config::duration(p, "--period"))
        .transpose()?;
    let config = federation::FederationBench {
        binary: binary()?,
        sites: args.sites,
        strategies,
        scenarios,
        capacity: args.capacity,
        seconds: args.seconds,
        recalc_seconds: args.recalc_seconds,
        period,
        out: args.out,
        link_delay: args
            .link_delay
            .as_deref()
            .map(|d| crate::config::duration(d, "--link-delay"))
            .transpose()?,
    };
    let report = federation::run(&config).await?;
    match args.json {
        true => println!("{}", serde_json::to_string_pretty(&report)?),
        false => print!("{}", federation::text(&report)),
    }
    Ok(ExitCode::SUCCESS)
}

fn rates(list: &str, flag: &str) -> anyhow::Result<Vec<f64>> {
    list.split(',')
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| {
            r.parse::<f64>()
                .ok()
                .filter(|r| *r > 0.0 && r.is_finite())
                .with_context(|| format!("{flag}: {r:?} is not a positive number"))
        })
        .collect()
}

pub async fn socialnet(args: BenchSocialnetArgs) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(
        matches!(args.durability.as_str(), "durable" | "async"),
        "--durability {:?}: expected durable or async",
        args.durability
    );
    anyhow::ensure!(args.seconds > 0, "--seconds must be at least 1");
    anyhow::ensure!(
        args.load_concurrency > 0,
        "--load-concurrency must be at least 1"
    );
    let config = socialnet::SocialBench {
        binary: binary()?,
        graph: args.graph,
        rates: rates(&args.rates, "--rates")?,
        compose_rates: rates(&args.compose_rates, "--compose-rates")?,
        seconds: args.seconds,
        seed_posts: args.seed_posts,
        profile_rate: args.profile_rate,
        workers: args.workers,
        durability: args.durability,
        load_concurrency: args.load_concurrency,
        out: args.out,
    };
    let report = socialnet::run(&config).await?;
    match args.json {
        true => println!("{}", serde_json::to_string_pretty(&report)?),
        false => print!("{}", socialnet::text(&report)),
    }
    Ok(ExitCode::SUCCESS)
}
