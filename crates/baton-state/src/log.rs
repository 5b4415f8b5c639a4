//! The durable log: every update a node makes is appended to a redb file by one writer
//! thread that commits in groups (one fsync for every update that arrived while the previous
//! commit ran), and acknowledges durable writes only after their commit. A group is
//! one redb value (its records length-prefixed): a B-tree insert per record cost several times
//! the record's own bytes in page copies, which made the writer the bottleneck of replication.
//! Every 60 s (or 200,000 records) the objects changed since the last snapshot, by this node
//! or by its peers, are written whole and the log before them cut: that is how what peers
//! sent reaches this node's disk. A snapshot costs the whole size of every changed object
//! (a timeline of hundreds of posts rewritten for one new post), so it is rare: at every
//! 10 s the social network's timelines made it a burst of ~50 MB every 10 s, which showed as
//! ~200 ms stalls at p99 (BENCHMARKS.md, "Social network").

use crate::entry::Update;
use baton_crdt::{ReplicaId, decode, encode};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const OBJECTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("objects");
/// One record per value: the format before groups, still read at start.
const LEGACY_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");
/// One group commit per value: its records, each as a little-endian `u32` length and bytes.
const GROUPS: TableDefinition<u64, &[u8]> = TableDefinition::new("log-groups");

/// Updates a group commit takes at most.
const GROUP: usize = 8192;
/// A snapshot this long holds up the operations queued behind it enough to warn of.
const SLOW_SNAPSHOT: Duration = Duration::from_millis(250);

/// Log records after which the changed objects are snapshotted and the log cut.
const SNAPSHOT_EVERY: u64 = 200_000;
/// Longest time between snapshots of changed objects: what peers sent this node reaches its
/// disk this way (peers' deltas are not logged one by one).
const SNAPSHOT_INTERVAL: Duration = Duration::from_secs(60);
/// Longest time a commit without durable writes in it waits for its fsync: what `async`
/// durability may lose in a crash.
const SYNC_EVERY: Duration = Duration::from_millis(50);

/// Whole states of the objects changed since the previous call; `None` once the agent is gone.
pub(crate) type Snapshot = Box<dyn FnMut() -> Option<Vec<Update>> + Send>;

/// What the writer acknowledges: the commit's error, if it failed.
pub(crate) type Ack = oneshot::Sender<Result<(), String>>;

struct Record {
    bytes: Vec<u8>,
    ack: Option<Ack>,
}

/// The sending side of the log; cheap to clone.
#[derive(Clone)]
pub(crate) struct Log {
    tx: mpsc::Sender<Record>,
}

/// What a node finds in its data directory at start.
pub(crate) struct Recovered {
    /// This start's replica id: the stored node id with a new epoch.
    pub replica: ReplicaId,
    /// Snapshots, then log records in order: merging them all rebuilds every object.
    pub updates: Vec<Update>,
}

/// The writer, before it starts.
pub(crate) struct Writer {
    db: Arc<Database>,
    rx: mpsc::Receiver<Record>,
    next_seq: u64,
    /// When the oldest commit not yet fsynced was made.
    unsynced_since: Option<Instant>,
}

