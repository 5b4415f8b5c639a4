//! `baton control`, `baton gateway`, `baton worker`: the roles of `baton up` as separate
//! processes speaking the cluster protocol (gRPC).

use crate::cli::{ControlArgs, GatewayArgs, WorkerArgs};
use crate::state::{RunningState, StateConfig};
use anyhow::{Context, bail};
use baton_api::cluster_auth::{ClientAuth, ServerAuth};
use baton_api::ready::{Ready, ReadyWorker};
use baton_api::{FunctionAdmin, Invoker, parse_duration, parse_memory};
use baton_control::autoscaler::KpaConfig;
use baton_control::cluster::{ClusterConfig, open_control};
use baton_control::open_store;
use baton_gateway::cluster::{ClusterAdmin, ClusterGatewayConfig, ClusterInvoker, SyncedAdmin};
use baton_runtime::fake::FakeRuntime;
use baton_runtime::process::{ProcessConfig, ProcessRuntime};
use baton_runtime::wasm::{CompileCache, WasmConfig, WasmRuntime};
use baton_runtime::{ArtifactStore, Runtime, Runtimes};
use baton_state::{Durability, Limits, ReplicationConfig};
use baton_worker::managed::{self, ManagedConfig, StateHooks};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tonic::service::interceptor::InterceptedService;

fn duration(text: &str, flag: &str) -> anyhow::Result<std::time::Duration> {
    parse_duration(text).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

/// Only members talk: a cluster listener beyond loopback needs the cluster token.
fn listen_address(text: &str, flag: &str, token: &Option<String>) -> anyhow::Result<SocketAddr> {
    let address: SocketAddr = text
        .parse()
        .with_context(|| format!("--{flag} {text:?} is not host:port"))?;
    if !address.ip().is_loopback() && token.is_none() {
        bail!(
            "--{flag} {address}: listening beyond loopback needs a cluster token (--cluster-token or BATON_CLUSTER_TOKEN)"
        );
    }
    if token.as_deref().is_some_and(|t| t.len() < 16) {
        bail!("the cluster token must be at least 16 characters");
    }
    Ok(address)
}

fn data_dir(given: Option<PathBuf>, name: &str) -> anyhow::Result<PathBuf> {
    let dir = given.unwrap_or_else(|| {
        crate::config::default_data_dir()
            .parent()
            .map(|p| p.join(name))
            .unwrap_or_else(|| PathBuf::from(format!(".{name}")))
    });
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    Ok(dir)
}

/// The control plane's runtime: it only checks components, so it needs no state agent.
fn wasm_runtime(dir: &Path, artifacts: &ArtifactStore) -> anyhow::Result<WasmRuntime> {
    WasmRuntime::new(
        &WasmConfig::default(),
        artifacts.clone(),
        CompileCache::open(dir.join("compiled"))?,
        None,
    )
    .context("starting the wasm runtime")
}

/// Runs the control plane until SIGINT or SIGTERM.
pub async fn control(args: ControlArgs) -> anyhow::Result<()> {
    let listen = listen_address(&args.listen, "listen", &args.cluster_token)?;
    let dir = data_dir(args.data_dir, "baton-control")?;
    let artifacts = ArtifactStore::open(dir.join("artifacts"))?;
    let config = ClusterConfig {
        placement: args.placement,
        keep_alive: baton_control::keep_alive::KeepAlive::parse(&args.keep_alive)?,
        heartbeat_interval: duration(&args.heartbeat_interval, "heartbeat-interval")?,
        missed_heartbeats: args.missed_heartbeats.max(1),
        scaling_interval: duration(&args.scaling_interval, "scaling-interval")?,
        kpa: KpaConfig {
            stable_window: duration(&args.stable_window, "stable-window")?,
            panic_window: duration(&args.panic_window, "panic-window")?,
            scale_to_zero_grace: duration(&args.scale_to_zero_grace, "scale-to-zero-grace")?,
            ..KpaConfig::default()
        },
        auth: ClientAuth::new(args.cluster_token.as_deref())?,
        ..ClusterConfig::default()
    };
    let store = open_store(&args.store, &dir.join("registry.redb"), &args.store_prefix)
        .await
        .with_context(|| format!("opening the store {:?}", args.store))?;
    let validator: Arc<dyn Runtime> = Arc::new(wasm_runtime(&dir, &artifacts)?);
    let (cluster, registry, control) = open_control(
        config,
        store,
        validator,
        artifacts,
        baton_control::SecretsKey::load_or_make(&dir)?,
    )
    .await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen} (in use? set --listen)"))?;
    let address = listener.local_addr()?;
    let service = InterceptedService::new(control, ServerAuth::new(args.cluster_token.as_deref()));
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                managed::nodelay(listener),
                crate::node::shutdown_signal(),
            ),
    );
    // Serve while adopting: workers and gateways reconnect meanwhile.
    let adopted = cluster.recover().await?;
    cluster.spawn_loops();
    println!(
        "baton control listening on grpc://{address} with {} function(s), {adopted} sandbox(es) adopted",
        registry.names().len()
    );
    write_ready(
        &args.ready_file,
        Ready {
            role: "control".into(),
            grpc: Some(format!("grpc://{address}")),
            ..Ready::default()
        },
    )?;
    server.await??;
    Ok(())
}

