//! The admin API in cluster mode: `/system/*` calls go to the control plane over gRPC.

use async_trait::async_trait;
use baton_api::cluster::{self as proto};
use baton_api::cluster_auth::{ClientAuth, ControlConn, control_conn};
use baton_api::{
    ApiError, DeployMode, DeployRequest, FunctionAdmin, FunctionStatus, LogEntries, LogQuery,
    Secret,
};
use bytes::Bytes;
use serde_json::json;
use std::time::Duration;

/// Deadline of an admin call (a deploy compiles the component on the control plane).
const ADMIN_TIMEOUT: Duration = Duration::from_secs(120);

/// Forwards the admin API to the control plane.
pub struct ClusterAdmin {
    control: ControlConn,
    /// For the workers, which gateways ask for logs.
    auth: ClientAuth,
}

impl ClusterAdmin {
    /// Talks to the control plane at `url`, sending the cluster token.
    pub fn new(url: &str, auth: &ClientAuth) -> anyhow::Result<Self> {
        Ok(ClusterAdmin {
            control: control_conn(url, auth)?,
            auth: auth.clone(),
        })
    }

    fn client(&self) -> ControlConn {
        self.control.clone()
    }
}

fn request<T>(message: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.set_timeout(ADMIN_TIMEOUT);
    request
}

fn status(json: &[u8]) -> Result<FunctionStatus, ApiError> {
    serde_json::from_slice(json)
        .map_err(|e| ApiError::internal(format!("unreadable status from the control plane: {e}")))
}

#[async_trait]
impl FunctionAdmin for ClusterAdmin {
    async fn deploy(
        &self,
        deployment: DeployRequest,
        upload: Option<Bytes>,
        mode: DeployMode,
    ) -> Result<FunctionStatus, ApiError> {
        let mode = match mode {
            DeployMode::Create => proto::DeployMode::Create,
            DeployMode::Update => proto::DeployMode::Update,
            DeployMode::Upsert => proto::DeployMode::Upsert,
        };
        let reply = self
            .client()
            .deploy(request(proto::DeployRequest {
                request_json: serde_json::to_vec(&deployment).expect("deployments serialize"),
                upload: upload.map(|b| b.to_vec()),
                mode: mode as i32,
            }))
            .await?;
        status(&reply.get_ref().json)
    }

    async fn delete(&self, name: &str) -> Result<(), ApiError> {
        self.client()
            .delete(request(proto::FunctionName { name: name.into() }))
            .await?;
        Ok(())
    }

    async fn list(&self) -> Result<Vec<FunctionStatus>, ApiError> {
        let reply = self
            .client()
            .list_functions(request(proto::Empty {}))
            .await?;
        reply.get_ref().json.iter().map(|j| status(j)).collect()
    }

    async fn scale(&self, name: &str, replicas: u32) -> Result<(), ApiError> {
        self.client()
            .scale(request(proto::ScaleRequest {
                function: name.into(),
                replicas,
                no_wait: true,
            }))
            .await?;
        Ok(())
    }

    async fn secrets(&self) -> Result<Vec<String>, ApiError> {
        let reply = self.client().list_secrets(request(proto::Empty {})).await?;
        Ok(reply.into_inner().names)
    }

    async fn put_secret(&self, secret: Secret, mode: DeployMode) -> Result<(), ApiError> {
        // Checked here too: the namespace does not travel.
        secret.validate().map_err(ApiError::bad_request)?;
        let mode = match mode {
            DeployMode::Create => proto::DeployMode::Create,
            DeployMode::Update => proto::DeployMode::Update,
            DeployMode::Upsert => proto::DeployMode::Upsert,
        };
        self.client()
            .put_secret(request(proto::SecretWrite {
                value: secret.bytes(),
                name: secret.name,
                mode: mode as i32,
            }))
            .await?;
        Ok(())
    }

    async fn delete_secret(&self, name: &str) -> Result<(), ApiError> {
        self.client()
            .delete_secret(request(proto::SecretNames {
                names: vec![name.to_owned()],
            }))
            .await?;
        Ok(())
    }

    async fn get(&self, name: &str) -> Result<FunctionStatus, ApiError> {
        let reply = self
            .client()
            .get_function(request(proto::FunctionName { name: name.into() }))
            .await?;
        status(&reply.get_ref().json)
    }

    async fn logs(&self, query: LogQuery) -> Result<LogEntries, ApiError> {
        // The function must exist; its output is on the workers.
        self.get(&query.name).await?;
        let nodes = self
            .client()
            .list_nodes(request(proto::Empty {}))
            .await?
            .into_inner();
        let workers = nodes
            .workers
            .into_iter()
            .filter(|w| w.alive && !w.grpc_address.is_empty())
            .map(|w| w.grpc_address)
            .collect();
        super::logs::gather(workers, &self.auth, &query).await
    }

    async fn nodes(&self) -> Result<Option<serde_json::Value>, ApiError> {
        let nodes = self
            .client()
            .list_nodes(request(proto::Empty {}))
            .await?
            .into_inner();
        let workers: Vec<_> = nodes
            .workers
            .iter()
            .map(|w| {
                json!({
                    "id": w.id, "address": w.data_address, "alive": w.alive,
                    "cpuCores": w.cpu_cores, "memoryBytes": w.memory_bytes,
                    "cpuUsed": w.cpu_used, "memoryUsed": w.memory_used,
                    "millisSinceHeartbeat": w.millis_since_heartbeat,
                    "sandboxes": w.sandboxes.iter()
                        .map(|s| json!({"id": s.id, "function": s.function}))
                        .collect::<Vec<_>>(),
                })
            })
            .collect();
        let gateways: Vec<_> = nodes
            .gateways
            .iter()
            .map(|g| json!({"id": g.id, "address": g.address, "connected": g.connected}))
            .collect();
        Ok(Some(
            json!({"mode": "cluster", "workers": workers, "gateways": gateways}),
        ))
    }
}
