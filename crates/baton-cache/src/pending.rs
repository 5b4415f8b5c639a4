//! The write-back pending log: every write a write-back bucket acknowledges is first committed
//! (fsync) to a redb file on the node, keyed by the object's path, and removed once the
//! flusher has put it in the store. At start, what is left is what was acknowledged and not
//! yet flushed: the cache takes it back as dirty and flushes it.
//!
//! One writer thread commits in groups: every append that arrived while the previous commit
//! ran shares one fsync. Removals ride along without an fsync of their own (losing one in a
//! crash only flushes an object twice). A body of [`SPILL_BYTES`] or more is written to a file
//! of its own first (`<log>.bodies/<seq>`, fdatasync'd, directory synced) and the record
//! names it: copying megabytes through redb's pages cost ten times the disk's own write.

use bytes::Bytes;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;
use tokio::sync::{mpsc, oneshot};

/// Path → sequence number (8 bytes, little-endian), then `0` for a delete, `1` and the body,
/// or `2` for a body in the file named by the sequence number.
const PENDING: TableDefinition<&str, &[u8]> = TableDefinition::new("pending");

/// Bodies this large go to a file of their own (below it, one group commit is cheaper than
/// a file, its fdatasync and its directory's).
pub const SPILL_BYTES: usize = 4 << 20;
/// The longest a write-back write waits for the disk before it is refused.
pub const APPEND_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

fn spills(body: &Option<Bytes>) -> bool {
    body.as_ref().is_some_and(|b| b.len() >= SPILL_BYTES)
}

/// Operations one commit takes at most.
const GROUP: usize = 1024;

/// One acknowledged write not yet in the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// The object's path in the store.
    pub path: String,
    /// Orders writes of one path: a later write has a higher number.
    pub seq: u64,
    /// The body, or `None` for a delete.
    pub body: Option<Bytes>,
}

enum Op {
    Append(Pending, oneshot::Sender<Result<(), String>>),
    /// Forget `path` if its record is still `seq` (a newer write keeps its own).
    Remove {
        path: String,
        seq: u64,
    },
}

/// The sending side; cheap to clone.
#[derive(Clone)]
pub struct PendingLog {
    tx: mpsc::Sender<Op>,
    bodies: std::sync::Arc<std::path::PathBuf>,
}

fn encode(pending: &Pending) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(9);
    bytes.extend_from_slice(&pending.seq.to_le_bytes());
    match &pending.body {
        Some(_) if spills(&pending.body) => bytes.push(2),
        Some(body) => {
            bytes.reserve(body.len());
            bytes.push(1);
            bytes.extend_from_slice(body);
        }
        None => bytes.push(0),
    }
    bytes
}

/// A record's sequence number and, for a spilled body, that it is one.
fn header(bytes: &[u8]) -> Option<(u64, bool)> {
    let (seq, rest) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*seq), rest.first() == Some(&2)))
}

/// A record back; a spilled body is read from `bodies`.
fn decode(path: &str, bytes: &[u8], bodies: &Path) -> anyhow::Result<Pending> {
    let (seq, rest) = bytes
        .split_first_chunk::<8>()
        .ok_or_else(|| anyhow::anyhow!("pending record of {path} is truncated"))?;
    let seq = u64::from_le_bytes(*seq);
    let body = match rest.split_first() {
        Some((0, [])) => None,
        Some((1, body)) => Some(Bytes::copy_from_slice(body)),
        Some((2, [])) => Some(Bytes::from(std::fs::read(bodies.join(seq.to_string()))?)),
        _ => anyhow::bail!("pending record of {path} has an unknown tag"),
    };
    Ok(Pending {
        path: path.to_string(),
        seq,
        body,
    })
}

/// Writes `body` to `bodies/<seq>` and makes it durable, file and name.
fn spill(bodies: &Path, seq: u64, body: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(bodies.join(seq.to_string()))?;
    file.write_all(body)?;
    file.sync_data()?;
    std::fs::File::open(bodies)?.sync_all()
}

