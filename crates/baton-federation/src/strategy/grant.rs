//! `grant`: Baton's strategy. Capacity is granted on request, never split blindly:
//!
//! - an overloaded site asks for its excess (plus a 10 % margin for the round's noise), from
//!   the peers with the most headroom first, each for at most what it reported;
//! - a site grants what it is asked from its headroom (its own users first); when asked for
//!   more than it has, it shares it max-min fairly: no asker gets more than it asked, and
//!   none less than an equal share of what is left;
//! - the overloaded site serves locally up to its capacity and sends the excess to the peers
//!   that granted it, in proportion to and capped at their grants: what it sends is what they
//!   agreed to take.
//!
//! Rounds are sub-second (500 ms by default), so a site converges within a round or two of an
//! overload's start.

use super::{Ask, Grant, Load, OffloadStrategy, PeerReport, Route, Target};
use crate::identity::SiteId;
use std::time::Duration;

/// Asked beyond the measured excess, for the demand's rise within a round.
const ASK_MARGIN: f64 = 0.1;

/// Capacity granted on request.
pub struct Granting {
    /// Its round.
    pub period: Duration,
}

/// Shares `spare` among `asks` max-min fairly: each gets its ask if all fit, otherwise the
/// smallest asks are met in full and the rest share what is left equally.
pub fn water_fill(spare: f64, asks: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..asks.len()).collect();
    order.sort_by(|a, b| asks[*a].total_cmp(&asks[*b]));
    let mut left = spare.max(0.0);
    let mut granted = vec![0.0; asks.len()];
    for (done, i) in order.iter().enumerate() {
        let level = left / (asks.len() - done) as f64;
        granted[*i] = asks[*i].max(0.0).min(level);
        left -= granted[*i];
    }
    granted
}

