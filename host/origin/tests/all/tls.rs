//! TLS with ALPN: a self-signed certificate made in the test, a rustls client negotiating h2.

use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http::Version;
use http_body_util::{BodyExt, Empty};
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use weir_media::StreamRegistry;
use weir_origin::{load_tls, Error, ReloadableTls};

use crate::support::{origin, snapshot, Live, Server};

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("weir-origin-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct SelfSigned {
    dir: TempDir,
    cert_der: rustls::pki_types::CertificateDer<'static>,
}

impl SelfSigned {
    fn new(tag: &str) -> Self {
        let dir = TempDir::new(tag);
        let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        std::fs::write(dir.0.join("cert.pem"), certified.cert.pem()).unwrap();
        std::fs::write(dir.0.join("key.pem"), certified.signing_key.serialize_pem()).unwrap();
        Self {
            cert_der: certified.cert.der().clone(),
            dir,
        }
    }

    fn cert(&self) -> PathBuf {
        self.dir.0.join("cert.pem")
    }

    fn key(&self) -> PathBuf {
        self.dir.0.join("key.pem")
    }

    fn connector(&self, alpn: &[&[u8]]) -> TlsConnector {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert_der.clone()).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        TlsConnector::from(Arc::new(config))
    }
}

async fn tls_server(tag: &str) -> (SelfSigned, Server, Live) {
    let certs = SelfSigned::new(tag);
    let tls = load_tls(certs.cert(), certs.key()).unwrap();
    let registry = StreamRegistry::new();
    let live = Live::publish(&registry, "a");
    live.rendition.publish(snapshot(1, 0, 0, 1));
    let server = Server::start(origin(registry), Some(tls)).await;
    (certs, server, live)
}

fn request(path: &str) -> http::Request<Empty<Bytes>> {
    http::Request::get(format!("https://localhost{path}"))
        .body(Empty::new())
        .unwrap()
}

#[tokio::test]
async fn alpn_negotiates_h2() {
    let (certs, server, _live) = tls_server("h2").await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let tls = certs
        .connector(&[b"h2", b"http/1.1"])
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut client, connection) = http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = client
        .send_request(request("/live/a/720p/index.m3u8"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "#EXTM3U\n#version 1\n"
    );
}

#[tokio::test]
async fn alpn_http1_still_works() {
    let (certs, server, _live) = tls_server("h1").await;
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let tls = certs
        .connector(&[b"http/1.1"])
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    let (mut client, connection) = http1::handshake(TokioIo::new(tls)).await.unwrap();
    tokio::spawn(connection);
    let response = client.send_request(request("/healthz")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.version(), Version::HTTP_11);
}

#[test]
fn load_tls_errors_name_the_file() {
    let certs = SelfSigned::new("errors");
    let missing = certs.dir.0.join("missing.pem");
    let err = load_tls(&missing, certs.key()).unwrap_err();
    assert!(matches!(err, Error::TlsFile { .. }));
    assert!(err.to_string().contains("missing.pem"), "{err}");
    assert!(err.to_string().contains("certificate"), "{err}");

    // Key and certificate swapped: each file lacks the block it should hold.
    let err = load_tls(certs.key(), certs.key()).unwrap_err();
    assert!(err.to_string().contains("no CERTIFICATE block"), "{err}");
    let err = load_tls(certs.cert(), certs.cert()).unwrap_err();
    assert!(err.to_string().contains("no PRIVATE KEY block"), "{err}");
    assert!(err.to_string().contains("cert.pem"), "{err}");

    // A key that does not belong to the certificate.
    let other = SelfSigned::new("errors-other");
    let err = load_tls(certs.cert(), other.key()).unwrap_err();
    assert!(matches!(err, Error::Tls(_)), "{err}");
}

/// SIGHUP's certificate reload: new handshakes get the new certificate, a bad pair on disk
/// changes nothing.
#[tokio::test]
async fn a_reloaded_certificate_serves_new_handshakes() {
    let first = SelfSigned::new("reload-1");
    let (reloader, tls) = ReloadableTls::load(first.cert(), first.key()).unwrap();
    let registry = StreamRegistry::new();
    let server = Server::start(origin(registry), Some(tls)).await;
    let handshake = |certs: &SelfSigned| {
        let connector = certs.connector(&[b"http/1.1"]);
        async move {
            let tcp = TcpStream::connect(server.addr).await.unwrap();
            connector
                .connect(ServerName::try_from("localhost").unwrap(), tcp)
                .await
        }
    };
    assert!(handshake(&first).await.is_ok());

    // The files are replaced by a new pair (certbot, cert-manager), then reloaded.
    let second = SelfSigned::new("reload-2");
    std::fs::copy(second.cert(), first.cert()).unwrap();
    std::fs::copy(second.key(), first.key()).unwrap();
    assert!(handshake(&second).await.is_err(), "not before the reload");
    reloader.reload().unwrap();
    assert_eq!(reloader.current_cert(), second.cert_der);
    assert!(handshake(&second).await.is_ok());
    assert!(
        handshake(&first).await.is_err(),
        "the old certificate is gone"
    );

    // Half-written files (key of another pair): the reload fails and the served pair stays.
    let third = SelfSigned::new("reload-3");
    std::fs::copy(third.key(), first.key()).unwrap();
    assert!(reloader.reload().is_err());
    assert_eq!(reloader.current_cert(), second.cert_der);
    assert!(handshake(&second).await.is_ok());
}
