use crate::cli::InvokeArgs;
use crate::client::ApiClient;
use anyhow::Context;
use bytes::Bytes;
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

pub async fn run(args: InvokeArgs) -> anyhow::Result<ExitCode> {
    let client = ApiClient::new(&args.target)?;
    let body = match (&args.data, &args.data_file) {
        (Some(data), _) => Bytes::from(data.clone()),
        (None, Some(file)) => {
            Bytes::from(std::fs::read(file).with_context(|| format!("reading {}", file.display()))?)
        }
        (None, None) if !std::io::stdin().is_terminal() => {
            let mut buffer = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buffer)
                .context("reading stdin")?;
            Bytes::from(buffer)
        }
        (None, None) => Bytes::new(),
    };
    let method = match &args.method {
        Some(method) => http::Method::from_bytes(method.to_uppercase().as_bytes())
            .context("invalid --method")?,
        None if body.is_empty() => http::Method::GET,
        None => http::Method::POST,
    };
    let prefix = if args.asynchronous {
        "async-function"
    } else {
        "function"
    };
    let path = if args.path.is_empty() || args.path.starts_with('/') || args.path.starts_with('?') {
        args.path.clone()
    } else {
        format!("/{}", args.path)
    };
    let method = if args.asynchronous {
        http::Method::POST
    } else {
        method
    };
    let mut request = client.request(method, &format!("/{prefix}/{}{path}", args.name));
    for header in &args.headers {
        let (name, value) = header
            .split_once(':')
            .with_context(|| format!("header {header:?} is not `Name: value`"))?;
        request = request.header(name.trim(), value.trim());
    }
    if let Some(callback) = &args.callback {
        request = request.header("x-callback-url", callback);
    }
    let reply = client.send(request, body).await?;
    let header = |name: &str| {
        reply
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    if args.target.json {
        crate::output::json(&serde_json::json!({
            "status": reply.status.as_u16(),
            "call_id": header("x-call-id"),
            "duration_seconds": header("x-duration-seconds").parse::<f64>().ok(),
            "cold_start": header("x-baton-cold-start") == "true",
            "body": reply.text(),
        }))?;
    } else if args.asynchronous && reply.status == http::StatusCode::ACCEPTED {
        println!("{}", header("x-call-id"));
    } else if reply.status.is_success() {
        std::io::stdout().write_all(&reply.body)?;
    } else {
        eprintln!("{} {}", reply.status.as_u16(), reply.text().trim_end());
    }
    Ok(if reply.status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
