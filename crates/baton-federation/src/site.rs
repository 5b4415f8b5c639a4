//! What the federation needs of the site it runs on: its federated functions and their
//! capacity, their components by digest, and installing or removing what peers offer. The
//! node implements it over its control plane; the federation does the rest.

use async_trait::async_trait;
use bytes::Bytes;

/// The label that federates a function: deployed on every member, its excess offloaded.
pub const FEDERATE_LABEL: &str = "baton.federate";
/// DFaaS's `maxrate`: requests a second the site serves of the function at most.
pub const MAX_RATE_LABEL: &str = "baton.federate.max-rate";
/// Set on a function installed because a peer offered it: the owner's site id.
pub const ORIGIN_LABEL: &str = "baton.federate.origin";
/// Set on an installed function: the offer's fingerprint, to tell when it changed.
pub const FINGERPRINT_LABEL: &str = "baton.federate.fingerprint";

/// A federated function on this site.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalFunction {
    /// Its name.
    pub name: String,
    /// What it runs: equal on two sites means the same code and settings.
    pub fingerprint: String,
    /// Slots: the sandboxes this site may run of it times their concurrency.
    pub capacity: f64,
    /// DFaaS's `maxrate`, when labelled.
    pub max_rate: Option<f64>,
    /// How long one request may run (its timeout).
    pub timeout: std::time::Duration,
    /// Largest response it may give, in bytes (a forwarded answer is read up to this).
    pub max_output_bytes: usize,
    /// The site that offered it; `None` when deployed here.
    pub origin: Option<String>,
    /// Its specification, offered to peers when deployed here.
    pub spec: serde_json::Value,
    /// The component's SHA-256, for a wasm function.
    pub component: Option<String>,
}

/// The site the federation runs on.
#[async_trait]
pub trait Site: Send + Sync + 'static {
    /// Its functions labelled [`FEDERATE_LABEL`]`=true`.
    fn federated(&self) -> Vec<LocalFunction>;
    /// Whether a function of this name exists here, federated or not.
    fn has(&self, name: &str) -> bool;
    /// A stored component by its SHA-256.
    fn component(&self, digest: &str) -> Option<Bytes>;
    /// Installs (or updates) a function a peer offered, with its component; returns once it
    /// is compiled and served here.
    async fn install(
        &self,
        spec: serde_json::Value,
        component: Option<Bytes>,
    ) -> Result<(), String>;
    /// Removes a function a peer had offered.
    async fn remove(&self, name: &str) -> Result<(), String>;
}
