use crate::{AwSet, Causal, DotMap, DotStore, EwFlag, Lattice, MvRegister};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// A causal CRDT that can be the value of an [`OrMap`]: it is a dot store with a context.
pub trait CausalValue: Lattice {
    /// Its dot store.
    type Store: DotStore;
    /// Builds the value from a store and the map's context.
    fn from_causal(causal: Causal<Self::Store>) -> Self;
    /// Gives its store and context back.
    fn into_causal(self) -> Causal<Self::Store>;
}

macro_rules! causal_value {
    ($ty:ty, $store:ty, [$($bound:tt)*]) => {
        impl<$($bound)*> CausalValue for $ty {
            type Store = $store;
            fn from_causal(causal: Causal<Self::Store>) -> Self {
                Self(causal)
            }
            fn into_causal(self) -> Causal<Self::Store> {
                self.0
            }
        }
    };
}

causal_value!(EwFlag, crate::DotSet, []);
causal_value!(MvRegister<T>, crate::DotFun<T>, [T: Clone + Ord]);
causal_value!(AwSet<T>, DotMap<T, crate::DotSet>, [T: Ord + Clone]);

/// An observed-remove map whose values are causal CRDTs (flags, multi-value registers, sets,
/// maps). An update and a concurrent removal of the same key: the update's new events survive.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize, V::Store: Serialize",
    deserialize = "K: Deserialize<'de>, V::Store: Deserialize<'de>"
))]
pub struct OrMap<K: Ord, V: CausalValue>(Causal<DotMap<K, V::Store>>);

impl<K: Ord, V: CausalValue> Default for OrMap<K, V> {
    fn default() -> Self {
        OrMap(Causal {
            store: DotMap(BTreeMap::new()),
            context: Default::default(),
        })
    }
}

impl<K: Ord + Clone, V: CausalValue> OrMap<K, V> {
    /// Applies `mutate` to the value at `key` (a default one if absent); `mutate` returns the
    /// value's delta, which becomes the map's.
    pub fn update(&mut self, key: K, mutate: impl FnOnce(&mut V) -> V) -> OrMap<K, V> {
        let store = self.0.store.0.get(&key).cloned().unwrap_or_default();
        let mut value = V::from_causal(Causal {
            store,
            context: self.0.context.clone(),
        });
        let Causal { store, context } = mutate(&mut value).into_causal();
        let delta = OrMap(Causal {
            store: DotMap(BTreeMap::from([(key.clone(), store)])),
            context,
        });
        self.join_local(&key, &delta);
        delta
    }

    /// Removes `key` and every event under it seen so far; returns the delta.
    pub fn remove(&mut self, key: &K) -> OrMap<K, V> {
        let mut seen = BTreeSet::new();
        if let Some(store) = self.0.store.0.get(key) {
            store.dots(&mut seen);
        }
        let delta = OrMap(Causal::delta(DotMap::default(), seen));
        self.join_local(key, &delta);
        delta
    }

    /// Joins `delta`, made here by a mutation of `key`, into the map. Such a delta's context
    /// holds only the events of `key`'s value and the new ones, so no other key changes: only
    /// `key` is joined, not every key as [`Lattice::join`] does (which made each update of a
    /// large map cost the whole map).
    fn join_local(&mut self, key: &K, delta: &OrMap<K, V>) {
        let empty = V::Store::default();
        let mut mine = self.0.store.0.remove(key).unwrap_or_default();
        let theirs = delta.0.store.0.get(key).unwrap_or(&empty);
        mine.join_with(&self.0.context, theirs, &delta.0.context);
        if !mine.is_empty() {
            self.0.store.0.insert(key.clone(), mine);
        }
        self.0.context.join(&delta.0.context);
    }

    /// The value at `key`.
    pub fn get(&self, key: &K) -> Option<V> {
        self.0.store.0.get(key).map(|store| self.value(store))
    }

    /// The value a key's `store` holds, under the map's context.
    fn value(&self, store: &V::Store) -> V {
        V::from_causal(Causal {
            store: store.clone(),
            context: self.0.context.clone(),
        })
    }

    /// The keys present.
    pub fn keys(&self) -> impl Iterator<Item = &K> {
        self.0.store.0.keys()
    }

    /// Entries `start..stop` in key order, from the greatest key when `reverse`: a page
    /// costs its length (plus the keys skipped), not the map's.
    pub fn page(&self, start: usize, stop: usize, reverse: bool) -> Vec<(&K, V)> {
        let len = stop.saturating_sub(start);
        let entries = self.0.store.0.iter();
        let range: Box<dyn Iterator<Item = (&K, &V::Store)>> = match reverse {
            true => Box::new(entries.rev().skip(start)),
            false => Box::new(entries.skip(start)),
        };
        range
            .take(len)
            .map(|(key, store)| (key, self.value(store)))
            .collect()
    }
}

impl<K: Ord + Clone, V: CausalValue> Lattice for OrMap<K, V> {
    fn join(&mut self, other: &Self) {
        self.0.join(&other.0);
    }
}

impl<K: Ord + Clone, V: CausalValue> CausalValue for OrMap<K, V> {
    type Store = DotMap<K, V::Store>;
    fn from_causal(causal: Causal<Self::Store>) -> Self {
        OrMap(causal)
    }
    fn into_causal(self) -> Causal<Self::Store> {
        self.0
    }
}
