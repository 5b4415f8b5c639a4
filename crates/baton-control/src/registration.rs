use baton_api::FunctionSpec;
use serde::{Deserialize, Serialize};

/// A function as the control plane records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Registration {
    /// What to run.
    pub spec: FunctionSpec,
    /// Bumped on every update, from 1.
    pub version: u64,
    /// Milliseconds since the Unix epoch of the first deployment.
    pub created_at_ms: u64,
    /// Milliseconds since the Unix epoch of the latest deployment.
    pub updated_at_ms: u64,
}

impl Registration {
    /// Encodes for the store.
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("registrations always serialize")
    }

    /// Decodes what [`Registration::encode`] wrote.
    pub fn decode(bytes: &[u8]) -> anyhow::Result<Self> {
        Ok(serde_json::from_slice(bytes)?)
    }
}
