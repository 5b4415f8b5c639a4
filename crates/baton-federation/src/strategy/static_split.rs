//! `static`: DFaaS's static strategy. Whatever the load, 60 % of a function's requests stay
//! local and 40 % are split evenly over the peers that run it (weights `round(40 / k)`);
//! receivers take whatever comes. With no peer, everything is local.

use super::{Ask, Grant, Load, OffloadStrategy, PeerReport, Route};
use crate::identity::SiteId;
use std::time::Duration;

/// DFaaS's share kept local, in percent.
const LOCAL_PERCENT: f64 = 60.0;

/// A fixed split.
pub struct StaticSplit {
    /// Its round: only who the peers are changes between rounds.
    pub period: Duration,
}

impl OffloadStrategy for StaticSplit {
    fn name(&self) -> &'static str {
        "static"
    }

    fn period(&self) -> Duration {
        self.period
    }

    fn asks(&self, _: &Load, _: &[PeerReport]) -> Vec<Ask> {
        Vec::new()
    }

    fn grants(&self, _: &Load, neighbours: &[SiteId], _: &[Ask]) -> Vec<(SiteId, Grant)> {
        neighbours.iter().map(|s| (*s, Grant::Unlimited)).collect()
    }

    fn route(&self, _: &Load, granted: &[(SiteId, Grant)]) -> Route {
        let peers: Vec<SiteId> = granted
            .iter()
            .filter(|(_, g)| *g != Grant::Rate(0.0))
            .map(|(s, _)| *s)
            .collect();
        if peers.is_empty() {
            return Route::Local;
        }
        let each = ((100.0 - LOCAL_PERCENT) / peers.len() as f64).round() / 100.0;
        Route::Shares(peers.into_iter().map(|s| (s, each)).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::tests::sites;

    #[test]
    fn forty_percent_is_split_over_the_peers_whatever_the_load() {
        let strategy = StaticSplit {
            period: Duration::from_secs(1),
        };
        let peers = sites(3);
        let idle = Load::new(100.0, 1.0);
        let unlimited = |n: usize| -> Vec<(SiteId, Grant)> {
            peers[..n].iter().map(|s| (*s, Grant::Unlimited)).collect()
        };
        let cases: [(usize, Route); 4] = [
            (0, Route::Local),
            (1, Route::Shares(vec![(peers[0], 0.4)])),
            (2, Route::Shares(vec![(peers[0], 0.2), (peers[1], 0.2)])),
            // round(40 / 3) = 13 each, as DFaaS rounds its weights.
            (
                3,
                Route::Shares(vec![(peers[0], 0.13), (peers[1], 0.13), (peers[2], 0.13)]),
            ),
        ];
        for (n, route) in cases {
            assert_eq!(strategy.route(&idle, &unlimited(n)), route, "{n} peers");
        }
        assert_eq!(
            strategy.grants(&idle, &peers[..1], &[]),
            vec![(peers[0], Grant::Unlimited)]
        );
    }
}
