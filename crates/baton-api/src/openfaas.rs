//! The JSON shapes of OpenFaaS's gateway API (`FunctionDeployment`, `FunctionStatus`), so
//! `faas-cli` habits and scripts carry over, and their mapping to [`FunctionSpec`].

use crate::{
    ArtifactDigest, FunctionName, FunctionSpec, Limits, ProcessMode, RuntimeSpec, Scaling,
    SpecError, parse_cpu, parse_duration, parse_memory,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Label naming the minimum scale, as in OpenFaaS.
pub const LABEL_SCALE_MIN: &str = "com.openfaas.scale.min";
/// Label naming the maximum scale, as in OpenFaaS.
pub const LABEL_SCALE_MAX: &str = "com.openfaas.scale.max";
/// Label naming the idle time before scale to zero, as in OpenFaaS Pro (`"5m"`).
pub const LABEL_SCALE_ZERO_DURATION: &str = "com.openfaas.scale.zero-duration";
/// Baton's label for the per-function wait-queue length.
pub const LABEL_QUEUE: &str = "baton.queue";
/// Label: concurrency one sandbox should carry before the cluster autoscaler adds another
/// (OpenFaaS's `com.openfaas.scale.target`; Knative's `autoscaling.knative.dev/target`).
pub const LABEL_SCALE_TARGET: &str = "com.openfaas.scale.target";

/// Memory and CPU limits as OpenFaaS writes them (`"64Mi"`, `"0.5"`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceLimits {
    /// Memory quantity, e.g. `"128Mi"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    /// CPU quantity in cores (`"100m"`, `"0.5"`): a process sandbox's CPU bandwidth.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
}

/// The body of `POST`/`PUT /system/functions` (OpenFaaS `FunctionDeployment`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct DeployRequest {
    /// The function's name.
    pub service: String,
    /// A wasm component path or `file://` URL; informational for process functions.
    #[serde(default, deserialize_with = "null_as_default")]
    pub image: String,
    /// Sent by older faas-cli releases (Docker Swarm's network); accepted and ignored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// The process to run; set for process functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_process: Option<String>,
    /// Environment; `exec_timeout`, `mode` and `max_inflight` are also read as settings.
    #[serde(default, deserialize_with = "null_as_default")]
    pub env_vars: BTreeMap<String, String>,
    /// Labels; `com.openfaas.scale.*` are read as scaling settings.
    #[serde(default, deserialize_with = "null_as_default")]
    pub labels: BTreeMap<String, String>,
    /// Annotations, kept and echoed back.
    #[serde(default, deserialize_with = "null_as_default")]
    pub annotations: BTreeMap<String, String>,
    /// Resource limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<ResourceLimits>,
    /// Accepted for compatibility; Baton has no separate requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests: Option<ResourceLimits>,
    /// Accepted for compatibility; one namespace per node.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Accepted for compatibility; Baton has no placement constraints yet.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub constraints: Vec<String>,
    /// Secrets the function reads (`/system/secrets`; each must exist): files in
    /// `/var/openfaas/secrets` for process functions.
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "null_as_default"
    )]
    pub secrets: Vec<String>,
    /// Accepted for compatibility.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_only_root_filesystem: Option<bool>,
    /// Accepted for compatibility; Baton pulls no images.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registry_auth: Option<String>,
    /// Baton's own: the process's working directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
}

impl DeployRequest {
    /// True when this deploys a process function rather than a wasm component.
    pub fn is_process(&self) -> bool {
        self.env_process
            .as_deref()
            .is_some_and(|p| !p.trim().is_empty())
    }

