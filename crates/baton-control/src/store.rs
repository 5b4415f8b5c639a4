use crate::Registration;
use anyhow::Context;
use async_trait::async_trait;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use std::path::Path;
use std::sync::Arc;

/// The control plane's persistence: registrations only. Sandboxes and scale are rebuilt from
/// workers, never written, so the cold-start path has no persistent write.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Writes `registration` durably; returns once it would survive a crash.
    async fn put(&self, registration: &Registration) -> anyhow::Result<()>;
    /// Removes the registration of `name` durably.
    async fn delete(&self, name: &str) -> anyhow::Result<()>;
    /// Every stored registration.
    async fn list(&self) -> anyhow::Result<Vec<Registration>>;
}

const FUNCTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("functions");

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
        let tx = db.begin_write()?;
        tx.open_table(FUNCTIONS)?;
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
    async fn put(&self, registration: &Registration) -> anyhow::Result<()> {
        let name = registration.spec.name.as_str().to_owned();
        let bytes = registration.encode();
        self.blocking(move |db| {
            let tx = db.begin_write()?;
            tx.open_table(FUNCTIONS)?
                .insert(name.as_str(), bytes.as_slice())?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn delete(&self, name: &str) -> anyhow::Result<()> {
        let name = name.to_owned();
        self.blocking(move |db| {
            let tx = db.begin_write()?;
            tx.open_table(FUNCTIONS)?.remove(name.as_str())?;
            tx.commit()?;
            Ok(())
        })
        .await
    }

    async fn list(&self) -> anyhow::Result<Vec<Registration>> {
        self.blocking(|db| {
            let tx = db.begin_read()?;
            let table = tx.open_table(FUNCTIONS)?;
            let mut out = Vec::new();
            for entry in table.iter()? {
                let (name, bytes) = entry?;
                match Registration::decode(bytes.value()) {
                    Ok(registration) => out.push(registration),
                    Err(error) => tracing::error!(name = name.value(), %error, "skipping unreadable registration"),
                }
            }
            Ok(out)
        })
        .await
    }
}
