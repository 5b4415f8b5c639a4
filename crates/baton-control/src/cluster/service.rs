//! The control plane's gRPC service: the registry's admin API for gateways, registration
//! and heartbeats for workers, update streams and load reports for gateways.

use super::{Cluster, Event};
use crate::ControlPlane;
use baton_api::cluster::control_server::{Control, ControlServer};
use baton_api::cluster::{self as proto, GatewayUpdate};
use baton_api::cluster_auth::MAX_MESSAGE_BYTES;
use baton_api::{ApiError, DeployMode, DeployRequest, FunctionAdmin};
use baton_runtime::ArtifactStore;
use bytes::Bytes;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

/// Longest a manual `Scale` waits.
const SCALE_DEADLINE: Duration = Duration::from_secs(60);

/// Serves [`Control`] over a registry and a cluster.
pub struct ControlService {
    registry: Arc<ControlPlane>,
    cluster: Arc<Cluster>,
    artifacts: ArtifactStore,
}

/// The control plane of a cluster, opened: the cluster manager over `store`, checking
/// components with `validator`, and the registry whose host it is; then the gRPC service of
/// both (served on a socket by `baton control`, called in-process by `baton up`).
pub async fn open_control(
    config: super::ClusterConfig,
    store: Arc<dyn crate::Store>,
    validator: Arc<dyn baton_runtime::Runtime>,
    artifacts: ArtifactStore,
    secrets_key: crate::SecretsKey,
) -> anyhow::Result<(
    Arc<Cluster>,
    Arc<ControlPlane>,
    ControlServer<ControlService>,
)> {
    let cluster = Cluster::new(config, store.clone(), validator)?;
    let registry = Arc::new(
        ControlPlane::open(
            store,
            Arc::new(super::ClusterHost(cluster.clone())),
            artifacts.clone(),
            secrets_key,
        )
        .await?,
    );
    let server = ControlServer::new(ControlService::new(
        registry.clone(),
        cluster.clone(),
        artifacts,
    ))
    .max_decoding_message_size(MAX_MESSAGE_BYTES)
    .max_encoding_message_size(MAX_MESSAGE_BYTES);
    Ok((cluster, registry, server))
}

impl ControlService {
    /// The service for `registry`, whose host is `cluster`.
    pub fn new(
        registry: Arc<ControlPlane>,
        cluster: Arc<Cluster>,
        artifacts: ArtifactStore,
    ) -> Self {
        ControlService {
            registry,
            cluster,
            artifacts,
        }
    }
}

fn status_json(status: &baton_api::FunctionStatus) -> Vec<u8> {
    serde_json::to_vec(status).expect("statuses serialize")
}

fn internal(error: impl std::fmt::Display) -> Status {
    Status::internal(error.to_string())
}

#[tonic::async_trait]
impl Control for ControlService {
    async fn deploy(
        &self,
        request: Request<proto::DeployRequest>,
    ) -> Result<Response<proto::FunctionStatusJson>, Status> {
        let request = request.into_inner();
        let deployment: DeployRequest = serde_json::from_slice(&request.request_json)
            .map_err(|e| ApiError::bad_request(format!("invalid deployment JSON: {e}")))?;
        let mode = match proto::DeployMode::try_from(request.mode) {
            Ok(proto::DeployMode::Create) => DeployMode::Create,
            Ok(proto::DeployMode::Update) => DeployMode::Update,
            _ => DeployMode::Upsert,
        };
        let status = self
            .registry
            .deploy(deployment, request.upload.map(Bytes::from), mode)
            .await?;
        Ok(Response::new(proto::FunctionStatusJson {
            json: status_json(&status),
        }))
    }

    async fn delete(
        &self,
        request: Request<proto::FunctionName>,
    ) -> Result<Response<proto::Empty>, Status> {
        self.registry.delete(&request.into_inner().name).await?;
        Ok(Response::new(proto::Empty {}))
    }

    async fn list_functions(
        &self,
        _: Request<proto::Empty>,
    ) -> Result<Response<proto::FunctionStatusList>, Status> {
        let json = self
            .registry
            .list()
            .await?
            .iter()
            .map(status_json)
            .collect();
        Ok(Response::new(proto::FunctionStatusList { json }))
    }

    async fn get_function(
        &self,
        request: Request<proto::FunctionName>,
    ) -> Result<Response<proto::FunctionStatusJson>, Status> {
        let status = self.registry.get(&request.into_inner().name).await?;
        Ok(Response::new(proto::FunctionStatusJson {
            json: status_json(&status),
        }))
    }

    async fn list_secrets(
        &self,
        _request: Request<proto::Empty>,
    ) -> Result<Response<proto::SecretNames>, Status> {
        let names = self.registry.secrets().await?;
        Ok(Response::new(proto::SecretNames { names }))
    }

    async fn put_secret(
        &self,
        request: Request<proto::SecretWrite>,
    ) -> Result<Response<proto::Empty>, Status> {
        let write = request.into_inner();
        let mode = match proto::DeployMode::try_from(write.mode) {
            Ok(proto::DeployMode::Create) => DeployMode::Create,
            Ok(proto::DeployMode::Update) => DeployMode::Update,
            _ => DeployMode::Upsert,
        };
        let secret = baton_api::Secret {
            name: write.name,
            raw_value: Some(write.value),
            ..Default::default()
        };
        self.registry.put_secret(secret, mode).await?;
        Ok(Response::new(proto::Empty {}))
    }

