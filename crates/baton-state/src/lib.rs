//! Baton's state agent: objects built on the delta-state CRDTs of `baton-crdt`, named within
//! a namespace (a function or an application), read and updated locally on every node, and
//! replicated to peers.
//!
//! - An operation applies at once on the local node (read-your-writes) and yields a delta;
//!   deltas of one object are coalesced per interval (default 5 ms) and shipped to every peer
//!   over a persistent TCP stream ([`Replication`]).
//! - Anti-entropy: every node sends each peer, on connect and every second, the version vector
//!   it has of each object; the peer answers with the whole state of what the sender lacks.
//!   That repairs lost messages and partitions, and bootstraps a new or restarted node from
//!   every reachable peer.
//! - Durability: every update is appended to a redb log by a group-committing writer;
//!   [`Durability::Durable`] operations are acknowledged after their commit (fsync). An update
//!   is visible to local readers, and may ship to peers, before it is durable: a crash before
//!   the commit loses it on this node only if no peer received it. Each start is a new replica
//!   epoch, so a node never reuses an event id after losing unlogged updates.
//! - Deletion bumps an object's generation: a higher generation replaces a lower one whole, so
//!   a delete wins over updates concurrent with it. Deleted names are kept (a few bytes each).
//! - APIs: the WIT interface `baton:platform/state` for wasm functions ([`guest`]), and the
//!   node-local HTTP API for process functions ([`http`]).
#![deny(missing_docs)]

mod agent;
mod capability;
mod entry;
mod error;
#[cfg(feature = "guest")]
pub mod guest;
pub mod http;
mod key;
pub mod kv;
mod log;
mod metrics;
mod object;
mod peers;
mod wire;

pub use agent::{Agent, Durability, Limits, Listed, Reading};
pub use capability::{ADMIN_ACCESS_KEY, Capabilities, Capability, Signer, constant_time_eq};
pub use error::StateError;
pub use key::ObjectKey;
pub use metrics::StateMetrics;
pub use object::{Kind, Object, Op, Query, Value};
pub use peers::{Replication, ReplicationConfig};

/// Entry points for the fuzz targets in `fuzz/` (built with `--cfg fuzzing` only): what a
/// peer's bytes go through before anything trusts them.
#[cfg(fuzzing)]
pub mod fuzzing {
    use crate::entry::{Entry, Update};

    /// Decodes `data` as a peer frame and as one update, merges every update that decodes
    /// into an empty entry twice (a merge is idempotent: the second changes no state) and
    /// reads the result as the APIs would.
    pub fn peer_bytes(data: &[u8]) {
        let mut updates: Vec<Update> = Vec::new();
        if let Ok(crate::wire::Frame::Updates(entries) | crate::wire::Frame::Repairs(entries)) =
            postcard::from_bytes::<crate::wire::Frame>(data)
        {
            updates.extend(entries.iter().filter_map(|e| baton_crdt::decode(e).ok()));
        }
        updates.extend(baton_crdt::decode::<Update>(data).ok());
        for update in &updates {
            let mut entry = Entry::default();
            entry.merge(update);
            let (object, seen) = (entry.object.clone(), entry.seen.clone());
            entry.merge(update);
            assert_eq!(
                entry.object, object,
                "merging an update twice changed the object"
            );
            assert_eq!(
                entry.seen, seen,
                "merging an update twice changed its coverage"
            );
            if let Some(object) = &entry.object {
                let whole = crate::Query::VectorSum {
                    offset: 0,
                    len: None,
                };
                for query in [crate::Query::Value, crate::Query::MapKeys, whole] {
                    let _ = object.read("fuzzed", &query);
                }
            }
        }
    }
}
