use super::command::{CommandTemplate, kill_group};
use super::network::Namespace;
use super::output::pump_lines;
use crate::{InvokeError, LogSink, LogStream, Request, Response, Sandbox};
use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::future::Future;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Connects to a function process's port on loopback: the node's, or that of the function's
/// own network namespace.
#[derive(Clone)]
struct SandboxConnector {
    namespace: Option<Namespace>,
}

impl SandboxConnector {
    async fn connect(&self, port: u16) -> std::io::Result<TcpStream> {
        match &self.namespace {
            Some(namespace) => namespace.connect(port).await,
            None => {
                let stream = TcpStream::connect((std::net::Ipv4Addr::LOCALHOST, port)).await?;
                let _ = stream.set_nodelay(true);
                Ok(stream)
            }
        }
    }

    /// A port free now, where the function will listen; a race with another binder shows up
    /// as a readiness failure.
    async fn free_port(&self) -> std::io::Result<u16> {
        match &self.namespace {
            Some(namespace) => namespace.free_port().await,
            None => Ok(std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port()),
        }
    }
}

impl tower_service::Service<http::Uri> for SandboxConnector {
    type Response = TokioIo<TcpStream>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = std::io::Result<Self::Response>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: http::Uri) -> Self::Future {
        let connector = self.clone();
        Box::pin(async move {
            let port = uri
                .port_u16()
                .ok_or_else(|| std::io::Error::other("no port"))?;
            Ok(TokioIo::new(connector.connect(port).await?))
        })
    }
}

/// An http-mode function: each sandbox is a long-running server process.
pub(crate) struct HttpFunction {
    template: Arc<CommandTemplate>,
    /// The port its server listens on, from of-watchdog's `upstream_url`; none: a free one
    /// per sandbox, told as `PORT` and `http_port`.
    upstream_port: Option<u16>,
    ready_timeout: Duration,
}

impl HttpFunction {
    pub(crate) fn new(
        template: Arc<CommandTemplate>,
        upstream_port: Option<u16>,
        ready_timeout: Duration,
    ) -> Self {
        HttpFunction {
            template,
            upstream_port,
            ready_timeout,
        }
    }