impl Log {
    /// Opens (or creates) the log at `path`, bumps the node's epoch durably and reads back
    /// every object. `queue` bounds the records waiting for the writer.
    pub fn open(path: &Path, queue: usize) -> anyhow::Result<(Log, Recovered, Writer)> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        let replica;
        {
            let mut meta = txn.open_table(META)?;
            let node = match meta.get("node")? {
                Some(node) => node.value(),
                None => uuid::Uuid::new_v4().as_u64_pair().0,
            };
            let epoch = meta.get("epoch")?.map_or(0, |e| e.value()) + 1;
            meta.insert("node", node)?;
            meta.insert("epoch", epoch)?;
            replica = ReplicaId::new(node, u32::try_from(epoch).unwrap_or(u32::MAX));
            txn.open_table(OBJECTS)?;
            txn.open_table(GROUPS)?;
        }
        txn.commit()?;
        let mut updates = Vec::new();
        let read = db.begin_read()?;
        for row in read.open_table(OBJECTS)?.iter()? {
            let (_, value) = row?;
            updates.push(decode::<Update>(value.value())?);
        }
        match read.open_table(LEGACY_LOG) {
            Ok(table) => {
                for row in table.iter()? {
                    updates.push(decode::<Update>(row?.1.value())?);
                }
            }
            Err(redb::TableError::TableDoesNotExist(_)) => {}
            Err(error) => return Err(error.into()),
        }
        let mut next_seq = 1;
        for row in read.open_table(GROUPS)?.iter()? {
            let (seq, value) = row?;
            next_seq = seq.value() + 1;
            for record in records(value.value())? {
                updates.push(decode::<Update>(record)?);
            }
        }
        let (tx, rx) = mpsc::channel(queue);
        Ok((
            Log { tx },
            Recovered { replica, updates },
            Writer {
                db: Arc::new(db),
                rx,
                next_seq,
                unsynced_since: None,
            },
        ))
    }

    /// Queues `update`; with `ack`, the caller learns when it is durable.
    pub async fn append(&self, update: &Update, ack: Option<Ack>) -> Result<(), String> {
        let record = Record {
            bytes: encode(update),
            ack,
        };
        self.tx
            .send(record)
            .await
            .map_err(|_| "the durable log has stopped".to_string())
    }
}

/// The records of one group, in order.
fn records(mut group: &[u8]) -> anyhow::Result<Vec<&[u8]>> {
    let mut out = Vec::new();
    while !group.is_empty() {
        let (length, rest) = group
            .split_first_chunk::<4>()
            .ok_or_else(|| anyhow::anyhow!("state log: a group ends inside a record length"))?;
        let length = u32::from_le_bytes(*length) as usize;
        if rest.len() < length {
            anyhow::bail!("state log: a group ends inside a record");
        }
        let (record, rest) = rest.split_at(length);
        out.push(record);
        group = rest;
    }
    Ok(out)
}

impl Writer {
    /// Runs the writer on its own thread until every [`Log`] is dropped. `snapshot` returns
    /// the objects changed since its previous call, whole; `None` once the agent is gone (the
    /// log must then stay as it is).
    pub fn spawn(self, snapshot: Snapshot) -> std::thread::JoinHandle<()> {
        std::thread::Builder::new()
            .name("baton-state-log".into())
            .spawn(move || self.run(snapshot))
            .expect("spawning the log writer")
    }

