//! Scaling: the autoscaler's decisions, scale from zero, and bringing each function's
//! sandboxes to its desired count.

use super::{Cluster, Sandbox};
use crate::autoscaler::decide;
use baton_api::cluster::{self as proto, CreateSandboxes, Endpoint};
use baton_api::cluster_auth::WorkerConn;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, mpsc};

/// A gateway's report counts this long; after that it is taken as zero.
const REPORT_LIFETIME: Duration = Duration::from_secs(3);

impl Cluster {
    /// One autoscaler pass over every function.
    pub(crate) fn autoscale(self: &Arc<Self>) {
        if self.is_recovering() {
            return;
        }
        let now_ms = self.now_ms();
        let mut changed = Vec::new();
        {
            let mut state = self.state.lock().unwrap();
            for (name, f) in state.functions.iter_mut() {
                f.loads.retain(|_, (at, _)| at.elapsed() < REPORT_LIFETIME);
                let concurrency: f64 = f.loads.values().map(|(_, c)| c).sum();
                f.window.record(now_ms, concurrency);
                f.window.trim(now_ms, self.config.kpa.stable_window);
                let pinned = f.pinned_until.is_some_and(|until| Instant::now() < until);
                if !pinned {
                    f.pinned_until = None;
                    let config = f.kpa_config(&self.config.kpa);
                    let ready = f.sandboxes.len() as u32;
                    let (decision, next) = decide(&config, &f.kpa, &f.window, ready, now_ms);
                    f.kpa = next;
                    if decision.desired != f.desired {
                        tracing::info!(
                            function = %name,
                            from = f.desired,
                            to = decision.desired,
                            ready,
                            panic = decision.panic,
                            stable = f.window.average(now_ms, config.stable_window),
                            burst = f.window.average(now_ms, config.panic_window),
                            "scaling decision"
                        );
                        f.desired = decision.desired;
                    }
                }
                // Also repairs drift: failed creations, lost sandboxes.
                if f.desired != f.sandboxes.len() as u32 + f.creating {
                    changed.push(name.clone());
                }
            }
        }
        for name in changed {
            self.reconcile(&name);
        }
    }

    /// A gateway has requests for a function with no sandbox: create one now, without
    /// waiting for the next autoscaler pass. Returns the sandboxes placed (being created),
    /// `None` for an unknown function.
    pub(crate) fn scale_from_zero(self: &Arc<Self>, function: &str) -> Option<Vec<Endpoint>> {
        let now_ms = self.now_ms();
        {
            let mut state = self.state.lock().unwrap();
            let f = state.functions.get_mut(function)?;
            f.kpa.last_active_ms = Some(now_ms);
            if f.desired > 0 || !f.sandboxes.is_empty() || f.creating > 0 {
                return Some(Vec::new());
            }
            f.desired = 1.max(f.spec.scaling.min).min(f.spec.scaling.max);
            tracing::info!(function, "scale from zero");
        }
        Some(self.reconcile(function))
    }

    /// Records gateways' load reports; queued requests of a function at zero scale it up.
    pub(crate) fn report_load(self: &Arc<Self>, gateway: &str, loads: &[proto::FunctionLoad]) {
        let mut from_zero = Vec::new();
        {
            let mut state = self.state.lock().unwrap();
            for load in loads {
                if let Some(f) = state.functions.get_mut(&load.function) {
                    f.loads.insert(
                        gateway.to_owned(),
                        (Instant::now(), load.concurrency.max(0.0)),
                    );
                    if load.queued > 0 && f.sandboxes.is_empty() && f.creating == 0 {
                        from_zero.push(load.function.clone());
                    }
                }
            }
        }
        for function in from_zero {
            let _placed = self.scale_from_zero(&function);
        }
    }

    /// Sets a function's scale by hand and waits (until `deadline`) for it to be reached;
    /// returns the sandboxes ready then.
    pub(crate) async fn scale_to(
        self: &Arc<Self>,
        function: &str,
        replicas: u32,
        deadline: Instant,
    ) -> Option<u32> {
        {
            let mut state = self.state.lock().unwrap();
            let f = state.functions.get_mut(function)?;
            f.desired = replicas;
            f.kpa.last_active_ms = Some(self.now_ms());
            let grace = f.kpa_config(&self.config.kpa).scale_to_zero_grace;
            f.pinned_until = Some(Instant::now() + grace);
        }
        self.reconcile(function);
        let changed = self
            .state
            .lock()
            .unwrap()
            .functions
            .get(function)?
            .changed
            .clone();
        loop {
            let notified = changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let ready = {
                let state = self.state.lock().unwrap();
                let f = state.functions.get(function)?;
                if f.sandboxes.len() as u32 == replicas || Instant::now() >= deadline {
                    return Some(f.sandboxes.len() as u32);
                }
                f.sandboxes.len() as u32
            };
            if tokio::time::timeout_at(deadline.into(), notified)
                .await
                .is_err()
            {
                return Some(ready);
            }
        }
    }

