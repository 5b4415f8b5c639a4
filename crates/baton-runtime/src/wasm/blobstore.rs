//! `wasi:blobstore@0.2.0-draft` for components, as wasmCloud and Golem serve it, over the
//! node's objects ([`baton_cache::Objects`]): a container is a bucket of the function's
//! namespace (its `baton.namespace` label, or its own name), so every function of an
//! application, and its process functions through S3, see the same containers. Reads and
//! writes go through the node's cache; write-back buckets acknowledge once the write is in
//! the node's pending log.

use baton_cache::{BucketId, ListQuery, ObjectError, Objects};
use bytes::Bytes;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::p2::{DynInputStream, DynOutputStream};

wasmtime::component::bindgen!({
    path: "wit/wasi-blobstore@0.2.0-draft",
    world: "wasi:blobstore/imports",
    imports: { default: async | trappable },
    with: {
        "wasi:io": wasmtime_wasi::p2::bindings::io,
        "wasi:blobstore/container.container": crate::wasm::blobstore::Container,
        "wasi:blobstore/container.stream-object-names": crate::wasm::blobstore::NameStream,
        "wasi:blobstore/types.incoming-value": crate::wasm::blobstore::IncomingValue,
        "wasi:blobstore/types.outgoing-value": crate::wasm::blobstore::OutgoingValue,
    },
});

use wasi::blobstore::{blobstore, container, types};

/// An open container: a bucket of the instance's namespace.
pub struct Container {
    bucket: BucketId,
}

/// Object names being read by the guest, a listing page at a time.
pub struct NameStream {
    bucket: BucketId,
    /// Names of the pages read and not yet handed to the guest.
    names: std::collections::VecDeque<String>,
    /// The next page's query, while more follow.
    next: Option<ListQuery>,
}

impl NameStream {
    fn done(&self) -> bool {
        self.names.is_empty() && self.next.is_none()
    }
}

/// A value read, held whole.
pub struct IncomingValue {
    body: Bytes,
}

/// A value being written; its stream appends to `body`, bounded by the node's object limit.
pub struct OutgoingValue {
    body: MemoryOutputPipe,
}

/// One instance's view: its resources, the node's objects and its namespace.
pub(crate) struct BlobstoreView<'a> {
    pub(crate) table: &'a mut ResourceTable,
    pub(crate) objects: Option<&'a Objects>,
    pub(crate) namespace: &'a str,
}

type Outcome<T> = wasmtime::Result<Result<T, String>>;

fn seconds(ms: u64) -> u64 {
    ms / 1000
}

/// Reads the stream's next page, if more follow.
async fn next_page(
    objects: Result<Objects, String>,
    stream: &mut NameStream,
) -> Result<(), String> {
    // The query stays until its page is read: a read that fails can be tried again, rather
    // than the stream ending early.
    let Some(query) = stream.next.clone() else {
        return Ok(());
    };
    let page = objects?
        .list_page(&stream.bucket, &query)
        .await
        .map_err(text)?;
    stream.next = query.next(&page);
    stream.names.extend(page.objects.into_iter().map(|o| o.key));
    Ok(())
}

