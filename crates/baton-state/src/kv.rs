//! Key-value buckets over replicated objects: what `wasi:keyvalue` serves components.
//!
//! Each key of a bucket is one object of the function's namespace, named
//! `kv/<bucket>/<escaped key>`: a last-writer-wins register holding the value, or a counter
//! once `increment` made it (read back as its decimal digits, as wasmtime's and Spin's stores
//! do). So a key converges across nodes as those objects do, and the state API and
//! `baton state` show a bucket's keys. Values are bytes; a value that is UTF-8 text is kept as
//! that text (readable through the state API), any other as base64 after a NUL marker.

use crate::{Agent, Kind, ObjectKey, Op, StateError, Value};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use std::sync::Arc;

/// The bucket an empty identifier opens (Spin's default store label).
pub const DEFAULT_BUCKET: &str = "default";

/// What every object of a bucket is named after.
const PREFIX: &str = "kv/";

/// Marks a stored value that is base64 of bytes rather than the text itself.
const BINARY_MARKER: char = '\0';

/// Why a key-value operation failed; the bucket is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KvError {
    /// The identifier cannot name a bucket.
    #[error("no such store: {0}")]
    NoSuchStore(String),
    /// Anything else: a bad key, a value too large, the state agent unavailable.
    #[error("{0}")]
    Other(String),
}

impl From<StateError> for KvError {
    fn from(error: StateError) -> Self {
        KvError::Other(error.to_string())
    }
}

/// The bucket `identifier` opens: the default bucket for an empty identifier, otherwise 1-63
/// letters, digits and `-_.`.
pub fn bucket_name(identifier: &str) -> Result<String, KvError> {
    if identifier.is_empty() {
        return Ok(DEFAULT_BUCKET.to_string());
    }
    let valid = identifier.len() <= 63
        && identifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
    if valid {
        Ok(identifier.to_string())
    } else {
        Err(KvError::NoSuchStore(format!(
            "{identifier:?}: a bucket is 1-63 letters, digits and -_."
        )))
    }
}

/// `key` as part of an object name: letters, digits and `-_./` as they are, every other byte
/// as `:` and two hex digits.
fn escape(key: &str) -> String {
    let mut escaped = String::with_capacity(key.len());
    for byte in key.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_./".contains(&byte) {
            escaped.push(byte as char);
        } else {
            escaped.push_str(&format!(":{byte:02x}"));
        }
    }
    escaped
}

/// The key [`escape`] made `escaped` from; `None` for a name it cannot have made.
fn unescape(escaped: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(escaped.len());
    let mut rest = escaped.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b':' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    String::from_utf8(bytes).ok()
}

/// `value` as a register holds it.
pub fn encode_value(value: &[u8]) -> String {
    match std::str::from_utf8(value) {
        Ok(text) if !text.starts_with(BINARY_MARKER) => text.to_string(),
        _ => format!("{BINARY_MARKER}{}", STANDARD.encode(value)),
    }
}

/// The bytes [`encode_value`] made `stored` from (a marked value that is not base64 is
/// returned as its text).
pub fn decode_value(stored: &str) -> Vec<u8> {
    stored
        .strip_prefix(BINARY_MARKER)
        .and_then(|b64| STANDARD.decode(b64).ok())
        .unwrap_or_else(|| stored.as_bytes().to_vec())
}

/// The bytes an object at a key reads as: a register's value, a counter's digits.
fn value_bytes(kind: Kind, value: Value) -> Result<Option<Vec<u8>>, KvError> {
    match value {
        Value::Strings(values) => Ok(values.first().map(|v| decode_value(v))),
        Value::Int(n) => Ok(Some(n.to_string().into_bytes())),
        _ => Err(KvError::Other(format!(
            "the key holds a {kind} (made through the state API), not a value"
        ))),
    }
}

/// One component instance's access to its namespace's buckets.
#[derive(Clone)]
pub struct KeyValue {
    agent: Agent,
    namespace: Arc<str>,
}

/// A compare-and-swap begun: the key, its version when begun and its value then.
#[derive(Debug, Clone)]
pub struct Cas {
    key: ObjectKey,
    version: u64,
    current: Option<Vec<u8>>,
}

impl Cas {
    /// The value when the swap was begun.
    pub fn current(&self) -> Option<&[u8]> {
        self.current.as_deref()
    }
}

impl KeyValue {
    /// Buckets of `namespace` held by `agent`.
    pub fn new(agent: Agent, namespace: Arc<str>) -> Self {
        KeyValue { agent, namespace }
    }

    fn key(&self, bucket: &str, key: &str) -> Result<ObjectKey, KvError> {
        if key.is_empty() {
            return Err(KvError::Other("a key is at least one byte".into()));
        }
        let name = format!("{PREFIX}{bucket}/{}", escape(key));
        ObjectKey::new(&self.namespace, &name).map_err(|_| {
            KvError::Other(format!(
                "key {key:?} is too long: a bucket and key take at most 250 bytes, other bytes than letters, digits and -_./ three each"
            ))
        })
    }

