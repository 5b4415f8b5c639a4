//! Cluster mode: `baton control`, `baton gateway` and `baton worker` as separate processes
//! on loopback: one control plane, two gateways, three workers.

use crate::harness::{BATON, Node, eventually, free_ports};
use baton_bench::harness::Process;
use bytes::Bytes;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// Starts `baton <args>` and waits until it is ready (its ready file, then `/healthz`).
pub(crate) fn start_role(args: &[&str], dir: &Path) -> Process {
    let mut command = Command::new(BATON);
    command
        .args(args)
        .env_remove("BATON_TOKEN")
        .env_remove("BATON_DATA_DIR")
        .env_remove("BATON_LISTEN")
        .stderr(Stdio::inherit());
    Process::start(command, dir).unwrap_or_else(|e| panic!("{e:#}"))
}

/// A server the test started itself (Redis); killed when dropped.
pub(crate) struct Server {
    pub(crate) child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) struct Cluster {
    dir: PathBuf,
    control_port: u16,
    store: String,
    control: Option<Process>,
    workers: Vec<(String, Process)>,
    /// Extra arguments every worker takes (`--gateway URL`).
    worker_args: Vec<String>,
    /// Each worker's platform API (`http://…`), from its ready file.
    state_apis: std::collections::HashMap<String, String>,
    /// Each worker's data listener (`host:port`), where its `/metrics` is.
    data_addresses: std::collections::HashMap<String, String>,
    pub(crate) gateways: Vec<Node>,
}

