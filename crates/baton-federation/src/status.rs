//! `GET /system/federation` and `baton federation status`: this site, its peers (up or not,
//! their round-trip time, what they report and grant) and its federated functions (capacity,
//! demand, route).

use crate::agent::Federation;
use crate::strategy::{Grant, Route};
use serde::Serialize;
use std::time::Instant;

/// The federation as this site sees it.
#[derive(Debug, Clone, Serialize)]
pub struct Status {
    /// This site's id.
    pub site: String,
    /// Where peers reach it.
    pub address: String,
    /// The offload strategy.
    pub strategy: String,
    /// Its round, in milliseconds.
    pub period_ms: u64,
    /// The peers it knows.
    pub peers: Vec<PeerStatus>,
    /// Its federated functions.
    pub functions: Vec<FunctionStatus>,
}

/// One peer.
#[derive(Debug, Clone, Serialize)]
pub struct PeerStatus {
    /// Its id.
    pub id: String,
    /// Its federation listener.
    pub address: String,
    /// Heard from within two periods.
    pub up: bool,
    /// The last round's round trip, milliseconds.
    pub rtt_ms: Option<f64>,
    /// Milliseconds since it was last heard from.
    pub heard_ms_ago: Option<u64>,
    /// What it reported and granted, per function.
    pub functions: Vec<PeerFunctionStatus>,
}

/// A function at a peer.
#[derive(Debug, Clone, Serialize)]
pub struct PeerFunctionStatus {
    /// Its name.
    pub name: String,
    /// Slots the peer could take.
    pub headroom: f64,
    /// Slots it granted this site (a number, or `"unlimited"`); absent before any grant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granted_to_us: Option<serde_json::Value>,
    /// Slots this site granted it, likewise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granted_by_us: Option<serde_json::Value>,
    /// This site's requests in flight there.
    pub in_flight: u64,
}

/// A federated function here.
#[derive(Debug, Clone, Serialize)]
pub struct FunctionStatus {
    /// Its name.
    pub name: String,
    /// The site that offered it; absent when deployed here.
    pub origin: Option<String>,
    /// Slots this site has.
    pub capacity: f64,
    /// Its users' demand, slots.
    pub demand: f64,
    /// Requests running here now.
    pub running: u64,
    /// `local`, `shares` or `excess`, with the peers.
    pub route: String,
}

fn grant(g: Grant) -> serde_json::Value {
    match g {
        Grant::Unlimited => "unlimited".into(),
        Grant::Rate(slots) => slots.into(),
    }
}

