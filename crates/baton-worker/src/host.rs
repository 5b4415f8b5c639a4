//! The worker as the control plane sees it.

use crate::{FunctionPool, Worker};
use async_trait::async_trait;
use baton_api::{
    ApiError, FunctionHost, FunctionSpec, LogEntries, LogQuery, PreparedHandle, Replicas,
};
use baton_runtime::Prepared;
use futures_util::StreamExt;
use std::sync::Arc;

#[async_trait]
impl FunctionHost for Worker {
    async fn prepare(&self, spec: &FunctionSpec) -> Result<PreparedHandle, ApiError> {
        let prepared = self
            .runtime
            .prepare(spec)
            .await
            .map_err(|e| ApiError::bad_request(format!("{e:#}")))?;
        Ok(Box::new(prepared))
    }

    async fn activate(&self, spec: FunctionSpec, _version: u64, prepared: PreparedHandle) {
        let prepared = *prepared
            .downcast::<Arc<dyn Prepared>>()
            .expect("a handle from Worker::prepare");
        let name = spec.name.as_str().to_owned();
        let pool = FunctionPool::new(spec, prepared, self.logs_of(&name));
        let old = self.pools.write().unwrap().insert(name, pool.clone());
        if let Some(old) = old {
            self.retire(old);
        }
        // Start `scaling.min` sandboxes now rather than at the next maintenance pass.
        for _ in 0..pool.missing_for_min() {
            let pool = pool.clone();
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            tokio::spawn(async move {
                if let Err(error) = pool.prewarm(deadline).await {
                    tracing::warn!(function = %pool.spec().name, %error, "could not start a minimum sandbox");
                }
            });
        }
    }

    async fn deactivate(&self, name: &str) {
        let old = self.pools.write().unwrap().remove(name);
        if let Some(old) = old {
            self.retire(old);
        }
        self.logs.lock().unwrap().remove(name);
    }

    fn replicas(&self, name: &str) -> Replicas {
        self.pool(name).map(|p| p.replicas()).unwrap_or_default()
    }

    fn logs(&self, query: &LogQuery) -> LogEntries {
        // A follower waits for sandboxes not created yet; a one-off read makes nothing.
        let logs = match query.follow {
            true => self.logs_of(&query.name),
            false => match self.logs.lock().unwrap().get(&query.name).cloned() {
                Some(logs) => logs,
                None => return Box::pin(futures_util::stream::empty()),
            },
        };
        let name = query.name.clone();
        Box::pin(logs.query(query).map(move |line| line.entry(&name)))
    }
}

impl Worker {
    /// Lets a replaced pool finish its in-flight requests, then destroys its sandboxes.
    fn retire(&self, pool: Arc<FunctionPool>) {
        let grace = self.config.close_grace;
        tokio::spawn(async move {
            for sandbox in pool.close(grace).await {
                sandbox.destroy().await;
            }
        });
    }
}
