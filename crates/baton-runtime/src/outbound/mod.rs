//! A function's outgoing requests: other functions through the platform, in-process; hosts
//! its deployment lists; nothing else.
//!
//! The decision is [`baton_api::outbound`]'s; this module does the I/O around it: it resolves
//! the name, checks each address, and connects to a checked address itself (so DNS cannot
//! answer differently between the check and the connection), with TLS for `https`. Wasm
//! guests reach it through `wasi:http`; process functions, which live in a network namespace
//! of their own, through the HTTP proxy the node serves inside it ([`proxy`]).

pub(crate) mod proxy;

use baton_api::FunctionSpec;
use baton_api::outbound::{
    AddressPolicy, AllowedHosts, CALL_DEPTH_HEADER, IpNet, LABEL_ALLOWED_HOSTS, MAX_CALL_DEPTH,
};
use bytes::Bytes;
use http::uri::Scheme;
use http_body_util::BodyExt;
use std::collections::BTreeMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;
use wasmtime_wasi_http::Error;
pub use wasmtime_wasi_http::WasiBody;

/// Host names that mean "this platform's gateway" to a function, at any port: OpenFaaS's
/// in-cluster names, so functions written for OpenFaaS call each other unchanged.
const PLATFORM_HOSTS: [&str; 3] = ["gateway", "gateway.openfaas", "gateway.openfaas.svc"];

/// A request a function sends to the platform's own gateway, answered in-process.
pub type PlatformFuture = Pin<Box<dyn Future<Output = http::Response<WasiBody>> + Send>>;

/// The gateway's routes as a function: set once the node's router exists.
pub type PlatformService = Arc<dyn Fn(http::Request<WasiBody>) -> PlatformFuture + Send + Sync>;

/// Settings an operator gives the outgoing-request policy.
#[derive(Debug, Clone, Default)]
pub struct OutboundConfig {
    /// Loopback and link-local networks functions may reach when their allow-list names them
    /// (a development Redis on 127.0.0.1, say). Default none.
    pub allow_private: Vec<IpNet>,
}

/// What every function's outgoing requests go through on this node.
pub struct Outbound {
    policy: RwLock<AddressPolicy>,
    gateways: RwLock<Vec<SocketAddr>>,
    platform: OnceLock<PlatformService>,
    denied: Mutex<BTreeMap<String, u64>>,
}

impl Outbound {
    /// A policy with no listeners known yet; the node adds them as it binds.
    pub fn new(config: &OutboundConfig) -> Arc<Self> {
        Arc::new(Outbound {
            policy: RwLock::new(AddressPolicy {
                own_listeners: Vec::new(),
                local_addresses: local_addresses(),
                allow_private: config.allow_private.clone(),
            }),
            gateways: RwLock::new(Vec::new()),
            platform: OnceLock::new(),
            denied: Mutex::new(BTreeMap::new()),
        })
    }

    /// Records one of the node's listeners, which no function may reach over the network.
    pub fn add_listener(&self, address: SocketAddr) {
        self.policy
            .write()
            .expect("policy lock")
            .own_listeners
            .push(address);
    }

    /// Records the gateway's listener and routes: requests to it (or to `gateway:8080`) for
    /// `/function/…` are answered by `service` in-process.
    pub fn set_gateway(&self, address: SocketAddr, service: PlatformService) {
        self.add_listener(address);
        self.gateways.write().expect("gateway lock").push(address);
        let _ = self.platform.set(service);
    }

    /// Appends `baton_outbound_denied_total` in Prometheus text.
    pub fn render_metrics(&self, out: &mut String) -> std::fmt::Result {
        use std::fmt::Write;
        let denied = self.denied.lock().expect("denied lock");
        writeln!(
            out,
            "# HELP baton_outbound_denied_total Outgoing requests of functions refused by the policy."
        )?;
        writeln!(out, "# TYPE baton_outbound_denied_total counter")?;
        for (function, count) in denied.iter() {
            writeln!(
                out,
                "baton_outbound_denied_total{{function_name=\"{function}\"}} {count}"
            )?;
        }
        Ok(())
    }

    fn deny(&self, function: &str, reason: &str, target: &str) -> Error {
        *self
            .denied
            .lock()
            .expect("denied lock")
            .entry(function.to_string())
            .or_default() += 1;
        tracing::info!(function, target, reason, "outgoing request denied");
        Error::HttpRequestDenied
    }
}

/// One function's view of the policy, made once per deployment.
pub(crate) struct FunctionOutbound {
    name: String,
    allowed: AllowedHosts,
    node: Arc<Outbound>,
}

impl FunctionOutbound {
    pub(crate) fn new(spec: &FunctionSpec, node: Arc<Outbound>) -> Self {
        let allowed = spec
            .labels
            .get(LABEL_ALLOWED_HOSTS)
            // Checked at deployment; a spec stored by an older build falls back to none.
            .and_then(|list| AllowedHosts::parse(list).ok())
            .unwrap_or_default();
        FunctionOutbound {
            name: spec.name.as_str().to_string(),
            allowed,
            node,
        }
    }

