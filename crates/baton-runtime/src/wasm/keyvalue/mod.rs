//! `wasi:keyvalue` for components, over the function's replicated state
//! ([`baton_state::kv`]): `0.2.0-draft` as wasmCloud serves it and `0.2.0-draft2` as Spin 3
//! does (`store`, `atomics`, `batch` of each; the WIT is in `crates/baton-runtime/wit/`).
//!
//! A bucket is a name within the function's state namespace (its `baton.namespace` label, or
//! its own name): every function of an application, on every node, sees the same buckets. An
//! empty identifier opens the bucket `default`, Spin's default store.

mod draft;
mod draft2;

use baton_state::guest::GuestState;
use baton_state::kv::{Cas, KeyValue, KvError};
use wasmtime::component::{HasData, Linker, Resource, ResourceTable, ResourceTableError};

/// Keys a page of `list-keys` holds at most.
const PAGE: usize = 1000;

/// An open bucket: the instance's buckets and this one's name.
pub struct Bucket {
    kv: KeyValue,
    name: String,
}

/// A compare-and-swap begun by `cas.new` (draft2).
pub struct CasHandle {
    kv: KeyValue,
    cas: Cas,
}

/// What a host call fails with: an error for the guest, or a trap (a resource the guest does
/// not hold).
pub enum Failure {
    Kv(KvError),
    Trap(wasmtime::Error),
}

impl From<KvError> for Failure {
    fn from(error: KvError) -> Self {
        Failure::Kv(error)
    }
}

impl From<ResourceTableError> for Failure {
    fn from(error: ResourceTableError) -> Self {
        Failure::Trap(error.into())
    }
}

/// An instance's view for `wasi:keyvalue`: its resources and its state access.
pub(crate) struct KeyValueView<'a> {
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) state: &'a GuestState,
}

impl KeyValueView<'_> {
    fn open(&mut self, identifier: &str) -> Result<Resource<Bucket>, Failure> {
        let name = baton_state::kv::bucket_name(identifier)?;
        let kv = self.state.key_value()?;
        Ok(self.table.push(Bucket { kv, name })?)
    }

    fn bucket(&self, bucket: &Resource<Bucket>) -> Result<&Bucket, Failure> {
        Ok(self.table.get(bucket)?)
    }

    async fn get(
        &mut self,
        bucket: &Resource<Bucket>,
        key: &str,
    ) -> Result<Option<Vec<u8>>, Failure> {
        let bucket = self.bucket(bucket)?;
        Ok(bucket.kv.get(&bucket.name, key)?)
    }

    async fn set(
        &mut self,
        bucket: &Resource<Bucket>,
        key: &str,
        value: &[u8],
    ) -> Result<(), Failure> {
        let bucket = self.bucket(bucket)?;
        Ok(bucket.kv.set(&bucket.name, key, value).await?)
    }

    async fn delete(&mut self, bucket: &Resource<Bucket>, key: &str) -> Result<(), Failure> {
        let bucket = self.bucket(bucket)?;
        Ok(bucket.kv.delete(&bucket.name, key).await?)
    }

    async fn exists(&mut self, bucket: &Resource<Bucket>, key: &str) -> Result<bool, Failure> {
        let bucket = self.bucket(bucket)?;
        Ok(bucket.kv.exists(&bucket.name, key)?)
    }

    /// Each key with its value, in the order asked.
    async fn get_many(
        &mut self,
        bucket: &Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, Failure> {
        let bucket = self.bucket(bucket)?;
        let mut values = Vec::with_capacity(keys.len());
        for key in keys {
            let value = bucket.kv.get(&bucket.name, &key)?;
            values.push((key, value));
        }
        Ok(values)
    }

    /// Writes each pair in turn; one that fails stops the batch with the earlier ones written.
    async fn set_many(
        &mut self,
        bucket: &Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), Failure> {
        let bucket = self.bucket(bucket)?;
        for (key, value) in key_values {
            bucket.kv.set(&bucket.name, &key, &value).await?;
        }
        Ok(())
    }

    async fn delete_many(
        &mut self,
        bucket: &Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<(), Failure> {
        let bucket = self.bucket(bucket)?;
        for key in keys {
            bucket.kv.delete(&bucket.name, &key).await?;
        }
        Ok(())
    }

    /// A page of `bucket`'s keys from `offset`, and the offset of the next page.
    fn page(
        &self,
        bucket: &Resource<Bucket>,
        offset: u64,
    ) -> Result<(Vec<String>, Option<u64>), Failure> {
        let bucket = self.bucket(bucket)?;
        let keys = bucket.kv.keys(&bucket.name);
        Ok(page(keys, offset))
    }
}

/// The page of `keys` from `offset` and where the next begins (`None` after the last).
fn page(keys: Vec<String>, offset: u64) -> (Vec<String>, Option<u64>) {
    let start = usize::try_from(offset)
        .unwrap_or(usize::MAX)
        .min(keys.len());
    let end = start.saturating_add(PAGE).min(keys.len());
    let next = (end < keys.len()).then_some(end as u64);
    (keys[start..end].to_vec(), next)
}

struct HasKeyValue;

impl HasData for HasKeyValue {
    type Data<'a> = KeyValueView<'a>;
}

/// Adds both served versions of `wasi:keyvalue` to `linker`.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> KeyValueView<'_>,
) -> wasmtime::Result<()> {
    draft::add(linker, get)?;
    draft2::add(linker, get)
}

#[cfg(test)]
mod tests {
    use super::page;

    #[test]
    fn pages_of_keys() {
        let keys = |n: usize| (0..n).map(|i| format!("k{i:05}")).collect::<Vec<_>>();
        assert_eq!(page(keys(3), 0), (keys(3), None));
        assert_eq!(page(keys(0), 0), (vec![], None));
        let (first, next) = page(keys(2500), 0);
        assert_eq!((first.len(), next), (1000, Some(1000)));
        let (last, next) = page(keys(2500), 2000);
        assert_eq!((last.len(), next), (500, None));
        assert_eq!(page(keys(3), u64::MAX), (vec![], None));
    }
}
