use crate::cli::DeployArgs;
use crate::client::ApiClient;
use anyhow::{Context, bail};
use baton_api::DeployRequest;
use baton_api::FunctionStatus;
use baton_api::manifest::{ManifestFunction, read_manifest, read_stack};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

pub async fn run(args: DeployArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.target)?;
    let mut deployments = if let Some(stack) = &args.stack {
        read_stack(stack, &mut |request| {
            if !args.target.json {
                eprintln!("building {} from template {} …", request.name, request.lang);
            }
            crate::templates::build(request)
        })?
    } else if let Some(name) = &args.name {
        let env = args
            .env
            .iter()
            .map(|pair| {
                pair.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .context(format!("--env {pair:?} is not KEY=VALUE"))
            })
            .collect::<anyhow::Result<BTreeMap<_, _>>>()?;
        let function = ManifestFunction::from_flags(
            args.wasm,
            args.process,
            args.mode,
            args.dir,
            args.timeout,
            args.memory,
            env,
        );
        vec![function.into_deployment(name, Path::new("."))?]
    } else {
        let file = args.file.clone().unwrap_or_else(|| "baton.toml".into());
        read_manifest(&file)?
    };
    if !args.only.is_empty() {
        deployments.retain(|d| args.only.contains(&d.request.service));
        if deployments.is_empty() {
            bail!("none of {:?} is in the file", args.only);
        }
    }
    let mut statuses = Vec::new();
    let mut failed = 0;
    for deployment in deployments {
        let name = deployment.request.service.clone();
        if !args.target.json {
            eprint!("deploying {name} … ");
        }
        let started = Instant::now();
        let component = match &deployment.component {
            Some(path) => match std::fs::read(path) {
                Ok(bytes) => Some(Bytes::from(bytes)),
                Err(error) => {
                    failed += 1;
                    eprintln!("failed: reading component {}: {error}", path.display());
                    continue;
                }
            },
            None => None,
        };
        match deploy_one(&client, &deployment.request, component).await {
            Ok(status) => {
                if !args.target.json {
                    eprintln!(
                        "ok (version {}, {} ms)",
                        status.version,
                        started.elapsed().as_millis()
                    );
                }
                statuses.push(status);
            }
            Err(error) => {
                failed += 1;
                if args.target.json {
                    eprintln!("error: {name}: {error:#}");
                } else {
                    eprintln!("failed: {error:#}");
                }
            }
        }
    }
    if args.target.json {
        crate::output::json(&statuses)?;
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Creates or updates one function: PUT first, POST when it does not exist yet, as
/// `faas-cli deploy` does. Components are uploaded so the node need not see the file.
pub async fn deploy_one(
    client: &ApiClient,
    deployment: &DeployRequest,
    component: Option<Bytes>,
) -> anyhow::Result<FunctionStatus> {
    let json = serde_json::to_string(deployment)?;
    let body = component
        .clone()
        .unwrap_or_else(|| Bytes::from(json.clone()));
    let send = |method: http::Method| {
        let request = client.request(method, "/system/functions");
        let request = match &component {
            Some(_) => request
                .header(http::header::CONTENT_TYPE, "application/wasm")
                .header("x-baton-deployment", json.as_str()),
            None => request.header(http::header::CONTENT_TYPE, "application/json"),
        };
        client.send(request, body.clone())
    };
    let reply = send(http::Method::PUT).await?;
    let reply = if reply.status == http::StatusCode::NOT_FOUND {
        send(http::Method::POST).await?
    } else {
        reply
    };
    reply.json()
}
