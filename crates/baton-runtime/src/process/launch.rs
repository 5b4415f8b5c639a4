//! Starting a function's process without forking the node.
//!
//! Forking a process as large as the node copies its page tables (≈ 3,000 mappings, ≈ 10 ms)
//! and stalls the node's other threads while the kernel holds its memory map: every classic
//! request paid that, and so did every other function's latency. Instead the node spawns its
//! own binary as a launcher (`baton __launch …`) with `posix_spawn`, the vfork-class call that
//! shares the node's memory until the exec; the launcher is a fresh, small, single-threaded
//! process that applies the limits, enters the sandbox and execs the function.
//!
//! A launcher can be started before its request: with `--env-on-stdin` it waits, in its
//! sandbox, for the request's environment on stdin ([`encode_env`]) and execs the function
//! with it, the rest of stdin being the body. Classic sandboxes keep one started ahead, so the
//! launcher's own start and joining its control groups (an RCU grace period in the kernel,
//! ≈ 10 ms when nothing else is moving) are off the request's path.
//!
//! Where no launcher is configured (the library's own tests, embedders without the entry
//! point), the same [`Launch::apply`] runs in the child between fork and exec.

use super::isolation::Isolation;
use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};

/// The first argument that makes a binary run [`launch_main`] instead of itself.
pub const LAUNCH_COMMAND: &str = "__launch";

/// Processes an isolated function's user may have at once.
const MAX_PROCESSES: u64 = super::cgroup::MAX_PROCESSES;

/// What happens between the spawn and the function's exec: limits, then the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Launch {
    /// The memory limit: of the sandbox's control group where it has one, else `RLIMIT_DATA`.
    pub(crate) memory_bytes: u64,
    /// The CPU limit of the sandbox's control group, in thousandths of a core; 0 for none.
    pub(crate) cpu_millis: u64,
    pub(crate) isolation: Option<Isolation>,
    /// The function's control groups, where the sandbox makes its own (launcher only).
    pub(crate) cgroups: Vec<PathBuf>,
    /// Read more environment from stdin before the exec (launcher only).
    pub(crate) env_on_stdin: bool,
    pub(crate) program: PathBuf,
    pub(crate) args: Vec<String>,
}

impl Launch {
    /// The command that runs this launch: the launcher binary given `launcher`, else the
    /// program itself with the launch applied between fork and exec.
    /// With `env_on_stdin` (launcher only), the process waits for more environment on stdin.
    pub(crate) fn command(
        &self,
        launcher: Option<&Path>,
        env_on_stdin: bool,
    ) -> std::process::Command {
        match launcher {
            Some(exe) => {
                let mut command = std::process::Command::new(exe);
                command.arg(LAUNCH_COMMAND).args(self.to_args(env_on_stdin));
                command
            }
            None => {
                let mut command = std::process::Command::new(&self.program);
                command.args(&self.args);
                let launch = self.clone();
                // SAFETY: the closure runs in the child between fork and exec; `apply` is made
                // for that place (async-signal-safe calls, no allocation) and touches no memory
                // shared with the parent.
                unsafe {
                    command.pre_exec(move || launch.apply());
                }
                command
            }
        }
    }

    /// Applies the limits and enters the sandbox, in this process.
    ///
    /// # Safety
    /// The caller is a single-threaded process about to exec (the launcher, or the child of a
    /// fork): with isolation this forks again, and the intermediate process never returns.
    pub(crate) unsafe fn apply(&self) -> io::Result<()> {
        if self.cgroups.is_empty() {
            set_limit(libc::RLIMIT_DATA, self.memory_bytes)?;
        }
        if let Some(isolation) = &self.isolation {
            // Counted per user: each function has its own, so this bounds a fork bomb.
            set_limit(libc::RLIMIT_NPROC, MAX_PROCESSES)?;
            // SAFETY: passed on from this function's contract.
            unsafe { isolation.enter()? };
        }
        Ok(())
    }

