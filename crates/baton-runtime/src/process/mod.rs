//! Process functions, compatible with the OpenFaaS watchdog.
//!
//! - `classic` mode ([`classic`]): a process per request; the body on stdin, stdout is the
//!   response; CGI-style `Http_*` environment; the whole process group is killed on timeout.
//! - `http` mode ([`http`]): a long-running server started with `PORT`, probed until it
//!   accepts connections, reverse-proxied, and replaced by the worker if it dies.
//!
//! Processes get the function's environment plus `PATH`, `HOME` and `LANG` of the node, never
//! the node's own secrets. Where the node can isolate them, each function has its own user,
//! file system view, processes and network (`isolation.rs`, `network.rs`) and control groups
//! (`cgroup.rs`); its outgoing requests go through a proxy under the node's policy.

mod cgroup;
mod classic;
mod command;
mod http;
mod isolation;
mod launch;
mod network;
mod output;
mod secrets;

pub use launch::{LAUNCH_COMMAND, launch_main};

use crate::outbound::{self, FunctionOutbound, Outbound, OutboundConfig, PlatformService};
use crate::{InvokeError, LogSink, Prepared, Runtime, Sandbox};
use anyhow::bail;
use async_trait::async_trait;
use baton_api::SecretValues;
use baton_api::{FunctionSpec, ProcessMode, RuntimeSpec};
use command::{CommandTemplate, Confinement};
use secrets::SecretFiles;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Settings of the process runtime.
#[derive(Clone)]
pub struct ProcessConfig {
    /// Working directory of processes whose spec names none.
    pub default_dir: PathBuf,
    /// How long an http-mode process may take to accept connections. Default 10 s.
    pub ready_timeout: Duration,
    /// The node-local platform API (`http://127.0.0.1:port`), given to processes as
    /// `BATON_API`, with their state namespace as `BATON_NAMESPACE`.
    pub platform_api: Option<String>,
    /// The platform API's routes, answered in-process to isolated functions, whose network
    /// does not reach the node's listeners (their `BATON_API` is their proxy's address).
    pub platform_routes: Option<PlatformService>,
    /// Issues each function its token for the platform API (`BATON_API_TOKEN`).
    pub capabilities: Option<Arc<baton_state::Capabilities>>,
    /// The node's objects: with them (and a platform API), processes get the S3 endpoint in
    /// their environment (`AWS_ENDPOINT_URL`, `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`).
    pub objects: Option<baton_cache::Objects>,
    /// The outgoing-request policy, the wasm runtime's ([`crate::wasm::WasmRuntime::outbound`]):
    /// isolated functions reach the network only through a proxy that applies it.
    pub outbound: Arc<Outbound>,
    /// Run each function as its own user in its own mount and PID namespaces, where the
    /// machine allows it ([`ProcessRuntime::isolation`] says whether it did).
    pub isolate: bool,
    /// Directories isolated functions never see (the node's data directory).
    pub hide: Vec<PathBuf>,
    /// Where the node writes functions' secret files, one directory per prepared function
    /// (under the data directory, which sandboxes never see). Default: the temporary
    /// directory.
    pub secrets_dir: PathBuf,
    /// A binary that runs [`launch_main`] when its first argument is [`LAUNCH_COMMAND`]
    /// (`baton` itself): processes start from it, so the node never forks itself. Without
    /// one, each process is forked from the node.
    pub launcher: Option<PathBuf>,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        ProcessConfig {
            default_dir: std::env::temp_dir(),
            ready_timeout: Duration::from_secs(10),
            platform_api: None,
            platform_routes: None,
            capabilities: None,
            objects: None,
            outbound: Outbound::new(&OutboundConfig::default()),
            isolate: false,
            hide: Vec::new(),
            secrets_dir: std::env::temp_dir().join("baton-secrets"),
            launcher: None,
        }
    }
}

/// Runs process functions.
pub struct ProcessRuntime {
    config: ProcessConfig,
    isolation: Result<(), String>,
    cgroups: Result<cgroup::Cgroups, String>,
    /// Where isolated functions see their secrets.
    secrets_mount: &'static str,
}

