//! The cluster manager as a model: the whole picture (functions and their sandboxes, workers
//! and their heartbeats, gateways), changed only by [`Event`]s at a given time, answering
//! each with the [`Effect`]s the executor carries out (create, delete, prepare, list, probe,
//! push to gateways, wake waiters).
//!
//! Nothing here does I/O or reads a clock: time comes in as milliseconds on the manager's
//! one clock, sandbox ids come from a seeded generator, and placement is the configured
//! policy. So every decision (reconcile, scale from zero, worker death, adoption after a
//! restart, removal) is a table test, and the executor in [`super`] is left with the sockets.

mod functions;
mod membership;
mod scaling;
#[cfg(test)]
mod tests;

use crate::autoscaler::{ConcurrencyWindow, KpaConfig, KpaState};
use crate::keep_alive::{KeepAlive, Policy, Usage};
use crate::placement::{Demand, Placement, WorkerLoad};
use baton_api::cluster::{self as proto, Endpoint, EndpointDelta, GatewayUpdate};
use baton_api::{FunctionSpec, GatewayId, Replicas, SandboxId, WorkerId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::time::Duration;

/// Milliseconds on the manager's clock (since it started).
pub type Millis = u64;

/// What the model needs to decide; the executor's settings (timeouts, credentials) stay
/// with the executor.
#[derive(Debug, Clone)]
pub struct ModelConfig {
    /// Autoscaler windows and rates; `target`, `min` and `max` come from each function.
    pub kpa: KpaConfig,
    /// CPU one sandbox is assumed to take, for `resource-fit` (cores).
    pub sandbox_cpu: f64,
    /// Silence after which a worker is declared dead (heartbeat interval × missed beats).
    pub failure_after: Duration,
    /// A gateway's load report counts this long; after that it is taken as zero.
    pub report_lifetime: Duration,
    /// Which idle sandboxes stay, and which go when a creation needs their memory.
    pub keep_alive: KeepAlive,
}

impl Default for ModelConfig {
    fn default() -> Self {
        ModelConfig {
            kpa: KpaConfig::default(),
            sandbox_cpu: 0.1,
            failure_after: Duration::from_secs(3),
            report_lifetime: Duration::from_secs(3),
            keep_alive: KeepAlive::Ttl,
        }
    }
}

/// A worker as stored: enough to reach it again after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerRecord {
    /// Its id.
    pub id: WorkerId,
    /// Where the control plane reaches its gRPC service.
    pub grpc_address: String,
    /// Where gateways send it requests.
    pub data_address: String,
    /// Cores it offers.
    pub cpu_cores: f64,
    /// Bytes of memory it offers.
    pub memory_bytes: u64,
    /// Where its state agent takes peers; empty when it runs none (records stored before
    /// workers had agents read as empty too).
    #[serde(default)]
    pub state_address: String,
}

impl From<&proto::WorkerInfo> for WorkerRecord {
    fn from(info: &proto::WorkerInfo) -> Self {
        WorkerRecord {
            id: WorkerId::from(info.id.as_str()),
            grpc_address: info.grpc_address.clone(),
            data_address: info.data_address.clone(),
            cpu_cores: info.cpu_cores,
            memory_bytes: info.memory_bytes,
            state_address: info.state_address.clone(),
        }
    }
}

/// A sandbox a worker says it runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Running {
    /// The sandbox.
    pub id: SandboxId,
    /// Its function.
    pub function: String,
    /// The function's version it was created for.
    pub version: u64,
}