    /// The launcher's arguments: `--memory N --cpu N [--cgroup DIR]… [--sandbox NODE UID DIR
    /// [--hide DIR]… [--network NETNS] [--secrets DIR MOUNT]] -- PROGRAM ARGS…`.
    /// `env_on_stdin` asks for `--env-on-stdin` whatever the field says.
    fn to_args(&self, env_on_stdin: bool) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec![
            "--memory".into(),
            self.memory_bytes.to_string().into(),
            "--cpu".into(),
            self.cpu_millis.to_string().into(),
        ];
        for group in &self.cgroups {
            args.extend(["--cgroup".into(), group.clone().into()]);
        }
        if self.env_on_stdin || env_on_stdin {
            args.push("--env-on-stdin".into());
        }
        if let Some(isolation) = &self.isolation {
            args.extend([
                "--sandbox".into(),
                isolation.node.to_string().into(),
                isolation.uid.to_string().into(),
                OsStr::from_bytes(isolation.function_dir.as_bytes()).into(),
            ]);
            for hidden in &isolation.hidden {
                args.extend(["--hide".into(), OsStr::from_bytes(hidden.as_bytes()).into()]);
            }
            if let Some(network) = &isolation.network {
                args.extend([
                    "--network".into(),
                    OsStr::from_bytes(network.as_bytes()).into(),
                ]);
            }
            if let Some((source, target)) = &isolation.secrets {
                args.extend([
                    "--secrets".into(),
                    OsStr::from_bytes(source.as_bytes()).into(),
                    OsStr::from_bytes(target.as_bytes()).into(),
                ]);
            }
        }
        args.push("--".into());
        args.push(self.program.clone().into());
        args.extend(self.args.iter().map(OsString::from));
        args
    }

    /// Reads what [`Launch::to_args`] wrote.
    fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Launch, String> {
        let mut args = args.into_iter();
        let mut next = |what: &str| args.next().ok_or_else(|| format!("{what} is missing"));
        let number = |value: OsString, what: &str| {
            value
                .to_str()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| format!("{what} is not a number: {value:?}"))
        };
        let c_string = |value: OsString| {
            CString::new(value.into_vec()).map_err(|_| "NUL in a path".to_string())
        };
        let mut launch = Launch {
            memory_bytes: u64::MAX,
            cpu_millis: 0,
            isolation: None,
            cgroups: Vec::new(),
            env_on_stdin: false,
            program: PathBuf::new(),
            args: Vec::new(),
        };
        loop {
            let flag = next("--")?;
            match flag.to_str() {
                Some("--memory") => launch.memory_bytes = number(next("--memory")?, "--memory")?,
                Some("--cpu") => launch.cpu_millis = number(next("--cpu")?, "--cpu")?,
                Some("--cgroup") => launch.cgroups.push(next("--cgroup")?.into()),
                Some("--env-on-stdin") => launch.env_on_stdin = true,
                Some("--sandbox") => {
                    let node = number(next("the node's pid")?, "the node's pid")?;
                    let uid = number(next("the uid")?, "the uid")?;
                    launch.isolation = Some(Isolation {
                        node: libc::pid_t::try_from(node).map_err(|e| e.to_string())?,
                        uid: u32::try_from(uid).map_err(|e| e.to_string())?,
                        function_dir: c_string(next("the function's directory")?)?,
                        hidden: Vec::new(),
                        network: None,
                        secrets: None,
                    });
                }
                Some("--hide") => {
                    let hidden = c_string(next("--hide")?)?;
                    launch
                        .isolation
                        .as_mut()
                        .ok_or("--hide without --sandbox")?
                        .hidden
                        .push(hidden);
                }
                Some("--network") => {
                    let network = c_string(next("--network")?)?;
                    launch
                        .isolation
                        .as_mut()
                        .ok_or("--network without --sandbox")?
                        .network = Some(network);
                }
                Some("--secrets") => {
                    let source = c_string(next("the secrets' directory")?)?;
                    let target = c_string(next("the secrets' mount point")?)?;
                    launch
                        .isolation
                        .as_mut()
                        .ok_or("--secrets without --sandbox")?
                        .secrets = Some((source, target));
                }
                Some("--") => break,
                _ => return Err(format!("unknown argument {flag:?}")),
            }
        }
        launch.program = next("the program")?.into();
        for arg in args {
            launch.args.push(
                arg.into_string()
                    .map_err(|a| format!("argument {a:?} is not UTF-8"))?,
            );
        }
        Ok(launch)
    }
}

