//! The `[objects]` section of the node config and the start of the node's objects.

use anyhow::Context;
use baton_cache::{ObjectMetrics, Objects, ObjectsConfig, StoreConfig};
use serde::Deserialize;
use std::path::Path;
use std::time::Duration;

/// The section as written; every key optional, unknown keys refused.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ObjectsSection {
    enabled: Option<bool>,
    /// `local` (default), `s3` or `memory`; env `BATON_OBJECTS_STORE`.
    store: Option<String>,
    /// The local store's directory (default `<data>/objects`).
    root: Option<String>,
    /// S3: the server (`http://127.0.0.1:9000`; empty for AWS); env `BATON_OBJECTS_S3_ENDPOINT`.
    s3_endpoint: Option<String>,
    /// S3: the server's bucket that holds every Baton bucket; env `BATON_OBJECTS_S3_BUCKET`.
    s3_bucket: Option<String>,
    s3_region: Option<String>,
    /// S3 credentials; unset, `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY` are read.
    s3_access_key_id: Option<String>,
    s3_secret_access_key: Option<String>,
    /// Memory for clean objects (`256Mi`).
    cache: Option<String>,
    /// The largest object (`64Mi`).
    max_object: Option<String>,
    /// Write-back bytes not yet in the store, at most (`256Mi`).
    max_dirty: Option<String>,
    /// The longest a write-back object waits for the flusher (`1s`).
    flush_interval: Option<String>,
    /// Check clean copies older than this against the store (when others write it too).
    revalidate_after: Option<String>,
    /// Write-back buckets: `namespace/bucket`, `namespace/*` or `*`.
    write_back: Option<Vec<String>>,
    /// Added to every store call: a remote store for benchmarks (`20ms`).
    latency: Option<String>,
}

/// The node's objects settings.
#[derive(Debug, Clone)]
pub struct ObjectsSettings {
    pub enabled: bool,
    pub store: StoreConfig,
    pub cache: ObjectsConfig,
    pub latency: Duration,
}

fn bytes(text: &Option<String>, key: &str, default: u64) -> anyhow::Result<u64> {
    match text {
        Some(text) => baton_api::parse_memory(text).map_err(|e| anyhow::anyhow!("{key}: {e}")),
        None => Ok(default),
    }
}

fn env_or(var: &str, file: &Option<String>) -> Option<String> {
    std::env::var(var)
        .ok()
        .filter(|v| !v.is_empty())
        .or_else(|| file.clone())
}

impl ObjectsSettings {
    /// Resolves the section (and its environment variables) for a node whose data lives in
    /// `data`.
    pub(crate) fn resolve(file: &ObjectsSection, data: &Path) -> anyhow::Result<Self> {
        let store = match env_or("BATON_OBJECTS_STORE", &file.store)
            .as_deref()
            .unwrap_or("local")
        {
            "local" => StoreConfig::Local {
                root: file
                    .root
                    .as_ref()
                    .map_or_else(|| data.join("objects"), Into::into),
            },
            "s3" => StoreConfig::S3 {
                endpoint: env_or("BATON_OBJECTS_S3_ENDPOINT", &file.s3_endpoint),
                bucket: env_or("BATON_OBJECTS_S3_BUCKET", &file.s3_bucket).context(
                    "objects.store = \"s3\" needs objects.s3_bucket (or BATON_OBJECTS_S3_BUCKET)",
                )?,
                region: file.s3_region.clone(),
                access_key_id: file.s3_access_key_id.clone(),
                secret_access_key: file.s3_secret_access_key.clone(),
            },
            "memory" => StoreConfig::Memory,
            other => anyhow::bail!("objects.store {other:?}: expected local, s3 or memory"),
        };
        let defaults = ObjectsConfig::default();
        let duration = |text: &Option<String>, key: &str| -> anyhow::Result<Option<Duration>> {
            text.as_deref()
                .map(|t| crate::config::duration(t, key))
                .transpose()
        };
        let flush_interval = duration(&file.flush_interval, "objects.flush_interval")?
            .unwrap_or(defaults.flush_interval);
        if flush_interval.is_zero() {
            anyhow::bail!("objects.flush_interval must be more than 0");
        }
        let cache = ObjectsConfig {
            capacity_bytes: bytes(&file.cache, "objects.cache", defaults.capacity_bytes)?,
            max_object_bytes: bytes(
                &file.max_object,
                "objects.max_object",
                defaults.max_object_bytes,
            )?,
            max_dirty_bytes: bytes(
                &file.max_dirty,
                "objects.max_dirty",
                defaults.max_dirty_bytes,
            )?,
            flush_interval,
            revalidate_after: duration(&file.revalidate_after, "objects.revalidate_after")?,
            write_back: file.write_back.clone().unwrap_or_default(),
        };
        // Checked now, so a bad entry stops the node at start with its name.
        baton_cache::write_back::WriteBackRules::parse(&cache.write_back)?;
        Ok(ObjectsSettings {
            enabled: file.enabled.unwrap_or(true),
            store,
            cache,
            latency: duration(&file.latency, "objects.latency")?.unwrap_or_default(),
        })
    }