/// Something that happened, as the model learns it.
#[derive(Debug, Clone)]
pub enum Event {
    /// A function's definition is `spec` at `version` (deploy, update, or restore).
    Install {
        /// The definition.
        spec: FunctionSpec,
        /// Its version: a new one replaces every sandbox of the old.
        version: u64,
    },
    /// The function is deleted.
    Remove {
        /// Its name.
        function: String,
    },
    /// A worker registered (`registered`), or was read back from the store after a restart
    /// (not `registered`: it is listed by the recovery, and asked nothing else).
    WorkerJoined {
        /// How to reach it and what it offers.
        record: WorkerRecord,
        /// Whether the worker itself called (then it is listed and prepared).
        registered: bool,
    },
    /// A worker's heartbeat.
    Heartbeat {
        /// The worker.
        worker: WorkerId,
        /// Cores in use.
        cpu_used: f64,
        /// Bytes in use.
        memory_used: u64,
    },
    /// A worker's list of what it runs, for adoption.
    Listed {
        /// The worker.
        worker: WorkerId,
        /// Its sandboxes.
        sandboxes: Vec<Running>,
    },
    /// What a worker answered to a creation: sandboxes created, and failed ones with why.
    Created {
        /// The worker.
        worker: WorkerId,
        /// Created and running.
        created: Vec<SandboxId>,
        /// Not created, each with the reason.
        failed: Vec<(SandboxId, String)>,
    },
    /// A sandbox died on its worker.
    SandboxFailed {
        /// The worker.
        worker: WorkerId,
        /// The sandbox.
        sandbox: SandboxId,
    },
    /// A gateway could not reach a worker: it is probed at once.
    Unreachable {
        /// The worker.
        worker: WorkerId,
        /// What the gateway saw.
        reason: String,
    },
    /// A worker is gone (a failed probe).
    WorkerDead {
        /// The worker.
        worker: WorkerId,
        /// Why.
        reason: String,
    },
    /// A gateway connected, or was read back from the store.
    GatewayKnown {
        /// The gateway.
        id: GatewayId,
        /// Where it serves.
        address: String,
    },
    /// A gateway's load report.
    Load {
        /// The gateway.
        gateway: GatewayId,
        /// Per function: concurrency and queued requests.
        loads: Vec<proto::FunctionLoad>,
    },
    /// A gateway holds requests for a function without sandboxes.
    ScaleFromZero {
        /// The function.
        function: String,
    },
    /// A manual scale: `replicas` until the function's scale-to-zero grace has passed.
    Scale {
        /// The function.
        function: String,
        /// Sandboxes wanted.
        replicas: u32,
    },
    /// The autoscaler's periodic pass.
    Autoscale,
    /// The failure detector's periodic pass.
    DetectFailures,
    /// Every worker known after a restart has been listed: scaling resumes.
    Recovered,
}

/// What the executor must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Ask `worker` to create `sandboxes` of `function`; answered by [`Event::Created`].
    Create {
        /// The worker.
        worker: WorkerId,
        /// The function's current definition.
        function: proto::Function,
        /// Fresh ids for the new sandboxes.
        sandboxes: Vec<SandboxId>,
    },
    /// Ask `worker` to drain and delete `sandboxes`.
    Delete {
        /// The worker.
        worker: WorkerId,
        /// The sandboxes.
        sandboxes: Vec<SandboxId>,
    },
    /// Ask `worker` to fetch and compile functions ahead of their first sandbox.
    Prepare {
        /// The worker.
        worker: WorkerId,
        /// The functions.
        functions: Vec<proto::Function>,
    },
    /// Tell `worker` that `function` was removed: it drops what it prepared for it.
    Forget {
        /// The worker.
        worker: WorkerId,
        /// The function.
        function: String,
    },
    /// Ask `worker` what it runs; answered by [`Event::Listed`].
    List {
        /// The worker.
        worker: WorkerId,
    },
    /// Check at once whether `worker` answers; [`Event::WorkerDead`] if not.
    Probe {
        /// The worker.
        worker: WorkerId,
        /// Why it is suspected.
        reason: String,
    },
    /// Send this update to every connected gateway.
    Push(GatewayUpdate),
    /// The function's sandboxes changed: wake whoever waits on them.
    Wake(String),
}

pub(crate) struct Worker {
    pub(crate) record: WorkerRecord,
    pub(crate) alive: bool,
    pub(crate) last_heartbeat: Millis,
    pub(crate) cpu_used: f64,
    pub(crate) memory_used: u64,
    /// What the sandboxes placed here asked for (kube-scheduler's "requested").
    pub(crate) requested_cpu: f64,
    pub(crate) requested_memory: u64,
    pub(crate) sandboxes: HashSet<SandboxId>,
}

