//! Who is a member. Membership is explicit: a site admits the peers whose ids its
//! configuration lists, and peers that carry a certificate from an authority it lists (an
//! authority's signature over the member's id and an expiry), so a federation can grow without
//! editing every site's configuration. Nothing else is admitted: knowing a member's id is not
//! being it (every message is signed by the member's key, see [`crate::signing`]).

use crate::identity::{SiteId, SiteKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use std::collections::BTreeSet;

/// An authority's word that `member` belongs until `expires_ms`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Certificate {
    /// The admitted site.
    pub member: SiteId,
    /// Milliseconds since the Unix epoch after which it no longer admits.
    pub expires_ms: u64,
    /// The signing authority.
    pub authority: SiteId,
    /// Its signature over [`Certificate::message`], URL-safe base64.
    pub signature: String,
}

impl Certificate {
    fn message(member: &SiteId, expires_ms: u64) -> Vec<u8> {
        format!("baton-federation-member/1\n{member}\n{expires_ms}").into_bytes()
    }

    /// `authority`'s certificate for `member`, valid until `expires_ms`.
    pub fn issue(authority: &SiteKey, member: SiteId, expires_ms: u64) -> Certificate {
        let signature = authority.sign(&Certificate::message(&member, expires_ms));
        Certificate {
            member,
            expires_ms,
            authority: authority.id(),
            signature: URL_SAFE_NO_PAD.encode(signature),
        }
    }
}

/// Why a site was not admitted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    /// Neither listed nor certified.
    #[error("site {0} is not a member: no configuration lists it and it shows no certificate")]
    NotMember(SiteId),
    /// A certificate from a key that is not a listed authority.
    #[error("site {0}'s certificate is signed by {1}, which is not an authority here")]
    UnknownAuthority(SiteId, SiteId),
    /// A certificate for another site, or with a bad signature.
    #[error("site {0}'s certificate is not valid for it")]
    BadCertificate(SiteId),
    /// A certificate past its expiry.
    #[error("site {0}'s certificate expired")]
    Expired(SiteId),
}

/// The members a site admits.
#[derive(Debug, Clone, Default)]
pub struct Membership {
    members: BTreeSet<SiteId>,
    authorities: BTreeSet<SiteId>,
}

impl Membership {
    /// Admits `members`, and whoever `authorities` certify.
    pub fn new(
        members: impl IntoIterator<Item = SiteId>,
        authorities: impl IntoIterator<Item = SiteId>,
    ) -> Membership {
        Membership {
            members: members.into_iter().collect(),
            authorities: authorities.into_iter().collect(),
        }
    }

    /// Whether `site`, showing `certificate` if it has one, is a member at `now_ms`.
    pub fn admits(
        &self,
        site: &SiteId,
        certificate: Option<&Certificate>,
        now_ms: u64,
    ) -> Result<(), Refusal> {
        if self.members.contains(site) {
            return Ok(());
        }
        let Some(certificate) = certificate else {
            return Err(Refusal::NotMember(*site));
        };
        if !self.authorities.contains(&certificate.authority) {
            return Err(Refusal::UnknownAuthority(*site, certificate.authority));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(&certificate.signature)
            .unwrap_or_default();
        let message = Certificate::message(&certificate.member, certificate.expires_ms);
        if certificate.member != *site || !certificate.authority.verifies(&message, &signature) {
            return Err(Refusal::BadCertificate(*site));
        }
        if now_ms > certificate.expires_ms {
            return Err(Refusal::Expired(*site));
        }
        Ok(())
    }

    /// The listed members, by id.
    pub fn listed(&self) -> impl Iterator<Item = &SiteId> {
        self.members.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SiteKey {
        SiteKey::generate().unwrap().0
    }

    #[test]
    fn listed_and_certified_sites_are_admitted_and_no_one_else() {
        let (listed, certified, stranger, authority, rogue) = (key(), key(), key(), key(), key());
        let membership = Membership::new([listed.id()], [authority.id()]);
        let valid = Certificate::issue(&authority, certified.id(), 2_000);
        let cases: Vec<(SiteId, Option<Certificate>, Result<(), Refusal>)> = vec![
            (listed.id(), None, Ok(())),
            (certified.id(), Some(valid.clone()), Ok(())),
            (stranger.id(), None, Err(Refusal::NotMember(stranger.id()))),
            // Someone else's certificate.
            (
                stranger.id(),
                Some(valid.clone()),
                Err(Refusal::BadCertificate(stranger.id())),
            ),
            // Signed by a key that is no authority here.
            (
                stranger.id(),
                Some(Certificate::issue(&rogue, stranger.id(), 2_000)),
                Err(Refusal::UnknownAuthority(stranger.id(), rogue.id())),
            ),
            // A forged expiry breaks the signature.
            (
                certified.id(),
                Some(Certificate {
                    expires_ms: 9_000,
                    ..valid.clone()
                }),
                Err(Refusal::BadCertificate(certified.id())),
            ),
            (
                certified.id(),
                Some(Certificate::issue(&authority, certified.id(), 999)),
                Err(Refusal::Expired(certified.id())),
            ),
        ];
        for (site, certificate, expected) in cases {
            assert_eq!(
                membership.admits(&site, certificate.as_ref(), 1_000),
                expected,
                "{site}"
            );
        }
    }
}
