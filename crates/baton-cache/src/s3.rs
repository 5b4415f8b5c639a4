//! An S3-compatible endpoint over the node's objects (the `s3s` crate speaks the protocol),
//! for process functions: their environment names it (`AWS_ENDPOINT_URL`, path-style on the
//! node-local platform API) with a key pair of their own (`AWS_ACCESS_KEY_ID` names the
//! function's capability, its token is the secret that signs), so unmodified boto3 or
//! aws-sdk code reads and writes its namespace's buckets through the node's cache.
//!
//! Served: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, ListObjects (v1 and v2, with
//! prefix, delimiter and paging), PutObject, GetObject (with ranges), HeadObject,
//! DeleteObject, DeleteObjects, CopyObject. Anything else answers `NotImplemented`.

use crate::{BucketId, ObjectError, ObjectId, ObjectInfo, Objects};
use baton_state::Capabilities;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use s3s::dto::{self, StreamingBlob, Timestamp};
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// Keys one listing page holds at most (S3's default and maximum).
const MAX_KEYS: usize = 1000;

/// The S3 operations over `objects`, for the namespaces `capabilities` grant.
struct Api {
    objects: Objects,
    capabilities: Arc<Capabilities>,
}

/// Signature checks: the secret of an access key is its capability's token.
struct Auth(Arc<Capabilities>);

#[async_trait::async_trait]
impl s3s::auth::S3Auth for Auth {
    async fn get_secret_key(&self, access_key: &str) -> S3Result<s3s::auth::SecretKey> {
        match self.0.signer(access_key) {
            Some(signer) => Ok(signer.secret.into()),
            None => Err(S3Error::with_message(
                S3ErrorCode::InvalidAccessKeyId,
                "unknown access key: use the AWS_ACCESS_KEY_ID Baton gave the function",
            )),
        }
    }
}

/// The S3 endpoint as an axum router (it answers every path it is given: mount it as the
/// platform API's fallback, beside `/v1/...`; no S3 bucket name is as short as `v1`).
pub fn router(objects: Objects, capabilities: Arc<Capabilities>) -> axum::Router {
    let mut builder = s3s::service::S3ServiceBuilder::new(Api {
        objects,
        capabilities: capabilities.clone(),
    });
    builder.set_auth(Auth(capabilities));
    let service = builder.build();
    axum::Router::new().fallback(move |request: axum::extract::Request| {
        let service = service.clone();
        async move {
            // The platform's own paths that no route took are not S3's.
            let path = request.uri().path();
            if path == "/v1" || path.starts_with("/v1/") {
                return http::Response::builder()
                    .status(http::StatusCode::NOT_FOUND)
                    .body(axum::body::Body::from("{\"error\":\"no such route\"}"))
                    .unwrap_or_default();
            }
            let request = request.map(s3s::Body::http_body_unsync);
            match service.call(request).await {
                Ok(response) => response.map(axum::body::Body::new),
                Err(error) => {
                    tracing::debug!(?error, "S3 request failed outside an operation");
                    http::Response::builder()
                        .status(http::StatusCode::INTERNAL_SERVER_ERROR)
                        .body(axum::body::Body::from("S3 request failed\n"))
                        .unwrap_or_default()
                }
            }
        }
    })
}

fn s3_error(error: ObjectError) -> S3Error {
    let code =
        S3ErrorCode::from_bytes(error.s3_code().as_bytes()).unwrap_or(S3ErrorCode::InternalError);
    let mut s3 = S3Error::with_message(code, error.to_string());
    if let Ok(status) = http::StatusCode::from_u16(error.http_status()) {
        s3.set_status_code(status);
    }
    s3
}

fn timestamp(ms: u64) -> Timestamp {
    Timestamp::from(UNIX_EPOCH + Duration::from_millis(ms))
}

fn etag(info: &ObjectInfo) -> Option<dto::ETag> {
    info.etag
        .as_deref()
        .map(|e| dto::ETag::Strong(e.trim_matches('"').to_string()))
}

