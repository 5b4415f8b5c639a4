//! The durable side of the asynchronous queue: every accepted call is written to a redb file
//! (fsynced) before its `202` goes out, and removed once it has run and its result was
//! delivered (or given up on). A node that dies in between finds the call at its next start
//! and runs it again: at least once, as OpenFaaS's queue worker over NATS.
//!
//! One writer thread owns the file and commits in groups: the writes and removals that arrive
//! while a commit is being made go into the next one, so a burst of calls pays one fsync, not
//! one each. A write is acknowledged after the commit that holds it.

use anyhow::Context;
use bytes::Bytes;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

const CALLS: TableDefinition<u64, &[u8]> = TableDefinition::new("async_calls");

/// An accepted call as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Record {
    pub(crate) function: String,
    pub(crate) call_id: String,
    pub(crate) callback: Option<String>,
    pub(crate) method: String,
    /// The function-relative path and query.
    pub(crate) uri: String,
    pub(crate) headers: Vec<(String, Vec<u8>)>,
    pub(crate) body: Bytes,
}

/// Everything of a record but its body, as JSON before the body's bytes.
#[derive(Serialize, Deserialize)]
struct Head {
    function: String,
    call_id: String,
    callback: Option<String>,
    method: String,
    uri: String,
    headers: Vec<(String, Vec<u8>)>,
}

impl Record {
    /// `[head length: u32 LE][head JSON][body]`.
    pub(crate) fn encode(&self) -> Vec<u8> {
        let head = serde_json::to_vec(&Head {
            function: self.function.clone(),
            call_id: self.call_id.clone(),
            callback: self.callback.clone(),
            method: self.method.clone(),
            uri: self.uri.clone(),
            headers: self.headers.clone(),
        })
        .expect("a head serializes");
        let mut out = Vec::with_capacity(4 + head.len() + self.body.len());
        out.extend((head.len() as u32).to_le_bytes());
        out.extend(head);
        out.extend_from_slice(&self.body);
        out
    }

    pub(crate) fn decode(bytes: &[u8]) -> anyhow::Result<Record> {
        let length = bytes
            .get(..4)
            .map(|b| u32::from_le_bytes(b.try_into().expect("four bytes")) as usize)
            .context("a record shorter than its length")?;
        let head = bytes
            .get(4..4 + length)
            .context("a record shorter than its head")?;
        let head: Head = serde_json::from_slice(head).context("an unreadable record head")?;
        Ok(Record {
            function: head.function,
            call_id: head.call_id,
            callback: head.callback,
            method: head.method,
            uri: head.uri,
            headers: head.headers,
            body: Bytes::copy_from_slice(&bytes[4 + length..]),
        })
    }
}

/// Most changes one commit takes.
const MAX_GROUP: usize = 512;

enum Change {
    Put(
        u64,
        Vec<u8>,
        tokio::sync::oneshot::Sender<Result<(), String>>,
    ),
    Remove(u64),
}

/// The journal file, through its writer thread.
#[derive(Clone)]
pub(crate) struct Journal {
    changes: std::sync::mpsc::Sender<Change>,
}

impl Journal {
    /// Opens (or makes) the journal at `path`; returns it with the calls a previous run left,
    /// oldest first. Unreadable records are dropped with an error in the log.
    pub(crate) fn open(path: &Path) -> anyhow::Result<(Journal, Vec<(u64, Record)>)> {
        let db = Database::create(path)
            .with_context(|| format!("opening the asynchronous-call journal {}", path.display()))?;
        let tx = db.begin_write()?;
        tx.open_table(CALLS)?;
        tx.commit()?;
        let mut left = Vec::new();
        let mut unreadable = Vec::new();
        {
            let tx = db.begin_read()?;
            let table = tx.open_table(CALLS)?;
            for entry in table.iter()? {
                let (key, value) = entry?;
                match Record::decode(value.value()) {
                    Ok(record) => left.push((key.value(), record)),
                    Err(error) => {
                        tracing::error!(key = key.value(), %error, "dropping an unreadable asynchronous call");
                        unreadable.push(key.value());
                    }
                }
            }
        }
        let (changes, receiver) = std::sync::mpsc::channel();
        let db = Arc::new(db);
        std::thread::Builder::new()
            .name("baton-async-journal".into())
            .spawn(move || write_groups(&db, &receiver))?;
        let journal = Journal { changes };
        for key in unreadable {
            journal.remove(key);
        }
        Ok((journal, left))
    }

