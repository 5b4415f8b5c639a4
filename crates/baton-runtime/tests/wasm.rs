//! The wasm runtime against real components: the examples and the misbehaving test guest.

use baton_api::{ArtifactDigest, FunctionName, FunctionSpec, Limits, RuntimeSpec};
use baton_runtime::wasm::{CompileCache, WasmConfig, WasmRuntime};
use baton_runtime::{ArtifactStore, FunctionLogs, InvokeError, Runtime, Sandbox};
use bytes::Bytes;
use std::sync::Arc;

struct Fixture {
    _dir: tempfile::TempDir,
    runtime: WasmRuntime,
    artifacts: ArtifactStore,
}

fn fixture() -> Fixture {
    fixture_with_pool(50)
}

fn fixture_with_pool(pool_instances: u32) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let artifacts = ArtifactStore::open(dir.path().join("artifacts")).unwrap();
    let cache = CompileCache::open(dir.path().join("cache")).unwrap();
    let config = WasmConfig {
        pool_instances,
        ..WasmConfig::default()
    };
    let runtime = WasmRuntime::new(&config, artifacts.clone(), cache, None).unwrap();
    Fixture {
        _dir: dir,
        runtime,
        artifacts,
    }
}

fn spec(name: &str, component: ArtifactDigest, limits: Limits) -> FunctionSpec {
    let runtime = RuntimeSpec::Wasm { component };
    FunctionSpec {
        env: [("GREETING".to_owned(), "bonjour".to_owned())].into(),
        limits,
        ..FunctionSpec::new(FunctionName::new(name).unwrap(), runtime)
    }
}

async fn sandbox(
    f: &Fixture,
    bytes: &[u8],
    limits: Limits,
) -> (Arc<dyn Sandbox>, Arc<FunctionLogs>) {
    let digest = f.artifacts.put(bytes).unwrap();
    let prepared = f
        .runtime
        .prepare(&spec("f", digest, limits), None)
        .await
        .unwrap();
    let logs = Arc::new(FunctionLogs::new(100));
    (prepared.create_sandbox(logs.sink("s")).await.unwrap(), logs)
}

fn get(path: &str) -> http::Request<Bytes> {
    http::Request::builder()
        .uri(path)
        .body(Bytes::new())
        .unwrap()
}

#[tokio::test]
async fn hello_answers_with_its_query() {
    let f = fixture();
    let (sandbox, _) = sandbox(&f, baton_guests::HELLO, Limits::default()).await;
    let response = sandbox.invoke(get("/?name=Baton")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.body(), "Hello, Baton!\n");
}

#[tokio::test]
async fn echo_returns_body_method_and_path() {
    let f = fixture();
    let (sandbox, _) = sandbox(&f, baton_guests::ECHO, Limits::default()).await;
    let request = http::Request::builder()
        .method("PUT")
        .uri("/some/path?q=1")
        .body(Bytes::from_static(b"payload"))
        .unwrap();
    let response = sandbox.invoke(request).await.unwrap();
    assert_eq!(response.body(), "payload");
    assert_eq!(response.headers()["x-echo-method"], "PUT");
    assert_eq!(response.headers()["x-echo-path"], "/some/path?q=1");
}

#[tokio::test]
async fn environment_reaches_the_guest() {
    let f = fixture();
    let (sandbox, _) = sandbox(&f, baton_guests::MISBEHAVE, Limits::default()).await;
    let response = sandbox.invoke(get("/env?name=GREETING")).await.unwrap();
    assert_eq!(response.body(), "bonjour");
}

