//! The cluster manager: where functions run, on workers reached over gRPC or in this
//! process (after Dirigent).
//!
//! The decisions live in [`model`]: a pure [`Manager`] that takes events at a time and
//! returns effects. [`Cluster`] is the executor around it: it holds the model behind one
//! lock (never held across an await), feeds it events from RPCs, timers and replies, and
//! carries out its effects (RPCs to workers in tasks, pushes to gateway streams, wake-ups of
//! waiters). Only functions, workers and gateways are written to the [`Store`]; sandboxes
//! and scale are rebuilt from the workers' own lists after a restart, so the cold-start
//! path (gateway asks → place → worker creates → endpoint pushed to every gateway) never
//! writes to disk.

mod host;
pub mod model;
mod recovery;
mod service;
mod workers;

pub use host::ClusterHost;
pub use model::{Effect, Event, Manager, Millis, ModelConfig, WorkerRecord};
pub use service::{ControlService, open_control};

use crate::autoscaler::KpaConfig;
use crate::placement::placement_policy;
use crate::{Store, Table};
use baton_api::cluster::{self as proto, Endpoint, GatewayUpdate};
use baton_api::cluster_auth::{ClientAuth, Transport, WorkerConn, worker_client, worker_conn};
use baton_api::{GatewayId, Replicas, WorkerId};
use baton_runtime::Runtime;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, VecDeque};
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
    /// Which idle sandboxes stay, and which go when a creation needs memory. Default `ttl`.
    pub keep_alive: crate::keep_alive::KeepAlive,
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
            keep_alive: crate::keep_alive::KeepAlive::Ttl,
        }
    }
}

impl ClusterConfig {
    /// What the model decides with.
    fn model(&self) -> ModelConfig {
        ModelConfig {
            kpa: self.kpa.clone(),
            sandbox_cpu: self.sandbox_cpu,
            failure_after: self.heartbeat_interval * self.missed_heartbeats,
            keep_alive: self.keep_alive,
            ..ModelConfig::default()
        }
    }
}

/// A gateway as stored, for `baton ls --nodes` after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct GatewayRecord {
    pub(crate) id: GatewayId,
    pub(crate) address: String,
}

/// How the executor reaches one worker.
struct Link {
    client: WorkerConn,
    /// Placements waiting to be sent, in batches, by the worker's creation task.
    creations: mpsc::Sender<proto::Placement>,
}

type UpdateSender = mpsc::Sender<Result<GatewayUpdate, tonic::Status>>;

/// The model and what the executor keeps beside it, under one lock.
struct Inner {
    model: Manager,
    links: HashMap<WorkerId, Link>,
    /// Connected gateways' update streams.
    sinks: HashMap<GatewayId, UpdateSender>,
    /// Woken when a function's sandboxes come or go (per function, so thousands of
    /// creations do not wake every waiter of every function).
    waiters: HashMap<String, Arc<Notify>>,
}

/// Placements queued per worker before new ones fail (and are retried by the autoscaler).
const CREATION_QUEUE: usize = 65_536;

/// Updates queued per gateway before it counts as stuck and is dropped; it reconnects and
/// gets a fresh snapshot.
const GATEWAY_QUEUE: usize = 4096;

/// The cluster manager's executor: see the module documentation.
pub struct Cluster {
    pub(crate) config: ClusterConfig,
    inner: Mutex<Inner>,
    pub(crate) store: Arc<dyn Store>,
    /// Checks components at deploy (compile), so a bad one is refused with 400.
    pub(crate) validator: Arc<dyn Runtime>,
    /// The one clock: the model's milliseconds count from here.
    started: Instant,
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
        let model = Manager::new(config.model(), placement, fastrand::u64(..));
        Ok(Arc::new(Cluster {
            config,
            inner: Mutex::new(Inner {
                model,
                links: HashMap::new(),
                sinks: HashMap::new(),
                waiters: HashMap::new(),
            }),
            store,
            validator,
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

    /// Now on the model's clock.
    fn now(&self) -> Millis {
        self.started.elapsed().as_millis() as Millis
    }

    /// Starts the autoscaler and the failure detector.
    pub fn spawn_loops(self: &Arc<Self>) {
        self.every(self.config.scaling_interval, || Event::Autoscale);
        self.every(self.config.heartbeat_interval, || Event::DetectFailures);
    }

    /// Feeds `event` to the model every `period` for as long as the process lives (late
    /// ticks are skipped).
    fn every(self: &Arc<Self>, period: Duration, event: fn() -> Event) {
        let cluster = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                cluster.handle(event());
            }
        });
    }

    /// Applies `event` to the model and carries out its effects. Returns the sandboxes
    /// the effects placed (queued for creation, not yet running).
    pub(crate) fn handle(self: &Arc<Self>, event: Event) -> Vec<Endpoint> {
        let mut inner = self.inner.lock().unwrap();
        let effects = inner.model.apply(self.now(), event);
        self.execute(&mut inner, effects)
    }

