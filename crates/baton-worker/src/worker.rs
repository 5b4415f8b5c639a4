use crate::FunctionPool;
use baton_api::{ApiError, InvokeOutcome, Invoker, Replicas};
use baton_runtime::{FunctionLogs, Runtime};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// Worker settings.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How often idle and dead sandboxes are reaped and `scaling.min` restored. Default 1 s.
    pub reap_interval: Duration,
    /// Lines of output kept per function for `/system/logs`. Default 1000.
    pub log_lines: usize,
    /// How long a replaced or removed function's in-flight requests may finish. Default 30 s.
    pub close_grace: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            reap_interval: Duration::from_secs(1),
            log_lines: 1000,
            close_grace: Duration::from_secs(30),
        }
    }
}

/// Owns every function's sandboxes on this machine.
pub struct Worker {
    pub(crate) runtime: Arc<dyn Runtime>,
    pub(crate) pools: RwLock<HashMap<String, Arc<FunctionPool>>>,
    /// Logs outlive function versions, so an update does not lose what the old one printed.
    pub(crate) logs: Mutex<HashMap<String, Arc<FunctionLogs>>>,
    pub(crate) config: WorkerConfig,
}

impl Worker {
    /// A worker running sandboxes through `runtime`; call [`Worker::run_maintenance`] to reap.
    pub fn new(runtime: Arc<dyn Runtime>, config: WorkerConfig) -> Arc<Self> {
        Arc::new(Worker {
            runtime,
            pools: RwLock::default(),
            logs: Mutex::default(),
            config,
        })
    }

    pub(crate) fn pool(&self, name: &str) -> Option<Arc<FunctionPool>> {
        self.pools.read().unwrap().get(name).cloned()
    }

    pub(crate) fn logs_of(&self, name: &str) -> Arc<FunctionLogs> {
        let mut logs = self.logs.lock().unwrap();
        logs.entry(name.to_owned())
            .or_insert_with(|| Arc::new(FunctionLogs::new(self.config.log_lines)))
            .clone()
    }

    /// Sandbox counts of every function.
    pub fn all_replicas(&self) -> Vec<(String, Replicas, u32)> {
        let pools = self.pools.read().unwrap();
        pools
            .iter()
            .map(|(name, pool)| (name.clone(), pool.replicas(), pool.queued()))
            .collect()
    }

    /// Reaps idle and dead sandboxes and keeps `scaling.min` up, every `reap_interval`, until
    /// the worker is dropped.
    pub fn run_maintenance(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let worker = Arc::downgrade(self);
        let interval = self.config.reap_interval;
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                let Some(worker) = worker.upgrade() else {
                    return;
                };
                worker.maintain(Instant::now());
            }
        })
    }

    /// One maintenance pass.
    pub fn maintain(&self, now: Instant) {
        let pools: Vec<Arc<FunctionPool>> = self.pools.read().unwrap().values().cloned().collect();
        for pool in pools {
            let reaped = pool.reap(now);
            if !reaped.is_empty() {
                tracing::info!(function = %pool.spec().name, count = reaped.len(), "reaped idle or dead sandboxes");
            }
            for sandbox in reaped {
                tokio::spawn(async move { sandbox.destroy().await });
            }
            for _ in 0..pool.missing_for_min() {
                let pool = pool.clone();
                let deadline =
                    Instant::now() + pool.spec().limits.timeout().max(Duration::from_secs(10));
                tokio::spawn(async move {
                    if let Err(error) = pool.prewarm(deadline).await {
                        tracing::warn!(function = %pool.spec().name, %error, "could not start a minimum sandbox");
                    }
                });
            }
        }
    }
}

#[async_trait::async_trait]
impl Invoker for Worker {
    async fn invoke(
        &self,
        function: &str,
        request: http::Request<Bytes>,
    ) -> Result<InvokeOutcome, ApiError> {
        let pool = self
            .pool(function)
            .ok_or_else(|| ApiError::not_found(function))?;
        let deadline = Instant::now() + pool.spec().limits.timeout();
        let lease = pool.acquire(deadline).await?;
        let response = lease.sandbox.invoke(request).await?;
        Ok(InvokeOutcome {
            response,
            cold_start: lease.cold_start,
        })
    }

    fn max_body_bytes(&self, function: &str) -> Option<u64> {
        self.pools
            .read()
            .unwrap()
            .get(function)
            .map(|p| p.spec().limits.max_body_bytes)
    }
}