impl ProcessRuntime {
    /// A runtime with `config`; with `isolate`, it first checks (by running `true` in a
    /// sandbox) that the machine lets it isolate processes.
    pub fn new(config: ProcessConfig) -> Self {
        let isolation = match config.isolate {
            true => launch::isolation_available(config.launcher.as_deref()),
            false => Err("not asked for".to_string()),
        };
        let cgroups = match (&config.launcher, config.isolate) {
            (Some(_), true) => cgroup::Cgroups::open(),
            (None, true) => Err("control groups need the launcher".to_string()),
            (_, false) => Err("not asked for".to_string()),
        };
        if let Ok(cgroups) = &cgroups {
            cgroup::remove_orphans(cgroups);
        }
        SecretFiles::remove_leftovers(&config.secrets_dir);
        // OpenFaaS's path, made (empty) on the node so sandboxes can mount over it; where
        // that is impossible, a directory in the sandbox's private /tmp.
        let secrets_mount = match &isolation {
            Ok(()) => match std::fs::create_dir_all(secrets::MOUNT_POINT) {
                Ok(()) => secrets::MOUNT_POINT,
                Err(error) => {
                    tracing::warn!(%error, "cannot make {}: functions find their secrets in {}", secrets::MOUNT_POINT, secrets::FALLBACK_MOUNT_POINT);
                    secrets::FALLBACK_MOUNT_POINT
                }
            },
            Err(_) => secrets::MOUNT_POINT,
        };
        ProcessRuntime {
            config,
            isolation,
            cgroups,
            secrets_mount,
        }
    }

    /// Whether process functions run isolated, or why not.
    pub fn isolation(&self) -> &Result<(), String> {
        &self.isolation
    }

    /// Whether process sandboxes get control groups (memory, CPU weight, processes), or why
    /// not (they get rlimits then).
    pub fn cgroups(&self) -> Result<(), String> {
        self.cgroups.as_ref().map(|_| ()).map_err(Clone::clone)
    }
}