impl Cluster {
    pub(crate) fn control_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.control_port)
    }

    fn start_control(&mut self) {
        let listen = format!("127.0.0.1:{}", self.control_port);
        let data = self.dir.join("control");
        let role = start_role(
            &[
                "control",
                "--listen",
                &listen,
                "--data-dir",
                data.to_str().unwrap(),
                "--store",
                &self.store,
                "--store-prefix",
                &format!("baton-test-{}", self.control_port),
                // A worker starved of CPU by a loaded machine still heartbeats within 3 s;
                // a killed one is noticed after that, which the tests wait for.
                "--heartbeat-interval",
                "200ms",
                "--missed-heartbeats",
                "15",
                "--scaling-interval",
                "200ms",
                "--stable-window",
                "2s",
                "--panic-window",
                "1s",
                "--scale-to-zero-grace",
                "2s",
            ],
            &self.dir,
        );
        self.control = Some(role);
    }

    /// Starts worker `id` with its data directory under the cluster's (the same one again
    /// on a restart).
    fn start_worker(&mut self, id: &str) {
        let data = self.dir.join(id);
        let control = self.control_url();
        let mut args = vec![
            "worker",
            "--control",
            &control,
            "--id",
            id,
            "--data-dir",
            data.to_str().unwrap(),
        ];
        args.extend(self.worker_args.iter().map(String::as_str));
        let role = start_role(&args, &self.dir);
        let ready = role.ready();
        let api = ready
            .state_api
            .clone()
            .expect("a worker without a state API");
        self.state_apis.insert(id.to_owned(), api);
        let data = ready.workers[0].data.clone();
        self.data_addresses.insert(id.to_owned(), data);
        self.workers.push((id.to_owned(), role));
    }

    /// The value of the metric line starting with `name ` on worker `id`'s `/metrics`.
    async fn worker_metric(&self, id: &str, name: &str) -> Option<f64> {
        let url = format!("http://{}/metrics", self.data_addresses[id]);
        let client = reqwest_like::client();
        let (status, body) = reqwest_like::send(&client, "GET", &url, &[], Bytes::new()).await;
        assert_eq!(status, 200, "{url}");
        String::from_utf8_lossy(&body)
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} "))?.trim().parse().ok())
    }

    /// True once worker `id`'s state agent is told of `peers` peers and linked to them all.
    async fn has_peers(&self, id: &str, peers: f64) -> bool {
        eventually(Duration::from_secs(60), || async {
            self.worker_metric(id, "baton_state_peers").await == Some(peers)
                && self.worker_metric(id, "baton_state_peers_connected").await == Some(peers)
        })
        .await
    }

    /// Calls object `path` (`namespace/name`) on worker `id` through its platform API, with
    /// the admin token in its data directory.
    async fn state_call(&self, id: &str, method: &str, path: &str, body: Value) -> (u16, Bytes) {
        let token = std::fs::read_to_string(self.dir.join(id).join("admin-token")).unwrap();
        let url = format!("{}/v1/state/{path}", self.state_apis[id]);
        let bearer = format!("Bearer {}", token.trim());
        let body = match body {
            Value::Null => Bytes::new(),
            body => Bytes::from(body.to_string()),
        };
        let client = reqwest_like::client();
        reqwest_like::send(&client, method, &url, &[("authorization", &bearer)], body).await
    }

    /// Reads object `path` on worker `id`; `null` when absent.
    async fn read_state(&self, id: &str, path: &str) -> Value {
        let (status, body) = self.state_call(id, "GET", path, Value::Null).await;
        match status {
            404 => Value::Null,
            200 => serde_json::from_slice::<Value>(&body).unwrap()["value"].clone(),
            other => panic!("{path} on {id}: {other} {}", String::from_utf8_lossy(&body)),
        }
    }

    /// True once every worker holds object `path` (`namespace/name`): what a test waits
    /// for before it reads, through any worker, what it wrote through one.
    pub(crate) async fn replicated(&self, path: &str) -> bool {
        eventually(Duration::from_secs(30), || async {
            for (id, _) in &self.workers {
                if self.read_state(id, path).await.is_null() {
                    return false;
                }
            }
            true
        })
        .await
    }

    /// True once every worker of `ids` reads `expected` as the counter `counter/visits`.
    async fn converged(&self, expected: i64, ids: &[&str]) -> bool {
        eventually(Duration::from_secs(30), || async {
            for id in ids {
                if self.read_state(id, "counter/visits").await != json!(expected) {
                    return false;
                }
            }
            true
        })
        .await
    }

    fn start(dir: &Path, store: &str) -> Cluster {
        Cluster::start_with(dir, store, &[])
    }

    /// A cluster whose gateways take `gateway_args` too.
    pub(crate) fn start_with(dir: &Path, store: &str, gateway_args: &[&str]) -> Cluster {
        Cluster::start_roles(dir, store, gateway_args, false)
    }

    /// A cluster of three workers whose functions call each other through its one gateway
    /// (`baton worker --gateway`), which takes `gateway_args` too.
    pub(crate) fn start_linked(dir: &Path, gateway_args: &[&str]) -> Cluster {
        Cluster::start_roles(dir, "redb", gateway_args, true)
    }

    fn start_roles(dir: &Path, store: &str, gateway_args: &[&str], linked: bool) -> Cluster {
        let ports = free_ports(2);
        let gateway_listen = format!("127.0.0.1:{}", ports[1]);
        let mut cluster = Cluster {
            dir: dir.to_path_buf(),
            control_port: ports[0],
            store: store.to_owned(),
            control: None,
            workers: Vec::new(),
            // A linked cluster runs applications of many functions: each worker offers
            // room for more sandboxes than its cores would give (0.1 core each).
            worker_args: match linked {
                true => [
                    "--gateway",
                    &format!("http://{gateway_listen}"),
                    "--cpu",
                    "16",
                ]
                .map(String::from)
                .to_vec(),
                false => Vec::new(),
            },
            state_apis: Default::default(),
            data_addresses: Default::default(),
            gateways: Vec::new(),
        };
        cluster.start_control();
        let control = cluster.control_url();
        for n in 0..3 {
            cluster.start_worker(&format!("w{n}"));
        }
        for n in 0..if linked { 1 } else { 2 } {
            let listen = if n == 0 && linked {
                gateway_listen.as_str()
            } else {
                "127.0.0.1:0"
            };
            let mut args = vec!["gateway", "--control", &control, "--listen", listen];
            args.extend_from_slice(gateway_args);
            let gateway = start_role(&args, dir);
            cluster.gateways.push(Node::from_process(gateway, dir));
        }
        cluster
    }

    pub(crate) async fn nodes(&self) -> Value {
        let reply = self.gateways[0].get("/system/nodes").await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    }

    /// Sandboxes of `function` per worker id, alive workers only.
    pub(crate) async fn placement(&self, function: &str) -> Vec<(String, Vec<String>)> {
        let nodes = self.nodes().await;
        nodes["workers"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["alive"] == true)
            .map(|w| {
                let ids = w["sandboxes"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|s| s["function"] == function)
                    .map(|s| s["id"].as_str().unwrap().to_owned())
                    .collect();
                (w["id"].as_str().unwrap().to_owned(), ids)
            })
            .collect()
    }

    async fn sandbox_count(&self, function: &str) -> usize {
        self.placement(function)
            .await
            .iter()
            .map(|(_, ids)| ids.len())
            .sum()
    }
}

