//! The worker of a cluster (`baton worker`): sandboxes created and deleted by the control
//! plane, invoked by gateways over HTTP.
//!
//! Unlike the single-node [`Worker`](crate::Worker), which scales its own pools, a managed
//! worker does what the control plane says: it prepares functions (fetching components
//! from the control plane when it lacks them), creates sandboxes with the ids it is given,
//! lists them for a restarted control plane to adopt, and drains them before it destroys
//! them. It heartbeats with its resource use and registers again when the control plane
//! does not know it.

mod data;
mod heartbeat;
mod service;

pub use service::WorkerService;

use baton_api::cluster::{self as proto};
use baton_api::cluster_auth::{ClientAuth, ControlConn, control_conn};
use baton_api::{ApiError, FunctionSpec, RuntimeSpec};
use baton_runtime::{ArtifactStore, FunctionLogs, Prepared, Runtime, Sandbox};
use bytes::Bytes;
use http_body_util::Full;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{Notify, OnceCell};
use tonic::Request;

pub use baton_api::data_plane::{SANDBOX_MISSING, SANDBOX_WAIT};
/// Longest a request waits for its sandbox to be created, whatever [`SANDBOX_WAIT`] asks.
const MAX_HOLD: Duration = Duration::from_secs(60);
/// Requests held at once for sandboxes not created yet; beyond it they are answered missing.
const MAX_HELD: u32 = 4096;
/// Sandbox ids whose creation failed or that were deleted, remembered so held requests for
/// them end at once.
const GONE_KEPT: usize = 4096;

/// Who the worker is and what it offers.
#[derive(Debug, Clone)]
pub struct ManagedConfig {
    /// Unique in the cluster.
    pub id: String,
    /// `host:port` the control plane reaches the gRPC service at.
    pub grpc_address: String,
    /// `host:port` gateways send invocations to.
    pub data_address: String,
    /// Capacity offered to placement.
    pub cpu_cores: f64,
    /// Capacity offered to placement, in bytes.
    pub memory_bytes: u64,
    /// Output lines kept per function.
    pub log_lines: usize,
    /// The cluster token: sent to the control plane, required from it.
    pub token: Option<String>,
    /// `host:port` where this worker's state agent takes peers; empty without one.
    pub state_address: String,
}

/// An error message as the gateway writes one: ending in exactly the newline it has, or one.
fn with_newline(mut message: String) -> String {
    if !message.ends_with('\n') {
        message.push('\n');
    }
    message
}

/// What the worker's state agent takes from the worker and gives it.
#[derive(Clone)]
pub struct StateHooks {
    /// Told the agent's replication peers each time the control plane's list of them
    /// changes (`Replication::set_peers`).
    pub membership: Arc<dyn Fn(Vec<String>) + Send + Sync>,
    /// Appends the agent's metrics (Prometheus text) to the worker's `/metrics`.
    pub metrics: Arc<dyn Fn(&mut String) -> std::fmt::Result + Send + Sync>,
}

struct ManagedSandbox {
    function: String,
    version: u64,
    spec: Arc<FunctionSpec>,
    sandbox: Arc<dyn Sandbox>,
    in_flight: AtomicU32,
    idle: Notify,
}

/// A function prepared once per version: its spec and what makes its sandboxes.
type PreparedFunction = (Arc<FunctionSpec>, Arc<dyn Prepared>);
/// One invocation in flight on a sandbox; a drain waits for the count to reach zero.
struct InFlight<'a>(&'a ManagedSandbox);

