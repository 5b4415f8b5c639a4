//! The worker: owns the sandboxes of every function on one machine.
//!
//! Each function has a [`pool`](FunctionPool) of sandboxes. A request takes a slot in the
//! least-loaded sandbox with room (each serves at most `limits.concurrency` at once); if none
//! has room and the pool is below `scaling.max`, the request creates a sandbox (a cold start);
//! otherwise it waits in a bounded queue until a slot frees or its deadline passes. Sandboxes
//! idle for longer than `scaling.keep_alive_ms` are reaped down to `scaling.min`, to zero by
//! default.
#![deny(missing_docs)]

mod host;
pub mod managed;
mod pool;
mod worker;

pub use pool::{FunctionPool, Lease};
pub use worker::{Worker, WorkerConfig};
