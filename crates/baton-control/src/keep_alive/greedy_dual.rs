//! `greedy-dual`: Greedy-Dual-Size-Frequency, FaasCache's keep-alive policy. A function's
//! priority, set at each use, is clock + frequency × cold-start cost ÷ memory; the lowest
//! priorities are evicted first, and the clock rises to the highest priority evicted, so
//! functions not used since age relative to those used after. Evictions come in batches:
//! enough for the creations waiting, in one decision.

use super::{Millis, Need, Policy, Usage, enough};

/// Greedy-Dual-Size-Frequency.
#[derive(Default)]
pub struct GreedyDual {
    clock: f64,
}

/// Frequency × cost ÷ size, with size in MiB so priorities read as small numbers.
fn worth(usage: &Usage) -> f64 {
    let mib = (usage.memory as f64 / (1u64 << 20) as f64).max(1.0 / 1024.0);
    usage.frequency as f64 * usage.cold_start_ms / mib
}

impl Policy for GreedyDual {
    fn keeps_idle(&self) -> bool {
        true
    }

    fn used(&mut self, usage: &mut Usage, now: Millis, uses: u64) {
        usage.last_used = now;
        usage.frequency += uses;
        usage.priority = self.clock + worth(usage);
    }

    fn victims(&mut self, idle: &[&Usage], need: Need) -> Vec<usize> {
        let mut order: Vec<usize> = (0..idle.len()).collect();
        order.sort_by(|&a, &b| idle[a].priority.total_cmp(&idle[b].priority));
        let victims = enough(idle, order, need);
        if let Some(highest) = victims.iter().map(|&i| idle[i].priority).reduce(f64::max) {
            self.clock = self.clock.max(highest);
        }
        victims
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn usage(frequency: u64, cold_start_ms: f64, mib: u64) -> Usage {
        Usage {
            frequency,
            cold_start_ms,
            ..Usage::new(mib << 20)
        }
    }

    #[test]
    fn frequent_costly_small_functions_stay_longest() {
        let mut policy = GreedyDual::default();
        let mut rare = usage(0, 100.0, 128);
        let mut cheap = usage(9, 1.0, 128);
        let mut costly = usage(9, 100.0, 128);
        let mut big = usage(9, 100.0, 1024);
        for u in [&mut rare, &mut cheap, &mut costly, &mut big] {
            policy.used(u, 1, 1);
        }
        // worth: rare 1×100/128, cheap 10×1/128, costly 10×100/128, big 10×100/1024.
        let idle = [&rare, &cheap, &costly, &big];
        assert_eq!(policy.victims(&idle, Need::memory(1)), [1]);
        assert_eq!(
            policy.victims(&idle, Need::memory((256 << 20) + 1)),
            [1, 0, 3]
        );
    }

    #[test]
    fn the_clock_ages_what_was_not_used_since() {
        let mut policy = GreedyDual::default();
        let mut old = usage(0, 50.0, 64);
        policy.used(&mut old, 1, 1); // worth 1×50/64 ≈ 0.78
        let mut evicted = usage(0, 100.0, 64);
        policy.used(&mut evicted, 2, 1); // ≈ 1.56
        assert_eq!(policy.victims(&[&evicted], Need::memory(1)), [0]);
        assert!((policy.clock - evicted.priority).abs() < 1e-12);
        // Used after the clock rose, a cheaper function now outranks the old one.
        let mut fresh = usage(0, 10.0, 64);
        policy.used(&mut fresh, 3, 1); // clock ≈ 1.56 + 0.16
        assert!(fresh.priority > old.priority);
        assert_eq!(policy.victims(&[&old, &fresh], Need::memory(1)), [0]);
    }
}
