//! Control groups for function processes, where the machine offers them (v2, or v1's `cpu`,
//! `memory` and `pids` hierarchies).
//!
//! The node makes one group of its own beside itself (`baton-<pid>-<n>`), one per function inside
//! it, and the launcher puts each sandbox's process tree in a group of its own inside its
//! function's (named after the launcher's pid), with the sandbox's memory limit and a cap on
//! processes. CPU is shared by weight: the node's group of functions weighs as much as one of
//! the node's own threads, and each function as much as another, so a function flooded with
//! requests slows itself, not the node's gateway or the other functions. The limits count what
//! a process really uses (its files in `/tmp` included), unlike `RLIMIT_DATA`, which counts
//! reserved address space and stops runtimes that reserve much and use little.
//!
//! When the sandbox ends, the node removes its group; a process still in it (one that escaped
//! its parent in a node that cannot isolate) is killed first.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Controllers the node uses.
const CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// Processes one sandbox may have at once.
pub(crate) const MAX_PROCESSES: u64 = 256;

/// The node's groups, one per hierarchy that has a controller it uses.
#[derive(Debug)]
pub(crate) struct Cgroups {
    /// `<mount>/<the node's group>/baton-<pid>-<n>`.
    bases: Vec<PathBuf>,
}

/// Where the hierarchies are mounted and where the node sits in each: what
/// `/proc/self/mountinfo` and `/proc/self/cgroup` say.
#[derive(Debug, PartialEq, Eq)]
struct Hierarchy {
    /// cgroup v2.
    unified: bool,
    /// The directory of the node's group.
    dir: PathBuf,
}

impl Cgroups {
    /// Makes the node's groups; an error says why this machine gives none.
    pub(crate) fn open() -> Result<Cgroups, String> {
        let read = |path: &str| std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"));
        let hierarchies = locate(&read("/proc/self/cgroup")?, &read("/proc/self/mountinfo")?);
        if hierarchies.is_empty() {
            return Err("no cgroup hierarchy with the cpu, memory or pids controller".into());
        }
        // One tree per runtime: several workers in one process (`--count`) each have their
        // own, and one ending removes only its own.
        static OPENED: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let name = format!(
            "baton-{}-{}",
            std::process::id(),
            OPENED.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut bases = Vec::new();
        for hierarchy in hierarchies {
            let base = hierarchy.dir.join(&name);
            if hierarchy.unified {
                // v2 lets a group hand controllers to its children only if it holds no
                // process itself (the root group excepted).
                enable_controllers(&hierarchy.dir).map_err(|e| {
                    format!(
                        "cannot enable controllers in {} ({e}); run the node in a group of its own with delegation (systemd: Delegate=yes)",
                        hierarchy.dir.display()
                    )
                })?;
            }
            create(&base).map_err(|e| format!("creating {}: {e}", base.display()))?;
            if hierarchy.unified {
                enable_controllers(&base).map_err(|e| format!("{}: {e}", base.display()))?;
            }
            bases.push(base);
        }
        Ok(Cgroups { bases })
    }

    /// The groups of function `name`, made if new: the launcher's `--cgroup` directories.
    pub(crate) fn function(&self, name: &str) -> io::Result<Vec<PathBuf>> {
        let mut dirs = Vec::new();
        for base in &self.bases {
            let dir = base.join(name);
            create(&dir)?;
            if base.join("cgroup.subtree_control").exists() {
                enable_controllers(&dir)?;
            }
            dirs.push(dir);
        }
        Ok(dirs)
    }
}

impl Drop for Cgroups {
    fn drop(&mut self) {
        for base in &self.bases {
            remove_tree(base);
        }
    }
}

/// Where the node's groups are for the controllers it uses (pure: reads the two files' text).
/// v1 hierarchies win over v2 for a controller both could give (a hybrid machine mounts v2
/// without controllers).
fn locate(self_cgroup: &str, mountinfo: &str) -> Vec<Hierarchy> {
    // (hierarchy id, controllers, path) from /proc/self/cgroup.
    let memberships: Vec<(&str, Vec<&str>, &str)> = self_cgroup
        .lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let id = parts.next()?;
            let controllers = parts.next()?.split(',').filter(|c| !c.is_empty()).collect();
            Some((id, controllers, parts.next()?))
        })
        .collect();
    // (mount root, mount point, fs type, super options) from mountinfo.
    let mounts: Vec<(&str, &str, &str, Vec<&str>)> = mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let fields: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            Some((
                *fields.get(3)?,
                *fields.get(4)?,
                *right.first()?,
                right.get(2)?.split(',').collect(),
            ))
        })
        .collect();
    let group_dir = |root: &str, point: &str, path: &str| {
        let relative = path.strip_prefix(root).unwrap_or(path);
        Path::new(point).join(relative.trim_start_matches('/'))
    };
    let mut out: Vec<Hierarchy> = Vec::new();
    let mut covered: Vec<&str> = Vec::new();
    for controller in CONTROLLERS {
        let v1 = memberships
            .iter()
            .find(|(_, controllers, _)| controllers.contains(&controller))
            .and_then(|(_, _, path)| {
                let (root, point, _, _) = mounts
                    .iter()
                    .find(|(_, _, fs, options)| *fs == "cgroup" && options.contains(&controller))?;
                Some(group_dir(root, point, path))
            });
        if let Some(dir) = v1 {
            covered.push(controller);
            if !out.iter().any(|h| h.dir == dir) {
                out.push(Hierarchy {
                    unified: false,
                    dir,
                });
            }
        }
    }
    if covered.len() < CONTROLLERS.len() {
        let unified = memberships
            .iter()
            .find(|(id, controllers, _)| *id == "0" && controllers.is_empty());
        let mount = mounts.iter().find(|(_, _, fs, _)| *fs == "cgroup2");
        if let (Some((_, _, path)), Some((root, point, _, _))) = (unified, mount) {
            out.push(Hierarchy {
                unified: true,
                dir: group_dir(root, point, path),
            });
        }
    }
    out
}