fn size(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl Api {
    /// The namespace the request's signer may reach: S3 buckets are that namespace's.
    fn namespace<T>(&self, request: &S3Request<T>) -> S3Result<String> {
        let Some(credentials) = &request.credentials else {
            return Err(S3Error::with_message(
                S3ErrorCode::AccessDenied,
                "anonymous requests are refused: sign with the function's AWS_ACCESS_KEY_ID",
            ));
        };
        match self.capabilities.signer(&credentials.access_key) {
            Some(signer) => match signer.namespace {
                Some(namespace) => Ok(namespace.to_string()),
                None => Err(S3Error::with_message(
                    S3ErrorCode::AccessDenied,
                    "the node's key has no namespace of its own: use /system/objects",
                )),
            },
            None => Err(S3Error::new(S3ErrorCode::InvalidAccessKeyId)),
        }
    }

    fn bucket<T>(&self, request: &S3Request<T>, bucket: &str) -> S3Result<BucketId> {
        BucketId::new(&self.namespace(request)?, bucket).map_err(s3_error)
    }

    fn object<T>(&self, request: &S3Request<T>, bucket: &str, key: &str) -> S3Result<ObjectId> {
        self.bucket(request, bucket)?.object(key).map_err(s3_error)
    }

    async fn existing(&self, bucket: &BucketId) -> S3Result<()> {
        match self.objects.bucket_exists(bucket).await.map_err(s3_error)? {
            true => Ok(()),
            false => Err(s3_error(ObjectError::NoSuchBucket(bucket.to_string()))),
        }
    }

    /// Keys under `prefix` after `after`, grouped at `delimiter`: one page, and whether more
    /// follow.
    async fn page(
        &self,
        bucket: &BucketId,
        prefix: &str,
        delimiter: Option<&str>,
        after: Option<&str>,
        max_keys: usize,
    ) -> S3Result<Listing> {
        let listed = self.objects.list(bucket, prefix).await.map_err(s3_error)?;
        Ok(paginate(listed, prefix, delimiter, after, max_keys))
    }
}

/// One page of a listing.
#[derive(Debug, Default, PartialEq)]
struct Listing {
    objects: Vec<ObjectInfo>,
    prefixes: Vec<String>,
    /// The last key or prefix of this page, when more follow.
    next: Option<String>,
}

/// Pages `listed` (sorted by key, all under `prefix`) the way S3 does: keys after `after`,
/// those with `delimiter` past the prefix rolled up into one common prefix each, at most
/// `max_keys` entries (keys and prefixes together).
fn paginate(
    listed: Vec<ObjectInfo>,
    prefix: &str,
    delimiter: Option<&str>,
    after: Option<&str>,
    max_keys: usize,
) -> Listing {
    let mut page = Listing::default();
    let mut last: Option<String> = None;
    for info in listed {
        if after.is_some_and(|a| info.key.as_str() <= a) {
            continue;
        }
        let rolled = delimiter.filter(|d| !d.is_empty()).and_then(|d| {
            let rest = &info.key[prefix.len()..];
            rest.find(d)
                .map(|at| format!("{prefix}{}", &rest[..at + d.len()]))
        });
        if let Some(common) = &rolled
            && (page.prefixes.last() == Some(common) || after.is_some_and(|a| common.as_str() <= a))
        {
            continue;
        }
        if page.objects.len() + page.prefixes.len() == max_keys {
            page.next = last;
            return page;
        }
        match rolled {
            Some(common) => {
                last = Some(common.clone());
                page.prefixes.push(common);
            }
            None => {
                last = Some(info.key.clone());
                page.objects.push(info);
            }
        }
    }
    page
}

fn s3_objects(objects: &[ObjectInfo]) -> Vec<dto::Object> {
    objects
        .iter()
        .map(|o| dto::Object {
            key: Some(o.key.clone()),
            size: Some(size(o.size)),
            last_modified: Some(timestamp(o.last_modified_ms)),
            e_tag: etag(o),
            ..Default::default()
        })
        .collect()
}

fn s3_prefixes(prefixes: Vec<String>) -> Vec<dto::CommonPrefix> {
    prefixes
        .into_iter()
        .map(|p| dto::CommonPrefix { prefix: Some(p) })
        .collect()
}

fn max_keys(asked: Option<i32>) -> usize {
    asked
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(MAX_KEYS)
        .min(MAX_KEYS)
}

/// Reads a request body whole, refusing it once it passes `limit`.
async fn body(blob: Option<StreamingBlob>, limit: u64) -> S3Result<Bytes> {
    let Some(mut blob) = blob else {
        return Ok(Bytes::new());
    };
    let mut bytes = BytesMut::new();
    while let Some(chunk) = blob.next().await {
        let chunk = chunk.map_err(|e| {
            S3Error::with_message(
                S3ErrorCode::IncompleteBody,
                format!("reading the body: {e}"),
            )
        })?;
        bytes.extend_from_slice(&chunk);
        if bytes.len() as u64 > limit {
            return Err(s3_error(ObjectError::TooLarge {
                size: bytes.len() as u64,
                limit,
            }));
        }
    }
    Ok(bytes.freeze())
}

#[async_trait::async_trait]
impl S3 for Api {
    async fn list_buckets(
        &self,
        request: S3Request<dto::ListBucketsInput>,
    ) -> S3Result<S3Response<dto::ListBucketsOutput>> {
        let namespace = self.namespace(&request)?;
        let buckets = self
            .objects
            .list_buckets(&namespace)
            .await
            .map_err(s3_error)?
            .into_iter()
            .map(|b| dto::Bucket {
                name: Some(b.name),
                creation_date: Some(timestamp(b.created_ms)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(dto::ListBucketsOutput {
            buckets: Some(buckets),
            ..Default::default()
        }))
    }

    async fn create_bucket(
        &self,
        request: S3Request<dto::CreateBucketInput>,
    ) -> S3Result<S3Response<dto::CreateBucketOutput>> {
        let bucket = self.bucket(&request, &request.input.bucket)?;
        if !self
            .objects
            .create_bucket(&bucket)
            .await
            .map_err(s3_error)?
        {
            return Err(S3Error::with_message(
                S3ErrorCode::BucketAlreadyOwnedByYou,
                format!("bucket {} exists", bucket.bucket),
            ));
        }
        Ok(S3Response::new(dto::CreateBucketOutput {
            location: Some(format!("/{}", bucket.bucket)),
        }))
    }

    async fn head_bucket(
        &self,
        request: S3Request<dto::HeadBucketInput>,
    ) -> S3Result<S3Response<dto::HeadBucketOutput>> {
        let bucket = self.bucket(&request, &request.input.bucket)?;
        self.existing(&bucket).await?;
        Ok(S3Response::new(dto::HeadBucketOutput::default()))
    }

    async fn delete_bucket(
        &self,
        request: S3Request<dto::DeleteBucketInput>,
    ) -> S3Result<S3Response<dto::DeleteBucketOutput>> {
        let bucket = self.bucket(&request, &request.input.bucket)?;
        self.existing(&bucket).await?;
        self.objects
            .delete_bucket(&bucket, false)
            .await
            .map_err(s3_error)?;
        Ok(S3Response::new(dto::DeleteBucketOutput::default()))
    }

    async fn list_objects_v2(
        &self,
        request: S3Request<dto::ListObjectsV2Input>,
    ) -> S3Result<S3Response<dto::ListObjectsV2Output>> {
        let input = &request.input;
        let bucket = self.bucket(&request, &input.bucket)?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let after = input
            .continuation_token
            .as_deref()
            .or(input.start_after.as_deref());
        let limit = max_keys(input.max_keys);
        let page = self
            .page(&bucket, &prefix, input.delimiter.as_deref(), after, limit)
            .await?;
        let count = page.objects.len() + page.prefixes.len();
        Ok(S3Response::new(dto::ListObjectsV2Output {
            name: Some(bucket.bucket),
            prefix: Some(prefix),
            delimiter: input.delimiter.clone(),
            max_keys: Some(i32::try_from(limit).unwrap_or(i32::MAX)),
            key_count: Some(i32::try_from(count).unwrap_or(i32::MAX)),
            continuation_token: input.continuation_token.clone(),
            start_after: input.start_after.clone(),
            is_truncated: Some(page.next.is_some()),
            next_continuation_token: page.next,
            contents: Some(s3_objects(&page.objects)),
            common_prefixes: Some(s3_prefixes(page.prefixes)),
            ..Default::default()
        }))
    }

    async fn list_objects(
        &self,
        request: S3Request<dto::ListObjectsInput>,
    ) -> S3Result<S3Response<dto::ListObjectsOutput>> {
        let input = &request.input;
        let bucket = self.bucket(&request, &input.bucket)?;
        let prefix = input.prefix.clone().unwrap_or_default();
        let limit = max_keys(input.max_keys);
        let page = self
            .page(
                &bucket,
                &prefix,
                input.delimiter.as_deref(),
                input.marker.as_deref(),
                limit,
            )
            .await?;
        Ok(S3Response::new(dto::ListObjectsOutput {
            name: Some(bucket.bucket),
            prefix: Some(prefix),
            delimiter: input.delimiter.clone(),
            marker: input.marker.clone(),
            max_keys: Some(i32::try_from(limit).unwrap_or(i32::MAX)),
            is_truncated: Some(page.next.is_some()),
            next_marker: page.next,
            contents: Some(s3_objects(&page.objects)),
            common_prefixes: Some(s3_prefixes(page.prefixes)),
            ..Default::default()
        }))
    }

    async fn put_object(
        &self,
        request: S3Request<dto::PutObjectInput>,
    ) -> S3Result<S3Response<dto::PutObjectOutput>> {
        let id = self.object(&request, &request.input.bucket, &request.input.key)?;
        let limit = self.objects.max_object_bytes();
        if let Some(declared) = request.input.content_length
            && u64::try_from(declared).unwrap_or(0) > limit
        {
            return Err(s3_error(ObjectError::TooLarge {
                size: u64::try_from(declared).unwrap_or(0),
                limit,
            }));
        }
        let data = body(request.input.body, limit).await?;
        let info = self.objects.put(&id, data).await.map_err(s3_error)?;
        Ok(S3Response::new(dto::PutObjectOutput {
            e_tag: etag(&info),
            size: Some(size(info.size)),
            ..Default::default()
        }))
    }

    async fn get_object(
        &self,
        request: S3Request<dto::GetObjectInput>,
    ) -> S3Result<S3Response<dto::GetObjectOutput>> {
        let id = self.object(&request, &request.input.bucket, &request.input.key)?;
        let object = self.objects.get(&id).await.map_err(s3_error)?;
        let full = object.body.len() as u64;
        let (data, content_range) = match &request.input.range {
            Some(range) => {
                let span = range
                    .check(full)
                    .map_err(|_| S3Error::new(S3ErrorCode::InvalidRange))?;
                let (start, end) = (
                    usize::try_from(span.start).unwrap_or(usize::MAX),
                    usize::try_from(span.end).unwrap_or(usize::MAX),
                );
                let header = format!("bytes {}-{}/{full}", span.start, span.end.saturating_sub(1));
                (object.body.slice(start..end), Some(header))
            }
            None => (object.body, None),
        };
        let length = data.len() as u64;
        Ok(S3Response::new(dto::GetObjectOutput {
            content_length: Some(size(length)),
            content_range,
            e_tag: etag(&object.info),
            last_modified: Some(timestamp(object.info.last_modified_ms)),
            body: Some(StreamingBlob::from(s3s::Body::from(data))),
            ..Default::default()
        }))
    }

    async fn head_object(
        &self,
        request: S3Request<dto::HeadObjectInput>,
    ) -> S3Result<S3Response<dto::HeadObjectOutput>> {
        let id = self.object(&request, &request.input.bucket, &request.input.key)?;
        let info = self.objects.head(&id).await.map_err(s3_error)?;
        Ok(S3Response::new(dto::HeadObjectOutput {
            content_length: Some(size(info.size)),
            e_tag: etag(&info),
            last_modified: Some(timestamp(info.last_modified_ms)),
            ..Default::default()
        }))
    }

    async fn delete_object(
        &self,
        request: S3Request<dto::DeleteObjectInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectOutput>> {
        let id = self.object(&request, &request.input.bucket, &request.input.key)?;
        self.objects.delete(&id).await.map_err(s3_error)?;
        Ok(S3Response::new(dto::DeleteObjectOutput::default()))
    }

    async fn delete_objects(
        &self,
        request: S3Request<dto::DeleteObjectsInput>,
    ) -> S3Result<S3Response<dto::DeleteObjectsOutput>> {
        let bucket = self.bucket(&request, &request.input.bucket)?;
        if request.input.delete.objects.len() > MAX_KEYS {
            return Err(S3Error::with_message(
                S3ErrorCode::MalformedXML,
                format!("at most {MAX_KEYS} keys per DeleteObjects request, as S3"),
            ));
        }
        let mut deleted = Vec::new();
        let mut errors = Vec::new();
        for object in &request.input.delete.objects {
            let result = match bucket.object(&object.key) {
                Ok(id) => self.objects.delete(&id).await,
                Err(error) => Err(error),
            };
            match result {
                Ok(()) => deleted.push(dto::DeletedObject {
                    key: Some(object.key.clone()),
                    ..Default::default()
                }),
                Err(error) => errors.push(dto::Error {
                    key: Some(object.key.clone()),
                    code: Some(error.s3_code().to_string()),
                    message: Some(error.to_string()),
                    ..Default::default()
                }),
            }
        }
        let quiet = request.input.delete.quiet.unwrap_or(false);
        Ok(S3Response::new(dto::DeleteObjectsOutput {
            deleted: (!quiet).then_some(deleted),
            errors: Some(errors),
            ..Default::default()
        }))
    }

    async fn copy_object(
        &self,
        request: S3Request<dto::CopyObjectInput>,
    ) -> S3Result<S3Response<dto::CopyObjectOutput>> {
        let to = self.object(&request, &request.input.bucket, &request.input.key)?;
        let dto::CopySource::Bucket { bucket, key, .. } = &request.input.copy_source else {
            return Err(S3Error::with_message(
                S3ErrorCode::NotImplemented,
                "copies from access points are not served",
            ));
        };
        let from = self.object(&request, bucket, key)?;
        let object = self.objects.get(&from).await.map_err(s3_error)?;
        let info = self.objects.put(&to, object.body).await.map_err(s3_error)?;
        Ok(S3Response::new(dto::CopyObjectOutput {
            copy_object_result: Some(dto::CopyObjectResult {
                e_tag: etag(&info),
                last_modified: Some(timestamp(info.last_modified_ms)),
                ..Default::default()
            }),
            ..Default::default()
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infos(keys: &[&str]) -> Vec<ObjectInfo> {
        keys.iter()
            .map(|k| ObjectInfo {
                key: k.to_string(),
                size: 1,
                last_modified_ms: 0,
                etag: None,
            })
            .collect()
    }

    fn keys(listing: &Listing) -> Vec<&str> {
        listing.objects.iter().map(|o| o.key.as_str()).collect()
    }

    #[test]
    fn listings_page_and_roll_up_as_s3_does() {
        let all = ["a", "b/1", "b/2", "c", "d/x/1", "e"];
        let page = paginate(infos(&all), "", Some("/"), None, 1000);
        assert_eq!(keys(&page), ["a", "c", "e"]);
        assert_eq!(page.prefixes, ["b/", "d/"]);
        assert_eq!(page.next, None);

        // Three entries a page, keys and prefixes together; the next page starts after the
        // last one.
        let first = paginate(infos(&all), "", Some("/"), None, 3);
        assert_eq!(
            (keys(&first), first.prefixes.clone()),
            (vec!["a", "c"], vec!["b/".to_string()])
        );
        assert_eq!(first.next.as_deref(), Some("c"));
        let second = paginate(infos(&all), "", Some("/"), first.next.as_deref(), 3);
        assert_eq!(
            (keys(&second), second.prefixes.clone()),
            (vec!["e"], vec!["d/".to_string()])
        );
        assert_eq!(second.next, None);

        // Under a prefix, without a delimiter: every key.
        let under: Vec<&str> = all
            .iter()
            .copied()
            .filter(|k| k.starts_with("b/"))
            .collect();
        let page = paginate(infos(&under), "b/", None, None, 1);
        assert_eq!(
            (keys(&page), page.next.as_deref()),
            (vec!["b/1"], Some("b/1"))
        );
        let page = paginate(infos(&under), "b/", None, Some("b/1"), 1);
        assert_eq!((keys(&page), page.next.clone()), (vec!["b/2"], None));
    }
}