/// Runs a gateway until SIGINT or SIGTERM.
pub async fn gateway(args: GatewayArgs) -> anyhow::Result<()> {
    let listen: SocketAddr = args
        .listen
        .parse()
        .with_context(|| format!("--listen {:?} is not host:port", args.listen))?;
    if !listen.ip().is_loopback() && args.token.is_none() {
        bail!("listening on {listen} beyond loopback needs a token (--token or BATON_TOKEN)");
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("listening on {listen} (in use? set BATON_LISTEN)"))?;
    let address = listener.local_addr()?;
    let auth = ClientAuth::new(args.cluster_token.as_deref())?;
    let invoker = ClusterInvoker::start(ClusterGatewayConfig {
        id: args.id.unwrap_or_else(|| format!("gateway-{address}")),
        address: address.to_string(),
        control: args.control.clone(),
        load_balancing: args.load_balancing,
        metrics_interval: duration(&args.metrics_interval, "metrics-interval")?,
        auth: auth.clone(),
    })?;
    let admin = Arc::new(SyncedAdmin::new(
        Arc::new(ClusterAdmin::new(&args.control, &auth)?),
        invoker.clone(),
    ));
    let metrics_source = invoker.clone();
    let async_calls = baton_gateway::AsyncConfig {
        queue: args.async_queue.max(1),
        concurrency: args.async_concurrency.max(1),
        ..Default::default()
    };
    let async_jetstream = match &args.nats_url {
        Some(url) => {
            let config = baton_gateway::JetStreamConfig {
                stream: args.nats_stream.clone(),
                ack_wait: duration(&args.nats_ack_wait, "nats-ack-wait")?,
                ..baton_gateway::JetStreamConfig::new(url.clone())
            };
            Some(baton_gateway::JetStreamQueue::connect(&config, async_calls.queue).await?)
        }
        None => None,
    };
    let router = baton_gateway::router(
        baton_gateway::GatewayConfig {
            token: args.token,
            async_calls,
            async_jetstream,
            extra_metrics: Some(Arc::new(move |out: &mut String| {
                metrics_source.render_metrics(out)
            })),
            ..Default::default()
        },
        invoker.clone() as Arc<dyn Invoker>,
        admin as Arc<dyn FunctionAdmin>,
    );
    println!(
        "baton gateway listening on http://{address} following {}",
        args.control
    );
    write_ready(
        &args.ready_file,
        Ready {
            role: "gateway".into(),
            http: Some(format!("http://{address}")),
            ..Ready::default()
        },
    )?;
    let limits = baton_gateway::ListenerLimits::default();
    let stats = baton_gateway::ListenerStats::new("gateway", &limits);
    baton_gateway::serve(stats, listener, router, crate::node::shutdown_signal()).await;
    Ok(())
}

