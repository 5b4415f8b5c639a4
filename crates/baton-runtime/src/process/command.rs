use anyhow::bail;
use baton_api::FunctionSpec;
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// Variables of the node's environment that processes inherit; everything else, such as
/// `BATON_TOKEN`, stays with the node.
const INHERITED: [&str; 5] = ["PATH", "HOME", "LANG", "LC_ALL", "TZ"];

/// Processes an isolated function's user may have at once.
const MAX_PROCESSES: u64 = 256;

/// How to start a function's process: program, arguments, environment and limits.
#[derive(Debug)]
pub(crate) struct CommandTemplate {
    program: PathBuf,
    args: Vec<String>,
    dir: PathBuf,
    env: Vec<(String, String)>,
    memory_bytes: u64,
    cpu_seconds: u64,
    pub(crate) timeout: std::time::Duration,
    pub(crate) max_output: u64,
    pub(crate) content_type: Option<String>,
    /// The function's token for the node-local API, revoked when the last sandbox goes.
    _capability: Option<baton_state::Capability>,
    /// Its sandbox, where the node can isolate processes.
    isolation: Option<std::sync::Arc<super::isolation::Isolation>>,
}

impl CommandTemplate {
    pub(crate) fn new(
        program: PathBuf,
        args: Vec<String>,
        dir: PathBuf,
        spec: &FunctionSpec,
        platform_env: Vec<(String, String)>,
        capability: Option<baton_state::Capability>,
        isolation: Option<super::isolation::Isolation>,
    ) -> Self {
        let mut env: Vec<(String, String)> = INHERITED
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
            .collect();
        env.extend(spec.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        // The platform's variables win over the function's own of the same name.
        env.extend(platform_env);
        if let Some(capability) = &capability {
            env.push(("BATON_API_TOKEN".to_owned(), capability.token().to_owned()));
        }
        let program = match &isolation {
            Some(_) => {
                // Inside, the node's home is out of reach: home is the private /tmp.
                env.retain(|(k, _)| k != "HOME");
                env.push(("HOME".to_owned(), "/tmp".to_owned()));
                super::isolation::program_inside(&program, &dir)
            }
            None => program,
        };
        CommandTemplate {
            program,
            args,
            dir,
            env,
            memory_bytes: spec.limits.memory_bytes,
            cpu_seconds: spec.limits.cpu_seconds,
            timeout: spec.limits.timeout(),
            max_output: spec.limits.max_output_bytes,
            content_type: spec.env.get("content_type").cloned(),
            _capability: capability,
            isolation: isolation.map(std::sync::Arc::new),
        }
    }

    /// A command in its own process group (so a timeout kills its children too), with the
    /// function's environment and rlimits, in its sandbox where the node isolates processes,
    /// killed if its handle is dropped.
    pub(crate) fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .current_dir(if self.isolation.is_some() {
                Path::new("/")
            } else {
                &self.dir
            })
            .env_clear()
            .envs(self.env.iter().cloned());
        command.process_group(0).kill_on_drop(true);
        let memory = self.memory_bytes;
        let cpu = self.cpu_seconds;
        let isolation = self.isolation.clone();
        // SAFETY: the closure runs in the child between fork and exec; it calls only
        // `setrlimit` and `Isolation::enter`, which are made for that place (async-signal-safe,
        // no allocation), and touches no memory shared with the parent.
        unsafe {
            command.pre_exec(move || {
                set_limit(libc::RLIMIT_DATA, memory)?;
                if cpu > 0 {
                    set_limit(libc::RLIMIT_CPU, cpu)?;
                }
                if let Some(isolation) = &isolation {
                    // Counted per user: each function has its own, so this bounds a fork bomb.
                    set_limit(libc::RLIMIT_NPROC, MAX_PROCESSES)?;
                    isolation.enter()?;
                }
                Ok(())
            });
        }
        command
    }
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> std::io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: `limit` is a valid rlimit living for the duration of the call.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
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
