//! The example functions `baton up` deploys, embedded in the binary so it needs no checkout.

use anyhow::Context;
use baton_api::{DeployMode, DeployRequest, FunctionAdmin};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The label every example carries: how a restart tells an example from a user's function.
const EXAMPLE_LABEL: &str = "baton.example";

/// Written in the data directory once the examples were first deployed there.
const MARKER: &str = "examples-deployed";

/// Whether one example is deployed at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Deployed, or refreshed to this binary's version.
    Deploy,
    /// Left as it is (absent, or the user's own function of that name).
    Keep,
}

/// An example is deployed when its name is free on the first start of a data directory, and
/// refreshed when the name holds an example; a function of the user's by that name is never
/// touched, and an example the user removed stays removed.
fn plan(existing: Option<&BTreeMap<String, String>>, first_start: bool) -> Plan {
    match existing {
        Some(labels) if labels.get(EXAMPLE_LABEL).map(String::as_str) == Some("true") => {
            Plan::Deploy
        }
        Some(_) => Plan::Keep,
        None if first_start => Plan::Deploy,
        None => Plan::Keep,
    }
}

/// Deploys (or refreshes) hello, echo, json-transform, counter, allreduce and, where python3
/// is installed, the two Python functions, as [`plan`] says.
pub async fn deploy(admin: &dyn FunctionAdmin, data_dir: &Path) -> anyhow::Result<()> {
    let marker = data_dir.join(MARKER);
    let first_start = !marker.exists();
    let existing: HashMap<String, BTreeMap<String, String>> = admin
        .list()
        .await?
        .into_iter()
        .map(|f| (f.name, f.labels))
        .collect();
    let wanted = |name: &str| match plan(existing.get(name), first_start) {
        Plan::Deploy => true,
        Plan::Keep => {
            if existing.contains_key(name) {
                tracing::info!(
                    function = name,
                    "a function of yours has an example's name: the example is not deployed"
                );
            }
            false
        }
    };
    deploy_wanted(admin, data_dir, &wanted).await?;
    std::fs::write(
        &marker,
        "the examples were deployed here once; removed ones stay removed\n",
    )
    .with_context(|| format!("writing {}", marker.display()))?;
    Ok(())
}

async fn deploy_wanted(
    admin: &dyn FunctionAdmin,
    data_dir: &Path,
    wanted: &dyn Fn(&str) -> bool,
) -> anyhow::Result<()> {
    let wasm: [(&str, &[u8]); 5] = [
        ("hello", baton_guests::HELLO),
        ("echo", baton_guests::ECHO),
        ("json-transform", baton_guests::JSON_TRANSFORM),
        ("counter", baton_guests::COUNTER),
        ("allreduce", baton_guests::ALLREDUCE),
    ];
    for (name, bytes) in wasm.into_iter().filter(|(name, _)| wanted(name)) {
        let request = DeployRequest {
            service: name.into(),
            image: format!("embedded:examples/{name}"),
            labels: [(EXAMPLE_LABEL.to_owned(), "true".to_owned())].into(),
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
    for (name, file, source, mode) in python.into_iter().filter(|p| wanted(p.0)) {
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
            labels: [(EXAMPLE_LABEL.to_owned(), "true".to_owned())].into(),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn examples_never_replace_a_users_function_and_stay_removed() {
        let example: BTreeMap<String, String> = [(EXAMPLE_LABEL.into(), "true".into())].into();
        let users = BTreeMap::new();
        // (what holds the name, first start of the data directory, plan)
        let cases = [
            (None, true, Plan::Deploy),
            (None, false, Plan::Keep),
            (Some(&example), true, Plan::Deploy),
            (Some(&example), false, Plan::Deploy),
            (Some(&users), true, Plan::Keep),
            (Some(&users), false, Plan::Keep),
        ];
        for (existing, first, expected) in cases {
            assert_eq!(
                plan(existing, first),
                expected,
                "{existing:?} first={first}"
            );
        }
    }
}