/// Runs one worker (or `--count` of them) until SIGINT or SIGTERM.
pub async fn worker(args: WorkerArgs) -> anyhow::Result<()> {
    let listen = listen_address(&args.listen, "listen", &args.cluster_token)?;
    let data_listen: SocketAddr = args
        .data_listen
        .parse()
        .with_context(|| format!("--data-listen {:?} is not host:port", args.data_listen))?;
    if args.count == 0 {
        bail!("--count must be at least 1");
    }
    if args.count > 1 && (listen.port() != 0 || data_listen.port() != 0) {
        bail!(
            "--count {} needs port 0 in --listen and --data-listen (each worker binds its own)",
            args.count
        );
    }
    let base_id = args
        .id
        .clone()
        .unwrap_or_else(|| format!("worker-{:08x}", fastrand::u32(..)));
    let dir = data_dir(args.data_dir.clone(), &format!("baton-{base_id}"))?;
    let artifacts = ArtifactStore::open(dir.join("artifacts"))?;
    let (runtime, state, objects) = match args.runtime.as_str() {
        "fake" => {
            let fake = FakeRuntime {
                creation_delay: duration(&args.fake_delay, "fake-delay")?,
            };
            (Arc::new(fake) as Arc<dyn Runtime>, None, None)
        }
        "real" => real_runtime(&args, &dir, &artifacts).await?,
        other => bail!("--runtime {other:?}: expected `real` or `fake`"),
    };
    let cpu_cores = args
        .cpu
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64));
    let memory_bytes = match &args.memory {
        Some(text) => parse_memory(text).map_err(|e| anyhow::anyhow!("--memory: {e}"))?,
        None => baton_runtime::resources::memory_bytes().unwrap_or(8 << 30),
    };
    // The workers of one process share its state agent: one node, one replica.
    let hooks = state.clone().map(|state| StateHooks {
        membership: {
            let state = state.clone();
            Arc::new(move |peers: Vec<String>| state.replication.set_peers(peers))
        },
        metrics: {
            let state = crate::node::state_metrics(state.metrics.clone());
            let objects = objects.clone().map(crate::objects::metrics);
            Arc::new(move |out: &mut String| {
                state(out)?;
                match &objects {
                    Some(objects) => objects(out),
                    None => Ok(()),
                }
            })
        },
    });
    let state_address = state
        .as_ref()
        .map(|s| s.replication.address().to_string())
        .unwrap_or_default();
    let mut ready = Ready {
        role: "worker".into(),
        state_api: state.as_ref().map(|s| format!("http://{}", s.api)),
        state_peers: state.as_ref().map(|_| state_address.clone()),
        ..Ready::default()
    };
    let mut hosts = Vec::with_capacity(args.count);
    for n in 0..args.count {
        let id = if args.count == 1 {
            base_id.clone()
        } else {
            format!("{base_id}-{n}")
        };
        let host = managed::start(
            ManagedConfig {
                id: id.clone(),
                grpc_address: String::new(),
                data_address: String::new(),
                cpu_cores,
                memory_bytes,
                log_lines: 1000,
                token: args.cluster_token.clone(),
                state_address: state_address.clone(),
            },
            listen,
            data_listen,
            runtime.clone(),
            artifacts.clone(),
            &args.control,
            hooks.clone(),
        )
        .await
        .with_context(|| format!("starting worker {id}"))?;
        // Read by tests and scripts: the readiness line, with every address.
        let state = match &state {
            Some(s) => format!(" state-api http://{} state-peers {}", s.api, state_address),
            None => String::new(),
        };
        println!(
            "baton worker {id} grpc {} data {}{state} following {}",
            host.grpc_address(),
            host.data_address(),
            args.control
        );
        ready.workers.push(ReadyWorker {
            id,
            grpc: host.grpc_address().to_string(),
            data: host.data_address().to_string(),
        });
        hosts.push(host);
    }
    if let Some(objects) = &objects {
        // The process's workers share its objects: their sandboxes share its memory.
        tokio::spawn(crate::objects::elastic(
            objects.clone(),
            hosts,
            memory_bytes.saturating_mul(args.count as u64),
            objects.configured_capacity(),
        ));
    }
    write_ready(&args.ready_file, ready)?;
    crate::node::shutdown_signal().await;
    if let Some(objects) = objects {
        crate::objects::flush_at_shutdown(&objects).await;
    }
    Ok(())
}

