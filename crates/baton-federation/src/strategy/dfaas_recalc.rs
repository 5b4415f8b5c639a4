//! `dfaas-recalc`: DFaaS's "recalc" algorithm as published (CloudNet 2021,
//! `recalcstrategy.go`), in Baton's data plane. Each round (DFaaS: one minute):
//!
//! - a site whose users' rate reached its static capacity (`r ≥ M`, DFaaS's `maxrate`) is
//!   overloaded and grants its neighbours nothing; otherwise its margin `M − ⌊r⌋` is split
//!   evenly over every neighbour that runs the function, needy or not: `⌊margin / N⌋` each;
//! - an overloaded site forwards everything above its capacity, weighted
//!   `⌊100 · offered_n / Σ offered⌋` by what each neighbour offered it, without capping what
//!   it sends: receivers refuse what is over their grant (DFaaS's 429 `LimitIn` rule).
//!
//! Nothing is asked for: what a site offers does not depend on who needs it, which is why a
//! needy site gets a fraction of its peers' spare capacity (DFaaS's 70 % after convergence).

use super::{Ask, Grant, Load, OffloadStrategy, PeerReport, Route, Target};
use crate::identity::SiteId;
use std::time::Duration;

/// DFaaS's round.
pub struct DfaasRecalc {
    /// DFaaS's default is [`DfaasRecalc::PERIOD`].
    pub period: Duration,
}

impl DfaasRecalc {
    /// DFaaS's round, `AGENT_RECALC_PERIOD` in its Helm values.
    pub const PERIOD: Duration = Duration::from_secs(60);
}

fn overloaded(load: &Load) -> bool {
    load.demand >= load.capacity
}

impl OffloadStrategy for DfaasRecalc {
    fn name(&self) -> &'static str {
        "dfaas-recalc"
    }

    fn period(&self) -> Duration {
        self.period
    }

    fn asks(&self, _: &Load, _: &[PeerReport]) -> Vec<Ask> {
        Vec::new()
    }

    fn grants(&self, load: &Load, neighbours: &[SiteId], _: &[Ask]) -> Vec<(SiteId, Grant)> {
        let each = match overloaded(load) || neighbours.is_empty() {
            true => 0.0,
            false => ((load.capacity - load.demand.floor()) / neighbours.len() as f64).floor(),
        };
        neighbours.iter().map(|s| (*s, Grant::Rate(each))).collect()
    }

    fn route(&self, load: &Load, granted: &[(SiteId, Grant)]) -> Route {
        if !overloaded(load) {
            return Route::Local;
        }
        let offered = |g: &Grant| match g {
            Grant::Rate(r) => *r,
            Grant::Unlimited => 100.0,
        };
        let total: f64 = granted.iter().map(|(_, g)| offered(g)).sum();
        let total = if total == 0.0 { 1.0 } else { total };
        let targets: Vec<Target> = granted
            .iter()
            .map(|(site, g)| Target {
                site: *site,
                weight: (100.0 * offered(g) / total).floor(),
                cap: None,
            })
            .filter(|t| t.weight > 0.0)
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

    fn recalc() -> DfaasRecalc {
        DfaasRecalc {
            period: DfaasRecalc::PERIOD,
        }
    }

    #[test]
    fn the_margin_is_split_evenly_over_every_neighbour() {
        let peers = sites(2);
        let cases = [
            // capacity, demand → each neighbour's grant
            (30.0, 0.0, 15.0),
            (30.0, 9.7, 10.0),
            (20.0, 0.0, 10.0),
            (30.0, 29.0, 0.0),
            (30.0, 30.0, 0.0),
            (10.0, 50.0, 0.0),
        ];
        for (capacity, demand, each) in cases {
            let load = Load { capacity, demand };
            assert_eq!(
                recalc().grants(&load, &peers, &[]),
                vec![(peers[0], Grant::Rate(each)), (peers[1], Grant::Rate(each))],
                "{load:?}"
            );
        }
        assert!(recalc().grants(&Load::new(5.0, 0.0), &[], &[]).is_empty());
    }

    #[test]
    fn an_overloaded_site_forwards_its_excess_by_what_it_was_offered() {
        let peers = sites(3);
        let overloaded = Load::new(10.0, 50.0);
        let granted = [
            (peers[0], Grant::Rate(10.0)),
            (peers[1], Grant::Rate(15.0)),
            (peers[2], Grant::Rate(0.0)),
        ];
        assert_eq!(
            recalc().route(&overloaded, &granted),
            Route::Excess(vec![
                Target {
                    site: peers[0],
                    weight: 40.0,
                    cap: None
                },
                Target {
                    site: peers[1],
                    weight: 60.0,
                    cap: None
                },
            ])
        );
        let underloaded = Load::new(10.0, 5.0);
        assert_eq!(recalc().route(&underloaded, &granted), Route::Local);
        assert_eq!(recalc().route(&overloaded, &granted[2..]), Route::Local);
    }

    /// DFaaS's April 2021 run: node 1 gets 50 with maxrate 10, nodes 2 and 3 have maxrates
    /// 20 and 30: they offer it 10 and 15, and 15 of the 40 forwarded are refused: 70 %.
    #[test]
    fn dfaas_own_run_serves_seventy_percent() {
        let loads = [
            Load::new(10.0, 50.0),
            Load::new(20.0, 0.0),
            Load::new(30.0, 0.0),
        ];
        assert!((served(&recalc(), &loads) / 50.0 - 0.7).abs() < 1e-9);
    }
}
