//! Replication between nodes: a shipper that sends each coalescing interval's deltas to every
//! peer, one dialing link per peer (persistent, reconnecting, with periodic anti-entropy), and
//! an acceptor that merges what peers send and answers their digests with repairs.

use crate::Agent;
use crate::entry::Update;
use crate::metrics::PeerLabel;
use crate::wire::{self, Connection, Frame, HANDSHAKE_TIMEOUT, Identity};
use anyhow::Context;
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

/// Frames a link holds for a peer that is slow or away; beyond it they are dropped and the
/// next anti-entropy round repairs what they carried.
const LINK_QUEUE: usize = 256;
/// Connections in their handshake at once; more are closed as they arrive.
const MAX_HANDSHAKES: usize = 64;
/// Bytes of repairs per frame.
const REPAIR_BATCH: usize = 4 << 20;

/// How a node replicates.
#[derive(Debug, Clone)]
pub struct ReplicationConfig {
    /// Where peers connect.
    pub listen: SocketAddr,
    /// Peers to ship to (`host:port`); replaceable at run time with
    /// [`Replication::set_peers`].
    pub peers: Vec<String>,
    /// Only nodes of the same cluster talk.
    pub cluster: String,
    /// Shared secret peers prove they hold; `None` only on loopback.
    pub secret: Option<String>,
    /// Deltas of one object made within this interval ship as one. Default 5 ms.
    pub coalesce: Duration,
    /// How often each node sends its digest to each peer. Default 1 s.
    pub anti_entropy: Duration,
    /// Largest frame accepted. Default 256 MiB.
    pub max_frame: usize,
}

impl Default for ReplicationConfig {
    fn default() -> Self {
        ReplicationConfig {
            listen: "127.0.0.1:0".parse().expect("a valid address"),
            peers: Vec::new(),
            cluster: "baton".into(),
            secret: None,
            coalesce: Duration::from_millis(5),
            anti_entropy: Duration::from_secs(1),
            max_frame: 256 << 20,
        }
    }
}

/// The running replication of one agent; stops when dropped.
pub struct Replication {
    address: SocketAddr,
    peers: watch::Sender<Vec<String>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Replication {
    /// Binds the peer listener and starts shipping to the configured peers.
    pub async fn start(agent: Agent, config: ReplicationConfig) -> anyhow::Result<Replication> {
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("state peers: listening on {}", config.listen))?;
        let address = listener.local_addr()?;
        let identity = Arc::new(Identity {
            cluster: config.cluster.clone(),
            node: agent.replica().node,
            secret: config.secret.clone(),
        });
        let config = Arc::new(config);
        let (peers, peer_list) = watch::channel(config.peers.clone());
        let links: Links = Arc::default();
        let tasks = vec![
            tokio::spawn(accept_loop(
                listener,
                agent.clone(),
                identity.clone(),
                config.clone(),
            )),
            tokio::spawn(manage_links(
                peer_list,
                links.clone(),
                agent.clone(),
                identity,
                config.clone(),
            )),
            tokio::spawn(ship(agent, links, config.coalesce)),
        ];
        tracing::info!(%address, "state replication listening");
        Ok(Replication {
            address,
            peers,
            tasks,
        })
    }

    /// Where peers connect.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// Replaces the peer set: the membership interface the cluster manager and federation
    /// feed. New peers get a link (and a full anti-entropy round); removed ones are dropped.
    pub fn set_peers(&self, peers: Vec<String>) {
        self.peers.send_replace(peers);
    }
}