impl Worker {
    fn new(record: WorkerRecord, now: Millis) -> Self {
        Worker {
            record,
            alive: true,
            last_heartbeat: now,
            cpu_used: 0.0,
            memory_used: 0,
            requested_cpu: 0.0,
            requested_memory: 0,
            sandboxes: HashSet::new(),
        }
    }

    /// Takes what `count` sandboxes of `demand` ask for.
    fn reserve(&mut self, demand: Demand, count: usize) {
        self.requested_cpu += demand.cpu * count as f64;
        self.requested_memory += demand.memory * count as u64;
    }

    /// Gives back what `count` sandboxes of `demand` asked for.
    fn unreserve(&mut self, demand: Demand, count: usize) {
        self.requested_cpu = (self.requested_cpu - demand.cpu * count as f64).max(0.0);
        self.requested_memory = self
            .requested_memory
            .saturating_sub(demand.memory * count as u64);
    }

    /// Forgets sandbox `id` and gives back what it asked for.
    fn release(&mut self, id: &SandboxId, demand: Demand) {
        if self.sandboxes.remove(id) {
            self.unreserve(demand, 1);
        }
    }
}

/// Where a sandbox runs, and when it joined its function (a sequence number, so scaling
/// down takes the newest first: the oldest are the warmest).
pub(crate) struct Placed {
    pub(crate) worker: WorkerId,
    pub(crate) seq: u64,
}

pub(crate) struct Function {
    pub(crate) spec: FunctionSpec,
    pub(crate) version: u64,
    /// Running sandboxes and where they run.
    pub(crate) sandboxes: BTreeMap<SandboxId, Placed>,
    /// Sandboxes asked of workers and not answered yet.
    pub(crate) creating: u32,
    pub(crate) desired: u32,
    pub(crate) window: ConcurrencyWindow,
    pub(crate) kpa: KpaState,
    /// Latest load report of each gateway: (when, concurrency).
    pub(crate) loads: HashMap<GatewayId, (Millis, f64)>,
    /// A manual scale holds until then.
    pub(crate) pinned_until: Option<Millis>,
    /// What the keep-alive policy knows of it.
    pub(crate) usage: Usage,
}

impl Function {
    fn message(&self) -> proto::Function {
        proto::Function {
            name: self.spec.name.to_string(),
            spec_json: serde_json::to_vec(&self.spec).expect("specs serialize"),
            version: self.version,
        }
    }

    fn demand(&self, sandbox_cpu: f64) -> Demand {
        Demand {
            cpu: sandbox_cpu,
            memory: self.spec.limits.memory_bytes,
        }
    }

