//! The durable log: every update a node makes or receives is appended to a redb file by one
//! writer thread that commits in groups (one fsync for every update that arrived while the
//! previous commit ran), and acknowledges durable writes only after their commit. Periodically
//! the objects changed since the last snapshot are written whole and the log before them cut.

use crate::entry::Update;
use baton_crdt::{ReplicaId, decode, encode};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const OBJECTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("objects");
const LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("log");

/// Updates a group commit takes at most.
const GROUP: usize = 8192;
/// Log records after which the changed objects are snapshotted and the log cut.
const SNAPSHOT_EVERY: u64 = 20_000;

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
            txn.open_table(LOG)?;
        }
        txn.commit()?;
        let mut updates = Vec::new();
        let read = db.begin_read()?;
        for row in read.open_table(OBJECTS)?.iter()? {
            let (_, value) = row?;
            updates.push(decode::<Update>(value.value())?);
        }
        let mut next_seq = 1;
        for row in read.open_table(LOG)?.iter()? {
            let (seq, value) = row?;
            next_seq = seq.value() + 1;
            updates.push(decode::<Update>(value.value())?);
        }
        let (tx, rx) = mpsc::channel(queue);
        Ok((
            Log { tx },
            Recovered { replica, updates },
            Writer {
                db: Arc::new(db),
                rx,
                next_seq,
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

    /// Queues `update` without waiting for room; false when the queue is full (the update is
    /// then only in memory, and peers' anti-entropy restores it after a crash).
    pub fn try_append(&self, update: &Update) -> bool {
        let record = Record {
            bytes: encode(update),
            ack: None,
        };
        self.tx.try_send(record).is_ok()
    }
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
        let mut since_snapshot = 0u64;
        let mut batch = Vec::with_capacity(GROUP);
        while let Some(first) = self.rx.blocking_recv() {
            batch.push(first);
            while batch.len() < GROUP {
                match self.rx.try_recv() {
                    Ok(record) => batch.push(record),
                    Err(_) => break,
                }
            }
            let result = self.commit(&batch).map_err(|e| e.to_string());
            if let Err(error) = &result {
                tracing::error!(%error, "state log commit failed; durable writes are refused");
            }
            since_snapshot += batch.len() as u64;
            for record in batch.drain(..) {
                if let Some(ack) = record.ack {
                    let _ = ack.send(result.clone());
                }
            }
            if since_snapshot >= SNAPSHOT_EVERY {
                since_snapshot = 0;
                let Some(objects) = snapshot() else { break };
                if let Err(error) = self.compact(objects) {
                    tracing::error!(%error, "state snapshot failed; the log keeps growing");
                }
            }
        }
    }

    fn commit(&mut self, batch: &[Record]) -> anyhow::Result<()> {
        let txn = self.db.begin_write()?;
        {
            let mut log = txn.open_table(LOG)?;
            for record in batch {
                log.insert(self.next_seq, record.bytes.as_slice())?;
                self.next_seq += 1;
            }
        }
        txn.commit()?;
        Ok(())
    }

    /// Writes `objects` whole and removes every log record before them: each was merged in
    /// memory before it was queued, so the snapshot contains it.
    fn compact(&mut self, objects: Vec<Update>) -> anyhow::Result<()> {
        let cut = self.next_seq;
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(OBJECTS)?;
            for update in &objects {
                table.insert(encode(&update.key).as_slice(), encode(update).as_slice())?;
            }
            let mut log = txn.open_table(LOG)?;
            log.retain_in(..cut, |_, _| false)?;
        }
        txn.commit()?;
        tracing::debug!(objects = objects.len(), cut, "state snapshot written");
        Ok(())
    }
}
