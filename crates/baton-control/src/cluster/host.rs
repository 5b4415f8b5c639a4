//! The cluster as the registry's [`FunctionHost`]: deploying a function makes it known to
//! every gateway and worker; its sandboxes follow from scaling.

use super::{Cluster, FunctionState};
use crate::autoscaler::{ConcurrencyWindow, KpaState};
use async_trait::async_trait;
use baton_api::cluster::{self as proto, GatewayUpdate};
use baton_api::{
    ApiError, FunctionHost, FunctionSpec, LogEntries, LogQuery, PreparedHandle, Replicas,
};
use std::collections::{BTreeMap, HashMap};
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
                .prepare(spec)
                .await
                .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
        }
        Ok(Box::new(()))
    }

    async fn activate(&self, spec: FunctionSpec, version: u64, _prepared: PreparedHandle) {
        self.0.install(spec, version);
    }

    async fn restore(&self, spec: FunctionSpec, version: u64) -> Result<(), ApiError> {
        self.0.install(spec, version);
        Ok(())
    }

    async fn deactivate(&self, name: &str) {
        let cluster = &self.0;
        let removed = {
            let mut state = cluster.state.lock().unwrap();
            let Some(f) = state.functions.remove(name) else {
                return;
            };
            f.changed.notify_waiters();
            Cluster::broadcast(
                &mut state,
                GatewayUpdate {
                    removed_functions: vec![name.to_owned()],
                    ..GatewayUpdate::default()
                },
            );
            let demand = f.demand(cluster.config.sandbox_cpu);
            let mut by_worker: HashMap<String, Vec<String>> = HashMap::new();
            for (id, sandbox) in f.sandboxes {
                if let Some(w) = state.workers.get_mut(&sandbox.worker) {
                    w.release(&id, demand);
                }
                by_worker.entry(sandbox.worker).or_default().push(id);
            }
            by_worker
        };
        for (worker, ids) in removed {
            cluster.delete_on(&worker, ids);
        }
    }

    fn replicas(&self, name: &str) -> Replicas {
        self.0.replicas_of(name)
    }

    fn logs(&self, _query: &LogQuery) -> LogEntries {
        // Output stays on the workers: gateways gather it from them.
        Box::pin(futures_util::stream::empty())
    }
}

impl Cluster {
    /// Makes `spec` at `version` the function's current definition. A new version replaces
    /// every sandbox of the old one (drained first); the scale carries over.
    pub(crate) fn install(self: &Arc<Self>, spec: FunctionSpec, version: u64) {
        let name = spec.name.to_string();
        let mut retired: HashMap<String, Vec<String>> = HashMap::new();
        let (message, workers) = {
            let mut guard = self.state.lock().unwrap();
            let state = &mut *guard;
            let previous = state.functions.remove(&name);
            let desired = previous
                .as_ref()
                .map_or(spec.scaling.min, |p| p.desired)
                .clamp(spec.scaling.min, spec.scaling.max);
            let mut function = FunctionState {
                spec,
                version,
                sandboxes: BTreeMap::new(),
                creating: 0,
                desired,
                window: ConcurrencyWindow::default(),
                kpa: KpaState::default(),
                loads: HashMap::new(),
                pinned_until: None,
                changed: Arc::default(),
            };
            if let Some(previous) = previous {
                function.window = previous.window.clone();
                function.kpa = previous.kpa.clone();
                function.loads = previous.loads.clone();
                function.changed = previous.changed.clone();
                if previous.version == version {
                    function.sandboxes = previous.sandboxes;
                    function.creating = previous.creating;
                } else {
                    let demand = previous.demand(self.config.sandbox_cpu);
                    for (id, sandbox) in previous.sandboxes {
                        if let Some(w) = state.workers.get_mut(&sandbox.worker) {
                            w.release(&id, demand);
                        }
                        retired.entry(sandbox.worker).or_default().push(id);
                    }
                }
            }
            let message = function.message();
            state.functions.insert(name.clone(), function);
            Cluster::broadcast(
                state,
                GatewayUpdate {
                    functions: vec![message.clone()],
                    ..GatewayUpdate::default()
                },
            );
            let workers: Vec<_> = state
                .workers
                .values()
                .filter(|w| w.alive)
                .map(|w| w.client.clone())
                .collect();
            (message, workers)
        };
        for (worker, ids) in retired {
            self.delete_on(&worker, ids);
        }
        if !self.is_recovering() {
            // Like an image pre-pull: every worker fetches and compiles the function now,
            // so its first sandbox anywhere is a cheap instantiation.
            for mut client in workers {
                let message = message.clone();
                let timeout = self.config.worker_rpc_timeout;
                tokio::spawn(async move {
                    let mut request = tonic::Request::new(message);
                    request.set_timeout(timeout);
                    if let Err(status) = client.prepare(request).await {
                        tracing::warn!(error = %status.message(), "a worker could not prepare a function");
                    }
                });
            }
        }
        self.reconcile(&name);
    }

    /// Every function's current definition, for a worker that just registered.
    pub(crate) fn function_messages(&self) -> Vec<proto::Function> {
        let state = self.state.lock().unwrap();
        state.functions.values().map(|f| f.message()).collect()
    }
}