    /// Builds the spec; `component` is the stored digest of the wasm image (None for
    /// process functions).
    pub fn into_spec(self, component: Option<ArtifactDigest>) -> Result<FunctionSpec, SpecError> {
        let err = |m: String| SpecError(m);
        let name = FunctionName::new(&self.service).map_err(|e| err(e.to_string()))?;
        if let Some(namespace) = self.namespace.as_deref().filter(|n| !n.is_empty())
            && namespace != NAMESPACE
        {
            return Err(err(format!(
                "namespace {namespace:?} does not exist: Baton has one namespace, {NAMESPACE:?}"
            )));
        }
        let runtime = match (self.is_process(), component) {
            (true, _) if names_a_file(&self.image) => {
                return Err(err(format!(
                    "image {:?} names a component file and envProcess names a process: deploy one or the other",
                    self.image
                )));
            }
            (true, _) => {
                let command: Vec<String> = self
                    .env_process
                    .as_deref()
                    .unwrap_or_default()
                    .split_whitespace()
                    .map(str::to_owned)
                    .collect();
                let mode = match self.env_vars.get("mode").map(String::as_str) {
                    None | Some("http") => ProcessMode::Http,
                    // of-watchdog's process-per-request modes and the classic watchdog's:
                    // the same contract (body on stdin, stdout the response); Baton buffers
                    // the output of all three (bounded), so `streaming` differs only in when
                    // the first byte leaves.
                    Some("classic" | "serializing" | "streaming") => ProcessMode::Classic,
                    Some(other) => {
                        return Err(err(format!(
                            "envVars.mode {other:?} is not a watchdog mode Baton runs (use \"http\", \"streaming\", \"serializing\" or \"classic\"; \"static\" is not supported)"
                        )));
                    }
                };
                RuntimeSpec::Process {
                    command,
                    mode,
                    working_dir: self.working_dir.clone(),
                }
            }
            (false, Some(component)) => RuntimeSpec::Wasm { component },
            (false, None) => {
                return Err(err(
                    "set `image` to a wasm component file, or `envProcess` for a process function"
                        .into(),
                ));
            }
        };
        let mut limits = Limits::default();
        if let Some(memory) = self.limits.as_ref().and_then(|l| l.memory.as_deref()) {
            limits.memory_bytes =
                parse_memory(memory).map_err(|e| err(format!("limits.memory: {e}")))?;
        }
        if let Some(cpu) = self.limits.as_ref().and_then(|l| l.cpu.as_deref()) {
            limits.cpu_millis = parse_cpu(cpu).map_err(|e| err(format!("limits.cpu: {e}")))?;
        }
        if let Some(timeout) = self.env_vars.get("exec_timeout") {
            limits.timeout_ms = parse_duration(timeout)
                .map_err(|e| err(format!("envVars.exec_timeout: {e}")))?
                .as_millis()
                .try_into()
                .map_err(|_| err("envVars.exec_timeout is too long".into()))?;
        }
        if let Some(inflight) = self.env_vars.get("max_inflight") {
            limits.concurrency = parse_label(inflight, "envVars.max_inflight")?;
        }
        let mut scaling = Scaling::default();
        if let Some(min) = self.labels.get(LABEL_SCALE_MIN) {
            scaling.min = parse_label(min, LABEL_SCALE_MIN)?;
        }
        if let Some(max) = self.labels.get(LABEL_SCALE_MAX) {
            scaling.max = parse_label(max, LABEL_SCALE_MAX)?;
        }
        if let Some(idle) = self.labels.get(LABEL_SCALE_ZERO_DURATION) {
            scaling.keep_alive_ms = Some(
                parse_duration(idle)
                    .map_err(|e| err(format!("{LABEL_SCALE_ZERO_DURATION}: {e}")))?
                    .as_millis() as u64,
            );
        }
        if let Some(target) = self.labels.get(LABEL_SCALE_TARGET) {
            scaling.target = parse_label(target, LABEL_SCALE_TARGET)?;
        }
        if let Some(queue) = self.labels.get(LABEL_QUEUE) {
            scaling.queue = parse_label(queue, LABEL_QUEUE)?;
        }
        let spec = FunctionSpec {
            name,
            runtime,
            env: self.env_vars,
            limits,
            scaling,
            labels: self.labels,
            annotations: self.annotations,
            image: self.image,
            secrets: self.secrets,
        };
        spec.validate()?;
        Ok(spec)
    }
}

/// Reads JSON `null` as the type's default: Go clients (faas-cli) send `null` for a nil map
/// or slice.
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

/// Whether `image` names a file (a component), rather than being a free-form label such as
/// the container image faas-cli sends beside `envProcess`.
fn names_a_file(image: &str) -> bool {
    let image = image.trim();
    image.starts_with('/')
        || image.starts_with("./")
        || image.starts_with("../")
        || image.starts_with("file://")
        || image.ends_with(".wasm")
}

fn parse_label(value: &str, what: &str) -> Result<u32, SpecError> {
    value
        .trim()
        .parse()
        .map_err(|_| SpecError(format!("{what} {value:?} is not a whole number")))
}

/// The one namespace Baton has (OpenFaaS's `namespace` fields and `/system/namespaces`).
pub const NAMESPACE: &str = "baton";

/// One entry of `GET /system/functions` (OpenFaaS `FunctionStatus`, plus Baton's fields).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FunctionStatus {
    /// The function's name.
    pub name: String,
    /// The `image` it was deployed with.
    pub image: String,
    /// Always `"baton"`: one namespace per node.
    pub namespace: String,
    /// The process command, for process functions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_process: Option<String>,
    /// The function's environment.
    pub env_vars: BTreeMap<String, String>,
    /// The secrets it reads (names).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// Limits, in OpenFaaS's form.
    pub limits: ResourceLimits,
    /// Sandboxes running now.
    pub replicas: u64,
    /// Sandboxes ready to serve now.
    pub available_replicas: u64,
    /// Invocations served since the node started.
    pub invocation_count: u64,
    /// RFC 3339 time of the first deployment.
    pub created_at: String,
    /// Baton's runtime kind: `wasm`, `process-http` or `process-classic`.
    pub runtime: String,
    /// Timeout in milliseconds.
    pub timeout_ms: u64,
    /// Registration version, bumped on every update.
    pub version: u64,
}

/// `GET /system/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SystemInfo {
    /// Always `"baton"`.
    pub provider: ProviderInfo,
    /// Baton's version.
    pub version: VersionInfo,
    /// CPU architecture of the node.
    pub arch: String,
}

