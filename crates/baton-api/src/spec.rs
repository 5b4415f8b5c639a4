use crate::FunctionName;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::time::Duration;

/// Everything Baton needs to run a function; what the registry stores for each name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FunctionSpec {
    /// The function's name, unique on the node.
    pub name: FunctionName,
    /// What runs: a wasm component or a process.
    pub runtime: RuntimeSpec,
    /// Environment given to the function.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Resource and request limits.
    #[serde(default)]
    pub limits: Limits,
    /// How many sandboxes to keep and when to let them go.
    #[serde(default)]
    pub scaling: Scaling,
    /// Free-form labels (OpenFaaS `labels`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Free-form annotations (OpenFaaS `annotations`).
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// What the user gave as `image`, echoed back by the API.
    #[serde(default)]
    pub image: String,
    /// The secrets it reads (OpenFaaS `secrets`): names only; the values stay with the
    /// control plane until a worker prepares the function.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<String>,
}

/// The SHA-256 of a stored artifact, lower-case hex; artifacts are stored by this name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ArtifactDigest(pub String);

/// The kind of sandbox a function runs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum RuntimeSpec {
    /// A WebAssembly component targeting `wasi:http/proxy`, stored by digest.
    Wasm {
        /// The stored component.
        component: ArtifactDigest,
    },
    /// A process speaking the OpenFaaS watchdog contract.
    Process {
        /// Program and arguments (`envProcess`, split on white space as the watchdog does).
        command: Vec<String>,
        /// How requests reach the process.
        mode: ProcessMode,
        /// Directory the process starts in; the node's data directory when absent.
        #[serde(default)]
        working_dir: Option<String>,
    },
}

/// The OpenFaaS watchdog modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProcessMode {
    /// A long-running HTTP server on `$PORT`, reverse-proxied.
    Http,
    /// A process per request: body on stdin, response on stdout.
    Classic,
}

/// Per-function limits; defaults are what a user who sets nothing gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Memory a sandbox may use, in bytes (wasm linear memory; process address space).
    pub memory_bytes: u64,
    /// How long one invocation may run, in milliseconds.
    pub timeout_ms: u64,
    /// Requests one sandbox serves at once.
    pub concurrency: u32,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: u64,
    /// Largest response accepted from the function, in bytes.
    pub max_output_bytes: u64,
    /// CPU one sandbox may use, in thousandths of a core (`limits.cpu` as Kubernetes and
    /// OpenFaaS read it: `100m`, `0.5`, `2`); none when 0. A process sandbox's control group
    /// enforces it where the node has control groups.
    pub cpu_millis: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory_bytes: 128 << 20,
            timeout_ms: 10_000,
            concurrency: 100,
            max_body_bytes: 16 << 20,
            max_output_bytes: 16 << 20,
            cpu_millis: 0,
        }
    }
}

impl Limits {
    /// The timeout as a [`Duration`].
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// Scaling bounds of a function on one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Scaling {
    /// Sandboxes kept even when idle; 0 allows scale to zero.
    pub min: u32,
    /// Most sandboxes at once.
    pub max: u32,
    /// Idle time after which the function scales to zero (`com.openfaas.scale.zero-duration`),
    /// in milliseconds; `None`: the platform's default (`scale_to_zero_grace`).
    pub keep_alive_ms: Option<u64>,
    /// Requests that may wait for a free sandbox before new ones get 429.
    pub queue: u32,
    /// Concurrency one sandbox should carry before the cluster autoscaler adds another;
    /// 0 means 70 % of `limits.concurrency` (Knative's target percentage).
    pub target: u32,
}

impl Default for Scaling {
    fn default() -> Self {
        Scaling {
            min: 0,
            max: 4,
            keep_alive_ms: None,
            queue: 1024,
            target: 0,
        }
    }
}

/// Most sandboxes one function may ask for: beyond it a `scale.max` is a typo, not a plan.
pub const MAX_SCALE: u32 = 10_000;
/// Most requests one sandbox may serve at once.
pub const MAX_CONCURRENCY: u32 = 100_000;
/// Most requests that may wait for one function.
pub const MAX_QUEUE: u32 = 1_000_000;

/// Why a spec is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

