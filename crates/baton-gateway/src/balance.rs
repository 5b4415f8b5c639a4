//! Load balancing: which sandbox of a function serves a request. Chosen by configuration
//! (`--load-balancing`).
//!
//! Policies see each sandbox's in-flight count, its concurrency limit and the worker it is
//! on, and pick only among sandboxes with room, so the per-sandbox limit is never exceeded;
//! `None` means every sandbox is full and the request waits. `consistent-hash` also sees the
//! request's affinity key (header `X-Baton-Affinity`): every request with one key goes to one
//! worker, whatever the function, so related calls meet one state replica.

use std::sync::atomic::{AtomicUsize, Ordering};

/// One sandbox as a policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Requests it is serving now.
    pub in_flight: u32,
    /// Requests it may serve at once.
    pub capacity: u32,
    /// A hash of the worker it runs on: sandboxes of any function on one worker share it.
    pub worker: u64,
}

impl Slot {
    fn has_room(&self) -> bool {
        self.in_flight < self.capacity
    }
}

/// Picks a sandbox among those with room.
pub trait LoadBalancer: Send + Sync + 'static {
    /// The index of the chosen sandbox, or `None` when all are full. `key` is the hash of the
    /// request's affinity key, when it has one.
    fn pick(&self, slots: &[Slot], key: Option<u64>) -> Option<usize>;
}

/// The request header whose value `consistent-hash` routes by.
pub const AFFINITY_HEADER: &str = "x-baton-affinity";

/// A stable 64-bit hash (FNV-1a, then a finaliser), the same in every gateway process, for
/// worker ids and affinity keys.
pub fn stable_hash(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(hash)
}

/// SplitMix64's finaliser: spreads nearby inputs over the whole range.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The policy names accepted by `--load-balancing`.
pub const LOAD_BALANCING_POLICIES: &[&str] = &[
    "random",
    "round-robin",
    "least-in-flight",
    "power-of-two",
    "consistent-hash",
];

