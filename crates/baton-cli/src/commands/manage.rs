use crate::cli::{ListArgs, LogsArgs, NameArgs, RemoveArgs};
use crate::client::ApiClient;
use baton_api::{FunctionStatus, LogEntry};
use std::process::ExitCode;

pub async fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.target)?;
    let functions: Vec<FunctionStatus> = client.get("/system/functions").await?.json()?;
    if args.target.json {
        crate::output::json(&functions)?;
        return Ok(ExitCode::SUCCESS);
    }
    let rows: Vec<Vec<String>> = functions
        .iter()
        .map(|f| {
            vec![
                f.name.clone(),
                f.runtime.clone(),
                format!("{}/{}", f.available_replicas.min(f.replicas), f.replicas),
                f.invocation_count.to_string(),
                f.version.to_string(),
                f.image.clone(),
            ]
        })
        .collect();
    crate::output::table(
        &[
            "NAME",
            "RUNTIME",
            "READY",
            "INVOCATIONS",
            "VERSION",
            "IMAGE",
        ],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}

pub async fn nodes(args: ListArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.target)?;
    let nodes: serde_json::Value = client.get("/system/nodes").await?.json()?;
    if args.target.json {
        crate::output::json(&nodes)?;
        return Ok(ExitCode::SUCCESS);
    }
    if nodes["mode"] == "single-node" {
        println!("single node: gateway, control plane and worker run in one process");
        return Ok(ExitCode::SUCCESS);
    }
    let empty = Vec::new();
    let rows: Vec<Vec<String>> = nodes["workers"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|w| {
            let sandboxes = w["sandboxes"].as_array().unwrap_or(&empty);
            let mut per_function = std::collections::BTreeMap::<String, usize>::new();
            for s in sandboxes {
                *per_function
                    .entry(s["function"].as_str().unwrap_or("?").to_owned())
                    .or_default() += 1;
            }
            vec![
                w["id"].as_str().unwrap_or("").to_owned(),
                if w["alive"].as_bool() == Some(true) {
                    "alive"
                } else {
                    "dead"
                }
                .to_owned(),
                w["address"].as_str().unwrap_or("").to_owned(),
                format!(
                    "{:.2}/{:.0}",
                    w["cpuUsed"].as_f64().unwrap_or(0.0),
                    w["cpuCores"].as_f64().unwrap_or(0.0)
                ),
                format!(
                    "{}/{}Mi",
                    w["memoryUsed"].as_u64().unwrap_or(0) >> 20,
                    w["memoryBytes"].as_u64().unwrap_or(0) >> 20
                ),
                sandboxes.len().to_string(),
                per_function
                    .iter()
                    .map(|(f, n)| format!("{f}×{n}"))
                    .collect::<Vec<_>>()
                    .join(" "),
            ]
        })
        .collect();
    crate::output::table(
        &[
            "WORKER",
            "STATE",
            "ADDRESS",
            "CPU",
            "MEMORY",
            "SANDBOXES",
            "FUNCTIONS",
        ],
        &rows,
    );
    for g in nodes["gateways"].as_array().unwrap_or(&empty) {
        println!(
            "gateway {} at {} ({})",
            g["id"].as_str().unwrap_or(""),
            g["address"].as_str().unwrap_or(""),
            if g["connected"].as_bool() == Some(true) {
                "connected"
            } else {
                "disconnected"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn describe(args: NameArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.target)?;
    let f: FunctionStatus = client
        .get(&format!("/system/function/{}", args.name))
        .await?
        .json()?;
    if args.target.json {
        crate::output::json(&f)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!("name:         {}", f.name);
    println!("runtime:      {}", f.runtime);
    println!("image:        {}", f.image);
    if let Some(process) = &f.env_process {
        println!("process:      {process}");
    }
    println!("version:      {}", f.version);
    println!("created:      {}", f.created_at);
    match f.replicas {
        0 if f.available_replicas > 0 => println!("replicas:     0 (starts on demand)"),
        running => println!(
            "replicas:     {} ready of {running}",
            f.available_replicas.min(running)
        ),
    }
    println!("invocations:  {}", f.invocation_count);
    println!("timeout:      {} ms", f.timeout_ms);
    println!(
        "memory:       {}",
        f.limits.memory.as_deref().unwrap_or("-")
    );
    for (key, value) in &f.env_vars {
        println!("env:          {key}={value}");
    }
    for (key, value) in &f.labels {
        println!("label:        {key}={value}");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn remove(args: RemoveArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.target)?;
    let mut failed = false;
    for name in &args.names {
        let body = serde_json::to_vec(&serde_json::json!({ "functionName": name }))?;
        let request = client
            .request(http::Method::DELETE, "/system/functions")
            .header(http::header::CONTENT_TYPE, "application/json");
        match client.send(request, body).await?.ok() {
            Ok(_) => eprintln!("removed {name}"),
            Err(error) => {
                eprintln!("error: {name}: {error}");
                failed = true;
            }
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub async fn logs(args: LogsArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.target)?;
    let mut path = format!(
        "/system/logs?name={}&tail={}&follow={}",
        args.name, args.tail, args.follow
    );
    if let Some(since) = &args.since {
        let ago = baton_api::parse_duration(since).map_err(|e| anyhow::anyhow!("--since: {e}"))?;
        let time = std::time::SystemTime::now() - ago;
        path.push_str(&format!("&since={}", baton_api::rfc3339(time)));
    }
    if let Some(instance) = &args.instance {
        path.push_str(&format!("&instance={instance}"));
    }
    let json = args.target.json;
    client
        .get_lines(&path, |line| {
            if json {
                println!("{line}");
                return Ok(());
            }
            let entry: LogEntry = serde_json::from_str(line)?;
            println!(
                "{} [{}] {:<6} {}",
                entry.timestamp, entry.instance, entry.stream, entry.text
            );
            Ok(())
        })
        .await?;
    Ok(ExitCode::SUCCESS)
}
