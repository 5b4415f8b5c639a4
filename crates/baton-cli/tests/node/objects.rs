//! Objects: a `wasi:blobstore` component, the objects API and `baton objects`, write-back
//! that survives `kill -9`, and what bad requests get.

use crate::harness::{Node, Options, eventually};
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;

/// A component built against `wasi:blobstore@0.2.0-draft` as wasmCloud builds them runs
/// unchanged: containers, streamed writes, whole, ranged and streamed reads, listings in
/// pages, copies and moves, all in its namespace, which `baton objects` shows.
#[tokio::test]
async fn a_wasi_blobstore_component_keeps_files_the_cli_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    let settings =
        json!({"labels": {"baton.namespace": "files", "baton.objects.write-back": "drafts"}});
    let reply = node
        .upload("blobs", baton_guests::BLOBSTORE_WASMCLOUD, settings)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    let call = |path: &str| {
        let node = &node;
        let path = format!("/function/blobs{path}");
        async move {
            let reply = node.get(&path).await;
            (reply.status, reply.text())
        }
    };
    assert_eq!(call("/exists?c=photos").await, (200, "false".into()));
    let missing = call("/put?c=photos&key=a").await;
    assert_eq!(missing.0, 500);
    assert!(missing.1.contains("does not exist"), "{}", missing.1);
    assert_eq!(
        call("/create?c=photos").await,
        (200, "created photos\n".into())
    );
    assert_eq!(call("/create?c=drafts").await.0, 200);

    // A body larger than one stream write, written through the output-stream.
    let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    let put = node
        .post("/function/blobs/put?c=photos&key=cat/big.bin", big.clone())
        .await;
    assert_eq!(
        (put.status, put.text()),
        (200, "wrote 20000 bytes\n".into())
    );
    let whole = node
        .get("/function/blobs/get?c=photos&key=cat/big.bin")
        .await;
    assert_eq!((whole.status, &whole.body[..]), (200, &big[..]));
    let streamed = node
        .get("/function/blobs/get?c=photos&key=cat/big.bin&stream=1")
        .await;
    assert_eq!(&streamed.body[..], &big[..]);
    let ranged = node
        .get("/function/blobs/get?c=photos&key=cat/big.bin&start=10&end=14")
        .await;
    assert_eq!(&ranged.body[..], &big[10..=14]);
    assert_eq!(call("/get?c=photos&key=nope").await.0, 404);
    assert_eq!(
        call("/info?c=photos&key=cat/big.bin")
            .await
            .1
            .split(' ')
            .take(3)
            .collect::<Vec<_>>(),
        ["photos", "cat/big.bin", "20000"]
    );

    // What the component wrote is the namespace's, for the CLI and the objects API.
    let got = node.cli(&["objects", "get", "files/photos/cat/big.bin"]);
    assert!(
        got.status.success(),
        "{}",
        String::from_utf8_lossy(&got.stderr)
    );
    assert_eq!(got.stdout, big);
    let listed = node.cli(&["objects", "ls", "files", "--json"]);
    let buckets: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let modes: Vec<(String, bool)> = buckets["buckets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["name"].as_str().unwrap().to_string(),
                b["write_back"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        modes,
        [("drafts".to_string(), true), ("photos".to_string(), false)],
        "the label made drafts write-back"
    );

    // Five names read two at a time; copies and moves across containers.
    for key in ["b", "c", "d"] {
        assert_eq!(
            node.post(&format!("/function/blobs/put?c=photos&key={key}"), key)
                .await
                .status,
            200
        );
    }
    assert_eq!(call("/copy?c=photos&key=b&to=drafts&as=b2").await.0, 200);
    assert_eq!(call("/move?c=photos&key=c&to=drafts&as=c2").await.0, 200);
    assert_eq!(call("/list?c=photos").await.1, "b\ncat/big.bin\nd");
    assert_eq!(call("/list?c=drafts").await.1, "b2\nc2");
    assert_eq!(call("/get?c=drafts&key=c2").await.1, "c");
    assert_eq!(call("/rm?c=photos&key=d").await.0, 200);
    assert_eq!(call("/has?c=photos&key=d").await.1, "false");
    assert_eq!(call("/clear?c=photos").await.0, 200);
    assert_eq!(call("/list?c=photos").await.1, "");
    assert_eq!(call("/drop?c=drafts").await.0, 200);
    assert_eq!(call("/exists?c=drafts").await.1, "false");

    // Bad names reach the guest as errors, nothing stored.
    let bad = call("/create?c=No_Such").await;
    assert_eq!(bad.0, 500);
    assert!(bad.1.contains("bucket name"), "{}", bad.1);
    let bad = call("/put?c=photos&key=a//b").await;
    assert!(bad.1.contains("object key"), "{}", bad.1);
}

