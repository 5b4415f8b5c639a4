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

/// mimalloc rather than glibc's malloc: a request allocates and frees hundreds of small
/// buffers on whichever worker thread polls it (headers, bodies, JSON, wasmtime's per-instance
/// tables); glibc's malloc was 13 % of a loaded node's samples, with contention on its arena
/// locks, mimalloc 10 % (BENCHMARKS.md, "CPU per request: the allocator, backtraces, a full
/// pool": a few per cent of CPU, under the machine's noise).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    no_error_backtraces();
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

/// Errors carry no backtrace unless `RUST_LIB_BACKTRACE` asks for one. With `RUST_BACKTRACE=1`
/// in a shell's environment (for panics), every `anyhow` error a request meets — wasmtime's
/// among them, one per refused instance when the pool is full — would walk the stack, at a
/// cost that made an overloaded node slower still; Baton prints errors with `Display`, so
/// nobody would see those backtraces. Panics still print theirs.
fn no_error_backtraces() {
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: called first thing in `main`, before the runtime or any other thread exists.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
}
