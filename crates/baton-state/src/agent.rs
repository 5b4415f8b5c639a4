//! The state agent's core: the objects of this node, the rule that applies a local operation
//! (at once, with read-your-writes), the coalescing of deltas for peers, and the merging of
//! what peers send. Networking lives in `peers`, the guest and HTTP APIs on top.

use crate::entry::{Coverage, Entry, Update};
use crate::log::{Cadence, Log, Source, Writer};
use crate::metrics::StateMetrics;
use crate::{Kind, Object, ObjectKey, Op, Query, StateError, Value};
use baton_crdt::ReplicaId;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Notify, oneshot};

/// What one node accepts.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Largest register value, set member or map key. Default 64 KiB.
    pub max_value_bytes: usize,
    /// Largest vector length. Default 16 Mi elements.
    pub max_vector_len: u64,
    /// Most objects on a node, deleted ones included. Default 1,000,000.
    pub max_objects: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_value_bytes: 64 << 10,
            max_vector_len: 16 << 20,
            max_objects: 1_000_000,
        }
    }
}

/// When an operation is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Durability {
    /// After the update is committed to this node's log (fsynced).
    Durable,
    /// At once: a crash within milliseconds may lose it on this node.
    Async,
}

/// What `read` returns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reading {
    /// The object's type.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Its node-local version: every change on this node bumps it.
    pub version: u64,
    /// The answer to the query.
    pub value: Value,
}

/// An object as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listed {
    /// Its name.
    pub name: String,
    /// Its type.
    #[serde(rename = "type")]
    pub kind: Kind,
    /// Its node-local version.
    pub version: u64,
}

/// One entry of an anti-entropy digest: what a node has seen of an object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DigestEntry {
    pub key: ObjectKey,
    pub generation: u64,
    pub seen: Vec<(ReplicaId, u64)>,
}

/// The state agent of one node. Cheap to clone.
#[derive(Clone)]
pub struct Agent {
    inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub replica: ReplicaId,
    pub limits: Limits,
    pub default_durability: Durability,
    objects: Mutex<Objects>,
    watchers: Mutex<HashMap<ObjectKey, Arc<Notify>>>,
    log: Log,
    clock: AtomicU64,
    pub metrics: StateMetrics,
    /// Test-only fault injection: drop every message to and from peers.
    pub partitioned: AtomicBool,
}

/// An operation applied in memory: its version, the update to log and ship, and the value
/// after it when asked for.
struct Applied {
    version: u64,
    update: Update,
    value: Option<Value>,
}

#[derive(Default)]
struct Objects {
    map: HashMap<ObjectKey, Entry>,
    /// Objects with local updates not yet shipped.
    unshipped: Vec<ObjectKey>,
    /// Objects changed since the last snapshot of the log.
    unsnapshotted: HashSet<ObjectKey>,
    /// The sum of the entries' `encoded_bytes`.
    encoded_bytes: usize,
}

