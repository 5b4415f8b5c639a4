//! A function cannot reach what is not its own, and no listener can be starved: each test is
//! an attack a deployed function or a client tried against `baton up` with its defaults.

use crate::harness::{Node, Options, eventually};
use serde_json::json;
use std::io::{Read, Write};
use std::time::Duration;

/// Deploys the probing guest (`/fetch` sends the request its body describes) as `name`.
async fn deploy_prober(node: &Node, name: &str, labels: serde_json::Value) {
    let reply = node
        .upload(name, baton_guests::MISBEHAVE, json!({"labels": labels}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
}

/// What the guest got for `METHOD URL\nbody`: (status, body), status 599 when the host
/// refused the request.
async fn probe(node: &Node, function: &str, request: &str) -> (u16, String) {
    let reply = node
        .post(&format!("/function/{function}/fetch"), request.to_owned())
        .await;
    match reply.status {
        200 => {
            let text = reply.text();
            let (status, body) = text.split_once('\n').unwrap_or((&text, ""));
            (status.parse().unwrap(), body.to_owned())
        }
        599 => (599, reply.text()),
        other => panic!("the prober itself failed with {other}: {}", reply.text()),
    }
}

/// A GET that may fail (a listener at its cap closes connections), unlike the harness's.
async fn try_get(url: &str) -> Option<(u16, String)> {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let response = tokio::time::timeout(Duration::from_secs(10), client.get(url.parse().ok()?))
        .await
        .ok()?
        .ok()?;
    let status = response.status().as_u16();
    let body = response.into_body().collect().await.ok()?.to_bytes();
    Some((status, String::from_utf8_lossy(&body).into_owned()))
}

/// A plain HTTP server on loopback answering `served`, standing for a service the operator
/// opens: its port.
fn service_on_loopback() -> u16 {
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in server.incoming().flatten() {
            let mut stream = stream;
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nserved",
            );
        }
    });
    port
}

/// A node whose operator opened loopback to functions that list it.
fn node_opening_loopback(dir: &std::path::Path) -> Node {
    Node::start(
        dir,
        Options {
            env: vec![("BATON_OUTBOUND_ALLOW_PRIVATE".into(), "127.0.0.1/32".into())],
            ..Options::default()
        },
    )
}

fn authority(url: &str) -> &str {
    url.trim_start_matches("http://")
}

