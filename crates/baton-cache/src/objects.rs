//! The node's objects: the store behind, clean objects in a size-aware in-memory cache in
//! front (read-through, one load per key however many ask), and the write-back buckets' dirty
//! objects pinned in memory and in the pending log until the flusher has put them in the
//! store.
//!
//! Every API (the guest's `wasi:blobstore`, the S3 endpoint, the admin API and the CLI) goes
//! through [`Objects`], so they all see one cache.

use crate::ObjectError;
use crate::listing::{ListQuery, Listing, Page};
use crate::metrics::ObjectMetrics;
use crate::name::{BucketId, ObjectId};
use crate::pending::{Pending, PendingLog};
use crate::write_back::WriteBackRules;
use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{
    GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use quick_cache::sync::Cache;
use quick_cache::{DefaultHashBuilder, Lifecycle, OptionsBuilder, Weighter};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::Notify;

/// Flushes that run at once in a round.
const FLUSH_CONCURRENCY: usize = 16;
/// Longest wait between rounds after the store refused a flush.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// Bookkeeping bytes counted per cached object beside its body.
const ENTRY_OVERHEAD: u64 = 128;

/// How the node's objects behave.
#[derive(Debug, Clone)]
pub struct ObjectsConfig {
    /// What clean objects may take in memory (resizable with [`Objects::set_capacity`]).
    pub capacity_bytes: u64,
    /// The largest object a function may write.
    pub max_object_bytes: u64,
    /// Bytes acknowledged in write-back buckets and not yet in the store, at most: past it, a
    /// write-back write is refused with 503.
    pub max_dirty_bytes: u64,
    /// The longest an acknowledged write-back object waits before the flusher puts it in the
    /// store (while the store answers): the bound on what the store lags.
    pub flush_interval: Duration,
    /// When a clean copy older than this is read, it is checked against the store first
    /// (a conditional GET): needed when other writers share the store. `None`: never.
    pub revalidate_after: Option<Duration>,
    /// Write-back buckets from the configuration (`ns/bucket`, `ns/*`, `*`).
    pub write_back: Vec<String>,
}

impl Default for ObjectsConfig {
    fn default() -> Self {
        ObjectsConfig {
            capacity_bytes: 256 << 20,
            max_object_bytes: 64 << 20,
            max_dirty_bytes: 256 << 20,
            flush_interval: Duration::from_secs(1),
            revalidate_after: None,
            write_back: Vec::new(),
        }
    }
}

/// What is known of an object.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectInfo {
    /// Its key in its bucket.
    pub key: String,
    /// Bytes.
    pub size: u64,
    /// Milliseconds since the Unix epoch of its last write.
    pub last_modified_ms: u64,
    /// The store's entity tag, when it is in the store as written.
    pub etag: Option<String>,
}

/// A bucket.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BucketInfo {
    /// Its name in its namespace.
    pub name: String,
    /// Milliseconds since the Unix epoch of its creation.
    pub created_ms: u64,
    /// Whether its writes are acknowledged before they reach the store.
    pub write_back: bool,
}

/// An object read: its body and what is known of it.
#[derive(Debug, Clone)]
pub struct Object {
    /// The whole body.
    pub body: Bytes,
    /// Size, time, tag.
    pub info: ObjectInfo,
}

/// What the node's cache holds now.
#[derive(Debug, Clone, Serialize)]
pub struct CacheStats {
    /// Bytes of clean objects in memory.
    pub cached_bytes: u64,
    /// Clean objects in memory.
    pub cached_objects: u64,
    /// What clean objects may take.
    pub capacity_bytes: u64,
    /// Bytes acknowledged in write-back buckets, not yet in the store.
    pub dirty_bytes: u64,
    /// Objects acknowledged in write-back buckets, not yet in the store.
    pub dirty_objects: u64,
    /// Age of the oldest of them, in seconds.
    pub flush_lag_seconds: f64,
    /// Reads answered from memory since start.
    pub hits: u64,
    /// Reads that went to the store since start.
    pub misses: u64,
}

/// What a flush did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FlushReport {
    /// Objects put in (or deleted from) the store.
    pub flushed: u64,
    /// Objects still dirty after it (the store refused them, or they were written meanwhile).
    pub remaining: u64,
}

#[derive(Clone)]
struct Cached {
    body: Bytes,
    info: ObjectInfo,
    fetched: Instant,
}

#[derive(Clone)]
struct ByteWeight;

impl Weighter<StorePath, Cached> for ByteWeight {
    fn weight(&self, key: &StorePath, value: &Cached) -> u64 {
        value.body.len() as u64 + key.as_ref().len() as u64 + ENTRY_OVERHEAD
    }
}

/// Counts evictions.
#[derive(Clone)]
struct Evictions(ObjectMetrics);

impl Lifecycle<StorePath, Cached> for Evictions {
    type RequestState = ();
    fn begin_request(&self) {}
    fn on_evict(&self, _: &mut (), _: StorePath, _: Cached) {
        self.0.evictions.inc();
    }
}

/// An acknowledged write-back write not yet in the store.
struct Dirty {
    seq: u64,
    /// `None`: a delete.
    body: Option<Bytes>,
    written_ms: u64,
    since: Instant,
    /// The store's entity tag of the copy this write replaces, when the node knew it: the
    /// flush puts on the condition that the store still holds that copy.
    base: Option<String>,
}

