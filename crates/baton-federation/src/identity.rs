//! A site's identity: an Ed25519 key pair made at the site's first start and kept in its data
//! directory (readable by the site's user alone), so a restarted site is the same member. The
//! public key, in unpadded URL-safe base64, is the site's id: what other sites list to admit
//! it and what `baton federation id` prints.

use anyhow::Context;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

/// Bytes of an Ed25519 public key.
const PUBLIC_KEY_BYTES: usize = 32;
/// Bytes of an Ed25519 signature.
pub const SIGNATURE_BYTES: usize = 64;

/// A site's public key: its id among members.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SiteId([u8; PUBLIC_KEY_BYTES]);

/// Why a text is not a site id.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "{0:?} is not a site id: 43 characters of URL-safe base64 (an Ed25519 public key), as `baton federation id` prints"
)]
pub struct BadSiteId(pub String);

impl SiteId {
    /// Whether `signature` is this site's over `message`.
    pub fn verifies(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ED25519, &self.0)
            .verify(message, signature)
            .is_ok()
    }

    /// The key's bytes.
    pub fn as_bytes(&self) -> &[u8; PUBLIC_KEY_BYTES] {
        &self.0
    }

    /// The site whose public key is `key`.
    pub fn from_bytes(key: [u8; PUBLIC_KEY_BYTES]) -> SiteId {
        SiteId(key)
    }
}

impl FromStr for SiteId {
    type Err = BadSiteId;

    fn from_str(text: &str) -> Result<SiteId, BadSiteId> {
        let bad = || BadSiteId(text.to_string());
        let bytes = URL_SAFE_NO_PAD.decode(text.trim()).map_err(|_| bad())?;
        Ok(SiteId(bytes.try_into().map_err(|_| bad())?))
    }
}

impl fmt::Display for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl fmt::Debug for SiteId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SiteId({self})")
    }
}

impl serde::Serialize for SiteId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for SiteId {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<SiteId, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A site's key pair.
pub struct SiteKey {
    pair: Ed25519KeyPair,
    id: SiteId,
    /// The PKCS#8 document, for the TLS stack's signer.
    pkcs8: Vec<u8>,
}

impl SiteKey {
    /// A new key pair, and its PKCS#8 document (what [`SiteKey::load_or_create`] keeps).
    pub fn generate() -> anyhow::Result<(SiteKey, Vec<u8>)> {
        let document = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
            .map_err(|_| anyhow::anyhow!("the system's random source failed"))?;
        let key = SiteKey::from_pkcs8(document.as_ref())?;
        Ok((key, document.as_ref().to_vec()))
    }

    /// The key pair of a PKCS#8 document.
    pub fn from_pkcs8(document: &[u8]) -> anyhow::Result<SiteKey> {
        let pair = Ed25519KeyPair::from_pkcs8(document)
            .map_err(|e| anyhow::anyhow!("not an Ed25519 PKCS#8 key: {e}"))?;
        let public: [u8; PUBLIC_KEY_BYTES] = pair
            .public_key()
            .as_ref()
            .try_into()
            .context("an Ed25519 public key of another length")?;
        Ok(SiteKey {
            pair,
            id: SiteId(public),
            pkcs8: document.to_vec(),
        })
    }

    /// The key at `path`, made (and written with mode 0600) when there is none: a site keeps
    /// its identity across restarts.
    pub fn load_or_create(path: &Path) -> anyhow::Result<SiteKey> {
        match std::fs::read(path) {
            Ok(document) => SiteKey::from_pkcs8(&document)
                .with_context(|| format!("reading the site key {}", path.display())),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                let (key, document) = SiteKey::generate()?;
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                write_private(path, &document)
                    .with_context(|| format!("writing the site key {}", path.display()))?;
                Ok(key)
            }
            Err(error) => {
                Err(error).with_context(|| format!("reading the site key {}", path.display()))
            }
        }
    }

    /// The key as PKCS#8, for the federation channel's TLS.
    pub(crate) fn pkcs8(&self) -> &[u8] {
        &self.pkcs8
    }

    /// The site's id (its public key).
    pub fn id(&self) -> SiteId {
        self.id
    }

    /// This site's signature over `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; SIGNATURE_BYTES] {
        let mut signature = [0; SIGNATURE_BYTES];
        signature.copy_from_slice(self.pair.sign(message).as_ref());
        signature
    }
}

/// Writes `bytes` to a new file only its owner may read, then syncs it: a key half written by
/// a crash is refused at the next start rather than silently replaced.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_site_keeps_its_key_across_restarts_and_only_its_user_reads_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("federation/site.key");
        let first = SiteKey::load_or_create(&path).unwrap();
        let again = SiteKey::load_or_create(&path).unwrap();
        assert_eq!(first.id(), again.id());
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Another site, another id.
        let other = SiteKey::load_or_create(&dir.path().join("other.key")).unwrap();
        assert_ne!(first.id(), other.id());
        // A damaged key is refused, not replaced.
        std::fs::write(&path, b"garbage").unwrap();
        assert!(SiteKey::load_or_create(&path).is_err());
    }

    #[test]
    fn ids_print_and_parse_and_verify_their_signatures() {
        let (key, _) = SiteKey::generate().unwrap();
        let text = key.id().to_string();
        assert_eq!(text.len(), 43);
        assert_eq!(text.parse::<SiteId>().unwrap(), key.id());
        let signature = key.sign(b"hello");
        assert!(key.id().verifies(b"hello", &signature));
        assert!(!key.id().verifies(b"hellO", &signature));
        let (stranger, _) = SiteKey::generate().unwrap();
        assert!(!stranger.id().verifies(b"hello", &signature));
        for bad in ["", "abc", &text[..42], &format!("{text}A"), "!!!"] {
            assert!(bad.parse::<SiteId>().is_err(), "{bad:?}");
        }
    }
}
