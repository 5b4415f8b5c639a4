//! `baton`: run a Baton node, and manage and call its functions.

mod cli;
mod client;
mod cluster;
mod commands;
mod config;
mod examples;
mod federation;
mod gateway_link;
mod node;
mod objects;
mod output;
mod platform;
mod role_config;
mod state;
mod template_deps;
mod templates;
mod token;

use clap::Parser;

/// This binary, as the launcher of function processes: the kernel's name for the running
/// executable, which holds even while a rebuild replaces the file.
const LAUNCHER: &str = "/proc/self/exe";

fn main() -> std::process::ExitCode {
    // Function processes start from this binary (see `baton_runtime::process::launch_main`):
    // before anything else, so the launcher stays small and single-threaded.
    let mut args = std::env::args_os();
    if args.nth(1).as_deref() == Some(std::ffi::OsStr::new(baton_runtime::process::LAUNCH_COMMAND))
    {
        baton_runtime::process::launch_main(args);
    }
    let argv = match role_config::with_file(std::env::args_os().collect()) {
        Ok(argv) => argv,
        Err(error) => {
            eprintln!("error: {error:#}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let cli = cli::Cli::parse_from(argv);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: starting the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
