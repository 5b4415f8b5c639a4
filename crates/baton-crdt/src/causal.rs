//! The machinery of causal CRDTs: dots (unique event ids), the causal context (which events a
//! replica has seen), and dot stores joined by the rule that lets removals win without
//! tombstones: an event in one store and absent from the other survives only if the other has
//! not seen it.

use crate::{Lattice, ReplicaId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One event: the `counter`th update made by `replica`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    /// Who made it.
    pub replica: ReplicaId,
    /// Its sequence number at that replica, from 1.
    pub counter: u64,
}

/// The events a replica has seen: a version vector for the contiguous prefix of each replica,
/// plus the few out-of-order dots beyond it. Decoding compacts what a peer sent, so equal
/// contexts compare equal however they were written.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "ContextParts")]
pub struct CausalContext {
    compact: BTreeMap<ReplicaId, u64>,
    cloud: BTreeSet<Dot>,
}

/// [`CausalContext`] as written, before it is compacted.
#[derive(Deserialize)]
struct ContextParts {
    compact: BTreeMap<ReplicaId, u64>,
    cloud: BTreeSet<Dot>,
}

impl From<ContextParts> for CausalContext {
    fn from(parts: ContextParts) -> Self {
        let mut context = CausalContext {
            compact: parts.compact,
            cloud: parts.cloud,
        };
        context.compact();
        context
    }
}

impl CausalContext {
    /// True when `dot` has been seen.
    pub fn contains(&self, dot: &Dot) -> bool {
        self.compact
            .get(&dot.replica)
            .is_some_and(|max| dot.counter <= *max)
            || self.cloud.contains(dot)
    }

    /// The next dot of `replica`: one past everything seen from it.
    pub fn next_dot(&self, replica: ReplicaId) -> Dot {
        let compact = self.compact.get(&replica).copied().unwrap_or(0);
        let cloud = self
            .cloud
            .iter()
            .filter(|d| d.replica == replica)
            .map(|d| d.counter)
            .max()
            .unwrap_or(0);
        Dot {
            replica,
            counter: compact.max(cloud) + 1,
        }
    }

    /// Records `dot` as seen.
    pub fn insert(&mut self, dot: Dot) {
        if !self.contains(&dot) {
            self.cloud.insert(dot);
            self.compact();
        }
    }

    /// The version vector: for each replica, the count of its events seen without gaps.
    pub fn version_vector(&self) -> &BTreeMap<ReplicaId, u64> {
        &self.compact
    }

    /// Moves dots that extend the contiguous prefix from the cloud into the vector.
    fn compact(&mut self) {
        let cloud = std::mem::take(&mut self.cloud);
        for dot in cloud {
            let max = self.compact.entry(dot.replica).or_insert(0);
            if dot.counter == *max + 1 {
                *max += 1;
            } else if dot.counter > *max {
                self.cloud.insert(dot);
            }
        }
        // A dot may now extend a prefix that grew after it was visited.
        loop {
            let next: Vec<Dot> = self
                .cloud
                .iter()
                .filter(|d| self.compact.get(&d.replica).copied().unwrap_or(0) + 1 == d.counter)
                .copied()
                .collect();
            if next.is_empty() {
                break;
            }
            for dot in next {
                self.cloud.remove(&dot);
                *self.compact.entry(dot.replica).or_insert(0) = dot.counter;
            }
        }
        self.compact.retain(|_, max| *max > 0);
    }
}

impl Lattice for CausalContext {
    fn join(&mut self, other: &Self) {
        for (replica, max) in &other.compact {
            let mine = self.compact.entry(*replica).or_insert(0);
            *mine = (*mine).max(*max);
        }
        self.cloud.extend(other.cloud.iter().copied());
        self.compact();
    }
}

/// What a causal CRDT keeps its events in.
pub trait DotStore: Clone + PartialEq + Default {
    /// Every dot in the store.
    fn dots(&self, out: &mut BTreeSet<Dot>);
    /// True when the store holds nothing.
    fn is_empty(&self) -> bool;
    /// Joins `other` (whose replica had seen `theirs`) into `self` (which had seen `ours`).
    fn join_with(&mut self, ours: &CausalContext, other: &Self, theirs: &CausalContext);
}