pub(crate) fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl Agent {
    /// Opens the agent's log in `path` (created if absent), rebuilds its objects, and starts
    /// the log writer. Each start is a new replica epoch.
    pub fn open(
        path: &Path,
        limits: Limits,
        default_durability: Durability,
        metrics: StateMetrics,
    ) -> anyhow::Result<Agent> {
        Self::open_with(
            path,
            limits,
            default_durability,
            metrics,
            Cadence::default(),
        )
    }

    /// [`Agent::open`] with the log writer's cadence given.
    pub(crate) fn open_with(
        path: &Path,
        limits: Limits,
        default_durability: Durability,
        metrics: StateMetrics,
        cadence: Cadence,
    ) -> anyhow::Result<Agent> {
        let (log, recovered, writer) = crate::log::Log::open(path, 65_536)?;
        let writer = writer.with_cadence(cadence);
        let mut objects = Objects::default();
        for update in &recovered.updates {
            objects
                .map
                .entry(update.key.clone())
                .or_default()
                .merge(update);
        }
        for (key, entry) in objects.map.iter_mut() {
            if entry.object.is_some() {
                entry.encoded_bytes = entry.whole_size(key);
                objects.encoded_bytes += entry.encoded_bytes;
            }
        }
        metrics.state_bytes.set(objects.encoded_bytes as i64);
        let count = objects.map.len();
        let agent = Agent {
            inner: Arc::new(Inner {
                replica: recovered.replica,
                limits,
                default_durability,
                objects: Mutex::new(objects),
                watchers: Mutex::default(),
                log,
                clock: AtomicU64::new(0),
                metrics,
                partitioned: AtomicBool::new(false),
            }),
        };
        agent.inner.metrics.objects.set(count as i64);
        start_writer(writer, Arc::downgrade(&agent.inner));
        tracing::info!(
            replica = ?recovered.replica,
            objects = count,
            replayed = recovered.updates.len(),
            "state agent open"
        );
        Ok(agent)
    }

    pub(crate) fn inner(&self) -> &Inner {
        &self.inner
    }

    /// This start's replica id.
    pub fn replica(&self) -> ReplicaId {
        self.inner.replica
    }

    /// The durability used when a caller does not choose.
    pub fn default_durability(&self) -> Durability {
        self.inner.default_durability
    }

    /// Applies `op` to `key` (creating the object with the op's type if absent): visible to
    /// readers on this node at once; acknowledged per `durability`. Returns the new version.
    pub async fn apply(
        &self,
        key: &ObjectKey,
        op: Op,
        durability: Durability,
    ) -> Result<u64, StateError> {
        let (version, update) = self.apply_in_memory(key, op)?;
        self.persist(update, durability).await?;
        Ok(version)
    }

    /// Applies several operations, each as [`Agent::apply`] would, in order. Consecutive
    /// operations on one object become one log record (their deltas joined), and all records
    /// share one group commit: a batch of a thousand increments costs about one write.
    pub async fn apply_all(
        &self,
        ops: Vec<(ObjectKey, Op)>,
        durability: Durability,
    ) -> Vec<Result<u64, StateError>> {
        let mut results = Vec::with_capacity(ops.len());
        let mut records: Vec<Update> = Vec::new();
        for (key, op) in ops {
            match self.apply_in_memory(&key, op) {
                Ok((version, update)) => {
                    results.push(Ok(version));
                    match records.last_mut() {
                        Some(last) if extends(last, &update) => join_into(last, &update),
                        _ => records.push(update),
                    }
                }
                Err(e) => results.push(Err(e)),
            }
        }
        let mut acks = Vec::with_capacity(records.len());
        let mut failure = None;
        for record in records {
            match self.queue(record, durability).await {
                Ok(ack) => acks.extend(ack),
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        for ack in acks {
            if let Err(e) = wait(ack).await {
                failure.get_or_insert(e);
            }
        }
        if let Some(error) = failure {
            // Applied here but not known durable: no operation of the batch is acknowledged.
            for result in &mut results {
                if result.is_ok() {
                    *result = Err(error.clone());
                }
            }
        }
        results
    }

    /// Deletes `key`: every update made before the delete (here or, once it arrives, anywhere)
    /// is gone; a write concurrent with it is lost too. True when the object existed.
    pub async fn delete(
        &self,
        key: &ObjectKey,
        durability: Durability,
    ) -> Result<bool, StateError> {
        let (existed, update) = {
            let mut objects = self.inner.objects.lock().unwrap();
            let Some(entry) = objects.map.get_mut(key) else {
                return Ok(false);
            };
            if entry.object.is_none() {
                return Ok(false);
            }
            let deletion = Update {
                key: key.clone(),
                generation: entry.generation + 1,
                object: None,
                coverage: Coverage::Full(Vec::new()),
                created_micros: now_micros(),
            };
            entry.merge(&deletion);
            entry.pending = Some(deletion.clone());
            objects.unshipped.push(key.clone());
            objects.unsnapshotted.insert(key.clone());
            (true, deletion)
        };
        self.notify(key);
        self.persist(update, durability).await?;
        Ok(existed)
    }

    /// Applies `op` and returns the object's value just after it, read under the same lock as
    /// the change: an increment that reports the number it made, not one a concurrent caller
    /// made after it.
    pub async fn apply_and_read(
        &self,
        key: &ObjectKey,
        op: Op,
        durability: Durability,
    ) -> Result<(u64, Value), StateError> {
        let applied = self
            .apply_where(key, op, None, true)?
            .expect("an operation without a precondition applies");
        self.persist(applied.update, durability).await?;
        let value = applied.value.expect("asked to read after applying");
        Ok((applied.version, value))
    }

    /// Applies `op` only if `key`'s version on this node is still `expected` (as
    /// [`Agent::snapshot`] gave it; 0 for an object that never existed here): the check and the
    /// change are one step on this node. `None`, and nothing changed, when the version moved.
    /// Writes on other nodes concurrent with it still merge as the object's type merges.
    pub async fn apply_if_version(
        &self,
        key: &ObjectKey,
        op: Op,
        expected: u64,
        durability: Durability,
    ) -> Result<Option<u64>, StateError> {
        let Some(applied) = self.apply_where(key, op, Some(expected), false)? else {
            return Ok(None);
        };
        self.persist(applied.update, durability).await?;
        Ok(Some(applied.version))
    }

    /// `key`'s node-local version and, when it exists, its type and whole value, read in one
    /// step: what a compare-and-swap starts from.
    pub fn snapshot(&self, key: &ObjectKey) -> (u64, Option<(Kind, Value)>) {
        let objects = self.inner.objects.lock().unwrap();
        let Some(entry) = objects.map.get(key) else {
            return (0, None);
        };
        let value = entry.object.as_ref().and_then(|object| {
            let value = object.read(&key.name, &Query::Value).ok()?;
            Some((object.kind(), value))
        });
        (entry.version, value)
    }

    fn apply_in_memory(&self, key: &ObjectKey, op: Op) -> Result<(u64, Update), StateError> {
        let applied = self
            .apply_where(key, op, None, false)?
            .expect("an operation without a precondition applies");
        Ok((applied.version, applied.update))
    }

    /// Applies `op` under the objects' lock if the object's version is `expected` (any when
    /// `None`); reads the new value too when `read` is set. `None` when the version moved.
    fn apply_where(
        &self,
        key: &ObjectKey,
        op: Op,
        expected: Option<u64>,
        read: bool,
    ) -> Result<Option<Applied>, StateError> {
        op.check(&self.inner.limits)?;
        let now = now_micros();
        let stamp = self.tick(now);
        let replica = self.inner.replica;
        let result = {
            let mut guard = self.inner.objects.lock().unwrap();
            let objects = &mut *guard;
            if !objects.map.contains_key(key) && objects.map.len() >= self.inner.limits.max_objects
            {
                return Err(StateError::TooLarge(format!(
                    "this node holds {} objects, its limit",
                    objects.map.len()
                )));
            }
            let current = objects.map.get(key).map_or(0, |e| e.version);
            if expected.is_some_and(|expected| expected != current) {
                return Ok(None);
            }
            let entry = objects.map.entry(key.clone()).or_default();
            let object = match &mut entry.object {
                Some(object) => {
                    if !object.accepts(&op) {
                        return Err(StateError::TypeMismatch {
                            object: key.name.clone(),
                            actual: object.kind(),
                            expected: op.kind().unwrap_or(Kind::RegisterMap),
                        });
                    }
                    object
                }
                None => match op.kind() {
                    Some(kind) => entry.object.insert(Object::new(kind)),
                    None => return Err(StateError::NotFound(key.name.clone())),
                },
            };
            let delta = object.apply(replica, stamp, op);
            let value = if read {
                Some(object.read(&key.name, &Query::Value)?)
            } else {
                None
            };
            let from = entry.seen.get(&replica).copied().unwrap_or(0);
            entry.seen.insert(replica, from + 1);
            entry.version += 1;
            let version = entry.version;
            let update = Update {
                key: key.clone(),
                generation: entry.generation,
                object: Some(delta),
                coverage: Coverage::Range {
                    origin: replica,
                    from,
                    to: from + 1,
                },
                created_micros: now,
            };
            let newly_pending = coalesce(&mut entry.pending, &update);
            if newly_pending {
                objects.unshipped.push(key.clone());
            }
            self.inner.metrics.objects.set(objects.map.len() as i64);
            objects.unsnapshotted.insert(key.clone());
            Applied {
                version,
                update,
                value,
            }
        };
        self.inner.metrics.local_ops.inc();
        self.notify(key);
        Ok(Some(result))
    }

    /// A stamp for last-writer-wins registers: wall-clock µs, strictly increasing per node.
    fn tick(&self, now: u64) -> u64 {
        let previous = self
            .inner
            .clock
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |last| {
                Some(now.max(last + 1))
            })
            .unwrap_or(now);
        now.max(previous + 1)
    }

    async fn queue(
        &self,
        update: Update,
        durability: Durability,
    ) -> Result<Option<oneshot::Receiver<Result<(), String>>>, StateError> {
        match durability {
            Durability::Durable => {
                let (tx, rx) = oneshot::channel();
                self.inner
                    .log
                    .append(&update, Some(tx))
                    .await
                    .map_err(StateError::Unavailable)?;
                Ok(Some(rx))
            }
            Durability::Async => {
                self.inner
                    .log
                    .append(&update, None)
                    .await
                    .map_err(StateError::Unavailable)?;
                Ok(None)
            }
        }
    }

    async fn persist(&self, update: Update, durability: Durability) -> Result<(), StateError> {
        match self.queue(update, durability).await? {
            Some(ack) => wait(ack).await,
            None => Ok(()),
        }
    }

    /// Answers `query` on `key`.
    pub fn read(&self, key: &ObjectKey, query: &Query) -> Result<Reading, StateError> {
        let objects = self.inner.objects.lock().unwrap();
        let entry = objects
            .map
            .get(key)
            .ok_or_else(|| StateError::NotFound(key.name.clone()))?;
        let object = entry
            .object
            .as_ref()
            .ok_or_else(|| StateError::NotFound(key.name.clone()))?;
        Ok(Reading {
            kind: object.kind(),
            version: entry.version,
            value: object.read(&key.name, query)?,
        })
    }

    /// The object's node-local version (0 when it never existed here).
    pub fn version(&self, key: &ObjectKey) -> u64 {
        let objects = self.inner.objects.lock().unwrap();
        objects.map.get(key).map_or(0, |e| e.version)
    }

    /// Waits until `key`'s version is past `after`, or `timeout`; returns the version then.
    pub async fn watch(&self, key: &ObjectKey, after: u64, timeout: Duration) -> u64 {
        let notify = self
            .inner
            .watchers
            .lock()
            .unwrap()
            .entry(key.clone())
            .or_default()
            .clone();
        let deadline = tokio::time::Instant::now() + timeout;
        let version = loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let version = self.version(key);
            if version > after {
                break version;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                break self.version(key);
            }
        };
        drop(notify);
        let mut watchers = self.inner.watchers.lock().unwrap();
        if watchers.get(key).is_some_and(|n| Arc::strong_count(n) == 1) {
            watchers.remove(key);
        }
        version
    }

    fn notify(&self, key: &ObjectKey) {
        let watchers = self.inner.watchers.lock().unwrap();
        if let Some(notify) = watchers.get(key) {
            notify.notify_waiters();
        }
    }

    /// The live objects of `namespace`, by name.
    pub fn list(&self, namespace: &str) -> Vec<Listed> {
        let objects = self.inner.objects.lock().unwrap();
        let mut listed: Vec<Listed> = objects
            .map
            .iter()
            .filter(|(k, _)| k.namespace == namespace)
            .filter_map(|(k, e)| {
                e.object.as_ref().map(|o| Listed {
                    name: k.name.clone(),
                    kind: o.kind(),
                    version: e.version,
                })
            })
            .collect();
        listed.sort_by(|a, b| a.name.cmp(&b.name));
        listed
    }

    /// Takes the coalesced local updates for shipping.
    pub(crate) fn take_unshipped(&self) -> Vec<Update> {
        let mut objects = self.inner.objects.lock().unwrap();
        let keys = std::mem::take(&mut objects.unshipped);
        keys.iter()
            .filter_map(|k| objects.map.get_mut(k).and_then(|e| e.pending.take()))
            .collect()
    }

    /// Merges updates from a peer. They reach this node's disk with its next snapshot, not one
    /// by one: they are durable at their origin, and after a crash the peers' bootstrap and
    /// anti-entropy give back what the last snapshot lacks.
    pub(crate) fn merge_remote(&self, updates: &[Update]) {
        let now = now_micros();
        let mut changed = Vec::new();
        {
            let mut guard = self.inner.objects.lock().unwrap();
            let objects = &mut *guard;
            for update in updates {
                if !objects.map.contains_key(&update.key)
                    && objects.map.len() >= self.inner.limits.max_objects
                {
                    self.inner.metrics.rejected("object-limit");
                    continue;
                }
                let entry = objects.map.entry(update.key.clone()).or_default();
                if entry.merge(update) {
                    objects.unsnapshotted.insert(update.key.clone());
                    changed.push(update);
                }
            }
            self.inner.metrics.objects.set(objects.map.len() as i64);
        }
        for update in &changed {
            self.inner
                .metrics
                .lag
                .observe(now.saturating_sub(update.created_micros) as f64 / 1e6);
            self.inner.metrics.deltas_applied.inc();
            self.notify(&update.key);
        }
    }

    /// What this node has seen of every object, for anti-entropy.
    pub(crate) fn digest(&self) -> Vec<DigestEntry> {
        let objects = self.inner.objects.lock().unwrap();
        objects
            .map
            .iter()
            .map(|(key, e)| DigestEntry {
                key: key.clone(),
                generation: e.generation,
                seen: e.seen.iter().map(|(r, n)| (*r, *n)).collect(),
            })
            .collect()
    }

    /// The objects this node has something of that the digest's sender lacks; `true` marks
    /// those it lacks entirely.
    pub(crate) fn lagging(&self, digest: &[DigestEntry]) -> Vec<(ObjectKey, bool)> {
        let theirs: HashMap<&ObjectKey, &DigestEntry> =
            digest.iter().map(|d| (&d.key, d)).collect();
        let objects = self.inner.objects.lock().unwrap();
        objects
            .map
            .iter()
            .filter_map(|(key, entry)| match theirs.get(key) {
                Some(d) => entry
                    .ahead_of(d.generation, &d.seen)
                    .then(|| (key.clone(), false)),
                None => {
                    (entry.object.is_some() || entry.generation > 0).then(|| (key.clone(), true))
                }
            })
            .collect()
    }

    /// The whole states of `keys`, for repairs.
    pub(crate) fn states(&self, keys: &[ObjectKey]) -> Vec<Update> {
        let now = now_micros();
        let objects = self.inner.objects.lock().unwrap();
        keys.iter()
            .filter_map(|k| objects.map.get(k).map(|e| e.as_update(k, now)))
            .collect()
    }

    /// Each of `keys` whole, encoded for the log's snapshot, one object per hold of the
    /// objects' lock (a timeline of hundreds of posts takes tens of microseconds to encode;
    /// operations interleave with a snapshot instead of waiting for a run of them). Each
    /// encoding holds every update applied before it, so every record already in the log is
    /// covered, and later records are replayed over it (joins are idempotent).
    fn snapshot_rows(&self, keys: &[ObjectKey]) -> Vec<(Vec<u8>, Vec<u8>)> {
        let now = now_micros();
        let mut rows = Vec::with_capacity(keys.len());
        for key in keys {
            let mut guard = self.inner.objects.lock().unwrap();
            let objects = &mut *guard;
            let Some(entry) = objects.map.get_mut(key) else {
                continue;
            };
            let bytes = entry.encode_whole(key, now);
            let size = if entry.object.is_some() {
                bytes.len()
            } else {
                0
            };
            objects.encoded_bytes = objects.encoded_bytes - entry.encoded_bytes + size;
            entry.encoded_bytes = size;
            self.inner
                .metrics
                .state_bytes
                .set(objects.encoded_bytes as i64);
            drop(guard);
            rows.push((baton_crdt::encode(key), bytes));
        }
        rows
    }
}

