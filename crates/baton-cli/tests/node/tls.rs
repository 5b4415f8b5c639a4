//! HTTPS for the platform's own requests: the CLI talks to a gateway behind TLS (an ingress, a
//! load balancer), and asynchronous calls deliver their results to `https://` callbacks. Both
//! trust what the system trusts plus `SSL_CERT_FILE`, so a test CA is given that way.

use crate::harness::{BATON, Node, Options};
use serde_json::json;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM to a file that
/// `SSL_CERT_FILE` can name, and the acceptor that serves it.
fn tls(dir: &std::path::Path) -> (std::path::PathBuf, TlsAcceptor) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let path = dir.join("ca.pem");
    std::fs::write(&path, certified.cert.pem()).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .unwrap();
    (path, TlsAcceptor::from(Arc::new(config)))
}

/// Terminates TLS on a port of its own and forwards the bytes to `upstream`: the gateway as
/// users reach it through an ingress. Returns the TLS port.
async fn tls_proxy(acceptor: TlsAcceptor, upstream: String) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(stream).await else {
                    return;
                };
                let mut plain = tokio::net::TcpStream::connect(&upstream).await.unwrap();
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    port
}

fn cli(
    gateway: &str,
    token: &str,
    ca: Option<&std::path::Path>,
    args: &[&str],
) -> std::process::Output {
    let mut command = Command::new(BATON);
    command
        .args(args)
        .env("BATON_GATEWAY", gateway)
        .env("BATON_TOKEN", token)
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR");
    if let Some(ca) = ca {
        command.env("SSL_CERT_FILE", ca);
    }
    command.output().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_reaches_a_gateway_over_https() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, acceptor) = tls(dir.path());
    let token = "tls-test-token";
    let node = Node::start(
        &dir.path().join("node"),
        Options {
            token: Some(token.into()),
            ..Options::default()
        },
    );
    assert_eq!(
        node.upload("echo", baton_guests::ECHO, json!({}))
            .await
            .status,
        201
    );
    let upstream = node.url.trim_start_matches("http://").to_string();
    let port = tls_proxy(acceptor, upstream).await;
    let gateway = format!("https://localhost:{port}");

    let listed = cli(&gateway, token, Some(&ca), &["ls"]);
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success(),
        "{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    assert!(stdout.contains("echo"), "{stdout}");
    let invoked = cli(
        &gateway,
        token,
        Some(&ca),
        &["invoke", "echo", "--data", "over tls"],
    );
    assert!(
        invoked.status.success(),
        "{}",
        String::from_utf8_lossy(&invoked.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&invoked.stdout), "over tls");

    // A certificate nobody vouches for is refused, and the CLI says why.
    let refused = cli(&gateway, token, None, &["ls"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr).to_lowercase();
    assert!(stderr.contains("certificate"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asynchronous_results_reach_https_callbacks() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, acceptor) = tls(dir.path());
    let node = Node::start(
        &dir.path().join("node"),
        Options {
            env: vec![("SSL_CERT_FILE".into(), ca.display().to_string())],
            ..Options::default()
        },
    );
    assert_eq!(
        node.upload("echo", baton_guests::ECHO, json!({}))
            .await
            .status,
        201
    );

    let callbacks = crate::harness::Callbacks::start(Some(acceptor)).await;
    let callback = callbacks.url.clone();

    let accepted = node
        .send(
            "POST",
            "/async-function/echo",
            &[("x-callback-url", &callback)],
            "secure result",
        )
        .await;
    assert_eq!(accepted.status, 202, "{}", accepted.text());
    let (headers, body) = callbacks
        .of(accepted.header("x-call-id"), Duration::from_secs(60))
        .await
        .expect("no callback within 60 s");
    assert_eq!(body, "secure result");
    assert_eq!(headers["x-call-id"], accepted.header("x-call-id"));
    assert_eq!(headers["x-function-status"], "200");
}