/// A set of dots: the store of flags and of each member of a set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DotSet(pub BTreeSet<Dot>);

impl DotStore for DotSet {
    fn dots(&self, out: &mut BTreeSet<Dot>) {
        out.extend(self.0.iter().copied());
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn join_with(&mut self, ours: &CausalContext, other: &Self, theirs: &CausalContext) {
        // Keep what both hold, and what one holds that the other has not seen.
        self.0
            .retain(|dot| other.0.contains(dot) || !theirs.contains(dot));
        self.0
            .extend(other.0.iter().filter(|dot| !ours.contains(dot)).copied());
    }
}

/// A map from dots to values: the store of multi-value registers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DotFun<V>(pub BTreeMap<Dot, V>);

impl<V> Default for DotFun<V> {
    fn default() -> Self {
        DotFun(BTreeMap::new())
    }
}

impl<V: Clone + Ord> DotStore for DotFun<V> {
    fn dots(&self, out: &mut BTreeSet<Dot>) {
        out.extend(self.0.keys().copied());
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn join_with(&mut self, ours: &CausalContext, other: &Self, theirs: &CausalContext) {
        self.0
            .retain(|dot, _| other.0.contains_key(dot) || !theirs.contains(dot));
        for (dot, value) in &other.0 {
            match self.0.get_mut(dot) {
                // A dot names one write, so both sides hold the same value for a shared dot;
                // a peer that sends another gets the same answer on every replica.
                Some(mine) if *value > *mine => *mine = value.clone(),
                Some(_) => {}
                None if !ours.contains(dot) => {
                    self.0.insert(*dot, value.clone());
                }
                None => {}
            }
        }
    }
}

/// A map from keys to dot stores: the store of sets and maps. A key whose store is empty is
/// absent (joins drop it), so decoding drops such keys a peer sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    from = "BTreeMap<K, S>",
    bound(deserialize = "K: Ord + Deserialize<'de>, S: DotStore + Deserialize<'de>")
)]
pub struct DotMap<K: Ord, S>(pub BTreeMap<K, S>);

impl<K: Ord, S: DotStore> From<BTreeMap<K, S>> for DotMap<K, S> {
    fn from(mut map: BTreeMap<K, S>) -> Self {
        map.retain(|_, store| !store.is_empty());
        DotMap(map)
    }
}

impl<K: Ord, S> Default for DotMap<K, S> {
    fn default() -> Self {
        DotMap(BTreeMap::new())
    }
}

impl<K: Ord + Clone, S: DotStore> DotStore for DotMap<K, S> {
    fn dots(&self, out: &mut BTreeSet<Dot>) {
        for store in self.0.values() {
            store.dots(out);
        }
    }

    fn is_empty(&self) -> bool {
        self.0.values().all(DotStore::is_empty)
    }

    fn join_with(&mut self, ours: &CausalContext, other: &Self, theirs: &CausalContext) {
        let keys: BTreeSet<K> = self.0.keys().chain(other.0.keys()).cloned().collect();
        let empty = S::default();
        for key in keys {
            let mut mine = self.0.remove(&key).unwrap_or_default();
            mine.join_with(ours, other.0.get(&key).unwrap_or(&empty), theirs);
            if !mine.is_empty() {
                self.0.insert(key, mine);
            }
        }
    }
}

/// A dot store with the context of events it has seen: a causal CRDT's whole state, and its
/// deltas.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Causal<S> {
    /// The live events.
    pub store: S,
    /// Every event seen, live or removed.
    pub context: CausalContext,
}

impl<S: DotStore> Lattice for Causal<S> {
    fn join(&mut self, other: &Self) {
        self.store
            .join_with(&self.context, &other.store, &other.context);
        self.context.join(&other.context);
    }
}

impl<S: DotStore> Causal<S> {
    /// A delta holding `store` and a context of `dots`.
    pub(crate) fn delta(store: S, dots: impl IntoIterator<Item = Dot>) -> Self {
        let mut context = CausalContext::default();
        for dot in dots {
            context.insert(dot);
        }
        Causal { store, context }
    }
}
