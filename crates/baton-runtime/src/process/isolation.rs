//! What Linux gives a process function without a container engine: its own user, its own
//! mount namespace (the system read-only, a private `/tmp`, its directory at `/tmp/function`,
//! nothing of the node's data), its own PID namespace (it sees only its own processes, and all
//! of them die with it), its own network namespace (loopback only, where the node serves its
//! proxy: see `network.rs`), and no way to gain privileges.
//!
//! The work happens in the launcher before it execs the function ([`Isolation::enter`], see
//! `launch.rs`): unshare the
//! mount, PID and IPC namespaces, remount, then fork once more so the function is PID 1 of its
//! namespace; the process the node holds waits for it and exits with its status, and the
//! function dies (with everything it started) when that process is killed
//! (`PR_SET_PDEATHSIG`). Everything the child needs is prepared before the fork: it allocates
//! nothing and calls only async-signal-safe functions.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

/// Where the function's directory appears inside its sandbox.
pub(crate) const FUNCTION_DIR: &str = "/tmp/function";
/// [`FUNCTION_DIR`] for the system calls.
const FUNCTION_DIR_C: &std::ffi::CStr = c"/tmp/function";

/// First uid of the range functions run as; each function gets one of [`UID_COUNT`] by name.
const UID_BASE: u32 = 610_000;
const UID_COUNT: u32 = 50_000;

/// One function's sandbox settings, ready for the launcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Isolation {
    /// The node's pid: the process that spawns the function.
    pub(super) node: libc::pid_t,
    pub(super) uid: u32,
    pub(super) function_dir: CString,
    /// Directories covered by an empty tmpfs (the node's data directory).
    pub(super) hidden: Vec<CString>,
    /// The network namespace to enter (`/proc/<node>/fd/<n>`); none: the node's network.
    pub(super) network: Option<CString>,
    /// The function's secret files (a directory on the node) and where the sandbox sees them,
    /// read-only.
    pub(super) secrets: Option<(CString, CString)>,
}

impl Isolation {
    /// Settings for the function `name` whose files are in `dir`; `hide` (the node's data
    /// directory) is covered by an empty file system, even where `dir` lies inside it.
    pub(crate) fn new(
        name: &str,
        dir: &Path,
        hide: &[PathBuf],
        network: Option<CString>,
        secrets: Option<(&Path, &str)>,
    ) -> io::Result<Self> {
        let c = |s: &str| CString::new(s).map_err(|_| io::Error::other("NUL in a path"));
        let dir = dir.canonicalize()?;
        Ok(Isolation {
            node: std::process::id() as libc::pid_t,
            uid: uid_for(name),
            function_dir: c(&dir.to_string_lossy())?,
            hidden: hide
                .iter()
                .filter(|p| p.is_dir())
                .map(|p| c(&p.canonicalize()?.to_string_lossy()))
                .collect::<io::Result<_>>()?,
            network,
            secrets: match secrets {
                Some((source, target)) => Some((c(&source.to_string_lossy())?, c(target)?)),
                None => None,
            },
        })
    }

