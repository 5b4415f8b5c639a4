//! The worker: owns the sandboxes of one machine, created and deleted by the control plane
//! and invoked by gateways ([`managed`]). `baton worker` serves it over gRPC and HTTP;
//! `baton up` calls it in the same process.
#![deny(missing_docs)]

pub mod managed;