impl Drop for Replication {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

type Links = Arc<std::sync::Mutex<HashMap<String, mpsc::Sender<Bytes>>>>;

async fn manage_links(
    mut peers: watch::Receiver<Vec<String>>,
    links: Links,
    agent: Agent,
    identity: Arc<Identity>,
    config: Arc<ReplicationConfig>,
) {
    let mut running: HashMap<String, JoinHandle<()>> = HashMap::new();
    loop {
        let wanted = peers.borrow_and_update().clone();
        agent.inner().metrics.peers.set(wanted.len() as i64);
        running.retain(|peer, task| {
            let keep = wanted.contains(peer);
            if !keep {
                task.abort();
                links.lock().unwrap().remove(peer);
            }
            keep
        });
        for peer in wanted {
            if running.contains_key(&peer) {
                continue;
            }
            let (tx, rx) = mpsc::channel(LINK_QUEUE);
            links.lock().unwrap().insert(peer.clone(), tx);
            let task = tokio::spawn(link(
                peer.clone(),
                rx,
                agent.clone(),
                identity.clone(),
                config.clone(),
            ));
            running.insert(peer, task);
        }
        if peers.changed().await.is_err() {
            break;
        }
    }
    for task in running.values() {
        task.abort();
    }
}

/// Every coalescing interval, sends the deltas made since the last one to every peer.
async fn ship(agent: Agent, links: Links, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let updates = agent.take_unshipped();
        // A node alone (or cut off) still takes what it would ship, so the deltas do not pile
        // up, but does not encode them for nobody.
        let alone = links.lock().unwrap().is_empty();
        if updates.is_empty() || alone || agent.inner().partitioned.load(Ordering::Relaxed) {
            continue;
        }
        let entries = updates
            .iter()
            .map(|u| Bytes::from(baton_crdt::encode(u)))
            .collect();
        let frame = wire::encode_frame(&Frame::Updates(entries));
        let metrics = &agent.inner().metrics;
        for (peer, tx) in links.lock().unwrap().iter() {
            if tx.try_send(frame.clone()).is_err() {
                metrics
                    .dropped_messages
                    .get_or_create(&PeerLabel { peer: peer.clone() })
                    .inc();
            }
        }
    }
}

/// The persistent connection to one peer: reconnects with capped backoff, sends the shipper's
/// frames and a digest on connect and every anti-entropy interval, merges the repairs.
async fn link(
    peer: String,
    mut frames: mpsc::Receiver<Bytes>,
    agent: Agent,
    identity: Arc<Identity>,
    config: Arc<ReplicationConfig>,
) {
    let label = PeerLabel { peer: peer.clone() };
    let metrics = agent.inner().metrics.clone();
    let mut backoff = Duration::from_millis(50);
    let mut last_error = String::new();
    loop {
        match connect(&peer, &identity, config.max_frame).await {
            Ok(mut conn) => {
                backoff = Duration::from_millis(50);
                last_error.clear();
                tracing::info!(%peer, "state peer connected");
                // Counted down also when the link is aborted (the peer left the membership).
                let _connected = Connected::new(&metrics.peers_connected);
                let result = serve_link(&mut conn, &mut frames, &agent, &config, &label).await;
                if let Err(error) = result {
                    tracing::warn!(%peer, %error, "state peer link lost");
                }
            }
            Err(error) => {
                let error = format!("{error:#}");
                if error != last_error {
                    tracing::warn!(%peer, %error, "state peer unreachable; retrying");
                    if error.contains("refused us") || error.contains("secret") {
                        metrics.rejected("handshake");
                    }
                    last_error = error;
                }
            }
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(1));
    }
}

/// One connected link in `baton_state_peers_connected`, for as long as it lives.
struct Connected(prometheus_client::metrics::gauge::Gauge);

impl Connected {
    fn new(gauge: &prometheus_client::metrics::gauge::Gauge) -> Self {
        gauge.inc();
        Connected(gauge.clone())
    }
}

impl Drop for Connected {
    fn drop(&mut self) {
        self.0.dec();
    }
}

async fn connect(peer: &str, identity: &Identity, max_frame: usize) -> anyhow::Result<Connection> {
    let stream = tokio::time::timeout(HANDSHAKE_TIMEOUT, tokio::net::TcpStream::connect(peer))
        .await
        .context("connect timed out")??;
    let mut conn = wire::framed(stream);
    tokio::time::timeout(HANDSHAKE_TIMEOUT, identity.dial(&mut conn))
        .await
        .context("handshake timed out")??;
    wire::authenticated(&mut conn, max_frame);
    Ok(conn)
}

