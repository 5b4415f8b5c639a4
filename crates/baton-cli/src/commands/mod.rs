//! One module per subcommand.

mod deploy;
mod invoke;
mod manage;

use crate::cli::{Cli, Command};
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
        Command::Deploy(args) => deploy::run(args).await,
        Command::Invoke(args) => invoke::run(args).await,
        Command::Ls(args) => manage::list(args).await,
        Command::Describe(args) => manage::describe(args).await,
        Command::Rm(args) => manage::remove(args).await,
        Command::Logs(args) => manage::logs(args).await,
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
