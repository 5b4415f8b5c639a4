//! Forwarded requests carry their origin's signature. The origin signs the method, the path
//! with its query, the SHA-256 of the body, the receiving site's id, the time and a random
//! nonce; the receiver checks that the origin is a member, that the signature holds, that the
//! time is within the validity window, and that it has not seen the nonce within that window
//! (it remembers every nonce for the window). So a forwarded request cannot be altered,
//! replayed, redirected to another site, or claimed by a client that knows a member's id.

use crate::identity::{SIGNATURE_BYTES, SiteId, SiteKey};
use crate::membership::{Membership, Refusal};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::digest::{SHA256, digest};
use ring::rand::{SecureRandom, SystemRandom};
use std::collections::{HashSet, VecDeque};

/// The headers of a stamp; any of them on a request from outside the federation is refused.
pub const ORIGIN_HEADER: &str = "x-baton-federation-origin";
/// When the origin signed, milliseconds since the Unix epoch.
pub const TIME_HEADER: &str = "x-baton-federation-time";
/// 16 random bytes, hex.
pub const NONCE_HEADER: &str = "x-baton-federation-nonce";
/// The origin's Ed25519 signature, URL-safe base64.
pub const SIGNATURE_HEADER: &str = "x-baton-federation-signature";
/// Every federation header, for stripping and refusing.
pub const HEADERS: [&str; 4] = [ORIGIN_HEADER, TIME_HEADER, NONCE_HEADER, SIGNATURE_HEADER];

/// A forwarded request's proof of origin.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamp {
    /// The site that forwarded it.
    pub origin: SiteId,
    /// When, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// Random, once per request.
    pub nonce: [u8; 16],
    /// The origin's signature over [`signed_message`].
    pub signature: [u8; SIGNATURE_BYTES],
}

/// Why a forwarded request was refused. Every one of them answers 403 but [`Refused::Busy`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refused {
    /// Some federation headers, not a whole valid stamp.
    #[error("malformed federation stamp: {0}")]
    Malformed(String),
    /// The origin is not a member.
    #[error(transparent)]
    NotMember(#[from] Refusal),
    /// The signature does not hold for this request.
    #[error("the signature does not match the request (altered, or meant for another site)")]
    BadSignature,
    /// Signed outside the validity window.
    #[error("signed {skew_ms} ms away from this site's clock, outside the {window_ms} ms window")]
    Stale {
        /// How far from now.
        skew_ms: u64,
        /// The window.
        window_ms: u64,
    },
    /// Its nonce was seen within the window.
    #[error("replayed: this nonce was already used")]
    Replayed,
    /// So many nonces are remembered that another cannot be, and forgetting one would let it
    /// be replayed: 503, retry.
    #[error("too many forwarded requests within the validity window to remember another")]
    Busy,
}

impl Refused {
    /// The HTTP status a receiver answers with.
    pub fn status(&self) -> u16 {
        match self {
            Refused::Busy => 503,
            _ => 403,
        }
    }
}

/// What the origin signs.
pub fn signed_message(
    method: &str,
    path_and_query: &str,
    body: &[u8],
    target: &SiteId,
    time_ms: u64,
    nonce: &[u8; 16],
) -> Vec<u8> {
    let body_digest = hex::encode(digest(&SHA256, body).as_ref());
    format!(
        "baton-federation-forward/1\n{method}\n{path_and_query}\n{body_digest}\n{target}\n{time_ms}\n{}",
        hex::encode(nonce)
    )
    .into_bytes()
}

impl Stamp {
    /// `key`'s stamp on a request to `target`, signed at `now_ms`.
    pub fn sign(
        key: &SiteKey,
        target: &SiteId,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        now_ms: u64,
    ) -> Stamp {
        let mut nonce = [0; 16];
        // The system's random source does not fail on Linux; were it to, a zero nonce is
        // refused as a replay by its second use, never accepted twice.
        let _ = SystemRandom::new().fill(&mut nonce);
        let message = signed_message(method, path_and_query, body, target, now_ms, &nonce);
        Stamp {
            origin: key.id(),
            time_ms: now_ms,
            nonce,
            signature: key.sign(&message),
        }
    }

