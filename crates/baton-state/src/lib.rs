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
pub mod guest;
pub mod http;
mod key;
mod log;
mod metrics;
mod object;
mod peers;
mod wire;

pub use agent::{Agent, Durability, Limits, Listed, Reading};
pub use capability::{Capabilities, Capability, constant_time_eq};
pub use error::StateError;
pub use key::ObjectKey;
pub use metrics::StateMetrics;
pub use object::{Kind, Object, Op, Query, Value};
pub use peers::{Replication, ReplicationConfig};
