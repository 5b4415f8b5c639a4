//! How sites share a federated function's load: a strategy decides, each round, what an
//! overloaded site asks its peers for, what a site grants the peers that ask (or all its
//! neighbours), and how its gateway routes its users' requests given what it was granted. The
//! decisions are pure functions of the round's figures; the federation agent does the I/O.
//!
//! Loads are in slots, requests served at once (DFaaS spoke of requests a second; a slot
//! serves one request per service time, so the two differ by that time, which the site
//! measures). A site's [`Load`] for a function is its capacity (the sandboxes its autoscaler
//! may run times their concurrency, capped by a rate label as DFaaS's `maxrate`) and its
//! users' demand, measured over the round (see [`crate::meter`]).

mod all_local;
mod dfaas_recalc;
mod grant;
mod static_split;

pub use all_local::AllLocal;
pub use dfaas_recalc::DfaasRecalc;
pub use grant::Granting;
pub use static_split::StaticSplit;

use crate::identity::SiteId;
use std::time::Duration;

/// One federated function at one site in one round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    /// Requests per second the site can serve.
    pub capacity: f64,
    /// Requests per second its own users send.
    pub demand: f64,
}

impl Load {
    /// A site that can serve `capacity` and whose users send `demand`, in requests a second.
    pub fn new(capacity: f64, demand: f64) -> Load {
        Load { capacity, demand }
    }

    /// What it could take beyond its users' demand.
    pub fn headroom(&self) -> f64 {
        (self.capacity - self.demand).max(0.0)
    }

    /// What its users send beyond its capacity.
    pub fn excess(&self) -> f64 {
        (self.demand - self.capacity).max(0.0)
    }
}

/// What a peer reported of itself for the function this round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PeerReport {
    /// The peer.
    pub site: SiteId,
    /// Requests per second it could take.
    pub headroom: f64,
}

/// A rate one site asks another for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ask {
    /// The site asked (in [`OffloadStrategy::asks`]) or asking (in [`OffloadStrategy::grants`]).
    pub site: SiteId,
    /// Requests per second.
    pub rate: f64,
}

/// What a site lets a peer send it for the function, until the next round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Grant {
    /// At most this many requests per second; beyond it the receiver answers 429.
    Rate(f64),
    /// Whatever the peer sends.
    Unlimited,
}

/// How a site routes its users' requests for the function.
#[derive(Debug, Clone, PartialEq)]
pub enum Route {
    /// Everything local; what the site cannot serve is refused with 429.
    Local,
    /// A fixed share of every request to each peer, the rest local, whatever the load.
    Shares(Vec<(SiteId, f64)>),
    /// Local up to capacity; the excess to the peers in proportion to their weights, each up
    /// to its cap (`None`: as much as the weight sends, the receiver refusing what is over).
    Excess(Vec<Target>),
}

/// A peer the excess goes to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Target {
    /// The peer.
    pub site: SiteId,
    /// Its share of the excess, relative to the others'.
    pub weight: f64,
    /// Requests per second sent at most.
    pub cap: Option<f64>,
}

/// A way of sharing load between sites.
pub trait OffloadStrategy: Send + Sync {
    /// Its name in the configuration.
    fn name(&self) -> &'static str;
    /// How often its rounds run.
    fn period(&self) -> Duration;
    /// What to ask each peer for, from what they reported (the overloaded side).
    fn asks(&self, load: &Load, peers: &[PeerReport]) -> Vec<Ask>;
    /// What to grant each of `neighbours` (the peers that run the function), given what
    /// `asks` they sent (the receiving side).
    fn grants(&self, load: &Load, neighbours: &[SiteId], asks: &[Ask]) -> Vec<(SiteId, Grant)>;
    /// How to route, given what the peers granted this site.
    fn route(&self, load: &Load, granted: &[(SiteId, Grant)]) -> Route;
    /// Whether a site that saturates runs a round at once rather than at its next period.
    fn reacts(&self) -> bool {
        false
    }
}

/// The strategies' names, as the configuration and `baton bench federation --strategy` take
/// them.
pub const NAMES: [&str; 4] = ["all-local", "static", "dfaas-recalc", "grant"];

