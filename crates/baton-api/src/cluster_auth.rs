//! Only members talk: every call of the cluster protocol carries the cluster's shared token
//! (`authorization: Bearer …`), and every service refuses calls without it. Without a token
//! the roles stay on loopback.

use crate::cluster::control_client::ControlClient;
use crate::cluster::worker_client::WorkerClient;
use std::sync::Arc;
use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};
use tower::ServiceExt;
use tower::util::BoxCloneSyncService;

/// Largest message on the cluster protocol: a component upload or artifact fetch.
pub const MAX_MESSAGE_BYTES: usize = 300 << 20;

/// Adds the cluster token to every outgoing call.
#[derive(Clone, Default)]
pub struct ClientAuth(Option<MetadataValue<tonic::metadata::Ascii>>);

impl ClientAuth {
    /// Sends `token` (none: calls go without one, for a loopback-only cluster).
    pub fn new(token: Option<&str>) -> anyhow::Result<Self> {
        Ok(ClientAuth(match token {
            Some(t) => Some(
                format!("Bearer {t}")
                    .parse()
                    .map_err(|_| anyhow::anyhow!("the cluster token must be printable ASCII"))?,
            ),
            None => None,
        }))
    }
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the token.
        f.write_str(if self.0.is_some() {
            "ClientAuth(token)"
        } else {
            "ClientAuth(none)"
        })
    }
}

impl Interceptor for ClientAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// Refuses calls that do not carry the cluster token.
#[derive(Clone, Default)]
pub struct ServerAuth(Option<Arc<[u8]>>);

impl ServerAuth {
    /// Requires `token` (none: every call is accepted, for a loopback-only cluster).
    pub fn new(token: Option<&str>) -> Self {
        ServerAuth(token.map(|t| Arc::from(format!("Bearer {t}").into_bytes())))
    }
}

impl Interceptor for ServerAuth {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(expected) = &self.0 else {
            return Ok(request);
        };
        let given = request
            .metadata()
            .get("authorization")
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        // Compare in time independent of where the first difference is.
        let same = given.len() == expected.len()
            && given
                .iter()
                .zip(expected.iter())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0;
        if same {
            Ok(request)
        } else {
            Err(Status::unauthenticated(
                "missing or wrong cluster token (--cluster-token / BATON_CLUSTER_TOKEN)",
            ))
        }
    }
}

/// How a client of the cluster protocol reaches its server: over the network (with the
/// cluster token), or in the same process (`baton up`: the same messages, no socket).
pub type Transport = BoxCloneSyncService<
    http::Request<tonic::body::Body>,
    http::Response<tonic::body::Body>,
    TransportError,
>;

/// A call that did not reach its server (the network's error; in-process calls never fail
/// this way). A concrete type, not `BoxError`: the generated clients' async methods need an
/// error whose conversion holds for every lifetime.
#[derive(Debug)]
pub struct TransportError(tower::BoxError);

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TransportError {
    // The network's error itself, so tonic finds what it maps to a status (a failed
    // connection is UNAVAILABLE) by walking the chain.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.0.as_ref())
    }
}
/// A control-plane client.
pub type ControlConn = ControlClient<Transport>;
/// A worker client.
pub type WorkerConn = WorkerClient<Transport>;

fn network(url: &str, auth: &ClientAuth) -> anyhow::Result<Transport> {
    let service = InterceptedService::new(channel(url)?, auth.clone());
    Ok(BoxCloneSyncService::new(
        service
            .map_response(|response| response.map(tonic::body::Body::new))
            .map_err(|e| TransportError(e.into())),
    ))
}

/// A transport that calls `server` (a generated `…Server`) in this process.
pub fn in_process<S, B>(server: S) -> Transport
where
    S: tower::Service<
            http::Request<tonic::body::Body>,
            Response = http::Response<B>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
    B: tonic::codegen::Body<Data = bytes::Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    BoxCloneSyncService::new(
        server
            .map_response(|response| response.map(tonic::body::Body::new))
            .map_err(|never| match never {}),
    )
}

/// A control-plane client over `transport` (see [`control_conn`] for the network one).
pub fn control_client(transport: Transport) -> ControlConn {
    ControlClient::new(transport)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

/// A worker client over `transport` (see [`worker_conn`] for the network one).
pub fn worker_client(transport: Transport) -> WorkerConn {
    WorkerClient::new(transport)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES)
}

fn channel(url: &str) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .connect_lazy())
}

/// A client of the control plane at `url` (connected lazily: it may be down).
pub fn control_conn(url: &str, auth: &ClientAuth) -> anyhow::Result<ControlConn> {
    Ok(control_client(network(url, auth)?))
}

/// A client of the worker whose gRPC service is at `address` (`host:port`).
pub fn worker_conn(address: &str, auth: &ClientAuth) -> anyhow::Result<WorkerConn> {
    Ok(worker_client(network(&format!("http://{address}"), auth)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(header: Option<&str>) -> Request<()> {
        let mut request = Request::new(());
        if let Some(h) = header {
            request
                .metadata_mut()
                .insert("authorization", h.parse().unwrap());
        }
        request
    }

    #[test]
    fn only_the_right_token_passes() {
        let mut server = ServerAuth::new(Some("s3cret"));
        assert!(server.call(with(Some("Bearer s3cret"))).is_ok());
        assert!(server.call(with(Some("Bearer s3cre"))).is_err());
        assert!(server.call(with(Some("Bearer s3creT"))).is_err());
        assert!(server.call(with(None)).is_err());
        let mut client = ClientAuth::new(Some("s3cret")).unwrap();
        assert!(server.call(client.call(with(None)).unwrap()).is_ok());
        assert!(ServerAuth::new(None).call(with(None)).is_ok());
        assert!(ClientAuth::new(Some("bad\ntoken")).is_err());
    }
}