async fn serve_link(
    conn: &mut Connection,
    frames: &mut mpsc::Receiver<Bytes>,
    agent: &Agent,
    config: &ReplicationConfig,
    label: &PeerLabel,
) -> anyhow::Result<()> {
    use futures_util::SinkExt;
    let metrics = &agent.inner().metrics;
    let mut anti_entropy = tokio::time::interval(config.anti_entropy);
    loop {
        tokio::select! {
            frame = frames.recv() => {
                let Some(frame) = frame else { return Ok(()) };
                metrics.sent_bytes.get_or_create(label).inc_by(frame.len() as u64);
                metrics.sent_messages.get_or_create(label).inc();
                conn.send(frame).await?;
            }
            _ = anti_entropy.tick() => {
                if agent.inner().partitioned.load(Ordering::Relaxed) {
                    continue;
                }
                let frame = wire::encode_frame(&Frame::Digest(agent.digest()));
                metrics.sent_bytes.get_or_create(label).inc_by(frame.len() as u64);
                metrics.sent_messages.get_or_create(label).inc();
                conn.send(frame).await?;
            }
            incoming = wire::receive(conn) => {
                let Some((frame, size)) = incoming? else { return Ok(()) };
                metrics.received_bytes.inc_by(size as u64);
                match frame {
                    // A partition (fault injection) drops repairs too, also those answering
                    // a digest sent before it began.
                    Frame::Repairs(_) if agent.inner().partitioned.load(Ordering::Relaxed) => {}
                    Frame::Repairs(entries) => merge_entries(agent, &entries),
                    other => anyhow::bail!("unexpected {} from the peer", frame_name(&other)),
                }
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    agent: Agent,
    identity: Arc<Identity>,
    config: Arc<ReplicationConfig>,
) {
    let handshakes = Arc::new(tokio::sync::Semaphore::new(MAX_HANDSHAKES));
    loop {
        let (stream, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "state peer accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(handshaking) = handshakes.clone().try_acquire_owned() else {
            agent.inner().metrics.rejected("handshake");
            drop(stream);
            continue;
        };
        let (agent, identity, max_frame) = (agent.clone(), identity.clone(), config.max_frame);
        tokio::spawn(async move {
            let mut conn = wire::framed(stream);
            let handshake =
                tokio::time::timeout(HANDSHAKE_TIMEOUT, identity.accept(&mut conn)).await;
            drop(handshaking);
            match handshake {
                Ok(Ok(_node)) => {
                    wire::authenticated(&mut conn, max_frame);
                    if let Err(error) = serve_peer(&mut conn, &agent).await {
                        agent.inner().metrics.rejected("protocol");
                        tracing::warn!(%from, %error, "state peer connection closed on an error");
                    }
                }
                Ok(Err(error)) => {
                    agent.inner().metrics.rejected("handshake");
                    tracing::warn!(%from, %error, "state peer refused");
                }
                Err(_) => {
                    agent.inner().metrics.rejected("handshake");
                    tracing::warn!(%from, "state peer handshake timed out");
                }
            }
        });
    }
}

/// Serves one dialing peer: merges its deltas, answers its digests.
async fn serve_peer(conn: &mut Connection, agent: &Agent) -> anyhow::Result<()> {
    let metrics = &agent.inner().metrics;
    let mut suspected = HashSet::new();
    while let Some((frame, size)) = wire::receive(conn).await? {
        metrics.received_bytes.inc_by(size as u64);
        if agent.inner().partitioned.load(Ordering::Relaxed) {
            continue;
        }
        match frame {
            Frame::Updates(entries) => merge_entries(agent, &entries),
            Frame::Digest(digest) => {
                // An object the peer lacks entirely is sent at once (bootstrap). One it is
                // merely behind on is sent only if it was behind on the previous digest too:
                // a gap that lasts an anti-entropy interval is a loss, not deltas in flight.
                let mut repair = Vec::new();
                let mut behind = HashSet::new();
                for (key, absent) in agent.lagging(&digest) {
                    if absent || suspected.contains(&key) {
                        repair.push(key);
                    } else {
                        behind.insert(key);
                    }
                }
                suspected = behind;
                let repairs = agent.states(&repair);
                let mut batch = Vec::new();
                let mut bytes = 0;
                for update in &repairs {
                    let encoded = Bytes::from(baton_crdt::encode(update));
                    bytes += encoded.len();
                    batch.push(encoded);
                    if bytes >= REPAIR_BATCH {
                        wire::send(conn, &Frame::Repairs(std::mem::take(&mut batch))).await?;
                        bytes = 0;
                    }
                }
                if !batch.is_empty() {
                    wire::send(conn, &Frame::Repairs(batch)).await?;
                }
            }
            other => anyhow::bail!("unexpected {} from a dialing peer", frame_name(&other)),
        }
    }
    Ok(())
}

/// Decodes and merges updates one by one: a malformed one is counted and dropped, the rest
/// still apply.
fn merge_entries(agent: &Agent, entries: &[Bytes]) {
    let mut updates: Vec<Update> = Vec::with_capacity(entries.len());
    for entry in entries {
        match baton_crdt::decode::<Update>(entry) {
            Ok(update)
                if crate::ObjectKey::new(&update.key.namespace, &update.key.name).is_ok() =>
            {
                updates.push(update)
            }
            Ok(update) => {
                agent.inner().metrics.rejected("malformed-update");
                tracing::warn!(key = ?update.key, "a peer sent an update with an invalid name; dropped");
            }
            Err(error) => {
                agent.inner().metrics.rejected("malformed-update");
                tracing::warn!(%error, "a peer sent an update that does not decode; dropped");
            }
        }
    }
    agent.merge_remote(&updates);
}

fn frame_name(frame: &Frame) -> &'static str {
    match frame {
        Frame::Hello { .. } => "hello",
        Frame::Welcome { .. } => "welcome",
        Frame::Proof { .. } => "proof",
        Frame::Refused { .. } => "refused",
        Frame::Updates(_) => "updates",
        Frame::Digest(_) => "digest",
        Frame::Repairs(_) => "repairs",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::Coverage;
    use crate::{Durability, Limits, ObjectKey, Op, Query, StateMetrics, Value};
    use baton_crdt::{PNCounter, ReplicaId};

    async fn agent(dir: &std::path::Path, name: &str) -> (Agent, Replication) {
        let agent = Agent::open(
            &dir.join(name),
            Limits::default(),
            Durability::Durable,
            StateMetrics::default(),
        )
        .unwrap();
        let replication = Replication::start(agent.clone(), ReplicationConfig::default())
            .await
            .unwrap();
        (agent, replication)
    }

    fn counter_update(name: &str, origin: ReplicaId, amount: i64) -> Bytes {
        let mut counter = PNCounter::default();
        let delta = counter.add(origin, amount);
        Bytes::from(baton_crdt::encode(&Update {
            key: ObjectKey {
                namespace: "app".into(),
                name: name.into(),
            },
            generation: 0,
            object: Some(crate::Object::Counter(delta)),
            coverage: Coverage::Range {
                origin,
                from: 0,
                to: 1,
            },
            created_micros: 0,
        }))
    }

    #[tokio::test]
    async fn malformed_updates_from_a_peer_are_dropped_and_the_rest_apply() {
        let dir = tempfile::tempdir().unwrap();
        let (agent, replication) = agent(dir.path(), "a").await;
        let peer = Identity {
            cluster: "baton".into(),
            node: 42,
            secret: None,
        };
        let stream = tokio::net::TcpStream::connect(replication.address())
            .await
            .unwrap();
        let mut conn = wire::framed(stream);
        peer.dial(&mut conn).await.unwrap();
        wire::authenticated(&mut conn, 1 << 20);
        let origin = ReplicaId::new(42, 1);
        let entries = vec![
            Bytes::from_static(b"\xff\xff\xffgarbage"),
            counter_update("good", origin, 5),
            counter_update("Bad Name", origin, 1),
        ];
        wire::send(&mut conn, &Frame::Updates(entries))
            .await
            .unwrap();
        let key = ObjectKey::new("app", "good").unwrap();
        for _ in 0..200 {
            if agent.version(&key) > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            agent.read(&key, &Query::Value).unwrap().value,
            Value::Int(5)
        );
        assert_eq!(
            agent.list("app").len(),
            1,
            "only the well-formed update applied"
        );
        // A frame that is not a frame at all ends that connection, not the agent.
        use futures_util::SinkExt;
        conn.send(Bytes::from_static(b"\x09\x09\x09"))
            .await
            .unwrap();
        assert!(wire::receive(&mut conn).await.map_or(true, |f| f.is_none()));
        let mine = ObjectKey::new("app", "mine").unwrap();
        agent
            .apply(&mine, Op::CounterAdd { amount: 1 }, Durability::Durable)
            .await
            .unwrap();
        assert_eq!(
            agent.read(&key, &Query::Value).unwrap().value,
            Value::Int(5)
        );
    }

    #[tokio::test]
    async fn a_large_frame_before_the_handshake_closes_the_connection_unread() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = tempfile::tempdir().unwrap();
        let (agent, replication) = agent(dir.path(), "a").await;
        let mut stream = tokio::net::TcpStream::connect(replication.address())
            .await
            .unwrap();
        // A length prefix announcing 200 MiB, then the start of that frame.
        stream
            .write_all(&(200u32 << 20).to_be_bytes())
            .await
            .unwrap();
        let _ = stream.write_all(&vec![7u8; 64 << 10]).await;
        let mut rest = Vec::new();
        let closed = tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut rest))
            .await
            .expect("the node neither read on nor closed");
        assert!(
            closed.is_err() || rest.is_empty(),
            "the node answered {rest:?}"
        );
        let key = ObjectKey::new("app", "still").unwrap();
        agent
            .apply(&key, Op::CounterAdd { amount: 1 }, Durability::Durable)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn two_agents_converge_and_a_late_peer_is_repaired_by_anti_entropy() {
        let dir = tempfile::tempdir().unwrap();
        let (a, ra) = agent(dir.path(), "a").await;
        let (b, rb) = agent(dir.path(), "b").await;
        let key = ObjectKey::new("app", "c").unwrap();
        // Written before the nodes know each other: only anti-entropy can carry it.
        a.apply(&key, Op::CounterAdd { amount: 3 }, Durability::Durable)
            .await
            .unwrap();
        ra.set_peers(vec![rb.address().to_string()]);
        rb.set_peers(vec![ra.address().to_string()]);
        b.apply(&key, Op::CounterAdd { amount: 4 }, Durability::Async)
            .await
            .unwrap();
        let converged = |agent: &Agent| {
            agent
                .read(&key, &Query::Value)
                .is_ok_and(|r| r.value == Value::Int(7))
        };
        for _ in 0..500 {
            if converged(&a) && converged(&b) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(converged(&a) && converged(&b));
        // A watcher on b wakes when a's next write arrives.
        let version = b.version(&key);
        let watcher = {
            let b = b.clone();
            let key = key.clone();
            tokio::spawn(async move { b.watch(&key, version, Duration::from_secs(10)).await })
        };
        a.apply(&key, Op::CounterAdd { amount: 1 }, Durability::Durable)
            .await
            .unwrap();
        assert!(watcher.await.unwrap() > version);
        assert_eq!(b.read(&key, &Query::Value).unwrap().value, Value::Int(8));
    }
}
