//! One site's connection to one peer: HTTP/2 over TLS with the site keys, dialled on first use
//! and again after it breaks; every request through it has a deadline.

use crate::identity::{SiteId, SiteKey};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::timeout;

/// Longest a dial (TCP and the TLS handshake) may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a request to a peer got no answer.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The peer could not be reached or the connection broke.
    #[error("peer unreachable: {0}")]
    Unreachable(String),
    /// No answer before the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// The connection to one peer.
pub struct Link {
    peer: SiteId,
    tls: tokio_rustls::TlsConnector,
    sender: tokio::sync::Mutex<Option<SendRequest<Full<Bytes>>>>,
}

impl Link {
    /// A link from the site holding `key` to `peer` (not dialled yet).
    pub fn new(key: &SiteKey, peer: SiteId) -> anyhow::Result<Link> {
        Ok(Link {
            peer,
            tls: tokio_rustls::TlsConnector::from(crate::tls::client_config(key, peer)?),
            sender: tokio::sync::Mutex::new(None),
        })
    }

    async fn sender(&self, address: &str) -> Result<SendRequest<Full<Bytes>>, LinkError> {
        let mut slot = self.sender.lock().await;
        if let Some(sender) = slot.as_ref()
            && !sender.is_closed()
        {
            return Ok(sender.clone());
        }
        *slot = None;
        let unreachable = |e: &dyn std::fmt::Display| LinkError::Unreachable(format!("{e}"));
        let dial = async {
            let tcp = tokio::net::TcpStream::connect(address)
                .await
                .map_err(|e| unreachable(&e))?;
            let _ = tcp.set_nodelay(true);
            self.tls
                .connect(crate::tls::server_name(), tcp)
                .await
                .map_err(|e| unreachable(&e))
        };
        let tls = timeout(DIAL_TIMEOUT, dial)
            .await
            .map_err(|_| LinkError::Timeout(DIAL_TIMEOUT))??;
        let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
            .timer(hyper_util::rt::TokioTimer::new())
            .keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5))
            .handshake(TokioIo::new(tls))
            .await
            .map_err(|e| unreachable(&e))?;
        let peer = self.peer;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "federation connection closed");
            }
        });
        *slot = Some(sender.clone());
        Ok(sender)
    }

    /// Sends `request` to the peer at `address`, waiting at most `deadline` for the whole
    /// answer and reading at most `max_bytes` of its body (a longer one is an error).
    pub async fn send(
        &self,
        address: &str,
        request: http::Request<Bytes>,
        deadline: Duration,
        max_bytes: usize,
    ) -> Result<http::Response<Bytes>, LinkError> {
        let exchange = async {
            let mut sender = self.sender(address).await?;
            let (mut parts, body) = request.into_parts();
            // HTTP/2 takes the authority from the URI.
            parts.uri = format!(
                "https://{address}{}",
                parts.uri.path_and_query().map_or("/", |p| p.as_str())
            )
            .parse()
            .map_err(|e| LinkError::Unreachable(format!("bad address {address:?}: {e}")))?;
            let response = sender
                .send_request(http::Request::from_parts(parts, Full::new(body)))
                .await
                .map_err(|e| LinkError::Unreachable(e.to_string()))?;
            let (parts, body) = response.into_parts();
            let body = Limited::new(body, max_bytes)
                .collect()
                .await
                .map_err(|e| LinkError::Unreachable(format!("reading the answer: {e}")))?
                .to_bytes();
            Ok(http::Response::from_parts(parts, body))
        };
        timeout(deadline, exchange)
            .await
            .map_err(|_| LinkError::Timeout(deadline))?
    }

    /// Forgets the connection, so the next request dials again.
    pub async fn reset(&self) {
        *self.sender.lock().await = None;
    }
}

/// Links are shared by the agent and the data plane.
pub type SharedLink = Arc<Link>;
