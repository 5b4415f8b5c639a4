//! Federation: sites that know each other's keys, a federated function that follows its
//! owner, excess load served by a peer, a peer that goes away, and what outsiders and replays
//! get.

use crate::harness::{Node, Options, eventually, free_ports};
use baton_federation::link::Link;
use baton_federation::signing::Stamp;
use baton_federation::{SiteId, SiteKey};
use bytes::Bytes;
use serde_json::json;
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The site id `baton federation id` makes for `data_dir`.
fn site_id(data_dir: &Path) -> String {
    let output = std::process::Command::new(crate::harness::BATON)
        .args(["federation", "id", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    String::from_utf8(output.stdout).unwrap().trim().to_owned()
}

/// Starts a site listening for peers on `port`, dialling `peers` (`id@host:port`).
fn site(data_dir: &Path, port: u16, peers: &[String], config: &str) -> Node {
    Node::start(
        data_dir,
        Options {
            config: Some(config.to_string()),
            env: vec![
                (
                    "BATON_FEDERATION_LISTEN".into(),
                    format!("127.0.0.1:{port}"),
                ),
                ("BATON_FEDERATION_PEERS".into(), peers.join(",")),
            ],
            ..Default::default()
        },
    )
}

fn metric(text: &str, prefix: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

async fn burst(node: &Node, n: usize, path: &str) -> Vec<crate::harness::Reply> {
    futures_util::future::join_all(
        (0..n).map(|_| node.send_as_client("GET", path, &[], Bytes::new())),
    )
    .await
}

/// Two sites, a and b, each listing the other; a deploys `slow` (the busy guest, one request
/// per sandbox) federated with `labels`, and it has followed to b.
struct Pair {
    a: Node,
    b: Node,
    a_id: String,
    b_id: String,
    _dir: tempfile::TempDir,
}

async fn pair_with_slow(labels: serde_json::Value) -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let (a_id, b_id) = (site_id(&a_dir), site_id(&b_dir));
    let ports = free_ports(2);
    let a = site(
        &a_dir,
        ports[0],
        &[format!("{b_id}@127.0.0.1:{}", ports[1])],
        "examples = false\n",
    );
    let b = site(
        &b_dir,
        ports[1],
        &[format!("{a_id}@127.0.0.1:{}", ports[0])],
        "examples = false\n",
    );
    let deployed = a
        .deploy(
            "POST",
            json!({
                "service": "slow",
                "image": baton_guests::BUSY_PATH,
                "labels": labels,
                "envVars": {"max_inflight": "1"},
            }),
        )
        .await;
    assert!(deployed.status < 300, "{}", deployed.text());
    assert!(
        eventually(Duration::from_secs(120), || async {
            b.names().await.contains(&"slow".to_string())
        })
        .await,
        "the federated function never reached the peer"
    );
    Pair {
        a,
        b,
        a_id,
        b_id,
        _dir: dir,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_federated_function_follows_its_owner_and_its_excess_is_served_by_a_peer() {
    // a runs at most two sandboxes of one request each: bursts of six overflow it.
    // The data directories live as long as `_dir`.
    let Pair {
        a,
        b,
        a_id,
        b_id,
        _dir,
    } = pair_with_slow(json!({
        "baton.federate": "true", "com.openfaas.scale.min": "1", "com.openfaas.scale.max": "2"
    }))
    .await;
    // It followed to b, labelled with its origin.
    let described = b.get("/system/function/slow").await.json();
    assert_eq!(described["labels"]["baton.federate.origin"], a_id);
    // A non-federated function stays where it was deployed.
    let plain = a
        .deploy(
            "POST",
            json!({"service": "local-only", "image": baton_guests::BUSY_PATH}),
        )
        .await;
    assert!(plain.status < 300, "{}", plain.text());

    // a serves one request at a time; bursts of six go partly to b, every one answered.
    let mut served_by_b = false;
    let mut served_by_a = false;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while !(served_by_a && served_by_b) && std::time::Instant::now() < deadline {
        for reply in burst(&a, 6, "/function/slow?sleep=300").await {
            assert_eq!(reply.status, 200, "{}", reply.text());
            let site = reply.header("x-baton-site");
            assert!(site == a_id || site == b_id, "served by {site:?}");
            served_by_b |= site == b_id;
            served_by_a |= site == a_id;
        }
    }
    assert!(
        served_by_a && served_by_b,
        "a={served_by_a} b={served_by_b}"
    );
    let metrics = a.get("/metrics").await.text();
    assert!(
        metric(
            &metrics,
            &format!(
                "baton_federation_forwarded_total{{function_name=\"slow\",peer=\"{b_id}\",code=\"200\"}}"
            )
        ) >= 1.0,
        "{metrics}"
    );
    let b_metrics = b.get("/metrics").await.text();
    assert!(
        metric(
            &b_metrics,
            &format!(
                "baton_federation_received_total{{function_name=\"slow\",peer=\"{a_id}\",code=\"200\"}}"
            )
        ) >= 1.0
    );
    // The status names the peer, up, and the function.
    let output = a.cli(&["federation", "status", "--json"]);
    assert!(output.status.success(), "{output:?}");
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(status["site"], a_id);
    assert_eq!(status["peers"][0]["id"], b_id);
    assert_eq!(status["peers"][0]["up"], true);
    assert_eq!(status["functions"][0]["name"], "slow");

    assert!(!b.names().await.contains(&"local-only".to_string()));
    // Removing it at its owner removes it at b.
    assert!(a.remove("slow").await.status < 300);
    assert!(
        eventually(Duration::from_secs(60), || async {
            !b.names().await.contains(&"slow".to_string())
        })
        .await,
        "the peer kept a function its owner removed"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_to_a_peer_that_went_away_are_served_here_and_the_peer_is_dropped() {
    let Pair {
        a, b, a_id, _dir, ..
    } = pair_with_slow(json!({
        "baton.federate": "true", "com.openfaas.scale.min": "1"
    }))
    .await;
    // Bursts of long requests until b holds some of them.
    let a = std::sync::Arc::new(a);
    let at_b = || async {
        let output = a.cli(&["federation", "status", "--json"]);
        let status: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap_or_default();
        status["peers"][0]["functions"][0]["in_flight"]
            .as_u64()
            .unwrap_or(0)
            > 0
    };
    let mut in_flight = None;
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while in_flight.is_none() && std::time::Instant::now() < deadline {
        let burst = {
            let a = a.clone();
            tokio::spawn(async move { burst(&a, 6, "/function/slow?sleep=1500").await })
        };
        if eventually(Duration::from_secs(3), at_b).await {
            in_flight = Some(burst);
        } else {
            burst.await.unwrap();
        }
    }
    let in_flight = in_flight.expect("no request was ever forwarded to b");
    // b dies with requests in flight: each is answered anyway.
    b.kill();
    let replies = tokio::time::timeout(Duration::from_secs(120), in_flight)
        .await
        .expect("requests to a dead peer hung")
        .unwrap();
    for reply in &replies {
        assert!(
            [200, 429, 503, 504].contains(&reply.status),
            "{} {}",
            reply.status,
            reply.text()
        );
    }
    assert!(
        eventually(Duration::from_secs(30), || async {
            let output = a.cli(&["federation", "status", "--json"]);
            let status: serde_json::Value =
                serde_json::from_slice(&output.stdout).unwrap_or_default();
            status["peers"][0]["up"] == false
        })
        .await,
        "the dead peer was never dropped"
    );
    // With b gone, a serves alone.
    let reply = a
        .send_as_client("GET", "/function/slow", &[], Bytes::new())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(reply.header("x-baton-site"), a_id);
}

#[tokio::test(flavor = "multi_thread")]
async fn federation_headers_from_a_client_are_refused_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    for header in ["x-baton-site", "x-baton-federation-origin"] {
        let reply = node
            .send_as_client("POST", "/function/echo", &[(header, "someone")], "hi")
            .await;
        assert_eq!(reply.status, 403, "{header}: {}", reply.text());
    }
    let metrics = node.get("/metrics").await.text();
    assert_eq!(
        metric(&metrics, "baton_gateway_reserved_headers_refused_total"),
        2.0,
        "{metrics}"
    );
    assert!(!metrics.contains("gateway_function_invocation_total{function_name=\"echo\""));
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A signed forwarded request from `key` to site `to`.
fn signed(
    key: &SiteKey,
    to: &SiteId,
    path: &str,
    body: &'static [u8],
) -> (Stamp, http::Request<Bytes>) {
    let stamp = Stamp::sign(key, to, "POST", path, body, now_ms());
    (stamp.clone(), with_stamp(&stamp, path, body))
}

fn with_stamp(stamp: &Stamp, path: &str, body: &'static [u8]) -> http::Request<Bytes> {
    let mut request = http::Request::post(path)
        .body(Bytes::from_static(body))
        .unwrap();
    for (name, value) in stamp.headers() {
        request.headers_mut().insert(name, value.parse().unwrap());
    }
    request
}

#[tokio::test(flavor = "multi_thread")]
async fn outsiders_replays_altered_and_spoofed_requests_are_refused_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (dir.path().join("a"), dir.path().join("b"));
    let a_id: SiteId = site_id(&a_dir).parse().unwrap();
    let b_id = site_id(&b_dir);
    let ports = free_ports(2);
    let a = site(
        &a_dir,
        ports[0],
        &[format!("{b_id}@127.0.0.1:{}", ports[1])],
        "examples = false\n",
    );
    let deployed = a
        .deploy(
            "POST",
            json!({"service": "plain", "image": baton_guests::BUSY_PATH}),
        )
        .await;
    assert!(deployed.status < 300, "{}", deployed.text());
    let address = format!("127.0.0.1:{}", ports[0]);
    let deadline = Duration::from_secs(30);
    let b_key = SiteKey::load_or_create(&b_dir.join("federation").join("site.key")).unwrap();
    let outsider = SiteKey::generate().unwrap().0;
    let status = |response: &http::Response<Bytes>| response.status().as_u16();

    // A site that is not a member: 403 for its rounds and its requests.
    let link = Link::new(&outsider, a_id).unwrap();
    let round = http::Request::post("/federation/v1/round")
        .body(Bytes::from_static(br#"{"address":"127.0.0.1:1"}"#))
        .unwrap();
    let reply = link.send(&address, round, deadline, 1 << 20).await.unwrap();
    assert_eq!(status(&reply), 403, "{:?}", reply.body());
    let path = "/federation/v1/function/plain/";
    let (_, request) = signed(&outsider, &a_id, path, b"x");
    assert_eq!(
        status(
            &link
                .send(&address, request, deadline, 1 << 20)
                .await
                .unwrap()
        ),
        403
    );

    // A member: an altered body, then the request, then its replay.
    let member = Link::new(&b_key, a_id).unwrap();
    let (stamp, _) = signed(&b_key, &a_id, path, b"original");
    let altered = with_stamp(&stamp, path, b"altered!");
    assert_eq!(
        status(
            &member
                .send(&address, altered, deadline, 1 << 20)
                .await
                .unwrap()
        ),
        403
    );
    let first = member
        .send(
            &address,
            with_stamp(&stamp, path, b"original"),
            deadline,
            1 << 20,
        )
        .await
        .unwrap();
    // Past the checks: not federated here, so not run (404).
    assert_eq!(status(&first), 404, "{:?}", first.body());
    let replayed = member
        .send(
            &address,
            with_stamp(&stamp, path, b"original"),
            deadline,
            1 << 20,
        )
        .await
        .unwrap();
    assert_eq!(status(&replayed), 403);
    assert!(String::from_utf8_lossy(replayed.body()).contains("replayed"));
    // A member signing as another site: refused.
    let (_, spoofed) = signed(&outsider, &a_id, path, b"x");
    assert_eq!(
        status(
            &member
                .send(&address, spoofed, deadline, 1 << 20)
                .await
                .unwrap()
        ),
        403
    );
    // Unsigned: refused.
    let unsigned = http::Request::post(path).body(Bytes::new()).unwrap();
    assert_eq!(
        status(
            &member
                .send(&address, unsigned, deadline, 1 << 20)
                .await
                .unwrap()
        ),
        403
    );

    let metrics = a.get("/metrics").await.text();
    let refused = |peer: &str, reason: &str| {
        metric(
            &metrics,
            &format!("baton_federation_refused_total{{peer=\"{peer}\",reason=\"{reason}\"}}"),
        )
    };
    let outsider_id = outsider.id().to_string();
    assert_eq!(refused(&outsider_id, "not-member"), 2.0, "{metrics}");
    assert_eq!(refused(&b_id, "bad-signature"), 1.0, "{metrics}");
    assert_eq!(refused(&b_id, "replayed"), 1.0, "{metrics}");
    assert_eq!(refused(&b_id, "malformed-stamp"), 2.0, "{metrics}");
    // Nothing ran.
    assert!(!metrics.contains("gateway_function_invocation_total{function_name=\"plain\""));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_site_certified_by_a_listed_authority_is_admitted_and_others_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let (authority_dir, b_dir, c_dir) = (
        dir.path().join("authority"),
        dir.path().join("b"),
        dir.path().join("c"),
    );
    let authority = site_id(&authority_dir);
    let c_id = site_id(&c_dir);
    let b_id = site_id(&b_dir);
    // The authority certifies c; b lists only the authority.
    let output = std::process::Command::new(crate::harness::BATON)
        .args(["federation", "certify", &c_id, "--days", "1", "--data-dir"])
        .arg(&authority_dir)
        .output()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let certificate = dir.path().join("c.certificate.json");
    std::fs::write(&certificate, &output.stdout).unwrap();
    let ports = free_ports(2);
    let b = site(
        &b_dir,
        ports[0],
        &[],
        &format!("examples = false\n[federation]\nauthorities = [\"{authority}\"]\n"),
    );
    let _c = site(
        &c_dir,
        ports[1],
        &[format!("{b_id}@127.0.0.1:{}", ports[0])],
        &format!(
            "examples = false\n[federation]\ncertificate = \"{}\"\n",
            certificate.display()
        ),
    );
    let admitted = eventually(Duration::from_secs(30), || async {
        let status = b.get("/system/federation").await.json();
        status["peers"]
            .as_array()
            .is_some_and(|peers| peers.iter().any(|p| p["id"] == c_id && p["up"] == true))
    })
    .await;
    assert!(admitted, "b never admitted the certified site");
    // A site with no certificate, dialling b, is refused.
    let outsider = SiteKey::generate().unwrap().0;
    let link = Link::new(&outsider, b_id.parse().unwrap()).unwrap();
    let round = http::Request::post("/federation/v1/round")
        .body(Bytes::from_static(br#"{"address":"127.0.0.1:1"}"#))
        .unwrap();
    let reply = link
        .send(
            &format!("127.0.0.1:{}", ports[0]),
            round,
            Duration::from_secs(30),
            1 << 20,
        )
        .await
        .unwrap();
    assert_eq!(reply.status(), 403);
    let metrics = b.get("/metrics").await.text();
    assert!(
        metrics.contains(&format!("baton_federation_peer_up{{peer=\"{c_id}\"}} 1")),
        "{metrics}"
    );
}
