//! The /system API: validation, conflicts, auth, logs.

use crate::harness::{BATON, Node, Options, eventually, next_line};
use serde_json::json;
use std::time::Duration;

#[tokio::test]
async fn bad_deployments_are_refused_with_a_reason_and_store_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"\0asm\x0d\0\x01\0garbage").unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let text = dir.path().join("text.wasm");
    std::fs::write(&text, b"hello").unwrap();
    let cases = [
        (
            json!({"service": "../x", "image": baton_guests::HELLO_PATH}),
            "../x",
        ),
        (
            json!({"service": "Hello", "image": baton_guests::HELLO_PATH}),
            "must match",
        ),
        (
            json!({"service": "a".repeat(64), "image": baton_guests::HELLO_PATH}),
            "longer than 63",
        ),
        (
            json!({"service": "j", "image": junk}),
            "not a valid WebAssembly component",
        ),
        (json!({"service": "c", "image": core}), "core wasm module"),
        (json!({"service": "t", "image": text}), "not WebAssembly"),
        (
            json!({"service": "m", "image": "/no/such/file.wasm"}),
            "cannot read component file",
        ),
        (
            json!({"service": "r", "image": "docker.io/library/nginx"}),
            "cannot read component file",
        ),
        (
            json!({"service": "u", "image": "https://x/y.wasm"}),
            "does not pull",
        ),
        (
            json!({"service": "l", "image": baton_guests::HELLO_PATH, "limits": {"memory": "lots"}}),
            "limits.memory",
        ),
        (
            json!({"service": "e", "image": baton_guests::HELLO_PATH, "envVars": {"exec_timeout": "soon"}}),
            "exec_timeout",
        ),
        (
            json!({"service": "p", "envProcess": "no-such-binary-xyz"}),
            "not on PATH",
        ),
        (
            json!({"service": "q", "envProcess": "cat", "envVars": {"mode": "cgi"}}),
            "not a watchdog mode",
        ),
        (
            json!({"service": "k", "image": baton_guests::HELLO_PATH, "imagee": "typo"}),
            "unknown field",
        ),
    ];
    for (body, expected) in cases {
        let reply = node.deploy("POST", body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.text());
        assert!(
            reply.text().contains(expected),
            "{body}: {:?} lacks {expected:?}",
            reply.text()
        );
    }
    let not_json = node.send("POST", "/system/functions", &[], "{").await;
    assert_eq!(not_json.status, 400);
    let upload = node
        .send(
            "POST",
            "/system/functions?service=up",
            &[("content-type", "application/wasm")],
            "garbage",
        )
        .await;
    assert_eq!(upload.status, 400);
    assert!(node.names().await.is_empty(), "nothing is registered");
    let artifacts = std::fs::read_dir(dir.path().join("artifacts"))
        .unwrap()
        .count();
    assert_eq!(artifacts, 0, "no refused component is kept");
}

#[tokio::test]
async fn create_update_delete_follow_openfaas_semantics() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    let spec = json!({"service": "hello", "image": format!("file://{}", baton_guests::HELLO_PATH), "envVars": {"exec_timeout": "2s"}, "limits": {"memory": "64Mi"}, "labels": {"team": "a"}});
    let created = node.deploy("POST", spec.clone()).await;
    assert_eq!(created.status, 201, "{}", created.text());
    assert_eq!(created.json()["version"], 1);
    assert_eq!(node.deploy("POST", spec.clone()).await.status, 409);
    let updated = node.deploy("PUT", spec.clone()).await;
    assert_eq!(updated.status, 202);
    assert_eq!(updated.json()["version"], 2);
    let mut missing = spec.clone();
    missing["service"] = "other".into();
    assert_eq!(node.deploy("PUT", missing).await.status, 404);

    let described = node.get("/system/function/hello").await.json();
    assert_eq!(described["timeoutMs"], 2000);
    assert_eq!(described["limits"]["memory"], "64Mi");
    assert_eq!(described["labels"]["team"], "a");
    assert_eq!(described["runtime"], "wasm");
    assert_eq!(node.get("/system/function/ghost").await.status, 404);
    let info = node.get("/system/info").await.json();
    assert_eq!(info["provider"]["provider"], "baton");

    let delete = |name: &str| json!({ "functionName": name }).to_string();
    assert_eq!(
        node.send("DELETE", "/system/functions", &[], delete("hello"))
            .await
            .status,
        202
    );
    assert_eq!(
        node.send("DELETE", "/system/functions", &[], delete("hello"))
            .await
            .status,
        404
    );
    assert_eq!(node.get("/function/hello").await.status, 404);
}

