use crate::{Registration, Store, Table};
use async_trait::async_trait;
use baton_api::{
    ApiError, ArtifactDigest, DeployMode, DeployRequest, ErrorKind, FunctionAdmin, FunctionHost,
    FunctionName, FunctionSpec, FunctionStatus, LogEntries, LogQuery, ProcessMode, ResourceLimits,
    RuntimeSpec,
};
use baton_runtime::ArtifactStore;
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Largest component accepted, from a file or an upload.
pub const MAX_COMPONENT_BYTES: u64 = 256 << 20;

/// The registry of functions, durable in a [`Store`], served by a [`FunctionHost`].
pub struct ControlPlane {
    store: Arc<dyn Store>,
    host: Arc<dyn FunctionHost>,
    artifacts: ArtifactStore,
    registry: RwLock<BTreeMap<String, Registration>>,
    secrets: crate::Secrets,
    /// Serializes changes: a deploy's check, write and activation happen as one step.
    changes: tokio::sync::Mutex<()>,
}

impl ControlPlane {
    /// Loads every stored registration and activates it on `host`; secrets are sealed with
    /// `secrets_key`. A registration that no
    /// longer prepares (its component unreadable) stays registered and is reported in the log.
    pub async fn open(
        store: Arc<dyn Store>,
        host: Arc<dyn FunctionHost>,
        artifacts: ArtifactStore,
        secrets_key: crate::SecretsKey,
    ) -> anyhow::Result<Self> {
        let mut registrations = Vec::new();
        for (name, bytes) in store.list(Table::Functions).await? {
            match Registration::decode(&bytes) {
                Ok(registration) => registrations.push(registration),
                Err(error) => {
                    tracing::error!(function = %name, %error, "skipping unreadable registration")
                }
            }
        }
        let control = ControlPlane {
            secrets: crate::Secrets::open(store.clone(), secrets_key).await?,
            store,
            host,
            artifacts,
            registry: RwLock::new(BTreeMap::new()),
            changes: tokio::sync::Mutex::new(()),
        };
        for registration in registrations {
            let name = registration.spec.name.as_str().to_owned();
            if let Err(error) = control
                .host
                .restore(registration.spec.clone(), registration.version)
                .await
            {
                tracing::error!(function = %name, %error, "stored function could not be prepared")
            }
            control.registry.write().unwrap().insert(name, registration);
        }
        tracing::info!(
            functions = control.registry.read().unwrap().len(),
            "registry loaded"
        );
        Ok(control)
    }

    /// The values of the secrets `names`, for a worker preparing a function that lists them.
    pub async fn secret_values(
        &self,
        names: &[String],
    ) -> Result<baton_api::SecretValues, ApiError> {
        self.secrets.values(names).await
    }

    /// Names of every registered function.
    pub fn names(&self) -> Vec<String> {
        self.registry.read().unwrap().keys().cloned().collect()
    }

    /// The stored components registrations refer to: every other artifact is an orphan.
    pub fn components_in_use(&self) -> std::collections::HashSet<String> {
        self.registry
            .read()
            .unwrap()
            .values()
            .filter_map(|r| match &r.spec.runtime {
                RuntimeSpec::Wasm { component } => Some(component.0.clone()),
                RuntimeSpec::Process { .. } => None,
            })
            .collect()
    }

    /// A registered function's specification and version.
    pub fn spec(&self, name: &str) -> Option<(FunctionSpec, u64)> {
        self.registry
            .read()
            .unwrap()
            .get(name)
            .map(|r| (r.spec.clone(), r.version))
    }

