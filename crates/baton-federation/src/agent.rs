//! The federation agent of one site: its peers, its federated functions and their routes, and
//! the rounds. Every period (and, with a strategy that reacts, as soon as the site saturates)
//! it measures each federated function's load, asks the peers for what it lacks, and turns
//! the grants it gets into the gateway's route; a peer not heard from within two periods is
//! dropped, and its in-flight requests fail over.

use crate::config::{FederationConfig, PeerAddress};
use crate::identity::{SiteId, SiteKey};
use crate::ledger::Ledger;
use crate::link::Link;
use crate::membership::Membership;
use crate::meter::Meter;
use crate::metrics::FederationMetrics;
use crate::signing::Verifier;
use crate::site::{LocalFunction, Site};
use crate::strategy::{Grant, Load, OffloadStrategy, PeerReport, Route};
use crate::wire::{FunctionRound, KnownSite, Offer, ROUND_PATH, Round, RoundReply};
use baton_api::Invoker;
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Rounds between periods are at least this far apart.
const MIN_ROUND_GAP: Duration = Duration::from_millis(100);
/// Longest a round's exchange with one peer may take, whatever the period.
const ROUND_TIMEOUT: Duration = Duration::from_secs(2);
/// Most peers one site keeps, however many others tell it of.
const MAX_PEERS: usize = 256;

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A federated function on this site, as the data plane and the rounds see it.
pub(crate) struct Federated {
    pub(crate) local: RwLock<LocalFunction>,
    pub(crate) meter: Meter,
    /// Requests of this function running here: its users' and peers'.
    pub(crate) running: AtomicU64,
    /// Its users' requests in flight, here or forwarded.
    pub(crate) own_in_flight: AtomicU64,
    /// How its users' requests are routed, from the last round.
    pub(crate) route: RwLock<Arc<Route>>,
    /// Picks among shares and targets.
    pub(crate) sequence: AtomicU64,
    /// Woken after every round that routed it.
    pub(crate) rerouted: tokio::sync::Notify,
    /// Woken when one of its requests here finishes.
    pub(crate) slot_freed: tokio::sync::Notify,
}

impl Federated {
    fn new(local: LocalFunction) -> Federated {
        Federated {
            local: RwLock::new(local),
            meter: Meter::default(),
            running: AtomicU64::new(0),
            own_in_flight: AtomicU64::new(0),
            route: RwLock::new(Arc::new(Route::Local)),
            sequence: AtomicU64::new(0),
            rerouted: tokio::sync::Notify::new(),
            slot_freed: tokio::sync::Notify::new(),
        }
    }

    /// Slots here: the site's capacity, capped by the `max-rate` label once the time a
    /// request takes is known.
    pub(crate) fn capacity(&self) -> f64 {
        let local = self.local.read().unwrap();
        match (local.max_rate, self.meter.service()) {
            (Some(rate), Some(service)) => local.capacity.min((rate * service).max(1.0)),
            _ => local.capacity,
        }
    }

    pub(crate) fn fingerprint(&self) -> String {
        self.local.read().unwrap().fingerprint.clone()
    }

    /// The load of this site's own users.
    pub(crate) fn load(&self, now: Instant) -> Load {
        self.meter.load(
            self.capacity(),
            self.own_in_flight.load(Ordering::Relaxed),
            now,
        )
    }
}

/// A request of a function running here, counted in its `running` until dropped (also when
/// the request is cancelled: the client went away); then a waiting request is told a slot
/// freed.
pub(crate) struct Running<'a>(&'a Federated);

impl<'a> Running<'a> {
    pub(crate) fn new(function: &'a Federated) -> Running<'a> {
        function.running.fetch_add(1, Ordering::Relaxed);
        Running(function)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.running.fetch_sub(1, Ordering::Relaxed);
        self.0.slot_freed.notify_one();
    }
}

/// One of this site's requests for `function` in flight at a peer, counted until dropped
/// (also when cancelled), so a lost request never keeps the peer's grant used.
pub(crate) struct AtPeer<'a> {
    peer: &'a Peer,
    function: &'a str,
}

impl<'a> AtPeer<'a> {
    pub(crate) fn new(peer: &'a Peer, function: &'a str) -> AtPeer<'a> {
        *peer
            .state
            .lock()
            .unwrap()
            .in_flight
            .entry(function.to_owned())
            .or_default() += 1;
        AtPeer { peer, function }
    }
}

