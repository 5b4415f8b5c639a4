//! Read-your-deploy through a cluster gateway: a deploy or a removal is answered once this
//! gateway routes accordingly, so the client's next request through it sees the change (the
//! control plane's stream would bring it a moment later anyway).

use super::ClusterInvoker;
use async_trait::async_trait;
use baton_api::{
    ApiError, DeployMode, DeployRequest, FunctionAdmin, FunctionStatus, LogEntries, LogQuery,
};
use bytes::Bytes;
use std::sync::Arc;
use std::time::Duration;

/// Longest a deploy or a removal waits for the gateway to catch up; past it the answer goes
/// out anyway (the control plane has committed the change) and a warning is logged.
const SYNC_LIMIT: Duration = Duration::from_secs(10);

/// `admin` (the control plane, in-process or over gRPC), answering deploys and removals once
/// `gateway` has applied them.
pub struct SyncedAdmin {
    admin: Arc<dyn FunctionAdmin>,
    gateway: Arc<ClusterInvoker>,
}

impl SyncedAdmin {
    /// Wraps `admin` for the gateway `gateway`.
    pub fn new(admin: Arc<dyn FunctionAdmin>, gateway: Arc<ClusterInvoker>) -> Self {
        SyncedAdmin { admin, gateway }
    }
}

#[async_trait]
impl FunctionAdmin for SyncedAdmin {
    async fn deploy(
        &self,
        request: DeployRequest,
        upload: Option<Bytes>,
        mode: DeployMode,
    ) -> Result<FunctionStatus, ApiError> {
        let status = self.admin.deploy(request, upload, mode).await?;
        let version = Some(status.version);
        if !self.gateway.synced(&status.name, version, SYNC_LIMIT).await {
            tracing::warn!(function = %status.name, "deployed, but this gateway has not caught up yet");
        }
        Ok(status)
    }

    async fn delete(&self, name: &str) -> Result<(), ApiError> {
        self.admin.delete(name).await?;
        if !self.gateway.synced(name, None, SYNC_LIMIT).await {
            tracing::warn!(function = %name, "removed, but this gateway has not caught up yet");
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<FunctionStatus>, ApiError> {
        self.admin.list().await
    }

    async fn scale(&self, name: &str, replicas: u32) -> Result<(), ApiError> {
        self.admin.scale(name, replicas).await
    }

    async fn get(&self, name: &str) -> Result<FunctionStatus, ApiError> {
        self.admin.get(name).await
    }

    async fn logs(&self, query: LogQuery) -> Result<LogEntries, ApiError> {
        self.admin.logs(query).await
    }

    async fn nodes(&self) -> Result<Option<serde_json::Value>, ApiError> {
        self.admin.nodes().await
    }

    async fn secrets(&self) -> Result<Vec<String>, ApiError> {
        self.admin.secrets().await
    }

    async fn put_secret(
        &self,
        secret: baton_api::Secret,
        mode: DeployMode,
    ) -> Result<(), ApiError> {
        self.admin.put_secret(secret, mode).await
    }

    async fn delete_secret(&self, name: &str) -> Result<(), ApiError> {
        self.admin.delete_secret(name).await
    }
}