/// The node's objects; cheap to clone.
#[derive(Clone)]
pub struct Objects {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn ObjectStore>,
    config: ObjectsConfig,
    clean: Cache<StorePath, Cached, ByteWeight, DefaultHashBuilder, Evictions>,
    /// Path → the newest unflushed write.
    dirty: Mutex<HashMap<StorePath, Dirty>>,
    dirty_bytes: AtomicU64,
    log: PendingLog,
    seq: AtomicU64,
    /// Buckets known to exist (their markers were seen or written).
    buckets: RwLock<HashSet<BucketId>>,
    /// Whether the store takes conditional puts (S3 and memory do; the local filesystem, which
    /// no other node writes, does not): cleared at its first refusal.
    conditional: AtomicBool,
    write_back: RwLock<WriteBackRules>,
    /// Wakes the flusher before its interval is up.
    wake: Arc<Notify>,
    /// One flush round at a time: a path is in flight at most once, so an older write can
    /// never land after a newer one.
    round: tokio::sync::Mutex<()>,
    metrics: ObjectMetrics,
    /// The memory the node's functions are predicted to need (elastic capacity).
    predictions: crate::Predictions,
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn info_of(key: String, meta: &object_store::ObjectMeta) -> ObjectInfo {
    ObjectInfo {
        key,
        size: meta.size,
        last_modified_ms: u64::try_from(meta.last_modified.timestamp_millis()).unwrap_or(0),
        etag: meta.e_tag.clone(),
    }
}

impl Objects {
    /// Opens the node's objects over `store`, takes back what `pending_log` holds (writes
    /// acknowledged before a crash) and starts the flusher.
    pub fn open(
        store: Arc<dyn ObjectStore>,
        pending_log: &Path,
        config: ObjectsConfig,
        metrics: ObjectMetrics,
    ) -> anyhow::Result<Objects> {
        let (log, recovered) = PendingLog::open(pending_log, 4096)?;
        let options = OptionsBuilder::new()
            // One shard: an object as large as the whole capacity still fits.
            .shards(1)
            .estimated_items_capacity(4096)
            .weight_capacity(config.capacity_bytes)
            .build()?;
        let clean = Cache::with_options(
            options,
            ByteWeight,
            DefaultHashBuilder::default(),
            Evictions(metrics.clone()),
        );
        let write_back = WriteBackRules::parse(&config.write_back)?;
        let mut dirty = HashMap::new();
        let mut dirty_bytes = 0;
        let mut seq = 0;
        for pending in recovered {
            seq = seq.max(pending.seq);
            let Ok(path) = StorePath::parse(&pending.path) else {
                tracing::error!(path = pending.path, "pending write with a bad path dropped");
                continue;
            };
            dirty_bytes += pending.body.as_ref().map_or(0, |b| b.len() as u64);
            dirty.insert(
                path,
                Dirty {
                    seq: pending.seq,
                    body: pending.body,
                    written_ms: now_ms(),
                    since: Instant::now(),
                    // What the store held then is not in the log: the flush overwrites.
                    base: None,
                },
            );
        }
        if !dirty.is_empty() {
            tracing::info!(
                objects = dirty.len(),
                bytes = dirty_bytes,
                "write-back objects acknowledged before the last stop are flushed again"
            );
        }
        let inner = Arc::new(Inner {
            store,
            clean,
            dirty: Mutex::new(dirty),
            dirty_bytes: AtomicU64::new(dirty_bytes),
            log,
            seq: AtomicU64::new(seq + 1),
            buckets: RwLock::new(HashSet::new()),
            conditional: AtomicBool::new(true),
            write_back: RwLock::new(write_back),
            wake: Arc::new(Notify::new()),
            round: tokio::sync::Mutex::new(()),
            metrics,
            predictions: crate::Predictions::default(),
            config,
        });
        tokio::spawn(flusher(Arc::downgrade(&inner)));
        inner.wake.notify_one();
        Ok(Objects { inner })
    }

    /// Bytes acknowledged in write-back buckets and not yet in the store.
    pub fn dirty_bytes(&self) -> u64 {
        self.inner.dirty_bytes.load(Ordering::Acquire)
    }

    /// The capacity the configuration gave the cache (what elastic capacity never exceeds).
    pub fn configured_capacity(&self) -> u64 {
        self.inner.config.capacity_bytes
    }

    /// The largest object a function may write.
    pub fn max_object_bytes(&self) -> u64 {
        self.inner.config.max_object_bytes
    }

    /// Makes `buckets` (the value of a function's `baton.objects.write-back` label: bucket
    /// names, comma-separated, or `*`) write-back buckets of `namespace`.
    pub fn declare_write_back(&self, namespace: &str, buckets: &str) {
        self.inner
            .write_back
            .write()
            .expect("write-back rules")
            .declare(namespace, buckets);
    }

    /// Whether `bucket`'s writes are acknowledged before they reach the store.
    pub fn is_write_back(&self, bucket: &BucketId) -> bool {
        self.inner
            .write_back
            .read()
            .expect("write-back rules")
            .matches(bucket)
    }

    /// Creates `bucket`; `Ok(false)` if it existed already.
    pub async fn create_bucket(&self, bucket: &BucketId) -> Result<bool, ObjectError> {
        // Asks the store even when the bucket is known here: another node (or the store's
        // own loss) may have removed it. Creation is rare.
        match self.inner.store.head(&bucket.marker()).await {
            Ok(_) => {
                self.known(bucket);
                return Ok(false);
            }
            Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(ObjectError::Unavailable(error.to_string())),
        }
        // Empty: a bucket's creation time is its marker's modification time.
        self.inner
            .store
            .put(&bucket.marker(), PutPayload::default())
            .await
            .map_err(|e| ObjectError::from_store(e, bucket))?;
        self.inner.metrics.store_writes.inc();
        self.known(bucket);
        Ok(true)
    }

    fn known(&self, bucket: &BucketId) {
        self.inner
            .buckets
            .write()
            .expect("buckets")
            .insert(bucket.clone());
    }

