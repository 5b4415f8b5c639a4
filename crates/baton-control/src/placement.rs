//! Placement: which worker gets a new sandbox. Chosen by configuration (`--placement`).
//!
//! Every policy sees only schedulable workers (heartbeating, not draining) and returns an
//! index into the slice it was given, or `None` when no worker fits.

use std::sync::atomic::{AtomicUsize, Ordering};

/// A worker as placement sees it: capacity from registration, use from heartbeats plus
/// what was placed since.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerLoad {
    /// CPU cores the worker offers.
    pub cpu_cores: f64,
    /// Memory the worker offers, in bytes.
    pub memory_bytes: u64,
    /// Cores in use.
    pub cpu_used: f64,
    /// Memory in use, in bytes.
    pub memory_used: u64,
}

impl WorkerLoad {
    /// How many more sandboxes of `demand` fit, by CPU and by memory, as `resource-fit`
    /// places them (at most `cap`): what keep-alive eviction must make room beyond.
    pub fn room_for(&self, demand: Demand, cap: u64) -> u64 {
        let mut load = self.clone();
        let mut room = 0;
        while room < cap && ResourceFit::score(&load, demand).is_some() {
            load.cpu_used += demand.cpu;
            load.memory_used = load.memory_used.saturating_add(demand.memory);
            room += 1;
        }
        room
    }

    /// How many more sandboxes of `demand` its CPU alone leaves room for (at most `cap`).
    pub fn cpu_room_for(&self, demand: Demand, cap: u64) -> u64 {
        let memory_free = WorkerLoad {
            memory_used: 0,
            memory_bytes: u64::MAX,
            ..self.clone()
        };
        memory_free.room_for(demand, cap)
    }
}

/// What one sandbox asks for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Demand {
    /// Cores.
    pub cpu: f64,
    /// Bytes.
    pub memory: u64,
}

/// Picks a worker for a sandbox.
pub trait Placement: Send + Sync + 'static {
    /// The index of the chosen worker in `workers`, or `None` when none fits.
    fn place(&self, workers: &[WorkerLoad], demand: Demand) -> Option<usize>;
}

/// The policy names accepted by `--placement`.
pub const PLACEMENT_POLICIES: &[&str] = &["random", "round-robin", "resource-fit"];

/// Builds the policy called `name`.
pub fn placement_policy(name: &str) -> anyhow::Result<Box<dyn Placement>> {
    Ok(match name {
        "random" => Box::new(RandomPlacement),
        "round-robin" => Box::new(RoundRobinPlacement::default()),
        "resource-fit" | "kubernetes" => Box::new(ResourceFit),
        other => anyhow::bail!(
            "unknown placement policy {other:?}; expected one of {}",
            PLACEMENT_POLICIES.join(", ")
        ),
    })
}

/// Uniformly at random.
pub struct RandomPlacement;

impl Placement for RandomPlacement {
    fn place(&self, workers: &[WorkerLoad], _: Demand) -> Option<usize> {
        (!workers.is_empty()).then(|| fastrand::usize(..workers.len()))
    }
}

/// Each worker in turn.
#[derive(Default)]
pub struct RoundRobinPlacement {
    next: AtomicUsize,
}

impl Placement for RoundRobinPlacement {
    fn place(&self, workers: &[WorkerLoad], _: Demand) -> Option<usize> {
        (!workers.is_empty()).then(|| self.next.fetch_add(1, Ordering::Relaxed) % workers.len())
    }
}

/// kube-scheduler's default scoring: filter workers with room for the demand, then score
/// `NodeResourcesFit` (least allocated, CPU and memory weighted equally) plus
/// `NodeResourcesBalancedAllocation` (one minus the spread of the utilisation fractions),
/// each 0–100, and pick the best; ties go to the first.
pub struct ResourceFit;

