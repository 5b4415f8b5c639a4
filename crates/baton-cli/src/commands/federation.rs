//! `baton federation`: this site's identity in a federation of edge sites.

use crate::cli::FederationCommand;
use baton_federation::SiteKey;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where a site keeps its key pair, under its data directory.
pub fn key_file(data_dir: &Path) -> PathBuf {
    data_dir.join("federation").join("site.key")
}

pub async fn run(command: FederationCommand) -> anyhow::Result<ExitCode> {
    match command {
        FederationCommand::Status { target } => return status(target).await,
        FederationCommand::Certify {
            site,
            days,
            data_dir,
        } => {
            let data_dir = data_dir.unwrap_or_else(crate::config::default_data_dir);
            let authority = SiteKey::load_or_create(&key_file(&data_dir))?;
            let member: baton_federation::SiteId = site.parse()?;
            anyhow::ensure!(days > 0 && days <= 3650, "--days must be 1 to 3650");
            let now_ms = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis() as u64;
            let certificate = baton_federation::membership::Certificate::issue(
                &authority,
                member,
                now_ms + days * 86_400_000,
            );
            crate::output::json(&certificate)?;
        }
        FederationCommand::Id { data_dir, json } => {
            let data_dir = data_dir.unwrap_or_else(crate::config::default_data_dir);
            let path = key_file(&data_dir);
            let key = SiteKey::load_or_create(&path)?;
            match json {
                true => crate::output::json(&serde_json::json!({
                    "id": key.id(),
                    "key_file": path,
                }))?,
                false => println!("{}", key.id()),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `baton federation status`.
async fn status(target: crate::cli::Target) -> anyhow::Result<ExitCode> {
    let client = crate::client::ApiClient::new(&target)?;
    let reply = client.get("/system/federation").await?;
    if reply.status == http::StatusCode::NOT_FOUND {
        anyhow::bail!(
            "{} is not a federation site (start it with BATON_FEDERATION_LISTEN)",
            target.gateway
        );
    }
    let status: serde_json::Value = reply.ok()?.json()?;
    if target.json {
        crate::output::json(&status)?;
        return Ok(ExitCode::SUCCESS);
    }
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::Null => "-".to_string(),
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    println!(
        "site {} on {} ({} strategy, rounds every {} ms)",
        text(&status["site"]),
        text(&status["address"]),
        text(&status["strategy"]),
        text(&status["period_ms"])
    );
    let empty = Vec::new();
    let mut rows = Vec::new();
    for peer in status["peers"].as_array().unwrap_or(&empty) {
        let functions = peer["functions"].as_array().unwrap_or(&empty);
        let grants: Vec<String> = functions
            .iter()
            .map(|f| {
                let slots = |g: &serde_json::Value| match g {
                    serde_json::Value::Number(n) => format!("{:.1}", n.as_f64().unwrap_or(0.0)),
                    serde_json::Value::String(s) => s.clone(),
                    _ => "-".to_string(),
                };
                format!(
                    "{} room {:.1} to-us {} by-us {}",
                    text(&f["name"]),
                    f["headroom"].as_f64().unwrap_or(0.0),
                    slots(&f["granted_to_us"]),
                    slots(&f["granted_by_us"])
                )
            })
            .collect();
        rows.push(vec![
            text(&peer["id"]),
            text(&peer["address"]),
            if peer["up"].as_bool() == Some(true) {
                "up"
            } else {
                "down"
            }
            .to_string(),
            peer["rtt_ms"]
                .as_f64()
                .map_or("-".into(), |ms| format!("{ms:.2}")),
            grants.join("; "),
        ]);
    }
    crate::output::table(&["PEER", "ADDRESS", "STATE", "RTT MS", "FUNCTIONS"], &rows);
    let rows: Vec<Vec<String>> = status["functions"]
        .as_array()
        .unwrap_or(&empty)
        .iter()
        .map(|f| {
            vec![
                text(&f["name"]),
                f["origin"]
                    .as_str()
                    .map_or("here".into(), |o| o[..8.min(o.len())].to_string()),
                format!("{:.1}", f["capacity"].as_f64().unwrap_or(0.0)),
                format!("{:.1}", f["demand"].as_f64().unwrap_or(0.0)),
                text(&f["running"]),
                text(&f["route"]),
            ]
        })
        .collect();
    println!();
    crate::output::table(
        &[
            "FUNCTION", "ORIGIN", "CAPACITY", "DEMAND", "RUNNING", "ROUTE",
        ],
        &rows,
    );
    Ok(ExitCode::SUCCESS)
}