/// Write-back buckets acknowledge once the write is in the node's pending log: a node
/// killed with `kill -9` while writes were arriving puts every acknowledged one in the store
/// after its restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_acknowledged_write_back_object_reaches_the_store_after_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing is flushed before the kill unless the queue fills.
    let config = "[objects]\nwrite_back = [\"app/*\"]\nflush_interval = \"1h\"\n".to_owned();
    let options = Options {
        config: Some(config),
        ..Options::default()
    };
    let node = Arc::new(Node::start(dir.path(), options.clone()));
    let made = node
        .send("PUT", "/system/objects/app/scratch", &[], "")
        .await;
    assert_eq!(made.status, 201, "{}", made.text());
    let acknowledged = Arc::new(std::sync::Mutex::new(std::collections::BTreeMap::new()));
    let writer = {
        let (node, acknowledged) = (node.clone(), acknowledged.clone());
        tokio::spawn(async move {
            for i in 0u32.. {
                let key = format!("k{}", i % 40);
                let body = format!("value {i}");
                let reply = node
                    .send(
                        "PUT",
                        &format!("/system/objects/app/scratch/{key}"),
                        &[],
                        body.clone(),
                    )
                    .await;
                if reply.status != 200 {
                    return;
                }
                acknowledged.lock().unwrap().insert(key, body);
            }
        })
    };
    let enough = eventually(Duration::from_secs(60), || async {
        acknowledged.lock().unwrap().len() == 40
    })
    .await;
    assert!(enough, "the writer never got 40 keys acknowledged");
    let pid = node.process.pid() as i32;
    // SAFETY: kill takes integer arguments; the pid is the node's.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let _ = writer.await;
    let expected = acknowledged.lock().unwrap().clone();
    let store = dir.path().join("objects/app/scratch");
    let in_store = |key: &str| std::fs::read_to_string(store.join(key)).ok();
    let flushed_before = expected.keys().filter(|k| in_store(k).is_some()).count();
    assert!(
        flushed_before < expected.len(),
        "everything was flushed before the kill: nothing left to recover"
    );
    drop(Arc::try_unwrap(node).ok().unwrap().kill());

    let node = Node::start(dir.path(), options);
    let flushed = eventually(Duration::from_secs(60), || async {
        expected
            .iter()
            .all(|(key, body)| in_store(key).is_some_and(|stored| values_at_least(&stored, body)))
    })
    .await;
    assert!(
        flushed,
        "after the restart the store lacks acknowledged writes ({flushed_before} of {} were there before the kill)",
        expected.len()
    );
    let stats = node.cli(&["objects", "stats", "--json"]);
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    assert_eq!(stats["dirty_objects"], 0);
}

/// `value N` is the last acknowledged write of its key, or one sent after it whose answer the
/// kill cut off (written, not acknowledged: allowed to be there).
fn values_at_least(stored: &str, acknowledged: &str) -> bool {
    let number = |s: &str| s.strip_prefix("value ").and_then(|n| n.parse::<u32>().ok());
    matches!((number(stored), number(acknowledged)), (Some(s), Some(a)) if s >= a)
}

