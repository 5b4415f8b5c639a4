//! A small client of a node's HTTP API.

use crate::cli::Target;
use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde::de::DeserializeOwned;
use std::time::Duration;

/// Deadline of one API call; deploys compile, so they get longer.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

pub struct ApiClient {
    base: String,
    token: Option<String>,
    client: baton_gateway::https::HttpsClient,
}

/// A response read in full.
pub struct Reply {
    pub status: http::StatusCode,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON, or the node's error message.
    pub fn json<T: DeserializeOwned>(self) -> anyhow::Result<T> {
        if !self.status.is_success() {
            bail!("{} {}", self.status.as_u16(), self.text().trim_end());
        }
        serde_json::from_slice(&self.body)
            .context("the node answered something that is not the expected JSON")
    }

    /// Ok when the status is a success, else the node's error message.
    pub fn ok(self) -> anyhow::Result<Self> {
        if !self.status.is_success() {
            bail!("{} {}", self.status.as_u16(), self.text().trim_end());
        }
        Ok(self)
    }
}

/// The token a node on this machine made for itself, when the gateway is on loopback (never
/// sent to another machine): `$BATON_DATA_DIR` or the default data directory.
fn local_token(base: &str) -> Option<String> {
    let rest = base
        .strip_prefix("http://")
        .or_else(|| base.strip_prefix("https://"))?;
    let authority = rest.split('/').next()?;
    let host = authority.rsplit_once(':').map_or(authority, |(h, _)| h);
    let loopback = host == "localhost"
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return None;
    }
    let dir = std::env::var_os("BATON_DATA_DIR")
        .filter(|d| !d.is_empty())
        .map(std::path::PathBuf::from)
        .unwrap_or_else(crate::config::default_data_dir);
    crate::token::read(&dir)
}

impl ApiClient {
    pub fn new(target: &Target) -> anyhow::Result<Self> {
        let base = target.gateway.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            bail!("gateway URL {base:?} must start with http:// or https://");
        }
        Ok(ApiClient {
            base,
            token: target
                .token
                .clone()
                .or_else(|| local_token(&target.gateway)),
            client: baton_gateway::https::client(),
        })
    }

    pub fn request(&self, method: http::Method, path: &str) -> http::request::Builder {
        let mut builder = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            builder = builder.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        builder
    }

    /// Why the node could not be reached, with every cause (a TLS failure hides two levels
    /// down) and what to try.
    fn unreachable(&self, error: &(dyn std::error::Error + 'static)) -> anyhow::Error {
        let mut why = error.to_string();
        let mut source = error.source();
        while let Some(cause) = source {
            why.push_str(": ");
            why.push_str(&cause.to_string());
            source = cause.source();
        }
        let hint = if why.contains("certificate") {
            "the gateway's certificate is not trusted here: name its CA with SSL_CERT_FILE"
        } else {
            "is `baton up` running? set --gateway or BATON_GATEWAY"
        };
        anyhow::anyhow!("cannot reach Baton at {}: {why} ({hint})", self.base)
    }

    pub async fn send(
        &self,
        request: http::request::Builder,
        body: impl Into<Bytes>,
    ) -> anyhow::Result<Reply> {
        let request = request
            .body(Full::new(body.into()))
            .context("building the request")?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| self.unreachable(&e))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .context("reading the response")?
                .to_bytes();
            Ok(Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .context("the node did not answer in time")?
    }

    /// GETs `path` and calls `each` with every line of the body as it arrives (a followed
    /// log stream has no end); only the answer's head has a deadline.
    pub async fn get_lines(
        &self,
        path: &str,
        mut each: impl FnMut(&str) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        let request = self
            .request(http::Method::GET, path)
            .body(Full::new(Bytes::new()))
            .context("building the request")?;
        let response = tokio::time::timeout(CALL_TIMEOUT, self.client.request(request))
            .await
            .context("the node did not answer in time")?
            .map_err(|e| self.unreachable(&e))?;
        let (parts, mut body) = response.into_parts();
        if !parts.status.is_success() {
            let text = body
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            bail!(
                "{} {}",
                parts.status.as_u16(),
                String::from_utf8_lossy(&text).trim_end()
            );
        }
        let mut pending = Vec::new();
        while let Some(frame) = body.frame().await {
            let Ok(data) = frame.context("reading the response")?.into_data() else {
                continue;
            };
            pending.extend_from_slice(&data);
            while let Some(end) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=end).collect();
                each(String::from_utf8_lossy(&line[..end]).as_ref())?;
            }
        }
        Ok(())
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Reply> {
        self.send(self.request(http::Method::GET, path), Bytes::new())
            .await
    }
}