#[tokio::test]
async fn a_function_cannot_reach_the_admin_api_state_api_or_loopback() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    deploy_prober(&node, "prober", json!({})).await;
    assert_eq!(
        node.upload("victim", baton_guests::HELLO, json!({}))
            .await
            .status,
        201
    );
    let gateway = authority(&node.url).to_owned();
    let state = authority(node.state_api.as_ref().unwrap()).to_owned();

    // Attack 1: deploy a root shell through the admin API, delete another function.
    let deploy = format!(
        "POST http://{gateway}/system/functions\n{}",
        json!({"service": "pwn", "envProcess": "sh -c id", "envVars": {"mode": "classic"}})
    );
    let (status, text) = probe(&node, "prober", &deploy).await;
    assert_eq!(status, 599, "admin API reached: {text}");
    assert!(text.to_lowercase().contains("denied"), "{text}");
    let delete =
        format!("DELETE http://{gateway}/system/functions\n{{\"functionName\":\"victim\"}}");
    assert_eq!(probe(&node, "prober", &delete).await.0, 599);
    assert_eq!(node.get("/system/function/pwn").await.status, 404);
    assert_eq!(node.get("/function/victim").await.status, 200);

    // Attack 2: the state API, /metrics, another loopback service, a port scan.
    let state_write = format!(
        "POST http://{state}/v1/state/counter/c\n{{\"op\":\"counter-add\",\"amount\":1000}}"
    );
    for request in [
        state_write,
        format!("GET http://{gateway}/metrics"),
        "GET http://127.0.0.1:6379/".to_string(),
        "GET http://localhost:1/".to_string(),
        "GET http://169.254.169.254/latest/meta-data/".to_string(),
        "GET http://[::1]:6379/".to_string(),
    ] {
        let (status, text) = probe(&node, "prober", &request).await;
        assert_eq!(status, 599, "{request} went through: {text}");
    }
    // Closed and open loopback ports fail alike: no port scan.
    let closed = probe(&node, "prober", "GET http://127.0.0.1:1/").await;
    let open = probe(
        &node,
        "prober",
        &format!(
            "GET http://127.0.0.1:{}/",
            gateway.rsplit(':').next().unwrap()
        ),
    )
    .await;
    assert_eq!(closed.0, open.0);

    // Denials are counted.
    let metrics = node.get("/metrics").await.text();
    assert!(
        metrics.contains("baton_outbound_denied_total{function_name=\"prober\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn functions_call_functions_in_process_and_recursion_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    deploy_prober(&node, "prober", json!({})).await;
    assert_eq!(
        node.upload("hello", baton_guests::HELLO, json!({}))
            .await
            .status,
        201
    );
    // Through OpenFaaS's in-cluster name and through the node's own address alike.
    for base in ["http://gateway:8080".to_string(), node.url.clone()] {
        let (status, body) = probe(
            &node,
            "prober",
            &format!("GET {base}/function/hello?name=Ada"),
        )
        .await;
        assert_eq!((status, body.trim()), (200, "Hello, Ada!"), "via {base}");
    }
    // A recursion that nests every level's request in its body: depth 16 is the limit.
    let mut request = "GET http://gateway:8080/function/hello".to_string();
    for _ in 0..20 {
        request = format!("POST http://gateway:8080/function/prober/fetch\n{request}");
    }
    let (status, body) = probe(&node, "prober", &request).await;
    assert_eq!(status, 200, "{body}");
    assert!(
        body.to_lowercase().contains("loop"),
        "the deepest call was refused as a loop: {body}"
    );
    assert_eq!(node.get("/function/hello").await.status, 200);
}

#[tokio::test]
async fn listed_hosts_are_reachable_and_loopback_only_by_operator_setting() {
    let port = service_on_loopback();
    let dir = tempfile::tempdir().unwrap();
    let node = node_opening_loopback(dir.path());
    deploy_prober(
        &node,
        "listed",
        json!({"baton.allowed-hosts": format!("http://127.0.0.1:{port}")}),
    )
    .await;
    deploy_prober(&node, "unlisted", json!({})).await;
    let request = format!("GET http://127.0.0.1:{port}/");
    assert_eq!(
        probe(&node, "listed", &request).await,
        (200, "served".into())
    );
    assert_eq!(probe(&node, "unlisted", &request).await.0, 599);
    // Even listed and opened by the operator, the node's own listeners stay closed.
    let gateway = authority(&node.url).to_owned();
    let port_of_gateway = gateway.rsplit(':').next().unwrap();
    let reply = node
        .upload(
            "greedy",
            baton_guests::MISBEHAVE,
            json!({"labels": {"baton.allowed-hosts": "*"}}),
        )
        .await;
    assert_eq!(reply.status, 201);
    let admin = format!("GET http://127.0.0.1:{port_of_gateway}/system/functions");
    assert_eq!(probe(&node, "greedy", &admin).await.0, 599);
    // A malformed allow-list is refused at deployment.
    let bad = node
        .upload(
            "bad",
            baton_guests::MISBEHAVE,
            json!({"labels": {"baton.allowed-hosts": "ftp://x.org"}}),
        )
        .await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("ftp://x.org"), "{}", bad.text());
}

