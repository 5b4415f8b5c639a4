//! One module per subcommand.

mod bench;
mod deploy;
pub(crate) mod federation;
mod invoke;
mod manage;
mod new;
mod objects;
mod suites;
mod trace;

use crate::cli::{BenchCommand, Cli, Command, TraceCommand};
use crate::config::NodeConfig;
use std::process::ExitCode;

pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Up(args) => {
            let config = NodeConfig::resolve(&args)?;
            init_logging(config.log_json);
            crate::node::up(config).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Control(args) => {
            init_logging(args.log_format == "json");
            crate::cluster::control(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Gateway(args) => {
            init_logging(args.log_format == "json");
            crate::cluster::gateway(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Worker(args) => {
            init_logging(args.log_format == "json");
            crate::cluster::worker(args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Deploy(args) => deploy::run(args).await,
        Command::New(args) => new::run(args),
        Command::Invoke(args) => invoke::run(args).await,
        Command::Ls(args) if args.nodes => manage::nodes(args).await,
        Command::Ls(args) => manage::list(args).await,
        Command::Describe(args) => manage::describe(args).await,
        Command::Rm(args) => manage::remove(args).await,
        Command::Logs(args) => manage::logs(args).await,
        Command::Objects(command) => objects::run(command).await,
        Command::Federation(command) => federation::run(command).await,
        Command::Bench(BenchCommand::Run(args)) => bench::run(args).await,
        Command::Bench(BenchCommand::Load(args)) => bench::load(*args).await,
        Command::Bench(BenchCommand::State(args)) => suites::state(args).await,
        Command::Bench(BenchCommand::Cluster(args)) => suites::cluster(args).await,
        Command::Bench(BenchCommand::Federation(args)) => suites::federation(args).await,
        Command::Bench(BenchCommand::Socialnet(args)) => suites::socialnet(args).await,
        Command::Bench(BenchCommand::Trace(TraceCommand::Generate(args))) => trace::generate(args),
        Command::Bench(BenchCommand::Trace(TraceCommand::Replay(args))) => {
            trace::replay(args).await
        }
        Command::Bench(BenchCommand::Baseline { listen }) => {
            let listener = tokio::net::TcpListener::bind(&listen).await?;
            println!("baseline listening on http://{}", listener.local_addr()?);
            baton_bench::serve_baseline(listener).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn init_logging(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BATON_LOG").unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("info,wasmtime=warn,cranelift=warn")
    });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
