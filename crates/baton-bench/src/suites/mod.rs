//! The benchmark suites that start Baton themselves, on loopback: `baton bench state`
//! ([`state`]), `baton bench cluster` ([`cluster`]), `baton bench federation`
//! ([`federation`]) and `baton bench socialnet` ([`socialnet`]). Each takes a plain configuration (the
//! CLI only turns flags into it) and returns its report as JSON, with a text rendering.

pub mod cluster;
mod delay;
pub mod federation;
mod local;
mod roles;
pub mod socialnet;
pub mod state;

pub use local::{Http, LocalNode, bench_token, deploy_component, metric, start_role, upload};