impl BlobstoreView<'_> {
    fn objects(&self) -> Result<Objects, String> {
        self.objects
            .cloned()
            .ok_or_else(|| "this node serves no objects ([objects] enabled = false)".to_string())
    }

    fn bucket(&self, name: &str) -> Result<BucketId, String> {
        BucketId::new(self.namespace, name).map_err(|e| e.to_string())
    }

    fn container(&self, container: &Resource<Container>) -> wasmtime::Result<BucketId> {
        Ok(self.table.get(container)?.bucket.clone())
    }

    /// Takes up to `len` names off the stream (reading a page when none is buffered): the
    /// names, and whether the stream is done.
    async fn take_names(
        &mut self,
        names: &Resource<NameStream>,
        len: u64,
    ) -> Outcome<(Vec<String>, bool)> {
        let mut stream = {
            let held = self.table.get_mut(names)?;
            NameStream {
                bucket: held.bucket.clone(),
                names: std::mem::take(&mut held.names),
                next: held.next.take(),
            }
        };
        let read = match stream.names.is_empty() {
            true => next_page(self.objects(), &mut stream).await,
            false => Ok(()),
        };
        let take = usize::try_from(len)
            .unwrap_or(usize::MAX)
            .min(stream.names.len());
        let taken: Vec<String> = stream.names.drain(..take).collect();
        let done = stream.done();
        *self.table.get_mut(names)? = stream;
        Ok(read.map(|()| (taken, done)))
    }

    async fn open(&mut self, name: String, create: bool) -> Outcome<Resource<Container>> {
        let (objects, bucket) = (self.objects(), self.bucket(&name));
        let found = async move {
            let objects = objects?;
            let bucket = bucket?;
            if create {
                objects.create_bucket(&bucket).await.map_err(text)?;
            } else if !objects.bucket_exists(&bucket).await.map_err(text)? {
                return Err(ObjectError::NoSuchBucket(bucket.to_string()).to_string());
            }
            Ok(bucket)
        }
        .await;
        Ok(match found {
            Ok(bucket) => Ok(self.table.push(Container { bucket })?),
            Err(error) => Err(error),
        })
    }

    async fn copy(
        &mut self,
        src: types::ObjectId,
        dest: types::ObjectId,
        remove: bool,
    ) -> Outcome<()> {
        let objects = self.objects();
        let result = async move {
            let objects = objects?;
            let from = self
                .bucket(&src.container)?
                .object(&src.object)
                .map_err(text)?;
            let to = self
                .bucket(&dest.container)?
                .object(&dest.object)
                .map_err(text)?;
            let object = objects.get(&from).await.map_err(text)?;
            objects.put(&to, object.body).await.map_err(text)?;
            if remove && from != to {
                objects.delete(&from).await.map_err(text)?;
            }
            Ok(())
        };
        Ok(result.await)
    }
}

fn text(error: ObjectError) -> String {
    error.to_string()
}

impl types::Host for BlobstoreView<'_> {}

impl types::HostOutgoingValue for BlobstoreView<'_> {
    async fn new_outgoing_value(&mut self) -> wasmtime::Result<Resource<OutgoingValue>> {
        let limit = self.objects.map_or(0, Objects::max_object_bytes);
        let body = MemoryOutputPipe::new(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok(self.table.push(OutgoingValue { body })?)
    }

    async fn outgoing_value_write_body(
        &mut self,
        value: Resource<OutgoingValue>,
    ) -> wasmtime::Result<Result<Resource<DynOutputStream>, ()>> {
        let pipe = self.table.get(&value)?.body.clone();
        let stream: DynOutputStream = Box::new(pipe);
        Ok(Ok(self.table.push_child(stream, &value)?))
    }

    async fn finish(&mut self, value: Resource<OutgoingValue>) -> Outcome<()> {
        self.table.delete(value)?;
        Ok(Ok(()))
    }

    async fn drop(&mut self, value: Resource<OutgoingValue>) -> wasmtime::Result<()> {
        self.table.delete(value)?;
        Ok(())
    }
}

impl types::HostIncomingValue for BlobstoreView<'_> {
    async fn incoming_value_consume_sync(
        &mut self,
        value: Resource<IncomingValue>,
    ) -> Outcome<Vec<u8>> {
        Ok(Ok(self.table.delete(value)?.body.to_vec()))
    }

    async fn incoming_value_consume_async(
        &mut self,
        value: Resource<IncomingValue>,
    ) -> Outcome<Resource<DynInputStream>> {
        let body = self.table.delete(value)?.body;
        let stream: DynInputStream = Box::new(MemoryInputPipe::new(body));
        Ok(Ok(self.table.push(stream)?))
    }

    async fn size(&mut self, value: Resource<IncomingValue>) -> wasmtime::Result<u64> {
        Ok(self.table.get(&value)?.body.len() as u64)
    }

    async fn drop(&mut self, value: Resource<IncomingValue>) -> wasmtime::Result<()> {
        self.table.delete(value)?;
        Ok(())
    }
}

/// Bytes `start..=end` of `body`, clipped to its end.
fn range(body: Bytes, start: u64, end: u64) -> Result<Bytes, String> {
    let len = body.len() as u64;
    if start > end {
        return Err(format!(
            "range {start}..={end} is empty: start is after end"
        ));
    }
    if len == 0 {
        return Ok(body);
    }
    if start >= len {
        return Err(format!(
            "range starts at {start}, past the object's {len} bytes"
        ));
    }
    let last = end.min(len - 1);
    let (start, last) = (
        usize::try_from(start).unwrap_or(usize::MAX),
        usize::try_from(last).unwrap_or(usize::MAX),
    );
    Ok(body.slice(start..=last))
}

