//! `wasi:keyvalue@0.2.0-draft`, as wasmCloud's components import it.

use super::{Bucket, Failure, HasKeyValue, KeyValueView};
use baton_state::kv::KvError;
use wasmtime::component::Resource;

wasmtime::component::bindgen!({
    path: "wit/wasi-keyvalue@0.2.0-draft",
    world: "wasi:keyvalue/imports",
    imports: { default: async | trappable },
    with: { "wasi:keyvalue/store.bucket": crate::wasm::keyvalue::Bucket },
    trappable_error_type: { "wasi:keyvalue/store.error" => crate::wasm::keyvalue::Failure },
});

use wasi::keyvalue::{atomics, batch, store};

impl store::Host for KeyValueView<'_> {
    async fn open(&mut self, identifier: String) -> Result<Resource<Bucket>, Failure> {
        KeyValueView::open(self, &identifier)
    }

    fn convert_error(&mut self, error: Failure) -> wasmtime::Result<store::Error> {
        match error {
            Failure::Kv(KvError::NoSuchStore(_)) => Ok(store::Error::NoSuchStore),
            Failure::Kv(KvError::Other(message)) => Ok(store::Error::Other(message)),
            Failure::Trap(trap) => Err(trap),
        }
    }
}

impl store::HostBucket for KeyValueView<'_> {
    async fn get(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> Result<Option<Vec<u8>>, Failure> {
        KeyValueView::get(self, &bucket, &key).await
    }

    async fn set(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), Failure> {
        KeyValueView::set(self, &bucket, &key, &value).await
    }

    async fn delete(&mut self, bucket: Resource<Bucket>, key: String) -> Result<(), Failure> {
        KeyValueView::delete(self, &bucket, &key).await
    }

    async fn exists(&mut self, bucket: Resource<Bucket>, key: String) -> Result<bool, Failure> {
        KeyValueView::exists(self, &bucket, &key).await
    }

    async fn list_keys(
        &mut self,
        bucket: Resource<Bucket>,
        cursor: Option<u64>,
    ) -> Result<store::KeyResponse, Failure> {
        let (keys, cursor) = self.page(&bucket, cursor.unwrap_or(0))?;
        Ok(store::KeyResponse { keys, cursor })
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KeyValueView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: u64,
    ) -> Result<u64, Failure> {
        let bucket = self.bucket(&bucket)?;
        let delta = i64::try_from(delta)
            .map_err(|_| KvError::Other("the delta is above 2^63 - 1".into()))?;
        let sum = bucket.kv.increment(&bucket.name, &key, delta).await?;
        Ok(u64::try_from(sum).map_err(|_| {
            KvError::Other(format!(
                "the value {sum} is negative (set through another interface)"
            ))
        })?)
    }
}

impl batch::Host for KeyValueView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Vec<Option<(String, Vec<u8>)>>, Failure> {
        let values = KeyValueView::get_many(self, &bucket, keys).await?;
        Ok(values
            .into_iter()
            .map(|(key, value)| value.map(|value| (key, value)))
            .collect())
    }

    async fn set_many(
        &mut self,
        bucket: Resource<Bucket>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), Failure> {
        KeyValueView::set_many(self, &bucket, key_values).await
    }

    async fn delete_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<(), Failure> {
        KeyValueView::delete_many(self, &bucket, keys).await
    }
}

pub(super) fn add<T: Send + 'static>(
    linker: &mut wasmtime::component::Linker<T>,
    get: fn(&mut T) -> KeyValueView<'_>,
) -> wasmtime::Result<()> {
    store::add_to_linker::<T, HasKeyValue>(linker, get)?;
    atomics::add_to_linker::<T, HasKeyValue>(linker, get)?;
    batch::add_to_linker::<T, HasKeyValue>(linker, get)
}
