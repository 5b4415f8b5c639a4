//! Baton's federation of edge sites, after DFaaS: a site (a node or a cluster) offloads the
//! requests it cannot serve to member sites that have room, and only members take part.
//!
//! - [`identity`]: each site's Ed25519 key pair, made at first start and kept in the data
//!   directory; its public key is the site's id.
//! - [`membership`]: who is a member: the public keys a site's configuration lists, or keys a
//!   listed authority signed.
//! - [`signing`]: a forwarded request carries its origin's signature over method, path, body
//!   digest, time and a nonce; a receiver refuses what is unsigned, altered, stale or replayed.
//! - [`strategy`]: how sites share load, each a small file of pure decisions: `all-local`,
//!   `static` (DFaaS's fixed 60/40), `dfaas-recalc` (DFaaS's published algorithm) and `grant`
//!   (Baton's: capacity asked for and granted on request, no even split).
#![deny(missing_docs)]

pub mod identity;
pub mod membership;
pub mod signing;
pub mod strategy;

pub use identity::{SiteId, SiteKey};
pub use membership::Membership;
