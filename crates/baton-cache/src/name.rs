//! Names of buckets and objects, checked once at the edge, and where they live in the store.
//!
//! Layout in the object store: `{namespace}/{bucket}/{key}` for objects (each `/`-separated
//! segment of the key one path part), `{namespace}/.buckets/{bucket}` for a bucket's marker.
//! A bucket name never starts with `.`, so the two never meet.

use crate::ObjectError;
use object_store::path::{Path, PathPart};
use std::fmt;

/// Longest object key, in bytes (S3's).
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest segment of a key between `/`s: a file name on the local store.
const MAX_SEGMENT_BYTES: usize = 255;
/// The directory of bucket markers inside a namespace.
const BUCKETS: &str = ".buckets";

/// A bucket of one namespace: `{namespace}/{bucket}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BucketId {
    /// The function's state namespace (its `baton.namespace` label or its own name).
    pub namespace: String,
    /// 3-63 characters of `a-z`, `0-9`, `-` and `.`, as S3 bucket names.
    pub bucket: String,
}

/// One object: its bucket and its key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId {
    /// Where it lives.
    pub bucket: BucketId,
    /// 1-1024 bytes of UTF-8 without control characters; `/` separates segments, none of them
    /// empty, `.` or `..`.
    pub key: String,
}

/// Checks a namespace: namespaces are function names (or labels spelled as one).
pub fn check_namespace(namespace: &str) -> Result<(), ObjectError> {
    baton_api::FunctionName::new(namespace)
        .map(|_| ())
        .map_err(|e| ObjectError::Invalid(format!("namespace: {e}")))
}

/// Checks a bucket name by S3's rules (`baton_api::check_bucket_name`, which deploys use for
/// the write-back label too).
pub fn check_bucket(bucket: &str) -> Result<(), ObjectError> {
    baton_api::check_bucket_name(bucket).map_err(ObjectError::InvalidBucket)
}

/// Checks an object key.
pub fn check_key(key: &str) -> Result<(), ObjectError> {
    let problem = if key.is_empty() || key.len() > MAX_KEY_BYTES {
        Some(format!("must be 1-{MAX_KEY_BYTES} bytes"))
    } else if key.chars().any(char::is_control) {
        Some("must not hold control characters".to_string())
    } else if key
        .split('/')
        .any(|s| s.is_empty() || s == "." || s == ".." || s.len() > MAX_SEGMENT_BYTES)
    {
        Some(format!(
            "must be '/'-separated segments of 1-{MAX_SEGMENT_BYTES} bytes, none '.' or '..'"
        ))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(ObjectError::InvalidKey(format!(
            "object key {key:?} {problem}"
        ))),
        None => Ok(()),
    }
}

impl BucketId {
    /// Validates both parts.
    pub fn new(namespace: &str, bucket: &str) -> Result<BucketId, ObjectError> {
        check_namespace(namespace)?;
        check_bucket(bucket)?;
        Ok(BucketId {
            namespace: namespace.to_string(),
            bucket: bucket.to_string(),
        })
    }

    /// The prefix every object of the bucket lives under.
    pub fn prefix(&self) -> Path {
        Path::from_iter([self.namespace.as_str(), self.bucket.as_str()])
    }

    /// Where the bucket's marker lives.
    pub fn marker(&self) -> Path {
        Path::from_iter([self.namespace.as_str(), BUCKETS, self.bucket.as_str()])
    }

    /// Where a namespace's bucket markers live.
    pub fn markers_of(namespace: &str) -> Path {
        Path::from_iter([namespace, BUCKETS])
    }

    /// An object of this bucket.
    pub fn object(&self, key: &str) -> Result<ObjectId, ObjectError> {
        check_key(key)?;
        Ok(ObjectId {
            bucket: self.clone(),
            key: key.to_string(),
        })
    }
}

impl ObjectId {
    /// Validates all three parts.
    pub fn new(namespace: &str, bucket: &str, key: &str) -> Result<ObjectId, ObjectError> {
        BucketId::new(namespace, bucket)?.object(key)
    }

    /// Where the object lives in the store.
    pub fn path(&self) -> Path {
        let head = [self.bucket.namespace.as_str(), self.bucket.bucket.as_str()];
        Path::from_iter(
            head.into_iter()
                .map(PathPart::from)
                .chain(self.key.split('/').map(PathPart::from)),
        )
    }

    /// The key of an object listed under `bucket`'s prefix, if it is one of ours.
    pub fn key_of(bucket: &BucketId, path: &Path) -> Option<String> {
        let mut parts = path.parts();
        if parts.next()?.as_ref() != bucket.namespace || parts.next()?.as_ref() != bucket.bucket {
            return None;
        }
        let segments: Vec<String> = parts.map(|p| decode(p.as_ref())).collect();
        (!segments.is_empty()).then(|| segments.join("/"))
    }
}

/// The key of an object's path (`{namespace}/{bucket}/{key}`), whatever its bucket.
pub(crate) fn key_in_path(path: &Path) -> String {
    path.parts()
        .skip(2)
        .map(|p| decode(p.as_ref()))
        .collect::<Vec<_>>()
        .join("/")
}

/// Undoes [`PathPart`]'s percent-encoding of a segment.
fn decode(part: &str) -> String {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

impl fmt::Display for BucketId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.bucket)
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.bucket, self.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn names_follow_s3_rules() {
        // (namespace, bucket, key, valid).
        let cases = [
            ("app", "photos", "a.jpg", true),
            ("app", "my.bucket-1", "dir/sub/x y.txt", true),
            ("app", "ab", "x", false),
            ("app", "Photos", "x", false),
            ("app", "-photos", "x", false),
            ("app", "photos-", "x", false),
            ("app", "a..b", "x", false),
            ("app", ".buckets", "x", false),
            ("App", "photos", "x", false),
            ("app", "photos", "", false),
            ("app", "photos", "/lead", false),
            ("app", "photos", "trail/", false),
            ("app", "photos", "a//b", false),
            ("app", "photos", "a/../b", false),
            ("app", "photos", "./b", false),
            ("app", "photos", "tab\there", false),
            ("app", "photos", &"k".repeat(256), false),
            ("app", "photos", &["k"; 512].join("/"), true),
        ];
        for (namespace, bucket, key, valid) in cases {
            assert_eq!(
                ObjectId::new(namespace, bucket, key).is_ok(),
                valid,
                "{namespace}/{bucket}/{key}"
            );
        }
    }

    #[test]
    fn markers_and_objects_never_share_a_path() {
        let bucket = BucketId::new("app", "photos").unwrap();
        let object = bucket.object(".buckets/photos").unwrap();
        assert_ne!(object.path(), bucket.marker());
        assert_eq!(bucket.marker().as_ref(), "app/.buckets/photos");
        assert_eq!(ObjectId::key_of(&bucket, &bucket.marker()), None);
    }

    proptest! {
        #[test]
        fn every_valid_key_comes_back_from_its_path(
            segments in prop::collection::vec("[^/\\p{Cc}]{1,20}", 1..5)
        ) {
            let key = segments.join("/");
            prop_assume!(check_key(&key).is_ok());
            let id = ObjectId::new("ns", "bucket", &key).unwrap();
            prop_assert_eq!(ObjectId::key_of(&id.bucket, &id.path()), Some(key));
        }
    }
}
