//! Registrations survive restarts and kill -9; concurrent changes stay consistent; idle
//! sandboxes go away.

use crate::harness::{Callbacks, Node, Options, eventually};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

#[tokio::test]
async fn deployments_survive_a_restart_without_recompiling() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    assert_eq!(
        node.upload(
            "hello",
            baton_guests::HELLO,
            json!({"envVars": {"exec_timeout": "3s"}})
        )
        .await
        .status,
        201
    );
    let process = json!({"service": "cat", "envProcess": "cat", "envVars": {"mode": "classic"}});
    assert_eq!(node.deploy("POST", process).await.status, 201);
    let compiled = || {
        std::fs::read_dir(dir.path().join("compiled"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .map(|p| p.metadata().unwrap().modified().unwrap())
            .collect::<Vec<_>>()
    };
    let before = compiled();
    assert_eq!(before.len(), 1);
    node.kill();

    let node = Node::start(dir.path(), Options::default());
    assert_eq!(node.names().await, ["cat", "hello"]);
    assert_eq!(node.get("/function/hello").await.text(), "Hello, world!\n");
    assert_eq!(node.post("/function/cat", "x").await.text(), "x");
    assert_eq!(
        node.get("/system/function/hello").await.json()["timeoutMs"],
        3000
    );
    assert_eq!(
        compiled(),
        before,
        "the compiled component was loaded from the cache"
    );
}

#[tokio::test]
async fn every_acknowledged_deployment_survives_kill_9_mid_stream() {
    let dir = tempfile::tempdir().unwrap();
    let node = Arc::new(Node::start(dir.path(), Options::default()));
    let pid = node.process.pid() as i32;
    let acknowledged = Arc::new(std::sync::Mutex::new(Vec::new()));
    let deployer = {
        let (node, acknowledged) = (node.clone(), acknowledged.clone());
        tokio::spawn(async move {
            let client =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .build_http();
            for i in 0..1000 {
                let name = format!("f{i}");
                let body =
                    json!({"service": name, "envProcess": "cat", "envVars": {"mode": "classic"}})
                        .to_string();
                let request = http::Request::post(format!("{}/system/functions", node.url))
                    .header(
                        "authorization",
                        format!("Bearer {}", node.token.as_ref().unwrap()),
                    )
                    .body(http_body_util::Full::new(bytes::Bytes::from(body)))
                    .unwrap();
                match client.request(request).await {
                    Ok(response) if response.status() == 201 => {
                        acknowledged.lock().unwrap().push(name)
                    }
                    _ => return,
                }
            }
        })
    };
    assert!(
        eventually(Duration::from_secs(60), || async {
            acknowledged.lock().unwrap().len() >= 15
        })
        .await
    );
    // SAFETY: kill has no memory-safety preconditions; pid is our own child.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    deployer.await.unwrap();
    drop(node);
    let acked: Vec<String> = acknowledged.lock().unwrap().clone();
    let node = Node::start(dir.path(), Options::default());
    let names = node.names().await;
    for name in &acked {
        assert!(
            names.contains(name),
            "{name} was acknowledged but is gone after kill -9"
        );
    }
}

#[tokio::test]
async fn concurrent_changes_to_one_name_leave_a_consistent_registry() {
    let dir = tempfile::tempdir().unwrap();
    let node = Arc::new(Node::start(dir.path(), Options::default()));
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let node = node.clone();
            tokio::spawn(async move {
                let spec = json!({"service": "contested", "envProcess": "cat", "envVars": {"mode": "classic", "writer": i.to_string()}});
                match i % 3 {
                    0 => node.deploy("POST", spec).await.status,
                    1 => node.deploy("PUT", spec).await.status,
                    _ => node.send("DELETE", "/system/functions", &[], json!({"functionName": "contested"}).to_string()).await.status,
                }
            })
        })
        .collect();
    for task in tasks {
        let status = task.await.unwrap();
        assert!(
            [201, 202, 404, 409].contains(&status),
            "unexpected status {status}"
        );
    }
    let listed = node.names().await;
    let described = node.get("/system/function/contested").await;
    let invoked = node.post("/function/contested", "x").await;
    if listed.contains(&"contested".to_owned()) {
        assert_eq!(described.status, 200);
        assert_eq!(invoked.text(), "x");
    } else {
        assert_eq!((described.status, invoked.status), (404, 404));
    }
    let before = described.json_or_null();
    let dir_path = Arc::try_unwrap(node).ok().unwrap().kill();
    let node = Node::start(&dir_path, Options::default());
    assert_eq!(
        node.names().await,
        listed,
        "the store agrees with what was served"
    );
    let after = node.get("/system/function/contested").await.json_or_null();
    assert_eq!(after["envVars"], before["envVars"]);
    assert_eq!(after["version"], before["version"]);
}

