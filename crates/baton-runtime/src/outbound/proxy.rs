//! The HTTP proxy a process function reaches the world through, served by the node inside the
//! function's network namespace (see `process/network.rs`).
//!
//! Three kinds of request arrive on its one listener:
//! - absolute-form (`GET http://host/path`, what clients send a proxy for `http` URLs): sent
//!   on by [`FunctionOutbound::send`], so the function's `baton.allowed-hosts`, the address
//!   checks and the in-process route to other functions (`http://gateway:8080/function/…`)
//!   are a wasm guest's;
//! - `CONNECT host:port` (what clients send for `https` URLs): a tunnel to a checked address,
//!   allowed as `https` by the list;
//! - origin-form (`GET /v1/state/…`, the function calling `$BATON_API`): the node-local
//!   platform API, answered in-process, its own token check included.
//!
//! A refusal is an HTTP error the function's client shows: `403` with the reason for the
//! policy, `508` for a chain of calls too deep, `502`/`504` when the destination fails.

use super::{FunctionOutbound, PlatformService, WasiBody};
use baton_api::outbound::call_depth;
use bytes::Bytes;
use http::{Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use wasmtime_wasi_http::Error;

/// Connections one function may hold open to its proxy at once; more wait in the backlog.
const MAX_CONNECTIONS: usize = 256;
/// How long a client may take to send a request's headers.
const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the proxy waits for a destination to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What one function's proxy serves.
pub(crate) struct ProxyContext {
    /// The function's outgoing-request policy.
    pub(crate) outbound: Arc<FunctionOutbound>,
    /// The node-local platform API's routes, for origin-form requests.
    pub(crate) platform_api: Option<PlatformService>,
    /// The function's timeout: the longest a forwarded request waits for its response's
    /// head, and the longest a tunnel lives.
    pub(crate) timeout: Duration,
}

/// Serves the proxy on `listener` (whose address is `own`) until the task is aborted; every
/// connection it serves ends with it.
pub(crate) async fn serve(listener: TcpListener, context: Arc<ProxyContext>, own: SocketAddr) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        // Full: finish one before accepting more (the rest wait in the listen backlog).
        if connections.len() >= MAX_CONNECTIONS {
            connections.join_next().await;
            continue;
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let Ok((stream, _)) = accepted else {
            // Out of descriptors, say: let some connection finish first.
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let _ = stream.set_nodelay(true);
        let context = context.clone();
        connections.spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let context = context.clone();
                async move { Ok::<_, std::convert::Infallible>(handle(&context, own, request).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

async fn handle(
    context: &ProxyContext,
    own: SocketAddr,
    mut request: http::Request<Incoming>,
) -> http::Response<WasiBody> {
    if request.method() == Method::CONNECT {
        return tunnel(context, request).await;
    }
    let to_proxy_itself = request.uri().authority().is_none_or(|authority| {
        authority.port_u16() == Some(own.port())
            && matches!(authority.host(), "127.0.0.1" | "localhost")
    });
    if to_proxy_itself {
        return platform_api(context, request).await;
    }
    let depth = call_depth(request.headers());
    super::without_hop_headers(request.headers_mut());
    let request = request.map(|body| body.map_err(Error::Hyper).boxed_unsync());
    let sent = context
        .outbound
        .clone()
        .send(request, depth, CONNECT_TIMEOUT);
    match tokio::time::timeout(context.timeout, sent).await {
        Ok(Ok(response)) => response,
        Ok(Err(error)) => refusal(&error),
        Err(_) => refusal(&Error::HttpResponseTimeout),
    }
}

/// `CONNECT host:port`: a checked connection, then bytes both ways until either side closes
/// or the function's timeout.
async fn tunnel(
    context: &ProxyContext,
    request: http::Request<Incoming>,
) -> http::Response<WasiBody> {
    let Some(authority) = request.uri().authority().cloned() else {
        return text(StatusCode::BAD_REQUEST, "CONNECT needs host:port");
    };
    let Some(port) = authority.port_u16() else {
        return text(StatusCode::BAD_REQUEST, "CONNECT needs host:port");
    };
    let mut upstream = match context
        .outbound
        .connect(authority.host(), port, CONNECT_TIMEOUT)
        .await
    {
        Ok(stream) => stream,
        Err(error) => return refusal(&error),
    };
    let lifetime = context.timeout;
    tokio::spawn(async move {
        let Ok(upgraded) = hyper::upgrade::on(request).await else {
            return;
        };
        let mut client = TokioIo::new(upgraded);
        let _ = tokio::time::timeout(
            lifetime,
            tokio::io::copy_bidirectional(&mut client, &mut upstream),
        )
        .await;
    });
    http::Response::new(empty())
}

/// An origin-form request: the platform API's, in-process.
async fn platform_api(
    context: &ProxyContext,
    request: http::Request<Incoming>,
) -> http::Response<WasiBody> {
    let Some(api) = &context.platform_api else {
        return text(
            StatusCode::NOT_FOUND,
            "this is the node's proxy: send it absolute URLs (HTTP_PROXY); this node has no platform API",
        );
    };
    let (mut parts, body) = request.into_parts();
    // The API routes on the path; the authority was the proxy's own.
    parts.uri = match parts.uri.path_and_query().map(|p| p.as_str()) {
        Some(path) => match http::Uri::try_from(path) {
            Ok(uri) => uri,
            Err(_) => return text(StatusCode::BAD_REQUEST, "bad path"),
        },
        None => http::Uri::from_static("/"),
    };
    let body = body.map_err(Error::Hyper).boxed_unsync();
    api(http::Request::from_parts(parts, body)).await
}

/// The response a function's client sees for a request the proxy did not send on.
fn refusal(error: &Error) -> http::Response<WasiBody> {
    let (status, what) = match error {
        Error::HttpRequestDenied | Error::DestinationIpProhibited => (
            StatusCode::FORBIDDEN,
            "refused by the function's outgoing-request policy (baton.allowed-hosts; the node log says why)",
        ),
        Error::LoopDetected => (
            StatusCode::LOOP_DETECTED,
            "refused: the chain of nested calls is too deep",
        ),
        Error::DnsTimeout | Error::ConnectionTimeout | Error::HttpResponseTimeout => (
            StatusCode::GATEWAY_TIMEOUT,
            "the destination did not answer in time",
        ),
        Error::HttpRequestUriInvalid => (StatusCode::BAD_REQUEST, "bad request URI"),
        _ => (StatusCode::BAD_GATEWAY, "the destination failed"),
    };
    text(status, &format!("baton proxy: {what}: {error}\n"))
}

fn text(status: StatusCode, message: &str) -> http::Response<WasiBody> {
    let mut response = http::Response::new(
        Full::new(Bytes::from(message.to_string()))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

fn empty() -> WasiBody {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_what_kind_they_are() {
        for (error, status) in [
            (Error::HttpRequestDenied, 403),
            (Error::DestinationIpProhibited, 403),
            (Error::LoopDetected, 508),
            (Error::ConnectionTimeout, 504),
            (Error::ConnectionRefused, 502),
        ] {
            assert_eq!(refusal(&error).status().as_u16(), status, "{error}");
        }
    }
}
