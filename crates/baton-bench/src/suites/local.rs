//! What the suites share: a node started for a run, a client of Baton's APIs with a token,
//! deploying a component, reading a metric.

use crate::harness::Process;
use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Starts `baton <args>` from `binary` (quiet logs, no token from the environment) and
/// waits until it is ready; its ready file goes in `dir`.
pub async fn start_role<S: AsRef<std::ffi::OsStr>>(
    binary: &Path,
    args: &[S],
    dir: &Path,
) -> anyhow::Result<Process> {
    let mut command = Command::new(binary);
    command
        .args(args)
        .env("BATON_LOG", "warn")
        .env_remove("BATON_TOKEN")
        .stderr(Stdio::inherit());
    Process::start_async(command, dir).await
}

/// A fresh admin token for the nodes of one run (they never outlive it).
pub fn bench_token() -> String {
    format!("{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..))
}

/// A node started for one run (`baton up`, in a temporary data directory), or a cluster
/// worker seen as one; stopped when dropped.
pub struct LocalNode {
    process: Process,
    /// Where functions are called: the node, or the gateway in front of a worker.
    pub url: String,
    /// The node-local platform API.
    pub state_api: Option<String>,
    /// The admin token (for `/system/*` and the platform API).
    pub token: String,
    /// Where its metrics are: the node's gateway, or a worker's data listener.
    pub metrics: String,
    _dir: Option<tempfile::TempDir>,
}

impl LocalNode {
    /// Starts `baton up` from `binary` with (or without) the examples, quiet logs and extra
    /// environment; a `BATON_TOKEN` in `env` is its token, else a fresh one.
    pub async fn start(
        binary: &Path,
        examples: bool,
        env: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let token = env
            .iter()
            .find(|(k, _)| k == "BATON_TOKEN")
            .map_or_else(bench_token, |(_, v)| v.clone());
        let mut command = Command::new(binary);
        command
            .arg("up")
            .env("BATON_LISTEN", "127.0.0.1:0")
            .env("BATON_DATA_DIR", dir.path().join("data"))
            .env("BATON_EXAMPLES", examples.to_string())
            .env("BATON_LOG", "warn")
            .env("BATON_TOKEN", &token)
            .env_remove("BATON_CONFIG")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stderr(Stdio::inherit());
        let process = Process::start_async(command, dir.path())
            .await
            .context("starting a local node")?;
        let url = process.url();
        Ok(LocalNode {
            metrics: format!("{url}/metrics"),
            url,
            state_api: process.ready().state_api.clone(),
            process,
            token,
            _dir: Some(dir),
        })
    }

    /// A cluster worker (`process`, one worker) seen as a node: called through the gateway
    /// at `url`, its platform API and metrics its own.
    pub fn worker(process: Process, url: String, token: String) -> anyhow::Result<Self> {
        let ready = process.ready();
        let data = ready
            .workers
            .first()
            .context("a worker process without workers")?
            .data
            .clone();
        Ok(LocalNode {
            metrics: format!("http://{data}/metrics"),
            url,
            state_api: Some(
                ready
                    .state_api
                    .clone()
                    .context("a worker without a state API")?,
            ),
            process,
            token,
            _dir: None,
        })
    }

    /// The process's id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The node's resident memory in bytes.
    pub fn rss_bytes(&self) -> Option<u64> {
        let status = procfs::process::Process::new(self.pid() as i32)
            .ok()?
            .status()
            .ok()?;
        Some(status.vmrss? * 1024)
    }
}

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A client of Baton's APIs sending one bearer token; every call has a deadline.
#[derive(Clone)]
pub struct Http(HttpClient, Arc<str>);

/// Longest one call may take: a deadline against hangs.
const CALL_DEADLINE: Duration = Duration::from_secs(60);

impl Http {
    /// A client sending `token`.
    pub fn new(token: &str) -> Self {
        Http(
            Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(256)
                .build_http(),
            token.into(),
        )
    }

    /// One call; the status and body.
    pub async fn call(
        &self,
        method: &str,
        url: &str,
        body: impl Into<Bytes>,
    ) -> anyhow::Result<(u16, Bytes)> {
        let request = http::Request::builder()
            .method(method)
            .uri(url)
            .header(http::header::AUTHORIZATION, format!("Bearer {}", self.1))
            .body(Full::new(body.into()))?;
        let response = tokio::time::timeout(CALL_DEADLINE, self.0.request(request))
            .await
            .context("no answer within 60 s")??;
        let status = response.status().as_u16();
        Ok((status, response.into_body().collect().await?.to_bytes()))
    }

    /// One call that must answer 200 with JSON.
    pub async fn json(
        &self,
        method: &str,
        url: &str,
        body: impl Into<Bytes>,
    ) -> anyhow::Result<Value> {
        let (status, body) = self.call(method, url, body).await?;
        if status != 200 {
            bail!("{url}: {status} {}", String::from_utf8_lossy(&body));
        }
        Ok(serde_json::from_slice(&body)?)
    }

    /// The sum of the samples of metric `name` at `url` (Prometheus text).
    pub async fn metric(&self, url: &str, name: &str) -> anyhow::Result<f64> {
        let (_, body) = self.call("GET", url, Bytes::new()).await?;
        Ok(metric(&String::from_utf8_lossy(&body), name))
    }

    /// Waits until metric `name` at `url` satisfies `wanted`, polling until `deadline`.
    pub async fn await_metric(
        &self,
        url: &str,
        name: &str,
        wanted: impl Fn(f64) -> bool,
        deadline: Instant,
    ) -> anyhow::Result<()> {
        loop {
            let value = self.metric(url, name).await?;
            if wanted(value) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("{url}: {name} is still {value} at the deadline");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The sum of the samples of metric `name` in Prometheus text.
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| {
            l.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(' ') || rest.starts_with('{'))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Deploys `component` as `name` through the gateway at `url` (`POST /system/functions`).
pub async fn upload(url: &str, token: &str, name: &str, component: &[u8]) -> anyhow::Result<()> {
    deploy_component(url, token, &serde_json::json!({"service": name}), component).await
}

/// Deploys `component` with the OpenFaaS deployment `settings` (its `service` is the name)
/// through the gateway at `url`.
pub async fn deploy_component(
    url: &str,
    token: &str,
    settings: &Value,
    component: &[u8],
) -> anyhow::Result<()> {
    let name = settings["service"].as_str().unwrap_or("?");
    let request = http::Request::post(format!("{url}/system/functions"))
        .header("content-type", "application/wasm")
        .header("x-baton-deployment", settings.to_string())
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::copy_from_slice(component)))?;
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let response = tokio::time::timeout(CALL_DEADLINE, client.request(request))
        .await
        .context("no answer within 60 s")??;
    if !response.status().is_success() {
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        bail!(
            "deploying {name}: {status} {}",
            String::from_utf8_lossy(&body)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::metric;

    #[test]
    fn a_metric_sums_its_samples_and_only_its_own() {
        let text = "# HELP x y\nbaton_a 2\nbaton_a{k=\"v\"} 3\nbaton_ab 100\n";
        assert_eq!(metric(text, "baton_a"), 5.0);
        assert_eq!(metric(text, "baton_ab"), 100.0);
        assert_eq!(metric(text, "baton_c"), 0.0);
    }
}
