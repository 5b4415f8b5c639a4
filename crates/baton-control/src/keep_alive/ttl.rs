//! `ttl`: an idle function goes to zero after its scale-to-zero grace (the autoscaler's
//! decision); when a creation needs memory before that, idle sandboxes go least recently used
//! first, as OpenWhisk's default policy does (the baseline FaasCache measured against).

use super::{Lru, Millis, Need, Policy, Usage};

/// Time to live, with least-recently-used eviction when memory is short.
pub struct Ttl;

impl Policy for Ttl {
    fn keeps_idle(&self) -> bool {
        false
    }

    fn used(&mut self, usage: &mut Usage, now: Millis, uses: u64) {
        Lru.used(usage, now, uses);
    }

    fn victims(&mut self, idle: &[&Usage], need: Need) -> Vec<usize> {
        Lru.victims(idle, need)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_grace_decides_and_memory_goes_least_recently_used_first() {
        let mut policy = Ttl;
        let at = |last_used| Usage {
            last_used,
            ..Usage::new(100)
        };
        let (a, b) = (at(20), at(10));
        assert!(!policy.keeps_idle());
        assert_eq!(policy.victims(&[&a, &b], Need::memory(1)), [1]);
        assert!(policy.victims(&[&a, &b], Need::memory(0)).is_empty());
    }
}
