//! The executor's RPCs to workers: creations in batches, deletions, preparation, listing
//! and probing. Each runs in its own task and reports back to the model as an event.

use super::{Cluster, Event, model::Running};
use baton_api::cluster::{self as proto, CreateSandboxes, SandboxIds};
use baton_api::cluster_auth::WorkerConn;
use baton_api::{SandboxId, WorkerId};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

/// How long a worker's sandbox list may take (adoption after a restart). A dead worker
/// refuses the connection at once; this bounds a live one that a loaded machine starves, whose
/// sandboxes would otherwise be replaced rather than adopted (2 s was too short there).
pub(super) const LIST_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a suspected worker has to answer before it is declared dead.
const PROBE_TIMEOUT: Duration = Duration::from_millis(500);

/// Creation calls in flight per worker, and placements per call.
const CREATIONS_IN_FLIGHT: usize = 4;
const PLACEMENTS_PER_CALL: usize = 512;

impl Cluster {
    /// Sends what is queued for one worker in batches, a few calls in flight, so a burst of
    /// placements becomes a few calls rather than one per sandbox.
    pub(super) async fn batch_creations(
        self: Arc<Self>,
        worker: WorkerId,
        client: WorkerConn,
        mut queue: mpsc::Receiver<proto::Placement>,
    ) {
        let in_flight = Arc::new(Semaphore::new(CREATIONS_IN_FLIGHT));
        while let Some(first) = queue.recv().await {
            let Ok(permit) = in_flight.clone().acquire_owned().await else {
                return;
            };
            let mut batch = vec![first];
            while batch.len() < PLACEMENTS_PER_CALL {
                match queue.try_recv() {
                    Ok(placement) => batch.push(placement),
                    Err(_) => break,
                }
            }
            let (cluster, worker, client) = (self.clone(), worker.clone(), client.clone());
            tokio::spawn(async move {
                let event = cluster.create_batch(worker, client, batch).await;
                cluster.handle(event);
                drop(permit);
            });
        }
    }

    /// One creation call; its outcome as the model's event.
    async fn create_batch(
        &self,
        worker: WorkerId,
        mut client: WorkerConn,
        batch: Vec<proto::Placement>,
    ) -> Event {
        let asked: Vec<SandboxId> = batch
            .iter()
            .flat_map(|p| p.sandbox_ids.iter().map(|id| SandboxId::from(id.as_str())))
            .collect();
        let mut request = tonic::Request::new(CreateSandboxes { placements: batch });
        request.set_timeout(self.config.worker_rpc_timeout);
        match client.create_sandboxes(request).await {
            Ok(reply) => {
                let reply = reply.into_inner();
                let mut failed: HashMap<String, String> = reply
                    .failed
                    .into_iter()
                    .map(|f| (f.sandbox_id, f.message))
                    .collect();
                let created: Vec<SandboxId> =
                    reply.created.into_iter().map(SandboxId::from).collect();
                let answered: HashSet<&SandboxId> = created.iter().collect();
                // An id neither created nor failed was lost on the way: a failure too.
                let failed = asked
                    .into_iter()
                    .filter(|id| !answered.contains(id))
                    .map(|id| {
                        let why = failed
                            .remove(id.as_str())
                            .unwrap_or_else(|| "the worker did not answer for it".into());
                        (id, why)
                    })
                    .collect();
                Event::Created {
                    worker,
                    created,
                    failed,
                }
            }
            Err(status) => Event::Created {
                worker,
                created: Vec::new(),
                failed: asked
                    .into_iter()
                    .map(|id| (id, status.message().to_owned()))
                    .collect(),
            },
        }
    }

    /// Asks a worker to delete sandboxes (it drains them first); failures are logged, as
    /// a dead worker's sandboxes are gone anyway.
    pub(super) fn delete_on(&self, worker: WorkerId, mut client: WorkerConn, ids: Vec<SandboxId>) {
        let timeout = self.config.worker_rpc_timeout;
        tokio::spawn(async move {
            let ids = ids.into_iter().map(SandboxId::into_string).collect();
            let mut request = tonic::Request::new(SandboxIds { ids });
            request.set_timeout(timeout);
            if let Err(status) = client.delete_sandboxes(request).await {
                tracing::warn!(%worker, error = %status.message(), "could not delete sandboxes");
            }
        });
    }

    /// Asks a worker to fetch and compile functions, one after another, in the background.
    pub(super) fn prepare_on(
        &self,
        worker: WorkerId,
        mut client: WorkerConn,
        functions: Vec<proto::Function>,
    ) {
        let timeout = self.config.worker_rpc_timeout;
        tokio::spawn(async move {
            for function in functions {
                let name = function.name.clone();
                let mut request = tonic::Request::new(function);
                request.set_timeout(timeout);
                if let Err(status) = client.prepare(request).await {
                    tracing::warn!(%worker, function = %name, error = %status.message(), "a worker could not prepare a function");
                    break;
                }
            }
        });
    }

    /// Tells `worker` that `function` was removed (best effort: a worker that misses it keeps
    /// the prepared function until it restarts or the function is deployed again).
    pub(super) fn forget_on(&self, worker: WorkerId, mut client: WorkerConn, function: String) {
        let timeout = self.config.worker_rpc_timeout;
        tokio::spawn(async move {
            let mut request = tonic::Request::new(proto::FunctionName {
                name: function.clone(),
            });
            request.set_timeout(timeout);
            if let Err(status) = client.forget(request).await {
                tracing::debug!(%worker, %function, error = %status.message(), "a worker did not take a removal");
            }
        });
    }

    /// What `worker` runs, for adoption; `None` (logged) when it does not answer.
    pub(super) async fn list(worker: &WorkerId, mut client: WorkerConn) -> Option<Event> {
        let mut request = tonic::Request::new(proto::Empty {});
        request.set_timeout(LIST_TIMEOUT);
        match client.list_sandboxes(request).await {
            Ok(reply) => Some(Event::Listed {
                worker: worker.clone(),
                sandboxes: reply
                    .into_inner()
                    .sandboxes
                    .into_iter()
                    .map(|s| Running {
                        id: SandboxId::from(s.id),
                        function: s.function,
                        version: s.version,
                    })
                    .collect(),
            }),
            Err(status) => {
                tracing::warn!(%worker, error = %status.message(), "could not list the worker's sandboxes; it is adopted when it registers again");
                None
            }
        }
    }

    /// Lists `worker` in the background and adopts what it runs.
    pub(super) fn list_on(self: &Arc<Self>, worker: WorkerId, client: WorkerConn) {
        let cluster = self.clone();
        tokio::spawn(async move {
            if let Some(event) = Self::list(&worker, client).await {
                cluster.handle(event);
            }
        });
    }

    /// Checks at once whether a suspected worker answers; takes it out if not.
    pub(super) fn probe(
        self: &Arc<Self>,
        worker: WorkerId,
        mut client: WorkerConn,
        reason: String,
    ) {
        let cluster = self.clone();
        tokio::spawn(async move {
            let mut request = tonic::Request::new(proto::Empty {});
            request.set_timeout(PROBE_TIMEOUT);
            if let Err(status) = client.list_sandboxes(request).await {
                let reason = format!(
                    "{reason}; and it did not answer the control plane: {}",
                    status.message()
                );
                cluster.handle(Event::WorkerDead { worker, reason });
            }
        });
    }
}