    /// Deploys (or updates) a function from its specification, as a federation peer offered
    /// it: a wasm function's `component` must be the bytes its spec names by digest. Checked
    /// and compiled before it is stored, as every deployment.
    pub async fn deploy_spec(
        &self,
        spec: FunctionSpec,
        component: Option<Bytes>,
    ) -> Result<FunctionStatus, ApiError> {
        let digest = match (&spec.runtime, component) {
            (RuntimeSpec::Wasm { component: wanted }, Some(bytes)) => {
                if ArtifactStore::digest(&bytes) != *wanted {
                    return Err(ApiError::bad_request(format!(
                        "the component is not {}",
                        wanted.0
                    )));
                }
                let request = DeployRequest {
                    service: spec.name.to_string(),
                    ..Default::default()
                };
                Some(self.store_component(&request, Some(bytes)).await?)
            }
            (RuntimeSpec::Wasm { .. }, None) => {
                return Err(ApiError::bad_request("a wasm function needs its component"));
            }
            (RuntimeSpec::Process { .. }, _) => None,
        };
        self.check_and_commit(spec, digest, DeployMode::Upsert)
            .await
    }

    /// The end of every deployment: the secrets it names exist, it prepares (compiles), it
    /// is stored and served; on any failure the component stored for it is removed unless
    /// another registration uses it.
    async fn check_and_commit(
        &self,
        spec: FunctionSpec,
        digest: Option<ArtifactDigest>,
        mode: DeployMode,
    ) -> Result<FunctionStatus, ApiError> {
        let cleanup = |digest: &Option<ArtifactDigest>| self.drop_unreferenced(digest);
        if let Err(error) = self.secrets.check_exist(&spec.secrets) {
            cleanup(&digest);
            return Err(error);
        }
        let prepared = match self.host.prepare(&spec).await {
            Ok(prepared) => prepared,
            Err(error) => {
                cleanup(&digest);
                return Err(error);
            }
        };
        let registration = self
            .commit(spec, prepared, mode)
            .await
            .inspect_err(|_| cleanup(&digest))?;
        Ok(self.status(&registration))
    }

    fn status(&self, registration: &Registration) -> FunctionStatus {
        let spec = &registration.spec;
        let replicas = self.host.replicas(spec.name.as_str());
        let (env_process, runtime) = match &spec.runtime {
            RuntimeSpec::Wasm { .. } => (None, "wasm"),
            RuntimeSpec::Process { command, mode, .. } => (
                Some(command.join(" ")),
                match mode {
                    ProcessMode::Http => "process-http",
                    ProcessMode::Classic => "process-classic",
                },
            ),
        };
        FunctionStatus {
            name: spec.name.to_string(),
            image: spec.image.clone(),
            namespace: baton_api::NAMESPACE.into(),
            env_process,
            env_vars: spec.env.clone(),
            secrets: spec.secrets.clone(),
            labels: spec.labels.clone(),
            annotations: spec.annotations.clone(),
            limits: ResourceLimits {
                memory: Some(format_memory(spec.limits.memory_bytes)),
                cpu: (spec.limits.cpu_millis > 0)
                    .then(|| baton_api::format_cpu(spec.limits.cpu_millis)),
            },
            replicas: replicas.running,
            available_replicas: available_replicas(spec, replicas),
            invocation_count: 0,
            created_at: humantime::format_rfc3339_millis(
                UNIX_EPOCH + Duration::from_millis(registration.created_at_ms),
            )
            .to_string(),
            runtime: runtime.into(),
            timeout_ms: spec.limits.timeout_ms,
            version: registration.version,
        }
    }

    /// Reads the component a wasm deployment names and stores it by digest.
    async fn store_component(
        &self,
        request: &DeployRequest,
        upload: Option<Bytes>,
    ) -> Result<ArtifactDigest, ApiError> {
        let bytes = match upload {
            Some(bytes) => bytes.to_vec(),
            None => read_component(&request.image).await?,
        };
        if bytes.len() as u64 > MAX_COMPONENT_BYTES {
            return Err(ApiError::new(
                ErrorKind::PayloadTooLarge,
                format!("component is larger than {MAX_COMPONENT_BYTES} bytes"),
            ));
        }
        if !bytes.starts_with(b"\0asm") {
            return Err(ApiError::bad_request(format!(
                "{} is not WebAssembly (no \\0asm header)",
                if request.image.is_empty() {
                    "the uploaded body"
                } else {
                    request.image.as_str()
                }
            )));
        }
        let artifacts = self.artifacts.clone();
        tokio::task::spawn_blocking(move || artifacts.put(&bytes))
            .await
            .map_err(|e| ApiError::internal(e.to_string()))?
            .map_err(|e| ApiError::internal(format!("storing the component: {e}")))
    }

