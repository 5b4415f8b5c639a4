//! The floor under Baton's warm path: a bare hyper HTTP/1.1 server that runs the `hello`
//! component in a fresh instance per request through the same [`WasmFunction`] Baton uses,
//! with no gateway, worker, routing, metrics or call ids; what `wasmtime serve` does.
//!
//! `cargo run --release -p baton-runtime --example wasm_floor -- 127.0.0.1:18184`, then load
//! it as `baton up` and `baton bench baseline` are loaded (`benchmarks/single-node.sh`
//! does). Beside them it splits Baton's cost per request into what the wasm instance costs
//! and what Baton adds around it.

use baton_api::{FunctionName, FunctionSpec, RuntimeSpec};
use baton_runtime::FunctionLogs;
use baton_runtime::wasm::{CompileCache, WasmConfig, WasmRuntime};
use http_body_util::{BodyExt, Full};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use std::sync::Arc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let listen = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:18184".into());
    let dir = tempfile::tempdir()?;
    let artifacts = baton_runtime::ArtifactStore::open(dir.path().join("artifacts"))?;
    let runtime = WasmRuntime::new(
        &WasmConfig::default(),
        artifacts.clone(),
        CompileCache::open(dir.path().join("compiled"))?,
        None,
    )?;
    let digest = artifacts.put(baton_guests::HELLO)?;
    let spec = FunctionSpec::new(
        FunctionName::new("hello")?,
        RuntimeSpec::Wasm { component: digest },
    );
    let function = runtime.prepare_bytes(baton_guests::HELLO, &spec)?;
    let logs = Arc::new(FunctionLogs::new(10)).sink("floor");
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("wasm floor listening on http://{listen}/");
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let (function, logs) = (function.clone(), logs.clone());
        tokio::spawn(async move {
            let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
                let (function, logs) = (function.clone(), logs.clone());
                async move {
                    let (parts, body) = request.into_parts();
                    let body = body.collect().await?.to_bytes();
                    let response = match function
                        .handle(http::Request::from_parts(parts, body), &logs)
                        .await
                    {
                        Ok(response) => response.map(Full::new),
                        Err(error) => http::Response::builder()
                            .status(500)
                            .body(Full::new(error.to_string().into()))
                            .expect("static response"),
                    };
                    Ok::<_, hyper::Error>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
