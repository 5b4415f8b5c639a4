//! The peer protocol: length-prefixed postcard frames over one TCP connection per ordered
//! pair of nodes, after a handshake in which both sides name their cluster and, when the
//! cluster has a secret, prove they hold it by answering each other's fresh nonce (HMAC-SHA256),
//! so a recorded handshake cannot be replayed.

use crate::agent::DigestEntry;
use anyhow::{Context, bail};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

/// Bumped on any incompatible change of [`Frame`].
const PROTOCOL: u32 = 1;
/// How long a handshake may take.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Frame {
    /// The dialer's opening.
    Hello {
        protocol: u32,
        cluster: String,
        node: u64,
        nonce: [u8; 16],
    },
    /// The acceptor's answer, proving itself on the dialer's nonce.
    Welcome {
        node: u64,
        nonce: [u8; 16],
        proof: Vec<u8>,
    },
    /// The dialer's proof on the acceptor's nonce.
    Proof { proof: Vec<u8> },
    /// The handshake failed; the connection closes.
    Refused { reason: String },
    /// Coalesced deltas, each an encoded update decoded on its own (one bad entry is dropped,
    /// not the batch).
    Updates(Vec<Bytes>),
    /// What the sender has seen of every object; the receiver answers with [`Frame::Repairs`].
    Digest(Vec<DigestEntry>),
    /// Whole states the digest's sender lacked.
    Repairs(Vec<Bytes>),
}

pub(crate) type Connection = Framed<TcpStream, LengthDelimitedCodec>;

/// Largest frame accepted before the peer has proved its identity: hellos are a few hundred
/// bytes, so an unauthenticated client cannot make the node buffer more than this.
pub(crate) const HANDSHAKE_MAX_FRAME: usize = 4 << 10;

/// A connection that accepts handshake-sized frames only; [`authenticated`] lifts the cap.
pub(crate) fn framed(stream: TcpStream) -> Connection {
    let _ = stream.set_nodelay(true);
    LengthDelimitedCodec::builder()
        .max_frame_length(HANDSHAKE_MAX_FRAME)
        .new_framed(stream)
}

/// Lets frames up to `max_frame` through, once the handshake has succeeded.
pub(crate) fn authenticated(conn: &mut Connection, max_frame: usize) {
    conn.codec_mut().set_max_frame_length(max_frame);
}

pub(crate) fn encode_frame(frame: &Frame) -> Bytes {
    Bytes::from(postcard::to_stdvec(frame).expect("frames always serialize"))
}

pub(crate) async fn send(conn: &mut Connection, frame: &Frame) -> anyhow::Result<()> {
    conn.send(encode_frame(frame)).await?;
    Ok(())
}

/// The next frame; `None` when the peer closed. A frame that does not decode is an error.
pub(crate) async fn receive(conn: &mut Connection) -> anyhow::Result<Option<(Frame, usize)>> {
    match conn.next().await {
        None => Ok(None),
        Some(bytes) => {
            let bytes = bytes?;
            let frame = postcard::from_bytes(&bytes).context("malformed frame from peer")?;
            Ok(Some((frame, bytes.len())))
        }
    }
}

/// Who this node is to its peers.
#[derive(Debug, Clone)]
pub(crate) struct Identity {
    pub cluster: String,
    pub node: u64,
    pub secret: Option<String>,
}

impl Identity {
    fn prove(&self, role: &[u8], dialer_nonce: &[u8; 16], acceptor_nonce: &[u8; 16]) -> Vec<u8> {
        let Some(secret) = &self.secret else {
            return Vec::new();
        };
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(role);
        mac.update(self.cluster.as_bytes());
        mac.update(dialer_nonce);
        mac.update(acceptor_nonce);
        mac.finalize().into_bytes().to_vec()
    }

