//! The durable log: every update a node makes is appended to a redb file by one writer
//! thread that commits in groups (one fsync for every update that arrived while the previous
//! commit ran), and acknowledges durable writes only after their commit. A group is
//! one redb value (its records length-prefixed): a B-tree insert per record cost several times
//! the record's own bytes in page copies, which made the writer the bottleneck of replication.
//! A group with no durable write in it waits a few milliseconds for more records: nobody
//! waits on it, and a commit costs the same for one record or a hundred.
//!
//! Every 60 s (or 200,000 records) the objects changed since the last snapshot, by this node
//! or by its peers, are written whole and the log before them cut: that is how what peers
//! sent reaches this node's disk. A snapshot costs the whole size of every changed object
//! (a timeline of hundreds of posts rewritten for one new post), so it is written a few
//! objects a step, between group commits, and paced to a quarter of the writer's time: one
//! written at once held the writer (and a core) for a second or more with the social
//! network's timelines, and showed as second-long stalls at p99 (BENCHMARKS.md, "Social
//! network"). A crash in the middle of one loses nothing: the log is cut only after the last
//! step, and replaying a record over a snapshot that already holds it changes nothing.

use crate::ObjectKey;
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
/// Longest time a commit without durable writes in it waits for its fsync: what `async`
/// durability may lose in a crash.
const SYNC_EVERY: Duration = Duration::from_millis(50);

/// When the writer commits, snapshots and cuts: [`Cadence::default`] on a node, smaller in
/// tests so a few hundred records exercise every path.
#[derive(Debug, Clone)]
pub(crate) struct Cadence {
    /// Log records after which the changed objects are snapshotted and the log cut.
    pub snapshot_every: u64,
    /// Longest time between snapshots of changed objects: what peers sent this node reaches
    /// its disk this way (peers' deltas are not logged one by one).
    pub snapshot_interval: Duration,
    /// Objects a snapshot writes in one step (one transaction) between group commits.
    pub step_objects: usize,
    /// For every unit of time a snapshot step takes, the writer spends this many on the log
    /// alone (committing what arrives, or idle) before the next step: 3 gives a snapshot a
    /// quarter of the writer's time, so a core is never held for the whole of one.
    pub step_pause: u32,
    /// How long a group with no durable write in it waits for more records.
    pub group_window: Duration,
}

impl Default for Cadence {
    fn default() -> Self {
        Cadence {
            snapshot_every: 200_000,
            snapshot_interval: Duration::from_secs(60),
            step_objects: 32,
            step_pause: 3,
            group_window: Duration::from_millis(5),
        }
    }
}

/// What the writer asks of the objects' owner to snapshot them; `None` from either once the
/// owner is gone (the log must then stay as it is).
pub(crate) trait Source: Send {
    /// The objects changed since the previous call, forgotten as changed.
    fn changed(&mut self) -> Option<Vec<ObjectKey>>;
    /// Each of `keys` still present, whole, as it is now: its encoded key and its encoded
    /// full-state [`Update`].
    fn rows(&mut self, keys: &[ObjectKey]) -> Option<Vec<(Vec<u8>, Vec<u8>)>>;
    /// A snapshot of `objects` objects is complete and the log cut before it.
    fn written(&mut self, objects: usize);
    /// A snapshot failed before writing `keys`: they are changed still, for the next one
    /// (what peers sent for them reaches disk only through a snapshot).
    fn unwritten(&mut self, keys: &[ObjectKey]);
}

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
    cadence: Cadence,
}

/// A snapshot being written, a step at a time.
struct Compaction {
    keys: Vec<ObjectKey>,
    written: usize,
    /// Every group before this one is covered by the snapshot: each of its records was
    /// applied in memory before the snapshot began, so before any object of it was copied.
    cut: u64,
    started: Instant,
    /// Time spent in the steps themselves.
    busy: Duration,
    next_step: Instant,
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
                cadence: Cadence::default(),
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
    /// The same writer with another cadence.
    pub(crate) fn with_cadence(mut self, cadence: Cadence) -> Self {
        self.cadence = cadence;
        self
    }

