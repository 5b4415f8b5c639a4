//! The control plane's persistence: functions, workers and gateways. Sandboxes and scale are
//! never written: they are rebuilt from the workers after a restart, so the cold-start path
//! has no persistent write.

use anyhow::Context;
use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;
use std::sync::Arc;

/// The kinds of record the control plane keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Table {
    /// Function registrations, by name.
    Functions,
    /// Registered workers, by id.
    Workers,
    /// Registered gateways, by id.
    Gateways,
    /// Secrets' values, by name.
    Secrets,
}

impl Table {
    /// Every table, in the order a recovery reads them.
    pub const ALL: [Table; 4] = [
        Table::Gateways,
        Table::Workers,
        Table::Functions,
        Table::Secrets,
    ];

    /// The table's name in the backend.
    pub fn name(self) -> &'static str {
        match self {
            Table::Functions => "functions",
            Table::Workers => "workers",
            Table::Gateways => "gateways",
            Table::Secrets => "secrets",
        }
    }
}

/// Durable key-value records in a few tables. Every write returns once it would survive a
/// crash of the control plane (for Redis: as far as the server's persistence settings go).
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Writes `value` under `key`, replacing what was there.
    async fn put(&self, table: Table, key: &str, value: &[u8]) -> anyhow::Result<()>;
    /// Removes `key`; removing a missing key is not an error.
    async fn delete(&self, table: Table, key: &str) -> anyhow::Result<()>;
    /// Every record of `table`, ordered by key.
    async fn list(&self, table: Table) -> anyhow::Result<Vec<(String, Vec<u8>)>>;
    /// The record under `key`, if any.
    async fn get(&self, table: Table, key: &str) -> anyhow::Result<Option<Vec<u8>>>;
}

/// Opens the store a `--store` value names: `redb` (the file in the data directory, the
/// default), a path to a redb file, or a `redis://` URL.
pub async fn open_store(
    spec: &str,
    default_path: &Path,
    prefix: &str,
) -> anyhow::Result<Arc<dyn Store>> {
    if spec.starts_with("redis://") || spec.starts_with("rediss://") {
        Ok(Arc::new(RedisStore::connect(spec, prefix).await?))
    } else if spec.is_empty() || spec == "redb" {
        Ok(Arc::new(RedbStore::open(default_path)?))
    } else {
        Ok(Arc::new(RedbStore::open(Path::new(
            spec.strip_prefix("redb:").unwrap_or(spec),
        ))?))
    }
}

fn definition(table: Table) -> TableDefinition<'static, &'static str, &'static [u8]> {
    TableDefinition::new(table.name())
}

/// A [`Store`] in one embedded redb file; commits are fsynced before they return.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
}

impl RedbStore {
    /// Opens or creates the database file at `path`.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let db = Database::create(path)
            .with_context(|| format!("opening registry database {}", path.display()))?;
        // It holds the secrets' values: the node's user alone reads it.
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .with_context(|| format!("restricting {}", path.display()))?;
        let tx = db.begin_write()?;
        for table in Table::ALL {
            tx.open_table(definition(table))?;
        }
        tx.commit()?;
        Ok(RedbStore { db: Arc::new(db) })
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Database) -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || work(&db)).await?
    }
}

