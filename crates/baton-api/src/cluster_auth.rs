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

/// A control-plane client that sends the cluster token.
pub type ControlConn = ControlClient<InterceptedService<Channel, ClientAuth>>;
/// A worker client that sends the cluster token.
pub type WorkerConn = WorkerClient<InterceptedService<Channel, ClientAuth>>;

fn channel(url: &str) -> anyhow::Result<Channel> {
    Ok(Channel::from_shared(url.to_owned())?
        .connect_timeout(Duration::from_secs(2))
        .tcp_nodelay(true)
        .connect_lazy())
}

/// A client of the control plane at `url` (connected lazily: it may be down).
pub fn control_conn(url: &str, auth: &ClientAuth) -> anyhow::Result<ControlConn> {
    Ok(ControlClient::with_interceptor(channel(url)?, auth.clone())
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

/// A client of the worker whose gRPC service is at `address` (`host:port`).
pub fn worker_conn(address: &str, auth: &ClientAuth) -> anyhow::Result<WorkerConn> {
    Ok(
        WorkerClient::with_interceptor(channel(&format!("http://{address}"))?, auth.clone())
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
    )
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
