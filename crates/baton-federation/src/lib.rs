//! Baton's federation of edge sites, after DFaaS: a site (a node or a cluster) offloads the
//! requests it cannot serve to member sites that have room, and only members take part.
//!
//! - [`identity`]: each site's Ed25519 key pair, made at first start and kept in the data
//!   directory; its public key is the site's id.
//! - [`membership`]: who is a member: the public keys a site's configuration lists, or keys a
//!   listed authority signed.
//! - [`tls`]: the federation channel, TLS 1.3 with the site keys as raw public keys.
//! - [`signing`]: a forwarded request carries its origin's signature over method, path, body
//!   digest, time and a nonce; a receiver refuses what is unsigned, altered, stale or replayed.
//! - [`strategy`]: how sites share load, each a small file of pure decisions: `all-local`,
//!   `static` (DFaaS's fixed 60/40), `dfaas-recalc` (DFaaS's published algorithm) and `grant`
//!   (Baton's: capacity asked for and granted on request, no even split).
//! - [`agent`]: the rounds (load reports, asks and grants every period), the peers and routes;
//!   [`server`]: the federation listener; [`offload`]: the gateway's invoker that forwards the
//!   excess; [`follow`]: functions deployed on every member.
#![deny(missing_docs)]

pub mod agent;
pub mod config;
pub mod follow;
pub mod identity;
pub mod ledger;
pub mod link;
pub mod membership;
pub mod meter;
pub mod metrics;
pub mod offload;
pub mod server;
pub mod signing;
pub mod site;
pub mod status;
pub mod strategy;
pub mod tls;
pub mod wire;

pub use agent::Federation;
pub use config::{FederationConfig, PeerAddress};
pub use identity::{SiteId, SiteKey};
pub use membership::Membership;
pub use offload::FederatedInvoker;
pub use server::SITE_HEADER;
pub use site::{LocalFunction, Site};
