//! The client the platform's own outgoing requests use — callbacks of asynchronous calls and
//! the CLI's calls to a gateway: `http` and `https` (rustls), trusting the system's
//! certificate authorities plus those `SSL_CERT_FILE` / `SSL_CERT_DIR` name, as curl, Go
//! (faas-cli, OpenFaaS's queue-worker) and Python do; Mozilla's roots where the system has none.

use bytes::Bytes;
use http_body_util::Full;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A client for `http://` and `https://` URLs.
pub type HttpsClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// A new client (it pools connections: make one and clone it).
pub fn client() -> HttpsClient {
    let builder = hyper_rustls::HttpsConnectorBuilder::new();
    let builder = match builder.with_native_roots() {
        Ok(builder) => builder,
        Err(error) => {
            tracing::debug!(%error, "no system certificate authorities; using Mozilla's");
            hyper_rustls::HttpsConnectorBuilder::new().with_webpki_roots()
        }
    };
    let connector = builder.https_or_http().enable_http1().build();
    Client::builder(TokioExecutor::new()).build(connector)
}
