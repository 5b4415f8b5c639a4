//! Load balancing: which sandbox of a function serves a request. Chosen by configuration
//! (`--load-balancing`).
//!
//! Policies see each sandbox's in-flight count and its concurrency limit, and pick only
//! among sandboxes with room, so the per-sandbox limit is never exceeded; `None` means every
//! sandbox is full and the request waits.

use std::sync::atomic::{AtomicUsize, Ordering};

/// One sandbox as a policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Requests it is serving now.
    pub in_flight: u32,
    /// Requests it may serve at once.
    pub capacity: u32,
}

impl Slot {
    fn has_room(&self) -> bool {
        self.in_flight < self.capacity
    }
}

/// Picks a sandbox among those with room.
pub trait LoadBalancer: Send + Sync + 'static {
    /// The index of the chosen sandbox, or `None` when all are full.
    fn pick(&self, slots: &[Slot]) -> Option<usize>;
}

/// The policy names accepted by `--load-balancing`.
pub const LOAD_BALANCING_POLICIES: &[&str] =
    &["random", "round-robin", "least-in-flight", "power-of-two"];

/// Builds the policy called `name`.
pub fn load_balancer(name: &str) -> Result<Box<dyn LoadBalancer>, String> {
    Ok(match name {
        "random" => Box::new(Random),
        "round-robin" => Box::new(RoundRobin::default()),
        "least-in-flight" => Box::new(LeastInFlight),
        "power-of-two" => Box::new(PowerOfTwo),
        other => {
            return Err(format!(
                "unknown load-balancing policy {other:?}; expected one of {}",
                LOAD_BALANCING_POLICIES.join(", ")
            ));
        }
    })
}

/// A uniformly random sandbox with room.
pub struct Random;

impl LoadBalancer for Random {
    fn pick(&self, slots: &[Slot]) -> Option<usize> {
        let open = slots.iter().filter(|s| s.has_room()).count();
        if open == 0 {
            return None;
        }
        let nth = fastrand::usize(..open);
        slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.has_room())
            .nth(nth)
            .map(|(i, _)| i)
    }
}

/// Sandboxes in turn, skipping full ones.
#[derive(Default)]
pub struct RoundRobin {
    next: AtomicUsize,
}

impl LoadBalancer for RoundRobin {
    fn pick(&self, slots: &[Slot]) -> Option<usize> {
        if slots.is_empty() {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        (0..slots.len())
            .map(|k| (start + k) % slots.len())
            .find(|&i| slots[i].has_room())
    }
}

/// The sandbox with the fewest requests in flight; ties go to the first.
pub struct LeastInFlight;

impl LoadBalancer for LeastInFlight {
    fn pick(&self, slots: &[Slot]) -> Option<usize> {
        slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.has_room())
            .min_by_key(|(_, s)| s.in_flight)
            .map(|(i, _)| i)
    }
}

/// Two random sandboxes, the less loaded of them (Mitzenmacher's power of two choices, as
/// Knative's activator does for unlimited concurrency); falls back to the least loaded when
/// both draws are full.
pub struct PowerOfTwo;

impl LoadBalancer for PowerOfTwo {
    fn pick(&self, slots: &[Slot]) -> Option<usize> {
        match slots.len() {
            0 => None,
            1 => slots[0].has_room().then_some(0),
            n => {
                let a = fastrand::usize(..n);
                let mut b = fastrand::usize(..n - 1);
                if b >= a {
                    b += 1;
                }
                let best = if slots[b].in_flight < slots[a].in_flight {
                    b
                } else {
                    a
                };
                if slots[best].has_room() {
                    Some(best)
                } else {
                    LeastInFlight.pick(slots)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(loads: &[u32], capacity: u32) -> Vec<Slot> {
        loads
            .iter()
            .map(|&in_flight| Slot {
                in_flight,
                capacity,
            })
            .collect()
    }

    #[test]
    fn no_policy_picks_a_full_sandbox() {
        for name in LOAD_BALANCING_POLICIES {
            let policy = load_balancer(name).unwrap();
            assert_eq!(policy.pick(&[]), None, "{name}");
            assert_eq!(policy.pick(&slots(&[2, 2, 2], 2)), None, "{name}");
            for _ in 0..50 {
                assert_eq!(policy.pick(&slots(&[2, 1, 2], 2)), Some(1), "{name}");
            }
        }
        assert!(load_balancer("fastest").is_err());
    }

    #[test]
    fn round_robin_takes_turns() {
        let p = RoundRobin::default();
        let s = slots(&[0, 0, 0], 1);
        let picks: Vec<_> = (0..6).map(|_| p.pick(&s).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn least_in_flight_picks_the_idlest() {
        assert_eq!(LeastInFlight.pick(&slots(&[5, 1, 3], 10)), Some(1));
    }

    #[test]
    fn power_of_two_avoids_the_busiest() {
        // With three sandboxes, any two draws include one that is not the busiest.
        let s = slots(&[9, 0, 0], 10);
        for _ in 0..200 {
            assert_ne!(PowerOfTwo.pick(&s), Some(0));
        }
    }

    #[test]
    fn random_uses_every_open_sandbox() {
        let s = slots(&[0, 0, 0, 0], 1);
        let mut seen = [0; 4];
        for _ in 0..400 {
            seen[Random.pick(&s).unwrap()] += 1;
        }
        assert!(seen.iter().all(|&n| n > 40), "{seen:?}");
    }
}
