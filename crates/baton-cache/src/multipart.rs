//! Multipart uploads in progress on the S3 endpoint (boto3's `upload_file` and the AWS SDKs'
//! transfer managers switch to them past 8 MiB): parts are held in memory until the upload is
//! completed, when they become one object written through the cache like any other put.
//!
//! Bounded everywhere: an upload holds at most the node's object limit, all uploads together
//! at most `max_total_bytes`, at most `max_uploads` at once, and an upload left alone for
//! `idle` is dropped. Nothing of an upload is acknowledged before it completes, so a node that
//! stops loses only uploads a client has not completed (the client starts them again), as an
//! S3 server that expires incomplete uploads does.

use crate::ObjectId;
use bytes::{Bytes, BytesMut};
use md5::Digest;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Part numbers run from 1 to this, as S3's.
pub const MAX_PART_NUMBER: i32 = 10_000;
/// Every part but the last is at least this large, as S3 requires.
pub const MIN_PART_BYTES: u64 = 5 << 20;

/// What uploads in progress may hold.
#[derive(Debug, Clone)]
pub struct UploadLimits {
    /// Bytes one upload may hold: the node's object limit.
    pub max_object_bytes: u64,
    /// Bytes all uploads together may hold.
    pub max_total_bytes: u64,
    /// Uploads in progress at once.
    pub max_uploads: usize,
    /// An upload without a request for this long is dropped.
    pub idle: Duration,
}

/// Why an upload request was refused (the S3 code is the variant's name).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum UploadError {
    /// Unknown upload id, or one for another object.
    #[error("no upload {0} in progress for this object (completed, aborted or expired)")]
    NoSuchUpload(String),
    /// A part number outside 1–10,000.
    #[error("part number {0} is outside 1-{MAX_PART_NUMBER}")]
    InvalidPartNumber(i32),
    /// The completion lists a part that was not uploaded, or with another ETag.
    #[error("{0}")]
    InvalidPart(String),
    /// The completion lists parts out of order.
    #[error("the parts must be listed in ascending order of part number")]
    InvalidPartOrder,
    /// A part other than the last is under 5 MiB.
    #[error("part {0} is {1} bytes: every part but the last must be at least {MIN_PART_BYTES}")]
    EntityTooSmall(i32, u64),
    /// The upload would be larger than an object may be.
    #[error("the upload would hold {size} bytes, over the object limit of {limit} bytes")]
    EntityTooLarge {
        /// What it would hold.
        size: u64,
        /// The node's object limit.
        limit: u64,
    },
    /// Too many uploads, or bytes, in progress on the node: retry later.
    #[error("{0}: retry later")]
    SlowDown(String),
}

/// One uploaded part, as the listing of parts shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct PartInfo {
    /// Its number.
    pub number: i32,
    /// Bytes.
    pub size: u64,
    /// The hex MD5 of its bytes, as S3's.
    pub etag: String,
}

/// An upload in progress, as the listing of uploads shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct UploadInfo {
    /// Its id.
    pub id: String,
    /// Its object's key.
    pub key: String,
    /// Milliseconds since the Unix epoch of its start.
    pub started_ms: u64,
}

struct Part {
    body: Bytes,
    etag: String,
}

struct Upload {
    object: ObjectId,
    parts: BTreeMap<i32, Part>,
    bytes: u64,
    started_ms: u64,
    touched: Instant,
}

#[derive(Default)]
struct Held {
    uploads: HashMap<String, Upload>,
    bytes: u64,
}

/// The node's uploads in progress.
pub struct Uploads {
    limits: UploadLimits,
    held: Mutex<Held>,
}

/// The ETag S3 gives a part or a single-part object: the hex MD5 of its bytes.
pub fn md5_etag(body: &[u8]) -> String {
    hex::encode(md5::Md5::digest(body))
}

/// The ETag S3 gives a completed multipart upload: the MD5 of the parts' MD5s, then `-` and
/// the number of parts (clients compare it with what they compute).
fn multipart_etag(parts: &[&Part]) -> String {
    let mut digests = md5::Md5::new();
    for part in parts {
        if let Ok(raw) = hex::decode(&part.etag) {
            digests.update(raw);
        }
    }
    format!("{}-{}", hex::encode(digests.finalize()), parts.len())
}

