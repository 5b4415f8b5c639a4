//! Invocation through the gateway: examples, paths, limits, async calls, metrics.

use crate::harness::{Node, Options};
use bytes::Bytes;
use serde_json::json;

#[tokio::test]
async fn the_examples_are_served_after_up() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        dir.path(),
        Options {
            examples: true,
            ..Options::default()
        },
    );
    assert_eq!(
        node.names().await,
        [
            "allreduce",
            "counter",
            "echo",
            "hello",
            "json-transform",
            "python-classic",
            "python-http"
        ]
    );

    let hello = node.get("/function/hello?name=Ada").await;
    assert_eq!(
        (hello.status, hello.text().as_str()),
        (200, "Hello, Ada!\n")
    );
    assert_eq!(
        hello.header("x-baton-cold-start"),
        "true",
        "the first request creates the sandbox"
    );
    assert!(!hello.header("x-call-id").is_empty());
    assert!(hello.header("x-duration-seconds").parse::<f64>().is_ok());
    assert_eq!(
        node.get("/function/hello")
            .await
            .header("x-baton-cold-start"),
        "false"
    );

    let transformed = node
        .post("/function/json-transform", r#"{"a":"b","list":["c",1]}"#)
        .await;
    assert_eq!(
        transformed.json(),
        json!({"result": {"a": "B", "list": ["C", 1]}, "strings_transformed": 2})
    );
    let not_json = node.post("/function/json-transform", "{nope").await;
    assert_eq!(not_json.status, 400);

    let classic = node
        .post("/function/python-classic/sub?x=1", "one two\nthree")
        .await;
    assert_eq!(classic.status, 200, "{}", classic.text());
    assert_eq!(classic.json()["words"], 3);
    assert_eq!(classic.json()["lines"], 2);
    assert_eq!(classic.json()["path"], "/sub");
    assert_eq!(classic.json()["query"], "x=1");

    let first = node.post("/function/python-http/a?b=c", "xyz").await;
    let second = node.get("/function/python-http").await;
    assert_eq!(first.json()["path"], "/a?b=c");
    assert_eq!(first.json()["body_bytes"], 3);
    assert_eq!(
        second.json()["pid"],
        first.json()["pid"],
        "http mode keeps one warm process"
    );
    assert_eq!(second.json()["served_by_this_process"], 2);
}

#[tokio::test]
async fn path_query_method_and_get_bodies_reach_the_function() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    assert_eq!(
        node.upload("echo", baton_guests::ECHO, json!({}))
            .await
            .status,
        201
    );
    let reply = node
        .send(
            "GET",
            "/function/echo/deep/path?q=1&r=2",
            &[("content-type", "text/x-test")],
            "get-body",
        )
        .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "get-body");
    assert_eq!(reply.header("x-echo-method"), "GET");
    assert_eq!(reply.header("x-echo-path"), "/deep/path?q=1&r=2");
    assert_eq!(reply.header("content-type"), "text/x-test");
    let root = node
        .send("DELETE", "/function/echo/", &[], Bytes::new())
        .await;
    assert_eq!(root.header("x-echo-path"), "/");
    assert_eq!(root.header("x-echo-method"), "DELETE");
}

#[tokio::test]
async fn unknown_functions_and_oversized_bodies_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    let missing = node.get("/function/ghost").await;
    assert_eq!(missing.status, 404);
    assert!(missing.text().contains("ghost"));
    node.upload("echo", baton_guests::ECHO, json!({})).await;
    let cat = json!({"service": "cat", "envProcess": "cat", "envVars": {"mode": "classic"}});
    assert_eq!(node.deploy("POST", cat).await.status, 201);
    // A declared length over the limit is refused before the body is read.
    let refused = raw_status(&node.url, "/function/echo", 17 << 20).await;
    assert!(refused.starts_with("HTTP/1.1 413"), "{refused}");
    assert!(refused.contains("exceeds"), "{refused}");
    // A chunked body, whose length is not declared, is cut off once it passes the limit.
    let chunked = raw_chunked_status(&node.url, "/function/echo", 17 << 20).await;
    assert!(chunked.starts_with("HTTP/1.1 413"), "{chunked}");
    // The node still serves afterwards.
    assert_eq!(node.post("/function/echo", "ok").await.text(), "ok");
    assert_eq!(node.post("/function/cat", "cat me").await.text(), "cat me");
    assert!(
        raw_status(&node.url, "/function/cat", 17 << 20)
            .await
            .starts_with("HTTP/1.1 413")
    );
}

