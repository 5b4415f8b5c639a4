//! The interfaces between Baton's roles. `baton up` wires them in-process; cluster mode puts
//! an RPC client behind the same traits, so the gateway never changes.

use crate::{ApiError, DeployRequest, FunctionSpec, FunctionStatus};
use async_trait::async_trait;
use bytes::Bytes;
use futures_core::Stream;
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::pin::Pin;
use std::time::{Duration, SystemTime};

/// A response and how it was produced.
#[derive(Debug)]
pub struct InvokeOutcome {
    /// What the function answered.
    pub response: http::Response<Bytes>,
    /// Time spent creating a sandbox for this request, when it had to (a cold start).
    pub cold_start: Option<Duration>,
}

/// Runs functions: what the gateway calls for `/function/{name}`.
#[async_trait]
pub trait Invoker: Send + Sync + 'static {
    /// Invokes `function` with `request`, whose URI is the function-relative path and query.
    async fn invoke(
        &self,
        function: &str,
        request: http::Request<Bytes>,
    ) -> Result<InvokeOutcome, ApiError>;

    /// The largest request body `function` accepts; `None` when there is no such function.
    fn max_body_bytes(&self, function: &str) -> Option<u64>;
}

/// Whether a deployment must create a new function or update an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployMode {
    /// `POST /system/functions`: the name must be free (409 otherwise).
    Create,
    /// `PUT /system/functions`: the function must exist (404 otherwise).
    Update,
    /// Create or update, as `faas-cli deploy` does.
    Upsert,
}

/// One line of a function's output, as `GET /system/logs` returns it (OpenFaaS's shape,
/// plus `stream`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    /// The function.
    pub name: String,
    /// Always `"baton"`.
    pub namespace: String,
    /// The sandbox that printed it (OpenFaaS: the pod).
    pub instance: String,
    /// RFC 3339 time the line was read.
    pub timestamp: String,
    /// The line.
    pub text: String,
    /// `stdout`, `stderr` or `baton` (the platform's notes about the sandbox).
    #[serde(default)]
    pub stream: String,
}

/// What `GET /system/logs` asks for, with OpenFaaS's parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogQuery {
    /// The function.
    pub name: String,
    /// At most the last `tail` lines (of each worker, in a cluster) before following.
    pub tail: usize,
    /// Only lines read at or after this time.
    pub since: Option<SystemTime>,
    /// Only the lines of this sandbox.
    pub instance: Option<String>,
    /// Keep the stream open and send new lines as they are printed.
    pub follow: bool,
}

impl LogQuery {
    /// True when a line of `instance` read at `time` is asked for (ignoring `tail`).
    pub fn matches(&self, instance: &str, time: SystemTime) -> bool {
        self.since.is_none_or(|since| time >= since)
            && self.instance.as_deref().is_none_or(|i| i == instance)
    }
}

/// Log lines as they come: finite, or open while a follower listens.
pub type LogEntries = Pin<Box<dyn Stream<Item = LogEntry> + Send>>;

/// Manages registrations: what the gateway calls for `/system/*`.
#[async_trait]
pub trait FunctionAdmin: Send + Sync + 'static {
    /// Deploys or updates a function; `upload` carries a component sent as the request body.
    async fn deploy(
        &self,
        request: DeployRequest,
        upload: Option<Bytes>,
        mode: DeployMode,
    ) -> Result<FunctionStatus, ApiError>;
    /// Removes a function.
    async fn delete(&self, name: &str) -> Result<(), ApiError>;
    /// Every function.
    async fn list(&self) -> Result<Vec<FunctionStatus>, ApiError>;
    /// One function.
    async fn get(&self, name: &str) -> Result<FunctionStatus, ApiError>;
    /// What `name` printed, as `query` asks; 404 for an unknown function.
    async fn logs(&self, query: LogQuery) -> Result<LogEntries, ApiError>;
    /// Sets a function's scale by hand (`POST /system/scale-function/{name}`), at most its
    /// `scale.max`; it holds for the function's scale-to-zero grace, then the autoscaler
    /// decides again. Returns once the change is made, not once it is reached.
    async fn scale(&self, name: &str, replicas: u32) -> Result<(), ApiError>;
    /// The secrets' names (`GET /system/secrets`); values are never listed.
    async fn secrets(&self) -> Result<Vec<String>, ApiError>;
    /// Creates (`mode` Create: 409 if it exists) or replaces (Update: 404 if missing) a
    /// secret. Functions that list it see the new value when their sandboxes are next
    /// prepared (a redeploy).
    async fn put_secret(&self, secret: crate::Secret, mode: DeployMode) -> Result<(), ApiError>;
    /// Removes a secret (404 if missing; 409 while a function lists it).
    async fn delete_secret(&self, name: &str) -> Result<(), ApiError>;
    /// The cluster's workers and gateways (`GET /system/nodes`, Baton's own), as JSON;
    /// `None` on a single node, which has no others.
    async fn nodes(&self) -> Result<Option<serde_json::Value>, ApiError> {
        Ok(None)
    }
}

/// A function compiled and checked by a [`FunctionHost`], not yet serving.
pub type PreparedHandle = Box<dyn Any + Send + Sync>;

/// Sandbox counts of one function on a host.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Replicas {
    /// Sandboxes existing or starting.
    pub running: u64,
    /// Sandboxes ready to serve.
    pub ready: u64,
}

/// Where functions run, as the control plane sees it: prepare (compile, check) first, so a bad
/// deployment is refused before anything is stored; activate after the registration is durable.
#[async_trait]
pub trait FunctionHost: Send + Sync + 'static {
    /// Compiles and checks `spec`; the error is the user's to fix (400).
    async fn prepare(&self, spec: &FunctionSpec) -> Result<PreparedHandle, ApiError>;
    /// Starts serving `spec` at registration `version`, replacing any earlier version of
    /// the same name.
    async fn activate(&self, spec: FunctionSpec, version: u64, prepared: PreparedHandle);
    /// Serves a registration read back from the store after a restart; it was checked when
    /// it was deployed. The default prepares it again.
    async fn restore(&self, spec: FunctionSpec, version: u64) -> Result<(), ApiError> {
        let prepared = self.prepare(&spec).await?;
        self.activate(spec, version, prepared).await;
        Ok(())
    }
    /// Stops serving `name` and releases its sandboxes.
    async fn deactivate(&self, name: &str);
    /// Sets `name`'s scale by hand (see [`FunctionAdmin::scale`]).
    async fn scale(&self, name: &str, replicas: u32) -> Result<(), ApiError>;
    /// Sandbox counts of `name`.
    fn replicas(&self, name: &str) -> Replicas;
    /// What a function printed on this host, as `query` asks.
    fn logs(&self, query: &LogQuery) -> LogEntries;
}
