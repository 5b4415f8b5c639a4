//! `all-local`: no federation. Every request is served locally or refused; nothing is
//! granted to peers. The baseline every other strategy is measured against.

use super::{Ask, Grant, Load, OffloadStrategy, PeerReport, Route};
use crate::identity::SiteId;
use std::time::Duration;

/// Serves its own users only.
pub struct AllLocal {
    /// Its round (it decides nothing, but reports load like the others).
    pub period: Duration,
}

impl OffloadStrategy for AllLocal {
    fn name(&self) -> &'static str {
        "all-local"
    }

    fn period(&self) -> Duration {
        self.period
    }

    fn asks(&self, _: &Load, _: &[PeerReport]) -> Vec<Ask> {
        Vec::new()
    }

    fn grants(&self, _: &Load, neighbours: &[SiteId], _: &[Ask]) -> Vec<(SiteId, Grant)> {
        neighbours.iter().map(|s| (*s, Grant::Rate(0.0))).collect()
    }

    fn route(&self, _: &Load, _: &[(SiteId, Grant)]) -> Route {
        Route::Local
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::tests::sites;

    #[test]
    fn it_keeps_everything_and_lets_nothing_in() {
        let strategy = AllLocal {
            period: Duration::from_secs(1),
        };
        let peers = sites(2);
        let overloaded = Load::new(1.0, 100.0);
        let reports: Vec<PeerReport> = peers
            .iter()
            .map(|s| PeerReport {
                site: *s,
                headroom: 50.0,
            })
            .collect();
        assert!(strategy.asks(&overloaded, &reports).is_empty());
        let idle = Load::new(100.0, 0.0);
        let asks = [Ask {
            site: peers[0],
            rate: 10.0,
        }];
        assert_eq!(
            strategy.grants(&idle, &peers, &asks),
            vec![(peers[0], Grant::Rate(0.0)), (peers[1], Grant::Rate(0.0))]
        );
        let granted = [(peers[0], Grant::Unlimited)];
        assert_eq!(strategy.route(&overloaded, &granted), Route::Local);
    }
}