/// The agent's objects as the log writer snapshots them; gone with the agent.
struct Snapshots(Weak<Inner>);

impl Source for Snapshots {
    fn changed(&mut self) -> Option<Vec<ObjectKey>> {
        let inner = self.0.upgrade()?;
        let keys = std::mem::take(&mut inner.objects.lock().unwrap().unsnapshotted);
        Some(keys.into_iter().collect())
    }

    fn rows(&mut self, keys: &[ObjectKey]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
        let inner = self.0.upgrade()?;
        Some(Agent { inner }.snapshot_rows(keys))
    }

    fn written(&mut self, _: usize) {
        if let Some(inner) = self.0.upgrade() {
            inner.metrics.snapshots.inc();
        }
    }

    fn unwritten(&mut self, keys: &[ObjectKey]) {
        if let Some(inner) = self.0.upgrade() {
            let mut objects = inner.objects.lock().unwrap();
            objects.unsnapshotted.extend(keys.iter().cloned());
        }
    }
}

fn start_writer(writer: Writer, agent: Weak<Inner>) {
    writer.spawn(Box::new(Snapshots(agent)));
}

/// Joins `update` into the pending delta; true when there was none.
fn coalesce(pending: &mut Option<Update>, update: &Update) -> bool {
    match pending {
        Some(p) if p.generation == update.generation => {
            join_into(p, update);
            false
        }
        _ => {
            let was_none = pending.is_none();
            *pending = Some(update.clone());
            was_none
        }
    }
}

