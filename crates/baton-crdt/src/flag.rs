use crate::{Causal, DotSet, DotStore, Lattice, ReplicaId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// A flag where a concurrent enable wins over a disable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EwFlag(pub(crate) Causal<DotSet>);

impl EwFlag {
    /// Enables the flag as `replica`; returns the delta.
    pub fn enable(&mut self, replica: ReplicaId) -> EwFlag {
        let dot = self.0.context.next_dot(replica);
        let mut seen = BTreeSet::new();
        self.0.store.dots(&mut seen);
        seen.insert(dot);
        let delta = EwFlag(Causal::delta(DotSet(BTreeSet::from([dot])), seen));
        self.join(&delta);
        delta
    }

    /// Disables the flag (removes every enable seen); returns the delta.
    pub fn disable(&mut self) -> EwFlag {
        let mut seen = BTreeSet::new();
        self.0.store.dots(&mut seen);
        let delta = EwFlag(Causal::delta(DotSet::default(), seen));
        self.join(&delta);
        delta
    }

    /// True when some enable has not been disabled.
    pub fn value(&self) -> bool {
        !self.0.store.is_empty()
    }
}

impl Lattice for EwFlag {
    fn join(&mut self, other: &Self) {
        self.0.join(&other.0);
    }
}