    /// The value at `key`, `None` when there is none.
    pub fn get(&self, bucket: &str, key: &str) -> Result<Option<Vec<u8>>, KvError> {
        let key = self.key(bucket, key)?;
        match self.agent.snapshot(&key).1 {
            Some((kind, value)) => value_bytes(kind, value),
            None => Ok(None),
        }
    }

    /// Whether `key` holds a value.
    pub fn exists(&self, bucket: &str, key: &str) -> Result<bool, KvError> {
        Ok(self.get(bucket, key)?.is_some())
    }

    /// Writes `value` at `key`, replacing whatever was there (a counter too).
    pub async fn set(&self, bucket: &str, key: &str, value: &[u8]) -> Result<(), KvError> {
        let key = self.key(bucket, key)?;
        let durability = self.agent.default_durability();
        let op = || Op::LwwSet {
            value: encode_value(value),
        };
        match self.agent.apply(&key, op(), durability).await {
            Err(StateError::TypeMismatch { .. }) => {
                self.agent.delete(&key, durability).await?;
                self.agent.apply(&key, op(), durability).await?;
            }
            other => {
                other?;
            }
        }
        Ok(())
    }

    /// Removes `key`; nothing when it is absent.
    pub async fn delete(&self, bucket: &str, key: &str) -> Result<(), KvError> {
        let key = self.key(bucket, key)?;
        let durability = self.agent.default_durability();
        self.agent.delete(&key, durability).await?;
        Ok(())
    }

    /// Every key of `bucket` that holds something, in the order of their object names.
    pub fn keys(&self, bucket: &str) -> Vec<String> {
        let prefix = format!("{PREFIX}{bucket}/");
        self.agent
            .list(&self.namespace)
            .into_iter()
            .filter_map(|listed| listed.name.strip_prefix(&prefix).and_then(unescape))
            .collect()
    }

    /// Adds `delta` to the number at `key` and returns the sum: an absent key counts as 0, a
    /// value that is a decimal integer becomes a counter starting from it.
    pub async fn increment(&self, bucket: &str, key: &str, delta: i64) -> Result<i64, KvError> {
        let key = self.key(bucket, key)?;
        let durability = self.agent.default_durability();
        let mut amount = delta;
        match self.agent.snapshot(&key).1 {
            None => {}
            Some((Kind::Counter, Value::Int(now))) => {
                now.checked_add(delta).ok_or_else(overflow)?;
            }
            Some((Kind::Counter, _)) => {}
            Some((kind, value)) => {
                let bytes = value_bytes(kind, value)?.unwrap_or_default();
                let start: i64 = std::str::from_utf8(&bytes)
                    .ok()
                    .and_then(|text| text.trim().parse().ok())
                    .ok_or_else(|| {
                        KvError::Other(format!("the value at {:?} is not an integer", key.name))
                    })?;
                amount = start.checked_add(delta).ok_or_else(overflow)?;
                self.agent.delete(&key, durability).await?;
            }
        }
        let (_, value) = self
            .agent
            .apply_and_read(&key, Op::CounterAdd { amount }, durability)
            .await?;
        match value {
            Value::Int(n) => Ok(n),
            other => Err(KvError::Other(format!("a counter read as {other:?}"))),
        }
    }

    /// Begins a compare-and-swap of `key`.
    pub fn cas(&self, bucket: &str, key: &str) -> Result<Cas, KvError> {
        let key = self.key(bucket, key)?;
        let (version, value) = self.agent.snapshot(&key);
        let current = match value {
            Some((kind, value)) => value_bytes(kind, value)?,
            None => None,
        };
        Ok(Cas {
            key,
            version,
            current,
        })
    }

    /// Writes `value` if the key has not changed on this node since `cas` began: true when it
    /// was written, false (nothing written) when it had changed.
    pub async fn swap(&self, cas: &Cas, value: &[u8]) -> Result<bool, KvError> {
        if matches!(self.agent.snapshot(&cas.key).1, Some((Kind::Counter, _))) {
            return Err(KvError::Other(
                "the key holds a counter: change it with increment".into(),
            ));
        }
        let op = Op::LwwSet {
            value: encode_value(value),
        };
        let durability = self.agent.default_durability();
        let applied = self
            .agent
            .apply_if_version(&cas.key, op, cas.version, durability)
            .await?;
        Ok(applied.is_some())
    }

    /// A fresh compare-and-swap of the key `cas` was for.
    pub fn renew(&self, cas: &Cas) -> Result<Cas, KvError> {
        let (version, value) = self.agent.snapshot(&cas.key);
        let current = match value {
            Some((kind, value)) => value_bytes(kind, value)?,
            None => None,
        };
        Ok(Cas {
            key: cas.key.clone(),
            version,
            current,
        })
    }
}

