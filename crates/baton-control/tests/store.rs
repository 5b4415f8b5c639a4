//! The store contract, run against both backends: redb, and a real Redis (the one on
//! 127.0.0.1:6379, or a `redis-server` this test starts when none answers there).

use baton_control::{RedbStore, RedisStore, Store, Table};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A Redis server for the test: the machine's, or one started here and killed on drop.
struct Redis {
    url: String,
    _child: Option<ChildGuard>,
}

struct ChildGuard(Child);

impl Drop for ChildGuard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn redis() -> Redis {
    let standard = "redis://127.0.0.1:6379/".to_owned();
    if RedisStore::connect(&standard, "baton-test-probe")
        .await
        .is_ok()
    {
        return Redis {
            url: standard,
            _child: None,
        };
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("redis-server")
        .args([
            "--port",
            &port.to_string(),
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(Stdio::null())
        .spawn()
        .expect("no Redis on 127.0.0.1:6379 and no redis-server on PATH (.ci/run installs it)");
    let url = format!("redis://127.0.0.1:{port}/");
    let deadline = Instant::now() + Duration::from_secs(10);
    while RedisStore::connect(&url, "probe").await.is_err() {
        assert!(Instant::now() < deadline, "redis-server did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Redis {
        url,
        _child: Some(ChildGuard(child)),
    }
}

/// What every backend must do: writes survive reopening, deletes stick, tables are apart.
async fn contract(open: impl Fn() -> futures_like::BoxStore) {
    {
        let store = open().await;
        store.put(Table::Functions, "a", b"a1").await.unwrap();
        store.put(Table::Functions, "b", b"b1").await.unwrap();
        store.put(Table::Functions, "a", b"a2").await.unwrap();
        store.put(Table::Workers, "a", b"worker").await.unwrap();
        store.put(Table::Gateways, "g", &[0, 255, 1]).await.unwrap();
        store.delete(Table::Functions, "b").await.unwrap();
        store
            .delete(Table::Functions, "never-existed")
            .await
            .unwrap();
    }
    let store = open().await;
    assert_eq!(
        store.list(Table::Functions).await.unwrap(),
        vec![("a".to_owned(), b"a2".to_vec())]
    );
    assert_eq!(
        store.list(Table::Workers).await.unwrap(),
        vec![("a".to_owned(), b"worker".to_vec())]
    );
    assert_eq!(
        store.list(Table::Gateways).await.unwrap(),
        vec![("g".to_owned(), vec![0, 255, 1])],
        "binary values round-trip"
    );
    assert_eq!(
        store.get(Table::Gateways, "g").await.unwrap(),
        Some(vec![0, 255, 1])
    );
    assert_eq!(store.get(Table::Functions, "b").await.unwrap(), None);
    assert_eq!(store.get(Table::Secrets, "a").await.unwrap(), None);
    // Many keys come back ordered by key.
    for i in (0..50).rev() {
        store
            .put(Table::Workers, &format!("w{i:02}"), b"x")
            .await
            .unwrap();
    }
    let keys: Vec<String> = store
        .list(Table::Workers)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(keys.len(), 51);
}

mod futures_like {
    use super::*;
    pub type BoxStore = std::pin::Pin<Box<dyn std::future::Future<Output = Arc<dyn Store>> + Send>>;
}

#[tokio::test]
async fn redb_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("registry.redb");
    contract(|| {
        let path = path.clone();
        Box::pin(async move { Arc::new(RedbStore::open(&path).unwrap()) as Arc<dyn Store> })
    })
    .await;
    // It holds secrets: its user alone reads it.
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
}

#[tokio::test]
async fn redis_keeps_the_contract() {
    let redis = redis().await;
    let prefix = format!("baton-test-{}", uuid_like());
    let url = redis.url.clone();
    contract(|| {
        let (url, prefix) = (url.clone(), prefix.clone());
        Box::pin(async move {
            Arc::new(RedisStore::connect(&url, &prefix).await.unwrap()) as Arc<dyn Store>
        })
    })
    .await;
    // Leave the shared server as it was.
    let store = RedisStore::connect(&redis.url, &prefix).await.unwrap();
    for table in Table::ALL {
        for (key, _) in store.list(table).await.unwrap() {
            store.delete(table, &key).await.unwrap();
        }
    }
}

#[tokio::test]
async fn a_bad_redis_url_is_a_clear_error() {
    let error = RedisStore::connect("redis://127.0.0.1:1/", "x")
        .await
        .err()
        .expect("nothing listens on port 1");
    assert!(format!("{error:#}").contains("127.0.0.1:1"), "{error:#}");
}

fn uuid_like() -> String {
    format!(
        "{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}