impl PendingLog {
    /// Opens (or creates) the log at `path` and returns what it holds, oldest write first.
    /// `queue` bounds the operations waiting for the writer.
    pub fn open(path: &Path, queue: usize) -> anyhow::Result<(PendingLog, Vec<Pending>)> {
        let db = Database::create(path)?;
        let bodies = path.with_extension("bodies");
        std::fs::create_dir_all(&bodies)?;
        let txn = db.begin_write()?;
        txn.open_table(PENDING)?;
        txn.commit()?;
        let mut recovered = Vec::new();
        {
            let read = db.begin_read()?;
            for row in read.open_table(PENDING)?.iter()? {
                let (path, value) = row?;
                recovered.push(decode(path.value(), value.value(), &bodies)?);
            }
        }
        recovered.sort_by_key(|p| p.seq);
        // Bodies no record names: written before a crash cut their record off, or replaced.
        let named: std::collections::HashSet<String> = recovered
            .iter()
            .filter(|p| spills(&p.body))
            .map(|p| p.seq.to_string())
            .collect();
        for entry in std::fs::read_dir(&bodies)?.flatten() {
            if !named.contains(entry.file_name().to_string_lossy().as_ref()) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let (tx, rx) = mpsc::channel(queue);
        let writer_bodies = bodies.clone();
        std::thread::Builder::new()
            .name("baton-pending-log".into())
            .spawn(move || write(db, rx, &writer_bodies))?;
        Ok((
            PendingLog {
                tx,
                bodies: std::sync::Arc::new(bodies),
            },
            recovered,
        ))
    }

    /// Appends `pending` durably: `Ok` once it is on disk, an error when the disk has not
    /// taken it within [`APPEND_DEADLINE`] (the record is then withdrawn, so a write that
    /// was refused is not replayed after a restart).
    pub async fn append(&self, pending: Pending) -> Result<(), String> {
        let (path, seq) = (pending.path.clone(), pending.seq);
        match tokio::time::timeout(APPEND_DEADLINE, self.append_now(pending)).await {
            Ok(appended) => appended,
            Err(_) => {
                self.remove(path, seq);
                Err(format!(
                    "the pending log did not commit within {APPEND_DEADLINE:?} (is the disk stalled?)"
                ))
            }
        }
    }

    async fn append_now(&self, pending: Pending) -> Result<(), String> {
        if spills(&pending.body) {
            let (bodies, seq, body) = (self.bodies.clone(), pending.seq, pending.body.clone());
            let body = body.unwrap_or_default();
            tokio::task::spawn_blocking(move || spill(&bodies, seq, &body))
                .await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("writing the body to the pending log: {e}"))?;
        }
        let (ack, done) = oneshot::channel();
        self.tx
            .send(Op::Append(pending, ack))
            .await
            .map_err(|_| "the pending log is closed".to_string())?;
        done.await
            .map_err(|_| "the pending log writer stopped".to_string())?
    }

    /// Forgets `path`'s record if it is still `seq`; best effort, never waits for the disk.
    pub fn remove(&self, path: String, seq: u64) {
        if self.tx.try_send(Op::Remove { path, seq }).is_err() {
            // A full queue keeps the record: the object is flushed again after a restart.
            tracing::debug!("pending log queue full: a flushed record stays until restart");
        }
    }
}

/// The writer thread: drains what is queued, commits it as one transaction, acknowledges.
fn write(db: Database, mut rx: mpsc::Receiver<Op>, bodies: &Path) {
    let mut group = Vec::with_capacity(GROUP);
    while rx.blocking_recv().map(|op| group.push(op)).is_some() {
        while group.len() < GROUP {
            match rx.try_recv() {
                Ok(op) => group.push(op),
                Err(_) => break,
            }
        }
        let durable = group.iter().any(|op| matches!(op, Op::Append(..)));
        let result = match commit(&db, &group, durable) {
            Ok(unused) => {
                // Spilled bodies no record names any more.
                for seq in unused {
                    let _ = std::fs::remove_file(bodies.join(seq.to_string()));
                }
                Ok(())
            }
            Err(error) => {
                tracing::error!(%error, "write-back pending log commit failed");
                Err(error.to_string())
            }
        };
        for op in group.drain(..) {
            if let Op::Append(_, ack) = op {
                let _ = ack.send(result.clone());
            }
        }
    }
}

