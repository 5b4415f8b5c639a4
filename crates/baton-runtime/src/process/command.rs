use anyhow::bail;
use baton_api::FunctionSpec;
use std::path::{Path, PathBuf};
use tokio::process::Command;

/// Variables of the node's environment that processes inherit; everything else, such as
/// `BATON_TOKEN`, stays with the node.
const INHERITED: [&str; 5] = ["PATH", "HOME", "LANG", "LC_ALL", "TZ"];

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
}

impl CommandTemplate {
    pub(crate) fn new(
        program: PathBuf,
        args: Vec<String>,
        dir: PathBuf,
        spec: &FunctionSpec,
        platform_env: Vec<(String, String)>,
        capability: Option<baton_state::Capability>,
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
        }
    }

    /// A command in its own process group (so a timeout kills its children too), with the
    /// function's environment and rlimits, killed if its handle is dropped.
    pub(crate) fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .current_dir(&self.dir)
            .env_clear()
            .envs(self.env.iter().cloned());
        command.process_group(0).kill_on_drop(true);
        let memory = self.memory_bytes;
        let cpu = self.cpu_seconds;
        // SAFETY: the closure runs in the child between fork and exec; it calls only
        // `setrlimit`, which is async-signal-safe, and touches no memory shared with the parent.
        unsafe {
            command.pre_exec(move || {
                set_limit(libc::RLIMIT_DATA, memory)?;
                if cpu > 0 {
                    set_limit(libc::RLIMIT_CPU, cpu)?;
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
pub(crate) fn resolve_program(program: &str, dir: &Path) -> anyhow::Result<PathBuf> {
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
        if candidate.is_file() {
            return Ok(candidate);
        }
    }
    bail!("program {program:?} is not on PATH")
}