impl OffloadStrategy for Granting {
    fn name(&self) -> &'static str {
        "grant"
    }

    fn period(&self) -> Duration {
        self.period
    }

    fn reacts(&self) -> bool {
        true
    }

    fn asks(&self, load: &Load, peers: &[PeerReport]) -> Vec<Ask> {
        let mut wanted = load.excess() * (1.0 + ASK_MARGIN);
        let mut roomiest: Vec<&PeerReport> = peers.iter().filter(|p| p.headroom > 0.0).collect();
        roomiest.sort_by(|a, b| b.headroom.total_cmp(&a.headroom).then(a.site.cmp(&b.site)));
        let mut asks = Vec::new();
        for peer in roomiest {
            if wanted <= 0.0 {
                break;
            }
            let rate = wanted.min(peer.headroom);
            asks.push(Ask {
                site: peer.site,
                rate,
            });
            wanted -= rate;
        }
        asks
    }

    fn grants(&self, load: &Load, neighbours: &[SiteId], asks: &[Ask]) -> Vec<(SiteId, Grant)> {
        let rates: Vec<f64> = asks.iter().map(|a| a.rate).collect();
        let shares = water_fill(load.headroom(), &rates);
        neighbours
            .iter()
            .map(|site| {
                let granted = asks
                    .iter()
                    .zip(&shares)
                    .filter(|(a, _)| a.site == *site)
                    .map(|(_, g)| *g)
                    .sum::<f64>()
                    // An empty sum is -0.0; a grant of nothing is 0.
                    + 0.0;
                (*site, Grant::Rate(granted))
            })
            .collect()
    }

    fn route(&self, _: &Load, granted: &[(SiteId, Grant)]) -> Route {
        let targets: Vec<Target> = granted
            .iter()
            .filter_map(|(site, g)| match g {
                Grant::Rate(r) if *r > 0.0 => Some(Target {
                    site: *site,
                    weight: *r,
                    cap: Some(*r),
                }),
                Grant::Rate(_) => None,
                Grant::Unlimited => Some(Target {
                    site: *site,
                    weight: 1.0,
                    cap: None,
                }),
            })
            .collect();
        match targets.is_empty() {
            true => Route::Local,
            false => Route::Excess(targets),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::tests::{served, sites};

    fn grant() -> Granting {
        Granting {
            period: Duration::from_millis(500),
        }
    }

    #[test]
    fn water_filling_meets_small_asks_and_shares_the_rest_equally() {
        let cases: [(f64, &[f64], &[f64]); 5] = [
            (100.0, &[10.0, 20.0], &[10.0, 20.0]),
            (30.0, &[10.0, 40.0], &[10.0, 20.0]),
            (30.0, &[40.0, 40.0], &[15.0, 15.0]),
            (0.0, &[5.0], &[0.0]),
            (9.0, &[1.0, 100.0, 4.0], &[1.0, 4.0, 4.0]),
        ];
        for (spare, asks, expected) in cases {
            assert_eq!(water_fill(spare, asks), expected, "{spare} over {asks:?}");
        }
    }

    #[test]
    fn an_overloaded_site_asks_the_roomiest_peers_for_its_excess() {
        let peers = sites(3);
        let load = Load::new(10.0, 50.0);
        let reports = [
            PeerReport {
                site: peers[0],
                headroom: 20.0,
            },
            PeerReport {
                site: peers[1],
                headroom: 30.0,
            },
            PeerReport {
                site: peers[2],
                headroom: 0.0,
            },
        ];
        // 40 over, 44 asked: 30 of the roomiest, 14 of the next; none of the full one.
        let asks = grant().asks(&load, &reports);
        assert_eq!(asks.len(), 2);
        assert_eq!((asks[0].site, asks[0].rate), (peers[1], 30.0));
        assert_eq!(asks[1].site, peers[0]);
        assert!((asks[1].rate - 14.0).abs() < 1e-9);
        // Not overloaded: nothing asked.
        assert!(grant().asks(&Load::new(10.0, 9.0), &reports).is_empty());
    }

    #[test]
    fn a_site_grants_from_its_headroom_to_those_that_ask() {
        let peers = sites(3);
        let load = Load::new(30.0, 10.0);
        let asks = [
            Ask {
                site: peers[0],
                rate: 5.0,
            },
            Ask {
                site: peers[1],
                rate: 40.0,
            },
        ];
        assert_eq!(
            grant().grants(&load, &peers, &asks),
            vec![
                (peers[0], Grant::Rate(5.0)),
                (peers[1], Grant::Rate(15.0)),
                (peers[2], Grant::Rate(0.0)),
            ]
        );
        let route = grant().route(
            &load,
            &[(peers[0], Grant::Rate(5.0)), (peers[2], Grant::Rate(0.0))],
        );
        assert_eq!(
            route,
            Route::Excess(vec![Target {
                site: peers[0],
                weight: 5.0,
                cap: Some(5.0)
            }])
        );
    }

    /// DFaaS's scenarios, one round each: what the federation can serve, it serves.
    #[test]
    fn what_the_federation_can_serve_is_served() {
        let l = |capacity, demand| Load { capacity, demand };
        let cases: [(&[Load], f64); 4] = [
            // The paper's: 50 on a site of 10, 30 spare on each of two others.
            (&[l(10.0, 50.0), l(30.0, 0.0), l(30.0, 0.0)], 50.0),
            // DFaaS's April run: maxrates 10, 20, 30.
            (&[l(10.0, 50.0), l(20.0, 0.0), l(30.0, 0.0)], 50.0),
            // DFaaS's scenario 1: the second site has 10 of its own users.
            (&[l(10.0, 50.0), l(20.0, 10.0), l(30.0, 0.0)], 60.0),
            // Everyone overloaded: each serves its own capacity.
            (&[l(10.0, 50.0), l(30.0, 40.0), l(30.0, 40.0)], 70.0),
        ];
        for (loads, expected) in cases {
            let got = served(&grant(), loads);
            assert!(
                (got - expected).abs() < 1e-6,
                "{loads:?}: {got} served, {expected} expected"
            );
        }
    }
}