#[tokio::test]
async fn the_token_guards_system_routes() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(
        dir.path(),
        Options {
            token: Some("s3cret".into()),
            ..Options::default()
        },
    );
    let url = node.url.clone();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let status = |auth: Option<&'static str>| {
        let client = client.clone();
        let url = url.clone();
        async move {
            let mut request = http::Request::get(format!("{url}/system/functions"));
            if let Some(auth) = auth {
                request = request.header("authorization", auth);
            }
            client
                .request(request.body(Default::default()).unwrap())
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(status(None).await, 401);
    assert_eq!(status(Some("Bearer wrong")).await, 401);
    assert_eq!(status(Some("Bearer s3cret")).await, 200);
    // admin:s3cret, as faas-cli login sends it.
    assert_eq!(status(Some("Basic YWRtaW46czNjcmV0")).await, 200);
    assert_eq!(node.get("/healthz").await.status, 200);
}

#[test]
fn listening_beyond_loopback_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(BATON)
        .arg("up")
        .env("BATON_LISTEN", "0.0.0.0:0")
        .env("BATON_DATA_DIR", dir.path())
        .env_remove("BATON_TOKEN")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("without a token"));
}

#[tokio::test]
async fn logs_show_what_functions_print() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    node.upload("bad", baton_guests::MISBEHAVE, json!({})).await;
    assert_eq!(node.get("/function/bad/trap").await.status, 500);
    let logs = node.get("/system/logs?name=bad&tail=20").await;
    assert_eq!(logs.status, 200);
    assert_eq!(logs.header("content-type"), "application/x-ndjson");
    let lines: Vec<serde_json::Value> = logs
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(
        lines.iter().any(|l| l["text"]
            .as_str()
            .unwrap()
            .contains("misbehave asked to trap")
            && l["stream"] == "stderr"
            && l["instance"].as_str().unwrap().starts_with("bad-")),
        "{lines:?}"
    );
    // faas-cli asks for everything with tail=-1.
    let all = node.get("/system/logs?name=bad&tail=-1").await;
    assert_eq!(all.status, 200, "{}", all.text());
    assert_eq!(all.text(), logs.text());
    assert_eq!(node.get("/system/logs?name=ghost").await.status, 404);

    // since and instance filter; bad values are refused with the reason.
    let instance = lines[0]["instance"].as_str().unwrap().to_owned();
    let mine = node
        .get(&format!(
            "/system/logs?name=bad&tail=-1&instance={instance}"
        ))
        .await;
    assert_eq!(mine.text(), logs.text());
    let other = node.get("/system/logs?name=bad&instance=bad-0").await;
    assert_eq!((other.status, other.text()), (200, String::new()));
    let future = node
        .get("/system/logs?name=bad&since=2999-01-01T00:00:00Z")
        .await;
    assert_eq!((future.status, future.text()), (200, String::new()));
    let past = node
        .get("/system/logs?name=bad&since=2000-01-01T02:00:00%2B02:00")
        .await;
    assert_eq!(past.text(), logs.text());
    for bad in ["since=yesterday", "follow=maybe"] {
        let reply = node.get(&format!("/system/logs?name=bad&{bad}")).await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.text());
        assert!(
            reply.text().contains(bad.split('=').next().unwrap()),
            "{}",
            reply.text()
        );
    }
}

#[tokio::test]
async fn followed_logs_stream_new_lines_as_functions_print_them() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    node.upload("bad", baton_guests::MISBEHAVE, json!({})).await;
    assert_eq!(node.get("/function/bad/trap").await.status, 500);
    // What faas-cli sends: everything, then follow.
    let mut lines = node
        .lines("/system/logs?name=bad&tail=-1&follow=true")
        .await;
    // A trap prints several lines; the one that names it comes once per call.
    let trapped = async |lines: &mut tokio::sync::mpsc::Receiver<String>| loop {
        let line = next_line(lines).await;
        if line["text"].as_str().unwrap().contains("asked to trap") {
            return line;
        }
    };
    let first = trapped(&mut lines).await;
    assert_eq!(node.get("/function/bad/trap").await.status, 500);
    let second = trapped(&mut lines).await;
    assert!(second["timestamp"].as_str() >= first["timestamp"].as_str());
    assert_eq!(second["stream"], "stderr");

    // `baton logs -f` prints them too, as they come.
    let mut cli = std::process::Command::new(BATON)
        .args([
            "logs",
            "bad",
            "--follow",
            "--tail",
            "0",
            "--gateway",
            &node.url,
        ])
        .env("BATON_TOKEN", node.token.as_deref().unwrap())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = cli.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    // The CLI may connect after a call: call until a line naming the trap reaches it.
    let mut printed = None;
    'calls: for _ in 0..600 {
        assert_eq!(node.get("/function/bad/trap").await.status, 500);
        while let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            if line.contains("asked to trap") {
                printed = Some(line);
                break 'calls;
            }
        }
    }
    let _ = cli.kill();
    let _ = cli.wait();
    let printed = printed.expect("baton logs -f printed nothing");
    assert!(
        printed.contains("[bad-") && printed.contains("asked to trap"),
        "{printed}"
    );
}