pub(crate) async fn deploy(node: &Node, name: &str, component: &'static [u8], settings: Value) {
    let reply = node.upload(name, component, settings).await;
    assert_eq!(reply.status, 201, "{}", reply.text());
}

/// Redis for the store tests: the machine's on 6379, or one started for the test.
fn redis_url(dir: &Path) -> (String, Option<Server>) {
    if std::net::TcpStream::connect("127.0.0.1:6379").is_ok() {
        return ("redis://127.0.0.1:6379/".into(), None);
    }
    let port = free_ports(1)[0];
    let child = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--save", "", "--dir"])
        .arg(dir)
        .stdout(Stdio::null())
        .spawn()
        .expect("no Redis on 6379 and no redis-server on PATH (.ci/run installs it)");
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    (format!("redis://127.0.0.1:{port}/"), Some(Server { child }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn functions_scale_from_zero_on_any_gateway_and_back_to_zero() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), "redb");
    let (a, b) = (&cluster.gateways[0], &cluster.gateways[1]);
    deploy(a, "hello", baton_guests::HELLO, json!({})).await;

    // Deployed through one gateway, served by both; the first call is a cold start.
    assert!(
        eventually(Duration::from_secs(60), || async {
            b.get("/system/functions").await.text().contains("hello")
        })
        .await
    );
    let first = b.get("/function/hello?name=Ada").await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.text(), "Hello, Ada!\n");
    assert_eq!(first.header("x-baton-cold-start"), "true");
    // The other gateway learns of the new sandbox from the control plane's stream.
    assert!(
        eventually(Duration::from_secs(60), || async {
            a.get("/metrics")
                .await
                .text()
                .contains("baton_function_sandboxes{function_name=\"hello\"} 1")
        })
        .await
    );
    let warm = a.get("/function/hello?name=Bo").await;
    assert_eq!(warm.text(), "Hello, Bo!\n");
    assert_eq!(warm.header("x-baton-cold-start"), "false");
    assert_eq!(cluster.sandbox_count("hello").await, 1);
    let metrics = a.get("/metrics").await.text();
    assert!(
        metrics.contains("baton_function_sandboxes{function_name=\"hello\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("baton_control_plane_connected 1"),
        "{metrics}"
    );

    // Idle past the grace period: back to zero, and the next call is cold again.
    assert!(
        eventually(Duration::from_secs(60), || async {
            cluster.sandbox_count("hello").await == 0
        })
        .await,
        "never scaled to zero: {}",
        cluster.nodes().await
    );
    let again = a.get("/function/hello?name=Cy").await;
    assert_eq!(again.status, 200);
    assert_eq!(again.header("x-baton-cold-start"), "true");

    // Bad input gets clear errors through the cluster too.
    assert_eq!(a.get("/function/nope").await.status, 404);
    let bad = a
        .send(
            "POST",
            "/system/functions",
            &[
                ("content-type", "application/wasm"),
                ("x-baton-deployment", r#"{"service":"bad"}"#),
            ],
            bytes::Bytes::from_static(b"\0asm\x01\0\0\0garbage"),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(!a.get("/system/functions").await.text().contains("\"bad\""));
    let nodes = a.cli(&["ls", "--nodes"]);
    let text = String::from_utf8_lossy(&nodes.stdout);
    assert!(nodes.status.success(), "{text}");
    for id in ["w0", "w1", "w2"] {
        assert!(text.contains(id), "{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn load_scales_out_across_workers_within_the_per_sandbox_limit() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), "redb");
    let gateway = &cluster.gateways[0];
    // One request per sandbox at a time, each busy 300 ms; a long timeout, since a request
    // waits for a free sandbox at most that long and a loaded machine starts them slowly.
    deploy(
        gateway,
        "busy",
        baton_guests::BUSY,
        json!({"envVars": {"max_inflight": "1", "exec_timeout": "5m"},
               "labels": {"com.openfaas.scale.max": "6"}}),
    )
    .await;
    // Six callers keep calling until the autoscaler has answered their load (however long
    // a loaded machine takes).
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let calls: Vec<_> = (0..6)
        .map(|_| {
            let url = format!("{}/function/busy?ms=300", gateway.url);
            let stop = stop.clone();
            tokio::spawn(async move {
                let client = reqwest_like::client();
                let mut statuses = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    statuses.push(reqwest_like::get(&client, &url).await);
                }
                statuses
            })
        })
        .collect();
    let scaled = eventually(Duration::from_secs(60), || async {
        cluster.sandbox_count("busy").await >= 3
    })
    .await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for call in calls {
        for status in call.await.unwrap() {
            assert_eq!(status, 200);
        }
    }
    assert!(
        scaled,
        "six concurrent callers of a one-at-a-time function never got three sandboxes"
    );
    let spread = cluster.placement("busy").await;
    assert!(
        spread.iter().filter(|(_, ids)| !ids.is_empty()).count() >= 2,
        "sandboxes not spread over workers: {spread:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_that_gives_up_does_not_keep_its_sandbox_slot() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), "redb");
    let gateway = &cluster.gateways[0];
    // One sandbox, one request at a time.
    deploy(
        gateway,
        "busy",
        baton_guests::BUSY,
        // A timeout no loaded machine reaches: a slot kept by the abandoned call would make
        // the next call wait for all of it and fail.
        json!({"envVars": {"max_inflight": "1", "exec_timeout": "60s"}, "labels": {"com.openfaas.scale.max": "1"}}),
    )
    .await;
    assert_eq!(gateway.get("/function/busy?ms=1").await.status, 200);
    // The client hangs up while its request runs.
    let abandoned = tokio::time::timeout(
        Duration::from_millis(200),
        gateway.get("/function/busy?ms=800"),
    )
    .await;
    assert!(abandoned.is_err(), "the slow call should still be running");
    // Its slot is free again (at once, or when the abandoned call ends): the next call is
    // served, not queued until its timeout.
    let next = gateway.get("/function/busy?ms=1").await;
    assert_eq!(next.status, 200, "{}", next.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn killing_a_worker_fails_only_its_in_flight_requests() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), "redb");
    let gateway = cluster.gateways[0].url.clone();
    deploy(
        &cluster.gateways[0],
        "busy",
        baton_guests::BUSY,
        json!({"envVars": {"max_inflight": "1"}, "labels": {"com.openfaas.scale.min": "3", "com.openfaas.scale.max": "3"}}),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(60), || async {
            cluster
                .placement("busy")
                .await
                .iter()
                .all(|(_, ids)| ids.len() == 1)
        })
        .await,
        "min scale 3 not placed one per worker: {:?}",
        cluster.placement("busy").await
    );
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let served = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let callers: Vec<_> = (0..3)
        .map(|_| {
            let (url, stop) = (format!("{gateway}/function/busy?ms=50"), stop.clone());
            let served = served.clone();
            tokio::spawn(async move {
                let client = reqwest_like::client();
                let mut statuses = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let status = reqwest_like::get(&client, &url).await;
                    if status == 200 {
                        served.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    statuses.push(status);
                }
                statuses
            })
        })
        .collect();
    let served_at_least = |n: usize| {
        let served = served.clone();
        async move {
            eventually(Duration::from_secs(60), || async {
                served.load(std::sync::atomic::Ordering::SeqCst) >= n
            })
            .await
        }
    };
    assert!(served_at_least(10).await, "no calls served before the kill");
    let (victim, mut role) = cluster.workers.remove(1);
    role.kill();
    // The dead worker is taken out and its sandbox replaced elsewhere...
    assert!(
        eventually(Duration::from_secs(30), || async {
            let placement = cluster.placement("busy").await;
            placement.iter().all(|(id, _)| *id != victim)
                && placement.iter().map(|(_, ids)| ids.len()).sum::<usize>() == 3
        })
        .await,
        "not replaced: {}",
        cluster.nodes().await
    );
    // ...and calls go on being served.
    let now = served.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        served_at_least(now + 15).await,
        "calls stopped after the kill"
    );
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut failed = 0;
    let mut after_kill_ok = 0;
    for caller in callers {
        let statuses = caller.await.unwrap();
        failed += statuses.iter().filter(|s| **s != 200).count();
        after_kill_ok += statuses.iter().rev().take_while(|s| **s == 200).count();
        for status in &statuses {
            assert!(
                *status == 200 || *status == 502,
                "unexpected status {status}"
            );
        }
    }
    // Only requests in flight on the killed worker can fail: one per caller at most.
    assert!(failed <= 3, "{failed} requests failed");
    assert!(
        after_kill_ok > 10,
        "requests after the kill did not succeed"
    );
}

async fn control_plane_restart(store: &str, dir: &Path) {
    let mut cluster = Cluster::start(dir, store);
    let gateway = &cluster.gateways[0];
    deploy(
        gateway,
        "hello",
        baton_guests::HELLO,
        json!({"labels": {"com.openfaas.scale.min": "2"}}),
    )
    .await;
    deploy(gateway, "echo", baton_guests::ECHO, json!({})).await;
    assert!(
        eventually(Duration::from_secs(60), || async {
            cluster.sandbox_count("hello").await == 2
        })
        .await
    );
    assert_eq!(gateway.get("/function/hello?name=a").await.status, 200);
    let before = cluster.placement("hello").await;

    cluster.control.as_mut().unwrap().kill();
    // Warm functions keep being served while the control plane is down.
    for gateway in &cluster.gateways {
        for _ in 0..20 {
            let reply = gateway.get("/function/hello?name=a").await;
            assert_eq!(reply.status, 200, "{}", reply.text());
        }
    }
    let refused = gateway
        .deploy(
            "POST",
            json!({"service": "late", "image": "/nonexistent.wasm"}),
        )
        .await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(
        refused.text().contains("control plane"),
        "{}",
        refused.text()
    );

    cluster.start_control();
    // No registration lost; the running sandboxes are adopted, not recreated.
    assert!(
        eventually(Duration::from_secs(60), || async {
            cluster.gateways[0].names().await == vec!["echo".to_owned(), "hello".to_owned()]
        })
        .await
    );
    assert!(
        eventually(Duration::from_secs(60), || async {
            let mut now = cluster.placement("hello").await;
            let mut was = before.clone();
            now.sort();
            was.sort();
            now == was
        })
        .await,
        "sandboxes not adopted: before {before:?}, after {:?}",
        cluster.placement("hello").await
    );
    // Both gateways are back in sync: a new function reaches them and is served.
    deploy(&cluster.gateways[0], "late", baton_guests::ECHO, json!({})).await;
    assert!(
        eventually(Duration::from_secs(60), || async {
            cluster.gateways[1].post("/function/late", "").await.status != 404
        })
        .await,
        "the second gateway never learned of the new function"
    );
    let reply = cluster.gateways[1].post("/function/late", "ping").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.text(), "ping");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn control_plane_kill_9_and_restart_with_redb() {
    let dir = tempfile::tempdir().unwrap();
    control_plane_restart("redb", dir.path()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn control_plane_kill_9_and_restart_with_redis() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _redis) = redis_url(dir.path());
    control_plane_restart(&url, dir.path()).await;
}

#[test]
fn bad_cluster_flags_are_refused_with_a_reason() {
    let run = |args: &[&str]| {
        let out = Command::new(BATON).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?} was accepted");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    assert!(run(&["worker", "--listen", "0.0.0.0:0"]).contains("cluster token"));
    assert!(run(&["worker", "--cluster-token", "short"]).contains("16 characters"));
    assert!(
        run(&[
            "control",
            "--placement",
            "best",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            tempfile::tempdir().unwrap().path().to_str().unwrap()
        ])
        .contains("round-robin")
    );
    assert!(
        run(&[
            "gateway",
            "--load-balancing",
            "fastest",
            "--listen",
            "127.0.0.1:0"
        ])
        .contains("least-in-flight")
    );
    assert!(run(&["worker", "--runtime", "vm"]).contains("fake"));
}

/// A tiny HTTP client for callers that loop, without the harness's node type.
mod reqwest_like {
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::client::legacy::connect::HttpConnector;
    use std::time::Duration;

    pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

    pub fn client() -> HttpClient {
        Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
    }

    /// The status of a GET, or 0 when the gateway did not answer at all.
    pub async fn get(client: &HttpClient, url: &str) -> u16 {
        send(client, "GET", url, &[], Bytes::new()).await.0
    }

    /// Status and body of a request; status 0 when nothing answered.
    pub async fn send(
        client: &HttpClient,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> (u16, Bytes) {
        let mut request = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body)).unwrap();
        match tokio::time::timeout(Duration::from_secs(30), client.request(request)).await {
            Ok(Ok(response)) => {
                let status = response.status().as_u16();
                let body = response.into_body().collect().await;
                (status, body.map(|b| b.to_bytes()).unwrap_or_default())
            }
            _ => (0, Bytes::new()),
        }
    }
}

