use crate::{Causal, DotFun, DotStore, Lattice, ReplicaId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A register where the write with the highest timestamp wins; ties (equal timestamps) go to
/// the higher replica id, so every replica picks the same value, and a tie on both (which one
/// replica never makes, but a peer may send) to the greater value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LwwRegister<T> {
    stamp: Option<(u64, ReplicaId)>,
    value: Option<T>,
}

impl<T> Default for LwwRegister<T> {
    fn default() -> Self {
        LwwRegister {
            stamp: None,
            value: None,
        }
    }
}

impl<T: Clone + Ord> LwwRegister<T> {
    /// Writes `value` at `timestamp` (e.g. wall-clock milliseconds) as `replica`; returns the
    /// delta. The stamp used is moved past every stamp this register has seen, as a hybrid
    /// logical clock does, so a write always wins over what its writer saw, and one replica
    /// never issues two writes with the same stamp (which would make the join order-dependent).
    pub fn set(&mut self, timestamp: u64, replica: ReplicaId, value: T) -> LwwRegister<T> {
        let timestamp = match self.stamp {
            Some((seen, _)) if seen >= timestamp => seen + 1,
            _ => timestamp,
        };
        let delta = LwwRegister {
            stamp: Some((timestamp, replica)),
            value: Some(value),
        };
        self.join(&delta);
        delta
    }

    /// The winning value, if any was written.
    pub fn get(&self) -> Option<&T> {
        self.value.as_ref()
    }
}

impl<T: Clone + Ord> Lattice for LwwRegister<T> {
    fn join(&mut self, other: &Self) {
        if (&other.stamp, &other.value) > (&self.stamp, &self.value) {
            self.stamp = other.stamp;
            self.value = other.value.clone();
        }
    }
}

/// A register that keeps every value written concurrently, until a later write replaces them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MvRegister<T>(pub(crate) Causal<DotFun<T>>);

impl<T> Default for MvRegister<T> {
    fn default() -> Self {
        MvRegister(Causal {
            store: DotFun::default(),
            context: Default::default(),
        })
    }
}

impl<T: Clone + Ord> MvRegister<T> {
    /// Writes `value` as `replica`, replacing every value seen; returns the delta.
    pub fn write(&mut self, replica: ReplicaId, value: T) -> MvRegister<T> {
        let dot = self.0.context.next_dot(replica);
        let mut seen = BTreeSet::new();
        self.0.store.dots(&mut seen);
        seen.insert(dot);
        let delta = MvRegister(Causal::delta(DotFun(BTreeMap::from([(dot, value)])), seen));
        self.join(&delta);
        delta
    }

    /// The current values: one, or several written concurrently, or none.
    pub fn values(&self) -> Vec<&T> {
        self.0.store.0.values().collect()
    }
}

impl<T: Clone + Ord> Lattice for MvRegister<T> {
    fn join(&mut self, other: &Self) {
        self.0.join(&other.0);
    }
}