    /// The stamp as header values, in [`HEADERS`] order.
    pub fn headers(&self) -> [(&'static str, String); 4] {
        [
            (ORIGIN_HEADER, self.origin.to_string()),
            (TIME_HEADER, self.time_ms.to_string()),
            (NONCE_HEADER, hex::encode(self.nonce)),
            (SIGNATURE_HEADER, URL_SAFE_NO_PAD.encode(self.signature)),
        ]
    }

    /// The stamp a request carries: `None` without any federation header, an error with some
    /// but not a whole valid stamp. `header` looks a header up by its lowercase name.
    pub fn from_headers<'a>(
        header: impl Fn(&str) -> Option<&'a str>,
    ) -> Result<Option<Stamp>, Refused> {
        let values = HEADERS.map(&header);
        if values.iter().all(Option::is_none) {
            return Ok(None);
        }
        let [Some(origin), Some(time), Some(nonce), Some(signature)] = values else {
            return Err(Refused::Malformed(format!(
                "a forwarded request carries all of {}",
                HEADERS.join(", ")
            )));
        };
        let malformed = |what: &str| Refused::Malformed(what.to_string());
        let signature = URL_SAFE_NO_PAD
            .decode(signature)
            .ok()
            .and_then(|s| <[u8; SIGNATURE_BYTES]>::try_from(s).ok())
            .ok_or_else(|| malformed("the signature is not 64 bytes of base64"))?;
        Ok(Some(Stamp {
            origin: origin
                .parse()
                .map_err(|e| Refused::Malformed(format!("{e}")))?,
            time_ms: time
                .parse()
                .map_err(|_| malformed("the time is not milliseconds"))?,
            nonce: <[u8; 16]>::try_from(hex::decode(nonce).unwrap_or_default())
                .map_err(|_| malformed("the nonce is not 16 bytes of hex"))?,
            signature,
        }))
    }
}

/// A receiving site's checks, with the nonces it remembers.
pub struct Verifier {
    me: SiteId,
    window_ms: u64,
    capacity: usize,
    seen: HashSet<(SiteId, [u8; 16])>,
    /// Nonces by the time they were signed, oldest first (stamps arrive roughly in order; one
    /// signed earlier than the front still expires no later than the window after it).
    order: VecDeque<(u64, SiteId, [u8; 16])>,
}

