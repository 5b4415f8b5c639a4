//! `baton up`: every role in one process, wired in-process.

use crate::config::NodeConfig;
use anyhow::Context;
use baton_api::{FunctionAdmin, FunctionHost, Invoker};
use baton_control::{ControlPlane, RedbStore};
use baton_runtime::process::{ProcessConfig, ProcessRuntime};
use baton_runtime::wasm::{CompileCache, WasmRuntime};
use baton_runtime::{ArtifactStore, Runtimes};
use baton_worker::Worker;
use std::sync::Arc;

/// Runs a node until SIGINT or SIGTERM.
pub async fn up(config: NodeConfig) -> anyhow::Result<()> {
    let data = &config.data_dir;
    std::fs::create_dir_all(data)
        .with_context(|| format!("creating data directory {}", data.display()))?;
    let artifacts = ArtifactStore::open(data.join("artifacts"))?;
    let cache = CompileCache::open(data.join("compiled"))?;
    let state = match config.state.enabled {
        true => Some(crate::state::start(&config.state, data).await?),
        false => None,
    };
    let wasm = WasmRuntime::new(
        &config.wasm,
        artifacts.clone(),
        cache,
        state.as_ref().map(|s| s.agent.clone()),
    )
    .context("starting the wasm runtime")?;
    let process = ProcessRuntime::new(ProcessConfig {
        default_dir: data.clone(),
        ready_timeout: config.ready_timeout,
        platform_api: state.as_ref().map(|s| format!("http://{}", s.api)),
    });
    let runtimes = Runtimes {
        wasm: Arc::new(wasm),
        process: Arc::new(process),
    };
    let worker = Worker::new(Arc::new(runtimes), config.worker.clone());
    let _maintenance = worker.run_maintenance();
    let store = RedbStore::open(&data.join("registry.redb")).context(
        "opening the registry (is another baton using this data directory? set BATON_DATA_DIR)",
    )?;
    let control = Arc::new(
        ControlPlane::open(
            Arc::new(store),
            worker.clone() as Arc<dyn FunctionHost>,
            artifacts,
        )
        .await?,
    );
    if config.examples {
        crate::examples::deploy(control.as_ref(), data).await?;
    }
    let gateway = baton_gateway::GatewayConfig {
        token: config.token.clone(),
        async_calls: config.async_calls.clone(),
        extra_metrics: state
            .as_ref()
            .map(|s| state_metrics(s.agent.clone(), s.metrics.clone())),
    };
    let router = baton_gateway::router(
        gateway,
        worker.clone() as Arc<dyn Invoker>,
        control.clone() as Arc<dyn FunctionAdmin>,
    );
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {} (in use? set BATON_LISTEN)", config.listen))?;
    let address = listener.local_addr()?;
    let names = control.names();
    if let Some(state) = &state {
        // Read by tests and scripts, like the readiness line after it.
        println!(
            "baton state api on http://{} peers on {}",
            state.api,
            state.replication.address()
        );
    }
    // This line is the readiness signal scripts and tests wait for.
    println!(
        "baton listening on http://{address} with {} function(s): {}",
        names.len(),
        names.join(", ")
    );
    tracing::info!(%address, data_dir = %data.display(), "baton up");
    axum::serve(listener, router)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    tracing::info!("baton stopped");
    Ok(())
}

/// Renders the state agent's metrics, refreshing the gauges that need a walk of the objects.
fn state_metrics(
    agent: baton_state::Agent,
    metrics: baton_state::StateMetrics,
) -> baton_gateway::MetricsSource {
    Arc::new(move |out: &mut String| {
        agent.refresh_gauges();
        metrics.encode(out)
    })
}

pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(term) => term,
        Err(_) => return ctrl_c.await.unwrap_or(()),
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = term.recv() => {}
    }
}
