//! What this machine offers and what this process uses: read once here, through `procfs`
//! (which knows the page size and the clock tick), bounded by the cgroup memory limit when
//! the node runs in a container.

use std::path::Path;
use std::sync::Mutex;
use std::time::Instant;

/// Memory the node may use, in bytes: the machine's `MemTotal`, or the cgroup's memory limit
/// when one is set and lower (a container's budget, not the host's).
pub fn memory_bytes() -> Option<u64> {
    let total = procfs::Current::current()
        .ok()
        .map(|m: procfs::Meminfo| m.mem_total);
    let limit = cgroup_memory_limit(Path::new("/"));
    match (total, limit) {
        (Some(total), Some(limit)) => Some(total.min(limit)),
        (total, limit) => total.or(limit),
    }
}

/// The memory limit of the cgroup this process is in, v2 or v1; `None` when unlimited or
/// when the machine has no cgroups mounted. `root` is `/` except in tests.
pub fn cgroup_memory_limit(root: &Path) -> Option<u64> {
    let own = std::fs::read_to_string(root.join("proc/self/cgroup")).ok()?;
    let (v2, v1) = cgroup_paths(&own);
    let candidates = [
        v2.map(|p| root.join("sys/fs/cgroup").join(p).join("memory.max")),
        v1.map(|p| {
            root.join("sys/fs/cgroup/memory")
                .join(p)
                .join("memory.limit_in_bytes")
        }),
    ];
    candidates
        .into_iter()
        .flatten()
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .filter_map(|text| parse_limit(&text))
        .min()
}

/// The v2 path and the v1 memory controller's path of `/proc/self/cgroup`, relative.
fn cgroup_paths(own: &str) -> (Option<&str>, Option<&str>) {
    let (mut v2, mut v1) = (None, None);
    for line in own.lines() {
        let mut fields = line.splitn(3, ':');
        let (Some(_), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let path = path.trim_start_matches('/');
        if controllers.is_empty() {
            v2 = Some(path);
        } else if controllers.split(',').any(|c| c == "memory") {
            v1 = Some(path);
        }
    }
    (v2, v1)
}

/// A cgroup memory limit file's value; `max` (v2) and v1's near-`i64::MAX` mean none.
fn parse_limit(text: &str) -> Option<u64> {
    let text = text.trim();
    if text == "max" {
        return None;
    }
    text.parse::<u64>().ok().filter(|&n| n < 1 << 60)
}

/// Resident memory of this process, in bytes.
pub fn resident_bytes() -> u64 {
    procfs::process::Process::myself()
        .and_then(|p| p.statm())
        .map_or(0, |statm| statm.resident * procfs::page_size())
}

/// Cores this process used between two calls of [`CpuMeter::sample`].
#[derive(Default)]
pub struct CpuMeter {
    last: Mutex<Option<(Instant, f64)>>,
}

impl CpuMeter {
    /// Cores used since the previous sample (0 on the first).
    pub fn sample(&self) -> f64 {
        let Some(seconds) = cpu_seconds() else {
            return 0.0;
        };
        let now = Instant::now();
        let mut last = self.last.lock().unwrap();
        let used = match *last {
            Some((then, before)) => {
                (seconds - before) / now.duration_since(then).as_secs_f64().max(1e-3)
            }
            None => 0.0,
        };
        *last = Some((now, seconds));
        used.max(0.0)
    }
}

/// User and system CPU time of this process so far, in seconds.
fn cpu_seconds() -> Option<f64> {
    let stat = procfs::process::Process::myself().ok()?.stat().ok()?;
    Some((stat.utime + stat.stime) as f64 / procfs::ticks_per_second() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_read_as_the_kernel_writes_them() {
        let cases = [
            ("max\n", None),
            ("1073741824\n", Some(1 << 30)),
            ("9223372036854771712\n", None),
            ("", None),
            ("garbage", None),
        ];
        for (text, limit) in cases {
            assert_eq!(parse_limit(text), limit, "{text:?}");
        }
    }

    #[test]
    fn the_memory_controller_is_found_in_either_hierarchy() {
        let cases = [
            (
                "0::/user.slice/baton.scope\n",
                (Some("user.slice/baton.scope"), None),
            ),
            (
                "12:cpu,cpuacct:/a\n9:memory:/docker/abc\n0::/\n",
                (Some(""), Some("docker/abc")),
            ),
            ("5:pids:/x\n", (None, None)),
        ];
        for (text, expected) in cases {
            assert_eq!(cgroup_paths(text), expected, "{text:?}");
        }
    }

    #[test]
    fn the_lower_of_v1_and_v2_limits_counts() {
        let root = tempfile::tempdir().unwrap();
        let write = |path: &str, text: &str| {
            let file = root.path().join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        };
        write("proc/self/cgroup", "9:memory:/job\n0::/job\n");
        assert_eq!(cgroup_memory_limit(root.path()), None, "no limit files");
        write("sys/fs/cgroup/job/memory.max", "max\n");
        assert_eq!(cgroup_memory_limit(root.path()), None, "unlimited");
        write(
            "sys/fs/cgroup/memory/job/memory.limit_in_bytes",
            "2147483648\n",
        );
        assert_eq!(cgroup_memory_limit(root.path()), Some(2 << 30));
        write("sys/fs/cgroup/job/memory.max", "1073741824\n");
        assert_eq!(cgroup_memory_limit(root.path()), Some(1 << 30));
    }

    #[test]
    fn this_process_uses_memory_and_cpu() {
        assert!(resident_bytes() > 1 << 20);
        assert!(memory_bytes().is_some_and(|m| m > resident_bytes()));
        let meter = CpuMeter::default();
        assert_eq!(meter.sample(), 0.0);
        let start = Instant::now();
        let mut spin = 0u64;
        while start.elapsed().as_millis() < 50 {
            spin = spin.wrapping_add(1);
        }
        assert!(meter.sample() > 0.0, "{spin}");
    }
}