impl FunctionSpec {
    /// A spec as a deploy with nothing but a name and code gets: default limits and scaling,
    /// no environment, labels or annotations.
    pub fn new(name: FunctionName, runtime: RuntimeSpec) -> Self {
        FunctionSpec {
            name,
            runtime,
            env: BTreeMap::new(),
            limits: Limits::default(),
            scaling: Scaling::default(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            image: String::new(),
            secrets: Vec::new(),
        }
    }

    /// The concurrency per sandbox the autoscaler aims for.
    pub fn target_concurrency(&self) -> f64 {
        if self.scaling.target > 0 {
            f64::from(self.scaling.target.min(self.limits.concurrency))
        } else {
            (f64::from(self.limits.concurrency) * 0.7).max(1.0)
        }
    }

    /// Checks the invariants the runtimes rely on; the message says what to change.
    pub fn validate(&self) -> Result<(), SpecError> {
        let fail = |m: String| Err(SpecError(m));
        if let RuntimeSpec::Process { command, .. } = &self.runtime
            && (command.is_empty() || command[0].is_empty())
        {
            return fail("process function needs a command (envProcess)".into());
        }
        if let RuntimeSpec::Wasm { component } = &self.runtime {
            let hex = &component.0;
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return fail(format!(
                    "component digest {hex:?} is not a sha256 hex digest"
                ));
            }
        }
        let l = &self.limits;
        if l.memory_bytes < (1 << 20) {
            return fail(format!(
                "memory limit {} bytes is below the 1Mi minimum",
                l.memory_bytes
            ));
        }
        if l.timeout_ms == 0 || l.timeout_ms > 15 * 60 * 1000 {
            return fail(format!(
                "timeout {} ms must be between 1 ms and 15 minutes",
                l.timeout_ms
            ));
        }
        if l.concurrency == 0 || l.concurrency > MAX_CONCURRENCY {
            return fail(format!(
                "concurrency per sandbox {} must be between 1 and {MAX_CONCURRENCY}",
                l.concurrency
            ));
        }
        if l.max_body_bytes == 0 || l.max_output_bytes == 0 {
            return fail("body and output limits must be at least 1 byte".into());
        }
        let s = &self.scaling;
        if s.max == 0 || s.min > s.max {
            return fail(format!(
                "scaling min {} / max {} must satisfy 0 <= min <= max, max >= 1",
                s.min, s.max
            ));
        }
        if s.max > MAX_SCALE {
            return fail(format!(
                "scaling max {} is more than the {MAX_SCALE} sandboxes a function may have",
                s.max
            ));
        }
        if s.queue > MAX_QUEUE {
            return fail(format!(
                "queue {} is more than the maximum of {MAX_QUEUE}",
                s.queue
            ));
        }
        for key in self.env.keys() {
            if key.is_empty() || key.contains('=') || key.contains('\0') {
                return fail(format!("environment variable name {key:?} is invalid"));
            }
        }
        if self.env.values().any(|v| v.contains('\0')) {
            return fail("environment values must not contain NUL".into());
        }
        if let Some(list) = self.labels.get(crate::outbound::LABEL_ALLOWED_HOSTS) {
            crate::outbound::AllowedHosts::parse(list).map_err(SpecError)?;
        }
        for secret in &self.secrets {
            crate::secret::validate_name(secret).map_err(SpecError)?;
        }
        if let Some(label) = self.labels.get(crate::name::LABEL_WRITE_BACK) {
            crate::name::check_write_back_label(label).map_err(SpecError)?;
        }
        if let RuntimeSpec::Process {
            mode: ProcessMode::Http,
            ..
        } = &self.runtime
        {
            self.upstream_port().map_err(SpecError)?;
        }
        Ok(())
    }

    /// The port an http-mode process listens on, from of-watchdog's `upstream_url`
    /// (`http://127.0.0.1:5000`, as OpenFaaS's http templates set it); `None` when unset, and
    /// the platform picks one and tells it as `PORT`.
    pub fn upstream_port(&self) -> Result<Option<u16>, String> {
        let Some(url) = self.env.get("upstream_url") else {
            return Ok(None);
        };
        let bad = || {
            format!(
                "envVars.upstream_url {url:?} is not http://127.0.0.1:PORT (the function's server on loopback)"
            )
        };
        let rest = url.trim().strip_prefix("http://").ok_or_else(bad)?;
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port) = authority.rsplit_once(':').ok_or_else(bad)?;
        if !matches!(host, "127.0.0.1" | "localhost" | "[::1]" | "0.0.0.0") {
            return Err(bad());
        }
        match port.parse::<u16>() {
            Ok(port) if port > 0 => Ok(Some(port)),
            _ => Err(bad()),
        }
    }
}