/// True when `next` is the local update right after `last` on the same object: the two can be
/// logged as one ([`join_into`]).
fn extends(last: &Update, next: &Update) -> bool {
    match (&last.coverage, &next.coverage) {
        (
            Coverage::Range { origin, to, .. },
            Coverage::Range {
                origin: o, from, ..
            },
        ) => {
            last.key == next.key
                && last.generation == next.generation
                && origin == o
                && to == from
                && last.object.is_some()
                && next.object.is_some()
        }
        _ => false,
    }
}

/// Joins `update`, a later update of the same object and generation, into `p`: its object
/// and the range of the origin's updates it covers.
fn join_into(p: &mut Update, update: &Update) {
    if let (Some(mine), Some(new)) = (&mut p.object, &update.object) {
        mine.join(new);
    } else if p.object.is_none() {
        // A deletion pending: the writes after it ship in the same message.
        p.object = update.object.clone();
    }
    match (&mut p.coverage, &update.coverage) {
        (Coverage::Range { to, .. }, Coverage::Range { to: new_to, .. }) => *to = *new_to,
        (Coverage::Full(seen), Coverage::Range { origin, to, .. }) => {
            seen.retain(|(r, _)| r != origin);
            seen.push((*origin, *to));
        }
        _ => {}
    }
}