impl Drop for AtPeer<'_> {
    fn drop(&mut self) {
        if let Some(n) = self
            .peer
            .state
            .lock()
            .unwrap()
            .in_flight
            .get_mut(self.function)
        {
            *n = n.saturating_sub(1);
        }
    }
}

/// A peer's request admitted under its grant, released from the ledger when dropped (also
/// when cancelled or refused after admission), so its slot is never lost.
pub(crate) struct Admitted<'a> {
    ledger: &'a Mutex<Ledger>,
    function: &'a str,
    peer: SiteId,
}

impl<'a> Admitted<'a> {
    /// Admits one of `peer`'s requests for `function`, or `None` when over its grant. A
    /// refused request holds no slot, so nothing is released for it.
    pub(crate) fn new(
        ledger: &'a Mutex<Ledger>,
        function: &'a str,
        peer: SiteId,
    ) -> Option<Admitted<'a>> {
        let admitted = ledger.lock().unwrap().admit(function, peer, Instant::now());
        admitted.then(|| Admitted {
            ledger,
            function,
            peer,
        })
    }
}

impl Drop for Admitted<'_> {
    fn drop(&mut self) {
        self.ledger.lock().unwrap().done(self.function, self.peer);
    }
}

/// What a peer told of a function.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PeerFunction {
    pub(crate) fingerprint: String,
    pub(crate) headroom: f64,
}

#[derive(Default)]
pub(crate) struct PeerState {
    pub(crate) up: bool,
    pub(crate) last_heard: Option<Instant>,
    pub(crate) rtt: Option<Duration>,
    pub(crate) functions: HashMap<String, PeerFunction>,
    /// What it granted this site, per function, until when.
    pub(crate) granted: HashMap<String, (Grant, Instant)>,
    /// This site's requests in flight there, per function.
    pub(crate) in_flight: HashMap<String, u64>,
}

/// A member this site talks to.
pub(crate) struct Peer {
    pub(crate) id: SiteId,
    pub(crate) address: RwLock<String>,
    pub(crate) link: Link,
    pub(crate) state: Mutex<PeerState>,
    /// Bumped when the peer is dropped: its in-flight requests fail over.
    pub(crate) dropped: tokio::sync::watch::Sender<u64>,
}

impl Peer {
    pub(crate) fn is_up(&self) -> bool {
        self.state.lock().unwrap().up
    }

    pub(crate) fn address(&self) -> String {
        self.address.read().unwrap().clone()
    }

    /// Whether it runs `function` as `fingerprint`.
    fn runs(&self, function: &str, fingerprint: &str) -> bool {
        self.state
            .lock()
            .unwrap()
            .functions
            .get(function)
            .is_some_and(|f| f.fingerprint == fingerprint)
    }
}

/// One site's federation.
pub struct Federation {
    pub(crate) key: SiteKey,
    pub(crate) me: SiteId,
    pub(crate) advertise: String,
    pub(crate) config: FederationConfig,
    pub(crate) membership: Membership,
    /// Sites admitted by an authority's certificate.
    pub(crate) certified: Mutex<HashSet<SiteId>>,
    pub(crate) strategy: Box<dyn OffloadStrategy>,
    pub(crate) period: Duration,
    pub(crate) site: Arc<dyn Site>,
    /// The site's own invoker: what forwarded requests run on, never forwarded again.
    pub(crate) local: Arc<dyn Invoker>,
    pub(crate) peers: RwLock<BTreeMap<SiteId, Arc<Peer>>>,
    pub(crate) functions: RwLock<HashMap<String, Arc<Federated>>>,
    pub(crate) ledger: Mutex<Ledger>,
    pub(crate) verifier: Mutex<Verifier>,
    pub(crate) metrics: FederationMetrics,
    nudge: tokio::sync::Notify,
    last_round: Mutex<Instant>,
    /// Functions being installed from an offer.
    pub(crate) installing: Mutex<HashSet<String>>,
}