impl<'a> InFlight<'a> {
    fn enter(sandbox: &'a ManagedSandbox) -> Self {
        sandbox.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(sandbox)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

type PreparedCell = Arc<OnceCell<Result<PreparedFunction, String>>>;

/// One request held for its sandbox to be created; counted until dropped.
struct Held<'a> {
    counter: &'a AtomicU32,
    /// Requests held, this one included.
    count: u32,
}

impl<'a> Held<'a> {
    fn enter(counter: &'a AtomicU32) -> Self {
        let count = counter.fetch_add(1, Ordering::AcqRel) + 1;
        Held { counter, count }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The sandboxes of one machine in a cluster.
pub struct SandboxHost {
    config: ManagedConfig,
    runtime: Arc<dyn Runtime>,
    artifacts: ArtifactStore,
    control: ControlConn,
    /// `name@version` → the prepared function, made once even under concurrent requests.
    prepared: Mutex<HashMap<String, PreparedCell>>,
    sandboxes: RwLock<HashMap<String, Arc<ManagedSandbox>>>,
    logs: Mutex<HashMap<String, Arc<FunctionLogs>>>,
    /// Woken when creations end, for requests held until their sandbox exists.
    settled: Notify,
    /// The most recent sandbox ids whose creation failed or that were deleted, oldest first:
    /// a request held for one of them will never find it.
    gone: Mutex<VecDeque<(String, Option<String>)>>,
    held: AtomicU32,
    cpu: baton_runtime::resources::CpuMeter,
    state: Option<StateHooks>,
}

impl SandboxHost {
    /// A worker that runs sandboxes through `runtime` and answers to the control plane at
    /// `control` (an `http://host:port` URL).
    pub fn new(
        config: ManagedConfig,
        runtime: Arc<dyn Runtime>,
        artifacts: ArtifactStore,
        control: &str,
        state: Option<StateHooks>,
    ) -> anyhow::Result<Arc<Self>> {
        let control = control_conn(control, &ClientAuth::new(config.token.as_deref())?)?;
        Ok(Self::with_control(
            config, runtime, artifacts, control, state,
        ))
    }

    /// A worker that answers to the control plane through `control` (`baton up`: in the
    /// same process).
    pub fn with_control(
        config: ManagedConfig,
        runtime: Arc<dyn Runtime>,
        artifacts: ArtifactStore,
        control: ControlConn,
        state: Option<StateHooks>,
    ) -> Arc<Self> {
        Arc::new(SandboxHost {
            config,
            runtime,
            artifacts,
            control,
            prepared: Mutex::default(),
            sandboxes: RwLock::default(),
            logs: Mutex::default(),
            settled: Notify::new(),
            gone: Mutex::default(),
            held: AtomicU32::new(0),
            cpu: Default::default(),
            state,
        })
    }

    /// The worker's id.
    pub fn id(&self) -> &str {
        &self.config.id
    }

    /// Where the control plane reaches this worker.
    pub fn grpc_address(&self) -> &str {
        &self.config.grpc_address
    }

    /// Where gateways send invocations.
    pub fn data_address(&self) -> &str {
        &self.config.data_address
    }

    /// How many sandboxes exist.
    pub fn sandbox_count(&self) -> usize {
        self.sandboxes.read().unwrap().len()
    }

    /// Each sandbox's function and the memory it booked (its `limits.memory`).
    pub fn resident(&self) -> Vec<(String, u64)> {
        self.sandboxes
            .read()
            .unwrap()
            .values()
            .map(|s| (s.function.clone(), s.spec.limits.memory_bytes))
            .collect()
    }

    /// What `query.name` printed on this worker, as `query` asks.
    pub fn logs(&self, query: &baton_api::LogQuery) -> baton_api::LogEntries {
        use futures_util::StreamExt;
        match self.function_logs(query) {
            Some(logs) => {
                let name = query.name.clone();
                Box::pin(logs.query(query).map(move |line| line.entry(&name)))
            }
            None => Box::pin(futures_util::stream::empty()),
        }
    }

    /// The logs `query` reads: a follower waits for sandboxes not created yet, so it makes
    /// the function's logs; a one-off read makes nothing.
    fn function_logs(&self, query: &baton_api::LogQuery) -> Option<Arc<FunctionLogs>> {
        match query.follow {
            true => Some(self.logs_of(&query.name)),
            false => self.logs.lock().unwrap().get(&query.name).cloned(),
        }
    }

    fn logs_of(&self, name: &str) -> Arc<FunctionLogs> {
        self.logs
            .lock()
            .unwrap()
            .entry(name.to_owned())
            .or_insert_with(|| Arc::new(FunctionLogs::new(self.config.log_lines)))
            .clone()
    }

    /// Prepares `function` once per version: reads its spec, fetches its component when
    /// missing, compiles. Later calls for the same version share the result.
    /// Function versions prepared successfully (for `/metrics`: a benchmark waits on it
    /// rather than on time before it measures).
    fn prepared_count(&self) -> usize {
        let prepared = self.prepared.lock().unwrap();
        prepared
            .values()
            .filter(|cell| cell.get().is_some_and(Result::is_ok))
            .count()
    }

    /// Drops every prepared version of a removed function; its sandboxes (being deleted)
    /// hold it until they go.
    pub(crate) fn forget_function(&self, function: &str) {
        let prefix = format!("{function}@");
        self.prepared
            .lock()
            .unwrap()
            .retain(|key, _| !key.starts_with(&prefix));
    }

    async fn prepare(&self, function: &proto::Function) -> Result<PreparedFunction, String> {
        let key = format!("{}@{}", function.name, function.version);
        let cell = {
            let mut prepared = self.prepared.lock().unwrap();
            match prepared.get(&key) {
                Some(cell) => cell.clone(),
                None => {
                    // A new version: the older ones of this function are no longer needed.
                    let prefix = format!("{}@", function.name);
                    prepared.retain(|k, _| !k.starts_with(&prefix));
                    prepared.entry(key.clone()).or_default().clone()
                }
            }
        };
        let result = cell
            .get_or_init(|| async {
                let spec: FunctionSpec = serde_json::from_slice(&function.spec_json)
                    .map_err(|e| format!("unreadable function spec: {e}"))?;
                self.fetch_component(&spec).await?;
                let secrets = self.fetch_secrets(&spec).await?;
                let prepared = self
                    .runtime
                    .prepare(&spec, Some(&secrets))
                    .await
                    .map_err(|e| format!("preparing {}: {e:#}", spec.name))?;
                Ok((Arc::new(spec), prepared))
            })
            .await
            .clone();
        if result.is_err() {
            // Let a later request try again (the control plane may have been away).
            self.prepared.lock().unwrap().remove(&key);
        }
        result
    }

    /// The values of the secrets `spec` lists, from the control plane (never stored here).
    async fn fetch_secrets(&self, spec: &FunctionSpec) -> Result<baton_api::SecretValues, String> {
        if spec.secrets.is_empty() {
            return Ok(baton_api::SecretValues::default());
        }
        let mut request = Request::new(proto::SecretNames {
            names: spec.secrets.clone(),
        });
        request.set_timeout(Duration::from_secs(30));
        let values = self
            .control
            .clone()
            .get_secrets(request)
            .await
            .map_err(|s| format!("fetching the secrets of {}: {}", spec.name, s.message()))?
            .into_inner()
            .values;
        Ok(baton_api::SecretValues(values.into_iter().collect()))
    }

    async fn fetch_component(&self, spec: &FunctionSpec) -> Result<(), String> {
        let RuntimeSpec::Wasm { component } = &spec.runtime else {
            return Ok(());
        };
        if self.artifacts.path(component).exists() {
            return Ok(());
        }
        let mut request = Request::new(proto::ArtifactRef {
            digest: component.0.clone(),
        });
        request.set_timeout(Duration::from_secs(60));
        let bytes = self
            .control
            .clone()
            .get_artifact(request)
            .await
            .map_err(|s| format!("fetching component {}: {}", component.0, s.message()))?
            .into_inner()
            .component;
        let artifacts = self.artifacts.clone();
        let stored = tokio::task::spawn_blocking(move || artifacts.put(&bytes))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("storing component: {e}"))?;
        if &stored != component {
            return Err(format!(
                "component {} arrived with digest {}",
                component.0, stored.0
            ));
        }
        Ok(())
    }

    /// Creates the sandboxes of one placement; each either exists afterwards or is reported
    /// failed with the reason. Requests held for them go on either way.
    async fn create_placement(&self, placement: proto::Placement) -> proto::CreateSandboxesReply {
        let reply = self.create_placed(placement).await;
        // Also wakes the holds of the sandboxes just created.
        self.forget(
            reply
                .failed
                .iter()
                .map(|f| (f.sandbox_id.clone(), Some(f.message.clone()))),
        );
        reply
    }

    /// Remembers sandboxes as gone (with why their creation failed, or `None` when they
    /// were deleted) and ends the holds waiting for them.
    fn forget(&self, ids: impl Iterator<Item = (String, Option<String>)>) {
        let mut gone = self.gone.lock().unwrap();
        for entry in ids {
            if gone.len() == GONE_KEPT {
                gone.pop_front();
            }
            gone.push_back(entry);
        }
        drop(gone);
        self.settled.notify_waiters();
    }

    async fn create_placed(&self, placement: proto::Placement) -> proto::CreateSandboxesReply {
        let mut reply = proto::CreateSandboxesReply::default();
        let Some(function) = placement.function else {
            return reply;
        };
        let (spec, prepared) = match self.prepare(&function).await {
            Ok(ok) => ok,
            Err(message) => {
                reply.failed = placement
                    .sandbox_ids
                    .into_iter()
                    .map(|sandbox_id| proto::SandboxError {
                        sandbox_id,
                        message: message.clone(),
                    })
                    .collect();
                return reply;
            }
        };
        let logs = self.logs_of(&function.name);
        let results = futures_util::future::join_all(placement.sandbox_ids.into_iter().map(|id| {
            let (prepared, logs) = (prepared.clone(), logs.clone());
            async move {
                let created = prepared.create_sandbox(logs.sink(&id)).await;
                (id, created)
            }
        }))
        .await;
        let mut sandboxes = self.sandboxes.write().unwrap();
        for (id, result) in results {
            match result {
                Ok(sandbox) => {
                    sandboxes.insert(
                        id.clone(),
                        Arc::new(ManagedSandbox {
                            function: function.name.clone(),
                            version: function.version,
                            spec: spec.clone(),
                            sandbox,
                            in_flight: AtomicU32::new(0),
                            idle: Notify::new(),
                        }),
                    );
                    reply.created.push(id);
                }
                Err(error) => reply.failed.push(proto::SandboxError {
                    sandbox_id: id,
                    message: error.to_string(),
                }),
            }
        }
        reply
    }

    /// Sandbox `id`, waiting up to `hold` for it to be created when it is not there yet;
    /// `Err(Some(why))` when its creation failed, `Err(None)` when it is not here.
    async fn sandbox(
        &self,
        id: &str,
        hold: Duration,
    ) -> Result<Arc<ManagedSandbox>, Option<String>> {
        let find = || self.sandboxes.read().unwrap().get(id).cloned().ok_or(None);
        if let Ok(sandbox) = find() {
            return Ok(sandbox);
        }
        if hold.is_zero() {
            return Err(None);
        }
        // Given back on drop: also when the gateway hangs up during the hold.
        let held = Held::enter(&self.held);
        if held.count > MAX_HELD {
            return Err(None);
        }
        let deadline = tokio::time::Instant::now() + hold.min(MAX_HOLD);
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            if let Ok(sandbox) = find() {
                return Ok(sandbox);
            }
            if let Some((_, why)) = self.gone.lock().unwrap().iter().find(|(g, _)| g == id) {
                return Err(why.clone());
            }
            if tokio::time::timeout_at(deadline, settled).await.is_err() {
                return find();
            }
        }
    }