/// The objects API checks names, sizes and tokens before anything is stored.
#[tokio::test]
async fn the_objects_api_refuses_bad_names_large_objects_and_other_tokens() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[objects]\nmax_object = \"1Ki\"\n".to_owned();
    let node = Node::start(
        dir.path(),
        Options {
            config: Some(config),
            ..Options::default()
        },
    );
    let cases: [(&str, &str, usize, u16, &str); 6] = [
        (
            "PUT",
            "/system/objects/app/UPPER/k",
            1,
            400,
            "InvalidBucketName",
        ),
        (
            "PUT",
            "/system/objects/app/photos/a%2F%2Fb",
            1,
            400,
            "InvalidArgument",
        ),
        (
            "PUT",
            "/system/objects/Bad_Ns/photos/k",
            1,
            400,
            "InvalidArgument",
        ),
        (
            "PUT",
            "/system/objects/app/photos/k",
            2000,
            413,
            "EntityTooLarge",
        ),
        ("GET", "/system/objects/app/never/k", 0, 404, "NoSuchBucket"),
        (
            "DELETE",
            "/system/objects/app/never",
            0,
            404,
            "NoSuchBucket",
        ),
    ];
    for (method, path, size, status, code) in cases {
        let reply = node.send(method, path, &[], vec![b'x'; size]).await;
        assert_eq!(reply.status, status, "{method} {path}: {}", reply.text());
        assert_eq!(reply.json()["code"], code, "{method} {path}");
    }
    let listed = node.get("/system/objects/app").await;
    assert_eq!(listed.json()["buckets"], json!([]), "nothing was stored");
    let anonymous = node
        .send_as_client("GET", "/system/objects/app", &[], "")
        .await;
    assert_eq!(anonymous.status, 401);
    let flush = node
        .send_as_client("POST", "/system/cache/flush", &[], "")
        .await;
    assert_eq!(flush.status, 401);
    // A write-back label naming something that is not a bucket is refused at deploy.
    let settings = json!({"labels": {"baton.objects.write-back": "ok-bucket, Not_A_Bucket"}});
    let deployed = node
        .upload("labelled", baton_guests::BLOBSTORE_WASMCLOUD, settings)
        .await;
    assert_eq!(deployed.status, 400, "{}", deployed.text());
    assert!(
        deployed.text().contains("baton.objects.write-back"),
        "{}",
        deployed.text()
    );
}

/// A process function's peak memory is measured per invocation by its sandbox's memory group:
/// the model sees what each run took, the large input's run and the small one's apart.
#[tokio::test]
async fn a_process_functions_peak_memory_feeds_its_model() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    let scripts = dir.path().join("hungry");
    std::fs::create_dir_all(&scripts).unwrap();
    // Takes as many MiB as the request says, touching every page.
    std::fs::write(
        scripts.join("allocate.py"),
        "import sys\nb = bytearray(int(sys.stdin.read()) << 20)\nb[::4096] = b'x' * len(b[::4096])\nprint(len(b) >> 20)\n",
    )
    .unwrap();
    let deployed = node
        .deploy(
            "POST",
            json!({"service": "hungry", "envProcess": "python3 allocate.py",
                   "envVars": {"mode": "classic"}, "limits": {"memory": "256Mi"},
                   "workingDir": scripts.display().to_string()}),
        )
        .await;
    assert_eq!(deployed.status, 201, "{}", deployed.text());
    let model = || {
        let node = &node;
        async move {
            let models = node.get("/system/cache").await.json()["memory_models"].clone();
            models
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["function"] == "hungry")
                .cloned()
                .unwrap_or_else(|| panic!("no model for the function: {models}"))
        }
    };
    const MIB: u64 = 1 << 20;
    let big = node.post("/function/hungry", "96").await;
    assert_eq!(
        (big.status, big.text().trim()),
        (200, "96"),
        "{}",
        big.text()
    );
    let after_big = model().await;
    assert_eq!(after_big["runs"], 1, "{after_big}");
    let peak = after_big["last_peak_bytes"].as_u64().unwrap();
    assert!(peak >= 96 * MIB, "the 96 MiB run peaked at {peak} bytes");
    let small = node.post("/function/hungry", "4").await;
    assert_eq!(
        (small.status, small.text().trim()),
        (200, "4"),
        "{}",
        small.text()
    );
    let after_small = model().await;
    assert_eq!(after_small["runs"], 2, "{after_small}");
    let peak = after_small["last_peak_bytes"].as_u64().unwrap();
    assert!(
        (4 * MIB..96 * MIB).contains(&peak),
        "the 4 MiB run, in a sandbox of its own, peaked at {peak} bytes"
    );
    assert_eq!(after_small["booked_bytes"], 256 * MIB);
}