/// What faas-cli asks about namespaces and readiness (faas-cli `proxy/namespaces.go`,
/// `proxy/describe.go`, `commands/ready.go`: ready when `availableReplicas` > 0).
#[tokio::test]
async fn one_namespace_and_functions_at_zero_are_ready_as_faas_cli_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    assert_eq!(
        node.upload("hello", baton_guests::HELLO, json!({}))
            .await
            .status,
        201
    );
    let namespaces = node.get("/system/namespaces").await;
    assert_eq!(namespaces.status, 200, "{}", namespaces.text());
    assert_eq!(namespaces.json(), json!(["baton"]));
    for (query, status) in [
        ("", 200),
        ("?namespace=", 200),
        ("?namespace=baton", 200),
        ("?namespace=openfaas-fn", 400),
    ] {
        let reply = node.get(&format!("/system/function/hello{query}")).await;
        assert_eq!(reply.status, status, "{query}: {}", reply.text());
    }
    let foreign = node.get("/system/functions?namespace=other").await;
    assert!(
        foreign.text().contains("one namespace"),
        "{}",
        foreign.text()
    );
    // Scaled to zero, it starts on demand: ready for faas-cli, with no sandbox yet.
    let hello = node.get("/system/function/hello").await.json();
    assert_eq!(
        (
            hello["replicas"].as_u64(),
            hello["availableReplicas"].as_u64()
        ),
        (Some(0), Some(1)),
        "{hello}"
    );
    // A deployment into another namespace is refused, not placed in Baton's.
    let other = json!({"service": "cat", "envProcess": "cat", "namespace": "team-a"});
    let reply = node.deploy("POST", other).await;
    assert_eq!(reply.status, 400, "{}", reply.text());
    assert!(reply.text().contains("team-a"), "{}", reply.text());
}

/// `POST /system/scale-function/{name}` as OpenFaaS's gateway takes it
/// (`ScaleServiceRequest`: `serviceName`, `serviceNamespace`, `replicas`).
#[tokio::test]
async fn scale_function_sets_the_scale_by_hand_within_the_functions_maximum() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    let settings = json!({"labels": {"com.openfaas.scale.max": "3"}});
    assert_eq!(
        node.upload("hello", baton_guests::HELLO, settings)
            .await
            .status,
        201
    );
    let node = &node;
    let scale = |name: &str, body: serde_json::Value| {
        let path = format!("/system/scale-function/{name}");
        async move { node.send("POST", &path, &[], body.to_string()).await }
    };
    let reply = scale("hello", json!({"serviceName": "hello", "replicas": 2})).await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    let replicas = || async {
        node.get("/system/function/hello").await.json()["replicas"]
            .as_u64()
            .unwrap()
    };
    assert!(
        eventually(Duration::from_secs(60), || async { replicas().await == 2 }).await,
        "scaled to 2"
    );
    // Above the maximum: the maximum.
    let reply = scale("hello", json!({"serviceName": "hello", "replicas": 5})).await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    assert!(
        eventually(Duration::from_secs(60), || async { replicas().await == 3 }).await,
        "held at the maximum"
    );
    // Bad requests say why; nothing changes.
    for (name, body, status) in [
        ("hello", json!({"serviceName": "other", "replicas": 1}), 400),
        (
            "hello",
            json!({"serviceName": "hello", "serviceNamespace": "x", "replicas": 1}),
            400,
        ),
        (
            "hello",
            json!({"serviceName": "hello", "replicas": 20000}),
            400,
        ),
        ("hello", json!({"serviceName": "hello"}), 400),
        ("ghost", json!({"serviceName": "ghost", "replicas": 1}), 404),
    ] {
        let reply = scale(name, body.clone()).await;
        assert_eq!(reply.status, status, "{body}: {}", reply.text());
    }
    assert_eq!(replicas().await, 3);
}

