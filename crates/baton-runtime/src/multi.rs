use crate::{Prepared, Runtime};
use async_trait::async_trait;
use baton_api::{FunctionSpec, RuntimeSpec};
use std::sync::Arc;

/// Dispatches each spec to the runtime of its kind; what a worker holds.
pub struct Runtimes {
    /// Runs `RuntimeSpec::Wasm`.
    pub wasm: Arc<dyn Runtime>,
    /// Runs `RuntimeSpec::Process`.
    pub process: Arc<dyn Runtime>,
}

#[async_trait]
impl Runtime for Runtimes {
    async fn prepare(
        &self,
        spec: &FunctionSpec,
        secrets: Option<&baton_api::SecretValues>,
    ) -> anyhow::Result<Arc<dyn Prepared>> {
        match spec.runtime {
            RuntimeSpec::Wasm { .. } => self.wasm.prepare(spec, secrets).await,
            RuntimeSpec::Process { .. } => self.process.prepare(spec, secrets).await,
        }
    }
}
