use super::launch::Launch;
use super::network::Network;
use anyhow::bail;
use baton_api::FunctionSpec;
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// Variables of the node's environment that processes inherit; everything else, such as
/// `BATON_TOKEN`, stays with the node.
const INHERITED: [&str; 5] = ["PATH", "HOME", "LANG", "LC_ALL", "TZ"];

/// How the node confines a function's processes.
#[derive(Debug, Default)]
pub(crate) struct Confinement {
    /// Its sandbox, where the node can isolate processes.
    pub(crate) isolation: Option<super::isolation::Isolation>,
    /// How each of its sandboxes gets a network of its own (with isolation).
    pub(crate) network: Option<super::network::NetworkPlan>,
    /// The binary that launches its processes; none: fork the node (see `launch.rs`).
    pub(crate) launcher: Option<PathBuf>,
    /// Its control groups, where the node has them (only with a launcher).
    pub(crate) cgroups: Vec<PathBuf>,
}

/// How to start a function's process: program, arguments, environment and limits.
#[derive(Debug)]
pub(crate) struct CommandTemplate {
    launch: Launch,
    /// The binary that launches functions' processes; none: fork the node (see `launch.rs`).
    launcher: Option<PathBuf>,
    dir: PathBuf,
    env: Vec<(String, String)>,
    pub(crate) timeout: std::time::Duration,
    pub(crate) max_output: u64,
    pub(crate) content_type: Option<String>,
    /// The function's token for the node-local API, revoked when the last sandbox goes.
    _capability: Option<baton_state::Capability>,
    /// How each sandbox gets its network.
    network: Option<super::network::NetworkPlan>,
    /// Its secret files, removed when the last sandbox goes.
    _secret_files: Option<super::secrets::SecretFiles>,
    /// Where each invocation's peak memory goes, where sandboxes have a memory group to
    /// measure it.
    pub(crate) memory_model: Option<std::sync::Arc<baton_cache::FunctionModel>>,
}

/// What the platform gives a function beside its own settings.
#[derive(Debug, Default)]
pub(crate) struct Provisions {
    /// Variables such as `BATON_API`, which win over the function's own.
    pub(crate) env: Vec<(String, String)>,
    /// Its token for the node-local platform API.
    pub(crate) capability: Option<baton_state::Capability>,
    /// Whether the platform API serves S3 (the capability is then its key pair too).
    pub(crate) s3: bool,
    /// Its secrets as files.
    pub(crate) secret_files: Option<super::secrets::SecretFiles>,
    /// Where each invocation's peak memory goes (the node's objects' predictions).
    pub(crate) memory_model: Option<std::sync::Arc<baton_cache::FunctionModel>>,
}

impl CommandTemplate {
    pub(crate) fn new(
        program: PathBuf,
        args: Vec<String>,
        dir: PathBuf,
        spec: &FunctionSpec,
        provisions: Provisions,
        confinement: Confinement,
    ) -> Self {
        let Provisions {
            env: platform_env,
            capability,
            s3,
            secret_files,
            memory_model,
        } = provisions;
        let Confinement {
            isolation,
            network,
            launcher,
            cgroups,
        } = confinement;
        let mut env: Vec<(String, String)> = INHERITED
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
            .collect();
        env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        // The platform's variables win over the function's own of the same name.
        env.extend(platform_env);
        if let Some(capability) = &capability {
            env.push(("BATON_API_TOKEN".to_owned(), capability.token().to_owned()));
            if s3 {
                // What AWS SDKs read; the endpoint (AWS_ENDPOINT_URL) is the platform API.
                // Platform values win over the function's own, as BATON_API's do.
                let keys = [
                    "AWS_ACCESS_KEY_ID",
                    "AWS_SECRET_ACCESS_KEY",
                    "AWS_REGION",
                    "AWS_DEFAULT_REGION",
                ];
                env.retain(|(k, _)| !keys.contains(&k.as_str()));
                let values = [
                    capability.access_key(),
                    capability.token(),
                    "us-east-1",
                    "us-east-1",
                ];
                env.extend(
                    keys.iter()
                        .zip(values)
                        .map(|(k, v)| ((*k).to_owned(), v.to_owned())),
                );
            }
        }
        let program = match &isolation {
            Some(_) => {
                // Inside, the node's home is out of reach: home is the private /tmp.
                env.retain(|(k, _)| k != "HOME");
                env.push(("HOME".to_owned(), "/tmp".to_owned()));
                super::isolation::program_inside(&program, &dir)
            }
            None => std::path::absolute(&program).unwrap_or(program),
        };
        CommandTemplate {
            launch: Launch {
                memory_bytes: spec.limits.memory_bytes,
                cpu_millis: spec.limits.cpu_millis,
                isolation,
                cgroups,
                env_on_stdin: false,
                program,
                args,
            },
            launcher,
            dir,
            env,
            timeout: spec.limits.timeout(),
            max_output: spec.limits.max_output_bytes,
            content_type: spec.env.get("content_type").cloned(),
            _capability: capability,
            _secret_files: secret_files,
            network,
            memory_model,
        }
    }

