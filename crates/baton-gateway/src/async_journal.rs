//! The durable side of the asynchronous queue: every accepted call is written to a redb file
//! (fsynced) before its `202` goes out, and removed once it has run and its result was
//! delivered (or given up on). A node that dies in between finds the call at its next start
//! and runs it again: at least once, as OpenFaaS's queue worker over NATS.

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

/// The journal file.
#[derive(Clone)]
pub(crate) struct Journal {
    db: Arc<Database>,
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
        let journal = Journal { db: Arc::new(db) };
        for key in unreadable {
            journal.remove(key)?;
        }
        Ok((journal, left))
    }

    /// Writes `record` under `key`; returns once it would survive a crash.
    pub(crate) fn put(&self, key: u64, record: &Record) -> anyhow::Result<()> {
        let tx = self.db.begin_write()?;
        tx.open_table(CALLS)?
            .insert(key, record.encode().as_slice())?;
        tx.commit()?;
        Ok(())
    }

    /// Forgets the call under `key`.
    pub(crate) fn remove(&self, key: u64) -> anyhow::Result<()> {
        let tx = self.db.begin_write()?;
        tx.open_table(CALLS)?.remove(key)?;
        tx.commit()?;
        Ok(())
    }
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

    #[test]
    fn records_survive_a_reopen_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("async.redb");
        {
            let (journal, left) = Journal::open(&path).unwrap();
            assert!(left.is_empty());
            for n in 1..=3 {
                journal.put(u64::from(n), &record(n)).unwrap();
            }
            journal.remove(2).unwrap();
        }
        let (_, left) = Journal::open(&path).unwrap();
        assert_eq!(left, vec![(1, record(1)), (3, record(3))]);
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
