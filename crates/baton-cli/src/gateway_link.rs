//! A cluster worker's link to its gateway: functions' calls to the platform
//! (`http://gateway:8080/function/…`) sent over HTTP to the cluster gateway named by
//! `baton worker --gateway`, as OpenFaaS functions reach `gateway.openfaas:8080`. On a node
//! the gateway is in the same process and answers in-process instead (`node.rs`).

use anyhow::{Context, bail};
use baton_runtime::wasm::{PlatformFuture, PlatformService, WasiBody, platform_body};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// Longest wait for a connection to the gateway.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The gateway's URL checked (`http://host:port`), with an address it resolves to.
pub fn parse(url: &str) -> anyhow::Result<(http::Uri, SocketAddr)> {
    let uri: http::Uri = url
        .parse()
        .with_context(|| format!("--gateway {url:?} is not a URL"))?;
    if uri.scheme_str() != Some("http") {
        bail!("--gateway {url:?}: expected http://host:port");
    }
    let authority = uri.authority().context("--gateway has no host")?;
    let port = authority.port_u16().unwrap_or(80);
    let address = (authority.host(), port)
        .to_socket_addrs()
        .with_context(|| format!("resolving --gateway {url:?}"))?
        .next()
        .with_context(|| format!("--gateway {url:?} resolves to no address"))?;
    Ok((uri, address))
}

/// Forwards a function's platform requests to `gateway`, keeping the path, the query and
/// the headers (the call depth among them).
pub fn service(gateway: http::Uri) -> PlatformService {
    // A gateway that does not answer a connection fails the call within CONNECT_TIMEOUT;
    // the rest of a call is bounded by the calling function's own timeout.
    let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
    connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
    connector.set_nodelay(true);
    let client: Client<_, WasiBody> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build(connector);
    Arc::new(move |mut request: http::Request<WasiBody>| {
        let (client, gateway) = (client.clone(), gateway.clone());
        Box::pin(async move {
            let path = request
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            let target = format!(
                "http://{}{path}",
                gateway.authority().map_or("", |a| a.as_str())
            );
            match target.parse() {
                Ok(uri) => *request.uri_mut() = uri,
                Err(_) => return refusal(http::StatusCode::BAD_REQUEST, "bad request path"),
            }
            request.headers_mut().remove(http::header::HOST);
            match client.request(request).await {
                Ok(response) => response.map(platform_body),
                Err(error) => refusal(
                    http::StatusCode::BAD_GATEWAY,
                    &format!("the cluster gateway could not be reached: {error}"),
                ),
            }
        }) as PlatformFuture
    })
}

fn refusal(status: http::StatusCode, message: &str) -> http::Response<WasiBody> {
    let mut response = http::Response::new(platform_body(Full::new(bytes::Bytes::from(format!(
        "{message}\n"
    )))));
    *response.status_mut() = status;
    response
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_http_urls_with_a_host_are_accepted() {
        let (uri, address) = super::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!(uri.authority().unwrap().as_str(), "127.0.0.1:8080");
        assert_eq!(address.port(), 8080);
        assert!(super::parse("https://127.0.0.1:8080").is_err());
        assert!(super::parse("not a url").is_err());
    }
}