    /// A network for one sandbox, where its processes have their own (with isolation).
    pub(crate) async fn network(&self) -> std::io::Result<Option<Network>> {
        match &self.network {
            Some(plan) => Ok(Some(plan.start().await?)),
            None => Ok(None),
        }
    }

    /// A command in its own process group (so a timeout kills its children too), with the
    /// function's environment and rlimits, in its sandbox where the node isolates processes
    /// (its network: `network`, from [`CommandTemplate::network`]), killed if its handle is
    /// dropped.
    pub(crate) fn command(&self, network: Option<&Network>) -> Command {
        self.command_for(false, network)
    }

    /// Whether processes start from the launcher, which can be started ahead of a request.
    pub(crate) fn has_launcher(&self) -> bool {
        self.launcher.is_some()
    }

    /// [`CommandTemplate::command`]; with `env_on_stdin` (launcher only) the process waits
    /// for its request's environment on stdin (`launch::encode_env`) before the exec.
    pub(crate) fn command_for(&self, env_on_stdin: bool, network: Option<&Network>) -> Command {
        let mut launch = self.launch.clone();
        if let Some(isolation) = &mut launch.isolation {
            isolation.network = network.map(|n| n.namespace().path());
        }
        let mut command = Command::from(launch.command(self.launcher.as_deref(), env_on_stdin));
        command
            .current_dir(if self.launch.isolation.is_some() {
                Path::new("/")
            } else {
                &self.dir
            })
            .env_clear()
            .envs(self.env.iter().cloned());
        if let Some(network) = network {
            command.envs(network.env());
        }
        command.process_group(0).kill_on_drop(true);
        command
    }

    /// The control groups the launcher `pid` makes for its sandbox, removed when dropped.
    pub(crate) fn groups(&self, pid: Option<u32>) -> super::cgroup::SandboxGroups {
        super::cgroup::SandboxGroups::new(&self.launch.cgroups, pid)
    }
}

/// Kills the process group led by `pid`.
pub(crate) fn kill_group(pid: Option<u32>, signal: libc::c_int) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: kill has no memory-safety preconditions; a negative pid names the group the
        // child leads (it was started with process_group(0)).
        unsafe {
            libc::kill(-pid, signal);
        }
    }
}

/// Finds `program` as the shell would: a path with a slash relative to `dir`, else on `PATH`.
/// With `for_others` (an isolated function runs as another user), `PATH` entries that user
/// cannot reach (a pyenv shim under a private home) are skipped.
pub(crate) fn resolve_program(
    program: &str,
    dir: &Path,
    for_others: bool,
) -> anyhow::Result<PathBuf> {
    if program.contains('/') {
        let path = dir.join(program);
        if !path.is_file() {
            bail!(
                "program {program:?} does not exist (relative to {})",
                dir.display()
            );
        }
        return Ok(path);
    }
    let search = std::env::var_os("PATH").unwrap_or_default();
    for entry in std::env::split_paths(&search) {
        let candidate = entry.join(program);
        if candidate.is_file() && (!for_others || reachable_by_others(&candidate)) {
            return Ok(candidate);
        }
    }
    if for_others {
        bail!(
            "program {program:?} is not on PATH where other users can run it (process functions run as their own user)"
        )
    }
    bail!("program {program:?} is not on PATH")
}

/// Whether a user other than the owner may run `path`: every directory on the way lets
/// others through, and the file (after symlinks) lets them read and execute it.
fn reachable_by_others(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let Ok(real) = path.canonicalize() else {
        return false;
    };
    let mode = |p: &Path| {
        std::fs::metadata(p)
            .map(|m| m.permissions().mode())
            .unwrap_or(0)
    };
    real.ancestors().skip(1).all(|dir| mode(dir) & 0o001 != 0) && mode(&real) & 0o005 == 0o005
}
