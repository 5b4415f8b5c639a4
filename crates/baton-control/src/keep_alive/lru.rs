//! `lru`: idle sandboxes stay until memory is needed; the least recently used go first.

use super::{Millis, Need, Policy, Usage, by_recency, enough};

/// Least recently used.
pub struct Lru;

impl Policy for Lru {
    fn keeps_idle(&self) -> bool {
        true
    }

    fn used(&mut self, usage: &mut Usage, now: Millis, uses: u64) {
        usage.last_used = now;
        usage.frequency += uses;
    }

    fn victims(&mut self, idle: &[&Usage], need: Need) -> Vec<usize> {
        enough(idle, by_recency(idle), need)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_least_recently_used_go_first_until_there_is_room() {
        let mut policy = Lru;
        let at = |last_used| Usage {
            last_used,
            ..Usage::new(100)
        };
        let (a, b, c) = (at(30), at(10), at(20));
        let idle = [&a, &b, &c];
        assert!(policy.keeps_idle());
        assert_eq!(policy.victims(&idle, Need::memory(1)), [1]);
        assert_eq!(policy.victims(&idle, Need::memory(150)), [1, 2]);
        assert_eq!(policy.victims(&idle, Need::memory(0)), Vec::<usize>::new());
        let mut used = at(0);
        policy.used(&mut used, 99, 1);
        assert_eq!((used.last_used, used.frequency), (99, 1));
    }
}
