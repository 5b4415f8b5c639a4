//! `baton objects`: the node's objects API (`/system/objects`, `/system/cache`) from the
//! command line.

use crate::cli::ObjectsCommand;
use crate::client::ApiClient;
use anyhow::{Context, bail};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::Value;
use std::io::{Read, Write};
use std::process::ExitCode;

/// What stays as it is in a path segment: RFC 3986's unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `NAMESPACE/BUCKET/KEY` split into its parts; the key keeps its own `/`s.
struct ObjectPath {
    namespace: String,
    bucket: Option<String>,
    key: Option<String>,
}

impl ObjectPath {
    fn parse(text: &str) -> anyhow::Result<Self> {
        let mut parts = text.trim_start_matches('/').splitn(3, '/');
        let namespace = parts.next().unwrap_or_default().to_string();
        if namespace.is_empty() {
            bail!("{text:?}: expected NAMESPACE[/BUCKET[/KEY]]");
        }
        let bucket = parts.next().filter(|b| !b.is_empty()).map(str::to_string);
        let key = parts.next().filter(|k| !k.is_empty()).map(str::to_string);
        Ok(ObjectPath {
            namespace,
            bucket,
            key,
        })
    }

    /// The API path of this namespace, bucket or object, each segment encoded.
    fn api(&self) -> String {
        let encode = |s: &str| utf8_percent_encode(s, SEGMENT).to_string();
        let mut path = format!("/system/objects/{}", encode(&self.namespace));
        if let Some(bucket) = &self.bucket {
            path.push('/');
            path.push_str(&encode(bucket));
        }
        if let Some(key) = &self.key {
            for segment in key.split('/') {
                path.push('/');
                path.push_str(&encode(segment));
            }
        }
        path
    }

    fn object(text: &str) -> anyhow::Result<Self> {
        let path = Self::parse(text)?;
        if path.bucket.is_none() || path.key.is_none() {
            bail!("{text:?}: expected NAMESPACE/BUCKET/KEY");
        }
        Ok(path)
    }

    fn bucket(text: &str) -> anyhow::Result<Self> {
        let path = Self::parse(text)?;
        if path.bucket.is_none() || path.key.is_some() {
            bail!("{text:?}: expected NAMESPACE/BUCKET");
        }
        Ok(path)
    }
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.1}Gi", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1}Mi", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.1}Ki", b as f64 / 1024.0),
        b => b.to_string(),
    }
}

fn time(ms: Option<u64>) -> String {
    let Some(ms) = ms else {
        return String::new();
    };
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms))
        .to_string()
}

/// Every page of a bucket's listing under `prefix`, as one listing.
async fn all_pages(client: &ApiClient, api: &str, prefix: Option<&str>) -> anyhow::Result<Value> {
    let encode = |s: &str| utf8_percent_encode(s, SEGMENT).to_string();
    let mut query = format!("{api}?prefix={}", encode(prefix.unwrap_or("")));
    let mut whole: Option<Value> = None;
    loop {
        let mut page: Value = client.get(&query).await?.json()?;
        let next = page["next"].as_str().map(str::to_string);
        let Value::Array(objects) = page["objects"].take() else {
            bail!("the node answered something that is not a listing");
        };
        match &mut whole {
            None => {
                page["objects"] = Value::Array(objects);
                whole = Some(page);
            }
            Some(whole) => {
                if let Value::Array(all) = &mut whole["objects"] {
                    all.extend(objects);
                }
            }
        }
        match next {
            Some(after) => {
                query = format!(
                    "{api}?prefix={}&after={}",
                    encode(prefix.unwrap_or("")),
                    encode(&after)
                );
            }
            None => break,
        }
    }
    let mut whole = whole.unwrap_or_default();
    if let Some(fields) = whole.as_object_mut() {
        fields.remove("next");
        fields.remove("prefixes");
    }
    Ok(whole)
}