fn describe(route: &Route) -> String {
    let short = |s: &crate::SiteId| s.to_string()[..8].to_string();
    match route {
        Route::Local => "local".into(),
        Route::Shares(shares) => format!(
            "shares {}",
            shares
                .iter()
                .map(|(s, f)| format!("{}:{:.0}%", short(s), f * 100.0))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Route::Excess(targets) => format!(
            "excess {}",
            targets
                .iter()
                .map(|t| match t.cap {
                    Some(cap) => format!("{}:{cap:.1}", short(&t.site)),
                    None => format!("{}:w{:.0}", short(&t.site), t.weight),
                })
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

impl Federation {
    /// What `baton federation status` shows.
    pub fn status(&self) -> Status {
        let now = Instant::now();
        let given = self.ledger.lock().unwrap().live(now);
        let peers = self
            .peers()
            .iter()
            .map(|peer| {
                let state = peer.state.lock().unwrap();
                let mut functions: Vec<PeerFunctionStatus> = state
                    .functions
                    .iter()
                    .map(|(name, f)| PeerFunctionStatus {
                        name: name.clone(),
                        headroom: f.headroom,
                        granted_to_us: state
                            .granted
                            .get(name)
                            .filter(|(_, until)| *until > now)
                            .map(|(g, _)| grant(*g)),
                        granted_by_us: given
                            .iter()
                            .find(|(f, s, _)| f == name && *s == peer.id)
                            .map(|(_, _, g)| grant(*g)),
                        in_flight: state.in_flight.get(name).copied().unwrap_or(0),
                    })
                    .collect();
                functions.sort_by(|a, b| a.name.cmp(&b.name));
                PeerStatus {
                    id: peer.id.to_string(),
                    address: peer.address(),
                    up: state.up,
                    rtt_ms: state.rtt.map(|d| d.as_secs_f64() * 1000.0),
                    heard_ms_ago: state
                        .last_heard
                        .map(|t| now.duration_since(t).as_millis() as u64),
                    functions,
                }
            })
            .collect();
        let mut functions: Vec<FunctionStatus> = self
            .functions
            .read()
            .unwrap()
            .values()
            .map(|f| {
                let local = f.local.read().unwrap().clone();
                let load = f.load(now);
                FunctionStatus {
                    name: local.name,
                    origin: local.origin,
                    capacity: load.capacity,
                    demand: load.demand,
                    running: f.running.load(std::sync::atomic::Ordering::Relaxed),
                    route: describe(&f.route.read().unwrap()),
                }
            })
            .collect();
        functions.sort_by(|a, b| a.name.cmp(&b.name));
        Status {
            site: self.me.to_string(),
            address: self.advertise.clone(),
            strategy: self.strategy.name().into(),
            period_ms: self.period.as_millis() as u64,
            peers,
            functions,
        }
    }
}

impl Federation {
    /// Prometheus text: the counters, then per function this site's capacity, demand and
    /// headroom, each peer's reported headroom, and the grants each way, in slots.
    pub fn render_metrics(&self, out: &mut String) -> std::fmt::Result {
        use std::fmt::Write as _;
        self.metrics.render(out)?;
        let status = self.status();
        writeln!(
            out,
            "# HELP baton_federation_capacity_slots Requests a federated function may run here at once."
        )?;
        writeln!(out, "# TYPE baton_federation_capacity_slots gauge")?;
        for f in &status.functions {
            writeln!(
                out,
                "baton_federation_capacity_slots{{function_name=\"{}\"}} {}",
                f.name, f.capacity
            )?;
        }
        writeln!(
            out,
            "# HELP baton_federation_demand_slots This site's users' demand for a federated function."
        )?;
        writeln!(out, "# TYPE baton_federation_demand_slots gauge")?;
        for f in &status.functions {
            writeln!(
                out,
                "baton_federation_demand_slots{{function_name=\"{}\"}} {}",
                f.name, f.demand
            )?;
        }
        writeln!(
            out,
            "# HELP baton_federation_headroom_slots What a site could take of a federated function: this site's (peer empty) and each peer's last report."
        )?;
        writeln!(out, "# TYPE baton_federation_headroom_slots gauge")?;
        for f in &status.functions {
            writeln!(
                out,
                "baton_federation_headroom_slots{{function_name=\"{}\",peer=\"\"}} {}",
                f.name,
                (f.capacity - f.demand).max(0.0)
            )?;
        }
        for peer in status.peers.iter().filter(|p| p.up) {
            for f in &peer.functions {
                writeln!(
                    out,
                    "baton_federation_headroom_slots{{function_name=\"{}\",peer=\"{}\"}} {}",
                    f.name, peer.id, f.headroom
                )?;
            }
        }
        writeln!(
            out,
            "# HELP baton_federation_grant_slots Live grants: received from a peer, or given to it (-1: unlimited)."
        )?;
        writeln!(out, "# TYPE baton_federation_grant_slots gauge")?;
        let slots = |g: &serde_json::Value| g.as_f64().unwrap_or(-1.0);
        for peer in &status.peers {
            for f in &peer.functions {
                if let Some(g) = &f.granted_to_us {
                    writeln!(
                        out,
                        "baton_federation_grant_slots{{function_name=\"{}\",peer=\"{}\",direction=\"received\"}} {}",
                        f.name,
                        peer.id,
                        slots(g)
                    )?;
                }
                if let Some(g) = &f.granted_by_us {
                    writeln!(
                        out,
                        "baton_federation_grant_slots{{function_name=\"{}\",peer=\"{}\",direction=\"given\"}} {}",
                        f.name,
                        peer.id,
                        slots(g)
                    )?;
                }
            }
        }
        writeln!(
            out,
            "# HELP baton_federation_peer_up Whether a peer was heard from within two periods."
        )?;
        writeln!(out, "# TYPE baton_federation_peer_up gauge")?;
        for peer in &status.peers {
            writeln!(
                out,
                "baton_federation_peer_up{{peer=\"{}\"}} {}",
                peer.id,
                u8::from(peer.up)
            )?;
        }
        writeln!(
            out,
            "# HELP baton_federation_peer_rtt_seconds The last round's round trip to a peer."
        )?;
        writeln!(out, "# TYPE baton_federation_peer_rtt_seconds gauge")?;
        for peer in &status.peers {
            if let Some(ms) = peer.rtt_ms {
                writeln!(
                    out,
                    "baton_federation_peer_rtt_seconds{{peer=\"{}\"}} {}",
                    peer.id,
                    ms / 1000.0
                )?;
            }
        }
        Ok(())
    }
}