    fn kpa_config(&self, base: &KpaConfig) -> KpaConfig {
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

/// A creation asked of a worker and not answered yet: what it was for and what it reserved.
struct Pending {
    function: String,
    version: u64,
    worker: WorkerId,
    demand: Demand,
    /// When the creation was asked: its answer measures the function's cold start.
    asked_at: Millis,
}

/// The cluster manager's picture and decisions; see the module documentation.
pub struct Manager {
    config: ModelConfig,
    placement: Box<dyn Placement>,
    ids: fastrand::Rng,
    pub(crate) functions: HashMap<String, Function>,
    pub(crate) workers: BTreeMap<WorkerId, Worker>,
    gateways: BTreeMap<GatewayId, String>,
    pending: HashMap<SandboxId, Pending>,
    /// The next sandbox's sequence number.
    seq: u64,
    recovering: bool,
    keep_alive: Box<dyn Policy>,
    /// Idle sandboxes the keep-alive policy evicted for memory, since start.
    pub(crate) evictions: u64,
    /// The time of the event being handled.
    now: Millis,
}

/// Effects gathered while one event is handled.
pub(crate) type Effects = Vec<Effect>;

/// Sandboxes that joined, per function: (its version, their endpoints).
type Added = BTreeMap<String, (u64, Vec<Endpoint>)>;

impl Manager {
    /// Idle sandboxes evicted for memory by the keep-alive policy since start.
    pub fn keep_alive_evictions(&self) -> u64 {
        self.evictions
    }

    /// An empty picture, recovering (nothing is created until [`Event::Recovered`]);
    /// sandbox ids are drawn from `seed`.
    pub fn new(config: ModelConfig, placement: Box<dyn Placement>, seed: u64) -> Self {
        Manager {
            placement,
            ids: fastrand::Rng::with_seed(seed),
            functions: HashMap::new(),
            workers: BTreeMap::new(),
            gateways: BTreeMap::new(),
            pending: HashMap::new(),
            seq: 0,
            recovering: true,
            keep_alive: config.keep_alive.build(),
            evictions: 0,
            now: 0,
            config,
        }
    }

    /// Handles `event` at `now`; returns what the executor must do, in order.
    pub fn apply(&mut self, now: Millis, event: Event) -> Vec<Effect> {
        self.now = now;
        let mut effects = Vec::new();
        match event {
            Event::Install { spec, version } => self.install(spec, version, &mut effects),
            Event::Remove { function } => self.remove(&function, &mut effects),
            Event::WorkerJoined { record, registered } => {
                self.join(record, registered, now, &mut effects)
            }
            Event::Heartbeat {
                worker,
                cpu_used,
                memory_used,
            } => self.heartbeat(&worker, cpu_used, memory_used, now),
            Event::Listed { worker, sandboxes } => self.adopt(&worker, sandboxes, &mut effects),
            Event::Created {
                worker,
                created,
                failed,
            } => self.created(&worker, created, failed, &mut effects),
            Event::SandboxFailed { worker, sandbox } => {
                self.sandbox_failed(&worker, &sandbox, &mut effects)
            }
            Event::Unreachable { worker, reason } => {
                if self.alive(&worker) {
                    effects.push(Effect::Probe { worker, reason });
                }
            }
            Event::WorkerDead { worker, reason } => {
                self.declare_dead(&worker, &reason, &mut effects)
            }
            Event::GatewayKnown { id, address } => {
                self.gateways.insert(id, address);
            }
            Event::Load { gateway, loads } => self.report_load(&gateway, loads, now, &mut effects),
            Event::ScaleFromZero { function } => self.scale_from_zero(&function, now, &mut effects),
            Event::Scale { function, replicas } => {
                self.scale_to(&function, replicas, now, &mut effects)
            }
            Event::Autoscale => self.autoscale(now, &mut effects),
            Event::DetectFailures => self.detect_failures(now, &mut effects),
            Event::Recovered => self.recovered(now, &mut effects),
        }
        effects
    }

    /// Whether a restarted manager is still adopting what workers run.
    pub fn is_recovering(&self) -> bool {
        self.recovering
    }

    /// Whether `worker` is known and alive.
    pub fn alive(&self, worker: &WorkerId) -> bool {
        self.workers.get(worker).is_some_and(|w| w.alive)
    }

    /// Whether `function` exists.
    pub fn has_function(&self, function: &str) -> bool {
        self.functions.contains_key(function)
    }

    /// Sandboxes of `function` ready to serve; `None` for an unknown function.
    pub fn ready(&self, function: &str) -> Option<u32> {
        self.functions
            .get(function)
            .map(|f| f.sandboxes.len() as u32)
    }

    /// Sandbox counts of one function (zero for an unknown one).
    pub fn replicas(&self, function: &str) -> Replicas {
        self.functions
            .get(function)
            .map(|f| Replicas {
                running: f.sandboxes.len() as u64 + u64::from(f.creating),
                ready: f.sandboxes.len() as u64,
            })
            .unwrap_or_default()
    }

    /// Sandboxes of every function, summed.
    pub fn sandbox_count(&self) -> usize {
        self.functions.values().map(|f| f.sandboxes.len()).sum()
    }

    /// Where a gateway was last known to serve.
    pub fn gateway_address(&self, id: &GatewayId) -> Option<&str> {
        self.gateways.get(id).map(String::as_str)
    }

    /// Where `worker`'s gateways send requests.
    pub fn data_address(&self, worker: &WorkerId) -> Option<&str> {
        self.workers
            .get(worker)
            .map(|w| w.record.data_address.as_str())
    }

    /// Every function's current definition.
    pub fn function_messages(&self) -> Vec<proto::Function> {
        self.functions.values().map(Function::message).collect()
    }

    /// Everything a gateway needs, for the first message of its stream.
    pub fn snapshot(&self) -> GatewayUpdate {
        let mut update = GatewayUpdate {
            snapshot: true,
            ..GatewayUpdate::default()
        };
        for function in self.functions.values() {
            update.functions.push(function.message());
            let added = function
                .sandboxes
                .iter()
                .filter_map(|(id, placed)| {
                    let address = self.data_address(&placed.worker)?;
                    Some(Self::endpoint(id, &placed.worker, address))
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

    /// The replication peers of `worker`'s state agent (the control plane is the
    /// membership source): those of the other live workers, each once, never its own
    /// (several workers of one process share an agent), never an empty address.
    pub fn state_peers(&self, worker: &WorkerId) -> Vec<String> {
        let own = self
            .workers
            .get(worker)
            .map_or("", |w| w.record.state_address.as_str());
        let peers: BTreeSet<&str> = self
            .workers
            .values()
            .filter(|w| {
                let address = w.record.state_address.as_str();
                w.alive && w.record.id != *worker && !address.is_empty() && address != own
            })
            .map(|w| w.record.state_address.as_str())
            .collect();
        peers.into_iter().map(str::to_owned).collect()
    }

    /// Workers, their sandboxes and load at `now`; gateways, with `connected` telling
    /// which have a live stream.
    pub fn nodes(&self, now: Millis, connected: impl Fn(&GatewayId) -> bool) -> proto::Nodes {
        let mut function_of: HashMap<&SandboxId, &str> = HashMap::new();
        for (name, f) in &self.functions {
            for id in f.sandboxes.keys() {
                function_of.insert(id, name);
            }
        }
        proto::Nodes {
            workers: self
                .workers
                .values()
                .map(|w| {
                    let mut sandboxes: Vec<_> = w
                        .sandboxes
                        .iter()
                        .map(|id| proto::SandboxStatus {
                            id: id.to_string(),
                            function: function_of.get(id).unwrap_or(&"").to_string(),
                        })
                        .collect();
                    sandboxes.sort_by(|a, b| (&a.function, &a.id).cmp(&(&b.function, &b.id)));
                    proto::WorkerStatus {
                        id: w.record.id.to_string(),
                        data_address: w.record.data_address.clone(),
                        alive: w.alive,
                        cpu_cores: w.record.cpu_cores,
                        memory_bytes: w.record.memory_bytes,
                        cpu_used: w.cpu_used,
                        memory_used: w.memory_used,
                        millis_since_heartbeat: now.saturating_sub(w.last_heartbeat),
                        sandboxes,
                        grpc_address: w.record.grpc_address.clone(),
                    }
                })
                .collect(),
            gateways: self
                .gateways
                .iter()
                .map(|(id, address)| proto::GatewayStatus {
                    id: id.to_string(),
                    address: address.clone(),
                    connected: connected(id),
                })
                .collect(),
        }
    }

    /// How gateways reach sandbox `id` on `worker`, whose data listener is `address`.
    pub(crate) fn endpoint(id: &SandboxId, worker: &WorkerId, address: &str) -> Endpoint {
        Endpoint {
            sandbox_id: id.to_string(),
            worker_id: worker.to_string(),
            address: address.to_owned(),
        }
    }

    fn endpoints_update(
        function: &str,
        version: u64,
        added: Vec<Endpoint>,
        removed: Vec<SandboxId>,
    ) -> Effect {
        Effect::Push(GatewayUpdate {
            snapshot: false,
            functions: Vec::new(),
            removed_functions: Vec::new(),
            endpoints: vec![EndpointDelta {
                function: function.to_owned(),
                version,
                added,
                removed: removed.into_iter().map(SandboxId::into_string).collect(),
            }],
        })
    }

    /// Announces `added` to every gateway, one update per function.
    fn push_added(added: Added, effects: &mut Effects) {
        for (function, (version, endpoints)) in added {
            effects.push(Self::endpoints_update(
                &function,
                version,
                endpoints,
                Vec::new(),
            ));
        }
    }

    /// Schedulable workers and their loads, for placement.
    fn loads(&self) -> (Vec<WorkerId>, Vec<WorkerLoad>) {
        self.workers
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
}
