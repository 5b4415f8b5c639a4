//! `ttl`: an idle function goes to zero after its scale-to-zero grace (the autoscaler's
//! decision); nothing is evicted to make room, so a creation that finds no room waits for a
//! grace to end somewhere.

use super::{Millis, Policy, Usage};

/// Time to live: the grace decides.
pub struct Ttl;

impl Policy for Ttl {
    fn keeps_idle(&self) -> bool {
        false
    }

    fn used(&mut self, usage: &mut Usage, now: Millis) {
        usage.last_used = now;
        usage.frequency += 1;
    }

    fn victims(&mut self, _idle: &[&Usage], _need: u64) -> Vec<usize> {
        Vec::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_evicts_and_lets_the_grace_decide() {
        let mut policy = Ttl;
        let idle = Usage::new(100);
        assert!(!policy.keeps_idle());
        assert!(policy.victims(&[&idle], 1_000).is_empty());
    }
}