    /// Brings `function` toward its desired count: places and creates what is missing,
    /// drains and deletes what is extra. Does nothing while a restarted control plane is
    /// still adopting running sandboxes. Returns the sandboxes it placed, before they exist.
    pub(crate) fn reconcile(self: &Arc<Self>, function: &str) -> Vec<Endpoint> {
        if self.is_recovering() {
            return Vec::new();
        }
        let mut creations: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let mut deletions: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let message;
        {
            let mut guard = self.state.lock().unwrap();
            let state = &mut *guard;
            let Some(f) = state.functions.get_mut(function) else {
                return Vec::new();
            };
            message = f.message();
            let have = f.sandboxes.len() as u32 + f.creating;
            let demand = f.demand(self.config.sandbox_cpu);
            if f.desired > have {
                let (ids, mut loads) = Cluster::loads(state);
                let f = state.functions.get_mut(function).expect("checked above");
                for _ in have..f.desired {
                    let Some(i) = self.placement.place(&loads, demand) else {
                        tracing::warn!(function, "no worker has room for another sandbox");
                        break;
                    };
                    loads[i].cpu_used += demand.cpu;
                    loads[i].memory_used += demand.memory;
                    creations
                        .entry(ids[i].clone())
                        .or_default()
                        .push(Cluster::sandbox_id(function));
                    f.creating += 1;
                }
                for (worker, new) in &creations {
                    let w = state
                        .workers
                        .get_mut(worker)
                        .expect("placed on a known worker");
                    w.requested_cpu += demand.cpu * new.len() as f64;
                    w.requested_memory += demand.memory * new.len() as u64;
                }
            } else if f.desired < have && f.creating == 0 {
                // Newest first: the oldest sandboxes are the warmest.
                let extra = (have - f.desired) as usize;
                let victims: Vec<String> = f.sandboxes.keys().rev().take(extra).cloned().collect();
                let version = f.version;
                for id in &victims {
                    let sandbox = f.sandboxes.remove(id).expect("listed above");
                    deletions
                        .entry(sandbox.worker)
                        .or_default()
                        .push(id.clone());
                }
                for (worker, gone) in &deletions {
                    if let Some(w) = state.workers.get_mut(worker) {
                        for id in gone {
                            w.release(id, demand);
                        }
                    }
                }
                Cluster::broadcast(
                    state,
                    Cluster::endpoints_update(function, version, Vec::new(), victims),
                );
            }
        }
        for (worker, ids) in deletions {
            self.delete_on(&worker, ids);
        }
        let mut placed = Vec::new();
        let queues: Vec<_> = {
            let state = self.state.lock().unwrap();
            creations
                .into_iter()
                .map(|(worker, ids)| {
                    let known = state.workers.get(&worker);
                    if let Some(w) = known {
                        placed.extend(ids.iter().map(|id| Endpoint {
                            sandbox_id: id.clone(),
                            worker_id: worker.clone(),
                            address: w.record.data_address.clone(),
                        }));
                    }
                    let queue = known.map(|w| w.creations.clone());
                    (worker, ids, queue)
                })
                .collect()
        };
        for (worker, ids, queue) in queues {
            let placement = proto::Placement {
                function: Some(message.clone()),
                sandbox_ids: ids,
            };
            let refused = match queue {
                Some(queue) => queue.try_send(placement).err().map(|e| e.into_inner()),
                None => Some(placement),
            };
            if let Some(placement) = refused {
                placed.retain(|e| !placement.sandbox_ids.contains(&e.sandbox_id));
                let asked = placement.sandbox_ids.len();
                self.record_created(
                    &worker,
                    &message,
                    asked,
                    Vec::new(),
                    Some("the worker's creation queue is full or gone".into()),
                );
            }
        }
        placed
    }