    fn verify(
        &self,
        role: &[u8],
        dialer_nonce: &[u8; 16],
        acceptor_nonce: &[u8; 16],
        proof: &[u8],
    ) -> bool {
        let expected = self.prove(role, dialer_nonce, acceptor_nonce);
        expected.len() == proof.len()
            && expected
                .iter()
                .zip(proof)
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    /// The dialer's side; returns the peer's node id.
    pub async fn dial(&self, conn: &mut Connection) -> anyhow::Result<u64> {
        let nonce = fresh_nonce();
        send(
            conn,
            &Frame::Hello {
                protocol: PROTOCOL,
                cluster: self.cluster.clone(),
                node: self.node,
                nonce,
            },
        )
        .await?;
        match receive(conn).await? {
            Some((
                Frame::Welcome {
                    node,
                    nonce: theirs,
                    proof,
                },
                _,
            )) => {
                if !self.verify(b"acceptor", &nonce, &theirs, &proof) {
                    bail!("the peer did not prove it holds this cluster's secret");
                }
                send(
                    conn,
                    &Frame::Proof {
                        proof: self.prove(b"dialer", &nonce, &theirs),
                    },
                )
                .await?;
                Ok(node)
            }
            Some((Frame::Refused { reason }, _)) => bail!("the peer refused us: {reason}"),
            Some((other, _)) => bail!("unexpected {other:?} in the handshake"),
            None => bail!("the peer closed the connection during the handshake"),
        }
    }

    /// The acceptor's side; returns the peer's node id.
    pub async fn accept(&self, conn: &mut Connection) -> anyhow::Result<u64> {
        let Some((
            Frame::Hello {
                protocol,
                cluster,
                node,
                nonce: theirs,
            },
            _,
        )) = receive(conn).await?
        else {
            bail!("the connection did not open with a hello");
        };
        let refusal = if protocol != PROTOCOL {
            Some(format!("protocol {protocol} is not {PROTOCOL}"))
        } else if cluster != self.cluster {
            Some(format!("cluster {cluster:?} is not {:?}", self.cluster))
        } else if node == self.node {
            Some("a node cannot peer with itself".to_string())
        } else {
            None
        };
        if let Some(reason) = refusal {
            let _ = send(
                conn,
                &Frame::Refused {
                    reason: reason.clone(),
                },
            )
            .await;
            bail!("{reason}");
        }
        let nonce = fresh_nonce();
        send(
            conn,
            &Frame::Welcome {
                node: self.node,
                nonce,
                proof: self.prove(b"acceptor", &theirs, &nonce),
            },
        )
        .await?;
        match receive(conn).await? {
            Some((Frame::Proof { proof }, _))
                if self.verify(b"dialer", &theirs, &nonce, &proof) =>
            {
                Ok(node)
            }
            Some((Frame::Proof { .. }, _)) => {
                let reason = "the peer did not prove it holds this cluster's secret";
                let _ = send(
                    conn,
                    &Frame::Refused {
                        reason: reason.into(),
                    },
                )
                .await;
                bail!("{reason}")
            }
            _ => bail!("the handshake did not finish with a proof"),
        }
    }
}

fn fresh_nonce() -> [u8; 16] {
    *uuid::Uuid::new_v4().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connects to `address` and sends one frame a little over the handshake cap.
    fn send_large_frame(address: std::net::SocketAddr) -> tokio::task::JoinHandle<Connection> {
        tokio::spawn(async move {
            let mut conn = framed(TcpStream::connect(address).await.unwrap());
            authenticated(&mut conn, 1 << 20);
            conn.send(Bytes::from(vec![7u8; HANDSHAKE_MAX_FRAME + 1]))
                .await
                .unwrap();
            conn
        })
    }

    /// A frame a little over the handshake cap: refused before the handshake, read after it.
    #[tokio::test]
    async fn frames_beyond_a_few_kib_wait_for_the_handshake() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let client = send_large_frame(address);
        let mut before = framed(listener.accept().await.unwrap().0);
        assert!(
            before.next().await.unwrap().is_err(),
            "a large frame got through before the handshake"
        );
        drop(client.await.unwrap());
        // The same frame on a connection whose peer has proved itself.
        let client = send_large_frame(address);
        let mut after = framed(listener.accept().await.unwrap().0);
        authenticated(&mut after, 1 << 20);
        let frame = after.next().await.unwrap().unwrap();
        assert_eq!(frame.len(), HANDSHAKE_MAX_FRAME + 1);
        drop(client.await.unwrap());
    }
}