/// Commits `group`; the sequence numbers of spilled bodies no record names after it.
fn commit(db: &Database, group: &[Op], durable: bool) -> anyhow::Result<Vec<u64>> {
    let mut unused = Vec::new();
    let mut txn = db.begin_write()?;
    txn.set_durability(if durable {
        Durability::Immediate
    } else {
        Durability::None
    })?;
    {
        let mut table = txn.open_table(PENDING)?;
        for op in group {
            match op {
                Op::Append(pending, _) => {
                    // Appends of one path may reach the writer out of order: keep the newest.
                    let current = table
                        .get(pending.path.as_str())?
                        .and_then(|v| header(v.value()));
                    if current.is_none_or(|(seq, _)| seq < pending.seq) {
                        table.insert(pending.path.as_str(), encode(pending).as_slice())?;
                        unused.extend(current.filter(|(_, spilled)| *spilled).map(|(s, _)| s));
                    } else if spills(&pending.body) {
                        unused.push(pending.seq);
                    }
                }
                Op::Remove { path, seq } => {
                    let current = table.get(path.as_str())?.and_then(|v| header(v.value()));
                    if let Some((current, spilled)) = current
                        && current == *seq
                    {
                        table.remove(path.as_str())?;
                        if spilled {
                            unused.push(current);
                        }
                    }
                }
            }
        }
    }
    txn.commit()?;
    Ok(unused)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(path: &str, seq: u64, body: Option<&'static [u8]>) -> Pending {
        Pending {
            path: path.into(),
            seq,
            body: body.map(Bytes::from_static),
        }
    }

    #[tokio::test]
    async fn what_was_appended_and_not_removed_comes_back_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pending.redb");
        {
            let (log, recovered) = PendingLog::open(&file, 16).unwrap();
            assert!(recovered.is_empty());
            log.append(pending("a/b/1", 1, Some(b"one"))).await.unwrap();
            log.append(pending("a/b/2", 2, Some(b"two"))).await.unwrap();
            log.append(pending("a/b/1", 3, Some(b"uno"))).await.unwrap();
            log.append(pending("a/b/3", 4, None)).await.unwrap();
            // A stale removal (seq 1) leaves the newer write of a/b/1 in place.
            log.remove("a/b/1".into(), 1);
            log.remove("a/b/2".into(), 2);
            // The next append commits durably after the removals queued before it.
            log.append(pending("a/b/4", 5, Some(b""))).await.unwrap();
            // A large body goes to a file of its own; replaced, its file goes.
            let big = Bytes::from(vec![7u8; SPILL_BYTES]);
            log.append(Pending {
                path: "a/b/big".into(),
                seq: 6,
                body: Some(big.clone()),
            })
            .await
            .unwrap();
            log.append(Pending {
                path: "a/b/big".into(),
                seq: 7,
                body: Some(big),
            })
            .await
            .unwrap();
        }
        // The writer thread ends when its sender is gone; redb lets one opener at a time in.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let reopened = loop {
            match PendingLog::open(&file, 16) {
                Ok(opened) => break opened,
                Err(error) if std::time::Instant::now() > deadline => panic!("{error}"),
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(1)).await,
            }
        };
        let big = Pending {
            path: "a/b/big".into(),
            seq: 7,
            body: Some(Bytes::from(vec![7u8; SPILL_BYTES])),
        };
        assert_eq!(
            reopened.1,
            vec![
                pending("a/b/1", 3, Some(b"uno")),
                pending("a/b/3", 4, None),
                pending("a/b/4", 5, Some(b"")),
                big,
            ]
        );
        let files: Vec<_> = std::fs::read_dir(dir.path().join("pending.bodies"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(files, ["7"], "the replaced body's file is gone");
    }

    #[test]
    fn records_round_trip_and_garbage_is_refused() {
        let nowhere = Path::new("/nonexistent");
        for p in [pending("x", 7, Some(b"body")), pending("x", 9, None)] {
            assert_eq!(decode("x", &encode(&p), nowhere).unwrap(), p);
        }
        assert!(decode("x", b"short", nowhere).is_err());
        assert!(decode("x", &[0, 0, 0, 0, 0, 0, 0, 0, 3], nowhere).is_err());
        assert!(decode("x", &[0, 0, 0, 0, 0, 0, 0, 0, 0, 1], nowhere).is_err());
        // A spilled body whose file is missing is an error, not an empty object.
        assert!(decode("x", &[0, 0, 0, 0, 0, 0, 0, 0, 2], nowhere).is_err());
    }
}