#[tokio::test]
async fn the_state_api_takes_only_a_functions_own_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    let api = node.state_api.clone().unwrap();
    let scripts = dir.path().join("py");
    std::fs::create_dir_all(&scripts).unwrap();
    // The process function tries its own namespace, another one, and no token at all.
    std::fs::write(
        scripts.join("handler.py"),
        r#"import os, urllib.request, urllib.error
api, token = os.environ["BATON_API"], os.environ["BATON_API_TOKEN"]
def call(ns, auth):
    headers = {"Authorization": "Bearer " + token} if auth else {}
    request = urllib.request.Request(f"{api}/v1/state/{ns}/c", data=b'{"op":"counter-add","amount":1000}', method="POST", headers=headers)
    try:
        return urllib.request.urlopen(request).status
    except urllib.error.HTTPError as e:
        return e.code
print(call("mine", True), call("counter", True), call("mine", False))
"#,
    )
    .unwrap();
    let deployed = node
        .deploy(
            "POST",
            json!({"service": "mine", "envProcess": "python3 handler.py",
                   "envVars": {"mode": "classic"}, "workingDir": scripts.display().to_string()}),
        )
        .await;
    assert_eq!(deployed.status, 201, "{}", deployed.text());
    let reply = node.post("/function/mine", "").await;
    assert_eq!(reply.text().trim(), "200 403 401", "{}", reply.text());
    // Without the node's token nobody lists or deletes.
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    for (method, path) in [("GET", "/v1/state/counter"), ("DELETE", "/v1/state/mine/c")] {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("{api}{path}"))
            .body(http_body_util::Full::default())
            .unwrap();
        let response = client.request(request).await.unwrap();
        assert_eq!(response.status(), 401, "{method} {path}");
    }
    assert_eq!(
        node.get("state:/v1/state/mine/c").await.json()["value"],
        json!(1000)
    );
}

#[tokio::test]
async fn the_admin_api_needs_the_generated_token_by_default() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    let token_file = dir.path().join("admin-token");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&token_file).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let bare = client
        .get(format!("{}/system/functions", node.url).parse().unwrap())
        .await
        .unwrap();
    assert_eq!(bare.status(), 401);
    // /metrics stays open on loopback, and the CLI on this machine finds the token.
    assert_eq!(node.get("/metrics").await.status, 200);
    let output = std::process::Command::new(crate::harness::BATON)
        .args(["ls"])
        .env("BATON_GATEWAY", &node.url)
        .env("BATON_DATA_DIR", dir.path())
        .env_remove("BATON_TOKEN")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test]
async fn bad_images_uploads_and_limits_are_refused_without_harm() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    // Attack 4: a device file as image reads forever.
    let reply = node
        .deploy("POST", json!({"service": "zero", "image": "/dev/zero"}))
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains("regular file"), "{}", reply.text());
    // Attack 7: a large upload that is not a component is refused on its first bytes: the
    // client announces 250 MiB, sends 64 KiB and waits; the answer comes without the rest.
    let mut stream = std::net::TcpStream::connect(authority(&node.url)).unwrap();
    let head = format!(
        "POST /system/functions?service=junk HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\ncontent-type: application/wasm\r\ncontent-length: {}\r\n\r\n",
        node.token.as_ref().unwrap(),
        250u64 << 20
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&vec![b'x'; 64 << 10]).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut answer = [0u8; 4096];
    let read = stream.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("not a WebAssembly"), "{answer}");
    // Attack 9: limits the node cannot honour, and an ambiguous deployment.
    for (deployment, expected) in [
        (
            json!({"service": "m", "image": "x.wasm", "envProcess": "sh"}),
            "one or the other",
        ),
        (
            json!({"service": "m", "envProcess": "sh", "limits": {"memory": "1000Ti"}}),
            "at most",
        ),
        (
            json!({"service": "m", "envProcess": "sh", "labels": {"com.openfaas.scale.max": "100000000"}}),
            "10000",
        ),
    ] {
        let reply = node.deploy("POST", deployment.clone()).await;
        assert_eq!(reply.status, 400, "{deployment}: {}", reply.text());
        assert!(
            reply.text().contains(expected),
            "{deployment}: {}",
            reply.text()
        );
    }
    let reply = node
        .upload(
            "big",
            baton_guests::HELLO,
            json!({"limits": {"memory": "1000Ti"}}),
        )
        .await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains("at most"), "{}", reply.text());
}

