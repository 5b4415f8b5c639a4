//! The gateway's side of the federation: an [`Invoker`] in front of the site's own. A request
//! for a federated function is served here while the site has a free slot; beyond that it
//! goes to a peer that granted room (the route the last round computed: in-process weights,
//! no proxy reload), signed, over the federation channel, and comes back with `X-Baton-Site`.
//! A peer that refuses, lacks the function or does not answer leaves the request to this site
//! (which queues it or answers 429, as without federation). Forwarded requests are never
//! forwarded again: the receiver runs them on its own invoker.

use crate::agent::{AtPeer, Federated, Federation, Peer, Running, now_ms};
use crate::server::SITE_HEADER;
use crate::signing::Stamp;
use crate::strategy::Route;
use crate::wire::FUNCTION_PREFIX;
use async_trait::async_trait;
use baton_api::{ApiError, InvokeOutcome, Invoker};
use bytes::Bytes;
use http::HeaderValue;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Headers that belong to one connection, never forwarded (HTTP/2 forbids them).
const HOP_BY_HOP: [&str; 7] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "upgrade",
    "te",
    "host",
];

/// The `n`th number of a low-discrepancy sequence in [0, 1): successive requests spread over
/// the shares as evenly as a weighted round robin, without a random source.
pub fn fraction(n: u64) -> f64 {
    const GOLDEN: f64 = 0.618_033_988_749_894_9;
    (n as f64 * GOLDEN).fract()
}

/// The peer a request goes to under `route`, or `None` for this site. `local_full`: the site
/// has no free slot; `room(i)`: whether target or share `i`'s peer may take one more.
pub fn pick(
    route: &Route,
    local_full: bool,
    x: f64,
    room: impl Fn(usize) -> bool,
) -> Option<usize> {
    match route {
        Route::Local => None,
        Route::Shares(shares) => {
            let mut upto = 0.0;
            for (i, (_, share)) in shares.iter().enumerate() {
                upto += share;
                if x < upto {
                    return room(i).then_some(i);
                }
            }
            None
        }
        Route::Excess(targets) => {
            if !local_full {
                return None;
            }
            let open: Vec<usize> = (0..targets.len()).filter(|i| room(*i)).collect();
            let total: f64 = open.iter().map(|i| targets[*i].weight).sum();
            if total <= 0.0 {
                return None;
            }
            let mut upto = 0.0;
            for i in &open {
                upto += targets[*i].weight / total;
                if x < upto {
                    return Some(*i);
                }
            }
            open.last().copied()
        }
    }
}

/// Counts one request in a counter while it lives.
struct Counted<'a>(&'a AtomicU64);

