//! Keep-alive as caching, after FaasCache: which idle sandboxes a worker keeps, and which it
//! gives up when a new sandbox needs the memory they hold.
//!
//! - `ttl` (the default): an idle function goes to zero after its scale-to-zero grace; when a
//!   creation needs memory, idle sandboxes go least recently used first (OpenWhisk's default,
//!   the baseline FaasCache measured against).
//! - `lru`: an idle function keeps one sandbox, however long, until memory is needed; then
//!   the least recently used go first.
//! - `greedy-dual`: as `lru`, evicting by Greedy-Dual-Size-Frequency: priority = clock +
//!   frequency × cold-start cost ÷ memory, the clock rising to each evicted priority, so a
//!   function that is used often, costs much to start and takes little memory stays longest.
//!
//! Each policy is a small file of pure decisions; the cluster model calls them.

mod greedy_dual;
mod lru;
mod ttl;

pub use greedy_dual::GreedyDual;
pub use lru::Lru;
pub use ttl::Ttl;

/// Manager milliseconds (see the cluster model).
pub type Millis = u64;

/// The policy a configuration names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KeepAlive {
    /// Idle functions go after their grace.
    #[default]
    Ttl,
    /// Idle sandboxes stay until memory is needed; least recently used go first.
    Lru,
    /// Idle sandboxes stay until memory is needed; lowest GDSF priority goes first.
    GreedyDual,
}

/// The names `keep_alive` takes.
pub const KEEP_ALIVE_POLICIES: [&str; 3] = ["ttl", "lru", "greedy-dual"];

impl KeepAlive {
    /// The policy called `name`.
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        Ok(match name {
            "ttl" => KeepAlive::Ttl,
            "lru" => KeepAlive::Lru,
            "greedy-dual" | "gdsf" => KeepAlive::GreedyDual,
            other => anyhow::bail!(
                "unknown keep-alive policy {other:?}; expected one of {}",
                KEEP_ALIVE_POLICIES.join(", ")
            ),
        })
    }

    /// The policy's name in the configuration (and in metrics).
    pub fn name(self) -> &'static str {
        match self {
            KeepAlive::Ttl => "ttl",
            KeepAlive::Lru => "lru",
            KeepAlive::GreedyDual => "greedy-dual",
        }
    }

    /// A fresh instance of the policy.
    pub fn build(self) -> Box<dyn Policy> {
        match self {
            KeepAlive::Ttl => Box::new(Ttl),
            KeepAlive::Lru => Box::new(Lru),
            KeepAlive::GreedyDual => Box::new(GreedyDual::default()),
        }
    }
}

/// What a policy knows of a function.
#[derive(Debug, Clone, PartialEq)]
pub struct Usage {
    /// When it was last used.
    pub last_used: Millis,
    /// How often it was used (requests the gateways sent it, and its scales from zero).
    pub frequency: u64,
    /// What starting a sandbox of it costs, measured (ms); 1 until measured.
    pub cold_start_ms: f64,
    /// Memory one sandbox of it books (bytes).
    pub memory: u64,
    /// Its Greedy-Dual priority, set at its last use.
    pub priority: f64,
}

impl Usage {
    /// A function not used yet, booking `memory` per sandbox.
    pub fn new(memory: u64) -> Self {
        Usage {
            last_used: 0,
            frequency: 0,
            cold_start_ms: 1.0,
            memory,
            priority: 0.0,
        }
    }

    /// Folds a measured cold start into the estimate (a moving average).
    pub fn cold_start(&mut self, ms: f64) {
        self.cold_start_ms = if self.frequency == 0 && self.cold_start_ms == 1.0 {
            ms.max(1.0)
        } else {
            0.7 * self.cold_start_ms + 0.3 * ms.max(1.0)
        };
    }
}

/// A keep-alive policy.
pub trait Policy: Send {
    /// Whether an idle function keeps a sandbox until its memory is needed (false: it goes
    /// to zero after its grace).
    fn keeps_idle(&self) -> bool;