#[tokio::test]
async fn slow_headers_are_cut_and_connections_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_with_hello(
        dir.path(),
        "[listener]\nheader_read_timeout = \"1s\"\nmax_connections = 64\n",
    )
    .await;
    let address = authority(&node.url).to_owned();
    // Attack 5: connections that never finish their headers, more than the cap.
    let mut idle: Vec<std::net::TcpStream> = (0..200)
        .map(|_| {
            let mut stream = std::net::TcpStream::connect(&address).unwrap();
            let _ = stream.write_all(b"GET /function/hello HTTP/1.1\r\nHost: x\r\n");
            stream
        })
        .collect();
    // The cap is reached and counted; the slow ones are cut at the header deadline, after
    // which the node serves again while the attackers' sockets are still open.
    let url = node.url.clone();
    let refused = eventually(Duration::from_secs(30), || {
        let url = url.clone();
        async move {
            let Some((200, metrics)) = try_get(&format!("{url}/metrics")).await else {
                return false;
            };
            metrics.lines().any(|l| {
                l.starts_with("baton_listener_refused_total{listener=\"gateway\"}")
                    && !l.ends_with(" 0")
            })
        }
    })
    .await;
    assert!(refused, "no connection was refused at the cap");
    let served = eventually(Duration::from_secs(30), || {
        let url = url.clone();
        async move {
            matches!(
                try_get(&format!("{url}/function/hello")).await,
                Some((200, _))
            )
        }
    })
    .await;
    assert!(served);
    // Each slow connection was closed by the node: reading gives EOF or a 408.
    let first = &mut idle[0];
    first
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut rest = Vec::new();
    let _ = first.read_to_end(&mut rest);
    let text = String::from_utf8_lossy(&rest);
    assert!(text.is_empty() || text.contains("408"), "{text}");
}

#[tokio::test]
async fn bodies_that_never_finish_get_408_and_free_their_connection() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_with_hello(dir.path(), "[listener]\nbody_read_timeout = \"1s\"\n").await;
    let address = authority(&node.url).to_owned();
    // A body announced at 100 bytes of which 10 arrive, to a function and to the admin API.
    for head in [
        "POST /function/hello HTTP/1.1\r\nHost: x\r\n".to_string(),
        format!(
            "POST /system/functions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n",
            node.token.as_deref().unwrap()
        ),
    ] {
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        stream
            .write_all(format!("{head}Content-Length: 100\r\n\r\n{{\"service\":").as_bytes())
            .unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let mut reply = [0u8; 512];
        let read = stream.read(&mut reply).unwrap();
        let text = String::from_utf8_lossy(&reply[..read]);
        assert!(text.starts_with("HTTP/1.1 408"), "{head}: {text}");
        assert!(text.contains("did not arrive within 1 s"), "{text}");
    }
    assert_eq!(node.get("/function/hello").await.status, 200);
}

#[tokio::test]
async fn what_a_crash_left_behind_is_removed_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    assert_eq!(
        node.upload("kept", baton_guests::HELLO, json!({}))
            .await
            .status,
        201
    );
    let data = node.kill();
    let orphan = format!("{}.wasm", "ab".repeat(32));
    let junk = [
        data.join("artifacts").join(".tmp-123-abc"),
        data.join("artifacts").join(&orphan),
        data.join("compiled").join(".tmp-9-9"),
        data.join("compiled")
            .join(format!("{}-0000000000000000.cwasm", "ab".repeat(32))),
    ];
    for file in &junk {
        std::fs::write(file, b"left by a crash").unwrap();
    }
    let node = Node::start(&data, Options::default());
    for file in &junk {
        assert!(!file.exists(), "{} is still there", file.display());
    }
    assert_eq!(node.get("/function/kept").await.status, 200);
}

