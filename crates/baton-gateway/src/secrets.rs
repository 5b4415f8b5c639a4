//! `/system/secrets`: OpenFaaS's secrets API, with faas-netes's answers (the provider
//! faas-cli is written against): `GET` lists names, `POST` creates (`409` if it exists), `PUT`
//! replaces (`404` if missing), `DELETE` with `{"name": …}` removes; changes answer `202`.
//! Values are never listed or logged.

use crate::Shared;
use crate::error::HttpError;
use axum::Json;
use axum::extract::State;
use baton_api::{ApiError, DeployMode, NAMESPACE, Secret};
use bytes::Bytes;
use std::sync::Arc;

/// One entry of `GET /system/secrets`.
#[derive(serde::Serialize)]
pub(crate) struct Listed {
    name: String,
    namespace: &'static str,
}

/// `GET /system/secrets`.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
) -> Result<Json<Vec<Listed>>, HttpError> {
    let names = shared.admin.secrets().await?;
    Ok(Json(
        names
            .into_iter()
            .map(|name| Listed {
                name,
                namespace: NAMESPACE,
            })
            .collect(),
    ))
}

fn parse(body: &Bytes) -> Result<Secret, ApiError> {
    // The error names the field at fault, never the value.
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(format!(
            "expected {{\"name\": …, \"value\": … or \"rawValue\": …}}: {e}"
        ))
    })
}

/// `POST /system/secrets`.
pub(crate) async fn create(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<http::StatusCode, HttpError> {
    shared
        .admin
        .put_secret(parse(&body)?, DeployMode::Create)
        .await?;
    Ok(http::StatusCode::ACCEPTED)
}

/// `PUT /system/secrets`.
pub(crate) async fn update(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<http::StatusCode, HttpError> {
    shared
        .admin
        .put_secret(parse(&body)?, DeployMode::Update)
        .await?;
    Ok(http::StatusCode::ACCEPTED)
}

/// `DELETE /system/secrets` with `{"name": "…"}`.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    body: Bytes,
) -> Result<http::StatusCode, HttpError> {
    let secret = parse(&body)?;
    shared.admin.delete_secret(&secret.name).await?;
    Ok(http::StatusCode::ACCEPTED)
}
