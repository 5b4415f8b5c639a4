//! The cluster manager: where functions run when gateways, workers and the control plane are
//! separate processes (after Dirigent).
//!
//! The control plane keeps the whole picture in memory: functions and their sandboxes,
//! workers and their heartbeats, gateways and their update streams. Only functions, workers
//! and gateways are written to the [`Store`](crate::Store); sandboxes and scale are rebuilt
//! from the workers' own lists after a restart, so the cold-start path (gateway asks → place
//! → worker creates → endpoint pushed to every gateway) never writes to disk.
//!
//! One lock guards the picture and is never held across an await: RPCs to workers run in
//! tasks that take the lock again only to record their result.

mod host;
mod recovery;
mod scaling;
mod service;

pub use host::ClusterHost;
pub use service::{ControlService, open_control};

use crate::autoscaler::{ConcurrencyWindow, KpaConfig, KpaState};
use crate::placement::{Demand, Placement, WorkerLoad, placement_policy};
use crate::{Store, Table};
use baton_api::cluster::{
    self as proto, Endpoint, EndpointDelta, GatewayUpdate, SandboxIds, WorkerInfo,
};
use baton_api::cluster_auth::{ClientAuth, Transport, WorkerConn, worker_client, worker_conn};
use baton_api::{FunctionSpec, Replicas};
use baton_runtime::Runtime;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc};

/// Cluster-manager settings.
#[derive(Debug, Clone)]
pub struct ClusterConfig {
    /// `random`, `round-robin` or `resource-fit`.
    pub placement: String,
    /// How often workers heartbeat. Default 1 s.
    pub heartbeat_interval: Duration,
    /// Heartbeats missed before a worker is declared dead. Default 3.
    pub missed_heartbeats: u32,
    /// How often the autoscaler decides. Default 1 s.
    pub scaling_interval: Duration,
    /// Autoscaler windows and rates; `target`, `min` and `max` come from each function.
    pub kpa: KpaConfig,
    /// CPU one sandbox is assumed to take, for `resource-fit` (cores). Default 0.1.
    pub sandbox_cpu: f64,
    /// Deadline of one RPC to a worker. Default 30 s (sandbox creation included).
    pub worker_rpc_timeout: Duration,
    /// The cluster token sent to workers.
    pub auth: ClientAuth,
    /// Also check process functions at deploy (their program, their limits against this
    /// machine): right when the control plane runs beside its only worker (`baton up`),
    /// wrong when workers are other machines.
    pub validate_processes: bool,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            placement: "round-robin".into(),
            heartbeat_interval: Duration::from_secs(1),
            missed_heartbeats: 3,
            scaling_interval: Duration::from_secs(1),
            kpa: KpaConfig::default(),
            sandbox_cpu: 0.1,
            worker_rpc_timeout: Duration::from_secs(30),
            auth: ClientAuth::default(),
            validate_processes: false,
        }
    }
}

/// A worker as stored: enough to reach it again after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct WorkerRecord {
    pub(crate) id: String,
    pub(crate) grpc_address: String,
    pub(crate) data_address: String,
    pub(crate) cpu_cores: f64,
    pub(crate) memory_bytes: u64,
    /// Where its state agent takes peers; empty when it runs none (records stored before
    /// workers had agents read as empty too).
    #[serde(default)]
    pub(crate) state_address: String,
}

impl From<&WorkerInfo> for WorkerRecord {
    fn from(info: &WorkerInfo) -> Self {
        WorkerRecord {
            id: info.id.clone(),
            grpc_address: info.grpc_address.clone(),
            data_address: info.data_address.clone(),
            cpu_cores: info.cpu_cores,
            memory_bytes: info.memory_bytes,
            state_address: info.state_address.clone(),
        }
    }
}

/// A gateway as stored, for `baton ls --nodes` after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct GatewayRecord {
    pub(crate) id: String,
    pub(crate) address: String,
}

pub(crate) struct WorkerState {
    pub(crate) record: WorkerRecord,
    pub(crate) client: WorkerConn,
    pub(crate) alive: bool,
    pub(crate) last_heartbeat: Instant,
    pub(crate) cpu_used: f64,
    pub(crate) memory_used: u64,
    /// What the sandboxes placed here asked for (kube-scheduler's "requested").
    pub(crate) requested_cpu: f64,
    pub(crate) requested_memory: u64,
    pub(crate) sandboxes: HashSet<String>,
    /// Placements waiting to be sent, in batches, by the worker's creation task.
    pub(crate) creations: mpsc::Sender<proto::Placement>,
}

