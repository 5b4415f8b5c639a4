//! The example functions `baton up` deploys, embedded in the binary so it needs no checkout.

use anyhow::Context;
use baton_api::{DeployMode, DeployRequest, FunctionAdmin};
use bytes::Bytes;
use std::path::Path;

/// Deploys (or refreshes) hello, echo, json-transform, counter, allreduce and, where python3
/// is installed, the two Python functions.
pub async fn deploy(admin: &dyn FunctionAdmin, data_dir: &Path) -> anyhow::Result<()> {
    let wasm: [(&str, &[u8]); 5] = [
        ("hello", baton_guests::HELLO),
        ("echo", baton_guests::ECHO),
        ("json-transform", baton_guests::JSON_TRANSFORM),
        ("counter", baton_guests::COUNTER),
        ("allreduce", baton_guests::ALLREDUCE),
    ];
    for (name, bytes) in wasm {
        let request = DeployRequest {
            service: name.into(),
            image: format!("embedded:examples/{name}"),
            labels: [("baton.example".to_owned(), "true".to_owned())].into(),
            ..DeployRequest::default()
        };
        admin
            .deploy(request, Some(Bytes::from_static(bytes)), DeployMode::Upsert)
            .await
            .with_context(|| format!("deploying example {name}"))?;
    }
    if which_python().is_none() {
        tracing::warn!("python3 not found on PATH: skipping the Python examples");
        return Ok(());
    }
    let dir = data_dir.join("examples");
    let python: [(&str, &str, &str, &str); 2] = [
        (
            "python-classic",
            "handler.py",
            baton_guests::python::CLASSIC_HANDLER,
            "classic",
        ),
        (
            "python-http",
            "server.py",
            baton_guests::python::HTTP_SERVER,
            "http",
        ),
    ];
    for (name, file, source, mode) in python {
        let function_dir = dir.join(name);
        std::fs::create_dir_all(&function_dir)?;
        std::fs::write(function_dir.join(file), source)?;
        let request = DeployRequest {
            service: name.into(),
            image: format!("embedded:examples/{name}"),
            env_process: Some(format!("python3 {file}")),
            env_vars: [
                ("mode".to_owned(), mode.to_owned()),
                ("PYTHONUNBUFFERED".to_owned(), "1".to_owned()),
            ]
            .into(),
            labels: [("baton.example".to_owned(), "true".to_owned())].into(),
            working_dir: Some(function_dir.display().to_string()),
            ..DeployRequest::default()
        };
        admin
            .deploy(request, None, DeployMode::Upsert)
            .await
            .with_context(|| format!("deploying example {name}"))?;
    }
    Ok(())
}

fn which_python() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join("python3"))
        .find(|p| p.is_file())
}