/// The strategy called `name`, with rounds every `period` (`dfaas-recalc` keeps DFaaS's
/// 60 s unless `period` is given); `None` for an unknown name.
pub fn by_name(name: &str, period: Option<Duration>) -> Option<Box<dyn OffloadStrategy>> {
    let fast = period.unwrap_or(Duration::from_millis(500));
    Some(match name {
        "all-local" => Box::new(AllLocal { period: fast }),
        "static" => Box::new(StaticSplit { period: fast }),
        "dfaas-recalc" => Box::new(DfaasRecalc {
            period: period.unwrap_or(DfaasRecalc::PERIOD),
        }),
        "grant" => Box::new(Granting { period: fast }),
        _ => return None,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::identity::SiteKey;

    /// `n` distinct site ids, in increasing order.
    pub(crate) fn sites(n: usize) -> Vec<SiteId> {
        let mut ids: Vec<SiteId> = (0..n)
            .map(|_| SiteKey::generate().unwrap().0.id())
            .collect();
        ids.sort();
        ids
    }

    /// What a round of `strategy` serves when the sites have `loads` (site 0 first): each
    /// site's grants to the others, then each site's route, then the requests that land; the
    /// served rate of each site's users, summed.
    pub(crate) fn served(strategy: &dyn OffloadStrategy, loads: &[Load]) -> f64 {
        let ids = sites(loads.len());
        let others = |i: usize| -> Vec<SiteId> {
            ids.iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, s)| *s)
                .collect()
        };
        let reports = |i: usize| -> Vec<PeerReport> {
            ids.iter()
                .zip(loads)
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, (s, l))| PeerReport {
                    site: *s,
                    headroom: l.headroom(),
                })
                .collect()
        };
        let asks: Vec<Vec<Ask>> = (0..loads.len())
            .map(|i| strategy.asks(&loads[i], &reports(i)))
            .collect();
        // grants[j] = what site j grants each other site.
        let grants: Vec<Vec<(SiteId, Grant)>> = (0..loads.len())
            .map(|j| {
                let to_me: Vec<Ask> = asks
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != j)
                    .flat_map(|(i, a)| {
                        let (me, asker) = (ids[j], ids[i]);
                        a.iter().filter(move |a| a.site == me).map(move |a| Ask {
                            site: asker,
                            rate: a.rate,
                        })
                    })
                    .collect();
                strategy.grants(&loads[j], &others(j), &to_me)
            })
            .collect();
        // Forwarded load arriving at each site, and what it accepts of it.
        let mut arriving = vec![Vec::<(f64, Grant)>::new(); loads.len()];
        let mut served = 0.0;
        for i in 0..loads.len() {
            let granted: Vec<(SiteId, Grant)> = (0..loads.len())
                .filter(|j| *j != i)
                .filter_map(|j| {
                    grants[j]
                        .iter()
                        .find(|(s, _)| *s == ids[i])
                        .map(|(_, g)| (ids[j], *g))
                })
                .collect();
            let load = loads[i];
            let to = |site: &SiteId| ids.iter().position(|s| s == site).unwrap();
            let limit = |site: &SiteId| {
                granted
                    .iter()
                    .find(|(s, _)| s == site)
                    .map_or(Grant::Rate(0.0), |(_, g)| *g)
            };
            match strategy.route(&load, &granted) {
                Route::Local => served += load.demand.min(load.capacity),
                Route::Shares(shares) => {
                    let forwarded: f64 = shares.iter().map(|(_, f)| f).sum();
                    served += (load.demand * (1.0 - forwarded)).min(load.capacity);
                    for (site, fraction) in shares {
                        arriving[to(&site)].push((load.demand * fraction, limit(&site)));
                    }
                }
                Route::Excess(targets) => {
                    served += load.demand.min(load.capacity);
                    let total: f64 = targets.iter().map(|t| t.weight).sum();
                    for t in targets {
                        let share = load.excess() * t.weight / total.max(f64::MIN_POSITIVE);
                        arriving[to(&t.site)]
                            .push((t.cap.map_or(share, |c| share.min(c)), limit(&t.site)));
                    }
                }
            }
        }
        // A receiver takes each peer's forwarded requests up to its grant, and all of them up
        // to the room its own users leave.
        for (j, flows) in arriving.iter().enumerate() {
            let accepted: f64 = flows
                .iter()
                .map(|(rate, grant)| match grant {
                    Grant::Rate(limit) => rate.min(*limit),
                    Grant::Unlimited => *rate,
                })
                .sum();
            served += accepted.min(loads[j].headroom());
        }
        served
    }

    #[test]
    fn every_name_makes_its_strategy_and_others_are_unknown() {
        for name in NAMES {
            assert_eq!(by_name(name, None).unwrap().name(), name);
        }
        assert!(by_name("fastest", None).is_none());
        assert_eq!(
            by_name("dfaas-recalc", None).unwrap().period(),
            Duration::from_secs(60)
        );
        assert_eq!(
            by_name("grant", None).unwrap().period(),
            Duration::from_millis(500)
        );
    }

    /// DFaaS's paper scenario in one round: site 1 serves 10 req/s and gets 50, the others
    /// serve 30 each and get nothing. Each strategy's share served, as the issue states it.
    #[test]
    fn the_paper_scenario_in_one_round() {
        let loads = [
            Load::new(10.0, 50.0),
            Load::new(30.0, 0.0),
            Load::new(30.0, 0.0),
        ];
        let share = |name: &str| served(by_name(name, None).unwrap().as_ref(), &loads) / 50.0;
        assert!((share("all-local") - 0.2).abs() < 1e-9);
        // 60 % of 50 stays on a site that serves 10; the 40 % forwarded is all served.
        assert!((share("static") - 0.6).abs() < 1e-9, "{}", share("static"));
        // Each receiver splits its 30 of margin over its two neighbours: 15 each for site 1.
        assert!(
            (share("dfaas-recalc") - 0.8).abs() < 1e-9,
            "{}",
            share("dfaas-recalc")
        );
        assert!((share("grant") - 1.0).abs() < 1e-9, "{}", share("grant"));
    }
}