    /// Whether `bucket` exists.
    pub async fn bucket_exists(&self, bucket: &BucketId) -> Result<bool, ObjectError> {
        if self.inner.buckets.read().expect("buckets").contains(bucket) {
            return Ok(true);
        }
        match self.inner.store.head(&bucket.marker()).await {
            Ok(_) => {
                self.known(bucket);
                Ok(true)
            }
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(error) => Err(ObjectError::Unavailable(error.to_string())),
        }
    }

    async fn ensure_bucket(&self, bucket: &BucketId) -> Result<(), ObjectError> {
        match self.bucket_exists(bucket).await? {
            true => Ok(()),
            false => Err(ObjectError::NoSuchBucket(bucket.to_string())),
        }
    }

    /// `bucket`'s details.
    pub async fn bucket_info(&self, bucket: &BucketId) -> Result<BucketInfo, ObjectError> {
        let meta = match self.inner.store.head(&bucket.marker()).await {
            Ok(meta) => meta,
            Err(object_store::Error::NotFound { .. }) => {
                return Err(ObjectError::NoSuchBucket(bucket.to_string()));
            }
            Err(error) => return Err(ObjectError::Unavailable(error.to_string())),
        };
        self.known(bucket);
        Ok(self.bucket_of(bucket.clone(), &meta))
    }

    /// A bucket as its marker describes it.
    fn bucket_of(&self, bucket: BucketId, marker: &object_store::ObjectMeta) -> BucketInfo {
        BucketInfo {
            write_back: self.is_write_back(&bucket),
            name: bucket.bucket,
            created_ms: u64::try_from(marker.last_modified.timestamp_millis()).unwrap_or(0),
        }
    }

    /// Everything the store holds under `prefix`.
    async fn listed(
        &self,
        prefix: &StorePath,
    ) -> Result<Vec<object_store::ObjectMeta>, ObjectError> {
        self.inner
            .store
            .list(Some(prefix))
            .try_collect()
            .await
            .map_err(|e| ObjectError::Unavailable(e.to_string()))
    }

    /// The buckets of `namespace`, by name.
    pub async fn list_buckets(&self, namespace: &str) -> Result<Vec<BucketInfo>, ObjectError> {
        crate::name::check_namespace(namespace)?;
        let metas = self.listed(&BucketId::markers_of(namespace)).await?;
        let mut buckets = Vec::new();
        for meta in metas {
            let Some(name) = meta.location.filename() else {
                continue;
            };
            if let Ok(bucket) = BucketId::new(namespace, name) {
                buckets.push(self.bucket_of(bucket, &meta));
            }
        }
        buckets.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(buckets)
    }

    /// Deletes `bucket`: refused while it holds objects unless `force`, which deletes them.
    pub async fn delete_bucket(&self, bucket: &BucketId, force: bool) -> Result<(), ObjectError> {
        let everything = ListQuery::default();
        loop {
            let page = self.list_page(bucket, &everything).await?;
            if page.objects.is_empty() {
                break;
            }
            if !force {
                return Err(ObjectError::BucketNotEmpty(bucket.to_string()));
            }
            for object in page.objects {
                self.delete(&bucket.object(&object.key)?).await?;
            }
        }
        match self.inner.store.delete(&bucket.marker()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(error) => return Err(ObjectError::Unavailable(error.to_string())),
        }
        self.inner.metrics.store_writes.inc();
        self.inner.buckets.write().expect("buckets").remove(bucket);
        Ok(())
    }

    /// Reads an object whole: a dirty copy, then a clean one, then the store (one load for
    /// every reader that asks at once).
    pub async fn get(&self, id: &ObjectId) -> Result<Object, ObjectError> {
        self.ensure_bucket(&id.bucket).await?;
        let object = self.read(id).await?;
        self.inner
            .metrics
            .read_bytes
            .inc_by(object.body.len() as u64);
        Ok(object)
    }

    async fn read(&self, id: &ObjectId) -> Result<Object, ObjectError> {
        let path = id.path();
        if let Some(found) = self.dirty_copy(id, &path) {
            self.inner.metrics.hits.inc();
            return found;
        }
        if let Some(cached) = self.inner.clean.get(&path) {
            self.inner.metrics.hits.inc();
            return self.revalidated(id, path, cached).await;
        }
        self.inner.metrics.misses.inc();
        let cached = self
            .inner
            .clean
            .get_or_insert_async(&path, self.fetch(id))
            .await?;
        Ok(Object {
            body: cached.body,
            info: cached.info,
        })
    }

    fn dirty_copy(&self, id: &ObjectId, path: &StorePath) -> Option<Result<Object, ObjectError>> {
        let dirty = self.inner.dirty.lock().expect("dirty");
        let entry = dirty.get(path)?;
        Some(match &entry.body {
            Some(body) => Ok(Object {
                body: body.clone(),
                info: ObjectInfo {
                    key: id.key.clone(),
                    size: body.len() as u64,
                    last_modified_ms: entry.written_ms,
                    etag: None,
                },
            }),
            None => Err(ObjectError::NoSuchKey(id.to_string())),
        })
    }

    async fn fetch(&self, id: &ObjectId) -> Result<Cached, ObjectError> {
        let result = self
            .inner
            .store
            .get(&id.path())
            .await
            .map_err(|e| ObjectError::from_store(e, id))?;
        let info = info_of(id.key.clone(), &result.meta);
        let body = result
            .bytes()
            .await
            .map_err(|e| ObjectError::Unavailable(e.to_string()))?;
        self.inner.metrics.store_reads.inc();
        Ok(Cached {
            body,
            info,
            fetched: Instant::now(),
        })
    }

