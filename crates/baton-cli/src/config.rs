//! Node configuration: defaults, then the TOML file, then environment variables and flags
//! (clap reads both; a flag wins over its variable).

use crate::cli::UpArgs;
use anyhow::{Context, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The config file's shape; every key is optional and unknown keys are errors.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    token: Option<String>,
    examples: Option<bool>,
    log_format: Option<String>,
    #[serde(default)]
    wasm: WasmSection,
    #[serde(default)]
    worker: WorkerSection,
    #[serde(default, rename = "async")]
    async_calls: AsyncSection,
    #[serde(default)]
    process: ProcessSection,
    #[serde(default)]
    state: crate::state::StateSection,
    #[serde(default)]
    objects: crate::objects::ObjectsSection,
    #[serde(default)]
    outbound: OutboundSection,
    #[serde(default)]
    listener: ListenerSection,
    #[serde(default)]
    federation: crate::federation::FederationSection,
    /// The cluster roles' sections, checked by `role_config` and read by those roles.
    #[serde(default, rename = "control")]
    _control: Option<toml::Table>,
    #[serde(default, rename = "gateway")]
    _gateway: Option<toml::Table>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ListenerSection {
    header_read_timeout: Option<String>,
    body_read_timeout: Option<String>,
    max_connections: Option<usize>,
}

fn listener_limits(section: &ListenerSection) -> anyhow::Result<baton_gateway::ListenerLimits> {
    let mut limits = baton_gateway::ListenerLimits::default();
    if let Some(text) = &section.header_read_timeout {
        limits.header_read_timeout = duration(text, "listener.header_read_timeout")?;
    }
    if let Some(text) = &section.body_read_timeout {
        limits.body_read_timeout = duration(text, "listener.body_read_timeout")?;
    }
    if let Some(max) = section.max_connections {
        if max == 0 {
            bail!("listener.max_connections must be at least 1");
        }
        limits.max_connections = max;
    }
    Ok(limits)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutboundSection {
    /// Loopback or link-local networks functions may reach when their allow-list names them.
    allow_private: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WasmSection {
    pool_instances: Option<u32>,
    max_memory: Option<String>,
    /// `auto` (the default), `always` or `never`; env `BATON_WASM_COPY_ON_WRITE`.
    copy_on_write: Option<String>,
    /// With `auto`: the initialised memory from which a component is mapped (default `1Mi`).
    cow_threshold: Option<String>,
}

/// `[wasm] copy_on_write` and `cow_threshold` as a policy.
fn copy_on_write(
    mode: Option<&str>,
    threshold: Option<&str>,
) -> anyhow::Result<baton_runtime::wasm::CopyOnWrite> {
    use baton_runtime::wasm::{CopyOnWrite, DEFAULT_COW_THRESHOLD};
    let threshold_bytes = match threshold {
        Some(text) => {
            baton_api::parse_memory(text).map_err(|e| anyhow::anyhow!("wasm.cow_threshold: {e}"))?
        }
        None => DEFAULT_COW_THRESHOLD,
    };
    Ok(match mode.unwrap_or("auto") {
        "auto" => CopyOnWrite::Auto { threshold_bytes },
        "always" => CopyOnWrite::Always,
        "never" => CopyOnWrite::Never,
        other => bail!("wasm.copy_on_write {other:?} is none of `auto`, `always`, `never`"),
    })
}

/// The node's worker: how often the autoscaler decides (and so how soon idle sandboxes go),
/// and how much output it keeps.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// How often scaling decisions are taken (scale to zero, `scaling.min` restored).
    /// Default 1 s.
    pub reap_interval: Duration,
    /// Lines of output kept per function for `/system/logs`. Default 1000.
    pub log_lines: usize,
    /// Which idle sandboxes stay (`[worker] keep_alive`, env `BATON_KEEP_ALIVE`). Default
    /// `ttl`.
    pub keep_alive: baton_control::keep_alive::KeepAlive,
    /// Memory the node's sandboxes may book (`[worker] memory`) [default: the machine's].
    pub memory_bytes: Option<u64>,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            reap_interval: Duration::from_secs(1),
            log_lines: 1000,
            keep_alive: baton_control::keep_alive::KeepAlive::Ttl,
            memory_bytes: None,
        }
    }
}