    /// Starts the process on its port and waits until it accepts connections.
    pub(crate) async fn start(&self, logs: LogSink) -> Result<HttpSandbox, InvokeError> {
        let failed = |m: String| InvokeError::SandboxFailed(m);
        let network = self
            .template
            .network()
            .await
            .map_err(|e| failed(format!("making the sandbox's network: {e}")))?;
        let connector = SandboxConnector {
            namespace: network.as_ref().map(|n| n.namespace().clone()),
        };
        let port = match self.upstream_port {
            Some(port) => port,
            None => connector
                .free_port()
                .await
                .map_err(|e| failed(format!("no free port: {e}")))?,
        };
        let mut command = self.template.command(network.as_ref());
        command
            .env("PORT", port.to_string())
            .env("http_port", port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .map_err(|e| failed(format!("could not start the function's process: {e}")))?;
        let pid = child.id();
        let groups = self.template.groups(pid);
        let peak = groups.probe();
        let mut pumps = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            pumps.push(pump_lines(stdout, LogStream::Stdout, logs.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            pumps.push(pump_lines(stderr, LogStream::Stderr, logs.clone()));
        }
        let alive = Arc::new(AtomicBool::new(true));
        let watcher_alive = alive.clone();
        let watcher_logs = logs.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            drop(groups);
            // Let the last lines reach the logs before the death is noticed, so the error
            // that reports it can quote them; a grandchild holding the pipes open is not
            // waited for.
            for pump in pumps {
                let _ = tokio::time::timeout(Duration::from_millis(200), pump).await;
            }
            watcher_alive.store(false, Ordering::SeqCst);
            let note = match status {
                Ok(status) => format!("process {} exited: {status}", pid.unwrap_or_default()),
                Err(e) => format!(
                    "process {} could not be waited for: {e}",
                    pid.unwrap_or_default()
                ),
            };
            watcher_logs.push_text(LogStream::Platform, note.as_bytes());
        });
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(64)
            .build(connector.clone());
        let sandbox = HttpSandbox {
            port,
            pid,
            alive,
            client,
            _network: network,
            timeout: self.template.timeout,
            max_output: self.template.max_output,
            memory: self
                .template
                .memory_model
                .clone()
                .map(|model| (model, peak)),
        };
        let deadline = Instant::now() + self.ready_timeout;
        loop {
            if !sandbox.is_alive() {
                let last: Vec<String> = logs.tail(5).into_iter().map(|l| l.text).collect();
                return Err(failed(format!(
                    "the function's process exited before accepting connections; last output: {}",
                    last.join(" | ")
                )));
            }
            if connector.connect(port).await.is_ok() {
                logs.push_text(
                    LogStream::Platform,
                    format!("process {} ready on port {port}", pid.unwrap_or_default()).as_bytes(),
                );
                return Ok(sandbox);
            }
            if Instant::now() >= deadline {
                sandbox.destroy().await;
                return Err(failed(format!(
                    "the function's process did not accept connections on $PORT={port} within {}",
                    baton_api::format_duration(self.ready_timeout)
                )));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A running http-mode process.
pub(crate) struct HttpSandbox {
    port: u16,
    pid: Option<u32>,
    alive: Arc<AtomicBool>,
    /// Pooled keep-alive HTTP/1.1 connections to its process.
    client: Client<SandboxConnector, Full<Bytes>>,
    /// Its network, where it has its own.
    _network: Option<super::network::Network>,
    timeout: Duration,
    max_output: u64,
    /// Where its peak memory is read after each invocation, and where it goes. The peak is the
    /// process's since it started (its group's), so each invocation is credited with the most
    /// the sandbox has needed: never less than what it needed itself.
    memory: Option<(Arc<baton_cache::FunctionModel>, super::cgroup::PeakProbe)>,
}

impl HttpSandbox {
    async fn exchange(&self, request: Request) -> Result<Response, InvokeError> {
        let (mut parts, body) = request.into_parts();
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        parts.uri = format!("http://127.0.0.1:{}{path}", self.port)
            .parse()
            .map_err(|e| InvokeError::SandboxFailed(format!("bad path {path:?}: {e}")))?;
        crate::outbound::without_hop_headers(&mut parts.headers);
        let request = http::Request::from_parts(parts, Full::new(body));
        let max_output = self.max_output;
        let exchange = async {
            let response = self.client.request(request).await.map_err(|e| {
                let state = if self.is_alive() {
                    "did not answer"
                } else {
                    "has exited"
                };
                InvokeError::SandboxFailed(format!("the function's process {state}: {e}"))
            })?;
            let (mut parts, body) = response.into_parts();
            // The body is read whole here and framed anew by the gateway: how the process
            // framed it (`transfer-encoding: chunked`, as Node sends) and its connection
            // settings describe a hop that ends here.
            crate::outbound::without_hop_headers(&mut parts.headers);
            parts.headers.remove(http::header::CONTENT_LENGTH);
            match Limited::new(body, max_output as usize).collect().await {
                Ok(collected) => Ok(Response::from_parts(parts, collected.to_bytes())),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                    Err(InvokeError::OutputTooLarge(max_output))
                }
                Err(e) => Err(InvokeError::SandboxFailed(format!(
                    "reading the function's response: {e}"
                ))),
            }
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .unwrap_or(Err(InvokeError::Timeout(self.timeout)))
    }
}

#[async_trait]
impl Sandbox for HttpSandbox {
    async fn invoke(&self, request: Request) -> Result<Response, InvokeError> {
        let input_bytes = request.body().len() as u64;
        let response = self.exchange(request).await;
        if let Some((model, probe)) = &self.memory
            && let Some(peak) = probe.peak()
        {
            model.observe(input_bytes, peak);
        }
        response
    }

    fn is_alive(&self) -> bool {
        self.alive.load(Ordering::SeqCst)
    }

    async fn destroy(&self) {
        if !self.is_alive() {
            return;
        }
        kill_group(self.pid, libc::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.is_alive() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if self.is_alive() {
            kill_group(self.pid, libc::SIGKILL);
        }
    }
}

impl Drop for HttpSandbox {
    fn drop(&mut self) {
        if self.is_alive() {
            kill_group(self.pid, libc::SIGKILL);
        }
    }
}