    /// A clean copy as it is, or checked against the store when it is old enough: the
    /// store's newer copy replaces it; a store that does not answer leaves it served.
    async fn revalidated(
        &self,
        id: &ObjectId,
        path: StorePath,
        cached: Cached,
    ) -> Result<Object, ObjectError> {
        let fresh = |c: Cached| Object {
            body: c.body,
            info: c.info,
        };
        let Some(after) = self.inner.config.revalidate_after else {
            return Ok(fresh(cached));
        };
        if cached.fetched.elapsed() < after {
            return Ok(fresh(cached));
        }
        let options = GetOptions {
            if_none_match: cached.info.etag.clone(),
            ..GetOptions::default()
        };
        match self.inner.store.get_opts(&id.path(), options).await {
            Err(object_store::Error::NotModified { .. }) => {
                let renewed = Cached {
                    fetched: Instant::now(),
                    ..cached
                };
                self.inner.clean.insert(path, renewed.clone());
                Ok(fresh(renewed))
            }
            Ok(result) => {
                let info = info_of(id.key.clone(), &result.meta);
                let body = result
                    .bytes()
                    .await
                    .map_err(|e| ObjectError::Unavailable(e.to_string()))?;
                self.inner.metrics.store_reads.inc();
                let renewed = Cached {
                    body,
                    info,
                    fetched: Instant::now(),
                };
                self.inner.clean.insert(path, renewed.clone());
                Ok(fresh(renewed))
            }
            Err(object_store::Error::NotFound { .. }) => {
                self.inner.clean.remove(&path);
                Err(ObjectError::NoSuchKey(id.to_string()))
            }
            Err(error) => {
                tracing::debug!(%error, object = %id, "store unreachable: serving the cached copy");
                Ok(fresh(cached))
            }
        }
    }

    /// What is known of an object, without its body when it is not in memory.
    pub async fn head(&self, id: &ObjectId) -> Result<ObjectInfo, ObjectError> {
        self.ensure_bucket(&id.bucket).await?;
        let path = id.path();
        if let Some(found) = self.dirty_copy(id, &path) {
            return found.map(|o| o.info);
        }
        if let Some(cached) = self.inner.clean.peek(&path) {
            return Ok(cached.info);
        }
        let meta = self
            .inner
            .store
            .head(&id.path())
            .await
            .map_err(|e| ObjectError::from_store(e, id))?;
        Ok(info_of(id.key.clone(), &meta))
    }

    /// Writes an object whole. In a write-through bucket it is in the store when this
    /// returns; in a write-back bucket it is in memory and in the node's pending log.
    pub async fn put(&self, id: &ObjectId, body: Bytes) -> Result<ObjectInfo, ObjectError> {
        let size = body.len() as u64;
        if size > self.inner.config.max_object_bytes {
            return Err(ObjectError::TooLarge {
                size,
                limit: self.inner.config.max_object_bytes,
            });
        }
        self.ensure_bucket(&id.bucket).await?;
        self.inner.metrics.written_bytes.inc_by(size);
        let info = self.write(id, Some(body)).await?;
        Ok(info.unwrap_or(ObjectInfo {
            key: id.key.clone(),
            size,
            last_modified_ms: now_ms(),
            etag: None,
        }))
    }

    /// Deletes an object; deleting one that does not exist is not an error.
    pub async fn delete(&self, id: &ObjectId) -> Result<(), ObjectError> {
        self.ensure_bucket(&id.bucket).await?;
        self.write(id, None).await.map(|_| ())
    }

    /// A put (`Some`) or a delete (`None`) by the bucket's mode. A path with an unflushed
    /// write stays write-back until it is flushed, so writes reach the store in order.
    async fn write(
        &self,
        id: &ObjectId,
        body: Option<Bytes>,
    ) -> Result<Option<ObjectInfo>, ObjectError> {
        let path = id.path();
        let pending = self.inner.dirty.lock().expect("dirty").contains_key(&path);
        if pending || self.is_write_back(&id.bucket) {
            self.write_back(path, body).await?;
            return Ok(None);
        }
        let location = path.clone();
        self.inner.metrics.store_writes.inc();
        match body {
            Some(body) => {
                let result = self
                    .inner
                    .store
                    .put(&location, PutPayload::from(body.clone()))
                    .await
                    .map_err(|e| ObjectError::Unavailable(e.to_string()))?;
                let info = ObjectInfo {
                    key: id.key.clone(),
                    size: body.len() as u64,
                    last_modified_ms: now_ms(),
                    etag: result.e_tag,
                };
                self.inner.clean.insert(
                    path,
                    Cached {
                        body,
                        info: info.clone(),
                        fetched: Instant::now(),
                    },
                );
                Ok(Some(info))
            }
            None => {
                match self.inner.store.delete(&location).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(error) => return Err(ObjectError::Unavailable(error.to_string())),
                }
                self.inner.clean.remove(&path);
                Ok(None)
            }
        }
    }

