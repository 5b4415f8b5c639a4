//! `baton up`: every role in one process, wired in-process.

use crate::config::NodeConfig;
use anyhow::Context;
use baton_api::Invoker;
use baton_control::RedbStore;
use baton_runtime::process::{ProcessConfig, ProcessRuntime};
use baton_runtime::wasm::{
    CompileCache, PlatformFuture, PlatformService, WasiBody, WasmRuntime, platform_body,
};
use baton_runtime::{ArtifactStore, Runtimes};
use std::sync::Arc;

/// Runs a node until SIGINT or SIGTERM.
pub async fn up(config: NodeConfig) -> anyhow::Result<()> {
    // No other process of this user may read this one's memory or /proc/<pid>/environ (which
    // holds the token), nor attach a debugger to it.
    // SAFETY: prctl with PR_SET_DUMPABLE takes integer arguments only.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    let data = &config.data_dir;
    std::fs::create_dir_all(data)
        .with_context(|| format!("creating data directory {}", data.display()))?;
    let token = match &config.token {
        Some(token) => token.clone(),
        None => crate::token::load_or_create(data)?,
    };
    let artifacts = ArtifactStore::open(data.join("artifacts"))?;
    let cache = CompileCache::open(data.join("compiled"))?;
    let (stored, compiled) = (artifacts.clone(), cache.clone());
    let capabilities = baton_state::Capabilities::new(Some(token.clone()));
    let objects = match config.objects.enabled {
        true => Some(config.objects.start(data)?),
        false => None,
    };
    // The objects API at `/v1/objects` of the platform API and `/system/objects` of the
    // gateway.
    let objects_routes = objects
        .as_ref()
        .map(|o| baton_cache::http::router(o.clone(), capabilities.clone()));
    let state = match config.state.enabled {
        true => Some(
            crate::state::start(
                &config.state,
                data,
                capabilities.clone(),
                objects.as_ref().zip(objects_routes.clone()).map(|(o, r)| {
                    axum::Router::new()
                        .nest("/v1", r)
                        .merge(baton_cache::s3::router(o.clone(), capabilities.clone()))
                }),
            )
            .await?,
        ),
        false => None,
    };
    let wasm = WasmRuntime::new(
        &config.wasm,
        artifacts.clone(),
        cache,
        state.as_ref().map(|s| s.agent.clone()),
    )
    .context("starting the wasm runtime")?;
    let wasm = match &objects {
        Some(objects) => wasm.with_objects(objects.clone()),
        None => wasm,
    };
    let outbound = wasm.outbound();
    if let Some(state) = &state {
        outbound.add_listener(state.api);
        outbound.add_listener(state.replication.address());
    }
    // Functions deployed without a directory start in an empty one, never the data directory.
    let workdir = data.join("workdir");
    std::fs::create_dir_all(&workdir).with_context(|| format!("creating {}", workdir.display()))?;
    let process = ProcessRuntime::new(ProcessConfig {
        default_dir: workdir,
        ready_timeout: config.ready_timeout,
        platform_api: state.as_ref().map(|s| format!("http://{}", s.api)),
        platform_routes: state.as_ref().map(|s| platform_service(s.router.clone())),
        capabilities: Some(capabilities),
        objects: objects.clone(),
        outbound: outbound.clone(),
        isolate: true,
        launcher: Some(crate::LAUNCHER.into()),
        hide: vec![data.clone()],
        secrets_dir: data.join("run").join("secrets"),
    });
    let isolation = process.isolation().clone();
    let cgroups = process.cgroups();
    let runtimes = Runtimes {
        wasm: Arc::new(wasm),
        process: Arc::new(process),
    };
    let store = RedbStore::open(&data.join("registry.redb")).context(
        "opening the registry (is another baton using this data directory? set BATON_DATA_DIR)",
    )?;
    let platform = crate::platform::start(
        node_cluster_config(config.worker.reap_interval, config.worker.keep_alive),
        Arc::new(store),
        Arc::new(runtimes),
        artifacts,
        baton_control::SecretsKey::load_or_make(data)?,
        config.worker.log_lines,
        config.worker.memory_bytes,
    )
    .await?;
    let control = platform.control.clone();
    if let Some(objects) = &objects {
        tokio::spawn(crate::objects::elastic(
            objects.clone(),
            vec![platform.host.clone()],
            platform.memory_bytes,
            objects.configured_capacity(),
        ));
    }
    if config.examples {
        crate::examples::deploy(control.as_ref(), data).await?;
    }
    // Nothing deploys yet: what no registration refers to was left by a crash.
    let in_use = control.components_in_use();
    let removed = stored.sweep(&in_use) + compiled.sweep(&in_use);
    if removed > 0 {
        tracing::info!(removed, "orphan artifacts and compiled files removed");
    }
    let federation = match config.federation.clone() {
        Some(federation) => Some(
            crate::federation::start(
                federation,
                data,
                Arc::new(crate::federation::NodeSite {
                    control: control.clone(),
                    artifacts: stored.clone(),
                    invoker: platform.invoker.clone(),
                }),
                platform.invoker.clone(),
            )
            .await?,
        ),
        None => None,
    };
    let invoker: Arc<dyn Invoker> = match &federation {
        Some(site) => baton_federation::FederatedInvoker::new(site.federation.clone()),
        None => platform.invoker.clone(),
    };
    let gateway_stats = baton_gateway::ListenerStats::new("gateway", &config.listener);
    let gateway = baton_gateway::GatewayConfig {
        token: Some(token),
        async_calls: config.async_calls.clone(),
        async_journal: Some(baton_gateway::AsyncJournal::open(
            &data.join("async-calls.redb"),
        )?),
        async_jetstream: None,
        extra_metrics: Some(node_metrics(
            state
                .as_ref()
                .map(|s| state_metrics(s.metrics.clone()))
                .into_iter()
                .chain(objects.clone().map(crate::objects::metrics))
                .chain(std::iter::once(cluster_metrics(platform.cluster.clone())))
                .chain(federation.as_ref().map(|site| {
                    let federation = site.federation.clone();
                    Arc::new(move |out: &mut String| federation.render_metrics(out))
                        as baton_gateway::MetricsSource
                }))
                .collect(),
            outbound.clone(),
            platform.invoker.clone(),
            std::iter::once(gateway_stats.clone())
                .chain(state.as_ref().map(|s| s.api_stats.clone()))
                .collect(),
        )),
        extra_system: federation
            .as_ref()
            .map(|site| crate::federation::status_routes(site.federation.clone())),
    };
    let mut router = baton_gateway::router(gateway, invoker, platform.admin.clone());
    if let Some(routes) = objects_routes {
        router = router.merge(axum::Router::new().nest("/system", routes));
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("listening on {} (in use? set BATON_LISTEN)", config.listen))?;
    let address = listener.local_addr()?;
    outbound.set_gateway(address, platform_service(router.clone()));
    let names = control.names();
    if let Some(state) = &state {
        // Read by tests and scripts, like the readiness line after it.
        println!(
            "baton state api on http://{} peers on {}",
            state.api,
            state.replication.address()
        );
    }
    if let Some(path) = &config.ready_file {
        let ready = baton_api::ready::Ready {
            role: "up".into(),
            http: Some(format!("http://{address}")),
            state_api: state.as_ref().map(|s| format!("http://{}", s.api)),
            state_peers: state.as_ref().map(|s| s.replication.address().to_string()),
            federation: federation.as_ref().map(|f| f.address.to_string()),
            site: federation.as_ref().map(|f| f.federation.id().to_string()),
            ..Default::default()
        };
        ready
            .write(path)
            .with_context(|| format!("writing the ready file {}", path.display()))?;
    }
    println!(
        "baton listening on http://{address} with {} function(s): {}",
        names.len(),
        names.join(", ")
    );
    if let Some(site) = &federation {
        println!(
            "baton federation site {} on {} ({} strategy)",
            site.federation.id(),
            site.address,
            site.federation.strategy()
        );
    }
    tracing::info!(%address, data_dir = %data.display(), "baton up");
    match isolation {
        Ok(()) => tracing::info!(
            "process functions are isolated: a user each, a read-only system, a private /tmp, their own PID namespace, their own network (loopback only; outgoing requests through the node's proxy, under the policy)"
        ),
        Err(why) => tracing::warn!(
            %why,
            "process functions are NOT isolated on this node: they run as its user and see its files (README, \"Behaviour worth knowing\")"
        ),
    }
    match cgroups {
        Ok(()) => tracing::info!(
            "process sandboxes have control groups: their memory limit, at most 256 processes, CPU shared by weight with the node"
        ),
        Err(why) => tracing::warn!(
            %why,
            "process sandboxes have NO control groups on this node: memory is bounded by RLIMIT_DATA, and they compete for CPU with the node"
        ),
    }
    baton_gateway::serve(gateway_stats, listener, router, shutdown_signal()).await;
    if let Some(objects) = objects {
        crate::objects::flush_at_shutdown(&objects).await;
    }
    tracing::info!("baton stopped");
    Ok(())
}