/// Wasm components and processes, with the worker's state agent behind both (unless
/// `--no-state`), as on a node.
async fn real_runtime(
    args: &WorkerArgs,
    dir: &Path,
    artifacts: &ArtifactStore,
) -> anyhow::Result<RealRuntime> {
    // The process's objects, from the `[objects]` section of its config file: each worker
    // process has its own cache and pending log; workers share objects through a shared
    // store (`store = "s3"`).
    let settings = crate::objects::ObjectsSettings::resolve(
        &crate::objects::section_of(args.config.as_deref())?,
        dir,
    )?;
    let objects = match settings.enabled {
        true => Some(settings.start(dir)?),
        false => None,
    };
    let state = match args.no_state {
        true => None,
        false => {
            let config = StateConfig {
                enabled: true,
                api_listen: crate::state::api_address(&args.state_api, "--state-api")?,
                replication: ReplicationConfig {
                    listen: listen_address(
                        &args.state_listen,
                        "state-listen",
                        &args.cluster_token,
                    )?,
                    secret: args.cluster_token.clone(),
                    ..ReplicationConfig::default()
                },
                durability: match args.state_durability.as_str() {
                    "durable" => Durability::Durable,
                    "async" => Durability::Async,
                    other => bail!("--state-durability {other:?}: expected durable or async"),
                },
                limits: Limits::default(),
                fault_injection: false,
            };
            // Tools on this machine reach every namespace with it, as on a node.
            let admin = match &args.token {
                Some(token) => token.clone(),
                None => crate::token::load_or_create(dir)?,
            };
            let capabilities = baton_state::Capabilities::new(Some(admin));
            let routes = objects.as_ref().map(|objects| {
                axum::Router::new()
                    .nest(
                        "/v1",
                        baton_cache::http::router(objects.clone(), capabilities.clone()),
                    )
                    .merge(baton_cache::s3::router(
                        objects.clone(),
                        capabilities.clone(),
                    ))
            });
            let running = crate::state::start(&config, dir, capabilities.clone(), routes).await?;
            Some((Arc::new(running), capabilities))
        }
    };
    let wasm = WasmRuntime::new(
        &WasmConfig::default(),
        artifacts.clone(),
        CompileCache::open(dir.join("compiled"))?,
        state.as_ref().map(|(s, _)| s.agent.clone()),
    )
    .context("starting the wasm runtime")?;
    let wasm = match &objects {
        Some(objects) => wasm.with_objects(objects.clone()),
        None => wasm,
    };
    if let Some((state, _)) = &state {
        wasm.outbound().add_listener(state.api);
        wasm.outbound().add_listener(state.replication.address());
    }
    if let Some(gateway) = &args.gateway {
        let (uri, address) = crate::gateway_link::parse(gateway)?;
        wasm.outbound()
            .set_gateway(address, crate::gateway_link::service(uri));
    }
    // Functions without a directory start in an empty one, never the data directory.
    let workdir = dir.join("workdir");
    std::fs::create_dir_all(&workdir)?;
    let process = ProcessRuntime::new(ProcessConfig {
        default_dir: workdir,
        ready_timeout: std::time::Duration::from_secs(10),
        platform_api: state.as_ref().map(|(s, _)| format!("http://{}", s.api)),
        platform_routes: state
            .as_ref()
            .map(|(s, _)| crate::node::platform_service(s.router.clone())),
        capabilities: state.as_ref().map(|(_, c)| c.clone()),
        objects: objects.clone(),
        outbound: wasm.outbound(),
        isolate: true,
        launcher: Some(crate::LAUNCHER.into()),
        hide: vec![dir.to_path_buf()],
        secrets_dir: dir.join("run").join("secrets"),
    });
    let runtimes = Runtimes {
        wasm: Arc::new(wasm),
        process: Arc::new(process),
    };
    Ok((Arc::new(runtimes), state.map(|(s, _)| s), objects))
}

/// The runtimes, the state agent and the objects behind them.
type RealRuntime = (
    Arc<dyn Runtime>,
    Option<Arc<RunningState>>,
    Option<baton_cache::Objects>,
);

/// Writes the ready file, when asked for one (`--ready-file`).
fn write_ready(path: &Option<std::path::PathBuf>, ready: Ready) -> anyhow::Result<()> {
    match path {
        Some(path) => ready
            .write(path)
            .with_context(|| format!("writing the ready file {}", path.display())),
        None => Ok(()),
    }
}