impl Federation {
    /// The federation of the site holding `key`, serving forwarded requests through `local`;
    /// `advertise` is where peers reach its listener.
    pub fn new(
        key: SiteKey,
        config: FederationConfig,
        advertise: String,
        site: Arc<dyn Site>,
        local: Arc<dyn Invoker>,
    ) -> anyhow::Result<Arc<Federation>> {
        let strategy =
            crate::strategy::by_name(&config.strategy, config.period).ok_or_else(|| {
                anyhow::anyhow!(
                    "federation.strategy {:?} is none of {}",
                    config.strategy,
                    crate::strategy::NAMES.join(", ")
                )
            })?;
        let me = key.id();
        let membership = Membership::new(
            config
                .peers
                .iter()
                .map(|p| p.id)
                .chain(config.members.iter().copied()),
            config.authorities.iter().copied(),
        );
        let period = strategy.period();
        let federation = Arc::new(Federation {
            verifier: Mutex::new(Verifier::new(me, config.window.as_millis() as u64, 1 << 20)),
            me,
            advertise,
            membership,
            certified: Mutex::default(),
            strategy,
            period,
            site,
            local,
            peers: RwLock::default(),
            functions: RwLock::default(),
            ledger: Mutex::default(),
            metrics: FederationMetrics::default(),
            nudge: tokio::sync::Notify::new(),
            last_round: Mutex::new(Instant::now()),
            installing: Mutex::default(),
            key,
            config,
        });
        for peer in federation.config.peers.clone() {
            federation.add_peer(&peer)?;
        }
        Ok(federation)
    }

    /// This site's id.
    pub fn id(&self) -> SiteId {
        self.me
    }

