//! `baton up` as the cluster in one process: the control plane, one managed worker and a
//! gateway, the same components as `baton control`, `baton worker` and `baton gateway`, wired
//! through in-process transports (the cluster protocol's messages without a socket, and
//! invocations called straight into the worker).

use async_trait::async_trait;
use baton_api::cluster_auth::{control_client, in_process};
use baton_api::data_plane::SANDBOX_MISSING;
use baton_api::{
    ApiError, DeployMode, DeployRequest, FunctionAdmin, FunctionStatus, LogEntries, LogQuery,
};
use baton_control::ControlPlane;
use baton_control::Store;
use baton_control::cluster::{ClusterConfig, open_control};
use baton_gateway::cluster::{
    ClusterGatewayConfig, ClusterInvoker, DataPlane, Forward, SandboxCall, SyncedAdmin,
};
use baton_runtime::{ArtifactStore, Runtime};
use baton_worker::managed::{ManagedConfig, SandboxHost};
use bytes::Bytes;
use http_body_util::BodyExt;
use std::sync::Arc;
use std::time::Duration;

/// The worker's address as the control plane knows it: not a socket.
const IN_PROCESS: &str = "in-process";

/// The running roles of a node.
pub struct OnePlatform {
    /// The gateway's invoker: routing, queueing, scale from zero.
    pub invoker: Arc<ClusterInvoker>,
    /// The admin API: the control plane, with logs read from the worker.
    pub admin: Arc<dyn FunctionAdmin>,
    /// The registry.
    pub control: Arc<ControlPlane>,
    /// The worker: its sandboxes.
    pub host: Arc<SandboxHost>,
    /// The cluster manager (its metrics).
    pub cluster: Arc<baton_control::cluster::Cluster>,
    /// The memory the worker offers its sandboxes.
    pub memory_bytes: u64,
}

/// Starts the control plane, the worker and the gateway over `store`, running sandboxes
/// through `runtime`; returns once the worker has registered.
pub async fn start(
    config: ClusterConfig,
    store: Arc<dyn Store>,
    runtime: Arc<dyn Runtime>,
    artifacts: ArtifactStore,
    secrets_key: baton_control::SecretsKey,
    log_lines: usize,
    memory_bytes: Option<u64>,
) -> anyhow::Result<OnePlatform> {
    let (cluster, control, server) = open_control(
        config,
        store,
        runtime.clone(),
        artifacts.clone(),
        secrets_key,
    )
    .await?;
    let control_transport = in_process(server);
    let offered = memory_bytes
        .or_else(baton_runtime::resources::memory_bytes)
        .unwrap_or(8 << 30);
    let host = SandboxHost::with_control(
        ManagedConfig {
            id: "local".into(),
            grpc_address: IN_PROCESS.into(),
            data_address: IN_PROCESS.into(),
            cpu_cores: std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
            memory_bytes: offered,
            log_lines,
            token: None,
            state_address: String::new(),
        },
        runtime,
        artifacts,
        control_client(control_transport.clone()),
        None,
    );
    cluster.connect_in_process(IN_PROCESS, in_process(host.grpc_service()));
    cluster.recover().await?;
    cluster.spawn_loops();
    tokio::spawn(host.clone().run());
    let invoker = ClusterInvoker::start_with(
        ClusterGatewayConfig {
            id: "local".into(),
            address: IN_PROCESS.into(),
            control: IN_PROCESS.into(),
            load_balancing: "least-in-flight".into(),
            metrics_interval: Duration::from_secs(1),
            auth: Default::default(),
        },
        control_client(control_transport),
        Arc::new(LocalDataPlane(host.clone())),
    )?;
    // Ready once the worker is registered and the gateway follows the control plane.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !(invoker.is_connected() && cluster.nodes().workers.iter().any(|w| w.alive)) {
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the node's worker did not register with its control plane"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let admin = Arc::new(SyncedAdmin::new(
        Arc::new(NodeAdmin {
            control: control.clone(),
            host: host.clone(),
        }),
        invoker.clone(),
    ));
    Ok(OnePlatform {
        invoker,
        admin,
        control,
        host,
        cluster,
        memory_bytes: offered,
    })
}

/// Invocations called straight into the worker of this process.
struct LocalDataPlane(Arc<SandboxHost>);

#[async_trait]
impl DataPlane for LocalDataPlane {
    async fn call(&self, call: SandboxCall<'_>) -> Result<http::Response<Bytes>, Forward> {
        let request = http::Request::from_parts(call.parts.clone(), call.body.clone());
        let hold = call.hold.unwrap_or(Duration::ZERO);
        let response = self.0.invoke(call.sandbox, hold, request).await;
        if response.headers().contains_key(SANDBOX_MISSING) {
            return Err(Forward::Missing);
        }
        let (parts, body) = response.into_parts();
        let body = match body.collect().await {
            Ok(body) => body.to_bytes(),
            Err(never) => match never {},
        };
        Ok(http::Response::from_parts(parts, body))
    }
}

/// The control plane's admin API, with logs read from the worker in this process.
struct NodeAdmin {
    control: Arc<ControlPlane>,
    host: Arc<SandboxHost>,
}

#[async_trait]
impl FunctionAdmin for NodeAdmin {
    async fn deploy(
        &self,
        request: DeployRequest,
        upload: Option<Bytes>,
        mode: DeployMode,
    ) -> Result<FunctionStatus, ApiError> {
        self.control.deploy(request, upload, mode).await
    }

    async fn delete(&self, name: &str) -> Result<(), ApiError> {
        self.control.delete(name).await
    }

    async fn list(&self) -> Result<Vec<FunctionStatus>, ApiError> {
        self.control.list().await
    }

    async fn get(&self, name: &str) -> Result<FunctionStatus, ApiError> {
        self.control.get(name).await
    }

    async fn scale(&self, name: &str, replicas: u32) -> Result<(), ApiError> {
        self.control.scale(name, replicas).await
    }

    async fn logs(&self, query: LogQuery) -> Result<LogEntries, ApiError> {
        self.control.get(&query.name).await?;
        Ok(self.host.logs(&query))
    }

    async fn secrets(&self) -> Result<Vec<String>, ApiError> {
        self.control.secrets().await
    }

    async fn put_secret(
        &self,
        secret: baton_api::Secret,
        mode: DeployMode,
    ) -> Result<(), ApiError> {
        self.control.put_secret(secret, mode).await
    }

    async fn delete_secret(&self, name: &str) -> Result<(), ApiError> {
        self.control.delete_secret(name).await
    }
}