#[async_trait]
impl Store for RedbStore {
    async fn put(&self, table: Table, key: &str, value: &[u8]) -> anyhow::Result<()> {
        let (key, value) = (key.to_owned(), value.to_vec());
        self.blocking(move |db| {
            let tx = db.begin_write()?;
            tx.open_table(definition(table))?
                .insert(key.as_str(), value.as_slice())?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn delete(&self, table: Table, key: &str) -> anyhow::Result<()> {
        let key = key.to_owned();
        self.blocking(move |db| {
            let tx = db.begin_write()?;
            tx.open_table(definition(table))?.remove(key.as_str())?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn get(&self, table: Table, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let key = key.to_owned();
        self.blocking(move |db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(definition(table))?;
            Ok(table.get(key.as_str())?.map(|v| v.value().to_vec()))
        })
        .await
    }

    async fn list(&self, table: Table) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        self.blocking(move |db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(definition(table))?;
            let mut out = Vec::new();
            for entry in table.iter()? {
                let (key, value) = entry?;
                out.push((key.value().to_owned(), value.value().to_vec()));
            }
            Ok(out)
        })
        .await
    }
}

/// A [`Store`] in Redis: one hash per table, `{prefix}:{table}`, so several control planes
/// (or test runs) share a server without meeting. A write is acknowledged when Redis has
/// applied it and, when the server has replicas, when `WAIT` saw them all take it (2 s
/// deadline); its survival of a Redis crash is the server's `appendonly`/`appendfsync`
/// setting, which [`RedisStore::connect`] reports in the log when it is off.
#[derive(Clone)]
pub struct RedisStore {
    connection: redis::aio::ConnectionManager,
    prefix: String,
    replicas: usize,
}

impl RedisStore {
    /// Connects to `url` (deadline 5 s) and checks the server answers.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url).with_context(|| format!("bad Redis URL {url:?}"))?;
        let mut connection = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            redis::aio::ConnectionManager::new(client),
        )
        .await
        .with_context(|| format!("Redis at {url} did not answer within 5 s"))?
        .with_context(|| format!("connecting to Redis at {url}"))?;
        let info: String = redis::cmd("INFO")
            .arg("replication")
            .query_async(&mut connection)
            .await?;
        let replicas = info
            .lines()
            .find_map(|l| l.strip_prefix("connected_slaves:"))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        let aof: Vec<String> = redis::cmd("CONFIG")
            .arg("GET")
            .arg("appendonly")
            .query_async(&mut connection)
            .await
            .unwrap_or_default();
        if aof.get(1).map(String::as_str) != Some("yes") {
            tracing::warn!(
                %url,
                "Redis has appendonly off: registrations survive a control-plane crash but not a Redis restart"
            );
        }
        Ok(RedisStore {
            connection,
            prefix: prefix.to_owned(),
            replicas,
        })
    }

    fn key(&self, table: Table) -> String {
        format!("{}:{}", self.prefix, table.name())
    }

    async fn replicate(&self) -> anyhow::Result<()> {
        if self.replicas == 0 {
            return Ok(());
        }
        let acked: usize = redis::cmd("WAIT")
            .arg(self.replicas)
            .arg(2000)
            .query_async(&mut self.connection.clone())
            .await?;
        anyhow::ensure!(
            acked >= self.replicas,
            "only {acked} of {} Redis replicas took the write within 2 s",
            self.replicas
        );
        Ok(())
    }
}

#[async_trait]
impl Store for RedisStore {
    async fn put(&self, table: Table, key: &str, value: &[u8]) -> anyhow::Result<()> {
        let () = redis::cmd("HSET")
            .arg(self.key(table))
            .arg(key)
            .arg(value)
            .query_async(&mut self.connection.clone())
            .await?;
        self.replicate().await
    }

    async fn delete(&self, table: Table, key: &str) -> anyhow::Result<()> {
        let () = redis::cmd("HDEL")
            .arg(self.key(table))
            .arg(key)
            .query_async(&mut self.connection.clone())
            .await?;
        self.replicate().await
    }

    async fn get(&self, table: Table, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        Ok(redis::cmd("HGET")
            .arg(self.key(table))
            .arg(key)
            .query_async(&mut self.connection.clone())
            .await?)
    }

    async fn list(&self, table: Table) -> anyhow::Result<Vec<(String, Vec<u8>)>> {
        let mut all: Vec<(String, Vec<u8>)> = redis::cmd("HGETALL")
            .arg(self.key(table))
            .query_async(&mut self.connection.clone())
            .await?;
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(all)
    }
}
