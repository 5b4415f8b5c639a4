//! The cluster as the registry's [`FunctionHost`]: deploying a function makes it known to
//! every gateway and worker; its sandboxes follow from scaling.

use super::{Cluster, Event};
use async_trait::async_trait;
use baton_api::{
    ApiError, FunctionHost, FunctionSpec, LogEntries, LogQuery, PreparedHandle, Replicas,
};
use std::sync::Arc;

/// The registry's host in cluster mode (a wrapper, as the trait and `Arc` are both foreign).
pub struct ClusterHost(pub Arc<Cluster>);

#[async_trait]
impl FunctionHost for ClusterHost {
    async fn prepare(&self, spec: &FunctionSpec) -> Result<PreparedHandle, ApiError> {
        let wasm = matches!(spec.runtime, baton_api::RuntimeSpec::Wasm { .. });
        if wasm || self.0.config.validate_processes {
            // Compiles the component (cached on disk), so a bad one is refused here and
            // not on every worker.
            self.0
                .validator
                .prepare(spec, None)
                .await
                .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
        }
        Ok(Box::new(()))
    }

    async fn activate(&self, spec: FunctionSpec, version: u64, _prepared: PreparedHandle) {
        self.0.handle(Event::Install { spec, version });
    }

    async fn restore(&self, spec: FunctionSpec, version: u64) -> Result<(), ApiError> {
        self.0.handle(Event::Install { spec, version });
        Ok(())
    }

    async fn deactivate(&self, name: &str) {
        self.0.handle(Event::Remove {
            function: name.to_owned(),
        });
    }

    async fn scale(&self, name: &str, replicas: u32) -> Result<(), ApiError> {
        // Deadline now: the change is made, not waited for.
        self.0
            .scale_to(name, replicas, std::time::Instant::now())
            .await
            .map(drop)
            .ok_or_else(|| ApiError::not_found(name))
    }

    fn replicas(&self, name: &str) -> Replicas {
        self.0.replicas_of(name)
    }

    fn logs(&self, _query: &LogQuery) -> LogEntries {
        // Output stays on the workers: gateways gather it from them.
        Box::pin(futures_util::stream::empty())
    }
}