/// The launcher: `baton __launch …` calls this first thing in `main`, before any thread
/// starts. It applies the launch and execs the function, or exits 127 saying why not.
pub fn launch_main(args: impl IntoIterator<Item = OsString>) -> ! {
    let fail = |message: String| -> ! {
        eprintln!("baton: could not start the function's process: {message}");
        std::process::exit(127)
    };
    let launch = Launch::parse(args).unwrap_or_else(|e| fail(e));
    let program = CString::new(launch.program.as_os_str().as_bytes())
        .unwrap_or_else(|_| fail("NUL in the program".into()));
    let mut argv = vec![program.clone()];
    for arg in &launch.args {
        argv.push(
            CString::new(arg.as_bytes()).unwrap_or_else(|_| fail("NUL in an argument".into())),
        );
    }
    if let Err(error) =
        super::cgroup::enter(&launch.cgroups, launch.memory_bytes, launch.cpu_millis)
    {
        fail(format!("joining its control group: {error}"));
    }
    // SAFETY: `main` calls this before starting any thread, so the process is single-threaded
    // as `apply` requires.
    if let Err(error) = unsafe { launch.apply() } {
        fail(error.to_string());
    }
    let mut env: Vec<CString> = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut pair = k.into_vec();
            pair.push(b'=');
            pair.extend(v.into_vec());
            CString::new(pair).ok()
        })
        .collect();
    if launch.env_on_stdin {
        // Unbuffered: the rest of stdin is the function's.
        let mut stdin = std::mem::ManuallyDrop::new(
            // SAFETY: fd 0 is open for the life of the process; ManuallyDrop never closes it.
            unsafe { <std::fs::File as std::os::fd::FromRawFd>::from_raw_fd(0) },
        );
        match read_env(&mut *stdin) {
            Ok(more) => env.extend(more),
            // The node gave up on this launcher (its sandbox went): nothing to run.
            Err(error) if error.kind() == io::ErrorKind::UnexpectedEof => std::process::exit(0),
            Err(error) => fail(format!("reading the request's environment: {error}")),
        }
    }
    let pointers = |strings: &[CString]| {
        let mut pointers: Vec<*const libc::c_char> = strings.iter().map(|a| a.as_ptr()).collect();
        pointers.push(std::ptr::null());
        pointers
    };
    let (argv_pointers, env_pointers) = (pointers(&argv), pointers(&env));
    // SAFETY: `program` is a valid C string, and both arrays are null-terminated arrays of
    // valid C strings, all alive across the call.
    unsafe {
        libc::execve(
            program.as_ptr(),
            argv_pointers.as_ptr(),
            env_pointers.as_ptr(),
        );
    }
    fail(format!(
        "{}: {}",
        launch.program.display(),
        io::Error::last_os_error()
    ))
}

/// Most bytes of environment a request may send a waiting launcher.
const MAX_ENV_BYTES: usize = 1 << 20;

/// A request's environment for a launcher started with `--env-on-stdin`: the number of
/// variables, then each `KEY=VALUE` preceded by its length, all lengths u32 little-endian.
pub(crate) fn encode_env(env: &[(String, String)]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend((env.len() as u32).to_le_bytes());
    for (key, value) in env {
        let pair = format!("{key}={value}");
        out.extend((pair.len() as u32).to_le_bytes());
        out.extend(pair.as_bytes());
    }
    out
}

/// Reads what [`encode_env`] wrote, and nothing after it.
fn read_env(reader: &mut impl io::Read) -> io::Result<Vec<CString>> {
    let mut word = [0u8; 4];
    let mut read_len = |reader: &mut dyn io::Read| -> io::Result<usize> {
        reader.read_exact(&mut word)?;
        Ok(u32::from_le_bytes(word) as usize)
    };
    let count = read_len(&mut *reader)?;
    let mut total = 0;
    let mut env = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let len = read_len(&mut *reader)?;
        total += len;
        if total > MAX_ENV_BYTES {
            return Err(io::Error::other("more than 1 MiB of environment"));
        }
        let mut pair = vec![0u8; len];
        reader.read_exact(&mut pair)?;
        env.push(CString::new(pair).map_err(|_| io::Error::other("NUL in the environment"))?);
    }
    Ok(env)
}

