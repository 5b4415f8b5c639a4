//! One object as a node holds it, and the single rule by which every update (a local delta,
//! a peer's delta, a repair, a record of the durable log) is merged into it.

use crate::{Object, ObjectKey};
use baton_crdt::ReplicaId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Which updates of which origin an [`Update`] carries, so a receiver knows what it has seen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Coverage {
    /// `origin`'s updates `from + 1 ..= to` to this object, in this generation.
    Range {
        origin: ReplicaId,
        from: u64,
        to: u64,
    },
    /// A whole state: everything its sender had seen (a repair or a snapshot).
    Full(Vec<(ReplicaId, u64)>),
}

/// A change to one object: a delta (coalesced local updates), a full state, or a deletion
/// (a higher generation with no object). The unit of shipping and of the durable log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Update {
    pub key: ObjectKey,
    /// Bumped by each delete: a higher generation replaces everything of a lower one.
    pub generation: u64,
    pub object: Option<Object>,
    pub coverage: Coverage,
    /// When the first update in it was made at its origin (unix µs), for replication lag.
    pub created_micros: u64,
}

/// One object on this node.
#[derive(Debug, Default)]
pub(crate) struct Entry {
    pub generation: u64,
    pub object: Option<Object>,
    /// Per origin, how many of its updates (in this generation) were merged without a gap.
    pub seen: BTreeMap<ReplicaId, u64>,
    /// Bumped by every change on this node: what `watch` waits on.
    pub version: u64,
    /// Local updates not yet shipped to peers, coalesced.
    pub pending: Option<Update>,
    /// Encoded size of the object as of its last snapshot (0 when deleted), for the
    /// `state_bytes` gauge without a walk of every object at each scrape.
    pub encoded_bytes: usize,
}

/// An [`Update`] carrying the whole of an entry by reference: encodes to the same bytes as
/// [`Entry::as_update`] without copying the object first (a snapshot of the social network's
/// timelines spent a quarter of its time copying them).
#[derive(Serialize)]
struct WholeRef<'a> {
    key: &'a ObjectKey,
    generation: u64,
    object: Option<&'a Object>,
    coverage: Coverage,
    created_micros: u64,
}

impl Entry {
    /// Merges `update`; false when it held nothing new (stale generation or a duplicate).
    pub fn merge(&mut self, update: &Update) -> bool {
        if update.generation < self.generation {
            return false;
        }
        if update.generation > self.generation {
            self.generation = update.generation;
            self.object = None;
            self.seen.clear();
            self.pending = None;
            self.version += 1;
        }
        match &update.coverage {
            Coverage::Range { origin, from, to } => {
                let have = self.seen.get(origin).copied().unwrap_or(0);
                if *to <= have {
                    return false;
                }
                if *from <= have {
                    self.seen.insert(*origin, *to);
                }
            }
            Coverage::Full(seen) => {
                for (origin, count) in seen {
                    let have = self.seen.entry(*origin).or_insert(0);
                    *have = (*have).max(*count);
                }
            }
        }
        if let Some(object) = &update.object {
            match &mut self.object {
                Some(mine) => mine.join(object),
                None => self.object = Some(object.clone()),
            }
        }
        self.version += 1;
        true
    }

    /// The whole entry as a repair or snapshot update.
    pub fn as_update(&self, key: &ObjectKey, now_micros: u64) -> Update {
        Update {
            key: key.clone(),
            generation: self.generation,
            object: self.object.clone(),
            coverage: Coverage::Full(self.seen.iter().map(|(r, n)| (*r, *n)).collect()),
            created_micros: now_micros,
        }
    }

    /// The whole entry as [`Entry::as_update`] gives it, encoded.
    pub fn encode_whole(&self, key: &ObjectKey, now_micros: u64) -> Vec<u8> {
        baton_crdt::encode(&self.whole_ref(key, now_micros))
    }

    /// The length of [`Entry::encode_whole`]'s bytes, without making them.
    pub fn whole_size(&self, key: &ObjectKey) -> usize {
        postcard::experimental::serialized_size(&self.whole_ref(key, 0)).unwrap_or(0)
    }

    fn whole_ref<'a>(&'a self, key: &'a ObjectKey, now_micros: u64) -> WholeRef<'a> {
        WholeRef {
            key,
            generation: self.generation,
            object: self.object.as_ref(),
            coverage: Coverage::Full(self.seen.iter().map(|(r, n)| (*r, *n)).collect()),
            created_micros: now_micros,
        }
    }

