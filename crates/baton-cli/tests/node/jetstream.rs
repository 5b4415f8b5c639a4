//! Asynchronous calls of a cluster in NATS JetStream, against a real NATS server (the
//! machine's on 4222, or one the test starts): accepted by one gateway, run by any, and not
//! lost when the gateway that accepted them is killed with calls queued and running.

use crate::cluster::{Cluster, Server, deploy, start_role};
use crate::harness::Node;
use crate::harness::{Callbacks, eventually, free_ports};
use serde_json::json;
use std::collections::HashSet;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// NATS with JetStream: the machine's on 4222, or a `nats-server -js` started for the test.
fn nats_url(dir: &Path) -> (String, Option<Server>) {
    if std::net::TcpStream::connect("127.0.0.1:4222").is_ok() {
        return ("nats://127.0.0.1:4222".into(), None);
    }
    let port = free_ports(1)[0];
    let child = Command::new("nats-server")
        .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
        .arg(dir.join("nats"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("no NATS on 4222 and no nats-server on PATH (.ci/run installs it)");
    for _ in 0..400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    (format!("nats://127.0.0.1:{port}"), Some(Server { child }))
}

/// Whether every call of `accepted` reaches `callbacks` within `limit`.
async fn all_delivered(callbacks: &Callbacks, accepted: &HashSet<String>, limit: Duration) -> bool {
    eventually(limit, || async {
        let delivered: HashSet<String> = callbacks.call_ids().into_iter().collect();
        accepted.is_subset(&delivered)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn asynchronous_calls_in_jetstream_survive_a_killed_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _server) = nats_url(dir.path());
    let stream = format!("BATON_TEST_{}_{}", std::process::id(), free_ports(1)[0]);
    let mut cluster = Cluster::start_with(
        dir.path(),
        "redb",
        &[
            "--nats-url",
            &url,
            "--nats-stream",
            &stream,
            "--nats-ack-wait",
            "2s",
        ],
    );
    deploy(
        &cluster.gateways[0],
        "slow",
        baton_guests::MISBEHAVE,
        json!({}),
    )
    .await;
    let callbacks = Callbacks::start(None).await;
    let callback = callbacks.url.clone();

    // Thirty calls accepted by the first gateway, which is killed at once: some queued, some
    // running there. Every one still runs (on the other gateway) and reaches its callback.
    let mut accepted = HashSet::new();
    for _ in 0..30 {
        let reply = cluster.gateways[0]
            .send(
                "POST",
                "/async-function/slow/sleep?ms=300",
                &[("x-callback-url", &callback)],
                "",
            )
            .await;
        assert_eq!(reply.status, 202, "{}", reply.text());
        accepted.insert(reply.header("x-call-id").to_owned());
    }
    cluster.gateways.remove(0).kill();
    assert!(
        all_delivered(&callbacks, &accepted, Duration::from_secs(120)).await,
        "calls never reached their callback"
    );

    // A call accepted by the surviving gateway runs too, and the stream is left empty.
    let reply = cluster.gateways[0]
        .send(
            "POST",
            "/async-function/slow/ok",
            &[("x-callback-url", &callback)],
            "",
        )
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text());
    let found = callbacks
        .of(reply.header("x-call-id"), Duration::from_secs(60))
        .await;
    assert!(found.is_some(), "the last call never reached its callback");
    let client = async_nats::connect(url.as_str()).await.unwrap();
    let jetstream = async_nats::jetstream::new(client);
    let mut info = jetstream.get_stream(&stream).await.unwrap();
    let left = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let messages = info.info().await.unwrap().state.messages;
            if messages == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    jetstream.delete_stream(&stream).await.unwrap();
    assert!(left.is_ok(), "acknowledged calls stayed in the stream");

    // A stream that holds two calls refuses a third with 429 rather than dropping it; what
    // it accepted runs.
    let small = format!("{stream}_SMALL");
    let control = cluster.control_url();
    let gateway = start_role(
        &[
            "gateway",
            "--control",
            &control,
            "--listen",
            "127.0.0.1:0",
            "--nats-url",
            &url,
            "--nats-stream",
            &small,
            "--async-queue",
            "2",
            "--async-concurrency",
            "1",
        ],
        dir.path(),
    );
    let gateway = Node::from_process(gateway, dir.path());
    let mut accepted = HashSet::new();
    let mut refused = 0;
    for _ in 0..6 {
        let reply = gateway
            .send(
                "POST",
                "/async-function/slow/sleep?ms=1000",
                &[("x-callback-url", &callback)],
                "",
            )
            .await;
        match reply.status {
            202 => {
                accepted.insert(reply.header("x-call-id").to_owned());
            }
            429 => {
                assert!(reply.text().contains("queue is full"), "{}", reply.text());
                refused += 1;
            }
            other => panic!("{other}: {}", reply.text()),
        }
    }
    assert!(
        refused >= 3 && accepted.len() <= 3,
        "{refused} refused, {} accepted",
        accepted.len()
    );
    assert!(
        all_delivered(&callbacks, &accepted, Duration::from_secs(60)).await,
        "an accepted call never reached its callback"
    );
    jetstream.delete_stream(&small).await.unwrap();
}
