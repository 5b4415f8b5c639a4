//! `wasi:keyvalue@0.2.0-draft2`, as Spin 3's components import it: `draft`'s calls with
//! string cursors, signed increments, `get-many` answering every key, and compare-and-swap.

use super::{Bucket, CasHandle, Failure, HasKeyValue, KeyValueView};
use baton_state::kv::KvError;
use wasmtime::component::Resource;

wasmtime::component::bindgen!({
    path: "wit/wasi-keyvalue@0.2.0-draft2",
    world: "wasi:keyvalue/imports",
    imports: { default: async | trappable },
    with: {
        "wasi:keyvalue/store.bucket": crate::wasm::keyvalue::Bucket,
        "wasi:keyvalue/atomics.cas": crate::wasm::keyvalue::CasHandle,
    },
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
        cursor: Option<String>,
    ) -> Result<store::KeyResponse, Failure> {
        let offset = match cursor {
            None => 0,
            Some(cursor) => cursor.parse().map_err(|_| {
                KvError::Other(format!("{cursor:?} is not a cursor list-keys gave"))
            })?,
        };
        let (keys, next) = self.page(&bucket, offset)?;
        Ok(store::KeyResponse {
            keys,
            cursor: next.map(|n| n.to_string()),
        })
    }

    async fn drop(&mut self, bucket: Resource<Bucket>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::HostCas for KeyValueView<'_> {
    async fn new(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
    ) -> Result<Resource<CasHandle>, Failure> {
        let bucket = self.bucket(&bucket)?;
        let kv = bucket.kv.clone();
        let cas = kv.cas(&bucket.name, &key)?;
        Ok(self.table.push(CasHandle { kv, cas })?)
    }

    async fn current(&mut self, cas: Resource<CasHandle>) -> Result<Option<Vec<u8>>, Failure> {
        Ok(self.table.get(&cas)?.cas.current().map(<[u8]>::to_vec))
    }

    async fn drop(&mut self, cas: Resource<CasHandle>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl atomics::Host for KeyValueView<'_> {
    async fn increment(
        &mut self,
        bucket: Resource<Bucket>,
        key: String,
        delta: i64,
    ) -> Result<i64, Failure> {
        let bucket = self.bucket(&bucket)?;
        Ok(bucket.kv.increment(&bucket.name, &key, delta).await?)
    }

    async fn swap(
        &mut self,
        cas: Resource<CasHandle>,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), atomics::CasError>> {
        let CasHandle { kv, cas } = self.table.delete(cas)?;
        let failed = |error: KvError| {
            let error = match error {
                KvError::NoSuchStore(_) => store::Error::NoSuchStore,
                KvError::Other(message) => store::Error::Other(message),
            };
            Ok(Err(atomics::CasError::StoreError(error)))
        };
        match kv.swap(&cas, &value).await {
            Ok(true) => Ok(Ok(())),
            Ok(false) => match kv.renew(&cas) {
                Ok(cas) => {
                    let handle = self.table.push(CasHandle { kv, cas })?;
                    Ok(Err(atomics::CasError::CasFailed(handle)))
                }
                Err(error) => failed(error),
            },
            Err(error) => failed(error),
        }
    }
}

impl batch::Host for KeyValueView<'_> {
    async fn get_many(
        &mut self,
        bucket: Resource<Bucket>,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, Failure> {
        KeyValueView::get_many(self, &bucket, keys).await
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