    /// The strategy's name.
    pub fn strategy(&self) -> &'static str {
        self.strategy.name()
    }

    /// The federation's counters.
    pub fn metrics(&self) -> &FederationMetrics {
        &self.metrics
    }

    /// Whether `site` is a member (listed, or certified by an authority it showed).
    pub(crate) fn is_member(&self, site: &SiteId) -> bool {
        site != &self.me
            && (self.membership.admits(site, None, now_ms()).is_ok()
                || self.certified.lock().unwrap().contains(site))
    }

    /// Knows `peer` from now on (a member only); returns it.
    pub(crate) fn add_peer(&self, peer: &PeerAddress) -> anyhow::Result<Option<Arc<Peer>>> {
        if !self.is_member(&peer.id) {
            return Ok(None);
        }
        let mut peers = self.peers.write().unwrap();
        if let Some(known) = peers.get(&peer.id) {
            let mut address = known.address.write().unwrap();
            if *address != peer.address {
                *address = peer.address.clone();
            }
            return Ok(Some(known.clone()));
        }
        if peers.len() >= MAX_PEERS {
            return Ok(None);
        }
        let added = Arc::new(Peer {
            id: peer.id,
            address: RwLock::new(peer.address.clone()),
            link: Link::new(&self.key, peer.id)?,
            state: Mutex::default(),
            dropped: tokio::sync::watch::channel(0).0,
        });
        peers.insert(peer.id, added.clone());
        tracing::info!(peer = %peer.id, address = %peer.address, "federation peer known");
        Ok(Some(added))
    }

    pub(crate) fn peer(&self, site: &SiteId) -> Option<Arc<Peer>> {
        self.peers.read().unwrap().get(site).cloned()
    }

    pub(crate) fn peers(&self) -> Vec<Arc<Peer>> {
        self.peers.read().unwrap().values().cloned().collect()
    }

    pub(crate) fn function(&self, name: &str) -> Option<Arc<Federated>> {
        self.functions.read().unwrap().get(name).cloned()
    }

    /// Asks for a round now: the site saturated on `function` and its route has no room
    /// left; true when a round that may grant room is coming sooner than the period (the
    /// strategy reacts and some peer reported headroom). Strategies that only act on their
    /// period ignore it, and with every peer full there is nothing to ask.
    pub(crate) fn saturated(&self, function: &str, fingerprint: &str) -> bool {
        if !self.strategy.reacts()
            || !self
                .reports(function, fingerprint)
                .iter()
                .any(|r| r.headroom > 0.0)
        {
            return false;
        }
        if self.last_round.lock().unwrap().elapsed() >= MIN_ROUND_GAP {
            self.nudge.notify_one();
        }
        true
    }

    /// Longest a request that found no room waits for the round its saturation asked for.
    pub(crate) fn reroute_wait(&self) -> Duration {
        MIN_ROUND_GAP * 3
    }

    /// Runs the rounds forever.
    pub async fn run(self: Arc<Self>) {
        loop {
            self.round().await;
            let next = *self.last_round.lock().unwrap() + self.period;
            tokio::select! {
                _ = tokio::time::sleep_until(next.into()) => {}
                _ = self.nudge.notified() => {
                    let gap = *self.last_round.lock().unwrap() + MIN_ROUND_GAP;
                    tokio::time::sleep_until(gap.into()).await;
                }
            }
        }
    }

    /// Takes the site's federated functions as they are now.
    pub(crate) fn refresh_functions(&self) {
        let current = self.site.federated();
        let mut functions = self.functions.write().unwrap();
        let names: HashSet<&str> = current.iter().map(|f| f.name.as_str()).collect();
        functions.retain(|name, _| names.contains(name.as_str()));
        for local in current {
            match functions.get(&local.name) {
                Some(known) => *known.local.write().unwrap() = local,
                None => {
                    tracing::info!(function = %local.name, capacity = local.capacity, "federated function");
                    functions.insert(local.name.clone(), Arc::new(Federated::new(local)));
                }
            }
        }
    }

    /// Drops the peers not heard from within two periods.
    fn drop_silent(&self, now: Instant) {
        let limit = self.period * 2;
        for peer in self.peers() {
            let silent = peer
                .state
                .lock()
                .unwrap()
                .last_heard
                .is_none_or(|heard| now.duration_since(heard) > limit);
            if silent {
                self.drop_peer(&peer, "not heard within two periods");
            }
        }
    }

    /// Marks `peer` unreachable at once (a forwarded request found it gone).
    pub(crate) fn unreachable(&self, peer: &Peer, why: &str) {
        self.drop_peer(peer, why);
    }

    /// Takes an up `peer` down: its grants and asks are forgotten, and its requests in flight
    /// fail over.
    fn drop_peer(&self, peer: &Peer, why: &str) {
        let mut state = peer.state.lock().unwrap();
        if !state.up {
            return;
        }
        state.up = false;
        state.last_heard = None;
        state.granted.clear();
        drop(state);
        self.ledger.lock().unwrap().forget(&peer.id);
        peer.dropped.send_modify(|n| *n += 1);
        tracing::warn!(peer = %peer.id, %why, "federation peer dropped");
    }

    /// Hears from `peer` now.
    pub(crate) fn heard(&self, peer: &Peer, now: Instant) {
        let mut state = peer.state.lock().unwrap();
        state.last_heard = Some(now);
        if !state.up {
            state.up = true;
            tracing::info!(peer = %peer.id, "federation peer up");
        }
    }

    /// The members this site knows and reaches, for its peers.
    pub(crate) fn known(&self) -> Vec<KnownSite> {
        self.peers()
            .into_iter()
            .filter(|p| p.is_up())
            .map(|p| KnownSite {
                id: p.id,
                address: p.address(),
            })
            .collect()
    }

    /// Learns the members a peer knows.
    pub(crate) fn learn(&self, known: &[KnownSite]) {
        for site in known.iter().take(MAX_PEERS) {
            if site.id == self.me || self.peer(&site.id).is_some() {
                continue;
            }
            if let Err(error) = self.add_peer(&PeerAddress {
                id: site.id,
                address: site.address.clone(),
            }) {
                tracing::warn!(peer = %site.id, %error, "could not add a federation peer");
            }
        }
    }

    /// The functions this site owns, offered to every member.
    pub(crate) fn offers(&self) -> Vec<Offer> {
        self.functions
            .read()
            .unwrap()
            .values()
            .filter_map(|f| {
                let local = f.local.read().unwrap();
                local.origin.is_none().then(|| Offer {
                    name: local.name.clone(),
                    fingerprint: local.fingerprint.clone(),
                    spec: local.spec.clone(),
                })
            })
            .collect()
    }

    /// Up peers that run `function` as this site does, with what they reported.
    fn reports(&self, function: &str, fingerprint: &str) -> Vec<PeerReport> {
        self.peers()
            .iter()
            .filter(|p| p.is_up())
            .filter_map(|p| {
                let state = p.state.lock().unwrap();
                let f = state.functions.get(function)?;
                (f.fingerprint == fingerprint).then_some(PeerReport {
                    site: p.id,
                    headroom: f.headroom,
                })
            })
            .collect()
    }

    /// The up peers that run `function` as `fingerprint`.
    pub(crate) fn neighbours(&self, function: &str, fingerprint: &str) -> Vec<SiteId> {
        self.peers()
            .iter()
            .filter(|p| p.is_up() && p.runs(function, fingerprint))
            .map(|p| p.id)
            .collect()
    }

    /// One round: measure, ask every peer, route by what they granted.
    async fn round(self: &Arc<Self>) {
        let started = Instant::now();
        *self.last_round.lock().unwrap() = started;
        self.refresh_functions();
        self.drop_silent(started);
        let functions: Vec<Arc<Federated>> =
            self.functions.read().unwrap().values().cloned().collect();
        // What each function asks of each peer.
        let mut rounds: HashMap<SiteId, Vec<FunctionRound>> = HashMap::new();
        let peers = self.peers();
        for function in &functions {
            let (name, fingerprint) = {
                let local = function.local.read().unwrap();
                (local.name.clone(), local.fingerprint.clone())
            };
            let load = function.load(started);
            let asks = self
                .strategy
                .asks(&load, &self.reports(&name, &fingerprint));
            for peer in &peers {
                let ask = asks
                    .iter()
                    .find(|a| a.site == peer.id)
                    .map_or(0.0, |a| a.rate);
                rounds.entry(peer.id).or_default().push(FunctionRound {
                    name: name.clone(),
                    fingerprint: fingerprint.clone(),
                    headroom: load.headroom(),
                    ask,
                });
            }
            if !asks.is_empty() {
                tracing::debug!(function = %name, capacity = load.capacity, demand = load.demand, ?asks, "asking peers");
            }
        }
        let offers = self.offers();
        let known = self.known();
        let mut exchanges = tokio::task::JoinSet::new();
        for peer in peers {
            let round = Round {
                address: self.advertise.clone(),
                certificate: self.config.certificate.clone(),
                functions: rounds.remove(&peer.id).unwrap_or_default(),
                offers: offers.clone(),
                known: known.clone(),
            };
            let federation = self.clone();
            exchanges.spawn(async move { federation.exchange(&peer, round).await });
        }
        while exchanges.join_next().await.is_some() {}
        self.reroute(Instant::now());
    }

    /// Sends `round` to `peer` and takes in its reply.
    async fn exchange(&self, peer: &Arc<Peer>, round: Round) {
        let body = match serde_json::to_vec(&round) {
            Ok(body) => Bytes::from(body),
            Err(error) => {
                tracing::error!(%error, "could not encode a round");
                return;
            }
        };
        let request = http::Request::post(ROUND_PATH)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(body)
            .expect("a valid request");
        let sent = Instant::now();
        let timeout = self.period.min(ROUND_TIMEOUT);
        let response = match peer
            .link
            .send(
                &peer.address(),
                request,
                timeout,
                crate::wire::MAX_ROUND_BYTES,
            )
            .await
        {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(peer = %peer.id, %error, "round not delivered");
                return;
            }
        };
        if !response.status().is_success() {
            tracing::warn!(peer = %peer.id, status = %response.status(), body = %String::from_utf8_lossy(response.body()), "peer refused the round");
            return;
        }
        let reply: RoundReply = match serde_json::from_slice(response.body()) {
            Ok(reply) => reply,
            Err(error) => {
                tracing::warn!(peer = %peer.id, %error, "malformed round reply dropped");
                return;
            }
        };
        let now = Instant::now();
        self.heard(peer, now);
        let lease = Duration::from_millis(reply.lease_ms.min(10 * 60_000));
        {
            let mut state = peer.state.lock().unwrap();
            state.rtt = Some(now.duration_since(sent));
            for function in &reply.functions {
                if !function.headroom.is_finite() {
                    continue;
                }
                state.functions.insert(
                    function.name.clone(),
                    PeerFunction {
                        fingerprint: function.fingerprint.clone(),
                        headroom: function.headroom.max(0.0),
                    },
                );
                let grant = match function.grant {
                    None => Grant::Unlimited,
                    Some(slots) if slots.is_finite() => Grant::Rate(slots.max(0.0)),
                    Some(_) => continue,
                };
                state
                    .granted
                    .insert(function.name.clone(), (grant, now + lease));
            }
            let names: HashSet<&String> = reply.functions.iter().map(|f| &f.name).collect();
            state.functions.retain(|name, _| names.contains(name));
            state.granted.retain(|name, _| names.contains(name));
        }
        self.learn(&reply.known);
    }

    /// Routes each function by the grants this site holds now.
    fn reroute(&self, now: Instant) {
        let functions: Vec<Arc<Federated>> =
            self.functions.read().unwrap().values().cloned().collect();
        for function in functions {
            let name = function.local.read().unwrap().name.clone();
            let fingerprint = function.fingerprint();
            let granted: Vec<(SiteId, Grant)> = self
                .peers()
                .iter()
                .filter(|p| p.is_up() && p.runs(&name, &fingerprint))
                .filter_map(|p| {
                    let state = p.state.lock().unwrap();
                    let (grant, until) = state.granted.get(&name)?;
                    (*until > now).then_some((p.id, *grant))
                })
                .collect();
            let load = function.load(now);
            let route = self.strategy.route(&load, &granted);
            {
                let mut current = function.route.write().unwrap();
                if **current != route {
                    tracing::info!(function = %name, capacity = load.capacity, demand = load.demand, ?route, "federation route");
                    *current = Arc::new(route);
                }
            }
            function.rerouted.notify_waiters();
        }
    }

    /// Answers a peer's round: takes in what it reports and asks, and grants.
    pub(crate) fn answer(&self, from: &Arc<Peer>, round: Round) -> RoundReply {
        let now = Instant::now();
        self.heard(from, now);
        let lease = self.period * 2;
        // Loads are finite slots; a peer's NaN or infinity is dropped with its function.
        let valid = |x: f64| x.is_finite() && x >= 0.0;
        let round = Round {
            functions: round
                .functions
                .into_iter()
                .filter(|f| valid(f.headroom) && valid(f.ask))
                .collect(),
            ..round
        };
        {
            let mut state = from.state.lock().unwrap();
            for function in &round.functions {
                state.functions.insert(
                    function.name.clone(),
                    PeerFunction {
                        fingerprint: function.fingerprint.clone(),
                        headroom: function.headroom,
                    },
                );
            }
            let names: HashSet<&String> = round.functions.iter().map(|f| &f.name).collect();
            state.functions.retain(|name, _| names.contains(name));
        }
        let mut replies = Vec::new();
        for function in &round.functions {
            let Some(here) = self.function(&function.name) else {
                continue;
            };
            let fingerprint = here.fingerprint();
            if fingerprint != function.fingerprint {
                continue;
            }
            let load = here.load(now);
            let mut ledger = self.ledger.lock().unwrap();
            ledger.ask(&function.name, from.id, function.ask, now + lease);
            let asks = ledger.asks(&function.name, now);
            let neighbours = self.neighbours(&function.name, &fingerprint);
            let grants = self.strategy.grants(&load, &neighbours, &asks);
            let grant = grants
                .iter()
                .find(|(s, _)| *s == from.id)
                .map_or(Grant::Rate(0.0), |(_, g)| *g);
            ledger.give(&function.name, from.id, grant, now + lease);
            drop(ledger);
            if function.ask > 0.0 || grant != Grant::Rate(0.0) {
                tracing::debug!(function = %function.name, peer = %from.id, ask = function.ask, ?grant, headroom = load.headroom(), "grant");
            }
            replies.push(crate::wire::FunctionReply {
                name: function.name.clone(),
                fingerprint,
                headroom: load.headroom(),
                grant: match grant {
                    Grant::Unlimited => None,
                    Grant::Rate(slots) => Some(slots),
                },
            });
        }
        // Functions this site runs that the peer does not (yet): their headroom only.
        let mentioned: HashSet<&String> = round.functions.iter().map(|f| &f.name).collect();
        for (name, here) in self.functions.read().unwrap().iter() {
            if !mentioned.contains(name) {
                replies.push(crate::wire::FunctionReply {
                    name: name.clone(),
                    fingerprint: here.fingerprint(),
                    headroom: here.load(now).headroom(),
                    grant: Some(0.0),
                });
            }
        }
        self.learn(&round.known);
        RoundReply {
            functions: replies,
            known: self.known(),
            lease_ms: lease.as_millis() as u64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::tests::sites;

    /// A request over its grant is refused without touching the ledger: refusing must
    /// neither wait on the ledger it holds (it once deadlocked the site's runtime) nor
    /// release a slot an admitted request holds.
    #[test]
    fn a_refused_request_holds_and_releases_no_slot() {
        let peer = sites(1)[0];
        let ledger = Mutex::new(Ledger::default());
        assert!(Admitted::new(&ledger, "f", peer).is_none(), "no grant yet");
        ledger.lock().unwrap().give(
            "f",
            peer,
            Grant::Rate(1.0),
            Instant::now() + Duration::from_secs(60),
        );
        let first = Admitted::new(&ledger, "f", peer).expect("within the grant");
        for _ in 0..3 {
            assert!(
                Admitted::new(&ledger, "f", peer).is_none(),
                "over the grant"
            );
        }
        drop(first);
        let again = Admitted::new(&ledger, "f", peer).expect("the slot came back");
        assert!(Admitted::new(&ledger, "f", peer).is_none(), "and only one");
        drop(again);
    }
}
