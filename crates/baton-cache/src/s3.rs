//! An S3-compatible endpoint over the node's objects (the `s3s` crate speaks the protocol),
//! for process functions: their environment names it (`AWS_ENDPOINT_URL`, path-style on the
//! node-local platform API) with a key pair of their own (`AWS_ACCESS_KEY_ID` names the
//! function's capability, its token is the secret that signs), so unmodified boto3 or
//! aws-sdk code reads and writes its namespace's buckets through the node's cache.
//!
//! Served: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, ListObjects (v1 and v2, with
//! prefix, delimiter and paging), PutObject, GetObject (with ranges), HeadObject,
//! DeleteObject, DeleteObjects, CopyObject, and multipart uploads (Create, UploadPart,
//! Complete, Abort, ListParts, ListMultipartUploads; see [`crate::multipart`]). Anything else
//! answers `NotImplemented`.

use crate::listing::{ListQuery, Listing, MAX_KEYS};
use crate::multipart::{UploadError, UploadLimits, Uploads};
use crate::{BucketId, ObjectError, ObjectId, ObjectInfo, Objects};
use baton_state::Capabilities;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use s3s::dto::{self, StreamingBlob, Timestamp};
use s3s::{S3, S3Error, S3ErrorCode, S3Request, S3Response, S3Result};
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

/// The S3 operations over `objects`, for the namespaces `capabilities` grant.
struct Api {
    objects: Objects,
    capabilities: Arc<Capabilities>,
    uploads: Uploads,
}