    fn run(mut self, mut snapshot: Snapshot) {
        // Only to wait for a record with a deadline; the writer's work is blocking.
        let clock = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a timer for the log writer");
        let mut since_snapshot = 0u64;
        let mut last_snapshot = Instant::now();
        let mut batch = Vec::with_capacity(GROUP);
        loop {
            let mut wait = SNAPSHOT_INTERVAL.saturating_sub(last_snapshot.elapsed());
            if let Some(since) = self.unsynced_since {
                wait = wait.min(SYNC_EVERY.saturating_sub(since.elapsed()));
            }
            let next = clock.block_on(async { tokio::time::timeout(wait, self.rx.recv()).await });
            match next {
                Ok(None) => break,
                Ok(Some(first)) => {
                    batch.push(first);
                    while batch.len() < GROUP {
                        match self.rx.try_recv() {
                            Ok(record) => batch.push(record),
                            Err(_) => break,
                        }
                    }
                    let sync = batch.iter().any(|r| r.ack.is_some()) || self.sync_due();
                    let result = self.commit(&batch, sync).map_err(|e| e.to_string());
                    if let Err(error) = &result {
                        tracing::error!(%error, "state log commit failed; durable writes are refused");
                    }
                    since_snapshot += batch.len() as u64;
                    for record in batch.drain(..) {
                        if let Some(ack) = record.ack {
                            let _ = ack.send(result.clone());
                        }
                    }
                }
                Err(_) if self.sync_due() => {
                    if let Err(error) = self.commit(&[], true) {
                        tracing::error!(%error, "state log sync failed");
                    }
                }
                Err(_) => {}
            }
            if since_snapshot >= SNAPSHOT_EVERY || last_snapshot.elapsed() >= SNAPSHOT_INTERVAL {
                since_snapshot = 0;
                last_snapshot = Instant::now();
                let started = Instant::now();
                let Some(objects) = snapshot() else { break };
                if objects.is_empty() {
                    continue;
                }
                let count = objects.len();
                match self.compact(objects) {
                    // Operations queue behind a snapshot: how long it took is what an
                    // operator needs to tell a stall from a slow function (as Redis logs
                    // its saves), and a long one is a warning.
                    Ok(()) => {
                        let took = started.elapsed();
                        let ms = took.as_secs_f64() * 1e3;
                        if took >= SLOW_SNAPSHOT {
                            tracing::warn!(objects = count, ms, "state snapshot stalled the log");
                        } else {
                            tracing::info!(objects = count, ms, "state snapshot written");
                        }
                    }
                    Err(error) => {
                        tracing::error!(%error, "state snapshot failed; the log keeps growing")
                    }
                }
            }
        }
    }

    fn sync_due(&self) -> bool {
        self.unsynced_since
            .is_some_and(|since| since.elapsed() >= SYNC_EVERY)
    }

    /// Commits `batch` as one group; fsynced when `sync`, else left for a later fsync (within
    /// [`SYNC_EVERY`]): a group with no durable write waiting on it need not pay one.
    fn commit(&mut self, batch: &[Record], sync: bool) -> anyhow::Result<()> {
        let size = batch.iter().map(|r| 4 + r.bytes.len()).sum();
        let mut group = Vec::with_capacity(size);
        for record in batch {
            let length = u32::try_from(record.bytes.len())?;
            group.extend_from_slice(&length.to_le_bytes());
            group.extend_from_slice(&record.bytes);
        }
        let mut txn = self.db.begin_write()?;
        if !sync {
            txn.set_durability(redb::Durability::None)?;
        }
        if !batch.is_empty() {
            txn.open_table(GROUPS)?
                .insert(self.next_seq, group.as_slice())?;
            self.next_seq += 1;
        }
        txn.commit()?;
        if sync {
            self.unsynced_since = None;
        } else {
            self.unsynced_since.get_or_insert_with(Instant::now);
        }
        Ok(())
    }

    /// Writes `objects` whole and removes every log record before them: each was merged in
    /// memory before it was queued, so the snapshot contains it.
    fn compact(&mut self, objects: Vec<Update>) -> anyhow::Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(OBJECTS)?;
            for update in &objects {
                table.insert(encode(&update.key).as_slice(), encode(update).as_slice())?;
            }
            // Every group committed so far is in the snapshot (the writer commits nothing in
            // between), so the whole table goes, without reading the groups back.
            txn.delete_table(GROUPS)?;
            txn.open_table(GROUPS)?;
            // Records of the format before groups are in the snapshot too.
            txn.delete_table(LEGACY_LOG)?;
        }
        txn.commit()?;
        self.unsynced_since = None;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::records;

    #[test]
    fn a_group_splits_into_its_records_and_a_torn_one_is_an_error() {
        let mut group = Vec::new();
        for record in [&b"first"[..], b"", b"third"] {
            group.extend_from_slice(&(record.len() as u32).to_le_bytes());
            group.extend_from_slice(record);
        }
        assert_eq!(records(&group).unwrap(), [&b"first"[..], b"", b"third"]);
        assert!(records(&group[..group.len() - 1]).is_err());
        assert!(records(&group[..2]).is_err());
    }
}
