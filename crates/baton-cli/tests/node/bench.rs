//! `baton bench`: the load generator against the baseline server and a local node.

use crate::harness::BATON;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// `baton bench baseline` on an ephemeral port.
fn baseline() -> (Child, String) {
    let mut child = Command::new(BATON)
        .args(["bench", "baseline", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("baseline listening on ")
        .unwrap()
        .to_owned();
    (child, url)
}

/// Runs `baton` with `args` and `path`, expects it to fail, and returns what it said.
fn failure(args: &[&str], path: &std::path::Path) -> String {
    let output = Command::new(BATON).args(args).arg(path).output().unwrap();
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json_of(output: &std::process::Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn closed_and_open_loops_report_counts_and_percentiles() {
    let (mut server, url) = baseline();
    let out = tempfile::tempdir().unwrap();
    let closed = Command::new(BATON)
        .args([
            "bench",
            "load",
            &url,
            "-c",
            "4",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
            "--json",
            "--out",
        ])
        .arg(out.path())
        .output()
        .unwrap();
    let summary = json_of(&closed);
    let requests = summary["requests"].as_u64().unwrap();
    assert!(requests > 0);
    assert_eq!(summary["statuses"]["200"].as_u64(), Some(requests));
    let latency = &summary["latency"];
    assert!(latency["p50_us"].as_u64().unwrap() <= latency["p99_us"].as_u64().unwrap());
    assert!(latency["p99_us"].as_u64().unwrap() <= latency["max_us"].as_u64().unwrap());
    for file in [
        "load.json",
        "load.csv",
        "load-latency.svg",
        "load-cdf.svg",
        "load-throughput.svg",
    ] {
        assert!(out.path().join(file).exists(), "{file} missing");
    }
    let csv = std::fs::read_to_string(out.path().join("load.csv")).unwrap();
    assert!(csv.starts_with("second,requests,p50_us,p99_us\n") && csv.lines().count() >= 2);
    assert!(
        std::fs::read_to_string(out.path().join("load-cdf.svg"))
            .unwrap()
            .starts_with("<svg")
    );

    let open = Command::new(BATON)
        .args([
            "bench",
            "load",
            &url,
            "--rate",
            "200",
            "--poisson",
            "--duration",
            "1s",
            "--warmup",
            "0s",
            "--json",
        ])
        .output()
        .unwrap();
    let summary = json_of(&open);
    let requests = summary["requests"].as_u64().unwrap() as f64;
    // Poisson arrivals at 200/s for 1 s: the count is random but near 200.
    assert!((100.0..=300.0).contains(&requests), "{requests}");
    server.kill().unwrap();
}

/// A hello-world server in this process that counts what it served; everything it holds
/// (listener, connections) closes when the runtime is dropped.
fn counting_server() -> (tokio::runtime::Runtime, String, Arc<AtomicUsize>) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let served = Arc::new(AtomicUsize::new(0));
    let counter = served.clone();
    runtime.spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let counter = counter.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_request| {
                    counter.fetch_add(1, Ordering::SeqCst);
                    async {
                        Ok::<_, std::convert::Infallible>(http::Response::new(
                            http_body_util::Full::new(bytes::Bytes::from_static(b"ok")),
                        ))
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (runtime, url, served)
}

#[test]
fn a_target_that_dies_mid_run_is_reported_as_errors_with_partial_results() {
    let (server, url, served) = counting_server();
    let out = tempfile::tempdir().unwrap();
    let run = Command::new(BATON)
        .args([
            "bench",
            "load",
            &url,
            "-c",
            "2",
            "--duration",
            "8s",
            "--warmup",
            "0s",
            "--timeout",
            "1s",
            "--json",
            "--out",
        ])
        .arg(out.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Dies once the run is under way, however slow the machine is to start it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while served.load(Ordering::SeqCst) < 20 {
        assert!(
            std::time::Instant::now() < deadline,
            "the load never arrived"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    drop(server);
    let summary = json_of(&run.wait_with_output().unwrap());
    assert!(
        summary["requests"].as_u64().unwrap() > 0,
        "requests before the target died count"
    );
    let errors: u64 = summary["errors"]
        .as_object()
        .unwrap()
        .values()
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert!(errors > 0, "{summary}");
    assert!(out.path().join("load.json").exists());
}

#[test]
fn bad_scenarios_and_unreachable_targets_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        "name = \"x\"\ntarget = \"local\"\n[load]\npath = \"/\"\nconnexions = 3\n",
    )
    .unwrap();
    let stderr = failure(&["bench", "run"], &path);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("connexions") && stderr.contains("line 5"),
        "{stderr}"
    );

    std::fs::write(&path, "name = \"x\"\n[load]\npath = \"/\"\n").unwrap();
    assert!(failure(&["bench", "run"], &path).contains("missing field `target`"));

    let stderr = failure(
        &["bench", "load", "--duration", "1s"],
        std::path::Path::new("http://127.0.0.1:9/"),
    );
    assert!(stderr.contains("127.0.0.1:9"), "{stderr}");
}

#[test]
fn a_scenario_deploys_to_a_local_node_and_compares_with_the_baseline() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(
        &path,
        "name = \"t\"\ntarget = \"local\"\nbaseline = true\n[[deploy]]\nname = \"hello\"\nwasm = \"examples/hello\"\n\
         [load]\npath = \"/function/hello\"\nconnections = 2\nwarmup = \"100ms\"\nduration = \"1s\"\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    let output = Command::new(BATON)
        .args(["bench", "run", "--json", "--out"])
        .arg(&out)
        .arg(&path)
        .output()
        .unwrap();
    let summary = json_of(&output);
    let runs = summary["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(runs[0]["label"], "baseline");
    assert!(
        runs[1]["statuses"]["200"].as_u64().unwrap() > 0,
        "{summary}"
    );
    assert!(summary["throughput_ratio_to_baseline"].as_f64().unwrap() > 0.0);
    assert!(out.join("summary.json").exists() && out.join("target.csv").exists());
}

#[test]
fn a_synthetic_trace_replays_against_a_local_node() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace");
    let generated = Command::new(BATON)
        .args([
            "bench",
            "trace",
            "generate",
            "--functions",
            "3",
            "--minutes",
            "1",
            "--min-rate",
            "5",
            "--max-rate",
            "20",
            "--out",
        ])
        .arg(&trace)
        .output()
        .unwrap();
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    for file in ["invocations.csv", "durations.csv", "memory.csv"] {
        assert!(trace.join(file).exists());
    }
    let out = dir.path().join("out");
    let replayed = Command::new(BATON)
        .args([
            "bench",
            "trace",
            "replay",
            "--minute",
            "1s",
            "--max-duration",
            "20ms",
            "--max-memory-mb",
            "4",
            "--json",
            "--out",
        ])
        .arg(&out)
        .arg(&trace)
        .output()
        .unwrap();
    let summary = json_of(&replayed);
    let invocations = summary["invocations"].as_u64().unwrap();
    assert!(invocations > 0);
    assert_eq!(summary["failures"], 0, "{summary}");
    let cold = summary["cold_starts"].as_u64().unwrap();
    assert!(cold >= 1 && cold <= invocations);
    assert!(
        summary["slowdown_median"].as_f64().unwrap() >= 1.0,
        "a response cannot beat the execution it waits for"
    );
    assert!(out.join("replay-functions.csv").exists());
}

#[test]
fn a_malformed_trace_row_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trace.csv");
    std::fs::write(
        &path,
        "app,func,end_timestamp,duration\na,f,10,1\na,f,ten,1\n",
    )
    .unwrap();
    let stderr = failure(&["bench", "trace", "replay"], &path);
    assert!(
        stderr.contains("trace.csv:3") && stderr.contains("end_timestamp"),
        "{stderr}"
    );
}

#[tokio::test]
async fn templated_bodies_reach_the_function_one_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let node =
        crate::harness::Node::start(&dir.path().join("data"), crate::harness::Options::default());
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    // The function runs as its own user: it may write here because the directory lets it.
    std::fs::set_permissions(&work, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    std::fs::write(
        work.join("record.sh"),
        "cat >> bodies.txt; echo >> bodies.txt",
    )
    .unwrap();
    // One request at a time, so the appends cannot interleave.
    let spec = serde_json::json!({
        "service": "record",
        "envProcess": "sh record.sh",
        "envVars": {"mode": "classic", "max_inflight": "1"},
        "workingDir": work.display().to_string(),
        "labels": {"com.openfaas.scale.max": "1"},
    });
    assert_eq!(node.deploy("POST", spec).await.status, 201);
    let url = format!("{}/function/record", node.url);
    let output = Command::new(BATON)
        .args([
            "bench",
            "load",
            &url,
            "-c",
            "1",
            "-X",
            "POST",
            "--requests",
            "5",
            "--warmup",
            "0s",
            "--body-template",
            "n={{seq}}",
            "--json",
        ])
        .output()
        .unwrap();
    let summary = json_of(&output);
    assert_eq!(summary["statuses"]["200"], 5, "{summary}");
    let bodies = std::fs::read_to_string(work.join("bodies.txt")).unwrap();
    let lines: Vec<&str> = bodies.lines().collect();
    assert_eq!(lines, ["n=0", "n=1", "n=2", "n=3", "n=4"]);
}