impl<'a> Counted<'a> {
    fn new(counter: &'a AtomicU64) -> Self {
        counter.fetch_add(1, Ordering::Relaxed);
        Counted(counter)
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The site's invoker with federation in front.
pub struct FederatedInvoker {
    federation: Arc<Federation>,
}

impl FederatedInvoker {
    /// Offloads through `federation`; serves locally through its site's own invoker.
    pub fn new(federation: Arc<Federation>) -> Arc<FederatedInvoker> {
        Arc::new(FederatedInvoker { federation })
    }

    /// The peer a request for `function` goes to now, if any; `Err` when neither this site
    /// nor any peer has room and a round that may grant some is coming.
    fn choose(&self, name: &str, function: &Federated) -> Result<Option<Arc<Peer>>, ()> {
        let route = function.route.read().unwrap().clone();
        let local_full =
            function.running.load(Ordering::Relaxed) as f64 >= function.capacity().ceil();
        let peers: Vec<Option<Arc<Peer>>> = match &*route {
            Route::Local => Vec::new(),
            Route::Shares(shares) => shares
                .iter()
                .map(|(s, _)| self.federation.peer(s))
                .collect(),
            Route::Excess(targets) => targets
                .iter()
                .map(|t| self.federation.peer(&t.site))
                .collect(),
        };
        let room = |i: usize| {
            let Some(peer) = &peers[i] else { return false };
            if !peer.is_up() {
                return false;
            }
            match &*route {
                Route::Excess(targets) => targets[i].cap.is_none_or(|cap| {
                    let state = peer.state.lock().unwrap();
                    (state.in_flight.get(name).copied().unwrap_or(0) as f64) < cap.ceil()
                }),
                _ => true,
            }
        };
        let x = fraction(function.sequence.fetch_add(1, Ordering::Relaxed));
        let chosen = pick(&route, local_full, x, room).and_then(|i| peers[i].clone());
        if chosen.is_none()
            && local_full
            && self.federation.saturated(name, &function.fingerprint())
        {
            return Err(());
        }
        Ok(chosen)
    }

    /// Sends the request to `peer`; `None` when it did not take it (this site serves it).
    async fn forward(
        &self,
        name: &str,
        function: &Federated,
        peer: &Peer,
        parts: &http::request::Parts,
        body: &Bytes,
    ) -> Option<InvokeOutcome> {
        let federation = &self.federation;
        let path = format!(
            "{FUNCTION_PREFIX}{name}{}",
            parts.uri.path_and_query().map_or("/", |p| p.as_str())
        );
        let stamp = Stamp::sign(
            &federation.key,
            &peer.id,
            parts.method.as_str(),
            &path,
            body,
            now_ms(),
        );
        let mut request = http::Request::new(body.clone());
        *request.method_mut() = parts.method.clone();
        *request.uri_mut() = path.parse().ok()?;
        for (header, value) in &parts.headers {
            if !HOP_BY_HOP.contains(&header.as_str()) {
                request.headers_mut().append(header, value.clone());
            }
        }
        for (header, value) in stamp.headers() {
            request
                .headers_mut()
                .insert(header, HeaderValue::from_str(&value).ok()?);
        }
        let (deadline, max_output) = {
            let local = function.local.read().unwrap();
            (
                local.timeout + Duration::from_secs(1),
                local.max_output_bytes,
            )
        };
        let started = Instant::now();
        let at_peer = AtPeer::new(peer, name);
        let mut dropped = peer.dropped.subscribe();
        let address = peer.address();
        let result = tokio::select! {
            result = peer.link.send(&address, request, deadline, max_output) => Some(result),
            _ = dropped.changed() => None,
        };
        drop(at_peer);
        let peer_name = peer.id.to_string();
        let response = match result {
            Some(Ok(response)) => response,
            Some(Err(error)) => {
                federation.metrics.forwarded(name, &peer_name, 0);
                federation.metrics.failed_over(name, &peer_name);
                federation.unreachable(peer, &error.to_string());
                return None;
            }
            None => {
                federation.metrics.forwarded(name, &peer_name, 0);
                federation.metrics.failed_over(name, &peer_name);
                return None;
            }
        };
        let status = response.status().as_u16();
        federation.metrics.forwarded(name, &peer_name, status);
        // Refused by the receiver's federation layer (it marks only what its functions
        // answered) or over its capacity: served here instead.
        if !response.headers().contains_key(SITE_HEADER) || status == 429 {
            if status == 404 {
                peer.state.lock().unwrap().functions.remove(name);
            }
            return None;
        }
        if response.status().is_success() {
            function.meter.served(started.elapsed());
        }
        Some(InvokeOutcome {
            response,
            cold_start: None,
        })
    }
}

#[async_trait]
impl Invoker for FederatedInvoker {
    async fn invoke(
        &self,
        name: &str,
        request: http::Request<Bytes>,
    ) -> Result<InvokeOutcome, ApiError> {
        let federation = &self.federation;
        let Some(function) = federation.function(name) else {
            return federation.local.invoke(name, request).await;
        };
        function.meter.arrived(Instant::now());
        let _own = Counted::new(&function.own_in_flight);
        let (parts, body) = request.into_parts();
        let chosen = match self.choose(name, &function) {
            Ok(chosen) => chosen,
            // No room anywhere: wait (briefly) for the round this saturation asked for, or
            // for a slot here, whichever comes first.
            Err(()) => {
                let rerouted = function.rerouted.notified();
                let freed = function.slot_freed.notified();
                let _ = tokio::time::timeout(federation.reroute_wait(), async {
                    tokio::select! {
                        _ = rerouted => {}
                        _ = freed => {}
                    }
                })
                .await;
                self.choose(name, &function).unwrap_or(None)
            }
        };
        if let Some(peer) = chosen
            && let Some(outcome) = self.forward(name, &function, &peer, &parts, &body).await
        {
            return Ok(outcome);
        }
        let started = Instant::now();
        let result = {
            let _running = Running::new(&function);
            federation
                .local
                .invoke(name, http::Request::from_parts(parts, body))
                .await
        };
        let mut outcome = result?;
        if outcome.response.status().is_success() {
            function.meter.served(started.elapsed());
        }
        if let Ok(site) = HeaderValue::from_str(&federation.me.to_string()) {
            outcome.response.headers_mut().insert(SITE_HEADER, site);
        }
        Ok(outcome)
    }

    fn max_body_bytes(&self, function: &str) -> Option<u64> {
        self.federation.local.max_body_bytes(function)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Target;
    use crate::strategy::tests::sites;

    #[test]
    fn successive_fractions_spread_evenly() {
        let below: usize = (0..1000).filter(|n| fraction(*n) < 0.4).count();
        assert!((395..=405).contains(&below), "{below}");
    }

    #[test]
    fn requests_go_local_first_then_to_peers_with_room_by_weight() {
        let s = sites(2);
        let excess = Route::Excess(vec![
            Target {
                site: s[0],
                weight: 3.0,
                cap: Some(3.0),
            },
            Target {
                site: s[1],
                weight: 1.0,
                cap: Some(1.0),
            },
        ]);
        let both = |_: usize| true;
        for (local_full, x, room, chosen) in [
            // A free local slot: local, whatever the grants.
            (false, 0.1, &both as &dyn Fn(usize) -> bool, None),
            // Full: by weight, 3:1.
            (true, 0.1, &both, Some(0)),
            (true, 0.8, &both, Some(1)),
            // A peer without room is skipped.
            (true, 0.1, &|i: usize| i == 1, Some(1)),
            (true, 0.1, &|_: usize| false, None),
        ] {
            assert_eq!(
                pick(&excess, local_full, x, room),
                chosen,
                "{local_full} {x}"
            );
        }
        assert_eq!(pick(&Route::Local, true, 0.5, both), None);
        let shares = Route::Shares(vec![(s[0], 0.2), (s[1], 0.2)]);
        assert_eq!(pick(&shares, false, 0.1, both), Some(0));
        assert_eq!(pick(&shares, false, 0.3, both), Some(1));
        assert_eq!(pick(&shares, false, 0.5, both), None);
        assert_eq!(pick(&shares, false, 0.1, |_| false), None);
    }
}
