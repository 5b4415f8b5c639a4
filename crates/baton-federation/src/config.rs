//! A site's federation settings (`[federation]` in the node's configuration).

use crate::identity::SiteId;
use std::net::SocketAddr;
use std::time::Duration;

/// A member to dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerAddress {
    /// Its site id (`baton federation id` on it).
    pub id: SiteId,
    /// Its federation listener, `host:port`.
    pub address: String,
}

/// How a site takes part in a federation.
#[derive(Debug, Clone)]
pub struct FederationConfig {
    /// Where the federation listener binds.
    pub listen: SocketAddr,
    /// Where peers reach it, when not `listen` (behind NAT, or listening on 0.0.0.0).
    pub advertise: Option<String>,
    /// Members to dial at start; their ids are members.
    pub peers: Vec<PeerAddress>,
    /// More members, reached when a peer tells where they are.
    pub members: Vec<SiteId>,
    /// Authorities whose certificates admit a site.
    pub authorities: Vec<SiteId>,
    /// This site's certificate from an authority, sent to peers that do not list it.
    pub certificate: Option<crate::membership::Certificate>,
    /// The offload strategy (`grant`, `dfaas-recalc`, `static`, `all-local`).
    pub strategy: String,
    /// Rounds every this long; `None`: the strategy's own (500 ms, or DFaaS's 60 s).
    pub period: Option<Duration>,
    /// How long a forwarded request's signature holds, and its nonce is remembered.
    pub window: Duration,
}

impl FederationConfig {
    /// A site listening on `listen` with the default strategy and no peers.
    pub fn new(listen: SocketAddr) -> FederationConfig {
        FederationConfig {
            listen,
            advertise: None,
            peers: Vec::new(),
            members: Vec::new(),
            authorities: Vec::new(),
            certificate: None,
            strategy: "grant".into(),
            period: None,
            window: Duration::from_secs(30),
        }
    }
}

/// `id@host:port`, as `BATON_FEDERATION_PEERS` and `--peer` take a member.
pub fn parse_peer(text: &str) -> Result<PeerAddress, String> {
    let (id, address) = text
        .trim()
        .split_once('@')
        .ok_or_else(|| format!("{text:?} is not SITE_ID@HOST:PORT"))?;
    let id = id.parse::<SiteId>().map_err(|e| e.to_string())?;
    if address
        .rsplit_once(':')
        .is_none_or(|(_, p)| p.parse::<u16>().is_err())
    {
        return Err(format!("{address:?} is not HOST:PORT"));
    }
    Ok(PeerAddress {
        id,
        address: address.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::SiteKey;

    #[test]
    fn a_peer_is_an_id_at_an_address() {
        let id = SiteKey::generate().unwrap().0.id();
        let peer = parse_peer(&format!("{id}@10.0.0.2:7443")).unwrap();
        assert_eq!((peer.id, peer.address.as_str()), (id, "10.0.0.2:7443"));
        for bad in [
            format!("{id}"),
            format!("{id}@10.0.0.2"),
            format!("{id}@10.0.0.2:port"),
            "nobody@10.0.0.2:7443".to_string(),
        ] {
            assert!(parse_peer(&bad).is_err(), "{bad}");
        }
    }
}