/// Gives a v2 group's children the controllers it has.
fn enable_controllers(dir: &Path) -> io::Result<()> {
    let available = std::fs::read_to_string(dir.join("cgroup.controllers"))?;
    let wanted: Vec<String> = available
        .split_whitespace()
        .filter(|c| CONTROLLERS.contains(c))
        .map(|c| format!("+{c}"))
        .collect();
    if wanted.is_empty() {
        return Err(io::Error::other(
            "none of the cpu, memory and pids controllers is available",
        ));
    }
    std::fs::write(dir.join("cgroup.subtree_control"), wanted.join(" "))
}

fn create(dir: &Path) -> io::Result<()> {
    match std::fs::create_dir(dir) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => Err(e),
        _ => Ok(()),
    }
}

/// The launcher's part: a group for this process (and all it starts) inside each of the
/// function's groups, with the sandbox's limits, joined before anything else happens.
pub(crate) fn enter(
    function_groups: &[PathBuf],
    memory_bytes: u64,
    cpu_millis: u64,
) -> io::Result<()> {
    let pid = std::process::id().to_string();
    for group in function_groups {
        let dir = group.join(&pid);
        create(&dir)?;
        let write = |file: &str, value: &str| -> io::Result<bool> {
            let path = dir.join(file);
            if !path.exists() {
                return Ok(false);
            }
            std::fs::write(&path, value)
                .map(|()| true)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        };
        let memory = memory_bytes.to_string();
        if !write("memory.max", &memory)? {
            write("memory.limit_in_bytes", &memory)?;
        }
        // No swapping past the limit (v2; v1 would need swap accounting for it).
        write("memory.swap.max", "0")?;
        write("pids.max", &MAX_PROCESSES.to_string())?;
        if cpu_millis > 0 {
            let (quota, period) = cpu_quota(cpu_millis);
            if !write("cpu.max", &format!("{quota} {period}"))? {
                write("cpu.cfs_period_us", &period.to_string())?;
                write("cpu.cfs_quota_us", &quota.to_string())?;
            }
        }
        write("cgroup.procs", "0")?;
    }
    Ok(())
}

/// The CFS bandwidth for `millis` thousandths of a core: (quota, period), in microseconds.
/// A 100 ms period, as Kubernetes uses.
fn cpu_quota(millis: u64) -> (u64, u64) {
    const PERIOD_US: u64 = 100_000;
    (millis * PERIOD_US / 1000, PERIOD_US)
}

/// The groups a launcher made (see [`enter`]), removed when this is dropped: hold it until the
/// launcher has exited or been killed.
#[derive(Debug, Default)]
pub(crate) struct SandboxGroups(Vec<PathBuf>);

impl SandboxGroups {
    /// The groups of the launcher `pid` inside `function_groups`.
    pub(crate) fn new(function_groups: &[PathBuf], pid: Option<u32>) -> Self {
        match pid {
            Some(pid) => SandboxGroups(
                function_groups
                    .iter()
                    .map(|g| g.join(pid.to_string()))
                    .collect(),
            ),
            None => SandboxGroups::default(),
        }
    }
}

impl SandboxGroups {
    /// Reads the sandbox's peak memory while its groups exist.
    pub(crate) fn probe(&self) -> PeakProbe {
        PeakProbe(self.0.clone())
    }
}

/// Where a sandbox's peak memory is read.
#[derive(Debug, Clone, Default)]
pub(crate) struct PeakProbe(Vec<PathBuf>);

impl PeakProbe {
    /// The most memory the sandbox's processes have held together since it was made, from its
    /// memory group (`memory.peak` in v2, `memory.max_usage_in_bytes` in v1); `None` without
    /// one, or once it is gone.
    pub(crate) fn peak(&self) -> Option<u64> {
        self.0.iter().find_map(|group| {
            ["memory.peak", "memory.max_usage_in_bytes"]
                .iter()
                .find_map(|file| std::fs::read_to_string(group.join(file)).ok())
                .and_then(|text| text.trim().parse().ok())
        })
    }
}