/// The state agents `worker` replicates with, given every worker's (id, alive, state
/// address): those of the other live workers, each once, never its own (several workers of
/// one process share an agent), never an empty address (a worker without an agent).
fn state_peers<'a>(
    worker: &str,
    members: impl Iterator<Item = (&'a str, bool, &'a str)> + Clone,
) -> Vec<String> {
    let own = members
        .clone()
        .find(|(id, _, _)| *id == worker)
        .map_or("", |(_, _, address)| address);
    let peers: std::collections::BTreeSet<&str> = members
        .filter(|(id, alive, address)| {
            *alive && *id != worker && !address.is_empty() && *address != own
        })
        .map(|(_, _, address)| address)
        .collect();
    peers.into_iter().map(str::to_owned).collect()
}

/// Placements queued per worker before new ones fail (and are retried by the autoscaler).
const CREATION_QUEUE: usize = 65_536;

impl WorkerState {
    /// Gives back what `count` sandboxes of `demand` asked for.
    pub(crate) fn unreserve(&mut self, demand: Demand, count: usize) {
        self.requested_cpu = (self.requested_cpu - demand.cpu * count as f64).max(0.0);
        self.requested_memory = self
            .requested_memory
            .saturating_sub(demand.memory * count as u64);
    }

    /// Forgets sandbox `id` and gives back what it asked for.
    pub(crate) fn release(&mut self, id: &str, demand: Demand) {
        if self.sandboxes.remove(id) {
            self.unreserve(demand, 1);
        }
    }
}

pub(crate) struct Sandbox {
    pub(crate) worker: String,
}

pub(crate) struct FunctionState {
    pub(crate) spec: FunctionSpec,
    pub(crate) version: u64,
    pub(crate) sandboxes: BTreeMap<String, Sandbox>,
    /// Sandboxes asked of workers and not answered yet.
    pub(crate) creating: u32,
    pub(crate) desired: u32,
    pub(crate) window: ConcurrencyWindow,
    pub(crate) kpa: KpaState,
    /// Latest load report of each gateway: (when, concurrency).
    pub(crate) loads: HashMap<String, (Instant, f64)>,
    /// A manual scale holds until then.
    pub(crate) pinned_until: Option<Instant>,
    /// Woken whenever this function's sandboxes come or go (per function, so thousands of
    /// creations do not wake every waiter of every function).
    pub(crate) changed: Arc<Notify>,
}

impl FunctionState {
    pub(crate) fn message(&self) -> proto::Function {
        proto::Function {
            name: self.spec.name.to_string(),
            spec_json: serde_json::to_vec(&self.spec).expect("specs serialize"),
            version: self.version,
        }
    }

    pub(crate) fn demand(&self, sandbox_cpu: f64) -> Demand {
        sandbox_demand(&self.spec, sandbox_cpu)
    }

    pub(crate) fn kpa_config(&self, base: &KpaConfig) -> KpaConfig {
        KpaConfig {
            target: self.spec.target_concurrency(),
            min: self.spec.scaling.min,
            max: self.spec.scaling.max,
            scale_to_zero_grace: self
                .spec
                .scaling
                .keep_alive_ms
                .map_or(base.scale_to_zero_grace, Duration::from_millis),
            ..base.clone()
        }
    }
}

/// What one sandbox of `spec` asks of its worker: the configured CPU share and the
/// function's memory limit.
pub(crate) fn sandbox_demand(spec: &FunctionSpec, sandbox_cpu: f64) -> Demand {
    Demand {
        cpu: sandbox_cpu,
        memory: spec.limits.memory_bytes,
    }
}

pub(crate) struct GatewaySink {
    pub(crate) address: String,
    pub(crate) updates: Option<mpsc::Sender<Result<GatewayUpdate, tonic::Status>>>,
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) functions: HashMap<String, FunctionState>,
    pub(crate) workers: BTreeMap<String, WorkerState>,
    pub(crate) gateways: BTreeMap<String, GatewaySink>,
}

/// Updates queued per gateway before it counts as stuck and is dropped; it reconnects and
/// gets a fresh snapshot.
const GATEWAY_QUEUE: usize = 4096;

