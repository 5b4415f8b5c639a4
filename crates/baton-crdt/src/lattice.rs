use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// A join-semilattice: the state of a replica, merged with another's by `join`.
pub trait Lattice: Clone + PartialEq + Default {
    /// Merges `other` into `self`: the least upper bound of both.
    fn join(&mut self, other: &Self);

    /// `self` joined with `other`, by value.
    fn joined(mut self, other: &Self) -> Self {
        self.join(other);
        self
    }
}

/// Who made an update: a node, and the epoch of its state (bumped when a node restarts
/// without its state, so its new events never collide with old ones).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReplicaId {
    /// The node.
    pub node: u64,
    /// The node's state epoch.
    pub epoch: u32,
}

impl ReplicaId {
    /// Replica `node` in `epoch`.
    pub fn new(node: u64, epoch: u32) -> Self {
        ReplicaId { node, epoch }
    }
}

/// Why bytes did not decode to a CRDT value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub String);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "malformed CRDT encoding: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

/// The compact binary encoding (postcard: varints, no field names) of a state or delta.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("CRDT values always serialize")
}

/// Decodes what [`encode`] wrote; malformed or truncated bytes are an error, never a panic.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    postcard::from_bytes(bytes).map_err(|e| DecodeError(e.to_string()))
}