    /// Serves one invocation of sandbox `id`, holding it up to `hold` for the sandbox to be
    /// created.
    pub async fn invoke(
        &self,
        id: &str,
        hold: Duration,
        request: http::Request<Bytes>,
    ) -> http::Response<Full<Bytes>> {
        let sandbox = match self.sandbox(id, hold).await {
            Ok(sandbox) => sandbox,
            // The request waited for this sandbox: it gets the reason, as a cold start would.
            Err(Some(why)) => {
                return http::Response::builder()
                    .status(502)
                    .header("content-type", "text/plain; charset=utf-8")
                    .body(Full::new(Bytes::from(with_newline(why))))
                    .expect("static response");
            }
            Err(None) => {
                return http::Response::builder()
                    .status(404)
                    .header(SANDBOX_MISSING, "1")
                    .body(Full::new(Bytes::from(format!(
                        "no sandbox {id} on this worker\n"
                    ))))
                    .expect("static response");
            }
        };
        let result = {
            // Counted until the invocation ends, also when the gateway gives up on it.
            let _in_flight = InFlight::enter(&sandbox);
            sandbox.sandbox.invoke(request).await
        };
        match result {
            Ok(response) => response.map(Full::new),
            Err(error) => {
                let error = ApiError::from(error);
                http::Response::builder()
                    .status(error.kind.http_status())
                    .header("content-type", "text/plain; charset=utf-8")
                    .body(Full::new(Bytes::from(with_newline(error.message))))
                    .expect("status from a known kind")
            }
        }
    }