pub async fn run(command: ObjectsCommand) -> anyhow::Result<ExitCode> {
    match command {
        ObjectsCommand::Ls { target, path } => {
            let client = ApiClient::new(&target)?;
            let mut path = ObjectPath::parse(&path)?;
            // Whatever follows the bucket is a prefix of keys, not a key.
            let prefix = path.key.take();
            let api = path.api();
            let listed: Value = match path.bucket {
                Some(_) => all_pages(&client, &api, prefix.as_deref()).await?,
                None => client.get(&api).await?.json()?,
            };
            if target.json {
                crate::output::json(&listed)?;
                return Ok(ExitCode::SUCCESS);
            }
            let rows: Vec<Vec<String>> = match (&listed["buckets"], &listed["objects"]) {
                (Value::Array(buckets), _) => buckets
                    .iter()
                    .map(|b| {
                        let mode = match b["write_back"].as_bool() {
                            Some(true) => "write-back",
                            _ => "write-through",
                        };
                        vec![
                            b["name"].as_str().unwrap_or_default().to_string(),
                            mode.to_string(),
                            time(b["created_ms"].as_u64()),
                        ]
                    })
                    .collect(),
                (_, Value::Array(objects)) => objects
                    .iter()
                    .map(|o| {
                        vec![
                            o["key"].as_str().unwrap_or_default().to_string(),
                            size(o["size"].as_u64().unwrap_or(0)),
                            time(o["last_modified_ms"].as_u64()),
                        ]
                    })
                    .collect(),
                _ => bail!("the node answered something that is not a listing"),
            };
            let header: &[&str] = match path.bucket {
                None => &["BUCKET", "MODE", "CREATED"],
                Some(_) => &["KEY", "SIZE", "MODIFIED"],
            };
            crate::output::table(header, &rows);
        }
        ObjectsCommand::Put { target, path, file } => {
            let client = ApiClient::new(&target)?;
            let path = ObjectPath::object(&path)?;
            let body = match file.as_deref() {
                None => read_stdin()?,
                Some(p) if p.as_os_str() == "-" => read_stdin()?,
                Some(p) => std::fs::read(p).with_context(|| format!("reading {}", p.display()))?,
            };
            let request = client.request(http::Method::PUT, &path.api());
            let written: Value = client.send(request, body).await?.json()?;
            if target.json {
                crate::output::json(&written)?;
            } else {
                let mode = match written["write_back"].as_bool() {
                    Some(true) => "acknowledged (write-back: in memory and the node's log)",
                    _ => "stored",
                };
                println!(
                    "{} bytes {mode}",
                    written["object"]["size"].as_u64().unwrap_or(0)
                );
            }
        }
        ObjectsCommand::Get {
            target,
            path,
            output,
        } => {
            let client = ApiClient::new(&target)?;
            let path = ObjectPath::object(&path)?;
            let reply = client.get(&path.api()).await?.ok()?;
            match output {
                Some(file) => std::fs::write(&file, &reply.body)
                    .with_context(|| format!("writing {}", file.display()))?,
                None => std::io::stdout().write_all(&reply.body)?,
            }
        }
        ObjectsCommand::Rm {
            target,
            path,
            force,
        } => {
            let client = ApiClient::new(&target)?;
            let path = ObjectPath::parse(&path)?;
            if path.bucket.is_none() {
                bail!("expected NAMESPACE/BUCKET/KEY or NAMESPACE/BUCKET");
            }
            let mut api = path.api();
            if path.key.is_none() && force {
                api.push_str("?force=true");
            }
            client
                .send(client.request(http::Method::DELETE, &api), Vec::new())
                .await?
                .ok()?;
        }
        ObjectsCommand::Mb { target, path } => {
            let client = ApiClient::new(&target)?;
            let path = ObjectPath::bucket(&path)?;
            let reply = client
                .send(client.request(http::Method::PUT, &path.api()), Vec::new())
                .await?
                .ok()?;
            if !target.json {
                let made = reply.status == http::StatusCode::CREATED;
                println!("{}", if made { "created" } else { "exists" });
            }
        }
        ObjectsCommand::Flush { target } => {
            let client = ApiClient::new(&target)?;
            let request = client.request(http::Method::POST, "/system/cache/flush");
            let report: Value = client.send(request, Vec::new()).await?.json()?;
            if target.json {
                crate::output::json(&report)?;
            } else {
                println!(
                    "{} objects flushed",
                    report["flushed"].as_u64().unwrap_or(0)
                );
            }
        }
        ObjectsCommand::Stats { target } => {
            let client = ApiClient::new(&target)?;
            let stats: Value = client.get("/system/cache").await?.json()?;
            if target.json {
                crate::output::json(&stats)?;
            } else {
                let n = |k: &str| stats[k].as_u64().unwrap_or(0);
                println!(
                    "cached {} of {} ({} objects), dirty {} ({} objects, oldest {:.1}s), hits {}, misses {}",
                    size(n("cached_bytes")),
                    size(n("capacity_bytes")),
                    n("cached_objects"),
                    size(n("dirty_bytes")),
                    n("dirty_objects"),
                    stats["flush_lag_seconds"].as_f64().unwrap_or(0.0),
                    n("hits"),
                    n("misses"),
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn read_stdin() -> anyhow::Result<Vec<u8>> {
    let mut body = Vec::new();
    std::io::stdin()
        .read_to_end(&mut body)
        .context("reading standard input")?;
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_split_and_encode_per_segment() {
        let cases = [
            ("app", "/system/objects/app"),
            ("app/photos", "/system/objects/app/photos"),
            (
                "app/photos/a b/c%d.jpg",
                "/system/objects/app/photos/a%20b/c%25d.jpg",
            ),
        ];
        for (text, api) in cases {
            assert_eq!(ObjectPath::parse(text).unwrap().api(), api, "{text}");
        }
        assert!(ObjectPath::parse("").is_err());
        assert!(ObjectPath::object("app/photos").is_err());
        assert!(ObjectPath::bucket("app/photos/key").is_err());
        assert!(ObjectPath::bucket("app/photos").is_ok());
    }
}