    /// True when a peer whose entry has `generation` and `seen` lacks something of ours.
    pub fn ahead_of(&self, generation: u64, seen: &[(ReplicaId, u64)]) -> bool {
        if self.generation != generation {
            return self.generation > generation;
        }
        let theirs: BTreeMap<_, _> = seen.iter().copied().collect();
        self.seen
            .iter()
            .any(|(origin, count)| theirs.get(origin).copied().unwrap_or(0) < *count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_crdt::PNCounter;

    /// Found by the fuzz target `state_peer` (`fuzz/regressions/state_peer/`): an update whose
    /// object a peer wrote in a form joins do not leave (a map key with nothing in it) changed
    /// again when merged a second time, so a duplicate delivery looked like news.
    #[test]
    fn a_peers_update_merged_twice_changes_nothing_the_second_time() {
        let crash = include_bytes!(
            "../../../fuzz/regressions/state_peer/crash-772917a29f1d9ef90f9070981b3adc738ebcdc84"
        );
        let update: Update = baton_crdt::decode(crash).unwrap();
        let mut entry = Entry::default();
        entry.merge(&update);
        let object = entry.object.clone();
        entry.merge(&update);
        assert_eq!(entry.object, object);
    }

    /// A snapshot row is read back as an [`Update`] at start: the borrowed encoding must be
    /// byte for byte the owned one, for live and for deleted objects.
    #[test]
    fn a_whole_entry_encodes_as_its_update_does_without_a_copy() {
        let origin = ReplicaId::new(7, 1);
        let key = ObjectKey::new("ns", "c").unwrap();
        let mut entry = Entry::default();
        entry.merge(&counter_delta(origin, 0, 3, 5));
        let owned = baton_crdt::encode(&entry.as_update(&key, 42));
        assert_eq!(entry.encode_whole(&key, 42), owned);
        assert_eq!(entry.whole_size(&key), entry.encode_whole(&key, 0).len());
        let back: Update = baton_crdt::decode(&entry.encode_whole(&key, 42)).unwrap();
        assert_eq!(back, entry.as_update(&key, 42));
        entry.merge(&Update {
            key: key.clone(),
            generation: 1,
            object: None,
            coverage: Coverage::Full(Vec::new()),
            created_micros: 0,
        });
        assert_eq!(
            entry.encode_whole(&key, 9),
            baton_crdt::encode(&entry.as_update(&key, 9))
        );
    }

    fn counter_delta(origin: ReplicaId, from: u64, to: u64, amount: i64) -> Update {
        let mut c = PNCounter::default();
        for _ in from..to {
            c.add(origin, amount);
        }
        Update {
            key: ObjectKey::new("ns", "c").unwrap(),
            generation: 0,
            object: Some(Object::Counter(c)),
            coverage: Coverage::Range { origin, from, to },
            created_micros: 0,
        }
    }

    fn value(entry: &Entry) -> i128 {
        match &entry.object {
            Some(Object::Counter(c)) => c.value(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn duplicates_are_skipped_and_gaps_hold_the_version_vector_back() {
        let a = ReplicaId::new(1, 1);
        let mut entry = Entry::default();
        assert!(entry.merge(&counter_delta(a, 0, 2, 1)));
        assert!(
            !entry.merge(&counter_delta(a, 0, 2, 1)),
            "a duplicate is no change"
        );
        // A delta after a lost one: its content joins, but the gap stays visible to anti-entropy.
        assert!(entry.merge(&counter_delta(a, 4, 6, 1)));
        assert_eq!(entry.seen[&a], 2);
        assert!(entry.ahead_of(0, &[]));
        assert!(!entry.ahead_of(0, &[(a, 6)]));
    }

    #[test]
    fn a_higher_generation_replaces_a_lower_one_and_stale_ones_are_ignored() {
        let a = ReplicaId::new(1, 1);
        let mut entry = Entry::default();
        entry.merge(&counter_delta(a, 0, 3, 1));
        let deletion = Update {
            generation: 1,
            object: None,
            coverage: Coverage::Full(vec![]),
            ..counter_delta(a, 0, 0, 0)
        };
        assert!(entry.merge(&deletion));
        assert!(entry.object.is_none());
        assert!(
            !entry.merge(&counter_delta(a, 3, 4, 1)),
            "a write from before the delete"
        );
        let mut recreated = counter_delta(a, 0, 1, 5);
        recreated.generation = 1;
        entry.merge(&recreated);
        assert_eq!(value(&entry), 5);
        assert!(
            entry.ahead_of(0, &[(a, 100)]),
            "a higher generation is ahead of any vector"
        );
    }
}