/// A bucket larger than a listing page: the API hands it out a page at a time (at most 1,000
/// entries, `next` naming where the next starts), with prefixes rolled up at a delimiter, and
/// `baton objects ls` follows the pages to the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_come_in_pages_and_the_cli_follows_them() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    let created = node.send("PUT", "/system/objects/app/many", &[], "").await;
    assert_eq!(created.status, 201, "{}", created.text());
    let keys: Vec<String> = (0..1003)
        .map(|i| format!("k{i:04}"))
        .chain(["dir/a".to_string(), "dir/b".to_string()])
        .collect();
    let node = Arc::new(node);
    let puts: Vec<_> = keys
        .chunks(100)
        .map(|chunk| {
            let (node, chunk) = (node.clone(), chunk.to_vec());
            tokio::spawn(async move {
                for key in chunk {
                    let path = format!("/system/objects/app/many/{key}");
                    let put = node.send("PUT", &path, &[], key.clone()).await;
                    assert_eq!(put.status, 200, "{key}: {}", put.text());
                }
            })
        })
        .collect();
    for put in puts {
        put.await.unwrap();
    }

    let first = node.get("/system/objects/app/many?delimiter=/").await;
    assert_eq!(first.status, 200, "{}", first.text());
    let first = first.json();
    let page: Vec<&str> = first["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert_eq!(
        page.len(),
        999,
        "a page holds 1,000 entries, the prefix one of them"
    );
    assert_eq!(first["prefixes"], json!(["dir/"]));
    assert_eq!(first["next"], "k0998");
    let second = node
        .get("/system/objects/app/many?delimiter=/&after=k0998&limit=10")
        .await
        .json();
    let rest: Vec<&str> = second["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap())
        .collect();
    assert_eq!(rest, ["k0999", "k1000", "k1001", "k1002"]);
    assert_eq!(second["next"], json!(null));
    let refused = node.get("/system/objects/app/many?limits=3").await;
    assert_eq!(refused.status, 400, "{}", refused.text());

    let listed = node.cli(&["objects", "ls", "app/many", "--json"]);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    let listed: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let all: Vec<String> = listed["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["key"].as_str().unwrap().to_string())
        .collect();
    let mut expected = keys.clone();
    expected.sort();
    assert_eq!(all, expected);
}

/// Where `tests/objects/tools.sh` put `what` (installing it on first use).
fn objects_tool(what: &str) -> std::path::PathBuf {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("objects-tools");
    let status = std::process::Command::new(root.join("tests/objects/tools.sh"))
        .arg(&out)
        .arg(what)
        .status()
        .expect("running tests/objects/tools.sh");
    assert!(
        status.success(),
        "tests/objects/tools.sh {what} failed: {status}"
    );
    out.join(what)
}

/// Unmodified boto3 in a Python process function, configured only by the environment Baton
/// gives it, reads and writes its namespace's buckets through the node's S3 endpoint: the
/// same objects a component and the CLI see; strangers' keys and unsigned requests are
/// refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn boto3_in_a_process_function_reads_and_writes_through_the_s3_endpoint() {
    let boto3 = objects_tool("boto3");
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(&dir.path().join("node"), Options::default());
    let handler = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/objects/boto3-function")
        .canonicalize()
        .unwrap();
    let deployed = node
        .deploy(
            "POST",
            json!({
                "service": "py-s3",
                "envProcess": "python3 handler.py",
                // Python and boto3 start in about a second idle; a loaded machine takes longer.
                "envVars": {"mode": "classic", "PYTHONPATH": boto3.display().to_string(), "exec_timeout": "5m"},
                "labels": {"baton.namespace": "files", "baton.objects.write-back": "drafts"},
                "workingDir": handler.display().to_string(),
            }),
        )
        .await;
    assert_eq!(deployed.status, 201, "{}", deployed.text());
    let call = |op: serde_json::Value| {
        let node = &node;
        async move {
            let reply = node.post("/function/py-s3", op.to_string()).await;
            assert_eq!(reply.status, 200, "{op}: {}", reply.text());
            serde_json::from_str::<serde_json::Value>(reply.text().trim())
                .unwrap_or_else(|e| panic!("{op}: {e}: {}", reply.text()))
        }
    };
    assert_eq!(
        call(json!({"op": "put", "bucket": "photos", "key": "a", "body": "x"})).await,
        json!({"error": "NoSuchBucket"})
    );
    assert_eq!(
        call(json!({"op": "create", "bucket": "photos"})).await,
        json!({"ok": "created"})
    );
    assert_eq!(
        call(json!({"op": "create", "bucket": "drafts"})).await,
        json!({"ok": "created"})
    );
    assert_eq!(
        call(json!({"op": "create", "bucket": "photos"})).await,
        json!({"error": "BucketAlreadyOwnedByYou"})
    );
    for key in ["a.txt", "dir/one", "dir/two", "dir/sub/three", "z.txt"] {
        let op =
            json!({"op": "put", "bucket": "photos", "key": key, "body": format!("body of {key}")});
        assert_eq!(call(op).await, json!({"ok": "stored"}));
    }
    assert_eq!(
        call(json!({"op": "get", "bucket": "photos", "key": "dir/one"})).await,
        json!({"ok": "body of dir/one"})
    );
    assert_eq!(
        call(json!({"op": "range", "bucket": "photos", "key": "a.txt", "range": "bytes=0-3"}))
            .await,
        json!({"ok": "body"})
    );
    assert_eq!(
        call(json!({"op": "head", "bucket": "photos", "key": "z.txt"})).await,
        json!({"ok": 13})
    );
    assert_eq!(
        call(json!({"op": "list", "bucket": "photos", "delimiter": "/"})).await,
        json!({"ok": {"keys": ["a.txt", "z.txt"], "prefixes": ["dir/"]}})
    );
    assert_eq!(
        call(json!({"op": "list", "bucket": "photos", "prefix": "dir/"})).await,
        json!({"ok": {"keys": ["dir/one", "dir/sub/three", "dir/two"], "prefixes": []}})
    );
    assert_eq!(
        call(json!({"op": "get", "bucket": "photos", "key": "nope"})).await,
        json!({"error": "NoSuchKey"})
    );
    assert_eq!(
        call(json!({"op": "buckets"})).await,
        json!({"ok": ["drafts", "photos"]})
    );
    // Write-back, by the function's label: acknowledged, then read back through the cache.
    let op = json!({"op": "put", "bucket": "drafts", "key": "d", "body": "draft"});
    assert_eq!(call(op).await, json!({"ok": "stored"}));
    assert_eq!(
        call(json!({"op": "get", "bucket": "drafts", "key": "d"})).await,
        json!({"ok": "draft"})
    );
    // Past 8 MiB boto3 uploads in parts: 20 MiB, into the write-back bucket, and back whole.
    let op = json!({"op": "round-trip", "bucket": "drafts", "key": "big.bin", "size": 20 << 20});
    assert_eq!(
        call(op).await,
        json!({"ok": {"same": true, "size": 20 << 20}})
    );
    let op = json!({"op": "multipart-refusals", "bucket": "drafts", "key": "parts.bin"});
    assert_eq!(
        call(op).await,
        json!({"ok": [
            ["parts.bin"],
            [1, 2],
            "EntityTooSmall",
            "InvalidPartOrder",
            "InvalidArgument",
            "ok",
            "NoSuchUpload",
            "404",
        ]})
    );

    // The CLI sees what boto3 wrote, and boto3 what the CLI wrote.
    let got = node.cli(&["objects", "get", "files/photos/dir/sub/three"]);
    assert_eq!(
        String::from_utf8_lossy(&got.stdout),
        "body of dir/sub/three"
    );
    let file = dir.path().join("upload.txt");
    std::fs::write(&file, "from the cli").unwrap();
    let put = node.cli(&[
        "objects",
        "put",
        "files/photos/cli.txt",
        file.to_str().unwrap(),
    ]);
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    assert_eq!(
        call(json!({"op": "get", "bucket": "photos", "key": "cli.txt"})).await,
        json!({"ok": "from the cli"})
    );

    assert_eq!(
        call(json!({"op": "copy", "bucket": "photos", "key": "a.txt", "to": "copy.txt"})).await,
        json!({"ok": "copied"})
    );
    assert_eq!(
        call(json!({"op": "get", "bucket": "photos", "key": "copy.txt"})).await,
        json!({"ok": "body of a.txt"})
    );
    assert_eq!(
        call(json!({"op": "delete-bucket", "bucket": "photos"})).await,
        json!({"error": "BucketNotEmpty"})
    );
    let keys = [
        "a.txt",
        "copy.txt",
        "cli.txt",
        "dir/one",
        "dir/two",
        "dir/sub/three",
        "z.txt",
    ];
    assert_eq!(
        call(json!({"op": "delete-many", "bucket": "photos", "keys": keys})).await,
        json!({"ok": "deleted"})
    );
    assert_eq!(
        call(json!({"op": "delete-bucket", "bucket": "photos"})).await,
        json!({"ok": "deleted"})
    );
    assert_eq!(
        call(json!({"op": "stranger", "bucket": "drafts"})).await,
        json!({"ok": ["InvalidAccessKeyId", "AccessDenied"]})
    );
}