/// What a process function in its own network reaches, one word per attempt: its node's
/// loopback directly, the operator's service through its proxy (`http`, then a `CONNECT`
/// tunnel), another function and the admin API through the platform's name, and its platform
/// API (`BATON_API`, here through the proxy too).
const NETWORK_PROBE: &str = r#"import os, socket, urllib.request, urllib.error
proxy, service, gateway = os.environ["HTTP_PROXY"], os.environ["SERVICE"], os.environ["GATEWAY_PORT"]
# The operator's service is on loopback, which NO_PROXY keeps direct: send it to the proxy.
for key in ("NO_PROXY", "no_proxy"):
    os.environ.pop(key, None)
def direct(port):
    try:
        socket.create_connection(("127.0.0.1", int(port)), timeout=5).close()
        return "open"
    except OSError:
        return "closed"
opener = urllib.request.build_opener(urllib.request.ProxyHandler({"http": proxy}))
def get(url):
    try:
        with opener.open(url, timeout=20) as reply:
            return f"{reply.status}:{reply.read().decode().strip()}"
    except urllib.error.HTTPError as e:
        return str(e.code)
def tunnel(port):
    host, proxy_port = proxy.removeprefix("http://").split(":")
    s = socket.create_connection((host, int(proxy_port)), timeout=20)
    s.sendall(f"CONNECT 127.0.0.1:{port} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    head = s.recv(4096).decode()
    if not head.startswith("HTTP/1.1 200"):
        return head.split()[1]
    s.sendall(b"GET / HTTP/1.1\r\nHost: service\r\n\r\n")
    data = b""
    while chunk := s.recv(4096):
        data += chunk
    return "200:" + data.decode().rsplit("\n", 1)[-1]
api = urllib.request.Request(
    f"{os.environ['BATON_API']}/v1/state/{os.environ['BATON_NAMESPACE']}/hits", method="POST",
    data=b'{"op":"counter-add","amount":2}',
    headers={"Authorization": "Bearer " + os.environ["BATON_API_TOKEN"]})
print(direct(service), direct(gateway), get(f"http://127.0.0.1:{service}/"), tunnel(service),
      get("http://gateway:8080/function/hello?name=proxy"), get("http://gateway:8080/system/functions"),
      get(api).split(":")[0])
"#;

#[tokio::test]
async fn a_process_function_reaches_the_network_only_through_the_policy() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("not root: process functions are not isolated here, nothing to test");
        return;
    }
    let service = service_on_loopback();
    let dir = tempfile::tempdir().unwrap();
    let node = node_opening_loopback(dir.path());
    let hello = node.upload("hello", baton_guests::HELLO, json!({})).await;
    assert_eq!(hello.status, 201, "{}", hello.text());
    let scripts = dir.path().join("net");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::write(scripts.join("probe.py"), NETWORK_PROBE).unwrap();
    let gateway = node.url.rsplit(':').next().unwrap().to_owned();
    for (name, allowed) in [
        ("listed", format!("127.0.0.1:{service}")),
        ("unlisted", String::new()),
    ] {
        let deployed = node
            .deploy(
                "POST",
                json!({"service": name, "envProcess": "python3 probe.py",
                       "labels": {"baton.allowed-hosts": allowed},
                       "envVars": {"mode": "classic", "SERVICE": service.to_string(),
                                   "GATEWAY_PORT": gateway},
                       "workingDir": scripts.display().to_string()}),
            )
            .await;
        assert_eq!(deployed.status, 201, "{}", deployed.text());
    }
    let listed = node.post("/function/listed", "").await.text();
    assert_eq!(
        listed.trim(),
        "closed closed 200:served 200:served 200:Hello, proxy! 403 200",
        "{listed}"
    );
    let unlisted = node.post("/function/unlisted", "").await.text();
    assert_eq!(
        unlisted.trim(),
        "closed closed 403 403 200:Hello, proxy! 403 200",
        "{unlisted}"
    );
    let metrics = node.get("/metrics").await.text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("baton_outbound_denied_total{function_name=\"unlisted\"} 3")),
        "{metrics}"
    );
    assert_eq!(
        node.get("state:/v1/state/listed/hits").await.json()["value"],
        json!(2)
    );
}

