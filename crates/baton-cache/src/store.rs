//! The object store behind a node: the local filesystem under the data directory (embedded,
//! the default), any S3-compatible server, or memory (tests). Everything above this file
//! sees only `dyn ObjectStore`.

use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::throttle::{ThrottleConfig, ThrottledStore};
use object_store::{ClientOptions, ObjectStore, RetryConfig};
use serde::Deserialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// Which store, and how to reach it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum StoreConfig {
    /// Files under a directory (by default `<data>/objects`).
    Local {
        /// The directory; relative paths are the node's business to resolve.
        root: PathBuf,
    },
    /// One bucket of an S3-compatible server; Baton's buckets are prefixes in it.
    S3 {
        /// `http(s)://host:port`; empty for AWS itself.
        #[serde(default)]
        endpoint: Option<String>,
        /// The server's bucket that holds everything.
        bucket: String,
        /// The region to sign for (`us-east-1` when unset).
        #[serde(default)]
        region: Option<String>,
        /// Credentials; unset reads `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`.
        #[serde(default)]
        access_key_id: Option<String>,
        /// See `access_key_id`.
        #[serde(default)]
        secret_access_key: Option<String>,
    },
    /// Nothing persists: for tests and benchmarks.
    Memory,
}

/// The store opened from `config`, with `latency` added to every call when it is non-zero
/// (the benchmarks' remote store).
pub fn open(config: &StoreConfig, latency: Duration) -> anyhow::Result<Arc<dyn ObjectStore>> {
    let store: Arc<dyn ObjectStore> = match config {
        StoreConfig::Local { root } => {
            std::fs::create_dir_all(root)?;
            Arc::new(LocalFileSystem::new_with_prefix(root)?.with_automatic_cleanup(true))
        }
        StoreConfig::S3 {
            endpoint,
            bucket,
            region,
            access_key_id,
            secret_access_key,
        } => {
            // reqwest is built without a provider of its own: ring, as the rest of Baton. An
            // error means one is installed already.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let mut builder = AmazonS3Builder::from_env()
                .with_bucket_name(bucket)
                .with_region(region.as_deref().unwrap_or("us-east-1"))
                // A store that does not answer must turn into a 503 in seconds, not minutes.
                .with_retry(RetryConfig {
                    max_retries: 2,
                    retry_timeout: Duration::from_secs(5),
                    ..RetryConfig::default()
                })
                .with_client_options(
                    ClientOptions::new()
                        .with_connect_timeout(Duration::from_secs(2))
                        .with_timeout(Duration::from_secs(60))
                        .with_allow_http(true),
                );
            if let Some(endpoint) = endpoint.as_deref().filter(|e| !e.is_empty()) {
                builder = builder
                    .with_endpoint(endpoint)
                    .with_virtual_hosted_style_request(false);
            }
            if let Some(key) = access_key_id {
                builder = builder.with_access_key_id(key);
            }
            if let Some(secret) = secret_access_key {
                builder = builder.with_secret_access_key(secret);
            }
            Arc::new(builder.build()?)
        }
        StoreConfig::Memory => Arc::new(InMemory::new()),
    };
    if latency.is_zero() {
        return Ok(store);
    }
    let throttle = ThrottleConfig {
        wait_get_per_call: latency,
        wait_put_per_call: latency,
        wait_delete_per_call: latency,
        wait_list_per_call: latency,
        ..ThrottleConfig::default()
    };
    Ok(Arc::new(ThrottledStore::new(store, throttle)))
}