/// The cluster manager of a single node: its one worker runs in the same process and cannot
/// die on its own, so it is never declared dead for missing heartbeats.
fn node_cluster_config(
    scaling_interval: std::time::Duration,
    keep_alive: baton_control::keep_alive::KeepAlive,
) -> baton_control::cluster::ClusterConfig {
    let defaults = baton_control::cluster::ClusterConfig::default();
    baton_control::cluster::ClusterConfig {
        missed_heartbeats: 3600,
        scaling_interval,
        validate_processes: true,
        keep_alive,
        // Functions without com.openfaas.scale.zero-duration stay warm 5 minutes, as the
        // single node always kept them.
        kpa: baton_control::autoscaler::KpaConfig {
            scale_to_zero_grace: std::time::Duration::from_secs(300),
            ..defaults.kpa.clone()
        },
        ..defaults
    }
}

/// The gateway's (or the platform API's) routes as functions reach them: in-process, without
/// a TCP hop.
pub(crate) fn platform_service(router: axum::Router) -> PlatformService {
    Arc::new(move |request: http::Request<WasiBody>| {
        let router = router.clone();
        Box::pin(async move {
            let request = request.map(axum::body::Body::new);
            let response = match tower::ServiceExt::oneshot(router, request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            response.map(platform_body)
        }) as PlatformFuture
    })
}

/// The node's own metrics beside the gateway's: the state agent's and the objects', when it
/// runs them, and the outgoing-request policy's.
fn node_metrics(
    sources: Vec<baton_gateway::MetricsSource>,
    outbound: Arc<baton_runtime::wasm::Outbound>,
    invoker: Arc<baton_gateway::cluster::ClusterInvoker>,
    listeners: Vec<Arc<baton_gateway::ListenerStats>>,
) -> baton_gateway::MetricsSource {
    Arc::new(move |out: &mut String| {
        for source in &sources {
            source(out)?;
        }
        invoker.render_metrics(out)?;
        for listener in &listeners {
            listener.render(out)?;
        }
        outbound.render_metrics(out)
    })
}

/// Renders the cluster manager's metrics (keep-alive evictions).
fn cluster_metrics(cluster: Arc<baton_control::cluster::Cluster>) -> baton_gateway::MetricsSource {
    Arc::new(move |out: &mut String| cluster.render_metrics(out))
}

/// Renders the state agent's metrics (every gauge is kept current; a scrape walks nothing).
pub(crate) fn state_metrics(metrics: baton_state::StateMetrics) -> baton_gateway::MetricsSource {
    Arc::new(move |out: &mut String| metrics.encode(out))
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