    async fn write_back(&self, path: StorePath, body: Option<Bytes>) -> Result<(), ObjectError> {
        let size = body.as_ref().map_or(0, |b| b.len() as u64);
        let limit = self.inner.config.max_dirty_bytes;
        let reserved =
            self.inner
                .dirty_bytes
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                    (held + size <= limit || held == 0).then_some(held + size)
                });
        if let Err(held) = reserved {
            self.inner.metrics.refused_full.inc();
            self.inner.wake.notify_one();
            return Err(ObjectError::Full(held));
        }
        let seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
        let pending = Pending {
            path: path.to_string(),
            seq,
            body: body.clone(),
        };
        if let Err(error) = self.inner.log.append(pending).await {
            self.inner.dirty_bytes.fetch_sub(size, Ordering::AcqRel);
            return Err(ObjectError::Unavailable(format!(
                "the write-back log failed: {error}"
            )));
        }
        let cached_base = self.inner.clean.peek(&path).and_then(|c| c.info.etag);
        let replaced = {
            let mut dirty = self.inner.dirty.lock().expect("dirty");
            // Two writes of one path race to this lock: the higher number is the later write.
            let older = dirty.get(&path).is_some_and(|d| d.seq > seq);
            if older {
                Some(size)
            } else {
                // An unflushed write before this one has not changed the store: its base is
                // this one's.
                let base = match dirty.get(&path) {
                    Some(earlier) => earlier.base.clone(),
                    None => cached_base,
                };
                let entry = Dirty {
                    seq,
                    body,
                    written_ms: now_ms(),
                    since: Instant::now(),
                    base,
                };
                dirty
                    .insert(path.clone(), entry)
                    .map(|old| old.body.map_or(0, |b| b.len() as u64))
            }
        };
        if let Some(freed) = replaced {
            self.inner.dirty_bytes.fetch_sub(freed, Ordering::AcqRel);
        }
        self.inner.clean.remove(&path);
        if self.inner.dirty_bytes.load(Ordering::Acquire) > limit / 2 {
            self.inner.wake.notify_one();
        }
        Ok(())
    }

    /// One page of `bucket`'s listing (see [`crate::listing`]); unflushed writes included.
    pub async fn list_page(
        &self,
        bucket: &BucketId,
        query: &ListQuery,
    ) -> Result<Listing, ObjectError> {
        self.ensure_bucket(bucket).await?;
        // Unflushed writes first: their deletes hide the store's copies, their puts replace
        // them.
        let (mut written, mut deleted) = (Vec::new(), HashSet::new());
        {
            let dirty = self.inner.dirty.lock().expect("dirty");
            for (path, entry) in dirty.iter() {
                let Some(key) = ObjectId::key_of(bucket, path) else {
                    continue;
                };
                match &entry.body {
                    Some(body) => written.push(ObjectInfo {
                        key,
                        size: body.len() as u64,
                        last_modified_ms: entry.written_ms,
                        etag: None,
                    }),
                    None => {
                        deleted.insert(key);
                    }
                }
            }
        }
        let mut page = Page::new(query);
        let mut listed = self.inner.store.list(Some(&bucket.prefix()));
        while let Some(meta) = listed.next().await {
            let meta = meta.map_err(|e| ObjectError::Unavailable(e.to_string()))?;
            if let Some(key) = ObjectId::key_of(bucket, &meta.location)
                && !deleted.contains(&key)
            {
                page.offer(info_of(key, &meta));
            }
        }
        for info in written {
            page.offer(info);
        }
        Ok(page.finish())
    }

    /// Puts every dirty object in the store now; waits for a round in progress first.
    pub async fn flush(&self) -> Result<FlushReport, ObjectError> {
        let report = flush_round(&self.inner).await;
        match report.remaining {
            0 => Ok(report),
            n => Err(ObjectError::Unavailable(format!(
                "{n} objects could not be flushed (see the node's log); they stay queued"
            ))),
        }
    }

    /// Flushes what is dirty, giving up after `deadline`: what is left stays in the pending
    /// log for the next start. For shutdown.
    pub async fn shutdown(&self, deadline: Duration) -> FlushReport {
        match tokio::time::timeout(deadline, flush_round(&self.inner)).await {
            Ok(report) => report,
            Err(_) => FlushReport {
                flushed: 0,
                remaining: self.inner.dirty.lock().expect("dirty").len() as u64,
            },
        }
    }

    /// The node's memory predictions, which the runtimes feed and the cache's capacity
    /// follows.
    pub fn predictions(&self) -> &crate::Predictions {
        &self.inner.predictions
    }

    /// Wakes the flusher now rather than at its interval (memory is wanted back).
    pub fn flush_soon(&self) {
        self.inner.wake.notify_one();
    }

    /// Changes what clean objects may take in memory; shrinking drops the coldest at once and
    /// hands the freed pages back to the system (glibc keeps large freed buffers in its heap
    /// once it has raised its mmap threshold: `malloc_trim` returns them).
    pub fn set_capacity(&self, bytes: u64) {
        let shrinking = bytes < self.inner.clean.capacity();
        self.inner.clean.set_capacity(bytes);
        if shrinking {
            give_back_freed_memory();
        }
    }

    /// What the cache holds now; refreshes the gauges.
    pub fn stats(&self) -> CacheStats {
        let (dirty_objects, oldest) = {
            let dirty = self.inner.dirty.lock().expect("dirty");
            let oldest = dirty.values().map(|d| d.since).min();
            (dirty.len() as u64, oldest)
        };
        let metrics = &self.inner.metrics;
        let stats = CacheStats {
            cached_bytes: self.inner.clean.weight(),
            cached_objects: self.inner.clean.len() as u64,
            capacity_bytes: self.inner.clean.capacity(),
            dirty_bytes: self.inner.dirty_bytes.load(Ordering::Acquire),
            dirty_objects,
            flush_lag_seconds: oldest.map_or(0.0, |t| t.elapsed().as_secs_f64()),
            hits: metrics.hits.get(),
            misses: metrics.misses.get(),
        };
        let gauge = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        metrics.cached_bytes.set(gauge(stats.cached_bytes));
        metrics.capacity_bytes.set(gauge(stats.capacity_bytes));
        metrics.dirty_bytes.set(gauge(stats.dirty_bytes));
        metrics.dirty_objects.set(gauge(stats.dirty_objects));
        metrics.flush_lag.set(stats.flush_lag_seconds);
        for model in self.inner.predictions.report() {
            let label = crate::metrics::FunctionLabel {
                function: model.function,
            };
            metrics
                .predicted_memory
                .get_or_create(&label)
                .set(gauge(model.predicted_bytes));
            metrics
                .observed_memory
                .get_or_create(&label)
                .set(gauge(model.last_peak_bytes));
            metrics
                .booked_memory
                .get_or_create(&label)
                .set(gauge(model.booked_bytes));
        }
        stats
    }

    /// The metrics, for the node's `/metrics`.
    pub fn metrics(&self) -> &ObjectMetrics {
        &self.inner.metrics
    }
}