    /// Removes sandboxes from routing, then destroys each once its requests are done (or
    /// its function's timeout has passed).
    fn delete(&self, ids: &[String]) {
        let removed: Vec<Arc<ManagedSandbox>> = {
            let mut sandboxes = self.sandboxes.write().unwrap();
            ids.iter().filter_map(|id| sandboxes.remove(id)).collect()
        };
        self.forget(ids.iter().map(|id| (id.clone(), None)));
        for sandbox in removed {
            tokio::spawn(async move {
                let deadline = tokio::time::Instant::now() + sandbox.spec.limits.timeout();
                while sandbox.in_flight.load(Ordering::Acquire) > 0 {
                    let idle = sandbox.idle.notified();
                    if sandbox.in_flight.load(Ordering::Acquire) == 0 {
                        break;
                    }
                    if tokio::time::timeout_at(deadline, idle).await.is_err() {
                        break;
                    }
                }
                sandbox.sandbox.destroy().await;
            });
        }
    }
}

/// Binds a worker's two listeners, serves them, and registers; returns the host. The
/// addresses in `config` are replaced by the bound ones (so port 0 works).
pub async fn start(
    mut config: ManagedConfig,
    grpc_listen: SocketAddr,
    data_listen: SocketAddr,
    runtime: Arc<dyn Runtime>,
    artifacts: ArtifactStore,
    control: &str,
    state: Option<StateHooks>,
) -> anyhow::Result<Arc<SandboxHost>> {
    let grpc = tokio::net::TcpListener::bind(grpc_listen).await?;
    let data = tokio::net::TcpListener::bind(data_listen).await?;
    config.grpc_address = grpc.local_addr()?.to_string();
    config.data_address = data.local_addr()?.to_string();
    let host = SandboxHost::new(config, runtime, artifacts, control, state)?;
    let service = host.grpc_service();
    tokio::spawn(async move {
        let incoming = nodelay(grpc);
        if let Err(error) = tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(incoming)
            .await
        {
            tracing::error!(%error, "worker gRPC server stopped");
        }
    });
    tokio::spawn(host.clone().serve_data(data));
    tokio::spawn(host.clone().run());
    Ok(host)
}

/// Accepted connections with Nagle's algorithm off: the cluster protocol's small messages
/// (a sandbox created, an endpoint added) must not wait for delayed ACKs.
pub fn nodelay(
    listener: tokio::net::TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    tokio_stream::wrappers::TcpListenerStream::new(listener).map(|stream| {
        if let Ok(stream) = &stream {
            let _ = stream.set_nodelay(true);
        }
        stream
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use baton_api::{FunctionName, ProcessMode};
    use baton_runtime::fake::FakeRuntime;
    use http_body_util::BodyExt;

    /// A worker with the fake runtime (sandboxes take 50 ms to create) and no control plane.
    fn host(artifacts: &tempfile::TempDir) -> Arc<SandboxHost> {
        let config = ManagedConfig {
            id: "w".into(),
            grpc_address: "127.0.0.1:1".into(),
            data_address: "127.0.0.1:1".into(),
            cpu_cores: 1.0,
            memory_bytes: 1 << 30,
            log_lines: 10,
            token: None,
            state_address: String::new(),
        };
        let runtime = Arc::new(FakeRuntime {
            creation_delay: Duration::from_millis(50),
        });
        let store = ArtifactStore::open(artifacts.path()).unwrap();
        SandboxHost::new(config, runtime, store, "http://127.0.0.1:1", None).unwrap()
    }

    fn placement(id: &str, spec_json: Vec<u8>) -> proto::Placement {
        proto::Placement {
            function: Some(proto::Function {
                name: "f".into(),
                spec_json,
                version: 1,
            }),
            sandbox_ids: vec![id.into()],
        }
    }

    fn spec_json() -> Vec<u8> {
        let runtime = RuntimeSpec::Process {
            command: vec!["true".into()],
            mode: ProcessMode::Http,
            working_dir: None,
        };
        let spec = FunctionSpec::new(FunctionName::new("f").unwrap(), runtime);
        serde_json::to_vec(&spec).unwrap()
    }

    fn request() -> http::Request<Bytes> {
        http::Request::builder()
            .uri("/")
            .body(Bytes::from_static(b"hi"))
            .unwrap()
    }

    fn is_missing(response: &http::Response<Full<Bytes>>) -> bool {
        response.status() == 404 && response.headers().contains_key(SANDBOX_MISSING)
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_for_a_placed_sandbox_is_held_until_it_is_created() {
        let dir = tempfile::tempdir().unwrap();
        let host = host(&dir);
        // Without a hold, a sandbox that is not there yet is missing at once.
        assert!(is_missing(
            &host.invoke("s1", Duration::ZERO, request()).await
        ));
        let held = host.invoke("s1", Duration::from_secs(60), request());
        let create = host.create_placement(placement("s1", spec_json()));
        let (response, reply) = tokio::join!(held, create);
        assert_eq!(reply.created, ["s1"]);
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-baton-fake"], "f");
        assert_eq!(
            response.into_body().collect().await.unwrap().to_bytes(),
            "hi"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_request_gets_the_reason_its_creation_failed() {
        let dir = tempfile::tempdir().unwrap();
        let host = host(&dir);
        let held = host.invoke("s2", Duration::from_secs(60), request());
        let create = host.create_placement(placement("s2", b"not a spec".to_vec()));
        // Virtual time: the hold would last 60 s; the failure must end it well before.
        let within = tokio::time::timeout(Duration::from_secs(30), async {
            tokio::join!(held, create)
        });
        let (response, reply) = within.await.expect("the failure ended the hold");
        assert_eq!(reply.failed.len(), 1);
        assert_eq!(response.status(), 502);
        assert!(!is_missing(&response));
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert!(
            String::from_utf8_lossy(&body).contains("unreadable function spec"),
            "{body:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_hold_the_gateway_gives_up_on_is_not_counted_any_more() {
        let dir = tempfile::tempdir().unwrap();
        let host = host(&dir);
        let held = host.invoke("s4", Duration::from_secs(60), request());
        assert!(
            tokio::time::timeout(Duration::from_secs(1), held)
                .await
                .is_err()
        );
        // Otherwise abandoned holds would pile up to MAX_HELD and end every later hold.
        assert_eq!(host.held.load(Ordering::Acquire), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_held_for_a_deleted_sandbox_ends_as_missing() {
        let dir = tempfile::tempdir().unwrap();
        let host = host(&dir);
        let reply = host.create_placement(placement("s3", spec_json())).await;
        assert_eq!(reply.created, ["s3"]);
        // Scaled down before the gateway's first request reached it.
        host.delete(&["s3".to_owned()]);
        let held = host.invoke("s3", Duration::from_secs(60), request());
        let response = tokio::time::timeout(Duration::from_secs(30), held)
            .await
            .expect("a deleted sandbox is not waited for");
        assert!(is_missing(&response));
    }
}
