//! The process runtime against real processes: sh and python3 scripts written per test.

use baton_api::{FunctionName, FunctionSpec, Limits, ProcessMode, RuntimeSpec};
use baton_runtime::process::{ProcessConfig, ProcessRuntime};
use baton_runtime::{FunctionLogs, InvokeError, Runtime, Sandbox};
use bytes::Bytes;
use std::sync::Arc;
use std::time::{Duration, Instant};

fn spec(command: &str, mode: ProcessMode, dir: &std::path::Path, limits: Limits) -> FunctionSpec {
    let runtime = RuntimeSpec::Process {
        command: command.split_whitespace().map(str::to_owned).collect(),
        mode,
        working_dir: Some(dir.display().to_string()),
    };
    FunctionSpec {
        env: [("FROM_SPEC".to_owned(), "yes".to_owned())].into(),
        limits,
        ..FunctionSpec::new(FunctionName::new("p").unwrap(), runtime)
    }
}

async fn sandbox(
    script: &str,
    mode: ProcessMode,
    limits: Limits,
) -> (tempfile::TempDir, Arc<dyn Sandbox>, Arc<FunctionLogs>) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.sh"), script).unwrap();
    let runtime = ProcessRuntime::new(ProcessConfig {
        ready_timeout: Duration::from_secs(3),
        ..Default::default()
    });
    let prepared = runtime
        .prepare(&spec("sh f.sh", mode, dir.path(), limits), None)
        .await
        .unwrap();
    let logs = Arc::new(FunctionLogs::new(100));
    let sandbox = prepared.create_sandbox(logs.sink("s")).await;
    (dir, sandbox.unwrap_or_else(|e| panic!("{e}")), logs)
}

fn post(path: &str, body: &'static str) -> http::Request<Bytes> {
    http::Request::builder()
        .method("POST")
        .uri(path)
        .header("x-thing", "v")
        .body(Bytes::from_static(body.as_bytes()))
        .unwrap()
}

#[tokio::test]
async fn classic_gets_body_on_stdin_and_cgi_environment() {
    let script = r#"read body; echo "$Http_Method $Http_Path $Http_Query $Http_X_Thing $FROM_SPEC $body"; echo to-log >&2"#;
    let (_d, sandbox, logs) = sandbox(script, ProcessMode::Classic, Limits::default()).await;
    let response = sandbox.invoke(post("/a/b?c=d", "hello\n")).await.unwrap();
    assert_eq!(response.body(), "POST /a/b c=d v yes hello\n");
    assert!(logs.tail(5).iter().any(|l| l.text == "to-log"));
}

#[tokio::test]
async fn classic_nonzero_exit_is_exit_status_with_output() {
    let (_d, sandbox, _) = sandbox(
        "echo partial; exit 3",
        ProcessMode::Classic,
        Limits::default(),
    )
    .await;
    let error = sandbox.invoke(post("/", "")).await.unwrap_err();
    assert_eq!(error.to_string(), "exit status 3\npartial\n");
}

#[tokio::test]
async fn classic_timeout_kills_the_whole_process_group() {
    let limits = Limits {
        timeout_ms: 300,
        ..Limits::default()
    };
    let script = "sleep 30 & echo $! > child.pid; wait";
    let (dir, sandbox, _) = sandbox(script, ProcessMode::Classic, limits).await;
    let error = sandbox.invoke(post("/", "")).await.unwrap_err();
    assert!(matches!(error, InvokeError::Timeout(_)), "{error:?}");
    let child: i32 = std::fs::read_to_string(dir.path().join("child.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    // SAFETY: signal 0 only checks whether the process exists.
    while unsafe { libc::kill(child, 0) } == 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_ne!(
        unsafe { libc::kill(child, 0) },
        0,
        "the grandchild survived the timeout"
    );
}

#[tokio::test]
async fn classic_output_flood_is_cut_off() {
    let limits = Limits {
        max_output_bytes: 4096,
        ..Limits::default()
    };
    let (_d, sandbox, _) = sandbox("yes flood", ProcessMode::Classic, limits).await;
    assert_eq!(
        sandbox.invoke(post("/", "")).await.unwrap_err(),
        InvokeError::OutputTooLarge(4096)
    );
}

const HTTP_SERVER: &str = r#"exec python3 -c '
import http.server, os
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/exit":
            os._exit(1)
        body = ("pid=%d path=%s" % (os.getpid(), self.path)).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
'"#;

#[tokio::test]
async fn http_mode_proxies_to_a_warm_process_and_notices_its_death() {
    let (_d, sandbox, _) = sandbox(HTTP_SERVER, ProcessMode::Http, Limits::default()).await;
    let get = |p: &str| http::Request::builder().uri(p).body(Bytes::new()).unwrap();
    let first = sandbox.invoke(get("/x?y=1")).await.unwrap();
    let second = sandbox.invoke(get("/x?y=1")).await.unwrap();
    let text = String::from_utf8(first.body().to_vec()).unwrap();
    assert!(text.ends_with("path=/x?y=1"), "{text}");
    assert_eq!(
        first.body(),
        second.body(),
        "both requests reach the same warm process"
    );
    assert!(sandbox.is_alive());
    assert!(sandbox.invoke(get("/exit")).await.is_err());
    let deadline = Instant::now() + Duration::from_secs(5);
    while sandbox.is_alive() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!sandbox.is_alive());
}

#[tokio::test]
async fn http_mode_process_that_exits_at_once_fails_creation_with_its_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.sh"), "echo cannot start >&2; exit 2").unwrap();
    let runtime = ProcessRuntime::new(ProcessConfig::default());
    let prepared = runtime
        .prepare(
            &spec("sh f.sh", ProcessMode::Http, dir.path(), Limits::default()),
            None,
        )
        .await
        .unwrap();
    let error = prepared
        .create_sandbox(Arc::new(FunctionLogs::new(10)).sink("s"))
        .await
        .err()
        .unwrap();
    assert!(
        error
            .to_string()
            .contains("exited before accepting connections"),
        "{error}"
    );
}

#[tokio::test]
async fn http_mode_process_that_never_listens_fails_after_the_ready_timeout() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("f.sh"), "sleep 30").unwrap();
    let runtime = ProcessRuntime::new(ProcessConfig {
        ready_timeout: Duration::from_millis(300),
        ..Default::default()
    });
    let prepared = runtime
        .prepare(
            &spec("sh f.sh", ProcessMode::Http, dir.path(), Limits::default()),
            None,
        )
        .await
        .unwrap();
    let error = prepared
        .create_sandbox(Arc::new(FunctionLogs::new(10)).sink("s"))
        .await
        .err()
        .unwrap();
    assert!(
        error.to_string().contains("did not accept connections"),
        "{error}"
    );
}

#[tokio::test]
async fn a_missing_program_is_refused_at_prepare() {
    let dir = tempfile::tempdir().unwrap();
    let runtime = ProcessRuntime::new(ProcessConfig::default());
    let error = runtime
        .prepare(
            &spec(
                "no-such-program-xyz",
                ProcessMode::Classic,
                dir.path(),
                Limits::default(),
            ),
            None,
        )
        .await;
    assert!(error.err().unwrap().to_string().contains("not on PATH"));
}
