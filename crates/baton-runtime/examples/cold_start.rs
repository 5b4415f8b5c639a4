//! Measures the wasm cold path: a fresh instance from a prepared, cached component to its
//! response, one request at a time; and compiling versus loading a component from the cache.
//!
//! `cargo run --release -p baton-runtime --example cold_start [-- N]`
//! (BENCHMARKS.md records the figures.)

use baton_api::{FunctionName, FunctionSpec, RuntimeSpec};
use baton_runtime::wasm::{CompileCache, WasmConfig, WasmRuntime};
use baton_runtime::{ArtifactStore, FunctionLogs};
use bytes::Bytes;
use std::time::{Duration, Instant};

fn spec(digest: baton_api::ArtifactDigest) -> FunctionSpec {
    let runtime = RuntimeSpec::Wasm { component: digest };
    FunctionSpec::new(FunctionName::new("bench").unwrap(), runtime)
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1e6
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let iterations: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let dir = tempfile::tempdir()?;
    let artifacts = ArtifactStore::open(dir.path().join("artifacts"))?;
    let runtime = WasmRuntime::new(
        &WasmConfig::default(),
        artifacts.clone(),
        CompileCache::open(dir.path().join("compiled"))?,
        None,
    )?;

    for (name, bytes) in [
        ("hello", baton_guests::HELLO),
        ("json-transform", baton_guests::JSON_TRANSFORM),
    ] {
        let uncached = WasmRuntime::new(
            &WasmConfig {
                pool_instances: 10,
                ..Default::default()
            },
            artifacts.clone(),
            CompileCache::disabled(),
            None,
        )?;
        let digest = artifacts.put(bytes)?;
        let started = Instant::now();
        uncached.prepare_bytes(bytes, &spec(digest.clone()))?;
        let compile = started.elapsed();
        runtime.prepare_bytes(bytes, &spec(digest.clone()))?; // fills the cache
        let started = Instant::now();
        runtime.prepare_bytes(bytes, &spec(digest))?;
        let cached = started.elapsed();
        println!(
            "prepare {name} ({} KiB): compile {:.1} ms, from cache {:.2} ms",
            bytes.len() / 1024,
            compile.as_secs_f64() * 1e3,
            cached.as_secs_f64() * 1e3
        );
    }

    let digest = artifacts.put(baton_guests::HELLO)?;
    let function = runtime.prepare_bytes(baton_guests::HELLO, &spec(digest))?;
    let logs = std::sync::Arc::new(FunctionLogs::new(10)).sink("floor");
    let request = || {
        http::Request::builder()
            .uri("/")
            .body(Bytes::new())
            .unwrap()
    };
    for _ in 0..1000 {
        function.handle(request(), &logs).await.unwrap();
    }
    let mut samples = Vec::with_capacity(iterations);
    for _ in 0..iterations {
        let started = Instant::now();
        let response = function.handle(request(), &logs).await.unwrap();
        samples.push(started.elapsed());
        assert_eq!(response.status(), 200);
    }
    samples.sort();
    let mean = samples.iter().sum::<Duration>().as_secs_f64() * 1e6 / samples.len() as f64;
    println!(
        "cold instance hello (instantiate + handle + response), {iterations} sequential: p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, mean {mean:.1} µs",
        percentile(&samples, 0.5),
        percentile(&samples, 0.9),
        percentile(&samples, 0.99)
    );
    // The same, 32 requests at a time on 2 worker threads: what the node's runtime sees.
    let function = std::sync::Arc::new(function);

    let started = Instant::now();
    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let (function, logs) = (function.clone(), logs.clone());
            tokio::spawn(async move {
                for _ in 0..iterations / 32 {
                    let request = http::Request::builder()
                        .uri("/")
                        .body(Bytes::new())
                        .unwrap();
                    function.handle(request, &logs).await.unwrap();
                }
            })
        })
        .collect();
    for task in tasks {
        task.await?;
    }
    let elapsed = started.elapsed();
    println!(
        "concurrent cold instances, 32 at a time on 2 threads: {:.0} instances/s",
        (iterations / 32 * 32) as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}