/// Returns the allocator's free pages to the system.
fn give_back_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes an integer and only walks the allocator's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Runs rounds: every `flush_interval`, when woken, and sooner again when a round failed
/// (backing off to [`MAX_BACKOFF`]). Ends when the objects are gone.
async fn flusher(inner: std::sync::Weak<Inner>) {
    let mut backoff: Option<Duration> = None;
    loop {
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let (wake, wait) = (
            strong.wake.clone(),
            backoff.unwrap_or(strong.config.flush_interval),
        );
        // Not holding the objects while asleep lets them go.
        drop(strong);
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
        let Some(strong) = inner.upgrade() else {
            return;
        };
        let report = flush_round(&strong).await;
        backoff = match report.remaining {
            0 => None,
            _ => Some(
                backoff
                    .map_or(Duration::from_millis(100), |b| b * 2)
                    .min(MAX_BACKOFF),
            ),
        };
    }
}

/// Puts a flushed object: on the condition that the store still holds `base`, the copy the
/// write replaces, where the node knew it and the store takes conditions. A store whose copy
/// changed meanwhile (another node or tool wrote it) is counted and logged, and the
/// acknowledged write then replaces that copy as a plain put would: the write was
/// acknowledged, so it is not dropped, and the last put wins, as in S3 itself.
async fn put_flushed(
    inner: &Inner,
    path: &StorePath,
    body: &Bytes,
    base: Option<String>,
) -> object_store::Result<Option<String>> {
    if let Some(e_tag) = base.filter(|_| inner.conditional.load(Ordering::Relaxed)) {
        let options = PutOptions::from(PutMode::Update(UpdateVersion {
            e_tag: Some(e_tag),
            version: None,
        }));
        match inner
            .store
            .put_opts(path, PutPayload::from(body.clone()), options)
            .await
        {
            Ok(put) => return Ok(put.e_tag),
            Err(object_store::Error::Precondition { .. }) => {
                inner.metrics.flush_conflicts.inc();
                tracing::warn!(object = %path, "the store's copy changed since this node read it (another writer?): the acknowledged write-back write replaces it");
            }
            Err(object_store::Error::NotImplemented { .. }) => {
                inner.conditional.store(false, Ordering::Relaxed);
            }
            Err(error) => return Err(error),
        }
    }
    inner
        .store
        .put(path, PutPayload::from(body.clone()))
        .await
        .map(|r| r.e_tag)
}

/// One flush's path, sequence number, body and the store's answer (its entity tag).
type Flushed = (
    StorePath,
    u64,
    Option<Bytes>,
    Result<Option<String>, String>,
);