fn overflow() -> KvError {
    KvError::Other("the increment overflows a 64-bit integer".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_identifiers() {
        assert_eq!(bucket_name("").unwrap(), "default");
        assert_eq!(bucket_name("default").unwrap(), "default");
        assert_eq!(bucket_name("My_store.v1-2").unwrap(), "My_store.v1-2");
        for bad in ["a/b", "sp ace", "ü", &"x".repeat(64)] {
            assert!(
                matches!(bucket_name(bad), Err(KvError::NoSuchStore(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn keys_escape_to_object_names_and_back() {
        for (key, escaped) in [
            ("user-1", "user-1"),
            ("a/b.c_d", "a/b.c_d"),
            ("a:b", "a:3ab"),
            ("sp ace", "sp:20ace"),
            ("é", ":c3:a9"),
        ] {
            assert_eq!(escape(key), escaped);
            assert_eq!(unescape(escaped).as_deref(), Some(key));
            assert!(ObjectKey::new("ns", &escape(key)).is_ok(), "{key:?}");
        }
        assert_eq!(unescape("bad:zz"), None);
        assert_eq!(unescape("short:a"), None);
    }

    #[test]
    fn values_round_trip_and_text_stays_text() {
        for value in [
            &b"hello"[..],
            b"{\"a\":1}",
            b"",
            &[0, 159, 146, 150],
            b"\0starts with the marker",
        ] {
            assert_eq!(decode_value(&encode_value(value)), value, "{value:?}");
        }
        assert_eq!(encode_value(b"plain"), "plain");
        assert!(encode_value(&[0xff]).starts_with('\0'));
    }

    fn buckets() -> (tempfile::TempDir, KeyValue) {
        let dir = tempfile::tempdir().unwrap();
        let agent = Agent::open(
            &dir.path().join("state.redb"),
            crate::Limits::default(),
            crate::Durability::Durable,
            crate::StateMetrics::default(),
        )
        .unwrap();
        (dir, KeyValue::new(agent, "app".into()))
    }

    #[tokio::test]
    async fn set_get_delete_and_list_per_bucket() {
        let (_dir, kv) = buckets();
        assert_eq!(kv.get("default", "k").unwrap(), None);
        kv.set("default", "k", b"one").await.unwrap();
        kv.set("default", "a b", &[0xff, 0]).await.unwrap();
        kv.set("other", "k", b"two").await.unwrap();
        assert_eq!(
            kv.get("default", "k").unwrap().as_deref(),
            Some(&b"one"[..])
        );
        assert_eq!(kv.get("other", "k").unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(kv.get("default", "a b").unwrap(), Some(vec![0xff, 0]));
        assert_eq!(kv.keys("default"), ["a b", "k"]);
        kv.delete("default", "k").await.unwrap();
        kv.delete("default", "never").await.unwrap();
        assert!(!kv.exists("default", "k").unwrap());
        assert_eq!(kv.keys("default"), ["a b"]);
        assert!(kv.get("default", "").is_err());
        assert!(kv.get("default", &"x".repeat(300)).is_err());
    }

    #[tokio::test]
    async fn increments_count_from_absent_from_digits_and_back_to_values() {
        let (_dir, kv) = buckets();
        assert_eq!(kv.increment("b", "n", 5).await.unwrap(), 5);
        assert_eq!(kv.increment("b", "n", -7).await.unwrap(), -2);
        assert_eq!(kv.get("b", "n").unwrap().as_deref(), Some(&b"-2"[..]));
        kv.set("b", "n", b"40").await.unwrap();
        assert_eq!(kv.get("b", "n").unwrap().as_deref(), Some(&b"40"[..]));
        assert_eq!(kv.increment("b", "n", 2).await.unwrap(), 42);
        kv.set("b", "text", b"forty").await.unwrap();
        assert!(kv.increment("b", "text", 1).await.is_err());
        assert_eq!(kv.get("b", "text").unwrap().as_deref(), Some(&b"forty"[..]));
        assert_eq!(kv.increment("b", "max", i64::MAX).await.unwrap(), i64::MAX);
        assert!(kv.increment("b", "max", 1).await.is_err());
    }

    #[tokio::test]
    async fn a_swap_fails_once_the_key_moved() {
        let (_dir, kv) = buckets();
        let cas = kv.cas("b", "k").unwrap();
        assert_eq!(cas.current(), None);
        kv.set("b", "k", b"theirs").await.unwrap();
        assert!(!kv.swap(&cas, b"mine").await.unwrap());
        assert_eq!(kv.get("b", "k").unwrap().as_deref(), Some(&b"theirs"[..]));
        let cas = kv.renew(&cas).unwrap();
        assert_eq!(cas.current(), Some(&b"theirs"[..]));
        assert!(kv.swap(&cas, b"mine").await.unwrap());
        assert_eq!(kv.get("b", "k").unwrap().as_deref(), Some(&b"mine"[..]));
        assert!(
            !kv.swap(&cas, b"again").await.unwrap(),
            "a handle swaps once"
        );
    }
}