    async fn delete_secret(
        &self,
        request: Request<proto::SecretNames>,
    ) -> Result<Response<proto::Empty>, Status> {
        for name in request.into_inner().names {
            self.registry.delete_secret(&name).await?;
        }
        Ok(Response::new(proto::Empty {}))
    }

    async fn get_secrets(
        &self,
        request: Request<proto::SecretNames>,
    ) -> Result<Response<proto::SecretValues>, Status> {
        let values = self
            .registry
            .secret_values(&request.into_inner().names)
            .await?;
        Ok(Response::new(proto::SecretValues {
            values: values.0.into_iter().collect(),
        }))
    }

    async fn get_artifact(
        &self,
        request: Request<proto::ArtifactRef>,
    ) -> Result<Response<proto::Artifact>, Status> {
        let digest = request.into_inner().digest;
        if digest.len() != 64 || !digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Status::invalid_argument(format!(
                "{digest:?} is not a sha256 digest"
            )));
        }
        let path = self
            .artifacts
            .path(&baton_api::ArtifactDigest(digest.clone()));
        let component = tokio::fs::read(&path)
            .await
            .map_err(|e| Status::not_found(format!("artifact {digest}: {e}")))?;
        Ok(Response::new(proto::Artifact { component }))
    }

    async fn register_worker(
        &self,
        request: Request<proto::WorkerInfo>,
    ) -> Result<Response<proto::RegisterWorkerReply>, Status> {
        let info = request.into_inner();
        let id = info.id.clone();
        self.cluster
            .register_worker(info)
            .await
            .map_err(|e| Status::invalid_argument(format!("{e:#}")))?;
        Ok(Response::new(proto::RegisterWorkerReply {
            heartbeat_interval_ms: self.cluster.config.heartbeat_interval.as_millis() as u64,
            state_peers: self.cluster.state_peers(&id),
        }))
    }

    async fn worker_heartbeat(
        &self,
        request: Request<proto::Heartbeat>,
    ) -> Result<Response<proto::HeartbeatReply>, Status> {
        let beat = request.into_inner();
        let known = self.cluster.heartbeat(&beat);
        let state_peers = match known {
            true => self.cluster.state_peers(&beat.id),
            false => Vec::new(),
        };
        Ok(Response::new(proto::HeartbeatReply { known, state_peers }))
    }

    type RegisterGatewayStream = Pin<Box<dyn Stream<Item = Result<GatewayUpdate, Status>> + Send>>;

    async fn register_gateway(
        &self,
        request: Request<proto::GatewayInfo>,
    ) -> Result<Response<Self::RegisterGatewayStream>, Status> {
        let info = request.into_inner();
        if info.id.is_empty() {
            return Err(Status::invalid_argument("a gateway needs an id"));
        }
        let rx = self
            .cluster
            .connect_gateway(info.id.into(), info.address)
            .await
            .map_err(internal)?;
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn report_metrics(
        &self,
        request: Request<proto::GatewayMetrics>,
    ) -> Result<Response<proto::Empty>, Status> {
        let metrics = request.into_inner();
        self.cluster.handle(Event::Load {
            gateway: metrics.gateway_id.into(),
            loads: metrics.load,
        });
        Ok(Response::new(proto::Empty {}))
    }

    async fn request_scale_from_zero(
        &self,
        request: Request<proto::ScaleFromZero>,
    ) -> Result<Response<proto::Placed>, Status> {
        let function = request.into_inner().function;
        let Some(endpoints) = self.cluster.scale_from_zero(&function) else {
            return Err(ApiError::not_found(&function).into());
        };
        Ok(Response::new(proto::Placed { endpoints }))
    }

    async fn report_failure(
        &self,
        request: Request<proto::Failure>,
    ) -> Result<Response<proto::Empty>, Status> {
        let failure = request.into_inner();
        let worker = failure.worker_id.into();
        self.cluster.handle(match failure.sandbox_id.is_empty() {
            true => Event::Unreachable {
                worker,
                reason: failure.reason,
            },
            false => Event::SandboxFailed {
                worker,
                sandbox: failure.sandbox_id.into(),
            },
        });
        Ok(Response::new(proto::Empty {}))
    }

    async fn list_nodes(&self, _: Request<proto::Empty>) -> Result<Response<proto::Nodes>, Status> {
        Ok(Response::new(self.cluster.nodes()))
    }

    async fn scale(
        &self,
        request: Request<proto::ScaleRequest>,
    ) -> Result<Response<proto::ScaleReply>, Status> {
        let request = request.into_inner();
        let deadline = match request.no_wait {
            true => Instant::now(),
            false => Instant::now() + SCALE_DEADLINE,
        };
        let ready = self
            .cluster
            .scale_to(&request.function, request.replicas, deadline)
            .await
            .ok_or_else(|| ApiError::not_found(&request.function))?;
        Ok(Response::new(proto::ScaleReply { ready }))
    }
}