    /// Opens the store and the cache (taking back unflushed writes from the pending log in
    /// `data`).
    pub(crate) fn start(&self, data: &Path) -> anyhow::Result<Objects> {
        let store = baton_cache::store::open(&self.store, self.latency)
            .context("opening the object store")?;
        Objects::open(
            store,
            &data.join("objects-pending.redb"),
            self.cache.clone(),
            ObjectMetrics::default(),
        )
        .context("opening the write-back log (is another baton using this data directory?)")
    }
}

/// The `[objects]` section of a cluster role's `--config` file (the roles read their own
/// sections as flags; this one is typed, as on a node). No file: the defaults.
pub(crate) fn section_of(config: Option<&Path>) -> anyhow::Result<ObjectsSection> {
    let Some(path) = config else {
        return Ok(ObjectsSection::default());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the config file {}", path.display()))?;
    let mut table: toml::Table =
        toml::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    match table.remove("objects") {
        Some(section) => section
            .try_into()
            .with_context(|| format!("{}: [objects]", path.display())),
        None => Ok(ObjectsSection::default()),
    }
}

/// Keeps the cache's capacity at what the workers' sandboxes are predicted to leave of their
/// memory `budget` (never above the configured size): when sandboxes are expected to need
/// more, clean objects go first and dirty ones are flushed sooner. Every 250 ms, until the
/// process ends. `hosts`: the workers of this process, which share its objects.
pub(crate) async fn elastic(
    objects: Objects,
    hosts: Vec<std::sync::Arc<baton_worker::managed::SandboxHost>>,
    budget: u64,
    ceiling: u64,
) {
    let predictions = objects.predictions().clone();
    let mut last = ceiling;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tick.tick().await;
        let predicted: u64 = hosts
            .iter()
            .flat_map(|host| host.resident())
            .map(|(function, booked)| predictions.resident(&function, booked))
            .sum();
        let room = baton_cache::prediction::elastic_capacity(budget, predicted, ceiling);
        let dirty = objects.dirty_bytes();
        if dirty > room {
            objects.flush_soon();
        }
        let capacity = room.saturating_sub(dirty);
        if capacity != last {
            tracing::debug!(capacity, predicted, budget, "object cache resized");
            objects.set_capacity(capacity);
            last = capacity;
        }
    }
}

/// Flushes write-back objects as the process stops, for 10 s at most: what does not make it
/// stays in the pending log and is flushed at the next start.
pub(crate) async fn flush_at_shutdown(objects: &Objects) {
    let report = objects.shutdown(Duration::from_secs(10)).await;
    tracing::info!(
        flushed = report.flushed,
        left_in_log = report.remaining,
        "write-back objects flushed"
    );
}

/// Renders the objects' metrics, refreshing their gauges.
pub(crate) fn metrics(objects: Objects) -> baton_gateway::MetricsSource {
    std::sync::Arc::new(move |out: &mut String| {
        objects.stats();
        objects.metrics().encode(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_resolves_with_defaults_and_refuses_nonsense() {
        let data = Path::new("/data");
        let plain = ObjectsSettings::resolve(&ObjectsSection::default(), data).unwrap();
        assert!(plain.enabled);
        assert_eq!(
            plain.store,
            StoreConfig::Local {
                root: "/data/objects".into()
            }
        );
        let file: ObjectsSection = toml::from_str(
            r#"
            store = "s3"
            s3_endpoint = "http://127.0.0.1:9000"
            s3_bucket = "baton"
            cache = "1Gi"
            flush_interval = "250ms"
            write_back = ["app/*"]
            "#,
        )
        .unwrap();
        let s3 = ObjectsSettings::resolve(&file, data).unwrap();
        assert!(matches!(s3.store, StoreConfig::S3 { ref bucket, .. } if bucket == "baton"));
        assert_eq!(s3.cache.capacity_bytes, 1 << 30);
        assert_eq!(s3.cache.flush_interval, Duration::from_millis(250));
        for bad in [
            "store = \"ftp\"",
            "store = \"s3\"",
            "cache = \"lots\"",
            "flush_interval = \"0s\"",
            "write_back = [\"Bad/x\"]",
        ] {
            let file: ObjectsSection = toml::from_str(bad).unwrap();
            assert!(ObjectsSettings::resolve(&file, data).is_err(), "{bad}");
        }
        assert!(toml::from_str::<ObjectsSection>("cahce = \"1Gi\"").is_err());
    }
}