    /// Removes a component stored for a deployment that failed, unless a registration uses
    /// it.
    fn drop_unreferenced(&self, digest: &Option<ArtifactDigest>) {
        if let Some(digest) = digest
            && !self.is_referenced(digest)
        {
            let _ = std::fs::remove_file(self.artifacts.path(digest));
        }
    }

    fn is_referenced(&self, digest: &ArtifactDigest) -> bool {
        self.registry.read().unwrap().values().any(
            |r| matches!(&r.spec.runtime, RuntimeSpec::Wasm { component } if component == digest),
        )
    }

    async fn commit(
        &self,
        spec: FunctionSpec,
        prepared: baton_api::PreparedHandle,
        mode: DeployMode,
    ) -> Result<Registration, ApiError> {
        let _changes = self.changes.lock().await;
        // Checked again under the lock: a secret removed since the first check is not used.
        self.secrets.check_exist(&spec.secrets)?;
        let name = spec.name.as_str().to_owned();
        let existing = self.registry.read().unwrap().get(&name).cloned();
        match (mode, &existing) {
            (DeployMode::Create, Some(_)) => {
                return Err(ApiError::new(
                    ErrorKind::Conflict,
                    format!("function {name:?} already exists; use PUT to update it"),
                ));
            }
            (DeployMode::Update, None) => return Err(ApiError::not_found(&name)),
            _ => {}
        }
        let now = now_ms();
        let registration = Registration {
            spec: spec.clone(),
            version: existing.as_ref().map_or(1, |r| r.version + 1),
            created_at_ms: existing.as_ref().map_or(now, |r| r.created_at_ms),
            updated_at_ms: now,
        };
        self.store
            .put(Table::Functions, &name, &registration.encode())
            .await
            .map_err(|e| ApiError::internal(format!("persisting the registration: {e:#}")))?;
        self.registry
            .write()
            .unwrap()
            .insert(name.clone(), registration.clone());
        self.host
            .activate(spec, registration.version, prepared)
            .await;
        tracing::info!(function = %name, version = registration.version, "function deployed");
        Ok(registration)
    }
}

async fn read_component(image: &str) -> Result<Vec<u8>, ApiError> {
    if image.is_empty() {
        return Err(ApiError::bad_request(
            "set `image` to a wasm component file, or `envProcess` for a process function",
        ));
    }
    let path = image.strip_prefix("file://").unwrap_or(image);
    if path.contains("://") {
        return Err(ApiError::bad_request(format!(
            "image {image:?} is not a file path or file:// URL; Baton does not pull from registries"
        )));
    }
    let unreadable = |e: std::io::Error| {
        ApiError::bad_request(format!("cannot read component file {path:?}: {e}"))
    };
    let file = tokio::fs::File::open(path).await.map_err(unreadable)?;
    let metadata = file.metadata().await.map_err(unreadable)?;
    // A device or a pipe reports length 0 and never ends: only regular files are components.
    if !metadata.is_file() {
        return Err(ApiError::bad_request(format!(
            "image {path:?} is not a regular file"
        )));
    }
    if metadata.len() > MAX_COMPONENT_BYTES {
        return Err(too_large(path));
    }
    // Read at most one byte past the cap, whatever the file grows to meanwhile.
    let mut bytes = Vec::with_capacity(metadata.len() as usize);
    tokio::io::AsyncReadExt::read_to_end(
        &mut tokio::io::AsyncReadExt::take(file, MAX_COMPONENT_BYTES + 1),
        &mut bytes,
    )
    .await
    .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_COMPONENT_BYTES {
        return Err(too_large(path));
    }
    Ok(bytes)
}

fn too_large(path: &str) -> ApiError {
    ApiError::new(
        ErrorKind::PayloadTooLarge,
        format!("component file {path:?} is larger than {MAX_COMPONENT_BYTES} bytes"),
    )
}

