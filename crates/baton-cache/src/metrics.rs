//! The object cache's Prometheus metrics (`baton_objects_*`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct FunctionLabel {
    pub function: String,
}

/// Counters the cache keeps; gauges are set at each scrape from the cache itself.
#[derive(Clone)]
pub struct ObjectMetrics(Arc<MetricsInner>);

#[doc(hidden)]
pub struct MetricsInner {
    registry: Registry,
    pub(crate) hits: Counter,
    pub(crate) misses: Counter,
    pub(crate) read_bytes: Counter,
    pub(crate) written_bytes: Counter,
    pub(crate) store_reads: Counter,
    pub(crate) store_writes: Counter,
    pub(crate) evictions: Counter,
    pub(crate) flushed: Counter,
    pub(crate) flush_errors: Counter,
    pub(crate) flush_conflicts: Counter,
    pub(crate) refused_full: Counter,
    pub(crate) cached_bytes: Gauge,
    pub(crate) capacity_bytes: Gauge,
    pub(crate) dirty_bytes: Gauge,
    pub(crate) dirty_objects: Gauge,
    pub(crate) flush_lag: Gauge<f64, AtomicU64>,
    pub(crate) predicted_memory: Family<FunctionLabel, Gauge>,
    pub(crate) observed_memory: Family<FunctionLabel, Gauge>,
    pub(crate) booked_memory: Family<FunctionLabel, Gauge>,
}

impl std::ops::Deref for ObjectMetrics {
    type Target = MetricsInner;
    fn deref(&self) -> &MetricsInner {
        &self.0
    }
}

impl Default for ObjectMetrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("baton_objects");
        let inner = MetricsInner {
            hits: Counter::default(),
            misses: Counter::default(),
            read_bytes: Counter::default(),
            written_bytes: Counter::default(),
            store_reads: Counter::default(),
            store_writes: Counter::default(),
            evictions: Counter::default(),
            flushed: Counter::default(),
            flush_errors: Counter::default(),
            flush_conflicts: Counter::default(),
            refused_full: Counter::default(),
            cached_bytes: Gauge::default(),
            capacity_bytes: Gauge::default(),
            dirty_bytes: Gauge::default(),
            dirty_objects: Gauge::default(),
            flush_lag: Gauge::default(),
            predicted_memory: Family::default(),
            observed_memory: Family::default(),
            booked_memory: Family::default(),
            registry: Registry::default(),
        };
        let counters = [
            (
                "cache_hits",
                "Reads answered from memory (clean or dirty)",
                &inner.hits,
            ),
            (
                "cache_misses",
                "Reads that went to the store",
                &inner.misses,
            ),
            (
                "read_bytes",
                "Bytes of objects read by functions",
                &inner.read_bytes,
            ),
            (
                "written_bytes",
                "Bytes of objects written by functions",
                &inner.written_bytes,
            ),
            (
                "store_reads",
                "Objects fetched from the store",
                &inner.store_reads,
            ),
            (
                "store_writes",
                "Puts and deletes sent to the store (flushes included)",
                &inner.store_writes,
            ),
            (
                "cache_evictions",
                "Clean objects dropped from memory to make room",
                &inner.evictions,
            ),
            (
                "flushed",
                "Write-back objects written to the store",
                &inner.flushed,
            ),
            (
                "flush_errors",
                "Write-back flushes the store refused (retried)",
                &inner.flush_errors,
            ),
            (
                "flush_conflicts",
                "Write-back flushes that found the store's copy changed by another writer since this node knew it (the flushed write replaced it)",
                &inner.flush_conflicts,
            ),
            (
                "refused_full",
                "Write-back writes refused because the queue was full",
                &inner.refused_full,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        let gauges = [
            (
                "cached_bytes",
                "Bytes of clean objects in memory",
                &inner.cached_bytes,
            ),
            (
                "capacity_bytes",
                "What the clean cache may hold now",
                &inner.capacity_bytes,
            ),
            (
                "dirty_bytes",
                "Bytes acknowledged in write-back buckets, not yet in the store",
                &inner.dirty_bytes,
            ),
            (
                "dirty_objects",
                "Objects acknowledged in write-back buckets, not yet in the store",
                &inner.dirty_objects,
            ),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.clone());
        }
        registry.register(
            "flush_lag_seconds",
            "Age of the oldest write not yet in the store",
            inner.flush_lag.clone(),
        );
        let memory = [
            (
                "predicted_memory_bytes",
                "What a resident sandbox of the function is predicted to need (its booked limit until the model is mature)",
                &inner.predicted_memory,
            ),
            (
                "observed_memory_bytes",
                "The function's last observed peak memory (wasm linear memory)",
                &inner.observed_memory,
            ),
            (
                "booked_memory_bytes",
                "The function's booked memory limit",
                &inner.booked_memory,
            ),
        ];
        for (name, help, family) in memory {
            registry.register(name, help, family.clone());
        }
        ObjectMetrics(Arc::new(MetricsInner { registry, ..inner }))
    }
}

impl ObjectMetrics {
    /// Appends the metrics in Prometheus text form (without the closing `# EOF`).
    pub fn encode(&self, out: &mut String) -> std::fmt::Result {
        prometheus_client::encoding::text::encode_registry(out, &self.registry)
    }
}