/// Multipart uploads in progress on a node at once.
const MAX_UPLOADS: usize = 1000;
/// An upload without a request for this long is dropped with its parts.
const UPLOAD_IDLE: Duration = Duration::from_secs(15 * 60);

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
    let max_object_bytes = objects.max_object_bytes();
    let mut builder = s3s::service::S3ServiceBuilder::new(Api {
        objects,
        capabilities: capabilities.clone(),
        uploads: Uploads::new(UploadLimits {
            max_object_bytes,
            // Four objects of the largest size in flight at once.
            max_total_bytes: max_object_bytes.saturating_mul(4),
            max_uploads: MAX_UPLOADS,
            idle: UPLOAD_IDLE,
        }),
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

fn upload_error(error: UploadError) -> S3Error {
    let code = match &error {
        UploadError::NoSuchUpload(_) => S3ErrorCode::NoSuchUpload,
        UploadError::InvalidPartNumber(_) => S3ErrorCode::InvalidArgument,
        UploadError::InvalidPart(_) => S3ErrorCode::InvalidPart,
        UploadError::InvalidPartOrder => S3ErrorCode::InvalidPartOrder,
        UploadError::EntityTooSmall(..) => S3ErrorCode::EntityTooSmall,
        UploadError::EntityTooLarge { .. } => S3ErrorCode::EntityTooLarge,
        UploadError::SlowDown(_) => S3ErrorCode::SlowDown,
    };
    let status = match &error {
        UploadError::NoSuchUpload(_) => http::StatusCode::NOT_FOUND,
        UploadError::SlowDown(_) => http::StatusCode::SERVICE_UNAVAILABLE,
        _ => http::StatusCode::BAD_REQUEST,
    };
    let mut s3 = S3Error::with_message(code, error.to_string());
    s3.set_status_code(status);
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
        let query = ListQuery {
            prefix: prefix.to_string(),
            delimiter: delimiter.map(str::to_string),
            after: after.map(str::to_string),
            limit: Some(max_keys),
        };
        self.objects
            .list_page(bucket, &query)
            .await
            .map_err(s3_error)
    }
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

    async fn create_multipart_upload(
        &self,
        request: S3Request<dto::CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CreateMultipartUploadOutput>> {
        let input = &request.input;
        let id = self.object(&request, &input.bucket, &input.key)?;
        self.existing(&id.bucket).await?;
        let upload = self
            .uploads
            .create(id.clone(), crate::objects::now_ms())
            .map_err(upload_error)?;
        Ok(S3Response::new(dto::CreateMultipartUploadOutput {
            bucket: Some(input.bucket.clone()),
            key: Some(input.key.clone()),
            upload_id: Some(upload),
            ..Default::default()
        }))
    }

    async fn upload_part(
        &self,
        request: S3Request<dto::UploadPartInput>,
    ) -> S3Result<S3Response<dto::UploadPartOutput>> {
        let id = self.object(&request, &request.input.bucket, &request.input.key)?;
        let upload = request.input.upload_id.clone();
        let room = self.uploads.room(&upload, &id).map_err(upload_error)?;
        let number = request.input.part_number;
        let data = body(request.input.body, room).await?;
        let etag = self
            .uploads
            .put_part(&upload, &id, number, data)
            .map_err(upload_error)?;
        Ok(S3Response::new(dto::UploadPartOutput {
            e_tag: Some(dto::ETag::Strong(etag)),
            ..Default::default()
        }))
    }

    async fn complete_multipart_upload(
        &self,
        request: S3Request<dto::CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::CompleteMultipartUploadOutput>> {
        let input = &request.input;
        let id = self.object(&request, &input.bucket, &input.key)?;
        let listed: Vec<(i32, Option<String>)> = input
            .multipart_upload
            .as_ref()
            .and_then(|m| m.parts.as_ref())
            .map(|parts| {
                parts
                    .iter()
                    .map(|p| {
                        let etag = p.e_tag.as_ref().map(|e| e.value().to_string());
                        (p.part_number.unwrap_or(0), etag)
                    })
                    .collect()
            })
            .unwrap_or_default();
        let (data, etag) = self
            .uploads
            .complete(&input.upload_id, &id, &listed)
            .map_err(upload_error)?;
        self.objects.put(&id, data).await.map_err(s3_error)?;
        Ok(S3Response::new(dto::CompleteMultipartUploadOutput {
            bucket: Some(input.bucket.clone()),
            key: Some(input.key.clone()),
            e_tag: Some(dto::ETag::Strong(etag)),
            location: Some(format!("/{}/{}", input.bucket, input.key)),
            ..Default::default()
        }))
    }

    async fn abort_multipart_upload(
        &self,
        request: S3Request<dto::AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<dto::AbortMultipartUploadOutput>> {
        let id = self.object(&request, &request.input.bucket, &request.input.key)?;
        self.uploads
            .abort(&request.input.upload_id, &id)
            .map_err(upload_error)?;
        Ok(S3Response::new(dto::AbortMultipartUploadOutput::default()))
    }

    async fn list_parts(
        &self,
        request: S3Request<dto::ListPartsInput>,
    ) -> S3Result<S3Response<dto::ListPartsOutput>> {
        let input = &request.input;
        let id = self.object(&request, &input.bucket, &input.key)?;
        let after = input.part_number_marker.unwrap_or(0);
        let limit = max_keys(input.max_parts);
        let parts = self
            .uploads
            .parts(&input.upload_id, &id)
            .map_err(upload_error)?;
        let later: Vec<_> = parts.into_iter().filter(|p| p.number > after).collect();
        let truncated = later.len() > limit;
        let page: Vec<dto::Part> = later
            .into_iter()
            .take(limit)
            .map(|p| dto::Part {
                part_number: Some(p.number),
                size: Some(size(p.size)),
                e_tag: Some(dto::ETag::Strong(p.etag)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(dto::ListPartsOutput {
            bucket: Some(input.bucket.clone()),
            key: Some(input.key.clone()),
            upload_id: Some(input.upload_id.clone()),
            part_number_marker: input.part_number_marker,
            next_part_number_marker: page.last().and_then(|p| p.part_number),
            max_parts: Some(i32::try_from(limit).unwrap_or(i32::MAX)),
            is_truncated: Some(truncated),
            parts: Some(page),
            ..Default::default()
        }))
    }

    async fn list_multipart_uploads(
        &self,
        request: S3Request<dto::ListMultipartUploadsInput>,
    ) -> S3Result<S3Response<dto::ListMultipartUploadsOutput>> {
        let input = &request.input;
        let bucket = self.bucket(&request, &input.bucket)?;
        let prefix = input.prefix.clone().unwrap_or_default();
        // At most MAX_UPLOADS on the node, so one page holds them all.
        let uploads = self
            .uploads
            .in_progress(|o| o.bucket == bucket && o.key.starts_with(&prefix))
            .into_iter()
            .map(|u| dto::MultipartUpload {
                key: Some(u.key),
                upload_id: Some(u.id),
                initiated: Some(timestamp(u.started_ms)),
                ..Default::default()
            })
            .collect();
        Ok(S3Response::new(dto::ListMultipartUploadsOutput {
            bucket: Some(input.bucket.clone()),
            prefix: input.prefix.clone(),
            is_truncated: Some(false),
            uploads: Some(uploads),
            ..Default::default()
        }))
    }
}