/// `[worker]`: the node's worker keys here; the rest are the `baton worker` role's flags,
/// checked by `role_config`.
#[derive(Debug, Default, Deserialize)]
struct WorkerSection {
    reap_interval: Option<String>,
    log_lines: Option<usize>,
    keep_alive: Option<String>,
    /// Also the `baton worker` role's `--memory`: the same budget.
    memory: Option<String>,
    #[serde(flatten)]
    _role: toml::Table,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AsyncSection {
    queue: Option<usize>,
    concurrency: Option<usize>,
    attempts: Option<u32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProcessSection {
    ready_timeout: Option<String>,
}

/// A node's resolved settings.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub token: Option<String>,
    pub examples: bool,
    pub log_json: bool,
    pub wasm: baton_runtime::wasm::WasmConfig,
    pub worker: WorkerSettings,
    pub async_calls: baton_gateway::AsyncConfig,
    pub ready_timeout: Duration,
    pub state: crate::state::StateConfig,
    /// The object store and the cache in front of it.
    pub objects: crate::objects::ObjectsSettings,
    /// Where to say, once listening, what this node serves (`--ready-file`).
    pub ready_file: Option<PathBuf>,
    /// Bounds of the gateway's listener.
    pub listener: baton_gateway::ListenerLimits,
    /// The node's part in a federation of sites, when it has one.
    pub federation: Option<baton_federation::FederationConfig>,
}

pub(crate) fn duration(text: &str, key: &str) -> anyhow::Result<Duration> {
    baton_api::parse_duration(text).map_err(|e| anyhow::anyhow!("{key}: {e}"))
}

pub fn default_data_dir() -> PathBuf {
    if let Some(xdg) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(xdg).join("baton");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/share/baton"),
        None => PathBuf::from(".baton"),
    }
}

impl NodeConfig {
    /// Resolves `args` over the config file over the defaults.
    pub fn resolve(args: &UpArgs) -> anyhow::Result<Self> {
        let file = match &args.config {
            Some(path) => load(path)?,
            None => FileConfig::default(),
        };
        let listen_text = args
            .listen
            .clone()
            .or(file.listen)
            .unwrap_or_else(|| "127.0.0.1:8080".into());
        let listen: SocketAddr = listen_text.parse().with_context(|| {
            format!("listen address {listen_text:?} is not host:port (e.g. 127.0.0.1:8080)")
        })?;
        let token = args.token.clone().or(file.token).filter(|t| !t.is_empty());
        if !listen.ip().is_loopback() && token.is_none() {
            bail!(
                "refusing to listen on {listen} without a token: set BATON_TOKEN or --token, or listen on 127.0.0.1"
            );
        }
        let log_format = args
            .log_format
            .clone()
            .or(file.log_format)
            .unwrap_or_else(|| "text".into());
        let log_json = match log_format.as_str() {
            "text" => false,
            "json" => true,
            other => bail!("log format {other:?} is neither `text` nor `json`"),
        };
        let mut wasm = baton_runtime::wasm::WasmConfig::default();
        if let Some(instances) = file.wasm.pool_instances {
            wasm.pool_instances = instances;
        }
        if let Some(memory) = &file.wasm.max_memory {
            wasm.max_memory_bytes = baton_api::parse_memory(memory)
                .map_err(|e| anyhow::anyhow!("wasm.max_memory: {e}"))?;
        }
        let cow_mode = std::env::var("BATON_WASM_COPY_ON_WRITE")
            .ok()
            .or(file.wasm.copy_on_write);
        wasm.copy_on_write =
            copy_on_write(cow_mode.as_deref(), file.wasm.cow_threshold.as_deref())?;
        let allow_private = match std::env::var("BATON_OUTBOUND_ALLOW_PRIVATE") {
            Ok(list) => list
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect(),
            Err(_) => file.outbound.allow_private.unwrap_or_default(),
        };
        for network in allow_private {
            wasm.outbound.allow_private.push(
                network
                    .parse()
                    .map_err(|e| anyhow::anyhow!("outbound.allow_private: {e}"))?,
            );
        }
        let mut worker = WorkerSettings::default();
        if let Some(interval) = &file.worker.reap_interval {
            worker.reap_interval = duration(interval, "worker.reap_interval")?;
        }
        if let Some(lines) = file.worker.log_lines {
            worker.log_lines = lines;
        }
        let keep_alive = std::env::var("BATON_KEEP_ALIVE")
            .ok()
            .or(file.worker.keep_alive);
        if let Some(policy) = keep_alive {
            worker.keep_alive = baton_control::keep_alive::KeepAlive::parse(&policy)
                .map_err(|e| anyhow::anyhow!("worker.keep_alive: {e}"))?;
        }
        if let Some(memory) = &file.worker.memory {
            worker.memory_bytes = Some(
                baton_api::parse_memory(memory)
                    .map_err(|e| anyhow::anyhow!("worker.memory: {e}"))?,
            );
        }
        let mut async_calls = baton_gateway::AsyncConfig::default();
        if let Some(queue) = file.async_calls.queue {
            async_calls.queue = queue;
        }
        if let Some(concurrency) = file.async_calls.concurrency {
            async_calls.concurrency = concurrency;
        }
        if let Some(attempts) = file.async_calls.attempts {
            if attempts == 0 {
                anyhow::bail!("async.attempts must be at least 1");
            }
            async_calls.attempts = attempts;
        }
        let ready_timeout = match &file.process.ready_timeout {
            Some(text) => duration(text, "process.ready_timeout")?,
            None => Duration::from_secs(10),
        };
        let state = crate::state::StateConfig::resolve(args, file.state)?;
        let data_dir = args
            .data_dir
            .clone()
            .or(file.data_dir)
            .unwrap_or_else(default_data_dir);
        let objects = crate::objects::ObjectsSettings::resolve(&file.objects, &data_dir)?;
        Ok(NodeConfig {
            state,
            objects,
            listen,
            data_dir,
            token,
            examples: args.examples.or(file.examples).unwrap_or(true),
            log_json,
            wasm,
            worker,
            async_calls,
            ready_timeout,
            listener: listener_limits(&file.listener)?,
            federation: crate::federation::resolve(
                &file.federation,
                crate::federation::FederationFlags {
                    listen: args.federation_listen.as_deref(),
                    advertise: args.federation_advertise.as_deref(),
                    peers: args.federation_peers.as_deref(),
                    strategy: args.federation_strategy.as_deref(),
                    period: args.federation_period.as_deref(),
                },
            )?,
            ready_file: args.ready_file.clone(),
        })
    }
}

