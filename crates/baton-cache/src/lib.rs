//! Baton's objects: an object store behind every node (the `object_store` crate: the local
//! filesystem by default, any S3-compatible server by configuration), a per-node in-memory
//! cache in front of it, and write-back buckets whose writes are acknowledged once they are
//! in memory and in a durable pending log on the node.
//!
//! - [`Objects`]: the cache and the store; every API goes through it.
//! - [`http`]: the node-local API (`/v1/objects/…`) for tools, the CLI and process functions.
//! - Buckets belong to a namespace (a function's `baton.namespace` label or its name), as
//!   state objects do: functions that share a namespace share its buckets.
#![deny(missing_docs)]

mod error;
pub mod http;
pub mod listing;
mod metrics;
pub mod multipart;
pub mod name;
mod objects;
mod pending;
pub mod prediction;
pub mod s3;
pub mod store;
pub mod write_back;

pub use error::ObjectError;
pub use listing::{ListQuery, Listing};
pub use metrics::ObjectMetrics;
pub use name::{BucketId, ObjectId};
pub use objects::{
    BucketInfo, CacheStats, FlushReport, Object, ObjectInfo, Objects, ObjectsConfig,
};
pub use prediction::{FunctionModel, Predictions};
pub use store::StoreConfig;