fn format_memory(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 20) {
        format!("{}Mi", bytes >> 20)
    } else {
        bytes.to_string()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default()
}

#[async_trait]
impl FunctionAdmin for ControlPlane {
    async fn deploy(
        &self,
        request: DeployRequest,
        upload: Option<Bytes>,
        mode: DeployMode,
    ) -> Result<FunctionStatus, ApiError> {
        FunctionName::new(&request.service).map_err(|e| ApiError::bad_request(e.to_string()))?;
        let digest = if request.is_process() {
            None
        } else {
            Some(self.store_component(&request, upload).await?)
        };
        let spec = match request.into_spec(digest.clone()) {
            Ok(spec) => spec,
            Err(error) => {
                self.drop_unreferenced(&digest);
                return Err(ApiError::bad_request(error.0));
            }
        };
        self.check_and_commit(spec, digest, mode).await
    }

    async fn delete(&self, name: &str) -> Result<(), ApiError> {
        let _changes = self.changes.lock().await;
        if !self.registry.read().unwrap().contains_key(name) {
            return Err(ApiError::not_found(name));
        }
        self.store
            .delete(Table::Functions, name)
            .await
            .map_err(|e| ApiError::internal(format!("removing the registration: {e:#}")))?;
        self.registry.write().unwrap().remove(name);
        self.host.deactivate(name).await;
        tracing::info!(function = %name, "function removed");
        Ok(())
    }

    async fn scale(&self, name: &str, replicas: u32) -> Result<(), ApiError> {
        if !self.registry.read().unwrap().contains_key(name) {
            return Err(ApiError::not_found(name));
        }
        if replicas > baton_api::MAX_SCALE {
            return Err(ApiError::bad_request(format!(
                "replicas {replicas} is more than the {} sandboxes a function may have",
                baton_api::MAX_SCALE
            )));
        }
        self.host.scale(name, replicas).await?;
        tracing::info!(function = %name, replicas, "scaled by hand");
        Ok(())
    }

    async fn list(&self) -> Result<Vec<FunctionStatus>, ApiError> {
        let registrations: Vec<Registration> =
            self.registry.read().unwrap().values().cloned().collect();
        Ok(registrations.iter().map(|r| self.status(r)).collect())
    }

    async fn get(&self, name: &str) -> Result<FunctionStatus, ApiError> {
        let registration = self
            .registry
            .read()
            .unwrap()
            .get(name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(name))?;
        Ok(self.status(&registration))
    }

    async fn logs(&self, query: LogQuery) -> Result<LogEntries, ApiError> {
        if !self.registry.read().unwrap().contains_key(&query.name) {
            return Err(ApiError::not_found(&query.name));
        }
        Ok(self.host.logs(&query))
    }

    async fn secrets(&self) -> Result<Vec<String>, ApiError> {
        Ok(self.secrets.names())
    }

    async fn put_secret(
        &self,
        secret: baton_api::Secret,
        mode: DeployMode,
    ) -> Result<(), ApiError> {
        let _changes = self.changes.lock().await;
        self.secrets.put(secret, mode).await
    }

    async fn delete_secret(&self, name: &str) -> Result<(), ApiError> {
        let _changes = self.changes.lock().await;
        let user = self
            .registry
            .read()
            .unwrap()
            .values()
            .find(|r| r.spec.secrets.iter().any(|s| s == name))
            .map(|r| r.spec.name.to_string());
        self.secrets.delete(name, user).await
    }
}
/// `availableReplicas` as faas-cli reads it (`ready`, `describe`: "Ready" when above zero):
/// the sandboxes ready now, and at least one for a function that starts on demand (a
/// maximum above zero), since a call to it is served. The choice the "Fit the ecosystem"
/// issue asks for; `replicas` still counts the sandboxes that exist.
fn available_replicas(spec: &FunctionSpec, replicas: baton_api::Replicas) -> u64 {
    match spec.scaling.max {
        0 => replicas.ready,
        _ => replicas.ready.max(1),
    }
}