    /// Runs the writer on its own thread until every [`Log`] is dropped, snapshotting the
    /// objects `source` holds.
    pub fn spawn(self, source: Box<dyn Source>) -> std::thread::JoinHandle<()> {
        std::thread::Builder::new()
            .name("baton-state-log".into())
            .spawn(move || self.run(source))
            .expect("spawning the log writer")
    }

    fn run(mut self, mut source: Box<dyn Source>) {
        // Only to wait for a record with a deadline; the writer's work is blocking.
        let clock = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a timer for the log writer");
        let mut since_snapshot = 0u64;
        let mut last_snapshot = Instant::now();
        let mut compaction: Option<Compaction> = None;
        let mut batch = Vec::with_capacity(GROUP);
        loop {
            let mut deadline = match &compaction {
                Some(c) => c.next_step,
                None => last_snapshot + self.cadence.snapshot_interval,
            };
            if let Some(since) = self.unsynced_since {
                deadline = deadline.min(since + SYNC_EVERY);
            }
            match self.gather(&clock, deadline, &mut batch) {
                Gathered::Closed => break,
                Gathered::Records => {
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
                Gathered::Nothing if self.sync_due() => {
                    if let Err(error) = self.commit(&[], true) {
                        tracing::error!(%error, "state log sync failed");
                    }
                }
                Gathered::Nothing => {}
            }
            if compaction.is_none()
                && (since_snapshot >= self.cadence.snapshot_every
                    || last_snapshot.elapsed() >= self.cadence.snapshot_interval)
            {
                since_snapshot = 0;
                last_snapshot = Instant::now();
                let Some(keys) = source.changed() else { break };
                if !keys.is_empty() {
                    compaction = Some(Compaction {
                        keys,
                        written: 0,
                        cut: self.next_seq,
                        started: Instant::now(),
                        busy: Duration::ZERO,
                        next_step: Instant::now(),
                    });
                }
            }
            let Some(c) = compaction
                .as_mut()
                .filter(|c| Instant::now() >= c.next_step)
            else {
                continue;
            };
            match self.step(c, source.as_mut()) {
                Ok(Some(true)) => {
                    // Operators tell a snapshot's cost from a slow function by this line (as
                    // Redis logs its saves).
                    tracing::info!(
                        objects = c.keys.len(),
                        busy_ms = c.busy.as_secs_f64() * 1e3,
                        wall_ms = c.started.elapsed().as_secs_f64() * 1e3,
                        "state snapshot written"
                    );
                    source.written(c.keys.len());
                    compaction = None;
                }
                Ok(Some(false)) => {}
                Ok(None) => break,
                Err(error) => {
                    tracing::error!(%error, "state snapshot failed; the log keeps growing");
                    source.unwritten(&c.keys[c.written..]);
                    compaction = None;
                }
            }
        }
    }

    /// Waits until `deadline` for a record, then takes what else is queued into `batch`; a
    /// group with no durable write in it waits up to the cadence's window for more.
    fn gather(
        &mut self,
        clock: &tokio::runtime::Runtime,
        deadline: Instant,
        batch: &mut Vec<Record>,
    ) -> Gathered {
        let wait = deadline.saturating_duration_since(Instant::now());
        let first = clock.block_on(async { tokio::time::timeout(wait, self.rx.recv()).await });
        match first {
            Ok(None) => return Gathered::Closed,
            Ok(Some(record)) => batch.push(record),
            Err(_) => return Gathered::Nothing,
        }
        let window_ends = Instant::now() + self.cadence.group_window;
        loop {
            while batch.len() < GROUP {
                match self.rx.try_recv() {
                    Ok(record) => batch.push(record),
                    Err(_) => break,
                }
            }
            let durable = batch.iter().any(|r| r.ack.is_some());
            let left = window_ends.saturating_duration_since(Instant::now());
            if durable || batch.len() >= GROUP || left.is_zero() {
                return Gathered::Records;
            }
            match clock.block_on(async { tokio::time::timeout(left, self.rx.recv()).await }) {
                Ok(Some(record)) => batch.push(record),
                // Closed: commit what there is; the next wait sees the end.
                Ok(None) | Err(_) => return Gathered::Records,
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
        self.after_commit(sync);
        Ok(())
    }

    fn after_commit(&mut self, synced: bool) {
        if synced {
            self.unsynced_since = None;
        } else {
            self.unsynced_since.get_or_insert_with(Instant::now);
        }
    }

    /// Writes the compaction's next objects whole; after the last, cuts the log before its
    /// start (durably). `Some(true)` when it is done, `None` when the source is gone.
    fn step(
        &mut self,
        c: &mut Compaction,
        source: &mut dyn Source,
    ) -> anyhow::Result<Option<bool>> {
        let started = Instant::now();
        let end = (c.written + self.cadence.step_objects.max(1)).min(c.keys.len());
        let Some(rows) = source.rows(&c.keys[c.written..end]) else {
            return Ok(None);
        };
        self.write_rows(&rows)?;
        c.written = end;
        let done = c.written == c.keys.len();
        if done {
            self.cut(c.cut)?;
        }
        let took = started.elapsed();
        c.busy += took;
        c.next_step = Instant::now() + took * self.cadence.step_pause;
        Ok(Some(done))
    }

    /// Stores `rows` (encoded key, encoded whole update) in the snapshot; fsynced with the
    /// next commit that is.
    fn write_rows(&mut self, rows: &[(Vec<u8>, Vec<u8>)]) -> anyhow::Result<()> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(redb::Durability::None)?;
        {
            let mut table = txn.open_table(OBJECTS)?;
            for (key, update) in rows {
                table.insert(key.as_slice(), update.as_slice())?;
            }
        }
        txn.commit()?;
        self.after_commit(false);
        Ok(())
    }

    /// Removes every group before `cut` (and the format before groups), durably: the
    /// snapshot written since holds every record in them.
    fn cut(&mut self, cut: u64) -> anyhow::Result<()> {
        let txn = self.db.begin_write()?;
        {
            txn.open_table(GROUPS)?.retain_in(..cut, |_, _| false)?;
            txn.delete_table(LEGACY_LOG)?;
        }
        txn.commit()?;
        self.after_commit(true);
        Ok(())
    }
}

/// What a wait for records found.
enum Gathered {
    /// Every [`Log`] is gone.
    Closed,
    /// Records to commit, in the batch.
    Records,
    /// The deadline passed first.
    Nothing,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Object;
    use crate::entry::{Coverage, Entry};
    use baton_crdt::PNCounter;
    use std::collections::BTreeMap;

    /// One origin's increments `from + 1 ..= to` of counter `name` (by one each), as a delta:
    /// the origin's count after them.
    fn increments(name: &str, from: u64, to: u64) -> Update {
        let origin = ReplicaId::new(3, 1);
        let mut counter = PNCounter::default();
        for _ in 0..to {
            counter.add(origin, 1);
        }
        Update {
            key: ObjectKey::new("app", name).unwrap(),
            generation: 0,
            object: Some(Object::Counter(counter)),
            coverage: Coverage::Range { origin, from, to },
            created_micros: 0,
        }
    }

    fn record(update: &Update) -> Record {
        Record {
            bytes: encode(update),
            ack: None,
        }
    }

    /// The counters' values after merging everything a start reads back, in its order.
    fn values(updates: &[Update]) -> BTreeMap<String, i128> {
        let mut entries: BTreeMap<String, Entry> = BTreeMap::new();
        for update in updates {
            entries
                .entry(update.key.name.clone())
                .or_default()
                .merge(update);
        }
        entries
            .into_iter()
            .map(|(name, entry)| match entry.object {
                Some(Object::Counter(c)) => (name, c.value()),
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// A snapshot source holding the counters as merged so far.
    struct Counters(BTreeMap<ObjectKey, Entry>);

    impl Source for Counters {
        fn changed(&mut self) -> Option<Vec<ObjectKey>> {
            Some(self.0.keys().cloned().collect())
        }
        fn rows(&mut self, keys: &[ObjectKey]) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
            Some(
                keys.iter()
                    .map(|k| (encode(k), self.0[k].encode_whole(k, 0)))
                    .collect(),
            )
        }
        fn written(&mut self, _: usize) {}
        fn unwritten(&mut self, _: &[ObjectKey]) {}
    }

    /// Logs 2 increments to each of `names` as two groups; returns the source holding them.
    fn log_two_groups(writer: &mut Writer, names: &[&str]) -> Counters {
        let mut merged = BTreeMap::new();
        for round in 0..2 {
            let updates: Vec<Update> = names
                .iter()
                .map(|n| increments(n, round, round + 1))
                .collect();
            let batch: Vec<Record> = updates.iter().map(record).collect();
            writer.commit(&batch, true).unwrap();
            for update in &updates {
                merged
                    .entry(update.key.clone())
                    .or_insert_with(Entry::default)
                    .merge(update);
            }
        }
        Counters(merged)
    }

    fn compaction(writer: &Writer, keys: Vec<ObjectKey>) -> Compaction {
        Compaction {
            keys,
            written: 0,
            cut: writer.next_seq,
            started: Instant::now(),
            busy: Duration::ZERO,
            next_step: Instant::now(),
        }
    }

    /// A log at `path` whose snapshots write one object a step.
    fn one_step_at_a_time(path: &Path) -> (Log, Writer) {
        let (log, _, writer) = Log::open(path, 16).unwrap();
        let cadence = Cadence {
            step_objects: 1,
            ..Cadence::default()
        };
        (log, writer.with_cadence(cadence))
    }

    /// A node that stops after some of a snapshot's steps (its rows made durable by a later
    /// commit) reads back rows and every group: nothing lost, nothing counted twice.
    #[test]
    fn a_snapshot_cut_short_loses_and_doubles_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let (log, mut writer) = one_step_at_a_time(&path);
        let mut source = log_two_groups(&mut writer, &["a", "b", "c"]);
        let mut c = compaction(&writer, source.changed().unwrap());
        assert_eq!(writer.step(&mut c, &mut source).unwrap(), Some(false));
        writer
            .commit(&[record(&increments("c", 2, 3))], true)
            .unwrap();
        drop((log, writer));

        let (_, recovered, _) = Log::open(&path, 16).unwrap();
        assert_eq!(
            recovered.updates.len(),
            1 + 3 * 2 + 1,
            "a row and every record"
        );
        let expected = BTreeMap::from([("a".into(), 2), ("b".into(), 2), ("c".into(), 3)]);
        assert_eq!(values(&recovered.updates), expected);
    }

    /// Once every step is written the groups before the snapshot are gone, and a group
    /// committed between its steps is kept and replayed over it.
    #[test]
    fn a_finished_snapshot_cuts_only_the_groups_before_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.redb");
        let (log, mut writer) = one_step_at_a_time(&path);
        let mut source = log_two_groups(&mut writer, &["a", "b"]);
        let mut c = compaction(&writer, source.changed().unwrap());
        assert_eq!(writer.step(&mut c, &mut source).unwrap(), Some(false));
        // Between steps: a record applied after the snapshot began.
        writer
            .commit(&[record(&increments("a", 2, 3))], false)
            .unwrap();
        assert_eq!(writer.step(&mut c, &mut source).unwrap(), Some(true));
        drop((log, writer));

        let (_, recovered, _) = Log::open(&path, 16).unwrap();
        assert_eq!(
            recovered.updates.len(),
            2 + 1,
            "two rows and the later record"
        );
        let expected = BTreeMap::from([("a".into(), 3), ("b".into(), 2)]);
        assert_eq!(values(&recovered.updates), expected);
    }

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
