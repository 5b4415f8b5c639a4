//! Registration and heartbeats: how the control plane learns the worker is alive, and
//! what it tells the worker back (re-register, state peers).

use super::SandboxHost;
use baton_api::cluster as proto;
use std::sync::Arc;
use std::time::Duration;
use tonic::{Request, Status};

impl SandboxHost {
    /// Registers with the control plane, then heartbeats until the process ends; registers
    /// again whenever the control plane does not know this worker. Dead sandboxes are
    /// reported and removed on the way.
    pub async fn run(self: Arc<Self>) {
        let mut interval = Duration::from_secs(1);
        let mut registered = false;
        let mut peers = Vec::new();
        loop {
            if !registered {
                match self.register().await {
                    Ok((every, members)) => {
                        interval = every;
                        self.learn_peers(&mut peers, members);
                        registered = true;
                        tracing::info!(worker = %self.config.id, "registered with the control plane");
                    }
                    Err(status) => {
                        tracing::warn!(worker = %self.config.id, error = %status.message(), "control plane unreachable; retrying");
                    }
                }
            } else {
                let beat = proto::Heartbeat {
                    id: self.config.id.clone(),
                    cpu_used: self.cpu.sample(),
                    memory_used: baton_runtime::resources::resident_bytes(),
                    sandboxes: self.sandbox_count() as u32,
                };
                let mut request = Request::new(beat);
                request.set_timeout(interval.max(Duration::from_millis(500)));
                match self.control.clone().worker_heartbeat(request).await {
                    Ok(reply) if !reply.get_ref().known => registered = false,
                    Ok(reply) => self.learn_peers(&mut peers, reply.into_inner().state_peers),
                    Err(status) => {
                        tracing::debug!(error = %status.message(), "heartbeat not delivered")
                    }
                }
                self.report_dead_sandboxes().await;
            }
            tokio::time::sleep(if registered {
                interval
            } else {
                Duration::from_millis(200)
            })
            .await;
        }
    }

    /// Hands the state agent its new peers when the control plane's list changed.
    fn learn_peers(&self, known: &mut Vec<String>, mut peers: Vec<String>) {
        peers.sort();
        if *known == peers {
            return;
        }
        tracing::info!(worker = %self.config.id, ?peers, "state peers changed");
        if let Some(state) = &self.state {
            (state.membership)(peers.clone());
        }
        *known = peers;
    }

    /// Registers; returns the heartbeat interval and the state peers.
    async fn register(&self) -> Result<(Duration, Vec<String>), Status> {
        let mut request = Request::new(proto::WorkerInfo {
            id: self.config.id.clone(),
            grpc_address: self.config.grpc_address.clone(),
            data_address: self.config.data_address.clone(),
            cpu_cores: self.config.cpu_cores,
            memory_bytes: self.config.memory_bytes,
            state_address: self.config.state_address.clone(),
        });
        request.set_timeout(Duration::from_secs(5));
        let reply = self.control.clone().register_worker(request).await?;
        let reply = reply.into_inner();
        Ok((
            Duration::from_millis(reply.heartbeat_interval_ms.max(10)),
            reply.state_peers,
        ))
    }

    async fn report_dead_sandboxes(&self) {
        let dead: Vec<String> = self
            .sandboxes
            .read()
            .unwrap()
            .iter()
            .filter(|(_, s)| !s.sandbox.is_alive())
            .map(|(id, _)| id.clone())
            .collect();
        for id in dead {
            tracing::warn!(sandbox = %id, "sandbox died");
            self.delete(std::slice::from_ref(&id));
            let mut request = Request::new(proto::Failure {
                worker_id: self.config.id.clone(),
                sandbox_id: id,
                reason: "sandbox died".into(),
            });
            request.set_timeout(Duration::from_secs(2));
            let _ = self.control.clone().report_failure(request).await;
        }
    }
}