/// moto's S3 server on a loopback port of its own; killed when dropped.
struct Moto {
    child: std::process::Child,
    url: String,
}

impl Moto {
    async fn start(port: u16) -> Moto {
        let moto = objects_tool("moto");
        let child = std::process::Command::new(moto.join("bin/moto_server"))
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("starting moto_server");
        let url = format!("http://127.0.0.1:{port}");
        let up = eventually(Duration::from_secs(60), || async {
            raw("GET", &format!("{url}/"), "").await.is_some()
        })
        .await;
        assert!(up, "moto_server did not answer on {url}");
        Moto { child, url }
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One plain HTTP exchange; `None` when nothing answers.
async fn raw(method: &str, url: &str, body: &'static str) -> Option<(u16, bytes::Bytes)> {
    use http_body_util::BodyExt;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Full<bytes::Bytes>>();
    let request = http::Request::builder()
        .method(method)
        .uri(url)
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            body.as_bytes(),
        )))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(30), client.request(request))
        .await
        .ok()?
        .ok()?;
    let status = response.status().as_u16();
    Some((
        status,
        response.into_body().collect().await.ok()?.to_bytes(),
    ))
}

/// With an S3 server behind it (moto, on loopback), the node writes through to it, serves
/// cached objects while it is down, refuses write-through writes with 503 then, queues
/// write-back ones, and flushes them once it is back: nothing acknowledged is lost. A second
/// node on the same server (as a cluster's workers share one) reads what the first stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_s3_store_behind_the_cache_going_down_loses_nothing_acknowledged() {
    let port = crate::harness::free_ports(1)[0];
    let mut moto = Moto::start(port).await;
    let made = raw("PUT", &format!("{}/baton-data", moto.url), "").await;
    assert_eq!(made.map(|r| r.0), Some(200), "making the server's bucket");
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[objects]\nstore = \"s3\"\ns3_endpoint = \"{}\"\ns3_bucket = \"baton-data\"\n\
         s3_access_key_id = \"test\"\ns3_secret_access_key = \"test\"\n\
         write_back = [\"app/queue\"]\nflush_interval = \"100ms\"\n",
        moto.url
    );
    let options = Options {
        config: Some(config),
        ..Options::default()
    };
    let node = Node::start(&dir.path().join("one"), options.clone());
    // Reads only through the server: its cache starts empty.
    let other = Node::start(&dir.path().join("two"), options.clone());
    let put = |path: &str, body: &'static str| {
        let node = &node;
        let path = format!("/system/objects/{path}");
        async move { node.send("PUT", &path, &[], body).await.status }
    };
    let in_server = |path: &'static str, body: &'static str| {
        let other = &other;
        async move {
            let got = other.get(&format!("/system/objects/{path}")).await;
            (got.status, got.text()) == (200, body.to_string())
        }
    };
    assert_eq!(put("app/plain/kept", "cached copy").await, 200);
    assert_eq!(put("app/queue/first", "one").await, 200);
    // Write-through is in the server at once; write-back once flushed.
    assert!(in_server("app/plain/kept", "cached copy").await);
    let flushed = eventually(Duration::from_secs(30), || {
        in_server("app/queue/first", "one")
    })
    .await;
    assert!(flushed, "the write-back object never reached the server");

    // Both nodes write one key; the second flush finds the server's copy changed since its
    // node knew it (a conditional put, refused), counts it, and puts the acknowledged write.
    let theirs = other
        .send("PUT", "/system/objects/app/queue/first", &[], "theirs")
        .await;
    assert_eq!(theirs.status, 200, "{}", theirs.text());
    async fn clean(node: &Node) -> bool {
        node.get("/system/cache").await.json()["dirty_objects"] == 0
    }
    assert!(eventually(Duration::from_secs(30), || clean(&other)).await);
    assert_eq!(put("app/queue/first", "mine").await, 200);
    let counted = eventually(Duration::from_secs(30), || async {
        clean(&node).await
            && node
                .get("/metrics")
                .await
                .text()
                .contains("baton_objects_flush_conflicts_total 1\n")
    })
    .await;
    assert!(counted, "the conflicting flush was not counted");
    let fresh = Node::start(&dir.path().join("three"), options.clone());
    let stored = fresh.get("/system/objects/app/queue/first").await;
    assert_eq!((stored.status, stored.text()), (200, "mine".to_string()));

    drop(moto);
    let got = node.get("/system/objects/app/plain/kept").await;
    assert_eq!(
        (got.status, got.text()),
        (200, "cached copy".into()),
        "a cached read needs no store"
    );
    let refused = node
        .send("PUT", "/system/objects/app/plain/new", &[], "x")
        .await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.header("retry-after"), "1");
    for key in ["a", "b", "c"] {
        assert_eq!(
            put(&format!("app/queue/{key}"), "queued").await,
            200,
            "write-back queues"
        );
    }
    let flush = node.send("POST", "/system/cache/flush", &[], "").await;
    assert_eq!(flush.status, 503, "{}", flush.text());

    // The server comes back empty (moto keeps nothing) and the queue drains into it.
    moto = Moto::start(port).await;
    let made = raw("PUT", &format!("{}/baton-data", moto.url), "").await;
    assert_eq!(made.map(|r| r.0), Some(200));
    let remade = other
        .send("PUT", "/system/objects/app/queue", &[], "")
        .await;
    assert_eq!(remade.status, 201, "{}", remade.text());
    let drained = eventually(Duration::from_secs(60), || async {
        in_server("app/queue/a", "queued").await
            && in_server("app/queue/b", "queued").await
            && in_server("app/queue/c", "queued").await
    })
    .await;
    assert!(
        drained,
        "queued write-back objects never reached the server after it came back"
    );
    drop(moto);
}