/// The cluster manager: placement, scaling, failure detection and the pushes to gateways.
pub struct Cluster {
    pub(crate) config: ClusterConfig,
    pub(crate) state: Mutex<State>,
    pub(crate) placement: Box<dyn Placement>,
    pub(crate) store: Arc<dyn Store>,
    /// Checks components at deploy (compile), so a bad one is refused with 400.
    pub(crate) validator: Arc<dyn Runtime>,
    /// Set while a restarted control plane adopts what workers run: no creation until then.
    pub(crate) recovering: AtomicBool,
    pub(crate) started: Instant,
    /// Workers in this process (`baton up`), by the gRPC address they register with: reached
    /// through their service directly, not a socket.
    in_process: Mutex<HashMap<String, Transport>>,
}

impl Cluster {
    /// A cluster manager persisting to `store`, checking components with `validator`.
    pub fn new(
        config: ClusterConfig,
        store: Arc<dyn Store>,
        validator: Arc<dyn Runtime>,
    ) -> anyhow::Result<Arc<Self>> {
        let placement = placement_policy(&config.placement)?;
        Ok(Arc::new(Cluster {
            config,
            state: Mutex::new(State::default()),
            placement,
            store,
            validator,
            recovering: AtomicBool::new(true),
            started: Instant::now(),
            in_process: Mutex::default(),
        }))
    }

    /// Reaches the worker that registers with `address` through `transport` (a worker in
    /// this process) instead of the network.
    pub fn connect_in_process(&self, address: &str, transport: Transport) {
        self.in_process
            .lock()
            .unwrap()
            .insert(address.to_owned(), transport);
    }

    /// Milliseconds since the cluster manager started: the autoscaler's clock.
    pub(crate) fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Starts the autoscaler and the failure detector.
    pub fn spawn_loops(self: &Arc<Self>) {
        self.every(self.config.scaling_interval, Cluster::autoscale);
        self.every(self.config.heartbeat_interval, Cluster::detect_failures);
    }