    /// Enters the sandbox; call only in a single-threaded process about to exec.
    ///
    /// # Safety
    /// The caller is single-threaded and about to exec: this forks again,
    /// and the intermediate process never returns (it waits for the function and exits).
    pub(crate) unsafe fn enter(&self) -> io::Result<()> {
        let check = |result: libc::c_int| {
            if result == 0 {
                Ok(())
            } else {
                Err(io::Error::last_os_error())
            }
        };
        let null = std::ptr::null::<libc::c_char>();
        // SAFETY (whole block): every pointer is to a C string literal or a CString owned by
        // `self`, alive across the calls, or null where the call allows it; no call allocates.
        unsafe {
            // Die with the node, even a `kill -9` of it: the function (below) dies with this
            // process, and everything in its PID namespace with the function. Checked after
            // setting, for a node that died before.
            check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
            if libc::getppid() != self.node {
                libc::_exit(137);
            }
            if let Some(network) = &self.network {
                let fd = libc::open(network.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
                if fd < 0 {
                    return Err(io::Error::last_os_error());
                }
                let entered = libc::setns(fd, libc::CLONE_NEWNET);
                libc::close(fd);
                check(entered)?;
            }
            check(libc::unshare(
                libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWIPC,
            ))?;
            // Nothing mounted here propagates back to the node's namespace.
            check(libc::mount(
                null,
                c"/".as_ptr(),
                null,
                libc::MS_REC | libc::MS_PRIVATE,
                std::ptr::null(),
            ))?;
            // The function's directory, taken before anything covers it.
            let tree = libc::syscall(
                libc::SYS_open_tree,
                libc::AT_FDCWD,
                self.function_dir.as_ptr(),
                OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as libc::c_uint,
            );
            if tree < 0 {
                return Err(io::Error::last_os_error());
            }
            // The secret files too, read-only wherever they are attached.
            let secrets_tree = match &self.secrets {
                Some((source, _)) => {
                    let fd = libc::syscall(
                        libc::SYS_open_tree,
                        libc::AT_FDCWD,
                        source.as_ptr(),
                        OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC,
                    );
                    if fd < 0 {
                        return Err(io::Error::last_os_error());
                    }
                    let sealed = MountAttr {
                        attr_set: MOUNT_ATTR_RDONLY
                            | MOUNT_ATTR_NOSUID
                            | MOUNT_ATTR_NODEV
                            | MOUNT_ATTR_NOEXEC,
                        attr_clr: 0,
                        propagation: 0,
                        userns_fd: 0,
                    };
                    if libc::syscall(
                        libc::SYS_mount_setattr,
                        fd as libc::c_int,
                        c"".as_ptr(),
                        libc::AT_EMPTY_PATH as libc::c_uint,
                        &sealed as *const MountAttr,
                        std::mem::size_of::<MountAttr>(),
                    ) != 0
                    {
                        return Err(io::Error::last_os_error());
                    }
                    Some(fd as libc::c_int)
                }
                None => None,
            };
            for hidden in &self.hidden {
                check(libc::mount(
                    c"tmpfs".as_ptr(),
                    hidden.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                ))?;
            }
            // The whole system read-only, in this namespace only.
            let readonly = MountAttr {
                attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID,
                attr_clr: 0,
                propagation: 0,
                userns_fd: 0,
            };
            if libc::syscall(
                libc::SYS_mount_setattr,
                libc::AT_FDCWD,
                c"/".as_ptr(),
                libc::AT_RECURSIVE as libc::c_uint,
                &readonly as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // A private, writable /tmp; the function's directory inside it.
            check(libc::mount(
                c"tmpfs".as_ptr(),
                c"/tmp".as_ptr(),
                c"tmpfs".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV,
                c"size=256m,mode=1777".as_ptr().cast(),
            ))?;
            check(libc::mkdir(FUNCTION_DIR_C.as_ptr(), 0o755))?;
            if libc::syscall(
                libc::SYS_move_mount,
                tree as libc::c_int,
                c"".as_ptr(),
                libc::AT_FDCWD,
                FUNCTION_DIR_C.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            ) != 0
            {
                return Err(io::Error::last_os_error());
            }
            libc::close(tree as libc::c_int);
            if let (Some(fd), Some((_, target))) = (secrets_tree, &self.secrets) {
                // Under the private /tmp the mount point is made here; elsewhere it exists
                // on the node (see `ProcessRuntime::new`).
                if libc::strncmp(target.as_ptr(), c"/tmp/".as_ptr(), 5) == 0 {
                    check(libc::mkdir(target.as_ptr(), 0o755))?;
                }
                if libc::syscall(
                    libc::SYS_move_mount,
                    fd,
                    c"".as_ptr(),
                    libc::AT_FDCWD,
                    target.as_ptr(),
                    MOVE_MOUNT_F_EMPTY_PATH,
                ) != 0
                {
                    return Err(io::Error::last_os_error());
                }
                libc::close(fd);
            }

            // The function becomes PID 1 of the new namespace.
            let child = libc::fork();
            if child < 0 {
                return Err(io::Error::last_os_error());
            }
            if child > 0 {
                wait_and_exit(child);
            }
            // Its own /proc: its own processes only, never the node's.
            check(libc::mount(
                c"proc".as_ptr(),
                c"/proc".as_ptr(),
                c"proc".as_ptr(),
                libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                std::ptr::null(),
            ))?;
            check(libc::chdir(FUNCTION_DIR_C.as_ptr()))?;
            // Its stdio pipes are its own: `echo x > /dev/stderr` reopens them through /proc,
            // which checks the pipe's owner (the node). Only pipes: a /dev/null stdin is the
            // machine's.
            for fd in 0..3 {
                let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
                if libc::fstat(fd, stat.as_mut_ptr()) == 0
                    && stat.assume_init_ref().st_mode & libc::S_IFMT == libc::S_IFIFO
                {
                    check(libc::fchown(fd, self.uid, self.uid))?;
                }
            }
            check(libc::setgroups(0, std::ptr::null()))?;
            check(libc::setgid(self.uid))?;
            check(libc::setuid(self.uid))?;
            // In the function: die with the process the node holds (which dies with the node).
            // Set after the change of user, which clears it. (Its parent is outside the
            // namespace, so getppid reads 0 and cannot tell whether the parent already died;
            // the parent waits for this child, so it dies only when the node kills it or dies,
            // and then the node's kill of the group or this signal ends the function.)
            check(libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0))?;
            check(libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))?;
        }
        Ok(())
    }
}