#[tokio::test]
async fn a_process_function_cannot_own_the_node() {
    let dir = tempfile::tempdir().unwrap();
    // The node's own environment holds its token, as an operator's would.
    let node = Node::start(
        dir.path(),
        Options {
            token: Some("operator-secret-token".into()),
            ..Options::default()
        },
    );
    let marker = format!("{}.{}", 100 + fastrand_u16() % 800, std::process::id());
    // Attack 3, as one classic function: who am I, the node's environment, the data
    // directory, a child left running, and the node killed.
    let script = format!(
        r#"id -u
cat /proc/$PPID/environ 2>/dev/null | tr '\0' '\n' | grep -c BATON_TOKEN
touch {data}/compiled/planted 2>/dev/null && echo wrote-data || echo data-closed
setsid sleep {marker} >/dev/null 2>&1 &
kill -9 $PPID 2>/dev/null; ls /proc | grep -c '^[0-9]'
"#,
        data = dir.path().display()
    );
    let scripts = dir.path().join("attacker");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::write(scripts.join("attack.sh"), script).unwrap();
    let deployed = node
        .deploy(
            "POST",
            json!({"service": "attacker", "envProcess": "sh attack.sh",
                   "envVars": {"mode": "classic"}, "workingDir": scripts.display().to_string()}),
        )
        .await;
    assert_eq!(deployed.status, 201, "{}", deployed.text());
    let reply = node.post("/function/attacker", "").await;
    let lines: Vec<String> = reply.text().lines().map(str::to_owned).collect();
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        assert_ne!(lines[0], "0", "the function ran as root: {lines:?}");
    }
    assert_eq!(
        lines[1], "0",
        "the function read the node's environment: {lines:?}"
    );
    assert_eq!(lines[2], "data-closed", "{lines:?}");
    assert!(!dir.path().join("compiled/planted").exists());
    // It sees its own processes only (a handful), not the machine's.
    assert!(lines[3].parse::<u32>().unwrap() < 10, "{lines:?}");
    // The node is alive and the sleeper died with the sandbox.
    assert_eq!(node.get("/healthz").await.status, 200);
    let gone = eventually(Duration::from_secs(30), || async {
        let found = std::process::Command::new("pgrep")
            .args(["-f", &format!("sleep {marker}")])
            .output()
            .map(|o| !o.stdout.is_empty())
            .unwrap_or(false);
        !found
    })
    .await;
    assert!(gone, "a child of the function outlived its request");
}

#[tokio::test]
async fn a_node_killed_with_sigkill_takes_its_http_servers_along() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node"), Options::default());
    // An http-mode server whose command line names a directory no other test uses.
    let code = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        code.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let marker = format!("server-{}-{}.py", std::process::id(), fastrand_u16());
    std::fs::write(code.path().join(&marker), baton_guests::python::HTTP_SERVER).unwrap();
    let spec = json!({"service": "srv", "envProcess": format!("python3 {marker}"),
                      "workingDir": code.path().display().to_string(), "envVars": {"mode": "http"}});
    assert_eq!(node.deploy("POST", spec).await.status, 201);
    assert_eq!(node.get("/function/srv").await.status, 200);
    let running = || {
        std::process::Command::new("pgrep")
            .args(["-f", &marker])
            .output()
            .map(|o| !o.stdout.is_empty())
            .unwrap_or(false)
    };
    assert!(running(), "the server is not running");
    node.kill();
    let gone = eventually(Duration::from_secs(60), || async { !running() }).await;
    assert!(gone, "the function's server outlived the node");
}

