//! Starting `baton up` in a temporary data directory and talking HTTP to it.

use baton_bench::harness::Process;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const BATON: &str = env!("CARGO_BIN_EXE_baton");

/// How long a request waits for its answer's head (a deadline against hangs).
const ANSWER: Duration = Duration::from_secs(60);

/// A running node; killed when dropped.
pub struct Node {
    pub process: Process,
    pub url: String,
    pub data_dir: PathBuf,
    pub token: Option<String>,
    /// The node-local platform API (`BATON_API`), when the node runs a state agent.
    pub state_api: Option<String>,
    client: Client<HttpConnector, Full<Bytes>>,
}

pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }
}

/// Options of a node under test.
#[derive(Default, Clone)]
pub struct Options {
    pub examples: bool,
    pub token: Option<String>,
    pub config: Option<String>,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

impl Node {
    pub fn start(data_dir: &Path, options: Options) -> Node {
        let mut command = Command::new(BATON);
        command
            .arg("up")
            .env("BATON_LISTEN", "127.0.0.1:0")
            .env("BATON_DATA_DIR", data_dir)
            .env("BATON_EXAMPLES", options.examples.to_string())
            .env_remove("BATON_TOKEN")
            .env_remove("BATON_CONFIG")
            .stderr(Stdio::inherit());
        if let Some(token) = &options.token {
            command.env("BATON_TOKEN", token);
        }
        if let Some(config) = &options.config {
            let path = data_dir.with_extension("toml");
            std::fs::write(&path, config).unwrap();
            command.env("BATON_CONFIG", path);
        }
        for (key, value) in &options.env {
            command.env(key, value);
        }
        let process = Process::start(command, data_dir.parent().unwrap_or(data_dir))
            .unwrap_or_else(|e| panic!("{e:#}"));
        let (url, state_api) = (process.url(), process.ready().state_api.clone());
        // Without a token of ours, the node made one in its data directory, as the CLI finds it.
        let token = options.token.or_else(|| {
            std::fs::read_to_string(data_dir.join("admin-token"))
                .ok()
                .map(|t| t.trim().to_owned())
        });
        Node {
            process,
            url,
            data_dir: data_dir.to_path_buf(),
            token,
            state_api,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// A node for a process started elsewhere (a cluster gateway).
    pub fn from_process(process: Process, data_dir: &Path) -> Node {
        Node {
            url: process.url(),
            process,
            data_dir: data_dir.to_path_buf(),
            token: None,
            state_api: None,
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// Sends a request; `/system` and state calls carry the node's token; a path starting
    /// `state:` goes to the node-local platform API.
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        self.send_with(true, method, path, headers, body.into(), ANSWER)
            .await
    }

    /// [`Node::send`] with only the credentials in `headers`, as another client would.
    pub async fn send_as_client(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> Reply {
        self.send_with(false, method, path, headers, body.into(), ANSWER)
            .await
    }

    async fn send_with(
        &self,
        with_token: bool,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
        deadline: Duration,
    ) -> Reply {
        let uri = match path.strip_prefix("state:") {
            Some(rest) => format!("{}{rest}", self.state_api.as_ref().expect("no state API")),
            None => format!("{}{path}", self.url),
        };
        let mut request = http::Request::builder().method(method).uri(uri);
        let admin = path.starts_with("/system") || path.starts_with("state:");
        if let (Some(token), true) = (self.token.as_ref().filter(|_| with_token), admin) {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body)).unwrap();
        let response = tokio::time::timeout(deadline, self.client.request(request))
            .await
            .unwrap_or_else(|_| panic!("no answer within {deadline:?}"))
            .expect("request failed");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            headers,
            body,
        }
    }

    /// GETs `path` (with the token for `/system`) and hands over the body's lines as they
    /// arrive: for followed log streams. The stream is dropped with the receiver.
    pub async fn lines(&self, path: &str) -> tokio::sync::mpsc::Receiver<String> {
        let mut request = http::Request::get(format!("{}{path}", self.url));
        if let Some(token) = &self.token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let request = request.body(Full::new(Bytes::new())).unwrap();
        let response = tokio::time::timeout(Duration::from_secs(60), self.client.request(request))
            .await
            .expect("no answer within 60 s")
            .expect("request failed");
        assert_eq!(response.status(), 200, "{path}");
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move {
            let mut body = response.into_body();
            let mut pending = Vec::new();
            while let Some(Ok(frame)) = body.frame().await {
                let Ok(data) = frame.into_data() else {
                    continue;
                };
                pending.extend_from_slice(&data);
                while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = pending.drain(..=end).collect();
                    let line = String::from_utf8_lossy(&line[..end]).into_owned();
                    if tx.send(line).await.is_err() {
                        return;
                    }
                }
            }
        });
        rx
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send("GET", path, &[], Bytes::new()).await
    }

    pub async fn post(&self, path: &str, body: impl Into<Bytes>) -> Reply {
        self.send("POST", path, &[], body).await
    }

    /// Deploys with OpenFaaS JSON.
    pub async fn deploy(&self, method: &str, json: serde_json::Value) -> Reply {
        self.send(
            method,
            "/system/functions",
            &[("content-type", "application/json")],
            json.to_string(),
        )
        .await
    }

