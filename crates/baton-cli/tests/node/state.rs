//! Replicated state: five real nodes on loopback replicating through their state agents.

use crate::harness::{Node, Options, eventually, free_ports};
use futures_util::future::join_all;
use serde_json::{Value, json};
use std::time::Duration;

/// A deadline against hangs for convergence (anti-entropy runs every 200 ms in these clusters).
const CONVERGE: Duration = Duration::from_secs(60);

struct Cluster {
    _dir: tempfile::TempDir,
    nodes: Vec<Node>,
    ports: Vec<u16>,
}

fn peer_env(ports: &[u16], me: usize) -> Vec<(String, String)> {
    let peers: Vec<String> = ports
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != me)
        .map(|(_, p)| format!("127.0.0.1:{p}"))
        .collect();
    vec![
        (
            "BATON_STATE_LISTEN".into(),
            format!("127.0.0.1:{}", ports[me]),
        ),
        ("BATON_STATE_PEERS".into(), peers.join(",")),
    ]
}

fn config(cluster: &str) -> String {
    format!(
        "[state]\ncluster = \"{cluster}\"\nanti_entropy = \"200ms\"\nfault_injection = true\nmax_value_bytes = 1024\n"
    )
}

fn start_cluster(n: usize, examples: bool) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(n);
    let nodes = (0..n)
        .map(|i| {
            Node::start(
                &dir.path().join(format!("node{i}")),
                Options {
                    examples,
                    config: Some(config("test")),
                    env: peer_env(&ports, i),
                    ..Options::default()
                },
            )
        })
        .collect();
    Cluster {
        _dir: dir,
        nodes,
        ports,
    }
}

async fn read(node: &Node, path: &str) -> Value {
    let reply = node.get(&format!("state:/v1/state/{path}")).await;
    if reply.status == 404 {
        return Value::Null;
    }
    assert_eq!(reply.status, 200, "{}", reply.text());
    reply.json()["value"].clone()
}

async fn op(node: &Node, path: &str, body: Value) -> u16 {
    node.post(&format!("state:/v1/state/{path}"), body.to_string())
        .await
        .status
}