/// The provider block of `/system/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProviderInfo {
    /// Provider name.
    pub provider: String,
    /// Orchestration: `"baton"`.
    pub orchestration: String,
    /// Provider version.
    pub version: VersionInfo,
}

/// A version block of `/system/info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionInfo {
    /// Semantic version.
    pub release: String,
    /// Commit or build id, when known.
    pub sha: String,
}

impl SystemInfo {
    /// The info block for this build.
    pub fn current(release: &str) -> Self {
        let version = VersionInfo {
            release: release.to_owned(),
            sha: String::new(),
        };
        SystemInfo {
            provider: ProviderInfo {
                provider: "baton".into(),
                orchestration: "baton".into(),
                version: version.clone(),
            },
            version,
            arch: std::env::consts::ARCH.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest() -> ArtifactDigest {
        ArtifactDigest("ab".repeat(32))
    }

    #[test]
    fn openfaas_limits_and_timeout_apply_to_wasm() {
        let req: DeployRequest = serde_json::from_str(
            r#"{"service":"hello","image":"/x.wasm","envVars":{"exec_timeout":"2s"},
                "limits":{"memory":"64Mi"},"labels":{"com.openfaas.scale.max":"3"}}"#,
        )
        .unwrap();
        let spec = req.into_spec(Some(digest())).unwrap();
        assert_eq!(spec.limits.memory_bytes, 64 << 20);
        assert_eq!(spec.limits.timeout_ms, 2000);
        assert_eq!(spec.scaling.max, 3);
        assert!(matches!(spec.runtime, RuntimeSpec::Wasm { .. }));
    }

    #[test]
    fn env_process_makes_a_process_function_with_its_mode() {
        let req: DeployRequest = serde_json::from_str(
            r#"{"service":"py","envProcess":"python3 handler.py","envVars":{"mode":"classic"}}"#,
        )
        .unwrap();
        let spec = req.into_spec(None).unwrap();
        let RuntimeSpec::Process { command, mode, .. } = spec.runtime else {
            panic!()
        };
        assert_eq!(command, ["python3", "handler.py"]);
        assert_eq!(mode, ProcessMode::Classic);
    }

    #[test]
    fn of_watchdog_modes_and_upstream_url_are_read_as_of_watchdog_means_them() {
        let spec = |env: &str| {
            let json =
                format!(r#"{{"service":"f","envProcess":"python3 index.py","envVars":{env}}}"#);
            serde_json::from_str::<DeployRequest>(&json)
                .unwrap()
                .into_spec(None)
        };
        let mode = |env: &str| match spec(env).unwrap().runtime {
            RuntimeSpec::Process { mode, .. } => mode,
            other => panic!("{other:?}"),
        };
        assert_eq!(mode("{}"), ProcessMode::Http);
        for per_request in ["classic", "serializing", "streaming"] {
            assert_eq!(
                mode(&format!(r#"{{"mode":"{per_request}"}}"#)),
                ProcessMode::Classic
            );
        }
        assert!(
            spec(r#"{"mode":"static"}"#)
                .unwrap_err()
                .0
                .contains("not supported")
        );
        for (url, port) in [
            ("http://127.0.0.1:5000", Some(5000)),
            ("http://localhost:3000/", Some(3000)),
        ] {
            let env = format!(r#"{{"mode":"http","upstream_url":"{url}"}}"#);
            assert_eq!(spec(&env).unwrap().upstream_port(), Ok(port), "{url}");
        }
        assert_eq!(spec("{}").unwrap().upstream_port(), Ok(None));
        for url in [
            "https://127.0.0.1:5000",
            "http://10.0.0.1:5000",
            "http://127.0.0.1",
            "http://127.0.0.1:0",
            "5000",
        ] {
            let env = format!(r#"{{"upstream_url":"{url}"}}"#);
            let error = spec(&env).unwrap_err().0;
            assert!(error.contains("upstream_url"), "{url}: {error}");
        }
        // A classic function does not listen: its upstream_url is nobody's business.
        assert!(spec(r#"{"mode":"classic","upstream_url":"x"}"#).is_ok());
    }

    #[test]
    fn bad_fields_are_named_in_the_error() {
        let bad = |json: &str| {
            let req: DeployRequest = serde_json::from_str(json).unwrap();
            req.into_spec(Some(digest())).unwrap_err().0
        };
        assert!(bad(r#"{"service":"../x","image":"a"}"#).contains("../x"));
        assert!(
            bad(r#"{"service":"a","image":"a","limits":{"memory":"lots"}}"#)
                .contains("limits.memory")
        );
        assert!(
            bad(r#"{"service":"a","envProcess":"x","envVars":{"mode":"cgi"}}"#).contains("mode")
        );
        assert!(
            bad(r#"{"service":"a","image":"a","envVars":{"exec_timeout":"0s"}}"#)
                .contains("timeout")
        );
        assert!(
            bad(r#"{"service":"a","image":"a","labels":{"com.openfaas.scale.min":"5","com.openfaas.scale.max":"2"}}"#)
                .contains("min")
        );
        assert!(serde_json::from_str::<DeployRequest>(r#"{"service":"a","imagee":"x"}"#).is_err());
    }
}
