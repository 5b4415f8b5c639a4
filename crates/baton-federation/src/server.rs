//! The federation listener: TLS with the site keys, HTTP/2, and three routes for members only.
//!
//! - `POST /federation/v1/round`: a peer's round; the reply carries this site's headroom and
//!   grants.
//! - `ANY /federation/v1/function/{name}/{rest}`: a forwarded request, signed by its origin;
//!   run here (never forwarded again) within the origin's grant, answered with `X-Baton-Site`.
//! - `GET /federation/v1/component/{sha256}`: the component of a function this site offers.
//!
//! A client that is not a member, an unsigned, altered, stale or replayed request, or one
//! whose stamp names another site than the one that proved its key, gets 403 and is counted.

use crate::agent::{Admitted, Federation, Running, now_ms};
use crate::config::PeerAddress;
use crate::identity::SiteId;
use crate::signing::{HEADERS, Refused, Stamp};
use crate::wire::{COMPONENT_PREFIX, FUNCTION_PREFIX, MAX_ROUND_BYTES, ROUND_PATH, Round};
use axum::Router;
use axum::body::Body;
use axum::extract::{Extension, Path, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use bytes::Bytes;
use http::{HeaderValue, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The header naming the site that served a request.
pub const SITE_HEADER: &str = "x-baton-site";
/// Longest a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once; more are closed as they arrive (a member keeps one).
const MAX_CONNECTIONS: usize = 1024;
/// Longest a peer may take to send a request's body.
const BODY_TIMEOUT: Duration = Duration::from_secs(60);
/// Requests one connection may have in flight at once.
const MAX_STREAMS: u32 = 1024;

/// Reads `body` whole, at most `limit` bytes, within [`BODY_TIMEOUT`]; or the status and
/// reason to refuse it with (413 too large, 408 too slow, 400 broken).
async fn read_body(body: Body, limit: usize) -> Result<Bytes, (StatusCode, String)> {
    match tokio::time::timeout(BODY_TIMEOUT, Limited::new(body, limit).collect()).await {
        Ok(Ok(body)) => Ok(body.to_bytes()),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body exceeds the limit of {limit} bytes"),
        )),
        Ok(Err(error)) => Err((
            StatusCode::BAD_REQUEST,
            format!("reading the body: {error}"),
        )),
        Err(_) => Err((
            StatusCode::REQUEST_TIMEOUT,
            format!("the body did not arrive within {BODY_TIMEOUT:?}"),
        )),
    }
}

/// The site that proved its key on this connection.
#[derive(Debug, Clone, Copy)]
struct PeerIdentity(SiteId);

fn plain(status: StatusCode, message: impl Into<String>) -> Response {
    let mut message = message.into();
    if !message.ends_with('\n') {
        message.push('\n');
    }
    let mut response = (status, message).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

/// Serves the federation on `listener` until the process ends.
pub async fn serve(federation: Arc<Federation>, listener: tokio::net::TcpListener) {
    let acceptor = match crate::tls::server_config(&federation.key) {
        Ok(config) => tokio_rustls::TlsAcceptor::from(config),
        Err(error) => {
            tracing::error!(%error, "the federation listener has no TLS configuration");
            return;
        }
    };
    let router = router(federation.clone());
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (tcp, remote) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "federation listener accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            federation.metrics.refused("", "too-many-connections");
            continue;
        };
        let _ = tcp.set_nodelay(true);
        let (acceptor, router, federation) = (acceptor.clone(), router.clone(), federation.clone());
        tokio::spawn(async move {
            // Held while the connection lives.
            let _permit = permit;
            let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(error)) => {
                    federation.metrics.refused("", "handshake");
                    tracing::debug!(%remote, %error, "federation handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let Some(peer) = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .and_then(|c| crate::tls::site_of(c))
            else {
                return;
            };
            let service = hyper::service::service_fn(
                move |mut request: http::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(PeerIdentity(peer));
                    let router = router.clone();
                    async move { tower::ServiceExt::oneshot(router, request.map(Body::new)).await }
                },
            );
            let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            builder
                .http2()
                .timer(hyper_util::rt::TokioTimer::new())
                .max_concurrent_streams(MAX_STREAMS);
            builder
                .http1()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HANDSHAKE_TIMEOUT);
            if let Err(error) = builder.serve_connection(TokioIo::new(tls), service).await {
                tracing::debug!(%remote, %error, "federation connection ended");
            }
        });
    }
}