#[tokio::test]
async fn async_invocations_answer_202_and_deliver_to_the_callback() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    node.upload("echo", baton_guests::ECHO, json!({})).await;

    let callbacks = crate::harness::Callbacks::start(None).await;
    let callback = callbacks.url.clone();

    let accepted = node
        .send(
            "POST",
            "/async-function/echo/x",
            &[("x-callback-url", &callback)],
            "later",
        )
        .await;
    assert_eq!(accepted.status, 202);
    let call_id = accepted.header("x-call-id").to_owned();
    assert!(!call_id.is_empty());
    let (headers, body) = callbacks
        .of(&call_id, std::time::Duration::from_secs(30))
        .await
        .expect("no callback within 30 s");
    assert_eq!(body, "later");
    assert_eq!(headers["x-call-id"], call_id.as_str());
    assert_eq!(headers["x-function-status"], "200");
    assert_eq!(headers["x-function-name"], "echo");

    assert_eq!(node.post("/async-function/ghost", "x").await.status, 404);
    let bad = node
        .send(
            "POST",
            "/async-function/echo",
            &[("x-callback-url", "ftp://x")],
            "x",
        )
        .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn metrics_use_openfaas_names_and_count_cold_starts() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    node.upload("hello", baton_guests::HELLO, json!({})).await;
    for _ in 0..3 {
        assert_eq!(node.get("/function/hello").await.status, 200);
    }
    node.get("/function/ghost").await;
    let metrics = node.get("/metrics").await.text();
    assert!(
        metrics
            .contains(r#"gateway_function_invocation_total{function_name="hello",code="200"} 3"#),
        "{metrics}"
    );
    assert!(
        metrics.contains("gateway_functions_seconds_bucket{"),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"baton_cold_starts_total{function_name="hello"} 1"#),
        "{metrics}"
    );
    assert!(
        metrics.contains(r#"gateway_service_count{function_name="hello"} 1"#),
        "{metrics}"
    );
    // OpenFaaS's exact name (dashboards query it), not OpenMetrics' `…_started_total`.
    assert!(
        metrics.contains(r#"gateway_function_invocation_started{function_name="hello"} 3"#),
        "{metrics}"
    );
    assert!(!metrics.contains("invocation_started_total"), "{metrics}");
    assert!(
        !metrics.contains("ghost"),
        "unknown names must not create series"
    );
    let listed = node.get("/system/function/hello").await.json();
    assert_eq!(listed["invocationCount"], 3);
    assert_eq!(node.get("/healthz").await.status, 200);
    // A deleted function's gauge goes with it.
    let reply = node.remove("hello").await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    let metrics = node.get("/metrics").await.text();
    assert!(!metrics.contains("gateway_service_count{"), "{metrics}");
}

/// Sends a request head declaring `length` bytes plus the first few bytes of the body, and
/// returns what the node answers, as a client that does not wait to finish sending sees it.
async fn raw_status(url: &str, path: &str, length: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head =
        format!("POST {path} HTTP/1.1\r\nhost: {address}\r\ncontent-length: {length}\r\n\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[b'x'; 1024]).await.unwrap();
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(30), stream.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

/// Streams `total` bytes with chunked transfer encoding and returns the node's answer.
async fn raw_chunked_status(url: &str, path: &str, total: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let address = url.trim_start_matches("http://").to_owned();
    let stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let head =
        format!("POST {path} HTTP/1.1\r\nhost: {address}\r\ntransfer-encoding: chunked\r\n\r\n");
    tokio::spawn(async move {
        writer.write_all(head.as_bytes()).await?;
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..total / chunk.len() {
            writer
                .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            writer.write_all(&chunk).await?;
            writer.write_all(b"\r\n").await?;
        }
        writer.write_all(b"0\r\n\r\n").await
    });
    let mut answer = vec![0; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(30), reader.read(&mut answer))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&answer[..read]).into_owned()
}

/// An OpenFaaS http template's server: it listens where the template's `upstream_url` says
/// (5000, fixed), or on `PORT` when there is none, and says what it was told.
const TEMPLATE_SERVER: &str = r#"import http.server, os, uuid
me = uuid.uuid4().hex
class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = f"{os.environ.get('PORT')} {os.environ.get('http_port')} {me}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
port = int(os.environ["PORT"]) if os.environ.get("FIXED") != "1" else 5000
http.server.HTTPServer(("127.0.0.1", port), Handler).serve_forever()
"#;

#[tokio::test]
async fn http_templates_listen_where_upstream_url_says_each_sandbox_on_its_own() {
    use crate::harness::eventually;
    use std::time::Duration;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    let code = dir.path().join("template");
    std::fs::create_dir_all(&code).unwrap();
    std::fs::write(code.join("index.py"), TEMPLATE_SERVER).unwrap();
    let deploy = |name: &str, env: serde_json::Value, min: u32| {
        json!({"service": name, "envProcess": "python3 index.py", "envVars": env,
               "labels": {"com.openfaas.scale.min": min.to_string()},
               "workingDir": code.display().to_string()})
    };
    // Two sandboxes of a template whose server always takes port 5000.
    let fixed = deploy(
        "fixed",
        json!({"mode": "http", "upstream_url": "http://127.0.0.1:5000", "FIXED": "1"}),
        2,
    );
    let deployed = node.deploy("POST", fixed).await;
    assert_eq!(deployed.status, 201, "{}", deployed.text());
    let both_ready = eventually(Duration::from_secs(60), || async {
        node.get("/system/function/fixed").await.json()["availableReplicas"] == json!(2)
    })
    .await;
    assert!(
        both_ready,
        "{}",
        node.get("/system/function/fixed").await.text()
    );
    for _ in 0..5 {
        let reply = node.get("/function/fixed").await;
        assert_eq!(reply.status, 200, "{}", reply.text());
        assert!(reply.text().starts_with("5000 5000 "), "{}", reply.text());
    }
    // Without upstream_url the platform picks the port and tells it both ways.
    let picked = deploy("picked", json!({"mode": "http"}), 0);
    assert_eq!(node.deploy("POST", picked).await.status, 201);
    let reply = node.get("/function/picked").await;
    let text = reply.text();
    let told: Vec<&str> = text.split(' ').collect();
    assert_eq!(told[0], told[1], "{}", reply.text());
    assert!(told[0].parse::<u16>().is_ok(), "{}", reply.text());
    // A malformed upstream_url is refused at deployment.
    let bad = deploy(
        "bad",
        json!({"mode": "http", "upstream_url": "http://10.1.1.1:5000"}),
        0,
    );
    let refused = node.deploy("POST", bad).await;
    assert_eq!(refused.status, 400, "{}", refused.text());
    assert!(
        refused.text().contains("upstream_url"),
        "{}",
        refused.text()
    );
}

/// A component built against `wasi:config/store` (Spin 3's version) reads its environment
/// and its secrets through it, and logs through `wasi:logging` (wasmCloud's), unchanged.
#[tokio::test]
async fn components_read_config_and_log_through_the_standard_interfaces() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    let secret = json!({"name": "api-token", "value": "t0ken"}).to_string();
    let created = node.send("POST", "/system/secrets", &[], secret).await;
    assert_eq!(created.status, 202, "{}", created.text());
    let reply = node
        .upload(
            "reader",
            baton_guests::CONFIG_READER,
            json!({"envVars": {"GREETING": "hi"}, "secrets": ["api-token"]}),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    for (key, status, value) in [
        ("GREETING", 200, "hi"),
        ("api-token", 200, "t0ken"),
        ("missing", 404, "no missing\n"),
    ] {
        let reply = node.get(&format!("/function/reader/get?key={key}")).await;
        assert_eq!(
            (reply.status, reply.text().as_str()),
            (status, value),
            "{key}"
        );
    }
    let keys = node.get("/function/reader/keys").await.text();
    assert_eq!(keys.lines().collect::<Vec<_>>(), ["GREETING", "api-token"]);
    // wasi:logging (wasmCloud's) lands in the function's logs.
    let logged = node
        .get("/function/reader/log?message=disk-almost-full")
        .await;
    assert_eq!(logged.status, 200, "{}", logged.text());
    let logs = node.get("/system/logs?name=reader&tail=-1").await.text();
    assert!(
        logs.lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .any(|l| l["text"] == "[warn] reader: disk-almost-full" && l["stream"] == "stderr"),
        "{logs}"
    );
}

/// The metric family a name in a query or an exposition belongs to.
fn family(name: &str) -> &str {
    ["_bucket", "_count", "_sum", "_total"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

/// `dashboards/baton.json` queries only metrics a node exports, by their exported names.
#[tokio::test]
async fn the_grafana_dashboard_queries_only_what_a_node_exports() {
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../../../dashboards/baton.json")).unwrap();
    let mut queries = Vec::new();
    fn walk(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, value) in map {
                    match (key.as_str(), value) {
                        ("expr" | "definition", serde_json::Value::String(text)) => {
                            out.push(text.clone())
                        }
                        _ => walk(value, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    walk(&dashboard, &mut queries);
    assert!(queries.len() >= 10, "{queries:?}");
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    // A node in use: one function called once (a cold start).
    node.upload("hello", baton_guests::HELLO, json!({})).await;
    assert_eq!(node.get("/function/hello").await.status, 200);
    let exposition = node.get("/metrics").await.text();
    let exported: std::collections::BTreeSet<&str> = exposition
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split_whitespace().next())
        .map(family)
        .collect();
    for query in &queries {
        for name in query
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|t| t.starts_with("gateway_") || t.starts_with("baton_"))
        {
            assert!(
                exported.contains(family(name)),
                "the dashboard queries {name}, which a node does not export ({query})"
            );
        }
    }
}