#[tokio::test]
async fn a_trap_is_an_error_with_the_guest_message() {
    let f = fixture();
    let (sandbox, logs) = sandbox(&f, baton_guests::MISBEHAVE, Limits::default()).await;
    let error = sandbox.invoke(get("/trap")).await.unwrap_err();
    let InvokeError::Trap(message) = &error else {
        panic!("expected a trap, got {error:?}")
    };
    assert!(message.contains("unreachable"), "{message}");
    let printed: Vec<String> = logs.tail(10).into_iter().map(|l| l.text).collect();
    assert!(
        printed
            .iter()
            .any(|l| l.contains("misbehave asked to trap")),
        "{printed:?}"
    );
    // The sandbox still serves after a trap: the next request gets a fresh instance.
    assert_eq!(sandbox.invoke(get("/ok")).await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_spinning_guest_is_stopped_at_its_timeout() {
    let f = fixture();
    let limits = Limits {
        timeout_ms: 200,
        ..Limits::default()
    };
    let (sandbox, _) = sandbox(&f, baton_guests::MISBEHAVE, limits).await;
    let error = sandbox.invoke(get("/spin")).await.unwrap_err();
    assert!(matches!(error, InvokeError::Timeout(_)), "{error:?}");
    assert_eq!(sandbox.invoke(get("/ok")).await.unwrap().status(), 200);
}

/// Calls `/ok` (as a function's nested call when `nested`) until `done` accepts the outcome;
/// panics after a minute.
async fn until(
    sandbox: &Arc<dyn Sandbox>,
    nested: bool,
    done: impl Fn(&Result<http::Response<Bytes>, InvokeError>) -> bool,
) -> Result<http::Response<Bytes>, InvokeError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let mut request = get("/ok");
        if nested {
            request
                .headers_mut()
                .insert(baton_api::outbound::CALL_DEPTH_HEADER, 1.into());
        }
        let outcome = sandbox.invoke(request).await;
        if done(&outcome) {
            return outcome;
        }
        assert!(std::time::Instant::now() < deadline, "still {outcome:?}");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn outside_requests_take_half_the_instances_and_nested_calls_the_rest() {
    let f = fixture_with_pool(2);
    let (sandbox, _) = sandbox(&f, baton_guests::MISBEHAVE, Limits::default()).await;
    // One request from outside holds an instance until it is dropped (it tries again when a
    // call of `/ok` below had the instance first).
    let holder = tokio::spawn({
        let sandbox = sandbox.clone();
        async move {
            loop {
                match sandbox.invoke(get("/sleep?ms=120000")).await {
                    Err(InvokeError::InstanceLimit(_)) => tokio::task::yield_now().await,
                    other => return other,
                }
            }
        }
    });
    let refused = until(&sandbox, false, |o| o.is_err()).await.unwrap_err();
    assert!(
        matches!(refused, InvokeError::InstanceLimit(_)),
        "{refused:?}"
    );
    assert_eq!(refused.kind(), baton_api::ErrorKind::Overloaded, "a 429");
    assert!(refused.to_string().contains("retry"), "{refused}");
    // A function's call takes the half kept for such calls.
    let nested = until(&sandbox, true, |_| true).await.unwrap();
    assert_eq!(nested.body(), "ok\n");
    holder.abort();
    let served = until(&sandbox, false, |o| o.is_ok()).await.unwrap();
    assert_eq!(served.body(), "ok\n");
}

#[tokio::test]
async fn memory_and_stack_exhaustion_end_one_invocation() {
    let f = fixture();
    let limits = Limits {
        memory_bytes: 16 << 20,
        ..Limits::default()
    };
    let (sandbox, _) = sandbox(&f, baton_guests::MISBEHAVE, limits).await;
    let oom = sandbox.invoke(get("/oom")).await.unwrap_err();
    assert!(
        matches!(&oom, InvokeError::Trap(m) if m.contains("memory")),
        "{oom:?}"
    );
    let stack = sandbox.invoke(get("/stack")).await.unwrap_err();
    // Rust keeps its stack in linear memory: overflowing it is an out-of-bounds access, which
    // the message names; a wasm call-stack overflow says "call stack exhausted".
    assert!(
        matches!(&stack, InvokeError::Trap(m) if m.contains("stack")),
        "{stack:?}"
    );
    assert_eq!(sandbox.invoke(get("/ok")).await.unwrap().status(), 200);
}

#[tokio::test]
async fn oversized_output_is_refused() {
    let f = fixture();
    let limits = Limits {
        max_output_bytes: 1000,
        ..Limits::default()
    };
    let (sandbox, _) = sandbox(&f, baton_guests::MISBEHAVE, limits).await;
    assert_eq!(
        sandbox
            .invoke(get("/big?bytes=1000"))
            .await
            .unwrap()
            .body()
            .len(),
        1000
    );
    let error = sandbox.invoke(get("/big?bytes=1001")).await.unwrap_err();
    assert_eq!(error, InvokeError::OutputTooLarge(1000));
}

#[tokio::test]
async fn non_components_are_refused_with_a_reason() {
    let f = fixture();
    let core_module = b"\0asm\x01\0\0\0";
    let error = f.runtime.prepare_bytes(
        core_module,
        &spec("f", ArtifactStore::digest(b""), Limits::default()),
    );
    assert!(
        error
            .err()
            .unwrap()
            .to_string()
            .contains("core wasm module")
    );
    let garbage = b"definitely not wasm";
    let error = f.runtime.prepare_bytes(
        garbage,
        &spec("f", ArtifactStore::digest(b""), Limits::default()),
    );
    assert!(format!("{:#}", error.err().unwrap()).contains("not a valid WebAssembly component"));
}

#[tokio::test]
async fn a_second_runtime_loads_the_compiled_component_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let cache_dir = dir.path().join("cache");
    let make = || {
        let artifacts = ArtifactStore::open(dir.path().join("a")).unwrap();
        WasmRuntime::new(
            &WasmConfig {
                pool_instances: 10,
                ..Default::default()
            },
            artifacts,
            CompileCache::open(&cache_dir).unwrap(),
            None,
        )
        .unwrap()
    };
    let digest = ArtifactStore::digest(baton_guests::HELLO);
    make()
        .prepare_bytes(
            baton_guests::HELLO,
            &spec("f", digest.clone(), Limits::default()),
        )
        .unwrap();
    let compiled = |dir: &std::path::Path| -> std::path::PathBuf {
        let entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        entries[0].clone()
    };
    let file = compiled(&cache_dir);
    assert!(
        file.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with(&digest.0)
    );
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&cache_dir).unwrap().permissions(),
    );
    assert_eq!(mode & 0o777, 0o700, "the cache is private to the node");
    let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
    make()
        .prepare_bytes(
            baton_guests::HELLO,
            &spec("f", digest.clone(), Limits::default()),
        )
        .unwrap();
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        modified,
        "loaded, not compiled again"
    );
    // Someone else's native code in the cache (here: another component's compilation under
    // this one's name) fails the keyed hash and is compiled over, never run.
    make()
        .prepare_bytes(
            baton_guests::ECHO,
            &spec(
                "g",
                ArtifactStore::digest(baton_guests::ECHO),
                Limits::default(),
            ),
        )
        .unwrap();
    let echo = std::fs::read_dir(&cache_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.extension().is_some_and(|e| e == "cwasm")
                && p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with(&ArtifactStore::digest(baton_guests::ECHO).0)
        })
        .unwrap();
    std::fs::copy(&echo, &file).unwrap();
    let runtime = make();
    let function = runtime
        .prepare_bytes(baton_guests::HELLO, &spec("f", digest, Limits::default()))
        .unwrap();
    assert_ne!(
        std::fs::read(&file).unwrap(),
        std::fs::read(&echo).unwrap(),
        "the tampered entry was replaced"
    );
    let response = function
        .handle(
            http::Request::get("/?name=Ada")
                .body(bytes::Bytes::new())
                .unwrap(),
            &std::sync::Arc::new(baton_runtime::FunctionLogs::new(10)).sink("s"),
        )
        .await
        .unwrap();
    assert_eq!(response.body().as_ref(), b"Hello, Ada!\n");
}