    /// Carries out `effects` in order. Only non-blocking work happens under the lock:
    /// queueing, pushes to bounded channels, spawning RPC tasks.
    fn execute(self: &Arc<Self>, inner: &mut Inner, effects: Vec<Effect>) -> Vec<Endpoint> {
        let mut queue = VecDeque::from(effects);
        let mut placed = Vec::new();
        while let Some(effect) = queue.pop_front() {
            match effect {
                Effect::Push(update) => Self::broadcast(&mut inner.sinks, update),
                Effect::Wake(function) => {
                    if let Some(waiters) = inner.waiters.get(&function) {
                        waiters.notify_waiters();
                    }
                    if !inner.model.has_function(&function) {
                        inner.waiters.remove(&function);
                    }
                }
                Effect::Create {
                    worker,
                    function,
                    sandboxes,
                } => {
                    let placement = proto::Placement {
                        function: Some(function),
                        sandbox_ids: sandboxes.iter().map(ToString::to_string).collect(),
                    };
                    let queued = inner
                        .links
                        .get(&worker)
                        .is_some_and(|link| link.creations.try_send(placement).is_ok());
                    if queued {
                        let address = inner.model.data_address(&worker).unwrap_or_default();
                        placed.extend(
                            sandboxes
                                .iter()
                                .map(|id| Manager::endpoint(id, &worker, address)),
                        );
                    } else {
                        let why = "the worker's creation queue is full or gone";
                        let failed = sandboxes.into_iter().map(|id| (id, why.into())).collect();
                        let event = Event::Created {
                            worker,
                            created: Vec::new(),
                            failed,
                        };
                        queue.extend(inner.model.apply(self.now(), event));
                    }
                }
                Effect::Delete { worker, sandboxes } => {
                    if let Some(link) = inner.links.get(&worker) {
                        self.delete_on(worker, link.client.clone(), sandboxes);
                    }
                }
                Effect::Prepare { worker, functions } => {
                    if let Some(link) = inner.links.get(&worker) {
                        self.prepare_on(worker, link.client.clone(), functions);
                    }
                }
                Effect::List { worker } => {
                    if let Some(link) = inner.links.get(&worker) {
                        self.list_on(worker, link.client.clone());
                    }
                }
                Effect::Forget { worker, function } => {
                    if let Some(link) = inner.links.get(&worker) {
                        self.forget_on(worker, link.client.clone(), function);
                    }
                }
                Effect::Probe { worker, reason } => {
                    if let Some(link) = inner.links.get(&worker) {
                        self.probe(worker, link.client.clone(), reason);
                    }
                }
            }
        }
        placed
    }

    /// Sends `update` to every connected gateway; a gateway whose queue is full is dropped
    /// and resynchronises by reconnecting.
    fn broadcast(sinks: &mut HashMap<GatewayId, UpdateSender>, update: GatewayUpdate) {
        sinks.retain(|id, tx| {
            let sent = tx.try_send(Ok(update.clone())).is_ok();
            if !sent {
                tracing::warn!(gateway = %id, "gateway is not keeping up or went away; dropping its stream");
            }
            sent
        });
    }

    /// A link to a worker: its gRPC client (in this process or over the network) and the
    /// task that sends it placements in batches.
    fn link(self: &Arc<Self>, record: &WorkerRecord) -> anyhow::Result<Link> {
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
        Ok(Link { client, creations })
    }

    /// Puts a worker in the picture with a fresh link (replacing an earlier one).
    fn join(self: &Arc<Self>, record: WorkerRecord, registered: bool) -> anyhow::Result<()> {
        let link = self.link(&record)?;
        let mut inner = self.inner.lock().unwrap();
        inner.links.insert(record.id.clone(), link);
        let effects = inner
            .model
            .apply(self.now(), Event::WorkerJoined { record, registered });
        self.execute(&mut inner, effects);
        Ok(())
    }

    /// The gRPC client of `worker`, when it has a link.
    fn client(&self, worker: &WorkerId) -> Option<WorkerConn> {
        let inner = self.inner.lock().unwrap();
        inner.links.get(worker).map(|link| link.client.clone())
    }

    /// Connects a gateway: its stream starts with a snapshot, then carries deltas.
    pub(crate) async fn connect_gateway(
        &self,
        id: GatewayId,
        address: String,
    ) -> anyhow::Result<mpsc::Receiver<Result<GatewayUpdate, tonic::Status>>> {
        let known = self
            .inner
            .lock()
            .unwrap()
            .model
            .gateway_address(&id)
            .map(str::to_owned);
        if known.as_deref() != Some(address.as_str()) {
            let record = GatewayRecord {
                id: id.clone(),
                address: address.clone(),
            };
            self.store
                .put(Table::Gateways, id.as_str(), &serde_json::to_vec(&record)?)
                .await?;
        }
        let (tx, rx) = mpsc::channel(GATEWAY_QUEUE);
        let mut inner = self.inner.lock().unwrap();
        let now = self.now();
        let effects = inner.model.apply(
            now,
            Event::GatewayKnown {
                id: id.clone(),
                address,
            },
        );
        debug_assert!(effects.is_empty(), "a gateway's arrival changes no sandbox");
        tx.try_send(Ok(inner.model.snapshot()))
            .expect("a new channel has room");
        inner.sinks.insert(id.clone(), tx);
        tracing::info!(gateway = %id, "gateway connected");
        Ok(rx)
    }