impl Uploads {
    /// No uploads yet.
    pub fn new(limits: UploadLimits) -> Uploads {
        Uploads {
            limits,
            held: Mutex::new(Held::default()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Held> {
        let mut held = self.held.lock().expect("uploads");
        let idle = self.limits.idle;
        let expired: Vec<String> = held
            .uploads
            .iter()
            .filter(|(_, u)| u.touched.elapsed() > idle)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            if let Some(upload) = held.uploads.remove(&id) {
                held.bytes -= upload.bytes;
                tracing::info!(upload = id, object = %upload.object, "idle multipart upload dropped");
            }
        }
        held
    }

    /// Starts an upload of `object`; its id.
    pub fn create(&self, object: ObjectId, started_ms: u64) -> Result<String, UploadError> {
        let mut held = self.lock();
        if held.uploads.len() >= self.limits.max_uploads {
            return Err(UploadError::SlowDown(format!(
                "{} multipart uploads are in progress on this node",
                held.uploads.len()
            )));
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        held.uploads.insert(
            id.clone(),
            Upload {
                object,
                parts: BTreeMap::new(),
                bytes: 0,
                started_ms,
                touched: Instant::now(),
            },
        );
        Ok(id)
    }

    fn upload<'h>(
        held: &'h mut Held,
        id: &str,
        object: &ObjectId,
    ) -> Result<&'h mut Upload, UploadError> {
        match held.uploads.get_mut(id) {
            Some(upload) if &upload.object == object => {
                upload.touched = Instant::now();
                Ok(upload)
            }
            _ => Err(UploadError::NoSuchUpload(id.to_string())),
        }
    }

    /// Bytes a part of upload `id` may still have (checked again when it arrives): for reading
    /// its body with a bound.
    pub fn room(&self, id: &str, object: &ObjectId) -> Result<u64, UploadError> {
        let mut held = self.lock();
        let upload = Self::upload(&mut held, id, object)?;
        Ok(self.limits.max_object_bytes.saturating_sub(upload.bytes))
    }

    /// Stores part `number` of upload `id` (replacing an earlier one of that number); its ETag.
    pub fn put_part(
        &self,
        id: &str,
        object: &ObjectId,
        number: i32,
        body: Bytes,
    ) -> Result<String, UploadError> {
        if !(1..=MAX_PART_NUMBER).contains(&number) {
            return Err(UploadError::InvalidPartNumber(number));
        }
        let etag = md5_etag(&body);
        let size = body.len() as u64;
        let mut held = self.lock();
        let total = held.bytes;
        let upload = Self::upload(&mut held, id, object)?;
        let replaced = upload.parts.get(&number).map_or(0, |p| p.body.len() as u64);
        let after = upload.bytes - replaced + size;
        if after > self.limits.max_object_bytes {
            return Err(UploadError::EntityTooLarge {
                size: after,
                limit: self.limits.max_object_bytes,
            });
        }
        if total - replaced + size > self.limits.max_total_bytes {
            return Err(UploadError::SlowDown(format!(
                "multipart uploads in progress hold {total} bytes on this node"
            )));
        }
        upload.bytes = after;
        upload.parts.insert(
            number,
            Part {
                body,
                etag: etag.clone(),
            },
        );
        held.bytes = total - replaced + size;
        Ok(etag)
    }

    /// The parts of upload `id` so far, by number.
    pub fn parts(&self, id: &str, object: &ObjectId) -> Result<Vec<PartInfo>, UploadError> {
        let mut held = self.lock();
        let upload = Self::upload(&mut held, id, object)?;
        Ok(upload
            .parts
            .iter()
            .map(|(number, part)| PartInfo {
                number: *number,
                size: part.body.len() as u64,
                etag: part.etag.clone(),
            })
            .collect())
    }

    /// The uploads in progress whose objects `belongs` accepts (those of one bucket), by key.
    pub fn in_progress(&self, belongs: impl Fn(&ObjectId) -> bool) -> Vec<UploadInfo> {
        let held = self.lock();
        let mut found: Vec<UploadInfo> = held
            .uploads
            .iter()
            .filter(|(_, u)| belongs(&u.object))
            .map(|(id, u)| UploadInfo {
                id: id.clone(),
                key: u.object.key.clone(),
                started_ms: u.started_ms,
            })
            .collect();
        found.sort_by(|a, b| (&a.key, a.started_ms).cmp(&(&b.key, b.started_ms)));
        found
    }

    /// Ends upload `id` with the parts `listed` (number and, when the client sent it, ETag):
    /// the object's body and its ETag. A refused completion leaves the upload as it was.
    pub fn complete(
        &self,
        id: &str,
        object: &ObjectId,
        listed: &[(i32, Option<String>)],
    ) -> Result<(Bytes, String), UploadError> {
        let mut held = self.lock();
        let upload = Self::upload(&mut held, id, object)?;
        if listed.is_empty() {
            return Err(UploadError::InvalidPart(
                "a completion lists at least one part".into(),
            ));
        }
        if listed.windows(2).any(|w| w[0].0 >= w[1].0) {
            return Err(UploadError::InvalidPartOrder);
        }
        let mut parts = Vec::with_capacity(listed.len());
        for (i, (number, etag)) in listed.iter().enumerate() {
            let Some(part) = upload.parts.get(number) else {
                return Err(UploadError::InvalidPart(format!(
                    "part {number} was not uploaded"
                )));
            };
            if etag
                .as_deref()
                .is_some_and(|e| e.trim_matches('"') != part.etag)
            {
                return Err(UploadError::InvalidPart(format!(
                    "part {number} has ETag {:?}, not {:?}",
                    part.etag,
                    etag.as_deref().unwrap_or_default()
                )));
            }
            let size = part.body.len() as u64;
            if i + 1 < listed.len() && size < MIN_PART_BYTES {
                return Err(UploadError::EntityTooSmall(*number, size));
            }
            parts.push(part);
        }
        let etag = multipart_etag(&parts);
        let mut body = BytesMut::with_capacity(parts.iter().map(|p| p.body.len()).sum());
        for part in &parts {
            body.extend_from_slice(&part.body);
        }
        self.remove(&mut held, id);
        Ok((body.freeze(), etag))
    }

    /// Drops upload `id` and its parts.
    pub fn abort(&self, id: &str, object: &ObjectId) -> Result<(), UploadError> {
        let mut held = self.lock();
        Self::upload(&mut held, id, object)?;
        self.remove(&mut held, id);
        Ok(())
    }

    fn remove(&self, held: &mut Held, id: &str) {
        if let Some(upload) = held.uploads.remove(id) {
            held.bytes -= upload.bytes;
        }
    }

    /// Bytes all uploads in progress hold.
    pub fn held_bytes(&self) -> u64 {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    fn uploads(max_object: u64, max_total: u64, max_uploads: usize) -> Uploads {
        Uploads::new(UploadLimits {
            max_object_bytes: max_object,
            max_total_bytes: max_total,
            max_uploads,
            idle: Duration::from_secs(3600),
        })
    }

    fn object(key: &str) -> ObjectId {
        ObjectId::new("app", "media", key).unwrap()
    }

    fn bytes(n: u64, fill: u8) -> Bytes {
        Bytes::from(vec![fill; usize::try_from(n).unwrap()])
    }

    #[test]
    fn parts_become_one_object_in_the_order_listed_with_s3s_etags() {
        let uploads = uploads(64 * MIB, 128 * MIB, 10);
        let big = object("big.bin");
        let id = uploads.create(big.clone(), 1).unwrap();
        // Out of order, and part 1 sent twice (a client retry): the second copy counts.
        let e2 = uploads.put_part(&id, &big, 2, bytes(3, b'b')).unwrap();
        uploads
            .put_part(&id, &big, 1, bytes(5 * MIB, b'x'))
            .unwrap();
        let e1 = uploads
            .put_part(&id, &big, 1, bytes(5 * MIB, b'a'))
            .unwrap();
        assert_eq!(e2, md5_etag(b"bbb"));
        assert_eq!(uploads.held_bytes(), 5 * MIB + 3);
        let numbers: Vec<i32> = uploads
            .parts(&id, &big)
            .unwrap()
            .iter()
            .map(|p| p.number)
            .collect();
        assert_eq!(numbers, [1, 2]);

        let (body, etag) = uploads
            .complete(&id, &big, &[(1, Some(format!("\"{e1}\""))), (2, None)])
            .unwrap();
        assert_eq!(body.len() as u64, 5 * MIB + 3);
        assert_eq!((body[0], body[body.len() - 1]), (b'a', b'b'));
        assert!(etag.ends_with("-2") && etag.len() == 34, "{etag}");
        // Completed: gone, and its bytes given back.
        assert_eq!(uploads.held_bytes(), 0);
        assert_eq!(
            uploads.abort(&id, &big),
            Err(UploadError::NoSuchUpload(id.clone()))
        );
    }

    #[test]
    fn a_bad_completion_is_refused_and_leaves_the_upload_as_it_was() {
        let uploads = uploads(64 * MIB, 128 * MIB, 10);
        let o = object("o");
        let id = uploads.create(o.clone(), 1).unwrap();
        uploads.put_part(&id, &o, 1, bytes(10, 1)).unwrap();
        uploads.put_part(&id, &o, 2, bytes(10, 2)).unwrap();
        type Listed<'a> = &'a [(i32, Option<String>)];
        let cases: [(Listed, UploadError); 4] = [
            (
                &[],
                UploadError::InvalidPart("a completion lists at least one part".into()),
            ),
            (&[(2, None), (1, None)], UploadError::InvalidPartOrder),
            (
                &[(3, None)],
                UploadError::InvalidPart("part 3 was not uploaded".into()),
            ),
            (&[(1, None), (2, None)], UploadError::EntityTooSmall(1, 10)),
        ];
        for (listed, refused) in cases {
            assert_eq!(uploads.complete(&id, &o, listed), Err(refused));
        }
        assert!(matches!(
            uploads.complete(&id, &o, &[(1, Some("\"0000\"".into()))]),
            Err(UploadError::InvalidPart(_))
        ));
        // Another object's key does not reach this upload.
        assert_eq!(
            uploads.complete(&id, &object("other"), &[(2, None)]),
            Err(UploadError::NoSuchUpload(id.clone()))
        );
        // The last part alone may be small.
        let (body, _) = uploads.complete(&id, &o, &[(2, None)]).unwrap();
        assert_eq!(body, bytes(10, 2));
    }

    #[test]
    fn uploads_are_bounded_per_object_per_node_and_in_number() {
        let uploads = uploads(10, 15, 2);
        let (a, b) = (object("a"), object("b"));
        let ia = uploads.create(a.clone(), 1).unwrap();
        let ib = uploads.create(b.clone(), 2).unwrap();
        assert!(matches!(
            uploads.create(a.clone(), 3),
            Err(UploadError::SlowDown(_))
        ));
        assert_eq!(
            uploads.put_part(&ia, &a, 0, bytes(1, 0)),
            Err(UploadError::InvalidPartNumber(0))
        );
        assert_eq!(
            uploads.put_part(&ia, &a, MAX_PART_NUMBER + 1, bytes(1, 0)),
            Err(UploadError::InvalidPartNumber(MAX_PART_NUMBER + 1))
        );
        uploads.put_part(&ia, &a, 1, bytes(8, 0)).unwrap();
        assert_eq!(uploads.room(&ia, &a), Ok(2));
        assert_eq!(
            uploads.put_part(&ia, &a, 2, bytes(3, 0)),
            Err(UploadError::EntityTooLarge {
                size: 11,
                limit: 10
            })
        );
        // Replacing a part counts its new size only.
        uploads.put_part(&ia, &a, 1, bytes(10, 0)).unwrap();
        assert!(matches!(
            uploads.put_part(&ib, &b, 1, bytes(6, 0)),
            Err(UploadError::SlowDown(_))
        ));
        uploads.put_part(&ib, &b, 1, bytes(5, 0)).unwrap();
        assert_eq!(uploads.held_bytes(), 15);
        let keys: Vec<String> = uploads
            .in_progress(|o| o.key == "b")
            .into_iter()
            .map(|u| u.key)
            .collect();
        assert_eq!(keys, ["b"]);
        uploads.abort(&ia, &a).unwrap();
        assert_eq!(uploads.held_bytes(), 5);
        uploads.create(a, 4).unwrap();
    }

    #[test]
    fn idle_uploads_are_dropped() {
        let uploads = Uploads::new(UploadLimits {
            max_object_bytes: 100,
            max_total_bytes: 100,
            max_uploads: 1,
            idle: Duration::ZERO,
        });
        let o = object("o");
        let id = uploads.create(o.clone(), 1).unwrap();
        std::thread::sleep(Duration::from_millis(2));
        // The next request finds it expired, and there is room for a new one.
        assert_eq!(
            uploads.room(&id, &o),
            Err(UploadError::NoSuchUpload(id.clone()))
        );
        uploads.create(o, 2).unwrap();
    }
}