/// faas-cli's `secret create/list/update/remove` (`proxy/secret.go`: POST, GET, PUT, DELETE
/// on `/system/secrets` with `{"name", "value"}`), and a process function that reads its
/// secret where OpenFaaS functions do.
#[tokio::test]
async fn secrets_are_files_for_functions_and_never_listed_with_their_values() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    let secrets = |method: &'static str, body: serde_json::Value| {
        let node = &node;
        async move {
            node.send(
                method,
                "/system/secrets",
                &[("content-type", "application/json")],
                body.to_string(),
            )
            .await
        }
    };
    let create = secrets("POST", json!({"name": "api-key", "value": "s3cr3t"})).await;
    assert_eq!(create.status, 202, "{}", create.text());
    let again = secrets("POST", json!({"name": "api-key", "value": "x"})).await;
    assert_eq!(again.status, 409, "{}", again.text());
    for (method, body, status, why) in [
        (
            "PUT",
            json!({"name": "nope", "value": "x"}),
            404,
            "not found",
        ),
        (
            "POST",
            json!({"name": "../etc", "value": "x"}),
            400,
            "invalid",
        ),
        (
            "POST",
            json!({"name": "a", "namespace": "openfaas-fn", "value": "x"}),
            400,
            "namespace",
        ),
        ("POST", json!({"name": "a"}), 400, "no value"),
        ("DELETE", json!({"name": "nope"}), 404, "not found"),
    ] {
        let reply = secrets(method, body.clone()).await;
        assert_eq!(reply.status, status, "{method} {body}: {}", reply.text());
        assert!(
            reply.text().contains(why),
            "{method} {body}: {}",
            reply.text()
        );
    }
    let listed = node.get("/system/secrets").await;
    assert_eq!(
        listed.json(),
        json!([{"name": "api-key", "namespace": "baton"}])
    );
    assert!(!listed.text().contains("s3cr3t"));

    let scripts = dir.path().join("reader");
    std::fs::create_dir_all(&scripts).unwrap();
    std::fs::write(
        scripts.join("read.sh"),
        "cat /var/openfaas/secrets/api-key; echo; echo \"$BATON_SECRETS_DIR\"\n\
         ls /var/openfaas/secrets\n\
         (echo x > /var/openfaas/secrets/api-key) 2>/dev/null && echo writable || echo read-only\n",
    )
    .unwrap();
    let reader = |secrets: serde_json::Value| {
        json!({"service": "reader", "envProcess": "sh read.sh", "secrets": secrets,
               "envVars": {"mode": "classic"}, "workingDir": scripts.display().to_string()})
    };
    let missing = node
        .deploy("POST", reader(json!(["api-key", "db-password"])))
        .await;
    assert_eq!(missing.status, 400, "{}", missing.text());
    assert!(missing.text().contains("db-password"), "{}", missing.text());
    let deployed = node.deploy("POST", reader(json!(["api-key"]))).await;
    assert_eq!(deployed.status, 201, "{}", deployed.text());
    assert_eq!(deployed.json()["secrets"], json!(["api-key"]));
    let read = node.post("/function/reader", "").await;
    assert_eq!(
        read.text(),
        "s3cr3t\n/var/openfaas/secrets\napi-key\nread-only\n",
        "{}",
        read.text()
    );
    // In use: not removed. Updated: the function sees it once redeployed.
    let in_use = secrets("DELETE", json!({"name": "api-key"})).await;
    assert_eq!(in_use.status, 409, "{}", in_use.text());
    assert!(in_use.text().contains("reader"), "{}", in_use.text());
    let update = secrets("PUT", json!({"name": "api-key", "value": "rotated"})).await;
    assert_eq!(update.status, 202, "{}", update.text());
    assert_eq!(
        node.deploy("PUT", reader(json!(["api-key"]))).await.status,
        202
    );
    let read = node.post("/function/reader", "").await;
    assert!(read.text().starts_with("rotated\n"), "{}", read.text());
    // At rest the values are sealed: the registry holds neither, the key is private.
    let registry = std::fs::read(dir.path().join("registry.redb")).unwrap();
    for value in [&b"s3cr3t"[..], b"rotated"] {
        assert!(
            !registry.windows(value.len()).any(|w| w == value),
            "a value shows at rest"
        );
    }
    let key = std::fs::metadata(dir.path().join("secrets.key")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key.permissions()) & 0o777,
        0o600
    );
    // Gone with the function: its files, then the secret.
    assert_eq!(node.remove("reader").await.status, 202);
    let files = dir.path().join("run/secrets");
    let cleared = crate::harness::eventually(std::time::Duration::from_secs(30), || async {
        std::fs::read_dir(&files).map_or(true, |mut d| d.next().is_none())
    })
    .await;
    assert!(cleared, "secret files outlived their function");
    let removed = secrets("DELETE", json!({"name": "api-key"})).await;
    assert_eq!(removed.status, 202, "{}", removed.text());
    assert_eq!(node.get("/system/secrets").await.json(), json!([]));
}