/// The cache takes what the worker's sandboxes are predicted to leave of its memory: a new
/// sandbox booking 256 MiB of a 512 MiB worker shrinks it to what is left; every invocation's
/// peak memory feeds the function's model.
#[tokio::test]
async fn the_cache_gives_memory_back_when_a_sandbox_needs_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = "[worker]\nmemory = \"512Mi\"\n[objects]\ncache = \"1Gi\"\n".to_owned();
    let node = Node::start(
        dir.path(),
        Options {
            config: Some(config),
            ..Options::default()
        },
    );
    let capacity = || {
        let node = &node;
        async move { node.get("/system/cache").await.json()["capacity_bytes"].as_u64() }
    };
    let whole = eventually(Duration::from_secs(30), || async {
        capacity().await == Some(512 << 20)
    })
    .await;
    assert!(whole, "the cache never took the idle worker's memory");
    let settings = json!({"limits": {"memory": "256Mi"}});
    let reply = node
        .upload("blobs", baton_guests::BLOBSTORE_WASMCLOUD, settings)
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    assert_eq!(node.get("/function/blobs/create?c=stuff").await.status, 200);
    let shrunk = eventually(Duration::from_secs(30), || async {
        capacity().await == Some(256 << 20)
    })
    .await;
    assert!(shrunk, "the cache kept memory the sandbox booked");
    let models = node.get("/system/cache").await.json()["memory_models"].clone();
    let model = &models[0];
    assert_eq!(model["function"], "blobs");
    assert_eq!(model["booked_bytes"], 256 << 20);
    assert!(model["last_peak_bytes"].as_u64().unwrap() > 0, "{models}");
    assert_eq!(model["mature"], false, "one run is not a model");
}

