//! A guest can fail; the node cannot.

use crate::harness::{Node, Options};
use serde_json::json;
use std::sync::Arc;

#[tokio::test]
async fn misbehaving_guests_fail_alone_while_others_keep_serving() {
    let dir = tempfile::tempdir().unwrap();
    let node = Arc::new(Node::start(dir.path(), Options::default()));
    // `spinner` times out after 1 s on purpose; `bad` must trap before its own timeout,
    // however slowly a loaded machine runs it.
    for (name, timeout) in [("spinner", "1s"), ("bad", "5m")] {
        let settings = json!({"envVars": {"exec_timeout": timeout}, "limits": {"memory": "32Mi"}});
        assert_eq!(
            node.upload(name, baton_guests::MISBEHAVE, settings)
                .await
                .status,
            201
        );
    }
    assert_eq!(
        node.upload("good", baton_guests::HELLO, json!({}))
            .await
            .status,
        201
    );

    let failing: Vec<_> = [
        ("spinner", "/spin", 504, "timed out"),
        ("bad", "/trap", 500, "unreachable"),
        ("bad", "/oom", 500, "memory"),
        ("bad", "/stack", 500, "stack"),
    ]
    .into_iter()
    .map(|(function, path, status, text)| {
        let node = node.clone();
        tokio::spawn(async move {
            let reply = node.get(&format!("/function/{function}{path}")).await;
            assert_eq!(reply.status, status, "{path}: {}", reply.text());
            assert!(reply.text().contains(text), "{path}: {}", reply.text());
        })
    })
    .collect();
    // While the spinning guest runs, the other function answers.
    for _ in 0..20 {
        let reply = node.get("/function/good").await;
        assert_eq!(reply.status, 200);
    }
    for task in failing {
        task.await.unwrap();
    }
    assert_eq!(
        node.get("/function/bad/ok").await.status,
        200,
        "the failing function itself recovers"
    );
}

#[tokio::test]
async fn process_failures_end_one_invocation_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    let scripts = dir.path().join("scripts");
    std::fs::create_dir(&scripts).unwrap();
    std::fs::write(scripts.join("fail.sh"), "echo oops; exit 7").unwrap();
    std::fs::write(scripts.join("flood.sh"), "yes flood").unwrap();
    std::fs::write(scripts.join("dies.sh"), "echo bye >&2; exit 1").unwrap();
    std::fs::write(scripts.join("deaf.sh"), "sleep 60").unwrap();
    let working_dir = scripts.display().to_string();
    // `flood` must reach the output limit before its timeout, however slowly a loaded
    // machine runs `yes`; the others time out on purpose.
    let deploy = |name: &str, script: &str, mode: &str| {
        let timeout = if name == "flood" { "5m" } else { "2s" };
        json!({"service": name, "envProcess": format!("sh {script}"),
               "envVars": {"mode": mode, "exec_timeout": timeout}, "workingDir": working_dir})
    };
    for (name, script, mode) in [
        ("fail", "fail.sh", "classic"),
        ("flood", "flood.sh", "classic"),
        ("dies", "dies.sh", "http"),
        ("deaf", "deaf.sh", "http"),
    ] {
        assert_eq!(
            node.deploy("POST", deploy(name, script, mode)).await.status,
            201
        );
    }
    node.upload("good", baton_guests::HELLO, json!({})).await;

    let fail = node.post("/function/fail", "").await;
    assert_eq!(
        (fail.status, fail.text().as_str()),
        (500, "exit status 7\noops\n")
    );
    let flood = node.post("/function/flood", "").await;
    assert_eq!(flood.status, 502);
    assert!(flood.text().contains("output limit"), "{}", flood.text());
    let dies = node.get("/function/dies").await;
    assert_eq!(dies.status, 502);
    assert!(
        dies.text().contains("exited before accepting connections") && dies.text().contains("bye"),
        "{}",
        dies.text()
    );
    let deaf = node.get("/function/deaf").await;
    assert_eq!(deaf.status, 504, "{}", deaf.text());
    assert_eq!(node.get("/function/good").await.status, 200);
}

#[tokio::test]
async fn a_full_queue_answers_429_with_retry_after() {
    let dir = tempfile::tempdir().unwrap();
    let node = Arc::new(Node::start(dir.path(), Options::default()));
    let settings = json!({"envVars": {"max_inflight": "1"}, "labels": {"com.openfaas.scale.max": "1", "baton.queue": "1"}});
    assert_eq!(
        node.upload("slow", baton_guests::MISBEHAVE, settings)
            .await
            .status,
        201
    );
    // Warm first: requests waiting for a cold start count against the queue too, so four
    // calls to a function at zero would race its creation.
    assert_eq!(node.get("/function/slow/sleep?ms=1").await.status, 200);
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let node = node.clone();
            tokio::spawn(async move { node.get("/function/slow/sleep?ms=3000").await })
        })
        .collect();
    let mut statuses = Vec::new();
    let mut retry_after = Vec::new();
    for call in calls {
        let reply = call.await.unwrap();
        statuses.push(reply.status);
        if reply.status == 429 {
            retry_after.push(reply.header("retry-after").to_owned());
        }
    }
    statuses.sort();
    // One runs, one waits for it, the other two find the queue full.
    assert_eq!(statuses, [200, 200, 429, 429], "{statuses:?}");
    assert!(retry_after.iter().all(|r| r == "1"));
}
