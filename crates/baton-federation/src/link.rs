//! One site's connection to one peer: HTTP/2 over TLS with the site keys, dialled on first use
//! and again after it breaks; every request through it has a deadline, and a dial finishes
//! even when the request that started it stops waiting.

use crate::identity::{SiteId, SiteKey};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http2::SendRequest;
use hyper_util::rt::{TokioExecutor, TokioIo};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::timeout;

/// Longest a dial (TCP, the TLS handshake and HTTP/2's) may take. A dial outlives the
/// request that started it: under load a handshake can take longer than a round's deadline,
/// and a dial cancelled with each round would never finish.
const DIAL_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request to a peer got no answer.
#[derive(Clone, Debug, thiserror::Error)]
pub enum LinkError {
    /// The peer could not be reached or the connection broke.
    #[error("peer unreachable: {0}")]
    Unreachable(String),
    /// No answer before the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// A dial's outcome, once it has one.
type Dial = watch::Receiver<Option<Result<SendRequest<Full<Bytes>>, LinkError>>>;

/// The connection to one peer.
pub struct Link {
    peer: SiteId,
    tls: tokio_rustls::TlsConnector,
    /// The latest dial: in progress, failed, or the connection it made.
    dial: std::sync::Mutex<Option<Dial>>,
}

impl Link {
    /// A link from the site holding `key` to `peer` (not dialled yet).
    pub fn new(key: &SiteKey, peer: SiteId) -> anyhow::Result<Link> {
        Ok(Link {
            peer,
            tls: tokio_rustls::TlsConnector::from(crate::tls::client_config(key, peer)?),
            dial: std::sync::Mutex::new(None),
        })
    }

    /// The dial to wait on: the one in progress or the open connection, else a new one.
    fn current_dial(&self, address: &str) -> Dial {
        let mut slot = self.dial.lock().unwrap();
        let usable = slot.as_ref().is_some_and(|dial| match &*dial.borrow() {
            None => true,
            Some(Ok(sender)) => !sender.is_closed(),
            Some(Err(_)) => false,
        });
        if !usable {
            *slot = Some(self.start_dial(address));
        }
        slot.clone().expect("a dial was just set")
    }

    /// Dials `address` in a task of its own, so that it finishes even when the request
    /// that wanted it gives up first.
    fn start_dial(&self, address: &str) -> Dial {
        let (done, dial) = watch::channel(None);
        let (tls, address, peer) = (self.tls.clone(), address.to_owned(), self.peer);
        tokio::spawn(async move {
            let outcome = timeout(DIAL_TIMEOUT, connect(tls, &address, peer))
                .await
                .unwrap_or(Err(LinkError::Timeout(DIAL_TIMEOUT)));
            if let Err(error) = &outcome {
                tracing::debug!(%peer, %error, "federation dial failed");
            }
            let _ = done.send(Some(outcome));
        });
        dial
    }

    /// Sends `request` to the peer at `address`, waiting at most `deadline` for the whole
    /// answer (a dial included) and reading at most `max_bytes` of its body (a longer one is
    /// an error).
    pub async fn send(
        &self,
        address: &str,
        request: http::Request<Bytes>,
        deadline: Duration,
        max_bytes: usize,
    ) -> Result<http::Response<Bytes>, LinkError> {
        let exchange = async {
            let mut dial = self.current_dial(address);
            let mut sender = match dial.wait_for(Option::is_some).await {
                Ok(outcome) => outcome.clone().expect("waited for an outcome")?,
                Err(_) => return Err(LinkError::Unreachable("the dial was dropped".into())),
            };
            let (mut parts, body) = request.into_parts();
            // HTTP/2 takes the authority from the URI.
            parts.uri = format!(
                "https://{address}{}",
                parts.uri.path_and_query().map_or("/", |p| p.as_str())
            )
            .parse()
            .map_err(|e| LinkError::Unreachable(format!("bad address {address:?}: {e}")))?;
            // A connection that broke reads as closed, and the next request dials again.
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
}

/// TCP, TLS with the site keys, then HTTP/2, whose connection is driven by a task of its own.
async fn connect(
    tls: tokio_rustls::TlsConnector,
    address: &str,
    peer: SiteId,
) -> Result<SendRequest<Full<Bytes>>, LinkError> {
    let unreachable = |e: &dyn std::fmt::Display| LinkError::Unreachable(format!("{e}"));
    let tcp = tokio::net::TcpStream::connect(address)
        .await
        .map_err(|e| unreachable(&e))?;
    let _ = tcp.set_nodelay(true);
    let tls = tls
        .connect(crate::tls::server_name(), tcp)
        .await
        .map_err(|e| unreachable(&e))?;
    let (sender, connection) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(hyper_util::rt::TokioTimer::new())
        .keep_alive_interval(Duration::from_secs(5))
        .keep_alive_timeout(Duration::from_secs(5))
        .handshake(TokioIo::new(tls))
        .await
        .map_err(|e| unreachable(&e))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%peer, %error, "federation connection closed");
        }
    });
    Ok(sender)
}

/// Links are shared by the agent and the data plane.
pub type SharedLink = Arc<Link>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    /// A peer whose handshakes take `delay` before TLS starts; answers every request 200.
    async fn slow_peer(key: SiteKey, delay: Duration) -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let acceptor = tokio_rustls::TlsAcceptor::from(crate::tls::server_config(&key).unwrap());
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(delay).await;
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper::service::service_fn(|_| async {
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::from_static(b"ok"),
                        )))
                    });
                    let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        (address, accepted)
    }

    /// Under load a handshake can outlast a round's deadline; the link must still come up
    /// rather than start over with every round.
    #[tokio::test]
    async fn a_dial_slower_than_the_deadline_still_brings_the_link_up() {
        let (site, peer) = (
            SiteKey::generate().unwrap().0,
            SiteKey::generate().unwrap().0,
        );
        let peer_id = peer.id();
        let (address, accepted) = slow_peer(peer, Duration::from_millis(300)).await;
        let link = Link::new(&site, peer_id).unwrap();
        let deadline = Duration::from_millis(50);
        let give_up = Instant::now() + Duration::from_secs(60);
        let mut attempts = 0;
        let answered = loop {
            attempts += 1;
            let request = http::Request::post("/round").body(Bytes::new()).unwrap();
            match link.send(&address, request, deadline, 1024).await {
                Ok(response) => break response,
                Err(LinkError::Timeout(_)) if Instant::now() < give_up => continue,
                Err(error) => panic!("after {attempts} attempts: {error}"),
            }
        };
        assert_eq!(answered.body().as_ref(), b"ok");
        assert!(
            attempts > 1,
            "the first request cannot outrun the handshake"
        );
        assert_eq!(
            accepted.load(Ordering::SeqCst),
            1,
            "one dial, kept across requests"
        );
    }
}