#[tokio::test]
async fn idle_sandboxes_scale_to_zero_and_come_back_cold() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[worker]\nreap_interval = \"100ms\"\n".to_owned();
    let node = Node::start(
        dir.path(),
        Options {
            config: Some(config),
            ..Options::default()
        },
    );
    // The function's files live outside the node's data directory, which functions never
    // see, readable by the function's own user.
    let code = tempfile::tempdir().unwrap();
    std::fs::set_permissions(
        code.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    std::fs::write(
        code.path().join("server.py"),
        baton_guests::python::HTTP_SERVER,
    )
    .unwrap();
    let spec = json!({"service": "warm", "envProcess": "python3 server.py", "workingDir": code.path().display().to_string(), "envVars": {"mode": "http"}, "labels": {"com.openfaas.scale.zero-duration": "500ms"}});
    assert_eq!(node.deploy("POST", spec).await.status, 201);
    // The first call starts a sandbox (how long it then lives is the grace's business: on a
    // loaded machine 500 ms may pass before a second request could look).
    let first = node.get("/function/warm").await;
    assert_eq!(first.status, 200, "{}", first.text());
    assert_eq!(first.header("x-baton-cold-start"), "true");
    // A deadline against hangs: on a loaded machine the autoscaler's decisions come late.
    let scaled_to_zero = eventually(Duration::from_secs(90), || async {
        node.get("/system/function/warm").await.json()["replicas"] == 0
    })
    .await;
    assert!(scaled_to_zero, "the idle process was not reaped");
    // The control plane decides at once; its gateway hears of it a moment later, and until
    // then routes to the draining sandbox: wait until the gateway routes to none.
    let unrouted = eventually(Duration::from_secs(90), || async {
        node.get("/metrics")
            .await
            .text()
            .contains("baton_function_sandboxes{function_name=\"warm\"} 0\n")
    })
    .await;
    assert!(unrouted, "the gateway still routes to the reaped sandbox");
    let again = node.get("/function/warm").await;
    assert_eq!(again.header("x-baton-cold-start"), "true");
    // Each process is PID 1 of its own namespace: its request count tells them apart (the
    // first process had served one request, so 1 means another process).
    assert_eq!(
        again.json()["served_by_this_process"],
        1,
        "a new process serves after scale to zero"
    );
}

trait JsonOrNull {
    fn json_or_null(&self) -> serde_json::Value;
}

impl JsonOrNull for crate::harness::Reply {
    fn json_or_null(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }
}

#[tokio::test]
async fn a_restart_keeps_a_users_function_named_like_an_example_and_removed_examples_away() {
    let dir = tempfile::tempdir().unwrap();
    let examples = || Options {
        examples: true,
        ..Options::default()
    };
    let node = Node::start(dir.path(), examples());
    assert!(node.names().await.contains(&"hello".to_owned()));
    // The user takes the name `echo` for a function of their own and removes `hello`.
    let own = json!({"service": "echo", "envProcess": "cat", "image": "my-echo"});
    let reply = node.deploy("PUT", own).await;
    assert!(reply.status < 300, "{} {}", reply.status, reply.text());
    let reply = node.remove("hello").await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    node.kill();

    let node = Node::start(dir.path(), examples());
    let names = node.names().await;
    assert!(!names.contains(&"hello".to_owned()), "{names:?}");
    assert!(names.contains(&"counter".to_owned()), "{names:?}");
    let echo = node.get("/system/function/echo").await.json();
    assert_eq!(echo["image"], "my-echo", "{echo}");
    assert!(echo["labels"].get("baton.example").is_none(), "{echo}");
}

/// (call id, function status) of every callback received so far.
fn seen(callbacks: &Callbacks) -> Vec<(String, String)> {
    let header = |h: &http::HeaderMap, name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    callbacks
        .received()
        .iter()
        .map(|(h, _)| (header(h, "x-call-id"), header(h, "x-function-status")))
        .collect()
}