async fn wait(ack: oneshot::Receiver<Result<(), String>>) -> Result<(), StateError> {
    match ack.await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(error)) => Err(StateError::Unavailable(format!("durable log: {error}"))),
        Err(_) => Err(StateError::Unavailable("the durable log stopped".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Opens the agent in `dir`, waiting while a dropped agent's writer still holds the file.
    async fn open(dir: &Path) -> Agent {
        for _ in 0..500 {
            let opened = Agent::open(
                &dir.join("state.redb"),
                Limits::default(),
                Durability::Durable,
                StateMetrics::default(),
            );
            if let Ok(agent) = opened {
                return agent;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        panic!("the state log stayed locked");
    }

    #[tokio::test]
    async fn state_survives_a_restart_as_a_new_epoch_and_deletes_stay_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let key = ObjectKey::new("app", "s").unwrap();
        let gone = ObjectKey::new("app", "gone").unwrap();
        let first_replica = {
            let agent = open(dir.path()).await;
            for member in ["a", "b", "c"] {
                let op = Op::SetAdd {
                    member: member.into(),
                };
                agent.apply(&key, op, Durability::Durable).await.unwrap();
            }
            let op = Op::SetRemove { member: "b".into() };
            agent.apply(&key, op, Durability::Durable).await.unwrap();
            let op = Op::CounterAdd { amount: 1 };
            agent.apply(&gone, op, Durability::Durable).await.unwrap();
            assert!(agent.delete(&gone, Durability::Durable).await.unwrap());
            assert!(!agent.delete(&gone, Durability::Durable).await.unwrap());
            agent.replica()
        };
        let agent = open(dir.path()).await;
        assert_eq!(agent.replica().node, first_replica.node);
        assert_eq!(agent.replica().epoch, first_replica.epoch + 1);
        let members = agent.read(&key, &Query::Value).unwrap().value;
        assert_eq!(members, Value::Strings(vec!["a".into(), "c".into()]));
        assert!(matches!(
            agent.read(&gone, &Query::Value),
            Err(StateError::NotFound(_))
        ));
        // Re-created after the delete: a fresh object of any type.
        let op = Op::FlagEnable;
        agent.apply(&gone, op, Durability::Durable).await.unwrap();
        assert_eq!(
            agent.read(&gone, &Query::Value).unwrap().value,
            Value::Bool(true)
        );
    }

    /// A snapshot that fails part-way hands its unwritten objects back: the next snapshot
    /// takes them with whatever changed since, and the written ones only if they changed.
    #[tokio::test]
    async fn a_failed_snapshot_leaves_its_unwritten_objects_to_the_next() {
        let dir = tempfile::tempdir().unwrap();
        // Thresholds out of reach: the writer never takes the changed objects itself.
        let cadence = Cadence {
            snapshot_every: u64::MAX,
            snapshot_interval: Duration::from_secs(24 * 3600),
            ..Cadence::default()
        };
        let agent = Agent::open_with(
            &dir.path().join("state.redb"),
            Limits::default(),
            Durability::Durable,
            StateMetrics::default(),
            cadence,
        )
        .unwrap();
        let key = |name: &str| ObjectKey::new("app", name).unwrap();
        for name in ["a", "b", "c"] {
            let op = Op::CounterAdd { amount: 1 };
            agent
                .apply(&key(name), op, Durability::Durable)
                .await
                .unwrap();
        }
        let mut source = Snapshots(Arc::downgrade(&agent.inner));
        let sorted = |mut keys: Vec<ObjectKey>| {
            keys.sort();
            keys
        };
        let taken = sorted(source.changed().unwrap());
        assert_eq!(taken, vec![key("a"), key("b"), key("c")]);
        assert_eq!(source.changed().unwrap(), vec![], "taken means forgotten");
        // "a" was written before the failure; "b" and "c" were not. "d" changes meanwhile.
        source.unwritten(&taken[1..]);
        let op = Op::CounterAdd { amount: 1 };
        agent
            .apply(&key("d"), op, Durability::Durable)
            .await
            .unwrap();
        assert_eq!(
            sorted(source.changed().unwrap()),
            vec![key("b"), key("c"), key("d")]
        );
    }

    #[tokio::test]
    async fn a_restart_after_log_compaction_keeps_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let counters: Vec<ObjectKey> = (0..40)
            .map(|i| ObjectKey::new("app", &format!("c{i}")).unwrap())
            .collect();
        let other = ObjectKey::new("app", "v").unwrap();
        let writes = 25_000;
        {
            // Snapshots every 2,000 records, eight objects a step: many snapshots, each
            // interleaved with the writes that keep coming (the last may be cut short by
            // the stop, which loses nothing either).
            let cadence = Cadence {
                snapshot_every: 2_000,
                step_objects: 8,
                step_pause: 0,
                ..Cadence::default()
            };
            let agent = loop {
                let opened = Agent::open_with(
                    &path,
                    Limits::default(),
                    Durability::Durable,
                    StateMetrics::default(),
                    cadence.clone(),
                );
                if let Ok(agent) = opened {
                    break agent;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            };
            for i in 0..writes {
                let op = Op::CounterAdd { amount: i % 3 };
                let key = &counters[i as usize % counters.len()];
                agent.apply(key, op, Durability::Async).await.unwrap();
            }
            // However the writer thread was scheduled, a snapshot that began after every
            // write above completes while the agent lives (the one in progress now, if any,
            // may have begun before): two more complete, with records still arriving.
            let before = agent.inner.metrics.snapshots.get();
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while agent.inner.metrics.snapshots.get() < before + 2 {
                assert!(std::time::Instant::now() < deadline, "no snapshot in 60 s");
                for _ in 0..100 {
                    let op = Op::CounterAdd { amount: 0 };
                    agent
                        .apply(&counters[0], op, Durability::Async)
                        .await
                        .unwrap();
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            let op = Op::VectorAdd {
                offset: 10,
                values: vec![1.0, 2.0],
            };
            agent.apply(&other, op, Durability::Durable).await.unwrap();
        }
        let agent = open(dir.path()).await;
        for (n, key) in counters.iter().enumerate() {
            let expected: i64 = (0..writes)
                .filter(|i| *i as usize % counters.len() == n)
                .map(|i| i % 3)
                .sum();
            assert_eq!(
                agent.read(key, &Query::Value).unwrap().value,
                Value::Int(expected),
                "{key:?}"
            );
        }
        let sum = Query::VectorSum {
            offset: 0,
            len: None,
        };
        assert_eq!(agent.read(&other, &sum).unwrap().value, Value::Number(3.0));
        drop(agent);
        // The log was cut: a start reads snapshot rows and the records since, not every write.
        let recovered = loop {
            match crate::log::Log::open(&path, 16) {
                Ok((_, recovered, _)) => break recovered,
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        assert!(
            recovered.updates.len() < writes as usize / 2,
            "{} updates read back",
            recovered.updates.len()
        );
    }

    #[tokio::test]
    async fn a_batch_applies_in_order_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            ObjectKey::new("app", "a").unwrap(),
            ObjectKey::new("app", "b").unwrap(),
        );
        {
            let agent = open(dir.path()).await;
            // Runs on one object (logged as one record each), interleaved with another object
            // and with an operation of the wrong type, which fails alone.
            let mut ops = Vec::new();
            for i in 0..3000i64 {
                let key = if (i / 1000) % 2 == 0 { &a } else { &b };
                ops.push((key.clone(), Op::CounterAdd { amount: i }));
            }
            ops.insert(1500, (a.clone(), Op::FlagEnable));
            let results = agent.apply_all(ops, Durability::Durable).await;
            assert_eq!(results.len(), 3001);
            assert!(matches!(
                results[1500],
                Err(StateError::TypeMismatch { .. })
            ));
            assert_eq!(
                results[999],
                Ok(1000),
                "versions count the object's own updates"
            );
            assert_eq!(results[3000], Ok(2000));
            assert_eq!(results.iter().filter(|r| r.is_ok()).count(), 3000);
        }
        let agent = open(dir.path()).await;
        let sum = |range: std::ops::Range<i64>| Value::Int(range.sum());
        let expected_a = (0..1000).chain(2000..3000).sum::<i64>();
        assert_eq!(
            agent.read(&a, &Query::Value).unwrap().value,
            Value::Int(expected_a)
        );
        assert_eq!(
            agent.read(&b, &Query::Value).unwrap().value,
            sum(1000..2000)
        );
    }

    #[tokio::test]
    async fn repairs_carry_only_what_the_digest_sender_lacks() {
        let dir = tempfile::tempdir().unwrap();
        let agent = open(dir.path()).await;
        let (x, y) = (
            ObjectKey::new("app", "x").unwrap(),
            ObjectKey::new("app", "y").unwrap(),
        );
        for key in [&x, &y] {
            let op = Op::CounterAdd { amount: 2 };
            agent.apply(key, op, Durability::Async).await.unwrap();
        }
        let mut digest = agent.digest();
        assert!(agent.lagging(&digest).is_empty());
        digest.retain(|d| d.key == x);
        assert_eq!(agent.lagging(&digest), [(y.clone(), true)]);
        // A peer that saw fewer of x's updates lags on x.
        digest[0].seen[0].1 = 0;
        let mut lagging = agent.lagging(&digest);
        lagging.sort();
        assert_eq!(lagging, [(x.clone(), false), (y.clone(), true)]);
        let repairs = agent.states(std::slice::from_ref(&y));
        assert_eq!(repairs.len(), 1);
        assert_eq!(repairs[0].key, y);
        let unshipped = agent.take_unshipped();
        assert_eq!(unshipped.len(), 2, "one coalesced delta per object");
        assert!(agent.take_unshipped().is_empty());
    }

    #[tokio::test]
    async fn a_watch_returns_at_its_deadline_when_nothing_changes() {
        let dir = tempfile::tempdir().unwrap();
        let agent = open(dir.path()).await;
        let key = ObjectKey::new("app", "w").unwrap();
        assert_eq!(agent.watch(&key, 0, Duration::from_millis(20)).await, 0);
        let op = Op::CounterAdd { amount: 1 };
        agent.apply(&key, op, Durability::Async).await.unwrap();
        assert_eq!(agent.watch(&key, 0, Duration::from_secs(5)).await, 1);
    }
}