    /// Sends what is queued for one worker in batches, at most four calls in flight, so a
    /// burst of placements becomes a few calls rather than one per sandbox.
    pub(crate) async fn batch_creations(
        self: Arc<Self>,
        worker: String,
        client: WorkerConn,
        mut queue: mpsc::Receiver<proto::Placement>,
    ) {
        let in_flight = Arc::new(Semaphore::new(4));
        while let Some(first) = queue.recv().await {
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < 512 {
                match queue.try_recv() {
                    Ok(placement) => batch.push(placement),
                    Err(_) => break,
                }
            }
            let (cluster, worker, client) = (self.clone(), worker.clone(), client.clone());
            tokio::spawn(async move {
                cluster.create_batch(&worker, client, batch).await;
                drop(permit);
            });
        }
    }

    async fn create_batch(
        &self,
        worker: &str,
        mut client: WorkerConn,
        batch: Vec<proto::Placement>,
    ) {
        let mut request = tonic::Request::new(CreateSandboxes {
            placements: batch.clone(),
        });
        request.set_timeout(self.config.worker_rpc_timeout);
        match client.create_sandboxes(request).await {
            Ok(reply) => {
                let reply = reply.into_inner();
                let created: HashSet<String> = reply.created.into_iter().collect();
                let failed: HashMap<String, String> = reply
                    .failed
                    .into_iter()
                    .map(|f| (f.sandbox_id, f.message))
                    .collect();
                for placement in batch {
                    let Some(function) = &placement.function else {
                        continue;
                    };
                    let asked = placement.sandbox_ids.len();
                    let failure = placement
                        .sandbox_ids
                        .iter()
                        .find_map(|id| failed.get(id))
                        .map(|m| format!("some of {asked} failed, first: {m}"));
                    let ok = placement
                        .sandbox_ids
                        .into_iter()
                        .filter(|id| created.contains(id))
                        .collect();
                    self.record_created(worker, function, asked, ok, failure);
                }
            }
            Err(status) => {
                for placement in batch {
                    if let Some(function) = &placement.function {
                        self.record_created(
                            worker,
                            function,
                            placement.sandbox_ids.len(),
                            Vec::new(),
                            Some(status.message().to_owned()),
                        );
                    }
                }
            }
        }
    }

    /// Records the outcome of creating `asked` sandboxes of `function` on `worker` and
    /// pushes the new ones to every gateway.
    pub(crate) fn record_created(
        &self,
        worker: &str,
        function: &proto::Function,
        asked: usize,
        created: Vec<String>,
        failure: Option<String>,
    ) {
        let worker = worker.to_owned();
        if let Some(failure) = &failure {
            tracing::warn!(%worker, function = %function.name, error = %failure, "sandbox creation failed");
        }
        let mut orphans = Vec::new();
        {
            let mut guard = self.state.lock().unwrap();
            let state = &mut *guard;
            let address = state
                .workers
                .get(&worker)
                .filter(|w| w.alive)
                .map(|w| w.record.data_address.clone());
            let Some(f) = state.functions.get_mut(&function.name) else {
                // Removed meanwhile: give back what placement reserved, delete what came up.
                if let (Some(w), Ok(spec)) = (
                    state.workers.get_mut(&worker),
                    serde_json::from_slice::<baton_api::FunctionSpec>(&function.spec_json),
                ) {
                    w.unreserve(super::sandbox_demand(&spec, self.config.sandbox_cpu), asked);
                }
                drop(guard);
                self.delete_on(&worker, created);
                return;
            };
            f.creating = f.creating.saturating_sub(asked as u32);
            let demand = f.demand(self.config.sandbox_cpu);
            let current = f.version == function.version;
            let mut added = Vec::new();
            match (&address, current) {
                (Some(address), true) => {
                    for id in &created {
                        f.sandboxes.insert(
                            id.clone(),
                            Sandbox {
                                worker: worker.clone(),
                            },
                        );
                        added.push(Endpoint {
                            sandbox_id: id.clone(),
                            worker_id: worker.clone(),
                            address: address.clone(),
                        });
                    }
                }
                _ => orphans = created.clone(),
            }
            let version = f.version;
            let not_placed = asked - added.len();
            if let Some(w) = state.workers.get_mut(&worker) {
                for e in &added {
                    w.sandboxes.insert(e.sandbox_id.clone());
                }
                w.unreserve(demand, not_placed);
            }
            f.changed.notify_waiters();
            if !added.is_empty() {
                Cluster::broadcast(
                    state,
                    Cluster::endpoints_update(&function.name, version, added, Vec::new()),
                );
            }
        }
        self.delete_on(&worker, orphans);
        // A failed creation is retried by the next autoscaler pass, not in a loop here.
    }
}
