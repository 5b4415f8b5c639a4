use crate::{Lattice, ReplicaId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A grow-only counter: each replica's own total; the value is their sum.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GCounter {
    totals: BTreeMap<ReplicaId, u64>,
}

impl GCounter {
    /// Adds `amount` as `replica`; returns the delta.
    pub fn increment(&mut self, replica: ReplicaId, amount: u64) -> GCounter {
        let total = self.totals.entry(replica).or_insert(0);
        *total = total.saturating_add(amount);
        GCounter {
            totals: BTreeMap::from([(replica, *total)]),
        }
    }

    /// The sum over replicas.
    pub fn value(&self) -> u64 {
        self.totals
            .values()
            .fold(0u64, |sum, v| sum.saturating_add(*v))
    }
}

impl Lattice for GCounter {
    fn join(&mut self, other: &Self) {
        for (replica, total) in &other.totals {
            let mine = self.totals.entry(*replica).or_insert(0);
            *mine = (*mine).max(*total);
        }
    }
}

/// A counter that goes up and down: two grow-only counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PNCounter {
    up: GCounter,
    down: GCounter,
}

impl PNCounter {
    /// Adds `amount` (negative subtracts) as `replica`; returns the delta.
    pub fn add(&mut self, replica: ReplicaId, amount: i64) -> PNCounter {
        let mut delta = PNCounter::default();
        if amount >= 0 {
            delta.up = self.up.increment(replica, amount as u64);
        } else {
            delta.down = self.down.increment(replica, amount.unsigned_abs());
        }
        delta
    }

    /// Increments minus decrements.
    pub fn value(&self) -> i128 {
        i128::from(self.up.value()) - i128::from(self.down.value())
    }
}

impl Lattice for PNCounter {
    fn join(&mut self, other: &Self) {
        self.up.join(&other.up);
        self.down.join(&other.down);
    }
}
