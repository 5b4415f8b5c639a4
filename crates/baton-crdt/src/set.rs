use crate::{Causal, DotMap, DotSet, DotStore, Lattice, ReplicaId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A grow-only set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GSet<T: Ord>(pub BTreeSet<T>);

impl<T: Ord> Default for GSet<T> {
    fn default() -> Self {
        GSet(BTreeSet::new())
    }
}

impl<T: Ord + Clone> GSet<T> {
    /// Adds `item`; returns the delta.
    pub fn add(&mut self, item: T) -> GSet<T> {
        self.0.insert(item.clone());
        GSet(BTreeSet::from([item]))
    }

    /// True when `item` was added.
    pub fn contains(&self, item: &T) -> bool {
        self.0.contains(item)
    }
}

impl<T: Ord + Clone> Lattice for GSet<T> {
    fn join(&mut self, other: &Self) {
        self.0.extend(other.0.iter().cloned());
    }
}

/// An add-wins observed-remove set: a remove takes away only the adds it has seen, so a
/// concurrent add survives. Removed items leave no tombstone, only their dots in the context.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AwSet<T: Ord>(pub(crate) Causal<DotMap<T, DotSet>>);

impl<T: Ord> Default for AwSet<T> {
    fn default() -> Self {
        AwSet(Causal {
            store: DotMap::default(),
            context: Default::default(),
        })
    }
}

impl<T: Ord + Clone> AwSet<T> {
    /// Adds `item` as `replica`; returns the delta.
    pub fn add(&mut self, replica: ReplicaId, item: T) -> AwSet<T> {
        let dot = self.0.context.next_dot(replica);
        let mut seen = BTreeSet::from([dot]);
        if let Some(dots) = self.0.store.0.get(&item) {
            dots.dots(&mut seen);
        }
        let store = DotMap(BTreeMap::from([(item, DotSet(BTreeSet::from([dot])))]));
        let delta = AwSet(Causal::delta(store, seen));
        self.join(&delta);
        delta
    }

    /// Removes `item` (every add of it seen so far); returns the delta.
    pub fn remove(&mut self, item: &T) -> AwSet<T> {
        let mut seen = BTreeSet::new();
        if let Some(dots) = self.0.store.0.get(item) {
            dots.dots(&mut seen);
        }
        let delta = AwSet(Causal::delta(DotMap::default(), seen));
        self.join(&delta);
        delta
    }

    /// True when `item` is in the set.
    pub fn contains(&self, item: &T) -> bool {
        self.0.store.0.contains_key(item)
    }

    /// The members, in order.
    pub fn members(&self) -> impl Iterator<Item = &T> {
        self.0.store.0.keys()
    }
}

impl<T: Ord + Clone> Lattice for AwSet<T> {
    fn join(&mut self, other: &Self) {
        self.0.join(&other.0);
    }
}