    /// Runs `pass` every `period` for as long as the process lives (late ticks are skipped).
    fn every(self: &Arc<Self>, period: Duration, pass: fn(&Arc<Cluster>)) {
        let cluster = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                pass(&cluster);
            }
        });
    }

    /// Sends `update` to every connected gateway; a gateway whose queue is full is dropped
    /// and resynchronises by reconnecting.
    pub(crate) fn broadcast(state: &mut State, update: GatewayUpdate) {
        for (id, sink) in state.gateways.iter_mut() {
            if let Some(tx) = &sink.updates
                && tx.try_send(Ok(update.clone())).is_err()
            {
                tracing::warn!(gateway = %id, "gateway is not keeping up or went away; dropping its stream");
                sink.updates = None;
            }
        }
    }

    pub(crate) fn endpoints_update(
        function: &str,
        version: u64,
        added: Vec<Endpoint>,
        removed: Vec<String>,
    ) -> GatewayUpdate {
        GatewayUpdate {
            snapshot: false,
            functions: Vec::new(),
            removed_functions: Vec::new(),
            endpoints: vec![EndpointDelta {
                function: function.to_owned(),
                version,
                added,
                removed,
            }],
        }
    }

    /// Everything a gateway needs, for the first message of its stream.
    pub(crate) fn snapshot(state: &State) -> GatewayUpdate {
        let mut update = GatewayUpdate {
            snapshot: true,
            ..GatewayUpdate::default()
        };
        for function in state.functions.values() {
            update.functions.push(function.message());
            let added = function
                .sandboxes
                .iter()
                .filter_map(|(id, sandbox)| {
                    let worker = state.workers.get(&sandbox.worker)?;
                    Some(Endpoint {
                        sandbox_id: id.clone(),
                        worker_id: sandbox.worker.clone(),
                        address: worker.record.data_address.clone(),
                    })
                })
                .collect();
            update.endpoints.push(EndpointDelta {
                function: function.spec.name.to_string(),
                version: function.version,
                added,
                removed: Vec::new(),
            });
        }
        update
    }

    /// Connects a gateway: its stream starts with a snapshot, then carries deltas.
    pub(crate) async fn connect_gateway(
        &self,
        id: String,
        address: String,
    ) -> anyhow::Result<mpsc::Receiver<Result<GatewayUpdate, tonic::Status>>> {
        let known = self
            .state
            .lock()
            .unwrap()
            .gateways
            .get(&id)
            .map(|g| g.address.clone());
        if known.as_deref() != Some(address.as_str()) {
            let record = GatewayRecord {
                id: id.clone(),
                address: address.clone(),
            };
            self.store
                .put(Table::Gateways, &id, &serde_json::to_vec(&record)?)
                .await?;
        }
        let (tx, rx) = mpsc::channel(GATEWAY_QUEUE);
        let mut state = self.state.lock().unwrap();
        tx.try_send(Ok(Self::snapshot(&state)))
            .expect("a new channel has room");
        state.gateways.insert(
            id.clone(),
            GatewaySink {
                address,
                updates: Some(tx),
            },
        );
        tracing::info!(gateway = %id, "gateway connected");
        Ok(rx)
    }

    /// Registers (or re-registers) a worker, then adopts what it already runs.
    pub(crate) async fn register_worker(self: &Arc<Self>, info: WorkerInfo) -> anyhow::Result<()> {
        anyhow::ensure!(!info.id.is_empty(), "a worker needs an id");
        anyhow::ensure!(
            !info.grpc_address.is_empty() && !info.data_address.is_empty(),
            "a worker needs its gRPC and data addresses"
        );
        let record = WorkerRecord::from(&info);
        self.store
            .put(Table::Workers, &record.id, &serde_json::to_vec(&record)?)
            .await?;
        self.add_worker(record.clone(), Instant::now())?;
        tracing::info!(worker = %record.id, address = %record.grpc_address, "worker registered");
        let cluster = self.clone();
        tokio::spawn(async move {
            cluster.adopt(&record.id).await;
            cluster.prepare_all_on(&record.id);
        });
        Ok(())
    }

    /// Puts a worker in the picture, alive, replacing an earlier entry of the same id (whose
    /// sandboxes are forgotten: adoption finds the ones still running).
    pub(crate) fn add_worker(
        self: &Arc<Self>,
        record: WorkerRecord,
        heartbeat: Instant,
    ) -> anyhow::Result<()> {
        let local = self
            .in_process
            .lock()
            .unwrap()
            .get(&record.grpc_address)
            .cloned();
        let client = match local {
            Some(transport) => worker_client(transport),
            None => worker_conn(&record.grpc_address, &self.config.auth)?,
        };
        let (creations, queue) = mpsc::channel(CREATION_QUEUE);
        tokio::spawn(
            self.clone()
                .batch_creations(record.id.clone(), client.clone(), queue),
        );
        let mut state = self.state.lock().unwrap();
        if state.workers.contains_key(&record.id) {
            Self::forget_worker_sandboxes(&mut state, &record.id);
        }
        state.workers.insert(
            record.id.clone(),
            WorkerState {
                record,
                client,
                alive: true,
                last_heartbeat: heartbeat,
                cpu_used: 0.0,
                memory_used: 0,
                requested_cpu: 0.0,
                requested_memory: 0,
                sandboxes: HashSet::new(),
                creations,
            },
        );
        Ok(())
    }

    /// The replication peers of `worker`'s state agent: the control plane is the membership
    /// source.
    pub(crate) fn state_peers(&self, worker: &str) -> Vec<String> {
        let state = self.state.lock().unwrap();
        let members = state.workers.values().map(|w| {
            (
                w.record.id.as_str(),
                w.alive,
                w.record.state_address.as_str(),
            )
        });
        state_peers(worker, members)
    }

    /// Records a heartbeat; false when the worker is unknown or was declared dead, so it
    /// registers again.
    pub(crate) fn heartbeat(&self, beat: &proto::Heartbeat) -> bool {
        let mut state = self.state.lock().unwrap();
        match state.workers.get_mut(&beat.id) {
            Some(worker) if worker.alive => {
                worker.last_heartbeat = Instant::now();
                worker.cpu_used = beat.cpu_used;
                worker.memory_used = beat.memory_used;
                true
            }
            _ => false,
        }
    }

    /// Removes every sandbox of `worker` from its functions and from the gateways; returns
    /// the functions that lost sandboxes.
    pub(crate) fn forget_worker_sandboxes(state: &mut State, worker: &str) -> Vec<String> {
        let Some(w) = state.workers.get_mut(worker) else {
            return Vec::new();
        };
        let lost: Vec<String> = w.sandboxes.drain().collect();
        w.requested_cpu = 0.0;
        w.requested_memory = 0;
        let mut by_function: HashMap<String, (u64, Vec<String>)> = HashMap::new();
        for function in state.functions.values_mut() {
            for id in &lost {
                if function.sandboxes.remove(id).is_some() {
                    by_function
                        .entry(function.spec.name.to_string())
                        .or_insert((function.version, Vec::new()))
                        .1
                        .push(id.clone());
                }
            }
        }
        let affected: Vec<String> = by_function.keys().cloned().collect();
        for (function, (version, removed)) in by_function {
            Self::broadcast(
                state,
                Self::endpoints_update(&function, version, Vec::new(), removed),
            );
        }
        affected
    }

    /// Declares workers dead after missed heartbeats; their sandboxes are replaced elsewhere.
    fn detect_failures(self: &Arc<Self>) {
        let limit = self.config.heartbeat_interval * self.config.missed_heartbeats;
        let dead: Vec<String> = {
            let state = self.state.lock().unwrap();
            state
                .workers
                .iter()
                .filter(|(_, w)| w.alive && w.last_heartbeat.elapsed() > limit)
                .map(|(id, _)| id.clone())
                .collect()
        };
        for id in dead {
            self.declare_dead(&id, "missed heartbeats");
        }
    }

    /// Takes a worker out: its sandboxes leave every gateway and are recreated elsewhere.
    pub(crate) fn declare_dead(self: &Arc<Self>, worker: &str, reason: &str) {
        let affected = {
            let mut state = self.state.lock().unwrap();
            match state.workers.get_mut(worker) {
                Some(w) if w.alive => w.alive = false,
                _ => return,
            }
            Self::forget_worker_sandboxes(&mut state, worker)
        };
        tracing::warn!(%worker, reason, functions = affected.len(), "worker declared dead; replacing its sandboxes");
        for function in affected {
            self.reconcile(&function);
        }
    }

    /// A gateway could not reach a worker: check it at once rather than waiting for its
    /// heartbeats, and take it out if it does not answer either.
    pub(crate) fn suspect(self: &Arc<Self>, worker: String, reason: String) {
        let client = {
            let state = self.state.lock().unwrap();
            match state.workers.get(&worker) {
                Some(w) if w.alive => w.client.clone(),
                _ => return,
            }
        };
        let cluster = self.clone();
        tokio::spawn(async move {
            let mut request = tonic::Request::new(proto::Empty {});
            request.set_timeout(Duration::from_millis(500));
            if let Err(status) = client.clone().list_sandboxes(request).await {
                cluster.declare_dead(
                    &worker,
                    &format!(
                        "{reason}; and it did not answer the control plane: {}",
                        status.message()
                    ),
                );
            }
        });
    }

    /// A sandbox died on its worker: forget it; the function gets a replacement.
    pub(crate) fn sandbox_failed(self: &Arc<Self>, worker: &str, sandbox: &str) {
        let function = {
            let mut state = self.state.lock().unwrap();
            let Some(name) = state
                .functions
                .iter()
                .find(|(_, f)| f.sandboxes.get(sandbox).is_some_and(|s| s.worker == worker))
                .map(|(n, _)| n.clone())
            else {
                return;
            };
            let f = state.functions.get_mut(&name).expect("found above");
            f.sandboxes.remove(sandbox);
            let (demand, version) = (f.demand(self.config.sandbox_cpu), f.version);
            if let Some(w) = state.workers.get_mut(worker) {
                w.release(sandbox, demand);
            }
            Self::broadcast(
                &mut state,
                Self::endpoints_update(&name, version, Vec::new(), vec![sandbox.to_owned()]),
            );
            name
        };
        tracing::warn!(%worker, %sandbox, %function, "sandbox failed; replacing it");
        self.reconcile(&function);
    }

    /// Sandbox counts of one function.
    pub fn replicas_of(&self, name: &str) -> Replicas {
        let state = self.state.lock().unwrap();
        state
            .functions
            .get(name)
            .map(|f| Replicas {
                running: f.sandboxes.len() as u64 + u64::from(f.creating),
                ready: f.sandboxes.len() as u64,
            })
            .unwrap_or_default()
    }

    /// Workers, their sandboxes and load; gateways and whether they are connected.
    pub fn nodes(&self) -> proto::Nodes {
        let state = self.state.lock().unwrap();
        let mut function_of: HashMap<&str, &str> = HashMap::new();
        for (name, f) in &state.functions {
            for id in f.sandboxes.keys() {
                function_of.insert(id, name);
            }
        }
        proto::Nodes {
            workers: state
                .workers
                .values()
                .map(|w| {
                    let mut sandboxes: Vec<_> = w
                        .sandboxes
                        .iter()
                        .map(|id| proto::SandboxStatus {
                            id: id.clone(),
                            function: function_of.get(id.as_str()).unwrap_or(&"").to_string(),
                        })
                        .collect();
                    sandboxes.sort_by(|a, b| (&a.function, &a.id).cmp(&(&b.function, &b.id)));
                    proto::WorkerStatus {
                        id: w.record.id.clone(),
                        data_address: w.record.data_address.clone(),
                        alive: w.alive,
                        cpu_cores: w.record.cpu_cores,
                        memory_bytes: w.record.memory_bytes,
                        cpu_used: w.cpu_used,
                        memory_used: w.memory_used,
                        millis_since_heartbeat: w.last_heartbeat.elapsed().as_millis() as u64,
                        sandboxes,
                        grpc_address: w.record.grpc_address.clone(),
                    }
                })
                .collect(),
            gateways: state
                .gateways
                .iter()
                .map(|(id, g)| proto::GatewayStatus {
                    id: id.clone(),
                    address: g.address.clone(),
                    connected: g.updates.as_ref().is_some_and(|tx| !tx.is_closed()),
                })
                .collect(),
        }
    }

    /// Schedulable workers and their loads, for placement.
    pub(crate) fn loads(state: &State) -> (Vec<String>, Vec<WorkerLoad>) {
        state
            .workers
            .iter()
            .filter(|(_, w)| w.alive)
            .map(|(id, w)| {
                (
                    id.clone(),
                    WorkerLoad {
                        cpu_cores: w.record.cpu_cores,
                        memory_bytes: w.record.memory_bytes,
                        cpu_used: w.requested_cpu,
                        memory_used: w.requested_memory,
                    },
                )
            })
            .unzip()
    }

    /// Asks a worker to delete sandboxes (it drains them first); failures are logged, as
    /// a dead worker's sandboxes are gone anyway.
    pub(crate) fn delete_on(&self, worker: &str, ids: Vec<String>) {
        if ids.is_empty() {
            return;
        }
        let client = {
            let state = self.state.lock().unwrap();
            match state.workers.get(worker) {
                Some(w) => w.client.clone(),
                None => return,
            }
        };
        let timeout = self.config.worker_rpc_timeout;
        let worker = worker.to_owned();
        tokio::spawn(async move {
            let mut request = tonic::Request::new(SandboxIds { ids });
            request.set_timeout(timeout);
            if let Err(status) = client.clone().delete_sandboxes(request).await {
                tracing::warn!(%worker, error = %status.message(), "could not delete sandboxes");
            }
        });
    }

    /// A fresh, cluster-unique sandbox id.
    pub(crate) fn sandbox_id(function: &str) -> String {
        format!("{function}-{:016x}", fastrand::u64(..))
    }

    pub(crate) fn is_recovering(&self) -> bool {
        self.recovering.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::state_peers;

    #[test]
    fn state_peers_are_the_other_live_agents_once_each() {
        let members = [
            ("a", true, "10.0.0.1:7"),
            ("b", true, "10.0.0.2:7"),
            ("b2", true, "10.0.0.2:7"),
            ("c", false, "10.0.0.3:7"),
            ("d", true, ""),
            ("e", true, "10.0.0.5:7"),
        ];
        let cases: [(&str, &[&str]); 5] = [
            ("a", &["10.0.0.2:7", "10.0.0.5:7"]),
            // Two workers of one process share an agent: it is not its own peer.
            ("b", &["10.0.0.1:7", "10.0.0.5:7"]),
            // A dead worker still learns the live ones (it is told when it comes back).
            ("c", &["10.0.0.1:7", "10.0.0.2:7", "10.0.0.5:7"]),
            ("d", &["10.0.0.1:7", "10.0.0.2:7", "10.0.0.5:7"]),
            ("unknown", &["10.0.0.1:7", "10.0.0.2:7", "10.0.0.5:7"]),
        ];
        for (worker, expected) in cases {
            assert_eq!(
                state_peers(worker, members.iter().copied()),
                expected,
                "{worker}"
            );
        }
    }
}