/// True when every node reads `expected` at `path`.
async fn all_read(nodes: &[Node], path: &str, expected: &Value) -> bool {
    for node in nodes {
        if &read(node, path).await != expected {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn five_nodes_converge_under_concurrent_updates() {
    let cluster = start_cluster(5, true);
    let nodes = &cluster.nodes;
    // Every node updates the same objects at once, through the local API and through the
    // counter and allreduce wasm functions.
    let writers = nodes.iter().enumerate().map(|(i, node)| async move {
        for k in 0..20 {
            let amount = (i + 1) as i64;
            assert_eq!(
                op(
                    node,
                    "app/hits",
                    json!({"op": "counter-add", "amount": amount})
                )
                .await,
                200
            );
            let member = format!("n{i}-{k}");
            assert_eq!(
                op(
                    node,
                    "app/members",
                    json!({"op": "set-add", "member": member})
                )
                .await,
                200
            );
            let key = format!("k{}", k % 3);
            assert_eq!(
                op(
                    node,
                    "app/profile",
                    json!({"op": "map-set", "key": key, "value": format!("v{i}")})
                )
                .await,
                200
            );
            assert_eq!(
                op(
                    node,
                    "app/last",
                    json!({"op": "register-set", "value": format!("n{i}")})
                )
                .await,
                200
            );
        }
        for _ in 0..5 {
            assert_eq!(node.post("/function/counter/visits", "").await.status, 200);
        }
        for chunk in (i..20).step_by(5) {
            let reply = node
                .post(
                    &format!("/function/allreduce/array?chunk={chunk}&size=100"),
                    "",
                )
                .await;
            assert_eq!(reply.status, 200, "{}", reply.text());
        }
    });
    join_all(writers).await;
    // 20 updates of 1..=5 from each node.
    let expected_hits = json!(20 * (1 + 2 + 3 + 4 + 5));
    let mut members: Vec<String> = (0..5)
        .flat_map(|i| (0..20).map(move |k| format!("n{i}-{k}")))
        .collect();
    members.sort();
    let expected_members = json!(members);
    // Elements 0..2000 with values (i % 10) + 1: 200 runs of 55.
    let expected_sum = json!(200.0 * 55.0);
    assert!(
        eventually(CONVERGE, || async {
            all_read(nodes, "app/hits", &expected_hits).await
                && all_read(nodes, "app/members", &expected_members).await
                && all_read(nodes, "counter/visits", &json!(25)).await
                && all_read(nodes, "allreduce/array?query=vector-sum", &expected_sum).await
        })
        .await,
        "nodes did not converge: hits {:?}, visits {:?}",
        join_all(nodes.iter().map(|n| read(n, "app/hits"))).await,
        join_all(nodes.iter().map(|n| read(n, "counter/visits"))).await,
    );
    // Registers and maps written concurrently converge to the same values everywhere.
    assert!(
        eventually(CONVERGE, || async {
            let last = read(&nodes[0], "app/last").await;
            let profile = read(&nodes[0], "app/profile").await;
            all_read(nodes, "app/last", &last).await
                && all_read(nodes, "app/profile", &profile).await
        })
        .await
    );
    let profile = read(&nodes[2], "app/profile").await;
    assert_eq!(profile.as_object().unwrap().len(), 3, "{profile}");
    // The wasm function reads the replicated value on any node.
    let via_function = nodes[4].get("/function/counter/visits").await;
    assert_eq!(via_function.json()["value"], 25);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_node_catches_up_after_healing() {
    let cluster = start_cluster(5, false);
    let nodes = &cluster.nodes;
    let isolated = &nodes[4];
    let fault = |partitioned: bool| {
        isolated.post(
            "state:/v1/faults",
            json!({"partitioned": partitioned}).to_string(),
        )
    };
    assert_eq!(fault(true).await.status, 204);
    for (i, node) in nodes.iter().enumerate() {
        assert_eq!(
            op(
                node,
                "app/c",
                json!({"op": "counter-add", "amount": 10 + i})
            )
            .await,
            200
        );
        assert_eq!(
            op(
                node,
                "app/s",
                json!({"op": "set-add", "member": format!("m{i}")})
            )
            .await,
            200
        );
    }
    // The four connected nodes converge without the isolated one's writes...
    let connected_total = json!(10 + 11 + 12 + 13);
    assert!(
        eventually(CONVERGE, || all_read(
            &nodes[..4],
            "app/c",
            &connected_total
        ))
        .await
    );
    // ...while it sees only its own.
    assert_eq!(read(isolated, "app/c").await, json!(14));
    assert_eq!(read(isolated, "app/s").await, json!(["m4"]));
    assert_eq!(fault(false).await.status, 204);
    let total = json!(10 + 11 + 12 + 13 + 14);
    let members = json!(["m0", "m1", "m2", "m3", "m4"]);
    assert!(
        eventually(CONVERGE, || async {
            all_read(nodes, "app/c", &total).await && all_read(nodes, "app/s", &members).await
        })
        .await,
        "the partition did not heal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_loses_no_acknowledged_durable_write() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("node");
    let node = Node::start(&data, Options::default());
    // Writers keep going until the node dies; every write they saw acknowledged counts.
    let acked = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
    let writers: Vec<_> = (0..8)
        .map(|w| {
            let url = node.state_api.clone().unwrap();
            let token = node.token.clone().unwrap();
            let acked = acked.clone();
            tokio::spawn(async move {
                let client = hyper_util::client::legacy::Client::builder(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .build_http::<http_body_util::Full<bytes::Bytes>>();
                for k in 0.. {
                    let (path, body, count) = if k % 2 == 0 {
                        (
                            "/v1/state/app/c",
                            json!({"op": "counter-add", "amount": 1}),
                            1,
                        )
                    } else {
                        let batch: Vec<_> = (0..10)
                            .map(|_| json!({"object": "c", "op": "counter-add", "amount": 1}))
                            .collect();
                        ("/v1/state/app", json!(batch), 10)
                    };
                    let request = http::Request::post(format!("{url}{path}"))
                        .header("authorization", format!("Bearer {token}"))
                        .body(http_body_util::Full::new(bytes::Bytes::from(
                            body.to_string(),
                        )))
                        .unwrap();
                    match client.request(request).await {
                        Ok(response) if response.status() == 200 => {
                            acked.fetch_add(count, std::sync::atomic::Ordering::SeqCst);
                        }
                        _ => return w,
                    }
                }
                w
            })
        })
        .collect();
    // Killed while writes are being acknowledged, however slow the machine is.
    assert!(
        eventually(Duration::from_secs(60), || async {
            acked.load(std::sync::atomic::Ordering::SeqCst) > 50
        })
        .await,
        "writes were not acknowledged"
    );
    let acked_before_kill = acked.load(std::sync::atomic::Ordering::SeqCst);
    node.kill();
    for writer in writers {
        writer.await.unwrap();
    }
    let acked = acked.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        acked_before_kill > 50,
        "only {acked_before_kill} writes were acknowledged"
    );
    let restarted = Node::start(&data, Options::default());
    let value = read(&restarted, "app/c").await.as_i64().unwrap();
    assert!(
        value >= acked,
        "{acked} writes were acknowledged, the restarted node has {value}"
    );
    // The restarted node is a new replica epoch: it keeps counting on top.
    assert_eq!(
        op(
            &restarted,
            "app/c",
            json!({"op": "counter-add", "amount": 1})
        )
        .await,
        200
    );
    assert_eq!(read(&restarted, "app/c").await.as_i64().unwrap(), value + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_new_node_joins_and_gets_every_object() {
    let mut cluster = start_cluster(4, false);
    let objects = [
        ("c", json!({"op": "counter-add", "amount": 7})),
        ("s", json!({"op": "set-add", "member": "x"})),
        ("f", json!({"op": "flag-enable"})),
        (
            "v",
            json!({"op": "vector-add", "offset": 5000, "values": [1.5, 2.5]}),
        ),
        ("m", json!({"op": "map-add", "key": "k", "member": "y"})),
    ];
    for (i, (name, body)) in objects.iter().enumerate() {
        assert_eq!(
            op(&cluster.nodes[i % 4], &format!("app/{name}"), body.clone()).await,
            200
        );
    }
    // Deleted on one node before the newcomer arrives: it must not come back.
    assert_eq!(
        op(
            &cluster.nodes[0],
            "app/gone",
            json!({"op": "counter-add", "amount": 1})
        )
        .await,
        200
    );
    let deleted = cluster.nodes[0]
        .send("DELETE", "state:/v1/state/app/gone", &[], "")
        .await;
    assert_eq!(deleted.json()["deleted"], true);
    let ports = free_ports(1);
    let mut all_ports = cluster.ports.clone();
    all_ports.extend(&ports);
    let newcomer = Node::start(
        &cluster._dir.path().join("newcomer"),
        Options {
            config: Some(config("test")),
            env: peer_env(&all_ports, 4),
            ..Options::default()
        },
    );
    cluster.nodes.push(newcomer);
    let expected = [
        ("app/c", json!(7)),
        ("app/s", json!(["x"])),
        ("app/f", json!(true)),
        ("app/v?query=vector-sum", json!(4.0)),
        ("app/m", json!({"k": ["y"]})),
        ("app/gone", Value::Null),
    ];
    assert!(
        eventually(CONVERGE, || async {
            for (path, value) in &expected {
                if &read(&cluster.nodes[4], path).await != value {
                    return false;
                }
            }
            true
        })
        .await,
        "the new node did not get every object"
    );
    let listed = cluster.nodes[4].get("state:/v1/state/app").await.json();
    assert_eq!(listed["objects"].as_array().unwrap().len(), 5, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_is_refused_and_changes_nothing() {
    let cluster = start_cluster(1, true);
    let node = &cluster.nodes[0];
    assert_eq!(
        op(node, "app/c", json!({"op": "counter-add", "amount": 3})).await,
        200
    );
    let cases = [
        (
            "app/c",
            json!({"op": "set-add", "member": "x"}),
            409,
            "is a counter, not a set",
        ),
        (
            "app/c",
            json!({"op": "counter-add", "amount": "lots"}),
            400,
            "bad request body",
        ),
        ("app/c", json!({"op": "explode"}), 400, "unknown variant"),
        (
            "app/s",
            json!({"op": "set-add", "member": "x".repeat(2000)}),
            413,
            "exceeds the limit",
        ),
        (
            "Bad_NS/c",
            json!({"op": "counter-add", "amount": 1}),
            400,
            "namespace",
        ),
        (
            "app/ghost",
            json!({"op": "map-remove", "key": "k"}),
            404,
            "does not exist",
        ),
    ];
    for (path, body, status, message) in cases {
        let reply = node
            .post(&format!("state:/v1/state/{path}"), body.to_string())
            .await;
        assert_eq!(reply.status, status, "{path} {body}: {}", reply.text());
        assert!(reply.text().contains(message), "{}", reply.text());
    }
    let unknown = node.get("state:/v1/state/app/nothing").await;
    assert_eq!(unknown.status, 404);
    assert_eq!(
        node.get("state:/v1/state/app/c?query=contains&member=x")
            .await
            .status,
        409
    );
    let too_far = node
        .post(
            "state:/v1/state/app/v",
            json!({"op": "vector-add", "offset": 1u64 << 40, "values": [1.0]}).to_string(),
        )
        .await;
    assert_eq!(too_far.status, 413, "{}", too_far.text());
    // A function using a counter name that holds another type gets a clear error.
    assert_eq!(
        op(node, "counter/taken", json!({"op": "flag-enable"})).await,
        200
    );
    let reply = node.post("/function/counter/taken", "").await;
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("flag"), "{}", reply.text());
    // Nothing changed, and the agent still serves.
    assert_eq!(read(node, "app/c").await, json!(3));
    assert_eq!(read(node, "app/s").await, Value::Null);
    assert_eq!(read(node, "counter/taken").await, json!(true));
    // No fault injection on a node that did not enable it.
    let plain = Node::start(&cluster._dir.path().join("plain"), Options::default());
    assert_eq!(plain.post("state:/v1/faults", "{}").await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_members_of_the_cluster_replicate() {
    let dir = tempfile::tempdir().unwrap();
    let ports = free_ports(4);
    // Node 0 and node 1 share cluster and secret; node 2 names another cluster; node 3 has
    // the wrong secret. All of them dial node 0.
    let members = [
        ("test", "right"),
        ("test", "right"),
        ("other", "right"),
        ("test", "wrong"),
    ];
    let nodes: Vec<Node> = members
        .iter()
        .enumerate()
        .map(|(i, (cluster, secret))| {
            let peer = if i == 0 { ports[1] } else { ports[0] };
            Node::start(
                &dir.path().join(format!("n{i}")),
                Options {
                    config: Some(config(cluster)),
                    env: vec![
                        (
                            "BATON_STATE_LISTEN".into(),
                            format!("127.0.0.1:{}", ports[i]),
                        ),
                        ("BATON_STATE_PEERS".into(), format!("127.0.0.1:{peer}")),
                        ("BATON_STATE_SECRET".into(), (*secret).into()),
                    ],
                    ..Options::default()
                },
            )
        })
        .collect();
    for (i, node) in nodes.iter().enumerate() {
        assert_eq!(
            op(
                node,
                "app/c",
                json!({"op": "counter-add", "amount": 1 << i})
            )
            .await,
            200
        );
    }
    // The member's write arrives...
    assert!(
        eventually(CONVERGE, || async {
            read(&nodes[0], "app/c").await == json!(3)
        })
        .await
    );
    // ...the impostors' never do, and node 0 counts the refusals.
    let refused = eventually(CONVERGE, || async {
        let metrics = nodes[0].get("/metrics").await.text();
        metrics.lines().any(|l| {
            l.starts_with("baton_state_rejected_total{reason=\"handshake\"}") && !l.ends_with(" 0")
        })
    })
    .await;
    assert!(refused, "node 0 did not report refused peers");
    // A member's later write arrives after the refusals; the impostors' writes still have
    // not (node 0 would read 4 or 8 more).
    assert_eq!(
        op(
            &nodes[1],
            "app/c",
            json!({"op": "counter-add", "amount": 16})
        )
        .await,
        200
    );
    assert!(
        eventually(CONVERGE, || async {
            read(&nodes[0], "app/c").await == json!(19)
        })
        .await,
        "node 0 read {}",
        read(&nodes[0], "app/c").await
    );
    assert_eq!(
        read(&nodes[2], "app/c").await,
        json!(4),
        "node 2 got another cluster's state"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_functions_reach_state_through_baton_api() {
    let cluster = start_cluster(1, false);
    let node = &cluster.nodes[0];
    let dir = cluster._dir.path().join("py");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("handler.py"),
        r#"import json, os, urllib.request
api, ns = os.environ["BATON_API"], os.environ["BATON_NAMESPACE"]
auth = {"Authorization": "Bearer " + os.environ["BATON_API_TOKEN"]}
url = f"{api}/v1/state/{ns}/calls"
urllib.request.urlopen(urllib.request.Request(url, data=b'{"op": "counter-add", "amount": 2}', method="POST", headers=auth))
print(json.load(urllib.request.urlopen(urllib.request.Request(url, headers=auth)))["value"])
"#,
    )
    .unwrap();
    let deployed = node
        .deploy(
            "POST",
            json!({
                "service": "py-state",
                "envProcess": "python3 handler.py",
                "envVars": {"mode": "classic"},
                "labels": {"baton.namespace": "shared"},
                "workingDir": dir.display().to_string(),
            }),
        )
        .await;
    assert_eq!(deployed.status, 201, "{}", deployed.text());
    for expected in ["2", "4"] {
        let reply = node.post("/function/py-state", "").await;
        assert_eq!(
            (reply.status, reply.text().trim()),
            (200, expected),
            "{}",
            reply.text()
        );
    }
    // The label put the object in the application's namespace.
    assert_eq!(read(node, "shared/calls").await, json!(4));
}

/// Components built against `wasi:keyvalue` as Spin 3 (`0.2.0-draft2`) and wasmCloud
/// (`0.2.0-draft`) build them run unchanged, share one application's buckets, and see each
/// other's writes across nodes; compare-and-swap loses no concurrent append.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn components_keep_data_through_wasi_keyvalue() {
    let cluster = start_cluster(2, false);
    let (spin, wasmcloud) = (&cluster.nodes[0], &cluster.nodes[1]);
    let shared = json!({"labels": {"baton.namespace": "shop"}});
    for (node, name, component) in [
        (spin, "kv-spin", baton_guests::KV_SPIN),
        (wasmcloud, "kv-cloud", baton_guests::KV_WASMCLOUD),
    ] {
        let reply = node.upload(name, component, shared.clone()).await;
        assert_eq!(reply.status, 201, "{}", reply.text());
    }
    let text = |reply: crate::harness::Reply| (reply.status, reply.text());

    // Values, as text and as bytes, in the default store and in a named one.
    let set = spin
        .post("/function/kv-spin/set?key=greeting", "hello")
        .await;
    assert_eq!(set.status, 200, "{}", set.text());
    let set = spin
        .post(
            "/function/kv-spin/set?key=raw:1&bucket=blobs",
            vec![0xff, 0, 1],
        )
        .await;
    assert_eq!(set.status, 200, "{}", set.text());
    let raw = spin
        .get("/function/kv-spin/get?key=raw:1&bucket=blobs")
        .await;
    assert_eq!((raw.status, &raw.body[..]), (200, &[0xff, 0, 1][..]));
    assert_eq!(
        text(spin.get("/function/kv-spin/get?key=raw:1").await).0,
        404,
        "buckets are separate"
    );
    assert_eq!(
        text(spin.get("/function/kv-spin/exists?key=greeting").await),
        (200, "true".into())
    );
    // The state API shows the key as an object of the application's namespace.
    assert!(
        read(spin, "shop/kv/default/greeting")
            .await
            .to_string()
            .contains("hello")
    );

    // The wasmCloud component on the other node reads what the Spin one wrote.
    let replicated = eventually(CONVERGE, || async {
        text(wasmcloud.get("/function/kv-cloud/get?key=greeting").await) == (200, "hello".into())
    })
    .await;
    assert!(replicated, "the write never reached the other node");

    // Counters: Spin's signed increment, then wasmCloud's unsigned one once it has replicated.
    assert_eq!(
        text(spin.get("/function/kv-spin/incr?key=visits&by=5").await),
        (200, "5".into())
    );
    let counted = eventually(CONVERGE, || async {
        text(wasmcloud.get("/function/kv-cloud/get?key=visits").await) == (200, "5".into())
    })
    .await;
    assert!(counted, "the counter never reached the other node");
    assert_eq!(
        text(
            wasmcloud
                .get("/function/kv-cloud/incr?key=visits&by=2")
                .await
        ),
        (200, "7".into())
    );
    let converged = eventually(CONVERGE, || async {
        text(spin.get("/function/kv-spin/get?key=visits").await) == (200, "7".into())
    })
    .await;
    assert!(converged, "the increments never converged");

    // Twenty concurrent appends by compare-and-swap: none is lost.
    let appends =
        join_all((0..20).map(|_| spin.post("/function/kv-spin/append?key=log", "x"))).await;
    for reply in &appends {
        assert_eq!(reply.status, 200, "{}", reply.text());
    }
    assert_eq!(
        text(spin.get("/function/kv-spin/get?key=log").await),
        (200, "x".repeat(20))
    );

    // Batches and listing, in both versions' shapes.
    let many = wasmcloud
        .post(
            "/function/kv-cloud/set-many?bucket=cart&pairs=a=1,b=2,c=3",
            "",
        )
        .await;
    assert_eq!(many.status, 200, "{}", many.text());
    assert_eq!(
        text(
            wasmcloud
                .get("/function/kv-cloud/many?bucket=cart&keys=a,zz,c")
                .await
        ),
        (200, "a=1\nzz=-\nc=3".into())
    );
    let deleted = wasmcloud
        .post("/function/kv-cloud/delete-many?bucket=cart&keys=a,b", "")
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.text());
    assert_eq!(
        text(wasmcloud.get("/function/kv-cloud/keys?bucket=cart").await),
        (200, "c".into())
    );
    let listed = eventually(CONVERGE, || async {
        text(spin.get("/function/kv-spin/keys?bucket=cart").await) == (200, "c".into())
            && text(
                spin.get("/function/kv-spin/many?bucket=cart&keys=a,c")
                    .await,
            ) == (200, "a=-\nc=3".into())
    })
    .await;
    assert!(listed, "the batch never reached the other node");

    // Bad input is an error the guest sees, and changes nothing.
    let (status, body) = text(spin.get("/function/kv-spin/get?key=x&bucket=a/b").await);
    assert_eq!(status, 500);
    assert!(body.contains("NoSuchStore"), "{body}");
    let (status, body) = text(spin.post("/function/kv-spin/set?key=", "v").await);
    assert_eq!(status, 500);
    assert!(body.contains("Other"), "{body}");
    let (status, body) = text(spin.get("/function/kv-spin/incr?key=greeting").await);
    assert!(status == 500 && body.contains("not an integer"), "{body}");
    assert_eq!(
        text(spin.get("/function/kv-spin/get?key=greeting").await),
        (200, "hello".into())
    );
}

/// A page of a map is a range of its keys, from either end, and costs its page: what a
/// timeline keyed by time reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_map_page_reads_a_key_range_from_either_end() {
    let cluster = start_cluster(1, false);
    let node = &cluster.nodes[0];
    for i in 0..10 {
        let set = json!({"op": "map-set", "key": format!("k{i}"), "value": format!("v{i}")});
        assert_eq!(op(node, "app/m", set).await, 200);
    }
    assert_eq!(
        op(node, "app/m", json!({"op": "map-remove", "key": "k7"})).await,
        200
    );
    let cases = [
        (
            "start=0&stop=3",
            json!({"k0": ["v0"], "k1": ["v1"], "k2": ["v2"]}),
        ),
        ("stop=2&reverse=true", json!({"k9": ["v9"], "k8": ["v8"]})),
        // k7 is gone: the third from the end is k6.
        (
            "start=1&stop=3&reverse=true",
            json!({"k8": ["v8"], "k6": ["v6"]}),
        ),
        ("start=8&stop=20", json!({"k9": ["v9"]})),
        ("start=4&stop=4", json!({})),
    ];
    for (page, expected) in cases {
        assert_eq!(
            read(node, &format!("app/m?query=map-page&{page}")).await,
            expected,
            "{page}"
        );
    }
    assert_eq!(
        op(node, "app/c", json!({"op": "counter-add", "amount": 1})).await,
        200
    );
    for (path, status) in [
        ("app/m?query=map-page&start=5&stop=2", 400),
        ("app/m?query=map-page&start=0", 400),
        ("app/m?query=map-page&stop=20000", 413),
        ("app/c?query=map-page&stop=2", 409),
        ("app/nothing?query=map-page&stop=2", 404),
    ] {
        let reply = node.get(&format!("state:/v1/state/{path}")).await;
        assert_eq!(reply.status, status, "{path}: {}", reply.text());
    }
}
