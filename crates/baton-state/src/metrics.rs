use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use std::sync::Arc;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct PeerLabel {
    pub peer: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct ReasonLabel {
    pub reason: String,
}

/// The state agent's Prometheus metrics (`baton_state_*`).
#[derive(Clone)]
pub struct StateMetrics(Arc<MetricsInner>);

#[doc(hidden)]
pub struct MetricsInner {
    registry: Registry,
    pub(crate) local_ops: Counter,
    pub(crate) deltas_applied: Counter,
    pub(crate) sent_bytes: Family<PeerLabel, Counter>,
    pub(crate) sent_messages: Family<PeerLabel, Counter>,
    pub(crate) received_bytes: Counter,
    pub(crate) dropped_messages: Family<PeerLabel, Counter>,
    pub(crate) rejected: Family<ReasonLabel, Counter>,
    pub(crate) peers_connected: Gauge,
    pub(crate) peers: Gauge,
    pub(crate) objects: Gauge,
    pub(crate) state_bytes: Gauge,
    pub(crate) snapshots: Counter,
    pub(crate) lag: Histogram,
}

impl std::ops::Deref for StateMetrics {
    type Target = MetricsInner;
    fn deref(&self) -> &MetricsInner {
        &self.0
    }
}

impl Default for StateMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("baton_state");
        let inner = MetricsInner {
            local_ops: Counter::default(),
            deltas_applied: Counter::default(),
            sent_bytes: Family::default(),
            sent_messages: Family::default(),
            received_bytes: Counter::default(),
            dropped_messages: Family::default(),
            rejected: Family::default(),
            peers_connected: Gauge::default(),
            peers: Gauge::default(),
            objects: Gauge::default(),
            state_bytes: Gauge::default(),
            snapshots: Counter::default(),
            // 100 µs to ~30 s.
            lag: Histogram::new(exponential_buckets(0.0001, 2.0, 19)),
            registry: Registry::default(),
        };
        registry.register(
            "operations",
            "Operations applied on this node",
            inner.local_ops.clone(),
        );
        registry.register(
            "deltas_applied",
            "Updates from peers that changed an object here",
            inner.deltas_applied.clone(),
        );
        registry.register(
            "sent_bytes",
            "Bytes sent to each peer",
            inner.sent_bytes.clone(),
        );
        registry.register(
            "sent_messages",
            "Messages sent to each peer",
            inner.sent_messages.clone(),
        );
        registry.register(
            "received_bytes",
            "Bytes received from peers",
            inner.received_bytes.clone(),
        );
        registry.register(
            "dropped_messages",
            "Messages not sent because a peer was unreachable or slow (anti-entropy repairs them)",
            inner.dropped_messages.clone(),
        );
        registry.register(
            "rejected",
            "Peer connections or messages refused, by reason",
            inner.rejected.clone(),
        );
        registry.register(
            "peers_connected",
            "Peers this node currently ships to",
            inner.peers_connected.clone(),
        );
        registry.register(
            "peers",
            "Peers this node is told to ship to (its configuration, or the cluster's membership)",
            inner.peers.clone(),
        );
        registry.register(
            "objects",
            "Objects on this node, deleted ones included",
            inner.objects.clone(),
        );
        registry.register(
            "state_bytes",
            "Encoded size of every live object on this node, as of its last snapshot to the log (within 60 s)",
            inner.state_bytes.clone(),
        );
        registry.register(
            "snapshots",
            "Snapshots of the changed objects written to the log, each cutting the log before it",
            inner.snapshots.clone(),
        );
        registry.register(
            "replication_lag_seconds",
            "From an update's creation at its origin to its merge here (clocks of both nodes)",
            inner.lag.clone(),
        );
        StateMetrics(Arc::new(MetricsInner { registry, ..inner }))
    }
}

impl StateMetrics {
    pub(crate) fn rejected(&self, reason: &str) {
        self.rejected
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Appends the metrics in Prometheus text form (without the closing `# EOF`).
    pub fn encode(&self, out: &mut String) -> std::fmt::Result {
        prometheus_client::encoding::text::encode_registry(out, &self.registry)
    }
}
