//! Sandboxes for Baton functions.
//!
//! A [`Runtime`] turns a [`FunctionSpec`] into a [`Prepared`] function once (compiling a wasm
//! component, checking a process command), and a `Prepared` creates [`Sandbox`]es that serve
//! requests. The worker drives every runtime through these traits and never knows which one
//! it holds: [`wasm`] (wasmtime components, a fresh instance per request), [`process`]
//! (OpenFaaS-watchdog processes) and, for scalability tests, fakes.
#![deny(missing_docs)]

mod artifacts;
mod error;
pub mod fake;
mod logs;
mod multi;
pub mod outbound;
pub mod process;
pub mod resources;
pub mod wasm;

pub use artifacts::ArtifactStore;
pub use error::InvokeError;
pub use logs::{FunctionLogs, LogLine, LogSink, LogStream};
pub use multi::Runtimes;

use async_trait::async_trait;
use baton_api::{FunctionSpec, SecretValues};
use bytes::Bytes;
use std::sync::Arc;

/// A request as a sandbox receives it: the URI is the function-relative path and query.
pub type Request = http::Request<Bytes>;
/// A response as a sandbox returns it, read in full and bounded by the output limit.
pub type Response = http::Response<Bytes>;

/// Prepares functions of the kinds it supports.
#[async_trait]
pub trait Runtime: Send + Sync + 'static {
    /// Compiles or checks `spec` once; the result makes sandboxes cheaply. Errors are the
    /// user's (a malformed component, a missing command) and are reported at deploy.
    /// `secrets` holds the values of the secrets `spec` lists, for the function to read;
    /// `None` when the spec is only being checked (the control plane's validation).
    async fn prepare(
        &self,
        spec: &FunctionSpec,
        secrets: Option<&SecretValues>,
    ) -> anyhow::Result<Arc<dyn Prepared>>;
}

/// A function ready to run: makes sandboxes.
#[async_trait]
pub trait Prepared: Send + Sync + 'static {
    /// Creates a sandbox; it writes what the function prints to `logs`.
    async fn create_sandbox(&self, logs: LogSink) -> Result<Arc<dyn Sandbox>, InvokeError>;
}

/// One isolated place where a function runs: a wasm instance factory or a process.
#[async_trait]
pub trait Sandbox: Send + Sync + 'static {
    /// Serves one request; the error says how the invocation failed.
    async fn invoke(&self, request: Request) -> Result<Response, InvokeError>;

    /// False once the sandbox can no longer serve (its process died); the worker replaces it.
    fn is_alive(&self) -> bool {
        true
    }

    /// Releases the sandbox's resources; invocations after this fail.
    async fn destroy(&self) {}
}
