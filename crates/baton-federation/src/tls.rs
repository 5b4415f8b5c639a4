//! The federation channel's encryption and authentication: TLS 1.3 with the sites' own Ed25519
//! keys as raw public keys (RFC 7250), no certificates and no certificate authority. Both
//! sides prove their key in the handshake; the public key a peer proved is its [`SiteId`].
//!
//! A site dialling a peer accepts only the key it expects for that peer. A site being dialled
//! accepts any client that proves an Ed25519 key, and decides membership above TLS, so a
//! non-member gets a 403 it can read (and is counted) rather than a bare handshake failure.

use crate::identity::{SiteId, SiteKey};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{
    CertificateDer, PrivatePkcs8KeyDer, ServerName, SubjectPublicKeyInfoDer, UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::sign::CertifiedKey;
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use std::sync::Arc;

/// The DER prefix of an Ed25519 SubjectPublicKeyInfo; the 32 key bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The ALPN protocol both sides speak: HTTP/2, one multiplexed connection per peer.
const ALPN_H2: &[u8] = b"h2";

/// `site`'s SubjectPublicKeyInfo, what it presents as its raw public key.
fn spki(site: &SiteId) -> Vec<u8> {
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(site.as_bytes());
    der
}

/// The site whose key `der` is, when it is exactly an Ed25519 SubjectPublicKeyInfo.
pub fn site_of(der: &[u8]) -> Option<SiteId> {
    let key = der.strip_prefix(&ED25519_SPKI_PREFIX[..])?;
    let key: [u8; 32] = key.try_into().ok()?;
    Some(SiteId::from_bytes(key))
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certified(key: &SiteKey) -> anyhow::Result<Arc<CertifiedKey>> {
    let signer =
        rustls::crypto::ring::sign::any_eddsa_type(&PrivatePkcs8KeyDer::from(key.pkcs8().to_vec()))
            .map_err(|e| anyhow::anyhow!("the site key does not sign for TLS: {e}"))?;
    Ok(Arc::new(CertifiedKey::new(
        vec![CertificateDer::from(spki(&key.id()))],
        signer,
    )))
}

/// The TLS side of a site's federation listener.
pub fn server_config(key: &SiteKey) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = provider();
    let verifier = Arc::new(AnySiteKey {
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(Arc::new(
            rustls::server::AlwaysResolvesServerRawPublicKeys::new(certified(key)?),
        ));
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// The TLS side of dialling `peer`: only a server that proves `peer`'s key is accepted.
pub fn client_config(key: &SiteKey, peer: SiteId) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let provider = provider();
    let verifier = Arc::new(ExpectedSite {
        site: peer,
        algorithms: provider.signature_verification_algorithms,
    });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_cert_resolver(Arc::new(
            rustls::client::AlwaysResolvesClientRawPublicKeys::new(certified(key)?),
        ));
    config.alpn_protocols = vec![ALPN_H2.to_vec()];
    Ok(Arc::new(config))
}

/// The name a client gives in its hello; raw public keys are checked, not names.
pub fn server_name() -> ServerName<'static> {
    ServerName::try_from("baton-federation").expect("a valid DNS name")
}

/// TLS 1.2 is never negotiated (both configurations are TLS 1.3 only).
fn no_tls12() -> Result<HandshakeSignatureValid, rustls::Error> {
    Err(rustls::Error::PeerIncompatible(
        rustls::PeerIncompatible::Tls13RequiredForQuic,
    ))
}

fn not_ed25519() -> rustls::Error {
    rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
}

fn verify_raw(
    message: &[u8],
    key: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
    algorithms: &WebPkiSupportedAlgorithms,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls13_signature_with_raw_key(
        message,
        &SubjectPublicKeyInfoDer::from(key.as_ref()),
        dss,
        algorithms,
    )
}

/// Accepts a client that proves any Ed25519 key; membership is decided above TLS.
#[derive(Debug)]
struct AnySiteKey {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnySiteKey {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        site_of(end_entity).ok_or_else(not_ed25519)?;
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        no_tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_raw(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

/// Accepts only the server that proves the key of the site dialled.
#[derive(Debug)]
struct ExpectedSite {
    site: SiteId,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for ExpectedSite {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match site_of(end_entity) {
            Some(site) if site == self.site => Ok(ServerCertVerified::assertion()),
            Some(other) => Err(rustls::Error::General(format!(
                "dialled site {} but {other} answered",
                self.site
            ))),
            None => Err(not_ed25519()),
        }
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        no_tls12()
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_raw(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn requires_raw_public_keys(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn a_site_key_round_trips_through_its_public_key_info() {
        let key = SiteKey::generate().unwrap().0;
        assert_eq!(site_of(&spki(&key.id())), Some(key.id()));
        assert_eq!(site_of(&spki(&key.id())[1..]), None);
        let mut longer = spki(&key.id());
        longer.push(0);
        assert_eq!(site_of(&longer), None);
    }

    /// Dials `server` expecting `expected`, presenting `client`; the id the server saw, or the
    /// handshake's error.
    async fn handshake(
        server: &SiteKey,
        client: &SiteKey,
        expected: SiteId,
    ) -> Result<SiteId, String> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(server_config(server).unwrap());
        let accepted = tokio::spawn(async move {
            let (tcp, _) = listener.accept().await.unwrap();
            let mut tls = acceptor.accept(tcp).await.map_err(|e| e.to_string())?;
            let peer = tls.get_ref().1.peer_certificates().unwrap()[0].clone();
            tls.write_all(b"ok").await.unwrap();
            Ok::<_, String>(site_of(&peer).unwrap())
        });
        let connector = tokio_rustls::TlsConnector::from(client_config(client, expected).unwrap());
        let tcp = tokio::net::TcpStream::connect(address).await.unwrap();
        let dialled = connector.connect(server_name(), tcp).await;
        match dialled {
            Ok(mut tls) => {
                let mut buf = [0; 2];
                tls.read_exact(&mut buf).await.map_err(|e| e.to_string())?;
                accepted.await.unwrap()
            }
            Err(error) => {
                accepted.abort();
                Err(error.to_string())
            }
        }
    }

    #[tokio::test]
    async fn both_sides_prove_their_site_keys() {
        let a = SiteKey::generate().unwrap().0;
        let b = SiteKey::generate().unwrap().0;
        assert_eq!(handshake(&b, &a, b.id()).await, Ok(a.id()));
    }

    #[tokio::test]
    async fn a_client_refuses_a_server_with_another_key() {
        let a = SiteKey::generate().unwrap().0;
        let b = SiteKey::generate().unwrap().0;
        let impostor = SiteKey::generate().unwrap().0;
        let error = handshake(&impostor, &a, b.id()).await.unwrap_err();
        assert!(error.contains("answered"), "{error}");
    }
}
