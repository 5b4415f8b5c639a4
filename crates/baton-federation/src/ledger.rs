//! What a site promised its peers: their latest asks and the grants it sent them, each with a
//! lease, and their requests in flight here. A forwarded request is admitted while its peer
//! has fewer in flight than it was granted; without a live grant it gets 429.

use crate::identity::SiteId;
use crate::strategy::{Ask, Grant};
use std::collections::HashMap;
use std::time::Instant;

#[derive(Debug, Clone, Copy)]
struct Promise {
    grant: Grant,
    expires: Instant,
}

/// Asks received and grants given, per function and peer.
#[derive(Debug, Default)]
pub struct Ledger {
    asks: HashMap<(String, SiteId), (f64, Instant)>,
    given: HashMap<(String, SiteId), Promise>,
    in_flight: HashMap<(String, SiteId), u64>,
}

/// Whether a peer with `in_flight` requests here may send one more under `grant`.
pub fn admits(grant: Option<Grant>, in_flight: u64) -> bool {
    match grant {
        None => false,
        Some(Grant::Unlimited) => true,
        Some(Grant::Rate(slots)) => (in_flight as f64) < slots.ceil(),
    }
}

impl Ledger {
    /// `peer` asks for `slots` of `function` until `expires`.
    pub fn ask(&mut self, function: &str, peer: SiteId, slots: f64, expires: Instant) {
        self.asks
            .insert((function.to_owned(), peer), (slots.max(0.0), expires));
    }

    /// The live asks for `function`.
    pub fn asks(&self, function: &str, now: Instant) -> Vec<Ask> {
        let mut asks: Vec<Ask> = self
            .asks
            .iter()
            .filter(|((f, _), (slots, expires))| f == function && *expires > now && *slots > 0.0)
            .map(|((_, site), (slots, _))| Ask {
                site: *site,
                rate: *slots,
            })
            .collect();
        asks.sort_by_key(|a| a.site);
        asks
    }

    /// Records the grant sent to `peer`.
    pub fn give(&mut self, function: &str, peer: SiteId, grant: Grant, expires: Instant) {
        self.given
            .insert((function.to_owned(), peer), Promise { grant, expires });
    }

    /// The live grant `peer` holds for `function`.
    pub fn granted(&self, function: &str, peer: &SiteId, now: Instant) -> Option<Grant> {
        self.given
            .get(&(function.to_owned(), *peer))
            .filter(|p| p.expires > now)
            .map(|p| p.grant)
    }

    /// Admits one more of `peer`'s requests for `function` (counted until [`Ledger::done`]),
    /// or says no.
    pub fn admit(&mut self, function: &str, peer: SiteId, now: Instant) -> bool {
        let grant = self.granted(function, &peer, now);
        let in_flight = self
            .in_flight
            .entry((function.to_owned(), peer))
            .or_default();
        if !admits(grant, *in_flight) {
            return false;
        }
        *in_flight += 1;
        true
    }

    /// One admitted request finished.
    pub fn done(&mut self, function: &str, peer: SiteId) {
        if let Some(n) = self.in_flight.get_mut(&(function.to_owned(), peer)) {
            *n = n.saturating_sub(1);
        }
    }

    /// Forgets what `peer` asked and was granted (it was dropped).
    pub fn forget(&mut self, peer: &SiteId) {
        self.asks.retain(|(_, p), _| p != peer);
        self.given.retain(|(_, p), _| p != peer);
    }

    /// Grants given that are still live, for the status: function, peer, grant.
    pub fn live(&self, now: Instant) -> Vec<(String, SiteId, Grant)> {
        let mut live: Vec<_> = self
            .given
            .iter()
            .filter(|(_, p)| p.expires > now)
            .map(|((f, s), p)| (f.clone(), *s, p.grant))
            .collect();
        live.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        live
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::tests::sites;
    use std::time::Duration;

    #[test]
    fn a_grant_admits_up_to_its_slots() {
        for (grant, in_flight, admitted) in [
            (None, 0, false),
            (Some(Grant::Unlimited), 1000, true),
            (Some(Grant::Rate(0.0)), 0, false),
            (Some(Grant::Rate(2.0)), 1, true),
            (Some(Grant::Rate(2.0)), 2, false),
            // A fraction of a slot is a slot.
            (Some(Grant::Rate(2.2)), 2, true),
        ] {
            assert_eq!(admits(grant, in_flight), admitted, "{grant:?} {in_flight}");
        }
    }

    #[test]
    fn grants_and_asks_expire_and_in_flight_requests_are_counted() {
        let peer = sites(1)[0];
        let now = Instant::now();
        let later = now + Duration::from_secs(1);
        let mut ledger = Ledger::default();
        assert!(!ledger.admit("f", peer, now));
        ledger.give("f", peer, Grant::Rate(1.0), later);
        assert!(ledger.admit("f", peer, now));
        assert!(!ledger.admit("f", peer, now));
        ledger.done("f", peer);
        assert!(ledger.admit("f", peer, now));
        ledger.done("f", peer);
        assert!(!ledger.admit("f", peer, later), "the lease ran out");
        ledger.ask("f", peer, 3.0, later);
        assert_eq!(ledger.asks("f", now).len(), 1);
        assert!(ledger.asks("f", later).is_empty());
        assert!(ledger.asks("g", now).is_empty());
        ledger.forget(&peer);
        assert!(ledger.asks("f", now).is_empty() && ledger.live(now).is_empty());
    }
}