    /// Writes `record` under `key`; returns once it would survive a crash.
    pub(crate) async fn put(&self, key: u64, record: &Record) -> anyhow::Result<()> {
        let (sender, receiver) = tokio::sync::oneshot::channel();
        self.changes
            .send(Change::Put(key, record.encode(), sender))
            .map_err(|_| anyhow::anyhow!("the journal's writer stopped"))?;
        receiver
            .await
            .map_err(|_| anyhow::anyhow!("the journal's writer stopped"))?
            .map_err(anyhow::Error::msg)
    }

    /// Forgets the call under `key` (with the next commit; a removal lost in a crash runs the
    /// call again, which at-least-once allows).
    pub(crate) fn remove(&self, key: u64) {
        let _ = self.changes.send(Change::Remove(key));
    }
}

/// The writer thread: waits for a change, takes every change waiting behind it (up to
/// [`MAX_GROUP`]), commits them in one transaction, then acknowledges the writes.
fn write_groups(db: &Database, changes: &std::sync::mpsc::Receiver<Change>) {
    while let Ok(first) = changes.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match changes.try_recv() {
                Ok(change) => group.push(change),
                Err(_) => break,
            }
        }
        let committed = commit(db, &group).map_err(|e| format!("{e:#}"));
        if let Err(error) = &committed {
            tracing::error!(%error, changes = group.len(), "the asynchronous-call journal could not commit");
        }
        for change in group {
            if let Change::Put(_, _, ack) = change {
                let _ = ack.send(committed.clone());
            }
        }
    }
}

fn commit(db: &Database, group: &[Change]) -> anyhow::Result<()> {
    let tx = db.begin_write()?;
    {
        let mut table = tx.open_table(CALLS)?;
        for change in group {
            match change {
                Change::Put(key, bytes, _) => {
                    table.insert(*key, bytes.as_slice())?;
                }
                Change::Remove(key) => {
                    table.remove(*key)?;
                }
            }
        }
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(n: u8) -> Record {
        Record {
            function: "f".into(),
            call_id: format!("id-{n}"),
            callback: Some("http://127.0.0.1:9/done".into()),
            method: "POST".into(),
            uri: "/a?b=c".into(),
            headers: vec![("content-type".into(), b"text/plain".to_vec())],
            body: Bytes::from(vec![n, 0, 255]),
        }
    }

    #[tokio::test]
    async fn records_survive_a_reopen_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("async.redb");
        {
            let (journal, left) = Journal::open(&path).unwrap();
            assert!(left.is_empty());
            // Written together: one group, each acknowledged.
            let writes = (1..=3).map(|n| {
                let journal = journal.clone();
                async move { journal.put(u64::from(n), &record(n)).await }
            });
            for written in futures_util::future::join_all(writes).await {
                written.unwrap();
            }
            journal.remove(2);
            // A write after the removal is acknowledged only once the removal is committed.
            journal.put(4, &record(4)).await.unwrap();
            journal.remove(4);
            journal.put(5, &record(5)).await.unwrap();
        }
        // The writer thread lets go of the file once the journal is dropped.
        let left = loop {
            match Journal::open(&path) {
                Ok((_, left)) => break left,
                Err(_) => std::thread::yield_now(),
            }
        };
        assert_eq!(left, vec![(1, record(1)), (3, record(3)), (5, record(5))]);
    }

    #[test]
    fn garbage_never_decodes_into_a_call() {
        assert!(Record::decode(&[]).is_err());
        assert!(Record::decode(&[200, 0, 0, 0, b'{']).is_err());
        let mut bytes = record(7).encode();
        assert_eq!(Record::decode(&bytes).unwrap(), record(7));
        bytes[4] = b'x';
        assert!(Record::decode(&bytes).is_err());
    }
}