#[tokio::test]
async fn a_sandbox_memory_limit_counts_its_files_and_the_sandbox_ends_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    // 96 MiB written to the sandbox's private /tmp with a 32 MiB limit: RLIMIT_DATA never
    // saw files, the sandbox's control group does.
    let scripts = dir.path().join("filler");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::write(
        scripts.join("fill.sh"),
        "if [ \"$1\" = small ]; then echo small-ok; exit 0; fi\n\
         head -c 100663296 /dev/zero > /tmp/fill && echo filled\n",
    )
    .unwrap();
    let deploy = |name: &str, arg: &str| {
        json!({"service": name, "envProcess": format!("sh fill.sh {arg}"),
               "envVars": {"mode": "classic"}, "limits": {"memory": "32Mi"},
               "workingDir": scripts.display().to_string()})
    };
    assert_eq!(
        node.deploy("POST", deploy("filler", "big")).await.status,
        201
    );
    assert_eq!(
        node.deploy("POST", deploy("small", "small")).await.status,
        201
    );
    let reply = node.post("/function/filler", "").await;
    assert_eq!(reply.status, 500, "{}", reply.text());
    assert!(!reply.text().contains("filled"), "{}", reply.text());
    // The node and the other sandboxes are unharmed, and the memory came back.
    assert_eq!(node.get("/healthz").await.status, 200);
    let small = node.post("/function/small", "").await;
    assert_eq!((small.status, small.text().trim()), (200, "small-ok"));
    let again = node.post("/function/filler", "").await;
    assert_eq!(again.status, 500, "{}", again.text());
}

#[tokio::test]
async fn limits_cpu_is_cores_and_the_sandbox_group_enforces_it() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    // The function reports the CPU bandwidth of its own control group (v1 or v2).
    let scripts = dir.path().join("cpu");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::write(
        scripts.join("quota.py"),
        r#"import os
for line in open("/proc/self/cgroup"):
    _, controllers, path = line.strip().split(":", 2)
    names = controllers.split(",")
    candidates = [f"/sys/fs/cgroup/{controllers}{path}/cpu.cfs_quota_us"] if "cpu" in names else []
    if controllers == "":
        candidates += [f"/sys/fs/cgroup{path}/cpu.max", f"/sys/fs/cgroup/unified{path}/cpu.max"]
    for file in candidates:
        if os.path.exists(file):
            print(open(file).read().split()[0])
            raise SystemExit
print("none")
"#,
    )
    .unwrap();
    let deploy = |cpu: &str| {
        json!({"service": "bounded", "envProcess": "python3 quota.py",
               "envVars": {"mode": "classic"}, "limits": {"cpu": cpu},
               "workingDir": scripts.display().to_string()})
    };
    let deployed = node.deploy("POST", deploy("100m")).await;
    assert_eq!(deployed.status, 201, "{}", deployed.text());
    assert_eq!(deployed.json()["limits"]["cpu"], "100m");
    // A tenth of a core: 10 ms of every 100 ms period.
    let reply = node.post("/function/bounded", "").await;
    assert_eq!((reply.status, reply.text().trim()), (200, "10000"));
    let cores = std::thread::available_parallelism().unwrap().get();
    for (cpu, why) in [
        ("5m", "smallest enforceable limit".to_string()),
        ("lots", "not a number of cores".to_string()),
        ("4096", format!("at most {cores} cores")),
    ] {
        let refused = node.deploy("PUT", deploy(cpu)).await;
        assert_eq!(refused.status, 400, "{cpu}: {}", refused.text());
        assert!(refused.text().contains(&why), "{cpu}: {}", refused.text());
    }
    // Refused updates left the function as it was.
    let reply = node.post("/function/bounded", "").await;
    assert_eq!(reply.text().trim(), "10000");
}

/// A node with `config` and the `hello` component deployed.
async fn node_with_hello(dir: &std::path::Path, config: &str) -> Node {
    let node = Node::start(
        dir,
        Options {
            config: Some(config.into()),
            ..Options::default()
        },
    );
    assert_eq!(
        node.upload("hello", baton_guests::HELLO, json!({}))
            .await
            .status,
        201
    );
    node
}

fn fastrand_u16() -> u16 {
    (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos()
        % 65_000) as u16
}