impl Drop for SandboxGroups {
    fn drop(&mut self) {
        let groups = std::mem::take(&mut self.0);
        if groups.is_empty() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(remove_sandbox(groups));
        }
    }
}

/// Removes a sandbox's groups once its launcher has exited; whatever still runs in them is
/// killed first, and their removal is retried until it goes (within a deadline).
async fn remove_sandbox(groups: Vec<PathBuf>) {
    const DEADLINE: Duration = Duration::from_secs(10);
    let removal = async {
        for group in &groups {
            let mut pause = Duration::from_millis(1);
            while group.exists() && std::fs::remove_dir(group).is_err() {
                kill_all(group);
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        }
    };
    if tokio::time::timeout(DEADLINE, removal).await.is_err() {
        tracing::warn!(?groups, "a sandbox's control group could not be removed");
    }
}

/// Kills every process in `group`.
fn kill_all(group: &Path) {
    let Ok(procs) = std::fs::read_to_string(group.join("cgroup.procs")) else {
        return;
    };
    for pid in procs
        .lines()
        .filter_map(|l| l.trim().parse::<libc::pid_t>().ok())
    {
        // SAFETY: kill has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
    }
}

/// Removes a group and its children, deepest first (at the node's end).
fn remove_tree(dir: &Path) {
    if let Ok(entries) = std::fs::read_dir(dir) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                remove_tree(&entry.path());
            }
        }
    }
    kill_all(dir);
    let _ = std::fs::remove_dir(dir);
}

/// Removes groups left by nodes that died without removing theirs (`baton-<pid>-<n>` of a
/// process that no longer exists), beside the node's own.
pub(crate) fn remove_orphans(cgroups: &Cgroups) {
    for base in &cgroups.bases {
        let Some(parent) = base.parent() else {
            continue;
        };
        let Ok(entries) = std::fs::read_dir(parent) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix("baton-"))
                .and_then(|rest| rest.split('-').next())
                .and_then(|p| p.parse::<u32>().ok())
            else {
                continue;
            };
            if !Path::new(&format!("/proc/{pid}")).exists() {
                remove_tree(&entry.path());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_limits_become_a_quota_per_100_ms() {
        assert_eq!(cpu_quota(500), (50_000, 100_000));
        assert_eq!(cpu_quota(2_000), (200_000, 100_000));
        // The kernel's smallest quota, 1 ms: what `MIN_CPU_MILLIS` is for.
        assert_eq!(cpu_quota(baton_api::MIN_CPU_MILLIS), (1_000, 100_000));
    }

    const HYBRID_CGROUP: &str =
        "9:name=systemd:/\n8:pids:/\n4:memory:/process_api/05c6\n2:cpuacct:/\n1:cpu:/\n0::/\n";
    const HYBRID_MOUNTS: &str = "\
30 25 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
33 30 0:30 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
34 30 0:31 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";
    const UNIFIED_CGROUP: &str = "0::/system.slice/baton.service\n";
    const UNIFIED_MOUNTS: &str = "\
25 1 0:22 / /sys/fs/cgroup rw,nosuid shared:9 - cgroup2 cgroup2 rw,nsdelegate
";
    const CONTAINER_CGROUP: &str = "0::/docker/abc\n";
    const CONTAINER_MOUNTS: &str = "\
25 1 0:22 /docker/abc /sys/fs/cgroup ro,nosuid - cgroup2 cgroup2 rw
";

    fn v1(dir: &str) -> Hierarchy {
        Hierarchy {
            unified: false,
            dir: dir.into(),
        }
    }

    fn v2(dir: &str) -> Hierarchy {
        Hierarchy {
            unified: true,
            dir: dir.into(),
        }
    }

    #[test]
    fn hierarchies_are_found_where_the_node_sits() {
        for (cgroup, mounts, expected) in [
            (
                HYBRID_CGROUP,
                HYBRID_MOUNTS,
                vec![
                    v1("/sys/fs/cgroup/cpu"),
                    v1("/sys/fs/cgroup/memory/process_api/05c6"),
                    v1("/sys/fs/cgroup/pids"),
                ],
            ),
            (
                UNIFIED_CGROUP,
                UNIFIED_MOUNTS,
                vec![v2("/sys/fs/cgroup/system.slice/baton.service")],
            ),
            (
                CONTAINER_CGROUP,
                CONTAINER_MOUNTS,
                vec![v2("/sys/fs/cgroup")],
            ),
            ("0::/\n", "", vec![]),
            ("", UNIFIED_MOUNTS, vec![]),
        ] {
            assert_eq!(locate(cgroup, mounts), expected, "{cgroup}");
        }
    }

    #[test]
    fn a_missing_v1_controller_falls_back_to_the_unified_hierarchy() {
        let cgroup = "1:cpu:/\n0::/n\n";
        let mounts = "\
31 30 0:28 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
34 30 0:31 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
";
        assert_eq!(
            locate(cgroup, mounts),
            vec![v1("/sys/fs/cgroup/cpu"), v2("/sys/fs/cgroup/unified/n")]
        );
    }
}
