//! Types every part of Baton agrees on: function names and specs, limits, the OpenFaaS JSON
//! shapes of the HTTP API, and the error kinds a client can act on.
//!
//! This crate has no I/O so that the gateway, control plane, worker and CLI can share it
//! without pulling in each other's dependencies.
#![deny(missing_docs)]

mod error;
mod name;
mod openfaas;
mod quantity;
mod service;
mod spec;

pub use error::{ApiError, ErrorKind};
pub use name::{FunctionName, NameError};
pub use openfaas::{
    DeployRequest, FunctionStatus, LABEL_QUEUE, LABEL_SCALE_MAX, LABEL_SCALE_MIN,
    LABEL_SCALE_TARGET, LABEL_SCALE_ZERO_DURATION, ResourceLimits, SystemInfo,
};
pub use quantity::{format_duration, parse_duration, parse_memory};
pub use service::{
    DeployMode, FunctionAdmin, FunctionHost, InvokeOutcome, Invoker, LogEntry, PreparedHandle,
    Replicas,
};
pub use spec::{
    ArtifactDigest, FunctionSpec, Limits, ProcessMode, RuntimeSpec, Scaling, SpecError,
};
