//! Rebuilding the picture after a control-plane restart: workers and gateways from the
//! store, sandboxes from the workers' own lists.

use super::{Cluster, Event, GatewayRecord, WorkerRecord};
use crate::Table;
use baton_api::GatewayId;
use std::sync::Arc;
use std::time::Instant;

impl Cluster {
    /// After a restart, once the registry is loaded: reads workers and gateways from the
    /// store, asks every worker what it runs and adopts it, then lets scaling resume.
    /// Returns how many sandboxes were adopted.
    pub async fn recover(self: &Arc<Self>) -> anyhow::Result<usize> {
        let started = Instant::now();
        let gateways = self.store.list(Table::Gateways).await?;
        let workers = self.store.list(Table::Workers).await?;
        for (id, bytes) in gateways {
            match serde_json::from_slice::<GatewayRecord>(&bytes) {
                Ok(record) => {
                    self.handle(Event::GatewayKnown {
                        id: GatewayId::from(id),
                        address: record.address,
                    });
                }
                Err(error) => {
                    tracing::error!(gateway = %id, %error, "skipping unreadable gateway record")
                }
            }
        }
        let mut listed = Vec::new();
        for (id, bytes) in workers {
            match serde_json::from_slice::<WorkerRecord>(&bytes) {
                Ok(record) => {
                    let worker = record.id.clone();
                    self.join(record, false)?;
                    let client = self.client(&worker).expect("joined above");
                    listed.push(async move { Self::list(&worker, client).await });
                }
                Err(error) => {
                    tracing::error!(worker = %id, %error, "skipping unreadable worker record")
                }
            }
        }
        let read = started.elapsed();
        let workers = listed.len();
        for event in futures_util::future::join_all(listed)
            .await
            .into_iter()
            .flatten()
        {
            self.handle(event);
        }
        self.handle(Event::Recovered);
        let (functions, adopted) = {
            let inner = self.inner.lock().unwrap();
            (
                inner.model.function_messages().len(),
                inner.model.sandbox_count(),
            )
        };
        tracing::info!(
            functions,
            workers,
            sandboxes = adopted,
            store_ms = read.as_secs_f64() * 1e3,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            "control plane recovered"
        );
        Ok(adopted)
    }
}