    /// Uploads a component under `name`, with extra deployment settings. The deploy compiles
    /// it: an interpreter snapshot of tens of MB takes a debug build seconds idle, minutes on
    /// a loaded machine, hence the longer deadline.
    pub async fn upload(
        &self,
        name: &str,
        component: &'static [u8],
        mut settings: serde_json::Value,
    ) -> Reply {
        settings["service"] = name.into();
        let header = settings.to_string();
        self.send_with(
            true,
            "POST",
            "/system/functions",
            &[
                ("content-type", "application/wasm"),
                ("x-baton-deployment", &header),
            ],
            Bytes::from_static(component),
            Duration::from_secs(600),
        )
        .await
    }

    /// `DELETE /system/functions` for `name`, as faas-cli sends it.
    pub async fn remove(&self, name: &str) -> Reply {
        let body = serde_json::json!({ "functionName": name }).to_string();
        self.send("DELETE", "/system/functions", &[], body).await
    }

    pub async fn names(&self) -> Vec<String> {
        let reply = self.get("/system/functions").await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        let mut names: Vec<String> = reply
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }

    /// `kill -9`.
    pub fn kill(mut self) -> PathBuf {
        self.process.kill();
        self.data_dir.clone()
    }

    /// Runs the CLI against this node.
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        let mut command = Command::new(BATON);
        command
            .args(args)
            .env("BATON_GATEWAY", &self.url)
            .env_remove("BATON_TOKEN");
        if let Some(token) = &self.token {
            command.env("BATON_TOKEN", token);
        }
        command.stdin(Stdio::null()).output().unwrap()
    }
}

/// `n` loopback ports free at the time of the call (for nodes that must know each other's
/// addresses before they start).
pub fn free_ports(n: usize) -> Vec<u16> {
    // Below the kernel's ephemeral range: an outgoing connection of another test cannot take
    // a port between this check and the node's bind, as one the kernel handed out here could.
    let ephemeral_start = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    let low = 10_000.min(ephemeral_start / 2);
    let span = u32::from(ephemeral_start - low);
    let mut seed = std::process::id()
        ^ std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
    // A port handed out is free only until its node binds it: never hand it out again in
    // this process, or two tests starting at once could both get it.
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut handed_out = HANDED_OUT.lock().unwrap();
    let mut listeners = Vec::new();
    while listeners.len() < n {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let port = low + ((seed >> 8) % span) as u16;
        if handed_out.contains(&port) {
            continue;
        }
        if let Ok(listener) = std::net::TcpListener::bind(("127.0.0.1", port)) {
            listeners.push(listener);
        }
    }
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    handed_out.extend(&ports);
    ports
}

/// The next line of a stream from [`Node::lines`] as JSON; panics when none comes within a
/// minute (a deadline against hangs).
pub async fn next_line(lines: &mut tokio::sync::mpsc::Receiver<String>) -> serde_json::Value {
    let line = tokio::time::timeout(Duration::from_secs(60), lines.recv())
        .await
        .expect("no line within 60 s")
        .expect("the stream ended");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

/// Polls `check` until it holds or `limit` passes; the limit is a deadline against hangs, not
/// a performance assertion.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// A callback receiver on loopback, as asynchronous calls' `X-Callback-Url` points at: every
/// request it gets, as (headers, body), in arrival order. Over TLS when given an acceptor
/// (its URL then names `localhost`, what a test certificate is for).
pub struct Callbacks {
    pub url: String,
    received: std::sync::Arc<std::sync::Mutex<Vec<(http::HeaderMap, Bytes)>>>,
}

impl Callbacks {
    pub async fn start(tls: Option<tokio_rustls::TlsAcceptor>) -> Callbacks {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = match tls {
            Some(_) => format!("https://localhost:{port}/done"),
            None => format!("http://127.0.0.1:{port}/done"),
        };
        let received = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let recorded = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (tls, recorded) = (tls.clone(), recorded.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |request: http::Request<hyper::body::Incoming>| {
                            let recorded = recorded.clone();
                            async move {
                                let headers = request.headers().clone();
                                let body = request.into_body().collect().await;
                                let body = body.map(|b| b.to_bytes()).unwrap_or_default();
                                recorded.lock().unwrap().push((headers, body));
                                Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                                    Bytes::new(),
                                )))
                            }
                        },
                    );
                    let http = hyper::server::conn::http1::Builder::new();
                    let _ = match tls {
                        Some(acceptor) => match acceptor.accept(stream).await {
                            Ok(tls) => {
                                let io = hyper_util::rt::TokioIo::new(tls);
                                http.serve_connection(io, service).await
                            }
                            Err(_) => Ok(()),
                        },
                        None => {
                            let io = hyper_util::rt::TokioIo::new(stream);
                            http.serve_connection(io, service).await
                        }
                    };
                });
            }
        });
        Callbacks { url, received }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<(http::HeaderMap, Bytes)> {
        self.received.lock().unwrap().clone()
    }

    /// The `X-Call-Id` of everything received so far.
    pub fn call_ids(&self) -> Vec<String> {
        self.received()
            .iter()
            .filter_map(|(h, _)| h.get("x-call-id")?.to_str().ok().map(str::to_owned))
            .collect()
    }

    /// The first callback of call `id`, waiting up to `limit` for it.
    pub async fn of(&self, id: &str, limit: Duration) -> Option<(http::HeaderMap, Bytes)> {
        let find = || {
            self.received()
                .into_iter()
                .find(|(h, _)| h.get("x-call-id").is_some_and(|v| v == id))
        };
        eventually(limit, || async { find().is_some() }).await;
        find()
    }
}