fn router(federation: Arc<Federation>) -> Router {
    Router::new()
        .route(ROUND_PATH, post(round))
        .route(&format!("{FUNCTION_PREFIX}{{name}}"), any(forwarded))
        .route(&format!("{FUNCTION_PREFIX}{{name}}/"), any(forwarded))
        .route(
            &format!("{FUNCTION_PREFIX}{{name}}/{{*rest}}"),
            any(forwarded),
        )
        .route(&format!("{COMPONENT_PREFIX}{{digest}}"), get(component))
        .with_state(federation)
}

/// Refuses a site that is not a member: 403, counted.
fn not_member(federation: &Federation, peer: &SiteId) -> Response {
    federation.metrics.refused(&peer.to_string(), "not-member");
    tracing::warn!(%peer, "refused a site that is not a member");
    plain(
        StatusCode::FORBIDDEN,
        format!("site {peer} is not a member of this federation"),
    )
}

async fn round(
    State(federation): State<Arc<Federation>>,
    Extension(PeerIdentity(peer)): Extension<PeerIdentity>,
    request: Request,
) -> Response {
    let body = match read_body(request.into_body(), MAX_ROUND_BYTES).await {
        Ok(body) => body,
        Err((_, error)) => {
            federation.metrics.refused(&peer.to_string(), "malformed");
            return plain(
                StatusCode::BAD_REQUEST,
                format!("unreadable round: {error}"),
            );
        }
    };
    let round: Round = match serde_json::from_slice(&body) {
        Ok(round) => round,
        Err(error) => {
            federation.metrics.refused(&peer.to_string(), "malformed");
            tracing::warn!(%peer, %error, "malformed round dropped");
            return plain(StatusCode::BAD_REQUEST, format!("malformed round: {error}"));
        }
    };
    if !federation.is_member(&peer) {
        match round
            .certificate
            .as_ref()
            .map(|c| federation.membership.admits(&peer, Some(c), now_ms()))
        {
            Some(Ok(())) => {
                federation.certified.lock().unwrap().insert(peer);
            }
            _ => return not_member(&federation, &peer),
        }
    }
    let from = match federation.add_peer(&PeerAddress {
        id: peer,
        address: round.address.clone(),
    }) {
        Ok(Some(from)) => from,
        Ok(None) => return plain(StatusCode::SERVICE_UNAVAILABLE, "too many peers"),
        Err(error) => return plain(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    };
    crate::follow::offered(&federation, &from, &round.offers);
    let reply = federation.answer(&from, round);
    axum::Json(reply).into_response()
}

async fn component(
    State(federation): State<Arc<Federation>>,
    Extension(PeerIdentity(peer)): Extension<PeerIdentity>,
    Path(digest): Path<String>,
) -> Response {
    if !federation.is_member(&peer) {
        return not_member(&federation, &peer);
    }
    let offered = federation
        .functions
        .read()
        .unwrap()
        .values()
        .any(|f| f.local.read().unwrap().component.as_deref() == Some(digest.as_str()));
    match offered
        .then(|| federation.site.component(&digest))
        .flatten()
    {
        Some(bytes) => (
            [(http::header::CONTENT_TYPE, "application/wasm")],
            Body::from(bytes),
        )
            .into_response(),
        None => plain(
            StatusCode::NOT_FOUND,
            format!("no federated function here runs component {digest}"),
        ),
    }
}

/// A refused forwarded request: 403 (503 when the nonce memory is full), counted.
fn refused(federation: &Federation, peer: &SiteId, why: &Refused) -> Response {
    let reason = match why {
        Refused::Malformed(_) => "malformed-stamp",
        Refused::NotMember(_) => "not-member",
        Refused::BadSignature => "bad-signature",
        Refused::Stale { .. } => "stale",
        Refused::Replayed => "replayed",
        Refused::Busy => "busy",
    };
    federation.metrics.refused(&peer.to_string(), reason);
    tracing::warn!(%peer, %why, "refused a forwarded request");
    plain(
        StatusCode::from_u16(why.status()).unwrap_or(StatusCode::FORBIDDEN),
        why.to_string(),
    )
}

async fn forwarded(
    State(federation): State<Arc<Federation>>,
    Extension(PeerIdentity(peer)): Extension<PeerIdentity>,
    Path(params): Path<Vec<(String, String)>>,
    request: Request,
) -> Response {
    if !federation.is_member(&peer) {
        return not_member(&federation, &peer);
    }
    let name = params
        .iter()
        .find(|(k, _)| k == "name")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let rest = params
        .iter()
        .find(|(k, _)| k == "rest")
        .map(|(_, v)| v.as_str())
        .unwrap_or("");
    let (mut parts, body) = request.into_parts();
    let stamp = match Stamp::from_headers(|h| parts.headers.get(h)?.to_str().ok()) {
        Ok(Some(stamp)) => stamp,
        Ok(None) => {
            return refused(
                &federation,
                &peer,
                &Refused::Malformed("a forwarded request must be signed".into()),
            );
        }
        Err(why) => return refused(&federation, &peer, &why),
    };
    if stamp.origin != peer {
        return refused(
            &federation,
            &peer,
            &Refused::Malformed(format!(
                "signed as {} over a connection from {peer}",
                stamp.origin
            )),
        );
    }
    let Some(max_body) = federation.local.max_body_bytes(&name) else {
        federation.metrics.received(&name, &peer.to_string(), 404);
        return plain(StatusCode::NOT_FOUND, format!("function {name} not found"));
    };
    let body = match read_body(Body::new(body), max_body as usize).await {
        Ok(body) => body,
        Err((status, error)) => return plain(status, format!("{name}: {error}")),
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let verified = federation.verifier.lock().unwrap().verify(
        &stamp,
        parts.method.as_str(),
        &path_and_query,
        &body,
        &crate::membership::Membership::new([peer], []),
        now_ms(),
    );
    if let Err(why) = verified {
        return refused(&federation, &peer, &why);
    }
    let Some(function) = federation.function(&name) else {
        federation.metrics.received(&name, &peer.to_string(), 404);
        return plain(
            StatusCode::NOT_FOUND,
            format!("function {name} is not federated on this site"),
        );
    };
    let Some(_admitted) = Admitted::new(&federation.ledger, &name, peer) else {
        federation.metrics.received(&name, &peer.to_string(), 429);
        return plain(
            StatusCode::TOO_MANY_REQUESTS,
            format!("{name}: this site granted {peer} no more slots"),
        );
    };
    for header in HEADERS {
        parts.headers.remove(header);
    }
    let mut function_path = format!("/{rest}");
    if let Some(query) = parts.uri.query() {
        function_path.push('?');
        function_path.push_str(query);
    }
    parts.uri = match function_path.parse() {
        Ok(uri) => uri,
        Err(error) => return plain(StatusCode::BAD_REQUEST, format!("bad path: {error}")),
    };
    let started = Instant::now();
    let result = {
        let _running = Running::new(&function);
        federation
            .local
            .invoke(&name, http::Request::from_parts(parts, body))
            .await
    };
    let mut response = match result {
        Ok(outcome) => {
            if outcome.response.status().is_success() {
                function.meter.served(started.elapsed());
            }
            outcome.response.map(Body::from)
        }
        Err(error) => plain(
            StatusCode::from_u16(error.kind.http_status())
                .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            error.message,
        ),
    };
    federation
        .metrics
        .received(&name, &peer.to_string(), response.status().as_u16());
    if let Ok(site) = HeaderValue::from_str(&federation.me.to_string()) {
        response.headers_mut().insert(SITE_HEADER, site);
    }
    response
}