/// Adds to the `counter` example's `visits` through `gateway` until `n` additions succeeded;
/// a request refused because its worker died is not counted (it added nothing).
async fn visit(gateway: &Node, n: usize) {
    let mut done = 0;
    let mut tries = 0;
    while done < n {
        tries += 1;
        assert!(tries < n + 100, "too many failed visits");
        let reply = gateway.post("/function/counter/visits", "").await;
        match reply.status {
            200 => done += 1,
            502 | 503 => {}
            other => panic!("{other}: {}", reply.text()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn state_replicates_across_workers_and_a_restarted_worker_catches_up() {
    let dir = tempfile::tempdir().unwrap();
    let mut cluster = Cluster::start(dir.path(), "redb");
    // One sandbox on each worker (round-robin placement), each adding through its own agent.
    deploy(
        &cluster.gateways[0],
        "counter",
        baton_guests::COUNTER,
        json!({"labels": {"com.openfaas.scale.min": "3"}}),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(30), || async {
            let placement = cluster.placement("counter").await;
            placement.len() == 3 && placement.iter().all(|(_, ids)| ids.len() == 1)
        })
        .await,
        "not one sandbox per worker: {}",
        cluster.nodes().await
    );
    visit(&cluster.gateways[0], 30).await;
    assert!(
        cluster.converged(30, &["w0", "w1", "w2"]).await,
        "never converged on 30"
    );
    // The control plane told each agent of the two others.
    for id in ["w0", "w1", "w2"] {
        assert!(
            cluster.has_peers(id, 2.0).await,
            "{id} does not link to both others"
        );
        // Each worker process has objects too, its cache sized by its workers' memory.
        let capacity = cluster
            .worker_metric(id, "baton_objects_capacity_bytes")
            .await;
        assert!(capacity.is_some_and(|c| c > 0.0), "{id}: {capacity:?}");
    }

    // A worker killed with SIGKILL misses what is added while it is away...
    let (victim, mut role) = cluster.workers.remove(2);
    role.kill();
    assert!(
        eventually(Duration::from_secs(60), || async {
            cluster
                .placement("counter")
                .await
                .iter()
                .all(|(id, _)| *id != victim)
        })
        .await,
        "the dead worker is still listed alive"
    );
    // A member that leaves is dropped from every agent's peers.
    for id in ["w0", "w1"] {
        assert!(
            cluster.has_peers(id, 1.0).await,
            "{id} still counts the dead worker"
        );
    }
    visit(&cluster.gateways[1], 20).await;
    assert!(
        cluster.converged(50, &["w0", "w1"]).await,
        "the live workers never read 50"
    );

    // ...and catches up after a restart from its data directory; what is added on it
    // reaches the others (it is their peer again).
    cluster.start_worker(&victim);
    for id in ["w0", "w1", "w2"] {
        assert!(
            cluster.has_peers(id, 2.0).await,
            "{id} did not take the worker back"
        );
    }
    assert!(
        cluster.converged(50, &["w2"]).await,
        "the restarted worker never caught up"
    );
    let (status, body) = cluster
        .state_call(
            "w2",
            "POST",
            "counter/visits",
            json!({"op": "counter-add", "amount": 30}),
        )
        .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert!(
        cluster.converged(80, &["w0", "w1", "w2"]).await,
        "never converged on 80"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gateway_gathers_logs_from_every_worker_and_follows_them() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), "redb");
    let (a, b) = (&cluster.gateways[0], &cluster.gateways[1]);
    deploy(
        a,
        "bad",
        baton_guests::MISBEHAVE,
        json!({"labels": {"com.openfaas.scale.min": "3"}}),
    )
    .await;
    assert!(
        eventually(Duration::from_secs(120), || async {
            cluster.sandbox_count("bad").await == 3
        })
        .await
    );
    let sandboxes: Vec<String> = cluster
        .placement("bad")
        .await
        .into_iter()
        .flat_map(|(_, ids)| ids)
        .collect();
    // Calls, six at once (least-in-flight balancing sends one-at-a-time calls to one
    // sandbox), until every sandbox trapped at least once.
    let calls = || async {
        let statuses = futures_util::future::join_all(
            (0..6).map(|_| async { a.get("/function/bad/trap").await.status }),
        )
        .await;
        assert!(statuses.iter().all(|s| *s == 500), "{statuses:?}");
    };
    let traps = |text: &str| {
        text.lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|l| l["text"].as_str().unwrap().contains("asked to trap"))
            .map(|l| l["instance"].as_str().unwrap().to_owned())
            .collect::<std::collections::HashSet<String>>()
    };
    assert!(
        eventually(Duration::from_secs(60), || async {
            calls().await;
            let logs = b.get("/system/logs?name=bad&tail=-1").await;
            assert_eq!(logs.status, 200, "{}", logs.text());
            traps(&logs.text()).len() == 3
        })
        .await,
        "the gateway did not gather every worker's lines: {:?} of {sandboxes:?}",
        traps(&b.get("/system/logs?name=bad&tail=-1").await.text())
    );
    let seen = traps(&b.get("/system/logs?name=bad&tail=-1").await.text());
    let expected: std::collections::HashSet<String> = sandboxes.iter().cloned().collect();
    assert_eq!(seen, expected);
    // One sandbox's lines only.
    let one = &sandboxes[0];
    let only = b
        .get(&format!("/system/logs?name=bad&tail=-1&instance={one}"))
        .await;
    assert_eq!(traps(&only.text()), [one.clone()].into());
    assert_eq!(b.get("/system/logs?name=ghost").await.status, 404);

    // Followed through one gateway while another sends the calls.
    let mut lines = b.lines("/system/logs?name=bad&tail=0&follow=true").await;
    let mut followed = std::collections::HashSet::new();
    for _ in 0..300 {
        calls().await;
        while let Ok(Some(line)) =
            tokio::time::timeout(Duration::from_millis(100), lines.recv()).await
        {
            let line: Value = serde_json::from_str(&line).unwrap();
            if line["text"].as_str().unwrap().contains("asked to trap") {
                followed.insert(line["instance"].as_str().unwrap().to_owned());
            }
        }
        if followed.len() == 3 {
            break;
        }
    }
    assert_eq!(followed, expected, "not every worker's lines were followed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn with_a_cluster_token_only_members_take_part() {
    let dir = tempfile::tempdir().unwrap();
    let token = "a-long-enough-cluster-secret";
    let port = free_ports(1)[0];
    let listen = format!("127.0.0.1:{port}");
    let control = format!("http://{listen}");
    let data = dir.path().join("control");
    let _control = start_role(
        &[
            "control",
            "--listen",
            &listen,
            "--data-dir",
            data.to_str().unwrap(),
            "--cluster-token",
            token,
        ],
        dir.path(),
    );
    let member_dir = dir.path().join("member");
    let _member = start_role(
        &[
            "worker",
            "--control",
            &control,
            "--id",
            "member",
            "--cluster-token",
            token,
            "--data-dir",
            member_dir.to_str().unwrap(),
        ],
        dir.path(),
    );
    let stranger_dir = dir.path().join("stranger");
    let _stranger = start_role(
        &[
            "worker",
            "--control",
            &control,
            "--id",
            "stranger",
            "--data-dir",
            stranger_dir.to_str().unwrap(),
        ],
        dir.path(),
    );
    let gateway = |token: Option<&str>| {
        let mut args = vec!["gateway", "--control", &control, "--listen", "127.0.0.1:0"];
        if let Some(token) = token {
            args.extend(["--cluster-token", token]);
        }
        Node::from_process(start_role(&args, dir.path()), dir.path())
    };
    let (member_gateway, stranger_gateway) = (gateway(Some(token)), gateway(None));

    deploy(&member_gateway, "hello", baton_guests::HELLO, json!({})).await;
    let reply = member_gateway.get("/function/hello?name=Ada").await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    let nodes = member_gateway.get("/system/nodes").await.json();
    let ids: Vec<&str> = nodes["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        ["member"],
        "a worker without the token registered: {nodes}"
    );

    // A gateway without the token is refused by the control plane, with a reason.
    let refused = stranger_gateway
        .deploy("POST", json!({"service": "x", "envProcess": "cat"}))
        .await;
    assert_eq!(refused.status, 401, "{}", refused.text());
    assert!(
        refused.text().contains("cluster token"),
        "{}",
        refused.text()
    );
    assert_eq!(stranger_gateway.get("/function/hello").await.status, 404);
}

#[test]
fn one_config_file_configures_every_role_and_each_refuses_a_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("baton.toml");
    let config = path.to_str().unwrap();
    std::fs::write(
        &path,
        "listen = \"127.0.0.1:0\"\n\n[control]\nlisten = \"127.0.0.1:0\"\nscale_to_zero_grace = \"5m\"\n\n[gateway]\nload_balancing = \"power-of-two\"\n\n[worker]\nreap_interval = \"1s\"\ncount = 2\n",
    )
    .unwrap();
    // The control plane's address came from its section: a free port, not the default 9090.
    let data = dir.path().join("control");
    let control = start_role(
        &[
            "control",
            "--config",
            config,
            "--data-dir",
            data.to_str().unwrap(),
        ],
        dir.path(),
    );
    let grpc = control.ready().grpc.clone().unwrap_or_default();
    assert!(
        grpc.starts_with("grpc://127.0.0.1:") && !grpc.ends_with(":9090"),
        "{grpc}"
    );
    drop(control);
    // A typo in one role's section is refused by every role, naming the file and line.
    std::fs::write(
        &path,
        "[control]\nlisten = \"127.0.0.1:0\"\n\n[gateway]\nload_balance = \"random\"\n",
    )
    .unwrap();
    for role in ["control", "gateway", "worker", "up"] {
        let output = Command::new(BATON)
            .args([role, "--config", config])
            .env("BATON_DATA_DIR", dir.path().join(role))
            .env_remove("BATON_LISTEN")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{role}: {stderr}");
        assert!(
            stderr.contains("baton.toml, line 5") && stderr.contains("load_balance"),
            "{role}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn scale_function_through_a_gateway_places_sandboxes_on_the_workers() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), "redb");
    let gateway = &cluster.gateways[1];
    // A manual scale holds for the function's scale-to-zero grace (the cluster's is 2 s):
    // a long one, so a slow machine still sees the scale it asked for.
    let settings = json!({"labels": {"com.openfaas.scale.zero-duration": "10m"}});
    deploy(gateway, "hello", baton_guests::HELLO, settings).await;
    let body = json!({"serviceName": "hello", "replicas": 3}).to_string();
    let reply = gateway
        .send("POST", "/system/scale-function/hello", &[], body)
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    assert!(
        eventually(Duration::from_secs(60), || async {
            cluster.sandbox_count("hello").await == 3
        })
        .await,
        "{:?}",
        cluster.placement("hello").await
    );
    let body = json!({"serviceName": "ghost", "replicas": 1}).to_string();
    let reply = gateway
        .send("POST", "/system/scale-function/ghost", &[], body)
        .await;
    assert_eq!(reply.status, 404, "{}", reply.text());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn secrets_go_through_the_control_plane_to_the_worker_that_runs_the_function() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = Cluster::start(dir.path(), "redb");
    let (first, second) = (&cluster.gateways[0], &cluster.gateways[1]);
    let body = json!({"name": "db-password", "value": "hunter2"}).to_string();
    let created = first.send("POST", "/system/secrets", &[], body).await;
    assert_eq!(created.status, 202, "{}", created.text());
    let listed = second.get("/system/secrets").await;
    assert_eq!(
        listed.json(),
        json!([{"name": "db-password", "namespace": "baton"}])
    );
    let again = json!({"name": "db-password", "value": "x"}).to_string();
    assert_eq!(
        second
            .send("POST", "/system/secrets", &[], again)
            .await
            .status,
        409
    );
    let scripts = dir.path().join("reader");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::write(
        scripts.join("read.sh"),
        "cat \"$BATON_SECRETS_DIR/db-password\"\n",
    )
    .unwrap();
    let deployed = second
        .deploy(
            "POST",
            json!({"service": "reader", "envProcess": "sh read.sh", "secrets": ["db-password"],
                   "envVars": {"mode": "classic"}, "workingDir": scripts.display().to_string()}),
        )
        .await;
    assert_eq!(deployed.status, 201, "{}", deployed.text());
    // Through the gateway that deployed it (the other learns of it a moment later).
    let read = second.post("/function/reader", "").await;
    assert_eq!((read.status, read.text()), (200, "hunter2".to_string()));
    let in_use = json!({"name": "db-password"}).to_string();
    assert_eq!(
        first
            .send("DELETE", "/system/secrets", &[], in_use)
            .await
            .status,
        409
    );
}