/// Builds the policy called `name`.
pub fn load_balancer(name: &str) -> Result<Box<dyn LoadBalancer>, String> {
    Ok(match name {
        "random" => Box::new(Random),
        "round-robin" => Box::new(RoundRobin::default()),
        "least-in-flight" => Box::new(LeastInFlight),
        "power-of-two" => Box::new(PowerOfTwo),
        "consistent-hash" => Box::new(ConsistentHash),
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
    fn pick(&self, slots: &[Slot], _key: Option<u64>) -> Option<usize> {
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
    fn pick(&self, slots: &[Slot], _key: Option<u64>) -> Option<usize> {
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
    fn pick(&self, slots: &[Slot], _key: Option<u64>) -> Option<usize> {
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
    fn pick(&self, slots: &[Slot], _key: Option<u64>) -> Option<usize> {
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
                    LeastInFlight.pick(slots, None)
                }
            }
        }
    }
}

/// Requests with an affinity key go to one worker: of the workers that have a sandbox of the
/// function, the one ranking highest for the key (rendezvous hashing, so adding or losing a
/// worker moves only the keys it ranked first), and there the least loaded sandbox; when
/// they are all full the request waits rather than go elsewhere. Requests without a key are
/// balanced as `least-in-flight`.
pub struct ConsistentHash;

impl LoadBalancer for ConsistentHash {
    fn pick(&self, slots: &[Slot], key: Option<u64>) -> Option<usize> {
        let Some(key) = key else {
            return LeastInFlight.pick(slots, None);
        };
        let home = slots
            .iter()
            .map(|s| s.worker)
            .max_by_key(|worker| (mix(key ^ worker), *worker))?;
        slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.worker == home && s.has_room())
            .min_by_key(|(_, s)| s.in_flight)
            .map(|(i, _)| i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(loads: &[u32], capacity: u32) -> Vec<Slot> {
        loads
            .iter()
            .enumerate()
            .map(|(i, &in_flight)| Slot {
                in_flight,
                capacity,
                worker: stable_hash(format!("w{i}").as_bytes()),
            })
            .collect()
    }

    fn on(workers: &[&str], in_flight: u32) -> Vec<Slot> {
        workers
            .iter()
            .map(|w| Slot {
                in_flight,
                capacity: 2,
                worker: stable_hash(w.as_bytes()),
            })
            .collect()
    }

    #[test]
    fn one_key_goes_to_one_worker_whatever_the_function() {
        let a = on(&["w1", "w2", "w3"], 0);
        let b = on(&["w3", "w1", "w2", "w3"], 0);
        for n in 0..500u64 {
            let key = Some(stable_hash(n.to_string().as_bytes()));
            let pa = a[ConsistentHash.pick(&a, key).unwrap()].worker;
            let pb = b[ConsistentHash.pick(&b, key).unwrap()].worker;
            assert_eq!(pa, pb, "key {n}");
            // Losing a worker that was not the key's leaves the key where it was.
            let others: Vec<&str> = ["w1", "w2", "w3"]
                .into_iter()
                .filter(|w| stable_hash(w.as_bytes()) == pa || *w == "w1")
                .collect();
            let fewer = on(&others, 0);
            assert_eq!(fewer[ConsistentHash.pick(&fewer, key).unwrap()].worker, pa);
        }
    }

    #[test]
    fn keys_spread_over_workers_and_wait_for_their_own() {
        let s = on(&["w1", "w2", "w3"], 0);
        let mut seen = std::collections::HashMap::new();
        for n in 0..900u64 {
            let key = Some(stable_hash(&n.to_be_bytes()));
            *seen
                .entry(ConsistentHash.pick(&s, key).unwrap())
                .or_insert(0) += 1;
        }
        assert!(
            seen.len() == 3 && seen.values().all(|&c| c > 200),
            "{seen:?}"
        );
        // The key's worker full: the request waits rather than go to another replica.
        let key = Some(stable_hash(b"post"));
        let home = ConsistentHash.pick(&s, key).unwrap();
        let mut full = s.clone();
        full[home].in_flight = 2;
        assert_eq!(ConsistentHash.pick(&full, key), None);
        // Without a key, the least loaded.
        assert_eq!(ConsistentHash.pick(&slots(&[3, 0, 1], 4), None), Some(1));
    }

    #[test]
    fn no_policy_picks_a_full_sandbox() {
        for name in LOAD_BALANCING_POLICIES {
            let policy = load_balancer(name).unwrap();
            assert_eq!(policy.pick(&[], None), None, "{name}");
            assert_eq!(policy.pick(&slots(&[2, 2, 2], 2), None), None, "{name}");
            for _ in 0..50 {
                assert_eq!(policy.pick(&slots(&[2, 1, 2], 2), None), Some(1), "{name}");
            }
        }
        assert!(load_balancer("fastest").is_err());
    }

    #[test]
    fn round_robin_takes_turns() {
        let p = RoundRobin::default();
        let s = slots(&[0, 0, 0], 1);
        let picks: Vec<_> = (0..6).map(|_| p.pick(&s, None).unwrap()).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
    }

    #[test]
    fn least_in_flight_picks_the_idlest() {
        assert_eq!(LeastInFlight.pick(&slots(&[5, 1, 3], 10), None), Some(1));
    }

    #[test]
    fn power_of_two_avoids_the_busiest() {
        // With three sandboxes, any two draws include one that is not the busiest.
        let s = slots(&[9, 0, 0], 10);
        for _ in 0..200 {
            assert_ne!(PowerOfTwo.pick(&s, None), Some(0));
        }
    }

    #[test]
    fn random_uses_every_open_sandbox() {
        let s = slots(&[0, 0, 0, 0], 1);
        let mut seen = [0; 4];
        for _ in 0..400 {
            seen[Random.pick(&s, None).unwrap()] += 1;
        }
        assert!(seen.iter().all(|&n| n > 40), "{seen:?}");
    }
}