/// The intermediate process: waits for the function and exits as it did.
///
/// # Safety
/// Called only in a forked child; never returns.
unsafe fn wait_and_exit(child: libc::pid_t) -> ! {
    // It never execs, so the node's descriptors it inherited (the write end of the
    // function's stdin among them) would stay open: close them all, or the function never
    // sees the end of its input.
    // SAFETY: close_range takes integers; closing every descriptor of this process is the
    // point.
    unsafe {
        libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
    }
    let mut status = 0;
    loop {
        // SAFETY: `status` is a valid out-pointer; waitpid and _exit are async-signal-safe.
        unsafe {
            let waited = libc::waitpid(child, &mut status, 0);
            if waited == child {
                let code = if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    128 + libc::WTERMSIG(status)
                };
                libc::_exit(code);
            }
            if waited < 0 && *libc::__errno_location() != libc::EINTR {
                libc::_exit(127);
            }
        }
    }
}

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const MOUNT_ATTR_RDONLY: u64 = 0x0000_0001;
const MOUNT_ATTR_NOSUID: u64 = 0x0000_0002;
const MOUNT_ATTR_NODEV: u64 = 0x0000_0004;
const MOUNT_ATTR_NOEXEC: u64 = 0x0000_0008;
const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x0000_0004;

/// The uid of function `name`: stable across restarts, apart from other functions' (a
/// collision shares a uid, never a namespace).
pub(crate) fn uid_for(name: &str) -> u32 {
    // FNV-1a: stable across builds, unlike the standard library's hasher.
    let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    UID_BASE + hash % UID_COUNT
}

/// Whether users other than the owner may list and enter `dir` (the function's user must).
pub(crate) fn others_may_enter(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(dir).is_ok_and(|m| m.permissions().mode() & 0o005 == 0o005)
}

/// The program path as the sandbox sees it: inside the function's directory it moves to
/// [`FUNCTION_DIR`].
pub(crate) fn program_inside(program: &Path, dir: &Path) -> PathBuf {
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let program_abs = program
        .canonicalize()
        .unwrap_or_else(|_| program.to_path_buf());
    match program_abs.strip_prefix(&dir) {
        Ok(rest) => Path::new(FUNCTION_DIR).join(rest),
        Err(_) => program.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_stable_per_name_and_in_range() {
        assert_eq!(uid_for("hello"), uid_for("hello"));
        assert_ne!(uid_for("hello"), uid_for("echo"));
        for name in ["a", "python-classic", "x".repeat(63).as_str()] {
            let uid = uid_for(name);
            assert!((UID_BASE..UID_BASE + UID_COUNT).contains(&uid), "{uid}");
        }
    }

    #[test]
    fn programs_in_the_function_directory_move_inside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("run.sh"), "").unwrap();
        assert_eq!(
            program_inside(&dir.path().join("run.sh"), dir.path()),
            Path::new("/tmp/function/run.sh")
        );
        assert_eq!(
            program_inside(Path::new("/usr/bin/python3"), dir.path()),
            Path::new("/usr/bin/python3")
        );
    }
}
