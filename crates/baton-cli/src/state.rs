//! The `[state]` section of the node config and the start of the node's state agent.

use crate::cli::UpArgs;
use anyhow::{Context, bail};
use baton_state::{Agent, Durability, Limits, Replication, ReplicationConfig, StateMetrics};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StateSection {
    enabled: Option<bool>,
    api_listen: Option<String>,
    listen: Option<String>,
    peers: Option<Vec<String>>,
    cluster: Option<String>,
    secret: Option<String>,
    durability: Option<Durability>,
    coalesce: Option<String>,
    anti_entropy: Option<String>,
    max_value_bytes: Option<usize>,
    max_vector_len: Option<u64>,
    max_objects: Option<usize>,
    fault_injection: Option<bool>,
}

/// The node's state agent settings.
#[derive(Debug, Clone)]
pub struct StateConfig {
    pub enabled: bool,
    pub api_listen: SocketAddr,
    pub replication: ReplicationConfig,
    pub durability: Durability,
    pub limits: Limits,
    pub fault_injection: bool,
}

fn duration(text: &str, key: &str) -> anyhow::Result<std::time::Duration> {
    baton_api::parse_duration(text).map_err(|e| anyhow::anyhow!("{key}: {e}"))
}

fn address(text: &str, key: &str) -> anyhow::Result<SocketAddr> {
    text.parse()
        .with_context(|| format!("{key}: {text:?} is not host:port (e.g. 127.0.0.1:7701)"))
}

/// The platform API's address: loopback only, it is node-local.
pub(crate) fn api_address(text: &str, key: &str) -> anyhow::Result<SocketAddr> {
    let api_listen = address(text, key)?;
    if !api_listen.ip().is_loopback() {
        bail!("{key} {api_listen} must be a loopback address: the platform API is node-local");
    }
    Ok(api_listen)
}

impl StateConfig {
    pub(crate) fn resolve(args: &UpArgs, file: StateSection) -> anyhow::Result<StateConfig> {
        let mut replication = ReplicationConfig::default();
        let api_listen = api_address(
            args.state_api
                .as_deref()
                .or(file.api_listen.as_deref())
                .unwrap_or("127.0.0.1:0"),
            "state.api_listen",
        )?;
        if let Some(listen) = args.state_listen.as_deref().or(file.listen.as_deref()) {
            replication.listen = address(listen, "state.listen")?;
        }
        if let Some(peers) = args.state_peers.clone().or(file.peers) {
            replication.peers = peers.into_iter().filter(|p| !p.is_empty()).collect();
        }
        if let Some(cluster) = file.cluster {
            replication.cluster = cluster;
        }
        replication.secret = args
            .state_secret
            .clone()
            .or(file.secret)
            .filter(|s| !s.is_empty());
        if !replication.listen.ip().is_loopback() && replication.secret.is_none() {
            bail!(
                "refusing to accept state peers on {} without a secret: set BATON_STATE_SECRET or listen on 127.0.0.1",
                replication.listen
            );
        }
        if let Some(text) = &file.coalesce {
            replication.coalesce = duration(text, "state.coalesce")?;
            if replication.coalesce.is_zero() {
                bail!("state.coalesce must be more than 0");
            }
        }
        if let Some(text) = &file.anti_entropy {
            replication.anti_entropy = duration(text, "state.anti_entropy")?;
            if replication.anti_entropy.is_zero() {
                bail!("state.anti_entropy must be more than 0");
            }
        }
        let mut limits = Limits::default();
        if let Some(n) = file.max_value_bytes {
            limits.max_value_bytes = n;
        }
        if let Some(n) = file.max_vector_len {
            limits.max_vector_len = n;
        }
        if let Some(n) = file.max_objects {
            limits.max_objects = n;
        }
        Ok(StateConfig {
            enabled: file.enabled.unwrap_or(true),
            api_listen,
            replication,
            durability: file.durability.unwrap_or(Durability::Durable),
            limits,
            fault_injection: file.fault_injection.unwrap_or(false),
        })
    }
}

/// A running state agent: its replication and its local API.
pub struct RunningState {
    pub agent: Agent,
    /// Connections of the platform API's listener.
    pub api_stats: Arc<baton_gateway::ListenerStats>,
    pub replication: Replication,
    pub api: SocketAddr,
    /// The local API's routes, which isolated process functions reach in-process.
    pub router: axum::Router,
    pub metrics: StateMetrics,
}

/// Opens the agent on `data`, starts replication and serves the local API, with `extra`
/// routes beside the state's (the objects API).
pub async fn start(
    config: &StateConfig,
    data: &Path,
    capabilities: Arc<baton_state::Capabilities>,
    extra: Option<axum::Router>,
) -> anyhow::Result<RunningState> {
    let metrics = StateMetrics::default();
    let agent = Agent::open(
        &data.join("state.redb"),
        config.limits.clone(),
        config.durability,
        metrics.clone(),
    )
    .context("opening the state log (is another baton using this data directory?)")?;
    let replication = Replication::start(agent.clone(), config.replication.clone()).await?;
    let listener = tokio::net::TcpListener::bind(config.api_listen)
        .await
        .with_context(|| format!("state API: listening on {}", config.api_listen))?;
    let api = listener.local_addr()?;
    let mut router = baton_state::http::router(agent.clone(), config.fault_injection, capabilities);
    if let Some(extra) = extra {
        router = router.merge(extra);
    }
    // Process functions are the clients: a few connections each, never thousands.
    let limits = baton_gateway::ListenerLimits {
        max_connections: 1024,
        ..Default::default()
    };
    let api_stats = baton_gateway::ListenerStats::new("platform-api", &limits);
    tokio::spawn(baton_gateway::serve(
        api_stats.clone(),
        listener,
        router.clone(),
        std::future::pending(),
    ));
    Ok(RunningState {
        api_stats,
        agent,
        replication,
        api,
        router,
        metrics,
    })
}
