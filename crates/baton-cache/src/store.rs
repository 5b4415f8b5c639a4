//! The object store behind a node: the local filesystem under the data directory (embedded,
//! the default), any S3-compatible server, or memory (tests). Everything above this file
//! sees only `dyn ObjectStore`.

use async_trait::async_trait;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{
    ClientOptions, CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RetryConfig,
};
use serde::Deserialize;
use std::fmt;
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
    Ok(Arc::new(Distant {
        inner: store,
        latency,
    }))
}

/// A store `latency` away: every call waits that long first (the benchmarks' remote store;
/// `object_store`'s own throttle cannot wrap the local filesystem's reads).
#[derive(Debug)]
struct Distant {
    inner: Arc<dyn ObjectStore>,
    latency: Duration,
}

impl fmt::Display for Distant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({:?} away)", self.inner, self.latency)
    }
}

impl Distant {
    /// `stream` once the latency has passed.
    fn later<T: Send + 'static>(
        &self,
        stream: BoxStream<'static, object_store::Result<T>>,
    ) -> BoxStream<'static, object_store::Result<T>> {
        let latency = self.latency;
        futures_util::stream::once(async move {
            tokio::time::sleep(latency).await;
            stream
        })
        .flatten()
        .boxed()
    }
}

#[async_trait]
impl ObjectStore for Distant {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        tokio::time::sleep(self.latency).await;
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        tokio::time::sleep(self.latency).await;
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        tokio::time::sleep(self.latency).await;
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.later(self.inner.delete_stream(locations))
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.later(self.inner.list(prefix))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        tokio::time::sleep(self.latency).await;
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        tokio::time::sleep(self.latency).await;
        self.inner.copy_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;

    #[tokio::test]
    async fn a_distant_local_store_waits_and_still_reads_files() {
        let dir = tempfile::tempdir().unwrap();
        let config = StoreConfig::Local {
            root: dir.path().to_path_buf(),
        };
        let store = open(&config, Duration::from_millis(30)).unwrap();
        let path = Path::from("ns/bucket/key");
        store.put(&path, PutPayload::from("body")).await.unwrap();
        let start = std::time::Instant::now();
        let body = store.get(&path).await.unwrap().bytes().await.unwrap();
        assert_eq!(&body[..], b"body");
        assert!(start.elapsed() >= Duration::from_millis(30));
        let listed: Vec<_> = store.list(None).collect().await;
        assert_eq!(listed.len(), 1);
        store.delete(&path).await.unwrap();
        assert!(store.head(&path).await.is_err());
    }
}
