//! The control plane's secrets: OpenFaaS's `/system/secrets`, kept in the registry's
//! [`Store`] (table `secrets`) beside the functions, handed to a worker only when it prepares
//! a function that lists them.

use crate::{Store, Table};
use anyhow::Context;
use baton_api::{ApiError, DeployMode, ErrorKind, MAX_SECRETS, Secret, SecretValues};
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::{Arc, RwLock};

/// What a sealed value starts with: version 1 of the format, then a nonce, then the value
/// encrypted with ChaCha20-Poly1305 (its tag at the end).
const SEALED: &[u8] = b"BSK1";

/// The key values are sealed with in the store: 32 random bytes made at the control plane's
/// first start, in `secrets.key` (mode 0600) in its data directory, never in the store. A
/// copy of the store (a backup, a shared Redis) then holds no readable secret; the secret's
/// name is authenticated with its value, so values cannot be swapped between names.
#[derive(Clone)]
pub struct SecretsKey(Arc<LessSafeKey>);

impl SecretsKey {
    /// The key in `dir/secrets.key`, made if absent.
    pub fn load_or_make(dir: &Path) -> anyhow::Result<Self> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let path = dir.join("secrets.key");
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                SystemRandom::new()
                    .fill(&mut key)
                    .map_err(|_| anyhow::anyhow!("the system's random source failed"))?;
                std::fs::create_dir_all(dir)?;
                let mut file = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&path)
                    .with_context(|| format!("making {}", path.display()))?;
                file.write_all(&key)?;
                file.sync_all()?;
                key.to_vec()
            }
            Err(error) => return Err(error).with_context(|| format!("reading {}", path.display())),
        };
        Self::from_bytes(&bytes).with_context(|| format!("{} is not a 32-byte key", path.display()))
    }

    fn from_bytes(bytes: &[u8]) -> anyhow::Result<Self> {
        let key = UnboundKey::new(&CHACHA20_POLY1305, bytes)
            .map_err(|_| anyhow::anyhow!("a secrets key is 32 bytes"))?;
        Ok(SecretsKey(Arc::new(LessSafeKey::new(key))))
    }

    /// `value` of secret `name`, sealed.
    fn seal(&self, name: &str, value: &[u8]) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the system's random source works");
        let mut sealed = value.to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(name.as_bytes()),
                &mut sealed,
            )
            .expect("a secret's size is bounded far below ChaCha20's limit");
        [SEALED, &nonce, &sealed].concat()
    }

    /// The value of secret `name` from what the store holds: sealed, or (written before
    /// values were sealed) the value itself.
    fn open(&self, name: &str, stored: Vec<u8>) -> anyhow::Result<Vec<u8>> {
        let Some(rest) = stored.strip_prefix(SEALED) else {
            return Ok(stored);
        };
        anyhow::ensure!(
            rest.len() >= NONCE_LEN,
            "a sealed secret shorter than its nonce"
        );
        let (nonce, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).expect("NONCE_LEN bytes");
        let mut value = sealed.to_vec();
        let opened = self
            .0
            .open_in_place(nonce, Aad::from(name.as_bytes()), &mut value)
            .map_err(|_| {
                anyhow::anyhow!(
                    "secret {name:?} does not open with this control plane's secrets.key (another key, or altered)"
                )
            })?;
        Ok(opened.to_vec())
    }
}

/// Secret names in memory (for listing and checks), values sealed in the store.
pub struct Secrets {
    store: Arc<dyn Store>,
    key: SecretsKey,
    names: RwLock<BTreeSet<String>>,
}

impl Secrets {
    /// Loads the names of the stored secrets; values are sealed and opened with `key`.
    pub async fn open(store: Arc<dyn Store>, key: SecretsKey) -> anyhow::Result<Self> {
        let names = store
            .list(Table::Secrets)
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        Ok(Secrets {
            store,
            key,
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
            .put(
                Table::Secrets,
                &secret.name,
                &self.key.seal(&secret.name, &secret.bytes()),
            )
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
            let value = self
                .key
                .open(name, value)
                .map_err(|e| ApiError::internal(format!("{e:#}")))?;
            values.insert(name.clone(), value);
        }
        Ok(SecretValues(values))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_sealed_to_their_name_and_key() {
        let dir = tempfile::tempdir().unwrap();
        let key = SecretsKey::load_or_make(dir.path()).unwrap();
        let sealed = key.seal("api-token", b"t0ken");
        assert!(sealed.starts_with(SEALED));
        assert!(!sealed.windows(5).any(|w| w == b"t0ken"), "the value shows");
        assert_eq!(key.open("api-token", sealed.clone()).unwrap(), b"t0ken");
        assert!(
            key.open("other-name", sealed.clone()).is_err(),
            "moved to another name"
        );
        let mut altered = sealed.clone();
        *altered.last_mut().unwrap() ^= 1;
        assert!(key.open("api-token", altered).is_err());
        // Written before values were sealed: read as they are.
        assert_eq!(key.open("old", b"plain".to_vec()).unwrap(), b"plain");
        // The key file is private and reloads as the same key; another key cannot open.
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.path().join("secrets.key"))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);
        let again = SecretsKey::load_or_make(dir.path()).unwrap();
        assert_eq!(again.open("api-token", sealed.clone()).unwrap(), b"t0ken");
        let other = SecretsKey::load_or_make(tempfile::tempdir().unwrap().path()).unwrap();
        assert!(other.open("api-token", sealed).is_err());
    }
}