/// Puts every dirty object in the store, [`FLUSH_CONCURRENCY`] at a time; each that made it
/// moves to the clean cache (unless written again meanwhile) and leaves the pending log.
async fn flush_round(inner: &Arc<Inner>) -> FlushReport {
    let _round = inner.round.lock().await;
    let batch: Vec<(StorePath, u64, Option<Bytes>, Option<String>)> = inner
        .dirty
        .lock()
        .expect("dirty")
        .iter()
        .map(|(path, d)| (path.clone(), d.seq, d.body.clone(), d.base.clone()))
        .collect();
    if batch.is_empty() {
        return FlushReport::default();
    }
    let results: Vec<Flushed> = futures_util::stream::iter(batch)
        .map(|(path, seq, body, base)| {
            let inner = inner.clone();
            async move {
                let result = match &body {
                    Some(body) => put_flushed(&inner, &path, body, base).await,
                    None => match inner.store.delete(&path).await {
                        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(None),
                        Err(error) => Err(error),
                    },
                };
                (path, seq, body, result.map_err(|e| e.to_string()))
            }
        })
        .buffer_unordered(FLUSH_CONCURRENCY)
        .collect()
        .await;
    let mut report = FlushReport::default();
    for (path, seq, body, result) in results {
        inner.metrics.store_writes.inc();
        let etag = match result {
            Ok(etag) => etag,
            Err(error) => {
                inner.metrics.flush_errors.inc();
                tracing::warn!(%error, object = %path, "write-back flush failed; retrying later");
                continue;
            }
        };
        report.flushed += 1;
        inner.metrics.flushed.inc();
        let flushed = {
            let mut dirty = inner.dirty.lock().expect("dirty");
            match dirty.get_mut(&path) {
                Some(d) if d.seq == seq => dirty.remove(&path),
                // Written again meanwhile: the store now holds this flush's copy, which the
                // newer write replaces.
                Some(newer) => {
                    newer.base = etag.clone();
                    None
                }
                None => None,
            }
        };
        if let Some(flushed) = flushed {
            let size = flushed.body.as_ref().map_or(0, |b| b.len() as u64);
            inner.dirty_bytes.fetch_sub(size, Ordering::AcqRel);
            if let Some(body) = body {
                let key = crate::name::key_in_path(&path);
                let info = ObjectInfo {
                    key,
                    size,
                    last_modified_ms: flushed.written_ms,
                    etag,
                };
                inner.clean.insert(
                    path.clone(),
                    Cached {
                        body,
                        info,
                        fetched: Instant::now(),
                    },
                );
            }
        }
        inner.log.remove(path.to_string(), seq);
    }
    report.remaining = inner.dirty.lock().expect("dirty").len() as u64;
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::stream::BoxStream;
    use object_store::memory::InMemory;
    use object_store::{
        CopyOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, PutMultipartOptions,
        PutOptions, PutResult,
    };
    use std::sync::atomic::AtomicBool;

    /// An in-memory store that can be switched off: every call then fails as a store that
    /// does not answer.
    #[derive(Debug, Default)]
    struct Switchable {
        inner: InMemory,
        down: AtomicBool,
    }

    impl std::fmt::Display for Switchable {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Switchable")
        }
    }

    impl Switchable {
        fn check(&self) -> object_store::Result<()> {
            match self.down.load(Ordering::Relaxed) {
                true => Err(object_store::Error::Generic {
                    store: "switchable",
                    source: "the store is down".into(),
                }),
                false => Ok(()),
            }
        }
    }

    #[async_trait::async_trait]
    impl ObjectStore for Switchable {
        async fn put_opts(
            &self,
            location: &StorePath,
            payload: PutPayload,
            opts: PutOptions,
        ) -> object_store::Result<PutResult> {
            self.check()?;
            self.inner.put_opts(location, payload, opts).await
        }
        async fn put_multipart_opts(
            &self,
            location: &StorePath,
            opts: PutMultipartOptions,
        ) -> object_store::Result<Box<dyn MultipartUpload>> {
            self.check()?;
            self.inner.put_multipart_opts(location, opts).await
        }
        async fn get_opts(
            &self,
            location: &StorePath,
            options: GetOptions,
        ) -> object_store::Result<GetResult> {
            self.check()?;
            self.inner.get_opts(location, options).await
        }
        fn delete_stream(
            &self,
            locations: BoxStream<'static, object_store::Result<StorePath>>,
        ) -> BoxStream<'static, object_store::Result<StorePath>> {
            match self.check() {
                Ok(()) => self.inner.delete_stream(locations),
                Err(error) => futures_util::stream::once(async { Err(error) }).boxed(),
            }
        }
        fn list(
            &self,
            prefix: Option<&StorePath>,
        ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
            match self.check() {
                Ok(()) => self.inner.list(prefix),
                Err(error) => futures_util::stream::once(async { Err(error) }).boxed(),
            }
        }
        async fn list_with_delimiter(
            &self,
            prefix: Option<&StorePath>,
        ) -> object_store::Result<ListResult> {
            self.check()?;
            self.inner.list_with_delimiter(prefix).await
        }
        async fn copy_opts(
            &self,
            from: &StorePath,
            to: &StorePath,
            options: CopyOptions,
        ) -> object_store::Result<()> {
            self.check()?;
            self.inner.copy_opts(from, to, options).await
        }
    }

    fn config(write_back: &[&str]) -> ObjectsConfig {
        ObjectsConfig {
            capacity_bytes: 1 << 20,
            max_object_bytes: 64 << 10,
            max_dirty_bytes: 200 << 10,
            // Only explicit flushes in these tests.
            flush_interval: Duration::from_secs(3600),
            revalidate_after: None,
            write_back: write_back.iter().map(|s| s.to_string()).collect(),
        }
    }

    async fn open(
        store: Arc<dyn ObjectStore>,
        dir: &tempfile::TempDir,
        write_back: &[&str],
    ) -> Objects {
        let log = dir.path().join("pending.redb");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            // A previous instance's log writer lets go of the file as it ends.
            match Objects::open(
                store.clone(),
                &log,
                config(write_back),
                ObjectMetrics::default(),
            ) {
                Ok(objects) => return objects,
                Err(error) if Instant::now() > deadline => panic!("{error:#}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    }

    #[tokio::test]
    async fn write_through_reaches_the_store_and_reads_come_from_memory() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let objects = open(store.clone(), &dir, &[]).await;
        let id = ObjectId::new("app", "photos", "a/b.txt").unwrap();
        assert_eq!(
            objects.put(&id, Bytes::from_static(b"x")).await,
            Err(ObjectError::NoSuchBucket("app/photos".into()))
        );
        assert!(objects.create_bucket(&id.bucket).await.unwrap());
        assert!(!objects.create_bucket(&id.bucket).await.unwrap());
        objects
            .put(&id, Bytes::from_static(b"hello"))
            .await
            .unwrap();
        let stored = store.get(&id.path()).await.unwrap().bytes().await.unwrap();
        assert_eq!(&stored[..], b"hello");
        assert_eq!(&objects.get(&id).await.unwrap().body[..], b"hello");
        assert_eq!(objects.stats().hits, 1);
        let listed = objects
            .list_page(&id.bucket, &ListQuery::prefix("a/"))
            .await
            .unwrap();
        assert_eq!(listed.objects.len(), 1);
        assert_eq!(listed.objects[0].key, "a/b.txt");
        let big = Bytes::from(vec![0u8; (64 << 10) + 1]);
        assert!(matches!(
            objects.put(&id, big).await,
            Err(ObjectError::TooLarge { .. })
        ));
        assert_eq!(
            objects.delete_bucket(&id.bucket, false).await,
            Err(ObjectError::BucketNotEmpty("app/photos".into()))
        );
        objects.delete(&id).await.unwrap();
        assert!(matches!(
            objects.get(&id).await,
            Err(ObjectError::NoSuchKey(_))
        ));
        objects.delete_bucket(&id.bucket, false).await.unwrap();
        assert!(!objects.bucket_exists(&id.bucket).await.unwrap());
    }

    #[tokio::test]
    async fn a_flush_puts_on_the_condition_that_the_store_kept_what_the_node_knew() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let objects = open(store.clone(), &dir, &["app/scratch"]).await;
        let id = ObjectId::new("app", "scratch", "k").unwrap();
        objects.create_bucket(&id.bucket).await.unwrap();
        let stored = || async {
            let got = store.get(&id.path()).await.unwrap();
            got.bytes().await.unwrap()
        };
        let conflicts = || objects.metrics().flush_conflicts.get();

        objects.put(&id, Bytes::from_static(b"v1")).await.unwrap();
        objects.flush().await.unwrap();
        // Twice on top of the node's own copies: no conflict.
        objects.put(&id, Bytes::from_static(b"v2")).await.unwrap();
        objects.flush().await.unwrap();
        assert_eq!((&stored().await[..], conflicts()), (&b"v2"[..], 0));

        // Another writer replaces the store's copy; the node's next flush notices, counts it
        // and still puts the acknowledged write.
        store
            .put(&id.path(), PutPayload::from_static(b"theirs"))
            .await
            .unwrap();
        objects.put(&id, Bytes::from_static(b"v3")).await.unwrap();
        objects.flush().await.unwrap();
        assert_eq!((&stored().await[..], conflicts()), (&b"v3"[..], 1));
        objects.put(&id, Bytes::from_static(b"v4")).await.unwrap();
        objects.flush().await.unwrap();
        assert_eq!((&stored().await[..], conflicts()), (&b"v4"[..], 1));
    }

    #[tokio::test]
    async fn write_back_acknowledges_before_the_store_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let id = ObjectId::new("app", "scratch", "k").unwrap();
        let gone = ObjectId::new("app", "scratch", "gone").unwrap();
        {
            let objects = open(store.clone(), &dir, &["app/scratch"]).await;
            objects.create_bucket(&id.bucket).await.unwrap();
            objects
                .put(&gone, Bytes::from_static(b"old"))
                .await
                .unwrap();
            objects.flush().await.unwrap();
            objects.put(&id, Bytes::from_static(b"v1")).await.unwrap();
            objects.put(&id, Bytes::from_static(b"v2")).await.unwrap();
            objects.delete(&gone).await.unwrap();
            // Acknowledged, readable and listed, not yet in the store.
            assert_eq!(&objects.get(&id).await.unwrap().body[..], b"v2");
            assert!(store.head(&id.path()).await.is_err());
            let keys: Vec<_> = objects
                .list_page(&id.bucket, &ListQuery::default())
                .await
                .unwrap()
                .objects
                .into_iter()
                .map(|o| o.key)
                .collect();
            assert_eq!(keys, ["k"]);
            assert_eq!(objects.stats().dirty_objects, 2);
            // Dropped without a flush: as a crash leaves it.
        }
        let objects = open(store.clone(), &dir, &["app/scratch"]).await;
        objects.flush().await.unwrap();
        let stored = store.get(&id.path()).await.unwrap().bytes().await.unwrap();
        assert_eq!(&stored[..], b"v2");
        assert!(store.head(&gone.path()).await.is_err());
        assert_eq!(objects.stats().dirty_objects, 0);
    }

    #[tokio::test]
    async fn a_store_that_is_down_serves_cached_reads_and_queues_write_back_until_full() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Switchable::default());
        let objects = open(store.clone(), &dir, &["app/bulk"]).await;
        let bulk = BucketId::new("app", "bulk").unwrap();
        let plain = BucketId::new("app", "plain").unwrap();
        objects.create_bucket(&bulk).await.unwrap();
        objects.create_bucket(&plain).await.unwrap();
        let cached = plain.object("cached").unwrap();
        objects
            .put(&cached, Bytes::from_static(b"kept"))
            .await
            .unwrap();
        store.down.store(true, Ordering::Relaxed);
        assert_eq!(&objects.get(&cached).await.unwrap().body[..], b"kept");
        assert!(matches!(
            objects.put(&cached, Bytes::from_static(b"new")).await,
            Err(ObjectError::Unavailable(_))
        ));
        assert!(matches!(
            objects.get(&plain.object("never-read").unwrap()).await,
            Err(ObjectError::Unavailable(_))
        ));
        let body = Bytes::from(vec![7u8; 60 << 10]);
        for i in 0..3 {
            let id = bulk.object(&format!("o{i}")).unwrap();
            objects.put(&id, body.clone()).await.unwrap();
        }
        let fourth = bulk.object("o3").unwrap();
        assert!(matches!(
            objects.put(&fourth, body.clone()).await,
            Err(ObjectError::Full(_))
        ));
        assert!(matches!(
            objects.flush().await,
            Err(ObjectError::Unavailable(_))
        ));
        assert_eq!(objects.stats().dirty_objects, 3);
        store.down.store(false, Ordering::Relaxed);
        objects.flush().await.unwrap();
        objects.put(&fourth, body).await.unwrap();
        objects.flush().await.unwrap();
        for i in 0..4 {
            let path = bulk.object(&format!("o{i}")).unwrap().path();
            assert_eq!(store.inner.head(&path).await.unwrap().size, 60 << 10);
        }
    }

    #[tokio::test]
    async fn cached_objects_are_served_while_the_store_is_gone_and_shrinking_drops_them() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let objects = open(store.clone(), &dir, &[]).await;
        let bucket = BucketId::new("app", "data").unwrap();
        objects.create_bucket(&bucket).await.unwrap();
        let id = bucket.object("x").unwrap();
        objects
            .put(&id, Bytes::from(vec![1u8; 1000]))
            .await
            .unwrap();
        // The store loses the object behind the cache's back: the cached copy still answers.
        store.delete(&id.path()).await.unwrap();
        assert_eq!(objects.get(&id).await.unwrap().body.len(), 1000);
        objects.set_capacity(0);
        assert_eq!(objects.stats().cached_objects, 0);
        assert!(matches!(
            objects.get(&id).await,
            Err(ObjectError::NoSuchKey(_))
        ));
    }
}
