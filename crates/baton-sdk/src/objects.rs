//! Objects (`wasi:blobstore@0.2.0-draft`): buckets of the function's namespace (its name or
//! its `baton.namespace` label), read and written whole through the node's cache. The same
//! component runs on any host that serves the interface (wasmCloud, Golem).
//!
//! ```text
//! let photos = baton_sdk::objects::Bucket::create("photos")?;
//! photos.put("cat.jpg", &bytes)?;
//! let back = photos.get("cat.jpg")?;          // Some(bytes), or None when absent
//! let keys = photos.keys()?;
//! ```

mod bindings {
    #![allow(
        missing_docs,
        reason = "generated from the wasi:blobstore WIT, which documents it"
    )]
    // A world of the SDK's own: a component that also binds `wasi:blobstore/imports` itself
    // (as wasmCloud's examples do) would otherwise carry two type sections of one name.
    wit_bindgen::generate!({
        path: "../baton-runtime/wit/wasi-blobstore@0.2.0-draft",
        inline: "
            package baton:sdk-objects;
            world objects {
                import wasi:blobstore/types@0.2.0-draft;
                import wasi:blobstore/container@0.2.0-draft;
                import wasi:blobstore/blobstore@0.2.0-draft;
            }
        ",
        world: "baton:sdk-objects/objects",
        generate_all,
    });
}

use bindings::wasi::blobstore::types::{IncomingValue, OutgoingValue};
use bindings::wasi::blobstore::{blobstore, container};

/// What one stream write may carry (`wasi:io`'s `blocking-write-and-flush` limit).
const CHUNK: usize = 4096;

/// A bucket of the function's namespace.
pub struct Bucket(container::Container);

/// Why an object operation failed: the host's message.
pub type Error = String;

impl Bucket {
    /// Opens a bucket that exists.
    pub fn open(name: &str) -> Result<Bucket, Error> {
        blobstore::get_container(name).map(Bucket)
    }

    /// Opens a bucket, making it first when it does not exist.
    pub fn create(name: &str) -> Result<Bucket, Error> {
        blobstore::create_container(name).map(Bucket)
    }

    /// Whether a bucket exists.
    pub fn exists(name: &str) -> Result<bool, Error> {
        blobstore::container_exists(name)
    }

    /// An object's bytes, or `None` when it does not exist.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, Error> {
        if !self.0.has_object(key)? {
            return Ok(None);
        }
        let value = self.0.get_data(key, 0, u64::MAX)?;
        IncomingValue::incoming_value_consume_sync(value).map(Some)
    }

    /// Writes an object whole (replacing it).
    pub fn put(&self, key: &str, bytes: &[u8]) -> Result<(), Error> {
        let value = OutgoingValue::new_outgoing_value();
        let body = value
            .outgoing_value_write_body()
            .map_err(|()| "the host gave no body stream".to_string())?;
        for chunk in bytes.chunks(CHUNK) {
            body.blocking_write_and_flush(chunk)
                .map_err(|e| format!("writing the object: {e:?}"))?;
        }
        drop(body);
        self.0.write_data(key, &value)?;
        OutgoingValue::finish(value)
    }

    /// Deletes an object; one that does not exist is not an error.
    pub fn delete(&self, key: &str) -> Result<(), Error> {
        self.0.delete_object(key)
    }

    /// Every key of the bucket, sorted.
    pub fn keys(&self) -> Result<Vec<String>, Error> {
        let names = self.0.list_objects()?;
        let mut keys = Vec::new();
        loop {
            let (page, end) = names.read_stream_object_names(1000)?;
            keys.extend(page);
            if end {
                break;
            }
        }
        keys.sort();
        Ok(keys)
    }
}
