//! The control plane's secrets: OpenFaaS's `/system/secrets`, kept in the registry's
//! [`Store`] (table `secrets`) beside the functions, handed to a worker only when it prepares
//! a function that lists them.

use crate::{Store, Table};
use baton_api::{ApiError, DeployMode, ErrorKind, MAX_SECRETS, Secret, SecretValues};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

/// Secret names in memory (for listing and checks), values in the store.
pub struct Secrets {
    store: Arc<dyn Store>,
    names: RwLock<BTreeSet<String>>,
}

impl Secrets {
    /// Loads the names of the stored secrets.
    pub async fn open(store: Arc<dyn Store>) -> anyhow::Result<Self> {
        let names = store
            .list(Table::Secrets)
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        Ok(Secrets {
            store,
            names: RwLock::new(names),
        })
    }

    /// Every secret's name, in order.
    pub fn names(&self) -> Vec<String> {
        self.names.read().unwrap().iter().cloned().collect()
    }

    /// The first of `wanted` that does not exist, as the error a deploy gets.
    pub fn check_exist(&self, wanted: &[String]) -> Result<(), ApiError> {
        let names = self.names.read().unwrap();
        match wanted.iter().find(|w| !names.contains(*w)) {
            Some(missing) => Err(ApiError::bad_request(format!(
                "secret {missing:?} does not exist; create it first (POST /system/secrets, `faas-cli secret create {missing}`)"
            ))),
            None => Ok(()),
        }
    }

    /// Creates or replaces a secret, as `mode` says; the caller serializes changes.
    pub async fn put(&self, secret: Secret, mode: DeployMode) -> Result<(), ApiError> {
        secret.validate().map_err(ApiError::bad_request)?;
        let exists = self.names.read().unwrap().contains(&secret.name);
        match (mode, exists) {
            (DeployMode::Create, true) => {
                return Err(ApiError::new(
                    ErrorKind::Conflict,
                    format!(
                        "secret {:?} already exists; use PUT to update it",
                        secret.name
                    ),
                ));
            }
            (DeployMode::Update, false) => {
                return Err(ApiError::new(
                    ErrorKind::NotFound,
                    format!("secret {:?} not found", secret.name),
                ));
            }
            _ => {}
        }
        if !exists && self.names.read().unwrap().len() >= MAX_SECRETS {
            return Err(ApiError::bad_request(format!(
                "this node keeps at most {MAX_SECRETS} secrets"
            )));
        }
        self.store
            .put(Table::Secrets, &secret.name, &secret.bytes())
            .await
            .map_err(|e| ApiError::internal(format!("storing the secret: {e:#}")))?;
        self.names.write().unwrap().insert(secret.name.clone());
        tracing::info!(secret = %secret.name, "secret stored");
        Ok(())
    }

    /// Removes a secret; `in_use_by` names a function that lists it (409 then).
    pub async fn delete(&self, name: &str, in_use_by: Option<String>) -> Result<(), ApiError> {
        if !self.names.read().unwrap().contains(name) {
            return Err(ApiError::new(
                ErrorKind::NotFound,
                format!("secret {name:?} not found"),
            ));
        }
        if let Some(function) = in_use_by {
            return Err(ApiError::new(
                ErrorKind::Conflict,
                format!(
                    "secret {name:?} is used by function {function:?}; remove or update it first"
                ),
            ));
        }
        self.store
            .delete(Table::Secrets, name)
            .await
            .map_err(|e| ApiError::internal(format!("removing the secret: {e:#}")))?;
        self.names.write().unwrap().remove(name);
        tracing::info!(secret = %name, "secret removed");
        Ok(())
    }

    /// The values of `wanted`, for a worker preparing a function that lists them.
    pub async fn values(&self, wanted: &[String]) -> Result<SecretValues, ApiError> {
        let mut values = BTreeMap::new();
        for name in wanted {
            let value = self
                .store
                .get(Table::Secrets, name)
                .await
                .map_err(|e| ApiError::internal(format!("reading secret {name:?}: {e:#}")))?
                .ok_or_else(|| {
                    ApiError::new(ErrorKind::NotFound, format!("secret {name:?} not found"))
                })?;
            values.insert(name.clone(), value);
        }
        Ok(SecretValues(values))
    }
}