/// A component written with `baton_sdk::objects` keeps objects the CLI reads, and reads what
/// the CLI wrote.
#[tokio::test]
async fn the_sdk_keeps_objects_through_wasi_blobstore() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::start(dir.path(), Options::default());
    let reply = node
        .upload("sdk-objects", baton_guests::OBJECTS_SDK, json!({}))
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text());
    let body: Vec<u8> = (0..10_000u32).map(|i| (i % 256) as u8).collect();
    let put = node
        .post(
            "/function/sdk-objects/put?bucket=notes&key=a/b",
            body.clone(),
        )
        .await;
    assert_eq!(
        (put.status, put.text()),
        (200, "stored 10000 bytes\n".into())
    );
    let got = node.cli(&["objects", "get", "sdk-objects/notes/a/b"]);
    assert_eq!(got.stdout, body, "{}", String::from_utf8_lossy(&got.stderr));
    let file = dir.path().with_extension("txt");
    std::fs::write(&file, "from the cli").unwrap();
    let put = node.cli(&[
        "objects",
        "put",
        "sdk-objects/notes/c",
        file.to_str().unwrap(),
    ]);
    assert!(
        put.status.success(),
        "{}",
        String::from_utf8_lossy(&put.stderr)
    );
    let read = node
        .get("/function/sdk-objects/get?bucket=notes&key=c")
        .await;
    assert_eq!((read.status, read.text()), (200, "from the cli".into()));
    let keys = node.get("/function/sdk-objects/keys?bucket=notes").await;
    assert_eq!(keys.text(), "a/b\nc");
    assert_eq!(
        node.get("/function/sdk-objects/delete?bucket=notes&key=c")
            .await
            .status,
        200
    );
    assert_eq!(
        node.get("/function/sdk-objects/get?bucket=notes&key=c")
            .await
            .status,
        404
    );
    let missing = node
        .get("/function/sdk-objects/get?bucket=nowhere&key=c")
        .await;
    assert_eq!(missing.status, 500);
    assert!(
        missing.text().contains("does not exist"),
        "{}",
        missing.text()
    );
}