    /// Registers (or re-registers) a worker, then adopts what it already runs.
    pub(crate) async fn register_worker(
        self: &Arc<Self>,
        info: proto::WorkerInfo,
    ) -> anyhow::Result<()> {
        anyhow::ensure!(!info.id.is_empty(), "a worker needs an id");
        anyhow::ensure!(
            !info.grpc_address.is_empty() && !info.data_address.is_empty(),
            "a worker needs its gRPC and data addresses"
        );
        let record = WorkerRecord::from(&info);
        self.store
            .put(
                Table::Workers,
                record.id.as_str(),
                &serde_json::to_vec(&record)?,
            )
            .await?;
        tracing::info!(worker = %record.id, address = %record.grpc_address, "worker registered");
        self.join(record, true)
    }

    /// The replication peers of `worker`'s state agent: the control plane is the membership
    /// source.
    pub(crate) fn state_peers(&self, worker: &str) -> Vec<String> {
        self.inner
            .lock()
            .unwrap()
            .model
            .state_peers(&WorkerId::from(worker))
    }

    /// Records a heartbeat; false when the worker is unknown or was declared dead, so it
    /// registers again.
    pub(crate) fn heartbeat(self: &Arc<Self>, beat: &proto::Heartbeat) -> bool {
        let worker = WorkerId::from(beat.id.as_str());
        let mut inner = self.inner.lock().unwrap();
        let beat = Event::Heartbeat {
            worker: worker.clone(),
            cpu_used: beat.cpu_used,
            memory_used: beat.memory_used,
        };
        let effects = inner.model.apply(self.now(), beat);
        debug_assert!(effects.is_empty(), "a heartbeat only records");
        inner.model.alive(&worker)
    }

    /// A gateway has requests for a function with no sandbox: create one now, without
    /// waiting for the next autoscaler pass. Returns the sandboxes placed (being created),
    /// `None` for an unknown function.
    pub(crate) fn scale_from_zero(self: &Arc<Self>, function: &str) -> Option<Vec<Endpoint>> {
        if !self.inner.lock().unwrap().model.has_function(function) {
            return None;
        }
        Some(self.handle(Event::ScaleFromZero {
            function: function.to_owned(),
        }))
    }

    /// Sets a function's scale by hand and waits (until `deadline`) for it to be reached;
    /// returns the sandboxes ready then.
    pub(crate) async fn scale_to(
        self: &Arc<Self>,
        function: &str,
        replicas: u32,
        deadline: Instant,
    ) -> Option<u32> {
        let changed = {
            let mut inner = self.inner.lock().unwrap();
            if !inner.model.has_function(function) {
                return None;
            }
            inner
                .waiters
                .entry(function.to_owned())
                .or_default()
                .clone()
        };
        self.handle(Event::Scale {
            function: function.to_owned(),
            replicas,
        });
        loop {
            let notified = changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let ready = self.inner.lock().unwrap().model.ready(function)?;
            if ready == replicas || Instant::now() >= deadline {
                return Some(ready);
            }
            if tokio::time::timeout_at(deadline.into(), notified)
                .await
                .is_err()
            {
                return Some(ready);
            }
        }
    }

    /// Sandbox counts of one function.
    pub fn replicas_of(&self, name: &str) -> Replicas {
        self.inner.lock().unwrap().model.replicas(name)
    }

    /// The manager's metrics in Prometheus text: keep-alive evictions by policy.
    pub fn render_metrics(&self, out: &mut String) -> std::fmt::Result {
        use std::fmt::Write;
        let evictions = self.inner.lock().unwrap().model.keep_alive_evictions();
        writeln!(
            out,
            "# HELP baton_keep_alive_evictions Idle sandboxes the keep-alive policy evicted because a new one needed their memory."
        )?;
        writeln!(out, "# TYPE baton_keep_alive_evictions counter")?;
        writeln!(
            out,
            "baton_keep_alive_evictions_total{{policy=\"{}\"}} {evictions}",
            self.config.keep_alive.name()
        )
    }

    /// Workers, their sandboxes and load; gateways and whether they are connected.
    pub fn nodes(&self) -> proto::Nodes {
        let inner = self.inner.lock().unwrap();
        inner.model.nodes(self.now(), |id| {
            inner.sinks.get(id).is_some_and(|tx| !tx.is_closed())
        })
    }
}