impl ResourceFit {
    fn score(worker: &WorkerLoad, demand: Demand) -> Option<f64> {
        let cpu_after = worker.cpu_used + demand.cpu;
        let memory_after = worker.memory_used.saturating_add(demand.memory);
        if worker.cpu_cores <= 0.0
            || worker.memory_bytes == 0
            // Shares summed in floating point (ten of 0.1 make 1.0000000000000002) still fit.
            || cpu_after > worker.cpu_cores + 1e-9
            || memory_after > worker.memory_bytes
        {
            return None;
        }
        let cpu = cpu_after / worker.cpu_cores;
        let memory = memory_after as f64 / worker.memory_bytes as f64;
        let least_allocated = ((1.0 - cpu) + (1.0 - memory)) / 2.0 * 100.0;
        let balanced = (1.0 - (cpu - memory).abs() / 2.0) * 100.0;
        Some(least_allocated + balanced)
    }
}

impl Placement for ResourceFit {
    fn place(&self, workers: &[WorkerLoad], demand: Demand) -> Option<usize> {
        let mut best: Option<(usize, f64)> = None;
        for (i, worker) in workers.iter().enumerate() {
            if let Some(score) = Self::score(worker, demand)
                && best.is_none_or(|(_, b)| score > b)
            {
                best = Some((i, score));
            }
        }
        best.map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(cpu_used: f64, memory_used_gib: u64) -> WorkerLoad {
        WorkerLoad {
            cpu_cores: 4.0,
            memory_bytes: 8 << 30,
            cpu_used,
            memory_used: memory_used_gib << 30,
        }
    }

    const SMALL: Demand = Demand {
        cpu: 0.1,
        memory: 128 << 20,
    };

    #[test]
    fn no_workers_no_placement() {
        for name in PLACEMENT_POLICIES {
            assert_eq!(placement_policy(name).unwrap().place(&[], SMALL), None);
        }
        assert!(placement_policy("best-effort").is_err());
    }

    #[test]
    fn round_robin_visits_every_worker_in_turn() {
        let p = RoundRobinPlacement::default();
        let workers = vec![worker(0.0, 0); 3];
        let picks: Vec<_> = (0..6).map(|_| p.place(&workers, SMALL).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn random_spreads_over_every_worker() {
        let workers = vec![worker(0.0, 0); 4];
        let mut seen = [0; 4];
        for _ in 0..400 {
            seen[RandomPlacement.place(&workers, SMALL).unwrap()] += 1;
        }
        assert!(seen.iter().all(|&n| n > 40), "{seen:?}");
    }

    #[test]
    fn resource_fit_prefers_the_emptier_worker_and_skips_full_ones() {
        let workers = [worker(3.0, 6), worker(1.0, 2), worker(3.95, 1)];
        assert_eq!(ResourceFit.place(&workers, SMALL), Some(1));
        let big = Demand {
            cpu: 2.0,
            memory: 1 << 30,
        };
        let workers = [worker(3.0, 1), worker(2.5, 1)];
        assert_eq!(
            ResourceFit.place(&workers, big),
            None,
            "neither has 2 cores free"
        );
    }

    #[test]
    fn resource_fit_balances_cpu_against_memory() {
        // Same free total, but the second leaves CPU and memory equally used.
        let lopsided = worker(3.0, 0);
        let balanced = worker(1.5, 3);
        assert_eq!(ResourceFit.place(&[lopsided, balanced], SMALL), Some(1));
    }

    #[test]
    fn room_counts_what_binds_first() {
        let demand = Demand {
            cpu: 0.1,
            memory: 1 << 30,
        };
        // 4 cores and 8 GiB, 3.8 cores and 2 GiB used: CPU binds (two more), then memory.
        let cpu_bound = worker(3.8, 2);
        assert_eq!(cpu_bound.room_for(demand, 100), 2);
        assert_eq!(cpu_bound.cpu_room_for(demand, 100), 2);
        let memory_bound = worker(0.0, 7);
        assert_eq!(memory_bound.room_for(demand, 100), 1);
        assert_eq!(memory_bound.cpu_room_for(demand, 100), 40);
        assert_eq!(memory_bound.cpu_room_for(demand, 3), 3);
    }
}