impl container::Host for BlobstoreView<'_> {}

impl container::HostContainer for BlobstoreView<'_> {
    async fn name(&mut self, container: Resource<Container>) -> Outcome<String> {
        Ok(Ok(self.container(&container)?.bucket))
    }

    async fn info(&mut self, container: Resource<Container>) -> Outcome<types::ContainerMetadata> {
        let bucket = self.container(&container)?;
        let objects = self.objects();
        let info = async move {
            let objects = objects?;
            objects.bucket_info(&bucket).await.map_err(text)
        };
        Ok(info.await.map(|info| types::ContainerMetadata {
            name: info.name,
            created_at: seconds(info.created_ms),
        }))
    }

    async fn get_data(
        &mut self,
        container: Resource<Container>,
        name: String,
        start: u64,
        end: u64,
    ) -> Outcome<Resource<IncomingValue>> {
        let bucket = self.container(&container)?;
        let objects = self.objects();
        let read = async move {
            let objects = objects?;
            let id = bucket.object(&name).map_err(text)?;
            let object = objects.get(&id).await.map_err(text)?;
            range(object.body, start, end)
        };
        Ok(match read.await {
            Ok(body) => Ok(self.table.push(IncomingValue { body })?),
            Err(error) => Err(error),
        })
    }

    async fn write_data(
        &mut self,
        container: Resource<Container>,
        name: String,
        data: Resource<OutgoingValue>,
    ) -> Outcome<()> {
        let bucket = self.container(&container)?;
        let body = self.table.get(&data)?.body.contents();
        let objects = self.objects();
        let write = async move {
            let objects = objects?;
            let id = bucket.object(&name).map_err(text)?;
            objects.put(&id, body).await.map_err(text).map(|_| ())
        };
        Ok(write.await)
    }

    async fn list_objects(
        &mut self,
        container: Resource<Container>,
    ) -> Outcome<Resource<NameStream>> {
        let bucket = self.container(&container)?;
        let mut stream = NameStream {
            bucket,
            names: Default::default(),
            next: Some(ListQuery::default()),
        };
        // The first page now, so a listing that fails does so here, where the guest expects.
        if let Err(error) = next_page(self.objects(), &mut stream).await {
            return Ok(Err(error));
        }
        Ok(Ok(self.table.push(stream)?))
    }

    async fn delete_object(&mut self, container: Resource<Container>, name: String) -> Outcome<()> {
        self.delete_objects(container, vec![name]).await
    }

    async fn delete_objects(
        &mut self,
        container: Resource<Container>,
        names: Vec<String>,
    ) -> Outcome<()> {
        let bucket = self.container(&container)?;
        let objects = self.objects();
        let delete = async move {
            let objects = objects?;
            for name in names {
                let id = bucket.object(&name).map_err(text)?;
                objects.delete(&id).await.map_err(text)?;
            }
            Ok(())
        };
        Ok(delete.await)
    }

    async fn has_object(&mut self, container: Resource<Container>, name: String) -> Outcome<bool> {
        let bucket = self.container(&container)?;
        let objects = self.objects();
        let found = async move {
            let objects = objects?;
            let id = bucket.object(&name).map_err(text)?;
            match objects.head(&id).await {
                Ok(_) => Ok(true),
                Err(ObjectError::NoSuchKey(_)) => Ok(false),
                Err(error) => Err(text(error)),
            }
        };
        Ok(found.await)
    }

    async fn object_info(
        &mut self,
        container: Resource<Container>,
        name: String,
    ) -> Outcome<types::ObjectMetadata> {
        let bucket = self.container(&container)?;
        let objects = self.objects();
        let id = bucket.object(&name).map_err(text);
        let info = async move {
            let objects = objects?;
            objects.head(&id?).await.map_err(text)
        };
        Ok(info.await.map(|info| types::ObjectMetadata {
            name: info.key,
            container: bucket.bucket.clone(),
            created_at: seconds(info.last_modified_ms),
            size: info.size,
        }))
    }

    async fn clear(&mut self, container: Resource<Container>) -> Outcome<()> {
        let bucket = self.container(&container)?;
        let objects = self.objects();
        let clear = async move {
            let objects = objects?;
            loop {
                let page = objects
                    .list_page(&bucket, &ListQuery::default())
                    .await
                    .map_err(text)?;
                if page.objects.is_empty() {
                    return Ok(());
                }
                for object in page.objects {
                    let id = bucket.object(&object.key).map_err(text)?;
                    objects.delete(&id).await.map_err(text)?;
                }
            }
        };
        Ok(clear.await)
    }

    async fn drop(&mut self, container: Resource<Container>) -> wasmtime::Result<()> {
        self.table.delete(container)?;
        Ok(())
    }
}