#[tokio::test]
async fn accepted_async_calls_run_after_kill_9_and_busy_functions_are_retried() {
    let dir = tempfile::tempdir().unwrap();
    // One call at a time, so most are still queued when the node dies; two attempts each.
    let options = || Options {
        config: Some("[async]\nconcurrency = 1\nattempts = 2\n".into()),
        ..Options::default()
    };
    let node = Node::start(dir.path(), options());
    let deployed = node
        .upload("slow", baton_guests::MISBEHAVE, json!({}))
        .await;
    assert_eq!(deployed.status, 201, "{}", deployed.text());
    let callbacks = Callbacks::start(None).await;
    let callback = callbacks.url.clone();
    let mut accepted = Vec::new();
    for _ in 0..20 {
        let reply = node
            .send(
                "POST",
                "/async-function/slow/sleep?ms=200",
                &[("x-callback-url", &callback)],
                "",
            )
            .await;
        assert_eq!(reply.status, 202, "{}", reply.text());
        accepted.push(reply.header("x-call-id").to_owned());
    }
    let started = eventually(Duration::from_secs(60), || async {
        seen(&callbacks).len() >= 2
    })
    .await;
    assert!(started, "no call ran");
    let data = node.kill();
    let ran_before = seen(&callbacks).len();
    assert!(ran_before < accepted.len(), "all ran before the kill");

    // After the restart, every accepted call runs (at least once).
    let node = Node::start(&data, options());
    let all = eventually(Duration::from_secs(120), || async {
        let seen = seen(&callbacks);
        accepted
            .iter()
            .all(|id| seen.iter().any(|(done, _)| done == id))
    })
    .await;
    assert!(all, "{} of {} ran", seen(&callbacks).len(), accepted.len());
    assert!(seen(&callbacks).iter().all(|(_, status)| status == "200"));

    // A function that stays unavailable is tried `attempts` times, then reported.
    let reply = node
        .send(
            "POST",
            "/async-function/slow/status?code=503",
            &[("x-callback-url", &callback)],
            "",
        )
        .await;
    assert_eq!(reply.status, 202);
    let id = reply.header("x-call-id").to_owned();
    let reported = eventually(Duration::from_secs(60), || async {
        seen(&callbacks).iter().any(|(done, _)| *done == id)
    })
    .await;
    assert!(reported);
    let status = seen(&callbacks)
        .iter()
        .find(|(done, _)| *done == id)
        .map(|(_, status)| status.clone());
    assert_eq!(status.as_deref(), Some("503"));
    let metrics = node.get("/metrics").await.text();
    assert!(
        metrics.lines().any(|l| l.starts_with(
            "gateway_function_invocation_total{function_name=\"slow\",code=\"503\"} 2"
        )),
        "{metrics}"
    );
}

/// Keep-alive as caching through the real node: under `lru`, with room for two sandboxes of
/// 128 MiB, a third function's first call evicts an idle one (which one, by recency, is the
/// model's table tests: the gateway reports use once a second); the evicted function comes
/// back cold, and the node never holds more than its budget.
#[tokio::test]
async fn under_lru_a_new_sandbox_evicts_an_idle_one_within_the_memory_budget() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[worker]\nreap_interval = \"100ms\"\nkeep_alive = \"lru\"\nmemory = \"256Mi\"\n";
    let node = Node::start(
        dir.path(),
        Options {
            config: Some(config.into()),
            ..Options::default()
        },
    );
    for name in ["a", "b", "c"] {
        let spec = json!({"service": name, "image": baton_guests::HELLO_PATH, "limits": {"memory": "128Mi"}});
        assert_eq!(node.deploy("POST", spec).await.status, 201);
    }
    let call = |name: &'static str| {
        let node = &node;
        async move {
            let reply = node.get(&format!("/function/{name}")).await;
            assert_eq!(reply.status, 200, "{name}: {}", reply.text());
            reply.header("x-baton-cold-start") == "true"
        }
    };
    let replicas = |name: &'static str| {
        let node = &node;
        async move {
            node.get(&format!("/system/function/{name}")).await.json()["replicas"]
                .as_u64()
                .unwrap()
        }
    };
    assert!(call("a").await, "a's first call is cold");
    assert!(call("b").await, "b's first call is cold");
    // The worker is full (2 × 128 MiB): c's sandbox takes the memory of a or b.
    assert!(call("c").await, "c's first call is cold");
    let within_budget = eventually(Duration::from_secs(60), || async {
        replicas("a").await + replicas("b").await == 1
    })
    .await;
    assert!(within_budget, "nothing was evicted for c");
    assert_eq!(replicas("c").await, 1);
    let evicted = if replicas("a").await == 0 { "a" } else { "b" };
    assert!(call(evicted).await, "the evicted function comes back cold");
    let (a, b, c) = (
        replicas("a").await,
        replicas("b").await,
        replicas("c").await,
    );
    assert_eq!(
        a + b + c,
        2,
        "more sandboxes than the budget holds: {a} {b} {c}"
    );
    // At least c's eviction is counted, under the policy's name.
    let metrics = node.get("/metrics").await.text();
    let evictions = metrics
        .lines()
        .find_map(|l| l.strip_prefix("baton_keep_alive_evictions_total{policy=\"lru\"} "))
        .and_then(|n| n.trim().parse::<u64>().ok());
    assert!(evictions.is_some_and(|n| n >= 1), "{evictions:?}");
}
