//! The objects API over HTTP, nested at `/v1` in the node-local platform API (process
//! functions, with their own token) and at `/system` in a node's gateway (`baton objects`,
//! with the node's token):
//!
//! - `GET /objects/{ns}`: the namespace's buckets.
//! - `PUT /objects/{ns}/{bucket}`: creates the bucket (201; 200 if it existed).
//! - `GET /objects/{ns}/{bucket}[?prefix=&delimiter=&after=&limit=]`: a page of its objects
//!   (at most 1,000 entries; `next`, when set, is the next page's `after`); `DELETE
//!   [?force=true]` deletes it (409 while it holds objects, unless forced).
//! - `GET|HEAD|PUT|DELETE /objects/{ns}/{bucket}/{key}`: one object; a PUT creates the
//!   bucket when it does not exist.
//! - `GET /cache`: what the node's cache holds; `POST /cache/flush`: puts every write-back
//!   object in the store now. Both for the node's token only.

use crate::{BucketId, ListQuery, ObjectError, ObjectId, Objects};
use axum::Json;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use baton_state::Capabilities;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// The objects routes; every request's token is checked against `capabilities`.
pub fn router(objects: Objects, capabilities: Arc<Capabilities>) -> axum::Router {
    // Room for the largest object and its request's framing; larger is refused by size first.
    let limit = usize::try_from(objects.max_object_bytes())
        .unwrap_or(usize::MAX)
        .saturating_add(64 << 10);
    axum::Router::new()
        .route("/objects/{namespace}", get(list_buckets))
        .route(
            "/objects/{namespace}/{bucket}",
            get(list_objects).put(create_bucket).delete(delete_bucket),
        )
        .route(
            "/objects/{namespace}/{bucket}/{*key}",
            get(get_object).put(put_object).delete(delete_object),
        )
        .route("/cache", get(stats))
        .route("/cache/flush", post(flush))
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            capabilities,
            authorize,
        ))
        .with_state(objects)
}

/// Lets a request through when its token may reach the namespace in its path.
async fn authorize(
    State(capabilities): State<Arc<Capabilities>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let checked = capabilities.authorize_path(request.headers(), request.uri().path(), "/objects/");
    match checked {
        Ok(()) => next.run(request).await,
        Err(baton_state::StateError::Forbidden(reason)) => {
            ObjectError::Forbidden(reason).into_response()
        }
        Err(_) => ObjectError::Unauthorized.into_response(),
    }
}

impl IntoResponse for ObjectError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
        let mut response = (
            status,
            Json(json!({ "error": self.to_string(), "code": self.s3_code() })),
        )
            .into_response();
        if matches!(self, ObjectError::Full(_) | ObjectError::Unavailable(_)) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

async fn list_buckets(
    State(objects): State<Objects>,
    Path(namespace): Path<String>,
) -> Result<Response, ObjectError> {
    let buckets = objects.list_buckets(&namespace).await?;
    Ok(Json(json!({ "buckets": buckets })).into_response())
}

async fn create_bucket(
    State(objects): State<Objects>,
    Path((namespace, bucket)): Path<(String, String)>,
) -> Result<Response, ObjectError> {
    let id = BucketId::new(&namespace, &bucket)?;
    let status = match objects.create_bucket(&id).await? {
        true => StatusCode::CREATED,
        false => StatusCode::OK,
    };
    Ok((status, Json(objects.bucket_info(&id).await?)).into_response())
}

/// One page of a bucket: `?prefix=&delimiter=&after=&limit=` (at most 1,000 entries); `next`,
/// when set, is the `after` of the next page.
async fn list_objects(
    State(objects): State<Objects>,
    Path((namespace, bucket)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
) -> Result<Response, ObjectError> {
    let id = BucketId::new(&namespace, &bucket)?;
    let page = objects.list_page(&id, &query).await?;
    Ok(Json(json!({
        "bucket": id.bucket,
        "write_back": objects.is_write_back(&id),
        "objects": page.objects,
        "prefixes": page.prefixes,
        "next": page.next,
    }))
    .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DeleteParams {
    force: Option<bool>,
}

async fn delete_bucket(
    State(objects): State<Objects>,
    Path((namespace, bucket)): Path<(String, String)>,
    Query(params): Query<DeleteParams>,
) -> Result<Response, ObjectError> {
    let id = BucketId::new(&namespace, &bucket)?;
    if !objects.bucket_exists(&id).await? {
        return Err(ObjectError::NoSuchBucket(id.to_string()));
    }
    objects
        .delete_bucket(&id, params.force.unwrap_or(false))
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn get_object(
    State(objects): State<Objects>,
    Path((namespace, bucket, key)): Path<(String, String, String)>,
) -> Result<Response, ObjectError> {
    let id = ObjectId::new(&namespace, &bucket, &key)?;
    let object = objects.get(&id).await?;
    let mut response = object.body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    if let Some(etag) = object
        .info
        .etag
        .and_then(|e| HeaderValue::from_str(&e).ok())
    {
        headers.insert(header::ETAG, etag);
    }
    headers.insert(
        "x-baton-last-modified-ms",
        HeaderValue::from(object.info.last_modified_ms),
    );
    Ok(response)
}

async fn put_object(
    State(objects): State<Objects>,
    Path((namespace, bucket, key)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ObjectError> {
    let id = ObjectId::new(&namespace, &bucket, &key)?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(body.len() as u64);
    let limit = objects.max_object_bytes();
    if declared.max(body.len() as u64) > limit {
        return Err(ObjectError::TooLarge {
            size: declared.max(body.len() as u64),
            limit,
        });
    }
    if !objects.bucket_exists(&id.bucket).await? {
        objects.create_bucket(&id.bucket).await?;
    }
    let info = objects.put(&id, body).await?;
    Ok(
        Json(json!({ "object": info, "write_back": objects.is_write_back(&id.bucket) }))
            .into_response(),
    )
}

async fn delete_object(
    State(objects): State<Objects>,
    Path((namespace, bucket, key)): Path<(String, String, String)>,
) -> Result<Response, ObjectError> {
    let id = ObjectId::new(&namespace, &bucket, &key)?;
    objects.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn stats(State(objects): State<Objects>) -> Response {
    let mut stats = serde_json::to_value(objects.stats()).unwrap_or_default();
    stats["memory_models"] =
        serde_json::to_value(objects.predictions().report()).unwrap_or_default();
    Json(stats).into_response()
}

async fn flush(State(objects): State<Objects>) -> Result<Response, ObjectError> {
    Ok(Json(objects.flush().await?).into_response())
}
