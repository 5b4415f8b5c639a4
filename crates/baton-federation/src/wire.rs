//! The messages sites exchange each period over the federation channel (JSON over HTTP/2 on
//! TLS): `POST /federation/v1/round` carries what the sender can take and asks for, per
//! federated function, and the functions it offers; the reply carries what the receiver can
//! take and what it grants the sender.
//!
//! Loads are in slots (requests served at once): capacity is the sandboxes the site may run
//! times their concurrency, which the site knows without estimating service times; a slot
//! granted is a request the sender may have in flight at the receiver.

use crate::identity::SiteId;
use crate::membership::Certificate;
use serde::{Deserialize, Serialize};

/// The path of a round.
pub const ROUND_PATH: &str = "/federation/v1/round";
/// The prefix of a forwarded invocation: `{prefix}/{function}/{rest}`.
pub const FUNCTION_PREFIX: &str = "/federation/v1/function/";
/// The prefix of a component fetched by digest: `{prefix}/{sha256}`.
pub const COMPONENT_PREFIX: &str = "/federation/v1/component/";
/// Largest round message accepted, in bytes: a site with thousands of federated functions
/// still fits.
pub const MAX_ROUND_BYTES: usize = 1 << 20;

/// One site's word to one peer in one period.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Round {
    /// Where peers reach the sender's federation listener.
    pub address: String,
    /// The sender's certificate from an authority, when its id is not listed by the peer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<Certificate>,
    /// The federated functions the sender runs.
    #[serde(default)]
    pub functions: Vec<FunctionRound>,
    /// The federated functions the sender owns, for the peer to run as well.
    #[serde(default)]
    pub offers: Vec<Offer>,
    /// Other members the sender knows, so a site with one bootstrap address finds the rest.
    #[serde(default)]
    pub known: Vec<KnownSite>,
}

/// A federated function at the sender.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionRound {
    /// Its name.
    pub name: String,
    /// What it runs (the component's SHA-256, or the spec's for a process function): a
    /// peer forwards only to sites that run the same.
    pub fingerprint: String,
    /// Slots the sender could take beyond its own users' demand.
    pub headroom: f64,
    /// Slots it asks the receiver for; 0 when it needs none.
    pub ask: f64,
}

/// A function its owner deploys on every member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Offer {
    /// Its name.
    pub name: String,
    /// As in [`FunctionRound::fingerprint`].
    pub fingerprint: String,
    /// Its specification, as the owner stores it (`baton_api::FunctionSpec`).
    pub spec: serde_json::Value,
}

/// A member and where it listens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnownSite {
    /// Its id.
    pub id: SiteId,
    /// Its federation listener, `host:port`.
    pub address: String,
}

/// The receiver's answer to a [`Round`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoundReply {
    /// Per federated function the receiver runs: its headroom and its grant to the sender.
    #[serde(default)]
    pub functions: Vec<FunctionReply>,
    /// Other members the receiver knows.
    #[serde(default)]
    pub known: Vec<KnownSite>,
    /// How long the grants hold, in milliseconds, unless renewed.
    pub lease_ms: u64,
}

/// A federated function at the receiver.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FunctionReply {
    /// Its name.
    pub name: String,
    /// As in [`FunctionRound::fingerprint`].
    pub fingerprint: String,
    /// Slots the receiver could take beyond its own users' demand.
    pub headroom: f64,
    /// Slots granted to the sender; `None`: whatever it sends.
    pub grant: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_with_an_unknown_field_or_a_bad_id_is_refused() {
        assert!(serde_json::from_str::<Round>(r#"{"address":"a:1","extra":1}"#).is_err());
        assert!(
            serde_json::from_str::<Round>(
                r#"{"address":"a:1","known":[{"id":"x","address":"b"}]}"#
            )
            .is_err()
        );
        let round: Round = serde_json::from_str(r#"{"address":"a:1"}"#).unwrap();
        assert!(round.functions.is_empty() && round.offers.is_empty());
    }
}
