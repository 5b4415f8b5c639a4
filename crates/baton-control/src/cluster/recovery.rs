//! Rebuilding the picture: adopting what workers already run, after a control-plane restart
//! or when a worker registers again.

use super::{Cluster, GatewayRecord, GatewaySink, Sandbox, WorkerRecord};
use crate::Table;
use crate::autoscaler::KpaState;
use baton_api::cluster::{self as proto, Endpoint};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// How long a restarted control plane waits for one worker's sandbox list.
const ADOPT_TIMEOUT: Duration = Duration::from_secs(2);

impl Cluster {
    /// After a restart, once the registry is loaded: reads workers and gateways from the
    /// store, asks every worker what it runs and adopts it, then lets scaling resume (each
    /// function in panic mode, so nothing scales down before its windows refill). Returns
    /// how many sandboxes were adopted.
    pub async fn recover(self: &Arc<Self>) -> anyhow::Result<usize> {
        let started = Instant::now();
        let gateways = self.store.list(Table::Gateways).await?;
        let workers = self.store.list(Table::Workers).await?;
        {
            let mut state = self.state.lock().unwrap();
            for (id, bytes) in gateways {
                match serde_json::from_slice::<GatewayRecord>(&bytes) {
                    Ok(record) => {
                        state.gateways.entry(id).or_insert(GatewaySink {
                            address: record.address,
                            updates: None,
                        });
                    }
                    Err(error) => {
                        tracing::error!(gateway = %id, %error, "skipping unreadable gateway record")
                    }
                }
            }
        }
        let mut ids = Vec::new();
        for (id, bytes) in workers {
            match serde_json::from_slice::<WorkerRecord>(&bytes) {
                Ok(record) => {
                    self.add_worker(record, Instant::now())?;
                    ids.push(id);
                }
                Err(error) => {
                    tracing::error!(worker = %id, %error, "skipping unreadable worker record")
                }
            }
        }
        let read = started.elapsed();
        let adopted: usize = futures_util::future::join_all(ids.iter().map(|id| self.adopt(id)))
            .await
            .into_iter()
            .sum();
        let now_ms = self.now_ms();
        let names: Vec<String> = {
            let mut state = self.state.lock().unwrap();
            for f in state.functions.values_mut() {
                let ready = f.sandboxes.len() as u32;
                f.desired = ready.clamp(f.spec.scaling.min, f.spec.scaling.max);
                f.kpa = KpaState::recovered(now_ms, ready);
            }
            state.functions.keys().cloned().collect()
        };
        self.recovering.store(false, Ordering::Release);
        for name in &names {
            self.reconcile(name);
        }
        tracing::info!(
            functions = names.len(),
            workers = ids.len(),
            sandboxes = adopted,
            store_ms = read.as_secs_f64() * 1e3,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            "control plane recovered"
        );
        Ok(adopted)
    }

    /// Asks `worker` what it runs; keeps sandboxes of current function versions, deletes
    /// the rest. Returns how many were adopted.
    pub(crate) async fn adopt(self: &Arc<Self>, worker: &str) -> usize {
        let client = {
            let state = self.state.lock().unwrap();
            state.workers.get(worker).map(|w| w.client.clone())
        };
        let Some(mut client) = client else { return 0 };
        let mut request = tonic::Request::new(proto::Empty {});
        request.set_timeout(ADOPT_TIMEOUT);
        let list = match client.list_sandboxes(request).await {
            Ok(reply) => reply.into_inner().sandboxes,
            Err(status) => {
                tracing::warn!(%worker, error = %status.message(), "could not list the worker's sandboxes; it is adopted when it heartbeats again");
                return 0;
            }
        };
        let mut orphans = Vec::new();
        let mut added: HashMap<String, (u64, Vec<Endpoint>)> = HashMap::new();
        {
            let mut guard = self.state.lock().unwrap();
            let state = &mut *guard;
            let Some(address) = state
                .workers
                .get(worker)
                .map(|w| w.record.data_address.clone())
            else {
                return 0;
            };
            for sandbox in list {
                let Some(f) = state.functions.get_mut(&sandbox.function) else {
                    orphans.push(sandbox.id);
                    continue;
                };
                if f.version != sandbox.version {
                    orphans.push(sandbox.id);
                    continue;
                }
                if f.sandboxes.contains_key(&sandbox.id) {
                    continue;
                }
                f.sandboxes.insert(
                    sandbox.id.clone(),
                    Sandbox {
                        worker: worker.to_owned(),
                    },
                );
                let demand = f.demand(self.config.sandbox_cpu);
                let entry = added
                    .entry(sandbox.function.clone())
                    .or_insert((f.version, Vec::new()));
                entry.1.push(Endpoint {
                    sandbox_id: sandbox.id.clone(),
                    worker_id: worker.to_owned(),
                    address: address.clone(),
                });
                if let Some(w) = state.workers.get_mut(worker) {
                    w.sandboxes.insert(sandbox.id);
                    w.requested_cpu += demand.cpu;
                    w.requested_memory += demand.memory;
                }
            }
            for (function, (version, endpoints)) in &added {
                Cluster::broadcast(
                    state,
                    Cluster::endpoints_update(function, *version, endpoints.clone(), Vec::new()),
                );
            }
        }
        if !orphans.is_empty() {
            tracing::info!(%worker, sandboxes = orphans.len(), "deleting sandboxes of removed or replaced functions");
            self.delete_on(worker, orphans);
        }
        let adopted = added.values().map(|(_, e)| e.len()).sum();
        if adopted > 0 {
            tracing::info!(%worker, sandboxes = adopted, "adopted running sandboxes");
        }
        if !self.is_recovering() {
            for function in added.keys() {
                self.reconcile(function);
            }
        }
        adopted
    }

    /// Asks a newly registered worker to prepare every function, in the background.
    pub(crate) fn prepare_all_on(self: &Arc<Self>, worker: &str) {
        let client = {
            let state = self.state.lock().unwrap();
            state.workers.get(worker).map(|w| w.client.clone())
        };
        let Some(mut client) = client else { return };
        let functions = self.function_messages();
        let timeout = self.config.worker_rpc_timeout;
        tokio::spawn(async move {
            for function in functions {
                let mut request = tonic::Request::new(function);
                request.set_timeout(timeout);
                if client.prepare(request).await.is_err() {
                    break;
                }
            }
        });
    }
}