fn set_limit(resource: libc::__rlimit_resource_t, value: u64) -> io::Result<()> {
    let limit = libc::rlimit {
        rlim_cur: value,
        rlim_max: value,
    };
    // SAFETY: `limit` is a valid rlimit living for the duration of the call.
    if unsafe { libc::setrlimit(resource, &limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether this machine lets the node isolate processes (root, or the capabilities to make
/// namespaces and mount), found by running `true` isolated once, started as functions are.
pub(crate) fn isolation_available(launcher: Option<&Path>) -> Result<(), String> {
    let dir = std::env::temp_dir();
    let network = super::network::Namespace::create()
        .map_err(|e| format!("making a network namespace: {e}"))?;
    let isolation = Isolation::new("baton-probe", &dir, &[], Some(network.path()), None)
        .map_err(|e| e.to_string())?;
    let launch = Launch {
        memory_bytes: libc::RLIM_INFINITY,
        cpu_millis: 0,
        isolation: Some(isolation),
        cgroups: Vec::new(),
        env_on_stdin: false,
        program: "/bin/true".into(),
        args: Vec::new(),
    };
    let mut command = launch.command(launcher, false);
    command.current_dir("/");
    match command.status() {
        Ok(status) if status.success() => Ok(()),
        Ok(status) => Err(format!("an isolated test process exited with {status}")),
        Err(error) => Err(error.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(isolation: Option<Isolation>, args: &[&str]) -> Launch {
        Launch {
            memory_bytes: 128 << 20,
            cpu_millis: 700,
            isolation,
            cgroups: vec![PathBuf::from("/sys/fs/cgroup/cpu/baton-1/f")],
            env_on_stdin: args.is_empty(),
            program: PathBuf::from("/usr/bin/python3"),
            args: args.iter().map(|a| a.to_string()).collect(),
        }
    }

    #[test]
    fn launches_survive_the_trip_through_arguments() {
        let sandbox = Isolation {
            node: 4242,
            uid: 610_001,
            function_dir: c"/srv/fn dir".into(),
            hidden: vec![c"/var/lib/baton".into(), c"/data".into()],
            network: Some(c"/proc/4242/fd/9".into()),
            secrets: Some((
                c"/data/run/secrets/f-1".into(),
                c"/var/openfaas/secrets".into(),
            )),
        };
        let bare = Isolation {
            hidden: Vec::new(),
            network: None,
            secrets: None,
            ..sandbox.clone()
        };
        for launch in [
            launch(None, &[]),
            launch(None, &["-c", "print('--')", "--memory", ""]),
            launch(Some(sandbox), &["handler.py"]),
            launch(Some(bare), &["--"]),
        ] {
            assert_eq!(Launch::parse(launch.to_args(false)), Ok(launch.clone()));
        }
    }

    #[test]
    fn a_requests_environment_reaches_a_waiting_launcher_and_nothing_more() {
        let env = vec![
            ("Http_Method".to_string(), "POST".to_string()),
            ("Http_Path".to_string(), "/a=b".to_string()),
            ("Http_Query".to_string(), String::new()),
        ];
        let mut stdin = encode_env(&env);
        stdin.extend(b"the body");
        let mut reader = std::io::Cursor::new(stdin);
        let read = read_env(&mut reader).unwrap();
        let read: Vec<&str> = read.iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(read, ["Http_Method=POST", "Http_Path=/a=b", "Http_Query="]);
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut reader, &mut rest).unwrap();
        assert_eq!(rest, "the body");
        // A node that closed the pipe, and one that sent garbage.
        let closed = read_env(&mut std::io::Cursor::new(Vec::new())).unwrap_err();
        assert_eq!(closed.kind(), std::io::ErrorKind::UnexpectedEof);
        let huge = [1u8, 0, 0, 0, 255, 255, 255, 255];
        assert!(read_env(&mut std::io::Cursor::new(huge)).is_err());
    }

    #[test]
    fn bad_launcher_arguments_are_refused_with_the_reason() {
        let parse = |args: &[&str]| Launch::parse(args.iter().map(OsString::from)).unwrap_err();
        for (args, reason) in [
            (&[][..], "-- is missing"),
            (&["--memory", "lots", "--", "x"], "--memory is not a number"),
            (&["--hide", "/d", "--", "x"], "--hide without --sandbox"),
            (
                &["--network", "/n", "--", "x"],
                "--network without --sandbox",
            ),
            (&["--cpu", "1", "--"], "the program is missing"),
            (
                &["--sandbox", "1", "2"],
                "the function's directory is missing",
            ),
            (&["-x"], "unknown argument"),
        ] {
            let error = parse(args);
            assert!(error.contains(reason), "{args:?}: {error}");
        }
    }
}