impl container::HostStreamObjectNames for BlobstoreView<'_> {
    async fn read_stream_object_names(
        &mut self,
        names: Resource<NameStream>,
        len: u64,
    ) -> Outcome<(Vec<String>, bool)> {
        self.take_names(&names, len).await
    }

    async fn skip_stream_object_names(
        &mut self,
        names: Resource<NameStream>,
        num: u64,
    ) -> Outcome<(u64, bool)> {
        let taken = self.take_names(&names, num).await?;
        Ok(taken.map(|(skipped, done)| (skipped.len() as u64, done)))
    }

    async fn drop(&mut self, names: Resource<NameStream>) -> wasmtime::Result<()> {
        self.table.delete(names)?;
        Ok(())
    }
}

impl blobstore::Host for BlobstoreView<'_> {
    async fn create_container(&mut self, name: String) -> Outcome<Resource<Container>> {
        self.open(name, true).await
    }

    async fn get_container(&mut self, name: String) -> Outcome<Resource<Container>> {
        self.open(name, false).await
    }

    async fn delete_container(&mut self, name: String) -> Outcome<()> {
        let (objects, bucket) = (self.objects(), self.bucket(&name));
        let delete = async move {
            let objects = objects?;
            let bucket = bucket?;
            if !objects.bucket_exists(&bucket).await.map_err(text)? {
                return Err(ObjectError::NoSuchBucket(bucket.to_string()).to_string());
            }
            objects.delete_bucket(&bucket, true).await.map_err(text)
        };
        Ok(delete.await)
    }

    async fn container_exists(&mut self, name: String) -> Outcome<bool> {
        let (objects, bucket) = (self.objects(), self.bucket(&name));
        let exists = async move {
            let objects = objects?;
            let bucket = bucket?;
            objects.bucket_exists(&bucket).await.map_err(text)
        };
        Ok(exists.await)
    }

    async fn copy_object(&mut self, src: types::ObjectId, dest: types::ObjectId) -> Outcome<()> {
        self.copy(src, dest, false).await
    }

    async fn move_object(&mut self, src: types::ObjectId, dest: types::ObjectId) -> Outcome<()> {
        self.copy(src, dest, true).await
    }
}

struct HasBlobstore;

impl HasData for HasBlobstore {
    type Data<'a> = BlobstoreView<'a>;
}

/// Adds `wasi:blobstore@0.2.0-draft` to `linker`.
pub(crate) fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> BlobstoreView<'_>,
) -> wasmtime::Result<()> {
    wasi::blobstore::types::add_to_linker::<T, HasBlobstore>(linker, get)?;
    wasi::blobstore::container::add_to_linker::<T, HasBlobstore>(linker, get)?;
    wasi::blobstore::blobstore::add_to_linker::<T, HasBlobstore>(linker, get)
}

#[cfg(test)]
mod tests {
    use super::range;
    use bytes::Bytes;

    #[test]
    fn ranges_are_inclusive_and_clipped() {
        let body = Bytes::from_static(b"0123456789");
        /// (start, end, the bytes read or `None` for an error).
        type Case = (u64, u64, Option<&'static [u8]>);
        let cases: [Case; 6] = [
            (0, u64::MAX, Some(b"0123456789")),
            (0, 0, Some(b"0")),
            (2, 4, Some(b"234")),
            (8, 100, Some(b"89")),
            (10, 12, None),
            (5, 4, None),
        ];
        for (start, end, expected) in cases {
            let got = range(body.clone(), start, end).ok();
            assert_eq!(got.as_deref(), expected, "{start}..={end}");
        }
        assert_eq!(range(Bytes::new(), 0, u64::MAX).unwrap().len(), 0);
    }
}
