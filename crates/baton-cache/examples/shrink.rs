//! How long the cache takes to give memory back: fill it with 1.5 GiB of clean objects
//! (96 of 16 MiB), then shrink its capacity by 1 GiB, as the elastic loop does when a sandbox
//! is predicted to need it; five rounds, each timed, with the process's resident memory
//! before and after (the store is the local filesystem: the cache's buffers are its own).
//!
//!     cargo run --release -p baton-cache --example shrink
use baton_cache::{BucketId, ObjectMetrics, Objects, ObjectsConfig};
use bytes::Bytes;
use std::time::{Duration, Instant};

const MIB: u64 = 1 << 20;

fn rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0, |kib| kib / 1024)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let store = baton_cache::store::open(
        &baton_cache::StoreConfig::Local {
            root: dir.path().join("store"),
        },
        Duration::ZERO,
    )?;
    let config = ObjectsConfig {
        capacity_bytes: 1536 * MIB,
        max_object_bytes: 16 * MIB,
        flush_interval: Duration::from_secs(3600),
        ..ObjectsConfig::default()
    };
    let objects = Objects::open(
        store,
        &dir.path().join("log.redb"),
        config,
        ObjectMetrics::default(),
    )?;
    let bucket = BucketId::new("bench", "data")?;
    objects.create_bucket(&bucket).await?;
    println!(
        "| round | cached before (MiB) | shrink by 1 GiB (ms) | cached after (MiB) | RSS before / after (MiB) |"
    );
    println!("|---:|---:|---:|---:|---|");
    for round in 1..=5 {
        objects.set_capacity(1536 * MIB);
        for i in 0..96u64 {
            // Each object its own bytes, so the memory is real.
            let body = Bytes::from(vec![(i + round) as u8; (16 * MIB) as usize]);
            objects.put(&bucket.object(&format!("o{i}"))?, body).await?;
        }
        let before = objects.stats().cached_bytes;
        let rss_before = rss_mib();
        let start = Instant::now();
        objects.set_capacity(before.saturating_sub(1024 * MIB));
        let took = start.elapsed();
        let after = objects.stats().cached_bytes;
        println!(
            "| {round} | {} | {:.2} | {} | {rss_before} / {} |",
            before / MIB,
            took.as_secs_f64() * 1000.0,
            after / MIB,
            rss_mib()
        );
    }
    Ok(())
}
