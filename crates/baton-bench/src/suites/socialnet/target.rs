//! What the benchmark runs against: one `baton up` node, or a cluster (control plane, one
//! gateway balancing by the affinity header, workers each with a state agent), with the
//! application deployed from `apps/socialnet/baton.toml`.

use super::SocialBench;
use crate::harness::Process;
use crate::suites::roles::{ClusterRoles, ClusterSpec, start_cluster};
use crate::suites::{Http, LocalNode, bench_token, deploy_component};
use anyhow::Context;
use std::path::Path;

/// The application's manifest, compiled in so the benchmark runs from anywhere.
const MANIFEST: &str = include_str!("../../../../../apps/socialnet/baton.toml");

/// A running target.
pub struct Target {
    /// Where functions are called.
    pub url: String,
    /// A client with the admin token.
    pub http: Http,
    token: String,
    /// `node` or `cluster of N workers`.
    name: String,
    /// Workers of a cluster: every function gets a sandbox on each.
    workers: Option<usize>,
    /// Processes whose CPU is counted.
    pids: Vec<u32>,
    _node: Option<LocalNode>,
    _processes: Vec<Process>,
    _dir: Option<tempfile::TempDir>,
}

fn config_file(dir: &Path, durability: &str) -> anyhow::Result<String> {
    let path = dir.join("baton.toml");
    std::fs::write(&path, format!("[state]\ndurability = \"{durability}\"\n"))?;
    Ok(path.display().to_string())
}

impl Target {
    pub async fn start(config: &SocialBench) -> anyhow::Result<Target> {
        match config.workers {
            None => Self::node(config).await,
            Some(workers) => Self::cluster(config, workers).await,
        }
    }

    async fn node(config: &SocialBench) -> anyhow::Result<Target> {
        let dir = tempfile::tempdir()?;
        let env = [(
            "BATON_CONFIG".to_string(),
            config_file(dir.path(), &config.durability)?,
        )];
        eprintln!("starting a node");
        let node = LocalNode::start(&config.binary, false, &env).await?;
        Ok(Target {
            url: node.url.clone(),
            http: Http::new(&node.token),
            token: node.token.clone(),
            name: "node".into(),
            workers: None,
            pids: vec![node.pid()],
            _node: Some(node),
            _processes: Vec::new(),
            _dir: Some(dir),
        })
    }

    async fn cluster(config: &SocialBench, workers: usize) -> anyhow::Result<Target> {
        let token = bench_token();
        let gateway_port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let gateway_listen = format!("127.0.0.1:{gateway_port}");
        let gateway_url = format!("http://{gateway_listen}");
        let roles = start_cluster(&ClusterSpec {
            binary: &config.binary,
            workers,
            durability: &config.durability,
            token: &token,
            gateway_listen: &gateway_listen,
            // Functions call each other through the gateway; 35 functions with a sandbox on
            // every worker need more room than the 0.1 core each that placement would give
            // a worker of this machine's cores.
            worker_args: &["--gateway", &gateway_url, "--cpu", "16"],
            gateway_args: &["--load-balancing", "consistent-hash"],
        })
        .await?;
        let ClusterRoles {
            control,
            workers: worker_processes,
            gateway,
            dir,
        } = roles;
        let mut processes = vec![control];
        processes.extend(worker_processes);
        processes.push(gateway);
        let pids = processes.iter().map(Process::pid).collect();
        Ok(Target {
            url: gateway_url,
            http: Http::new(&token),
            token,
            name: format!("cluster of {workers} workers"),
            workers: Some(workers),
            pids,
            _node: None,
            _processes: processes,
            _dir: Some(dir),
        })
    }

    /// Deploys every function of the manifest with the social network's component.
    pub async fn deploy(&self) -> anyhow::Result<()> {
        let deployments =
            baton_api::manifest::parse_manifest(MANIFEST, Path::new("apps/socialnet/baton.toml"))?;
        eprintln!("deploying {} functions", deployments.len());
        for deployment in deployments {
            let mut settings = serde_json::to_value(&deployment.request)?;
            if let Some(workers) = self.workers {
                // A sandbox of every function on every worker, so that the calls of one post
                // find the post's worker for each function (consistent-hash balancing).
                settings["labels"]["com.openfaas.scale.min"] = workers.to_string().into();
            }
            deploy_component(&self.url, &self.token, &settings, baton_guests::SOCIALNET)
                .await
                .context("deploying the social network")?;
            if let Some(workers) = self.workers {
                self.await_sandboxes(&deployment.request.service, workers)
                    .await?;
            }
        }
        Ok(())
    }

    /// Waits until `function` has `workers` sandboxes (one a worker, as placement spreads
    /// them); deploying the next function only then keeps the workers from compiling the
    /// component for every function at once.
    async fn await_sandboxes(&self, function: &str, workers: usize) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
        loop {
            let nodes = self
                .http
                .json(
                    "GET",
                    &format!("{}/system/nodes", self.url),
                    bytes::Bytes::new(),
                )
                .await?;
            let on: usize = nodes["workers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|w| {
                    w["sandboxes"]
                        .as_array()
                        .is_some_and(|s| s.iter().any(|s| s["function"] == function))
                })
                .count();
            if on >= workers {
                return Ok(());
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "{function} reached {on} of {workers} workers within 300 s"
            );
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    /// Deploys `hello`, the example that does nothing, for the floor.
    pub async fn deploy_hello(&self) -> anyhow::Result<()> {
        let mut settings = serde_json::json!({"service": "hello"});
        if let Some(workers) = self.workers {
            settings["labels"] = serde_json::json!({"com.openfaas.scale.min": workers.to_string()});
        }
        deploy_component(&self.url, &self.token, &settings, baton_guests::HELLO).await?;
        if let Some(workers) = self.workers {
            self.await_sandboxes("hello", workers).await?;
        }
        Ok(())
    }

    /// Function invocations so far, counted by the gateway (nested calls included).
    pub async fn invocations(&self) -> anyhow::Result<f64> {
        self.http
            .metric(
                &format!("{}/metrics", self.url),
                "gateway_function_invocation_total",
            )
            .await
    }

    /// Calls of `compose-post-service-compose-and-upload` so far: one per composed post.
    pub async fn composed(&self) -> anyhow::Result<f64> {
        let (_, body) = self
            .http
            .call("GET", &format!("{}/metrics", self.url), bytes::Bytes::new())
            .await?;
        let prefix = "gateway_function_invocation_total{function_name=\"compose-post-service-compose-and-upload\"";
        Ok(String::from_utf8_lossy(&body)
            .lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum())
    }

    /// CPU seconds the target's processes have used.
    pub fn cpu_seconds(&self) -> f64 {
        let ticks = procfs::ticks_per_second() as f64;
        self.pids
            .iter()
            .filter_map(|pid| procfs::process::Process::new(*pid as i32).ok()?.stat().ok())
            .map(|stat| (stat.utime + stat.stime) as f64 / ticks)
            .sum()
    }

    /// What it is, for the report.
    pub fn describe(&self) -> &str {
        &self.name
    }
}
