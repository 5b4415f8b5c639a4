//! The write-back pending log: every write a write-back bucket acknowledges is first committed
//! (fsync) to a redb file on the node, keyed by the object's path, and removed once the
//! flusher has put it in the store. At start, what is left is what was acknowledged and not
//! yet flushed: the cache takes it back as dirty and flushes it.
//!
//! One writer thread commits in groups: every append that arrived while the previous commit
//! ran shares one fsync. Removals ride along without an fsync of their own (losing one in a
//! crash only flushes an object twice).

use bytes::Bytes;
use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;
use tokio::sync::{mpsc, oneshot};

/// Path → sequence number (8 bytes, little-endian), then `0` for a delete or `1` and the body.
const PENDING: TableDefinition<&str, &[u8]> = TableDefinition::new("pending");

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
}

fn encode(pending: &Pending) -> Vec<u8> {
    let body = pending.body.as_deref();
    let mut bytes = Vec::with_capacity(9 + body.map_or(0, <[u8]>::len));
    bytes.extend_from_slice(&pending.seq.to_le_bytes());
    match body {
        Some(body) => {
            bytes.push(1);
            bytes.extend_from_slice(body);
        }
        None => bytes.push(0),
    }
    bytes
}

fn decode(path: &str, bytes: &[u8]) -> anyhow::Result<Pending> {
    let (seq, rest) = bytes
        .split_first_chunk::<8>()
        .ok_or_else(|| anyhow::anyhow!("pending record of {path} is truncated"))?;
    let body = match rest.split_first() {
        Some((0, [])) => None,
        Some((1, body)) => Some(Bytes::copy_from_slice(body)),
        _ => anyhow::bail!("pending record of {path} has an unknown tag"),
    };
    Ok(Pending {
        path: path.to_string(),
        seq: u64::from_le_bytes(*seq),
        body,
    })
}

impl PendingLog {
    /// Opens (or creates) the log at `path` and returns what it holds, oldest write first.
    /// `queue` bounds the operations waiting for the writer.
    pub fn open(path: &Path, queue: usize) -> anyhow::Result<(PendingLog, Vec<Pending>)> {
        let db = Database::create(path)?;
        let txn = db.begin_write()?;
        txn.open_table(PENDING)?;
        txn.commit()?;
        let mut recovered = Vec::new();
        {
            let read = db.begin_read()?;
            for row in read.open_table(PENDING)?.iter()? {
                let (path, value) = row?;
                recovered.push(decode(path.value(), value.value())?);
            }
        }
        recovered.sort_by_key(|p| p.seq);
        let (tx, rx) = mpsc::channel(queue);
        std::thread::Builder::new()
            .name("baton-pending-log".into())
            .spawn(move || write(db, rx))?;
        Ok((PendingLog { tx }, recovered))
    }

    /// Appends `pending` durably: `Ok` once it is on disk.
    pub async fn append(&self, pending: Pending) -> Result<(), String> {
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
fn write(db: Database, mut rx: mpsc::Receiver<Op>) {
    let mut group = Vec::with_capacity(GROUP);
    while rx.blocking_recv().map(|op| group.push(op)).is_some() {
        while group.len() < GROUP {
            match rx.try_recv() {
                Ok(op) => group.push(op),
                Err(_) => break,
            }
        }
        let durable = group.iter().any(|op| matches!(op, Op::Append(..)));
        let result = commit(&db, &group, durable).map_err(|e| e.to_string());
        if let Err(error) = &result {
            tracing::error!(%error, "write-back pending log commit failed");
        }
        for op in group.drain(..) {
            if let Op::Append(_, ack) = op {
                let _ = ack.send(result.clone());
            }
        }
    }
}

fn commit(db: &Database, group: &[Op], durable: bool) -> anyhow::Result<()> {
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
                        .and_then(|v| v.value().first_chunk::<8>().copied())
                        .map(u64::from_le_bytes);
                    if current.is_none_or(|seq| seq < pending.seq) {
                        table.insert(pending.path.as_str(), encode(pending).as_slice())?;
                    }
                }
                Op::Remove { path, seq } => {
                    let current = table
                        .get(path.as_str())?
                        .and_then(|v| v.value().first_chunk::<8>().copied());
                    if current.map(u64::from_le_bytes) == Some(*seq) {
                        table.remove(path.as_str())?;
                    }
                }
            }
        }
    }
    txn.commit()?;
    Ok(())
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
        }
        // The writer thread ends when its sender is gone; redb lets one opener at a time in.
        let reopened = loop {
            match PendingLog::open(&file, 16) {
                Ok(opened) => break opened,
                Err(_) => tokio::task::yield_now().await,
            }
        };
        assert_eq!(
            reopened.1,
            vec![
                pending("a/b/1", 3, Some(b"uno")),
                pending("a/b/3", 4, None),
                pending("a/b/4", 5, Some(b"")),
            ]
        );
    }

    #[test]
    fn records_round_trip_and_garbage_is_refused() {
        for p in [pending("x", 7, Some(b"body")), pending("x", 9, None)] {
            assert_eq!(decode("x", &encode(&p)).unwrap(), p);
        }
        assert!(decode("x", b"short").is_err());
        assert!(decode("x", &[0, 0, 0, 0, 0, 0, 0, 0, 2]).is_err());
        assert!(decode("x", &[0, 0, 0, 0, 0, 0, 0, 0, 0, 1]).is_err());
    }
}