#[async_trait]
impl Runtime for ProcessRuntime {
    async fn prepare(
        &self,
        spec: &FunctionSpec,
        secrets: Option<&SecretValues>,
    ) -> anyhow::Result<Arc<dyn Prepared>> {
        let RuntimeSpec::Process {
            command,
            mode,
            working_dir,
        } = &spec.runtime
        else {
            bail!("the process runtime cannot run {:?}", spec.runtime);
        };
        let dir = working_dir
            .as_ref()
            .map(PathBuf::from)
            .unwrap_or_else(|| self.config.default_dir.clone());
        if !dir.is_dir() {
            bail!("working directory {} does not exist", dir.display());
        }
        let machine = crate::resources::memory_bytes().unwrap_or(u64::MAX);
        if spec.limits.memory_bytes > machine {
            bail!(
                "limits.memory {} bytes is more than this machine has (at most {machine} bytes)",
                spec.limits.memory_bytes
            );
        }
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        if spec.limits.cpu_millis > cores * 1000 {
            bail!(
                "limits.cpu {} is more than this machine has (at most {cores} cores)",
                baton_api::format_cpu(spec.limits.cpu_millis)
            );
        }
        if spec.limits.cpu_millis > 0 && self.cgroups.is_err() {
            tracing::warn!(
                function = spec.name.as_str(),
                "limits.cpu is not enforced: this node has no control groups for processes"
            );
        }
        let program = command::resolve_program(&command[0], &dir, self.isolation.is_ok())?;
        let namespace = crate::wasm::state_namespace(spec);
        let mut platform_env = vec![("BATON_NAMESPACE".to_string(), namespace.clone())];
        let s3 = self.config.objects.is_some() && self.config.platform_api.is_some();
        if let Some(api) = &self.config.platform_api {
            platform_env.push(("BATON_API".to_string(), api.clone()));
            if s3 {
                platform_env.push(("AWS_ENDPOINT_URL".to_string(), api.clone()));
            }
        }
        if let (Some(objects), Some(buckets)) = (
            &self.config.objects,
            spec.labels.get(crate::wasm::WRITE_BACK_LABEL),
        ) {
            objects.declare_write_back(&namespace, buckets);
        }
        let capability = match (&self.config.platform_api, &self.config.capabilities) {
            (Some(_), Some(capabilities)) => Some(capabilities.grant(&namespace)),
            _ => None,
        };
        let owner = self
            .isolation
            .is_ok()
            .then(|| isolation::uid_for(spec.name.as_str()));
        let secret_files = match secrets {
            Some(values) => SecretFiles::write(&self.config.secrets_dir, spec, values, owner)
                .map_err(|e| anyhow::anyhow!("writing the function's secrets: {e:#}"))?,
            None => None,
        };
        let (isolation, network) = match &self.isolation {
            Ok(()) if !isolation::others_may_enter(&dir) => bail!(
                "directory {} is not readable by other users; process functions run as their own user (chmod o+rx, as a container image's files are)",
                dir.display()
            ),
            Ok(()) => {
                let network = network::NetworkPlan {
                    context: Arc::new(outbound::proxy::ProxyContext {
                        outbound: Arc::new(FunctionOutbound::new(
                            spec,
                            self.config.outbound.clone(),
                        )),
                        platform_api: self.config.platform_routes.clone(),
                        timeout: spec.limits.timeout(),
                    }),
                    platform_api: self.config.platform_api.is_some(),
                    s3,
                };
                // Inside, the node's own listeners are out of reach: each sandbox's proxy
                // stands in (`Network::env`).
                platform_env.retain(|(k, _)| k != "BATON_API" && k != "AWS_ENDPOINT_URL");
                let isolation = isolation::Isolation::new(
                    spec.name.as_str(),
                    &dir,
                    &self.config.hide,
                    None,
                    secret_files.as_ref().map(|f| (f.dir(), self.secrets_mount)),
                )?;
                (Some(isolation), Some(network))
            }
            Err(_) => (None, None),
        };
        if let Some(files) = &secret_files {
            let seen_at = match &isolation {
                Some(_) => self.secrets_mount.to_string(),
                None => files.dir().display().to_string(),
            };
            platform_env.push(("BATON_SECRETS_DIR".to_string(), seen_at));
        }
        let cgroups = match &self.cgroups {
            Ok(cgroups) => cgroups
                .function(spec.name.as_str())
                .map_err(|e| anyhow::anyhow!("making the function's control groups: {e}"))?,
            Err(_) => Vec::new(),
        };
        // Peaks are measured by the sandbox's memory group; without one, the function's
        // booked limit stands for its need (no model, so none that could be too low).
        let memory_model = match (&self.config.objects, cgroups.is_empty()) {
            (Some(objects), false) => Some(
                objects
                    .predictions()
                    .model(spec.name.as_str(), spec.limits.memory_bytes),
            ),
            _ => None,
        };
        let template = Arc::new(CommandTemplate::new(
            program,
            command[1..].to_vec(),
            dir,
            spec,
            command::Provisions {
                env: platform_env,
                capability,
                s3,
                secret_files,
                memory_model,
            },
            Confinement {
                isolation,
                network,
                launcher: self.config.launcher.clone(),
                cgroups,
            },
        ));
        Ok(match mode {
            ProcessMode::Classic => Arc::new(classic::ClassicFunction::new(template)),
            ProcessMode::Http => Arc::new(http::HttpFunction::new(
                template,
                spec.upstream_port().map_err(anyhow::Error::msg)?,
                self.config.ready_timeout,
            )),
        })
    }
}

/// Both modes' `Prepared`: classic sandboxes are cheap handles, http ones are processes.
#[async_trait]
impl Prepared for classic::ClassicFunction {
    async fn create_sandbox(&self, logs: LogSink) -> Result<Arc<dyn Sandbox>, InvokeError> {
        Ok(Arc::new(self.sandbox(logs).await?))
    }
}

#[async_trait]
impl Prepared for http::HttpFunction {
    async fn create_sandbox(&self, logs: LogSink) -> Result<Arc<dyn Sandbox>, InvokeError> {
        Ok(Arc::new(self.start(logs).await?))
    }
}