    /// Records `uses` uses of a function at `now`.
    fn used(&mut self, usage: &mut Usage, now: Millis, uses: u64);

    /// Which of `idle` to evict, in order, to free what `need` says (all of them when they
    /// hold less): indices into `idle`.
    fn victims(&mut self, idle: &[&Usage], need: Need) -> Vec<usize>;
}

/// What evictions must free for the creations waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Need {
    /// Bytes of memory.
    pub memory: u64,
    /// Sandboxes, whatever their memory: where CPU (each sandbox's share of the worker's
    /// cores) is what is short.
    pub sandboxes: usize,
}

impl Need {
    /// `bytes` of memory.
    pub fn memory(bytes: u64) -> Need {
        Need {
            memory: bytes,
            sandboxes: 0,
        }
    }
}

/// Indices of `idle`, least recently used first.
fn by_recency(idle: &[&Usage]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..idle.len()).collect();
    order.sort_by_key(|&i| idle[i].last_used);
    order
}

/// `order` (indices, first evicted first) cut where the memory freed and the sandboxes
/// evicted reach `need`.
fn enough(idle: &[&Usage], order: Vec<usize>, need: Need) -> Vec<usize> {
    let (mut freed, mut count) = (0u64, 0usize);
    order
        .into_iter()
        .take_while(|&i| {
            let more = freed < need.memory || count < need.sandboxes;
            freed = freed.saturating_add(idle[i].memory);
            count += 1;
            more
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse() {
        assert_eq!(KeepAlive::parse("ttl").unwrap(), KeepAlive::Ttl);
        assert_eq!(KeepAlive::parse("lru").unwrap(), KeepAlive::Lru);
        assert_eq!(
            KeepAlive::parse("greedy-dual").unwrap(),
            KeepAlive::GreedyDual
        );
        let error = KeepAlive::parse("fifo").unwrap_err().to_string();
        assert!(error.contains("greedy-dual"), "{error}");
    }

    #[test]
    fn victims_stop_once_enough_is_freed() {
        let usage = |memory| Usage::new(memory);
        let (a, b, c) = (usage(100), usage(50), usage(200));
        let idle = [&a, &b, &c];
        assert_eq!(
            enough(&idle, vec![1, 0, 2], Need::memory(0)),
            Vec::<usize>::new()
        );
        assert_eq!(enough(&idle, vec![1, 0, 2], Need::memory(50)), [1]);
        assert_eq!(enough(&idle, vec![1, 0, 2], Need::memory(51)), [1, 0]);
        assert_eq!(
            enough(&idle, vec![1, 0, 2], Need::memory(10_000)),
            [1, 0, 2]
        );
    }

    #[test]
    fn enough_frees_the_memory_and_the_sandboxes_asked_for() {
        let (small, big) = (Usage::new(100), Usage::new(1000));
        let idle = [&small, &small, &big];
        let order = || vec![0, 1, 2];
        let cases = [
            (Need::memory(0), vec![]),
            (Need::memory(150), vec![0, 1]),
            (Need::memory(5000), vec![0, 1, 2]),
            (
                Need {
                    memory: 0,
                    sandboxes: 1,
                },
                vec![0],
            ),
            (
                Need {
                    memory: 50,
                    sandboxes: 2,
                },
                vec![0, 1],
            ),
            (
                Need {
                    memory: 250,
                    sandboxes: 1,
                },
                vec![0, 1, 2],
            ),
        ];
        for (need, victims) in cases {
            assert_eq!(enough(&idle, order(), need), victims, "{need:?}");
        }
    }

    #[test]
    fn cold_starts_average() {
        let mut usage = Usage::new(1);
        usage.cold_start(100.0);
        assert_eq!(usage.cold_start_ms, 100.0);
        usage.frequency = 1;
        usage.cold_start(200.0);
        assert!((usage.cold_start_ms - 130.0).abs() < 1e-9);
    }
}