fn load(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading config file {}", path.display()))?;
    crate::role_config::check(&text, path)?;
    toml::from_str(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_on_write_policies() {
        use baton_runtime::wasm::CopyOnWrite;
        for (mode, threshold, expected) in [
            (
                None,
                None,
                Some(CopyOnWrite::Auto {
                    threshold_bytes: 1 << 20,
                }),
            ),
            (
                Some("auto"),
                Some("4Mi"),
                Some(CopyOnWrite::Auto {
                    threshold_bytes: 4 << 20,
                }),
            ),
            (Some("always"), None, Some(CopyOnWrite::Always)),
            (Some("never"), Some("1Ki"), Some(CopyOnWrite::Never)),
            (Some("sometimes"), None, None),
            (None, Some("lots"), None),
        ] {
            assert_eq!(
                copy_on_write(mode, threshold).ok(),
                expected,
                "{mode:?} {threshold:?}"
            );
        }
    }

    fn args() -> UpArgs {
        UpArgs {
            config: None,
            ready_file: None,
            listen: None,
            data_dir: None,
            token: None,
            examples: None,
            log_format: None,
            state_api: None,
            state_listen: None,
            state_peers: None,
            state_secret: None,
            federation_listen: None,
            federation_advertise: None,
            federation_peers: None,
            federation_strategy: None,
            federation_period: None,
        }
    }

    #[test]
    fn flags_override_the_file_which_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baton.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nexamples = false\n[wasm]\npool_instances = 50\n",
        )
        .unwrap();
        let mut up = args();
        up.config = Some(path.clone());
        let config = NodeConfig::resolve(&up).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert!(!config.examples);
        assert_eq!(config.wasm.pool_instances, 50);
        up.listen = Some("127.0.0.1:9001".into());
        assert_eq!(NodeConfig::resolve(&up).unwrap().listen.port(), 9001);
    }

    #[test]
    fn the_workers_keep_alive_policy_and_memory_budget() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baton.toml");
        let mut up = args();
        up.config = Some(path.clone());
        std::fs::write(
            &path,
            "[worker]\nkeep_alive = \"greedy-dual\"\nmemory = \"2Gi\"\n",
        )
        .unwrap();
        let config = NodeConfig::resolve(&up).unwrap();
        assert_eq!(
            config.worker.keep_alive,
            baton_control::keep_alive::KeepAlive::GreedyDual
        );
        assert_eq!(config.worker.memory_bytes, Some(2 << 30));
        std::fs::write(&path, "[worker]\nkeep_alive = \"fifo\"\n").unwrap();
        let error = NodeConfig::resolve(&up).unwrap_err().to_string();
        assert!(
            error.contains("worker.keep_alive") && error.contains("lru"),
            "{error}"
        );
    }

    #[test]
    fn unknown_keys_and_open_listeners_without_token_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baton.toml");
        std::fs::write(&path, "listen_addr = \"x\"\n").unwrap();
        let mut up = args();
        up.config = Some(path);
        let error = NodeConfig::resolve(&up).unwrap_err().to_string();
        assert!(
            error.contains("unknown field") && error.contains("listen_addr"),
            "{error}"
        );
        let mut up = args();
        up.listen = Some("0.0.0.0:8080".into());
        assert!(
            NodeConfig::resolve(&up)
                .unwrap_err()
                .to_string()
                .contains("without a token")
        );
        up.token = Some("t".into());
        assert!(NodeConfig::resolve(&up).is_ok());
    }
}
