//! Scenario files (`benchmarks/*.toml`): what to deploy, what load to send, for how long.
//!
//! ```toml
//! name = "hello-warm"
//! target = "local"                 # or "http://host:port" of a running node
//! baseline = true                  # also load a bare hyper server; report the ratio
//!
//! [[deploy]]
//! name = "hello"
//! wasm = "examples/hello"          # an embedded example, or a component file
//!
//! [load]
//! path = "/function/hello"
//! shape = "closed"                 # closed | constant | poisson
//! connections = 32
//! warmup = "2s"
//! duration = "10s"
//! ```

use anyhow::{Context, bail};
use baton_api::parse_duration;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A parsed scenario.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Name used for result files.
    pub name: String,
    /// `local` (start a node for the run) or the URL of a running node.
    pub target: String,
    /// Also run the load against the in-process baseline server.
    #[serde(default)]
    pub baseline: bool,
    /// Functions to deploy before the load.
    #[serde(default)]
    pub deploy: Vec<DeploySpec>,
    /// The load.
    pub load: LoadSection,
}

/// A function the scenario needs.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploySpec {
    /// Function name.
    pub name: String,
    /// `examples/<name>`, `guests/<name>`, or a component file relative to the scenario.
    pub wasm: Option<String>,
    /// A process command.
    pub process: Option<String>,
    /// Watchdog mode of a process.
    pub mode: Option<String>,
    /// Extra `envVars`.
    #[serde(default)]
    pub env: std::collections::BTreeMap<String, String>,
    /// Extra labels.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// The `[load]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadSection {
    /// Path and query on the target, e.g. `/function/hello`.
    pub path: String,
    /// HTTP method; GET by default.
    #[serde(default = "default_method")]
    pub method: String,
    /// Request body.
    pub body: Option<String>,
    /// Request body from a file, relative to the scenario.
    pub body_file: Option<PathBuf>,
    /// Request body rendered per request: `{{seq}}`, `{{random}}`.
    pub body_template: Option<String>,
    /// Headers, `{ "content-type" = "application/json" }`.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
    /// `closed`, `constant` or `poisson`.
    #[serde(default = "default_shape")]
    pub shape: String,
    /// Connections (closed) or most requests in flight (open).
    #[serde(default = "default_connections")]
    pub connections: usize,
    /// Requests per second (open shapes).
    pub rate: Option<f64>,
    /// Unmeasured lead-in.
    #[serde(default = "default_warmup")]
    pub warmup: String,
    /// Measured length.
    #[serde(default = "default_duration")]
    pub duration: String,
    /// Stop after this many measured requests.
    pub requests: Option<u64>,
    /// HTTP/2 (h2c) instead of HTTP/1.1.
    #[serde(default)]
    pub http2: bool,
    /// Deadline of one request.
    #[serde(default = "default_timeout")]
    pub timeout: String,
}

fn default_method() -> String {
    "GET".into()
}
fn default_shape() -> String {
    "closed".into()
}
fn default_connections() -> usize {
    32
}
fn default_warmup() -> String {
    "2s".into()
}
fn default_duration() -> String {
    "10s".into()
}
fn default_timeout() -> String {
    "10s".into()
}

impl Scenario {
    /// Reads and checks `path`; errors name the file and, for syntax, the line.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading scenario {}", path.display()))?;
        let scenario: Scenario =
            toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        scenario
            .check()
            .with_context(|| format!("in {}", path.display()))?;
        Ok(scenario)
    }

    fn check(&self) -> anyhow::Result<()> {
        if self.target != "local" && !self.target.starts_with("http://") {
            bail!(
                "target {:?} must be \"local\" or an http:// URL",
                self.target
            );
        }
        if !self.load.path.starts_with('/') {
            bail!("load.path {:?} must start with /", self.load.path);
        }
        match self.load.shape.as_str() {
            "closed" => {}
            "constant" | "poisson" if self.load.rate.is_some_and(|r| r > 0.0) => {}
            "constant" | "poisson" => bail!("load.shape {:?} needs load.rate > 0", self.load.shape),
            other => bail!("load.shape {other:?} is not closed, constant or poisson"),
        }
        for (key, text) in [
            ("warmup", &self.load.warmup),
            ("duration", &self.load.duration),
            ("timeout", &self.load.timeout),
        ] {
            parse_duration(text).map_err(|e| anyhow::anyhow!("load.{key}: {e}"))?;
        }
        if let Some(template) = &self.load.body_template {
            crate::template::BodyTemplate::parse(template)?;
        }
        for deploy in &self.deploy {
            if deploy.wasm.is_some() == deploy.process.is_some() {
                bail!(
                    "deploy {:?}: set exactly one of wasm or process",
                    deploy.name
                );
            }
        }
        Ok(())
    }

    /// A duration field, already checked.
    pub fn duration_of(text: &str) -> Duration {
        parse_duration(text).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Scenario> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.toml");
        std::fs::write(&path, text).unwrap();
        Scenario::load(&path)
    }

    #[test]
    fn reads_a_complete_scenario() {
        let s = parse("name = \"x\"\ntarget = \"local\"\n[[deploy]]\nname = \"hello\"\nwasm = \"examples/hello\"\n[load]\npath = \"/function/hello\"\nshape = \"poisson\"\nrate = 100.0\n").unwrap();
        assert_eq!(s.load.connections, 32);
        assert_eq!(
            Scenario::duration_of(&s.load.duration),
            Duration::from_secs(10)
        );
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_key() {
        let error = format!(
            "{:#}",
            parse("name = \"x\"\ntarget = \"local\"\n[load]\npath = \"/\"\nconections = 3\n")
                .unwrap_err()
        );
        assert!(
            error.contains("s.toml") && error.contains("conections") && error.contains("line 5"),
            "{error}"
        );
        let error = format!(
            "{:#}",
            parse("name = \"x\"\n[load]\npath = \"/\"\n").unwrap_err()
        );
        assert!(error.contains("missing field `target`"), "{error}");
        let error = format!(
            "{:#}",
            parse("name = \"x\"\ntarget = \"local\"\n[load]\npath = \"/\"\nshape = \"constant\"\n")
                .unwrap_err()
        );
        assert!(error.contains("needs load.rate"), "{error}");
    }
}