impl Verifier {
    /// Checks for site `me`: stamps signed within `window_ms` of now, at most `capacity`
    /// nonces remembered.
    pub fn new(me: SiteId, window_ms: u64, capacity: usize) -> Verifier {
        Verifier {
            me,
            window_ms,
            capacity,
            seen: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// Accepts `stamp` on a request to this site, or says why not; an accepted nonce is never
    /// accepted again within the window.
    pub fn verify(
        &mut self,
        stamp: &Stamp,
        method: &str,
        path_and_query: &str,
        body: &[u8],
        membership: &Membership,
        now_ms: u64,
    ) -> Result<(), Refused> {
        membership.admits(&stamp.origin, None, now_ms)?;
        let skew_ms = now_ms.abs_diff(stamp.time_ms);
        if skew_ms > self.window_ms {
            return Err(Refused::Stale {
                skew_ms,
                window_ms: self.window_ms,
            });
        }
        let message = signed_message(
            method,
            path_and_query,
            body,
            &self.me,
            stamp.time_ms,
            &stamp.nonce,
        );
        if !stamp.origin.verifies(&message, &stamp.signature) {
            return Err(Refused::BadSignature);
        }
        self.forget_before(now_ms.saturating_sub(self.window_ms));
        let key = (stamp.origin, stamp.nonce);
        if self.seen.contains(&key) {
            return Err(Refused::Replayed);
        }
        if self.seen.len() >= self.capacity {
            return Err(Refused::Busy);
        }
        self.seen.insert(key);
        self.order
            .push_back((stamp.time_ms, stamp.origin, stamp.nonce));
        Ok(())
    }

    /// Forgets nonces signed before `oldest_ms`: a stamp that old is refused as stale anyway.
    fn forget_before(&mut self, oldest_ms: u64) {
        while let Some((time_ms, origin, nonce)) = self.order.front().copied() {
            if time_ms >= oldest_ms {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&(origin, nonce));
        }
    }

    /// Nonces remembered now.
    pub fn remembered(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Sites {
        origin: SiteKey,
        target: SiteKey,
        membership: Membership,
    }

    fn sites() -> Sites {
        let origin = SiteKey::generate().unwrap().0;
        let target = SiteKey::generate().unwrap().0;
        let membership = Membership::new([origin.id()], []);
        Sites {
            origin,
            target,
            membership,
        }
    }

    #[test]
    fn a_signed_request_is_accepted_once_and_every_alteration_is_refused() {
        let s = sites();
        let mut verifier = Verifier::new(s.target.id(), 30_000, 100);
        let stamp = Stamp::sign(
            &s.origin,
            &s.target.id(),
            "POST",
            "/function/f?x=1",
            b"body",
            1_000_000,
        );
        let check =
            |v: &mut Verifier, stamp: &Stamp, method: &str, path: &str, body: &[u8], now: u64| {
                v.verify(stamp, method, path, body, &s.membership, now)
            };
        // Altered method, path, query or body: the signature does not hold.
        for (method, path, body) in [
            ("GET", "/function/f?x=1", &b"body"[..]),
            ("POST", "/function/g?x=1", b"body"),
            ("POST", "/function/f?x=2", b"body"),
            ("POST", "/function/f?x=1", b"bodY"),
        ] {
            assert_eq!(
                check(&mut verifier, &stamp, method, path, body, 1_000_000),
                Err(Refused::BadSignature),
                "{method} {path}"
            );
        }
        assert_eq!(
            check(
                &mut verifier,
                &stamp,
                "POST",
                "/function/f?x=1",
                b"body",
                1_010_000
            ),
            Ok(())
        );
        // The same request again: a replay.
        assert_eq!(
            check(
                &mut verifier,
                &stamp,
                "POST",
                "/function/f?x=1",
                b"body",
                1_010_001
            ),
            Err(Refused::Replayed)
        );
        // Too old or from the future.
        let old = Stamp::sign(&s.origin, &s.target.id(), "GET", "/", b"", 900_000);
        assert!(matches!(
            check(&mut verifier, &old, "GET", "/", b"", 1_000_000),
            Err(Refused::Stale {
                skew_ms: 100_000,
                ..
            })
        ));
        // Meant for another site.
        let elsewhere = Stamp::sign(&s.origin, &s.origin.id(), "GET", "/", b"", 1_000_000);
        assert_eq!(
            check(&mut verifier, &elsewhere, "GET", "/", b"", 1_000_000),
            Err(Refused::BadSignature)
        );
        // A stranger's own valid signature: not a member.
        let stranger = SiteKey::generate().unwrap().0;
        let foreign = Stamp::sign(&stranger, &s.target.id(), "GET", "/", b"", 1_000_000);
        assert!(matches!(
            check(&mut verifier, &foreign, "GET", "/", b"", 1_000_000),
            Err(Refused::NotMember(_))
        ));
        // A member's id with someone else's signature.
        let spoofed = Stamp {
            origin: s.origin.id(),
            ..foreign
        };
        assert_eq!(
            check(&mut verifier, &spoofed, "GET", "/", b"", 1_000_000),
            Err(Refused::BadSignature)
        );
    }

    #[test]
    fn nonces_are_remembered_for_the_window_and_bounded() {
        let s = sites();
        let mut verifier = Verifier::new(s.target.id(), 1_000, 3);
        let sign = |now: u64| Stamp::sign(&s.origin, &s.target.id(), "GET", "/", b"", now);
        for now in [10_000, 10_100, 10_200] {
            assert_eq!(
                verifier.verify(&sign(now), "GET", "/", b"", &s.membership, now),
                Ok(())
            );
        }
        // Full within the window: refused rather than forgetting a nonce that could be replayed.
        let busy = verifier.verify(&sign(10_300), "GET", "/", b"", &s.membership, 10_300);
        assert_eq!(busy.map_err(|e| e.status()), Err(503));
        // Later, the first ones are past the window and forgotten.
        assert_eq!(
            verifier.verify(&sign(11_150), "GET", "/", b"", &s.membership, 11_150),
            Ok(())
        );
        assert_eq!(verifier.remembered(), 2);
    }

    #[test]
    fn stamps_travel_as_headers_and_partial_ones_are_refused() {
        let s = sites();
        let stamp = Stamp::sign(&s.origin, &s.target.id(), "GET", "/", b"", 5);
        let headers = stamp.headers();
        let lookup = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(Stamp::from_headers(lookup), Ok(Some(stamp.clone())));
        assert_eq!(Stamp::from_headers(|_| None), Ok(None));
        // One header alone, as a client claiming to be forwarded would send it.
        let spoof = |name: &str| (name == ORIGIN_HEADER).then_some("whatever");
        assert!(matches!(
            Stamp::from_headers(spoof),
            Err(Refused::Malformed(_))
        ));
        let bad_nonce = |name: &str| match name {
            NONCE_HEADER => Some("zz"),
            other => lookup(other),
        };
        assert!(matches!(
            Stamp::from_headers(bad_nonce),
            Err(Refused::Malformed(_))
        ));
    }
}