    /// Sends `request` on behalf of a sandbox serving a request at `depth`.
    pub(crate) async fn send(
        self: Arc<Self>,
        mut request: http::Request<WasiBody>,
        depth: u32,
        connect_timeout: Duration,
    ) -> Result<http::Response<WasiBody>, Error> {
        let uri = request.uri().clone();
        let scheme = uri.scheme().cloned().unwrap_or(Scheme::HTTP);
        let https = scheme == Scheme::HTTPS;
        let host = uri.host().ok_or(Error::HttpRequestUriInvalid)?;
        let bare_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let target = Target {
            scheme: scheme.as_str(),
            host: &bare_host,
            port,
            path: Some(uri.path()),
            shown: &uri.to_string(),
        };
        match self.route(&target, depth, connect_timeout).await? {
            Route::Platform(platform) => {
                request
                    .headers_mut()
                    .insert(CALL_DEPTH_HEADER, http::HeaderValue::from(depth + 1));
                *request.uri_mut() =
                    http::Uri::try_from(uri.path_and_query().map_or("/", |p| p.as_str()))
                        .map_err(|_| Error::HttpRequestUriInvalid)?;
                Ok(platform(request).await)
            }
            Route::Address(address) => {
                send_to(
                    request,
                    address,
                    https.then_some(bare_host),
                    connect_timeout,
                )
                .await
            }
        }
    }

    /// Opens a TCP connection to `host:port` for a tunnel (an HTTP proxy's `CONNECT`, which
    /// clients use for `https`): allowed as `https` by the function's list, never to the
    /// platform.
    pub(crate) async fn connect(
        &self,
        host: &str,
        port: u16,
        connect_timeout: Duration,
    ) -> Result<tokio::net::TcpStream, Error> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let shown = format!("{host}:{port}");
        let target = Target {
            scheme: "https",
            host,
            port,
            path: None,
            shown: &shown,
        };
        match self.route(&target, 0, connect_timeout).await? {
            Route::Platform(_) => unreachable!("a tunnel is never routed to the platform"),
            Route::Address(address) => open(address, connect_timeout).await,
        }
    }

    /// Where a request to `target` goes: the platform's routes in-process, or one checked
    /// address; or why it may not go anywhere (counted and logged).
    async fn route(
        &self,
        target: &Target<'_>,
        depth: u32,
        connect_timeout: Duration,
    ) -> Result<Route, Error> {
        let node = &self.node;
        let shown = target.shown;
        // OpenFaaS's names for the gateway are the platform whatever DNS says; otherwise the
        // addresses decide: the node's own gateway is answered in-process too.
        let named_platform = PLATFORM_HOSTS.contains(&target.host.to_ascii_lowercase().as_str());
        let addresses = match named_platform {
            true => Vec::new(),
            false => resolve(target.host, target.port, connect_timeout).await?,
        };
        let to_gateway = named_platform || {
            let policy = node.policy.read().expect("policy lock");
            let gateways = node.gateways.read().expect("gateway lock");
            addresses
                .iter()
                .any(|a| gateways.iter().any(|g| policy.reaches(*g, *a)))
        };
        if to_gateway {
            if !target.path.is_some_and(|p| p.starts_with("/function/")) {
                return Err(node.deny(&self.name, "only /function/ of the platform", shown));
            }
            if depth >= MAX_CALL_DEPTH {
                node.deny(&self.name, "nested calls too deep", shown);
                return Err(Error::LoopDetected);
            }
            let Some(platform) = node.platform.get() else {
                return Err(node.deny(&self.name, "no gateway on this node", shown));
            };
            return Ok(Route::Platform(platform.clone()));
        }
        if !self.allowed.allows(target.scheme, target.host, target.port) {
            return Err(node.deny(
                &self.name,
                "host not in the function's baton.allowed-hosts",
                shown,
            ));
        }
        // The first address the policy lets through, or why the first one was refused.
        let checked = {
            let policy = node.policy.read().expect("policy lock");
            let mut refusal = None;
            let found = addresses.iter().copied().find(|a| match policy.check(*a) {
                Ok(()) => true,
                Err(why) => {
                    refusal.get_or_insert(why);
                    false
                }
            });
            found.ok_or(refusal)
        };
        match checked {
            Ok(address) => Ok(Route::Address(address)),
            Err(refusal) => {
                let reason = refusal.map_or_else(String::new, |r| r.to_string());
                node.deny(&self.name, &reason, shown);
                Err(Error::DestinationIpProhibited)
            }
        }
    }
}

/// What a function asks to reach, as the policy reads it.
struct Target<'a> {
    scheme: &'a str,
    /// Without IPv6 brackets.
    host: &'a str,
    port: u16,
    /// The request's path; `None` for a tunnel.
    path: Option<&'a str>,
    /// How logs show it.
    shown: &'a str,
}

/// Where an allowed request goes.
enum Route {
    Platform(PlatformService),
    Address(SocketAddr),
}

async fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, Error> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let found = tokio::time::timeout(timeout, tokio::net::lookup_host((host, port)))
        .await
        .map_err(|_| Error::DnsTimeout)?
        .map_err(|_| Error::DestinationNotFound)?
        .collect::<Vec<_>>();
    if found.is_empty() {
        return Err(Error::DestinationNotFound);
    }
    Ok(found)
}

/// Connects to `address` (already checked), with TLS for `tls_name`, and sends `request`.
async fn send_to(
    mut request: http::Request<WasiBody>,
    address: SocketAddr,
    tls_name: Option<String>,
    connect_timeout: Duration,
) -> Result<http::Response<WasiBody>, Error> {
    let stream = open(address, connect_timeout).await?;
    // Origin-form on the wire: the authority is in `Host` already.
    *request.uri_mut() =
        http::Uri::try_from(request.uri().path_and_query().map_or("/", |p| p.as_str()))
            .map_err(|_| Error::HttpRequestUriInvalid)?;
    let response = match tls_name {
        Some(name) => {
            let connector = tokio_rustls::TlsConnector::from(tls_config());
            let server_name = rustls::pki_types::ServerName::try_from(name)
                .map_err(Error::InvalidDnsNameError)?;
            let tls = tokio::time::timeout(connect_timeout, connector.connect(server_name, stream))
                .await
                .map_err(|_| Error::ConnectionTimeout)?
                .map_err(Error::Tls)?;
            exchange(tls, request).await?
        }
        None => exchange(stream, request).await?,
    };
    Ok(response.map(|body| body.map_err(Error::from).boxed_unsync()))
}

/// Connects to `address` (already checked) within `connect_timeout`.
async fn open(
    address: SocketAddr,
    connect_timeout: Duration,
) -> Result<tokio::net::TcpStream, Error> {
    let stream = tokio::time::timeout(connect_timeout, tokio::net::TcpStream::connect(address))
        .await
        .map_err(|_| Error::ConnectionTimeout)?
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::ConnectionRefused => Error::ConnectionRefused,
            _ => Error::Connect(e),
        })?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

/// The TLS client settings (the web PKI's roots), built once for the node.
fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            Arc::new(
                rustls::ClientConfig::builder()
                    .with_root_certificates(roots)
                    .with_no_client_auth(),
            )
        })
        .clone()
}

async fn exchange<S>(
    stream: S,
    request: http::Request<WasiBody>,
) -> Result<http::Response<hyper::body::Incoming>, Error>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    // The connection ends with the response body, or when the sandbox's request ends.
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(sender.send_request(request).await?)
}

/// The machine's interface addresses, so a listener bound to every address is recognised
/// when a function names it by the machine's own IP.
fn local_addresses() -> Vec<IpAddr> {
    let mut found = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list we free below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return found;
    }
    let mut cursor = list;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a node of the list getifaddrs returned, not yet freed.
        let entry = unsafe { &*cursor };
        if !entry.ifa_addr.is_null() {
            // SAFETY: ifa_addr points to a sockaddr whose family says its real type.
            let family = i32::from(unsafe { (*entry.ifa_addr).sa_family });
            if family == libc::AF_INET {
                // SAFETY: the family is AF_INET, so this is a sockaddr_in.
                let v4 = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in) };
                found.push(IpAddr::from(u32::from_be(v4.sin_addr.s_addr).to_be_bytes()));
            } else if family == libc::AF_INET6 {
                // SAFETY: the family is AF_INET6, so this is a sockaddr_in6.
                let v6 = unsafe { &*(entry.ifa_addr as *const libc::sockaddr_in6) };
                found.push(IpAddr::from(v6.sin6_addr.s6_addr));
            }
        }
        cursor = entry.ifa_next;
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    found
}

/// Headers that describe one hop (RFC 9110 §7.6.1), or a proxy, never passed on.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Removes the headers that describe one hop, and those its `Connection` header names: for
/// every place Baton passes a message on (the process functions' proxy, http-mode sandboxes).
pub(crate) fn without_hop_headers(headers: &mut http::HeaderMap) {
    let named: Vec<String> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect();
    for name in named.iter().map(String::as_str).chain(HOP_BY_HOP) {
        headers.remove(name);
    }
}

/// Answers a platform request with the body the gateway produced, for [`PlatformService`]
/// implementations.
pub fn platform_body<B>(body: B) -> WasiBody
where
    B: hyper::body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Display,
{
    body.map_err(|e| Error::InternalError(Some(e.to_string())))
        .boxed_unsync()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_headers_stop_here_with_those_connection_names() {
        let mut headers = http::HeaderMap::new();
        for (name, value) in [
            ("transfer-encoding", "chunked"),
            ("connection", "keep-alive, x-private"),
            ("keep-alive", "timeout=5"),
            ("x-private", "1"),
            ("content-type", "application/json"),
        ] {
            headers.insert(
                http::HeaderName::from_static(name),
                http::HeaderValue::from_static(value),
            );
        }
        crate::outbound::without_hop_headers(&mut headers);
        let left: Vec<&str> = headers.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["content-type"]);
    }

    #[test]
    fn the_machine_has_addresses() {
        assert!(!local_addresses().is_empty(), "loopback at least");
    }
}
