//! The checker's HTTP client: hyper-util's pooled client over a connector that speaks plain
//! TCP (HTTP/1.1) or TLS with ALPN (`h2`, then `http/1.1`), and records which protocol
//! each TLS connection negotiated. Every response is timed: when the head came and when the
//! first and last body bytes came (a part trickled as it is produced has them far apart).

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, Request, Uri, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::net::TcpStream;
use url::Url;

use crate::{clock, Error, Result};

/// (host:port, the ALPN protocol negotiated) of each TLS connection.
type AlpnLog = Arc<Mutex<Vec<(String, Option<String>)>>>;

/// One timed response.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub status: u16,
    pub version: Version,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub sent: Instant,
    pub head_at: Instant,
    pub first_byte: Option<Instant>,
    pub last_byte: Option<Instant>,
    /// When each non-empty piece of the body came.
    pub arrivals: Vec<Instant>,
}

impl Fetched {
    /// Time from the first body byte to the last.
    pub fn spread(&self) -> Duration {
        match (self.first_byte, self.last_byte) {
            (Some(a), Some(b)) => b.saturating_duration_since(a),
            _ => Duration::ZERO,
        }
    }

    /// The longest time from first byte to last within one burst, bursts being split
    /// where nothing came for `gap`. An open-ended range of a segment in progress (a
    /// byte-range hint) carries several parts, each sent whole as it completes: one burst
    /// per part, a part's production time apart.
    pub fn burst_spread(&self, gap: Duration) -> Duration {
        let mut widest = Duration::ZERO;
        let mut start = None;
        let mut prev: Option<Instant> = None;
        for &t in &self.arrivals {
            if prev.is_none_or(|p| t.saturating_duration_since(p) >= gap) {
                start = Some(t);
            }
            if let Some(s) = start {
                widest = widest.max(t.saturating_duration_since(s));
            }
            prev = Some(t);
        }
        widest
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Clone)]
pub struct Client {
    inner: hyper_util::client::legacy::Client<Connector, Empty<Bytes>>,
    alpn: AlpnLog,
    /// Sent as `Authorization` on every request (an edge's shared token, upstream).
    authorization: Option<http::HeaderValue>,
}

impl Client {
    /// A client trusting the roots in `ca` (a PEM file), or the system bundle
    /// (`/etc/ssl/certs/ca-certificates.crt`) without one, or anything with `insecure`.
    pub fn new(ca: Option<&Path>, insecure: bool) -> Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(e.to_string()))?;
        let mut config = if insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCertificate(provider)))
                .with_no_client_auth()
        } else {
            let mut roots = rustls::RootCertStore::empty();
            let path = ca.unwrap_or(Path::new("/etc/ssl/certs/ca-certificates.crt"));
            match std::fs::read(path) {
                Ok(pem) => {
                    for cert in rustls_pemfile::certs(&mut pem.as_slice()).flatten() {
                        let _ = roots.add(cert);
                    }
                }
                Err(e) if ca.is_some() => {
                    return Err(Error::Io {
                        path: path.display().to_string(),
                        source: e,
                    })
                }
                Err(_) => {}
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        };
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let alpn = Arc::new(Mutex::new(Vec::new()));
        let connector = Connector {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
            alpn: alpn.clone(),
        };
        let inner = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self {
            inner,
            alpn,
            authorization: None,
        })
    }

    /// Sends `Authorization: Bearer {token}` with every request.
    pub fn with_bearer(mut self, token: &str) -> Result<Self> {
        let mut value =
            http::HeaderValue::try_from(format!("Bearer {token}")).map_err(|_| Error::BadToken)?;
        value.set_sensitive(true);
        self.authorization = Some(value);
        Ok(self)
    }

    /// GETs `url`, reading the whole body, within `timeout`.
    /// `range` is an HTTP Range value (`bytes=0-99`), for byte-range parts.
    pub async fn get(&self, url: &Url, range: Option<&str>, timeout: Duration) -> Result<Fetched> {
        let uri: Uri = url.as_str().parse().map_err(|e| Error::Url {
            url: url.to_string(),
            reason: format!("{e}"),
        })?;
        let mut req = Request::get(uri).header(
            "user-agent",
            concat!("weir-check/", env!("CARGO_PKG_VERSION")),
        );
        if let Some(r) = range {
            req = req.header("range", r);
        }
        if let Some(auth) = &self.authorization {
            req = req.header(http::header::AUTHORIZATION, auth.clone());
        }
        let req = req.body(Empty::new()).map_err(|e| Error::Http {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        let sent = clock::now();
        let fetch = async {
            let resp = self.inner.request(req).await.map_err(|e| Error::Http {
                url: url.to_string(),
                reason: error_chain(&e),
            })?;
            let head_at = clock::now();
            let status = resp.status().as_u16();
            let version = resp.version();
            let (parts, mut body) = resp.into_parts();
            let mut buf = BytesMut::new();
            let (mut first_byte, mut last_byte) = (None, None);
            let mut arrivals = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| Error::Http {
                    url: url.to_string(),
                    reason: error_chain(&e),
                })?;
                if let Ok(data) = frame.into_data() {
                    if !data.is_empty() {
                        let now = clock::now();
                        first_byte.get_or_insert(now);
                        last_byte = Some(now);
                        arrivals.push(now);
                        buf.extend_from_slice(&data);
                    }
                }
            }
            Ok(Fetched {
                status,
                version,
                headers: parts.headers,
                body: buf.freeze(),
                sent,
                head_at,
                first_byte,
                last_byte,
                arrivals,
            })
        };
        match tokio::time::timeout(timeout, fetch).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                url: url.to_string(),
                after: timeout,
            }),
        }
    }

    /// What each TLS connection negotiated: (host:port, ALPN protocol).
    pub fn alpn(&self) -> Vec<(String, Option<String>)> {
        self.alpn
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

#[derive(Clone)]
pub struct Connector {
    tls: tokio_rustls::TlsConnector,
    alpn: AlpnLog,
}

impl tower_service::Service<Uri> for Connector {
    type Response = Conn;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Conn>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let tls = self.tls.clone();
        let alpn = self.alpn.clone();
        Box::pin(async move {
            let https = uri.scheme_str() == Some("https");
            let host = uri
                .host()
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no host"))?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string();
            let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
            let tcp = TcpStream::connect((host.as_str(), port)).await?;
            tcp.set_nodelay(true)?;
            if !https {
                return Ok(Conn::Plain(TokioIo::new(tcp)));
            }
            let name = ServerName::try_from(host.clone())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            let stream = tls.connect(name, tcp).await?;
            let proto = stream
                .get_ref()
                .1
                .alpn_protocol()
                .map(|p| String::from_utf8_lossy(p).into_owned());
            let h2 = proto.as_deref() == Some("h2");
            alpn.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push((format!("{host}:{port}"), proto));
            Ok(Conn::Tls(Box::new(TokioIo::new(stream)), h2))
        })
    }
}

/// A connection: plain TCP or TLS (and whether ALPN chose h2).
pub enum Conn {
    Plain(TokioIo<TcpStream>),
    Tls(
        Box<TokioIo<tokio_rustls::client::TlsStream<TcpStream>>>,
        bool,
    ),
}

impl Connection for Conn {
    fn connected(&self) -> Connected {
        match self {
            Conn::Tls(_, true) => Connected::new().negotiated_h2(),
            _ => Connected::new(),
        }
    }
}

impl hyper::rt::Read for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s, _) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl hyper::rt::Write for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s, _) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s, _) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s, _) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// `--insecure`: accepts any certificate, but still checks the handshake's signatures.
#[derive(Debug)]
struct AnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetched(offsets_ms: &[u64]) -> Fetched {
        let t0 = clock::now();
        let arrivals: Vec<Instant> = offsets_ms
            .iter()
            .map(|ms| t0 + Duration::from_millis(*ms))
            .collect();
        Fetched {
            status: 206,
            version: Version::HTTP_11,
            headers: HeaderMap::new(),
            body: Bytes::new(),
            sent: t0,
            head_at: t0,
            first_byte: arrivals.first().copied(),
            last_byte: arrivals.last().copied(),
            arrivals,
        }
    }

    #[test]
    fn bursts_are_judged_each_in_turn() {
        let gap = Duration::from_millis(250);
        // Three parts sent whole, 500 ms apart: each burst is a few ms wide.
        let whole = fetched(&[0, 2, 3, 500, 501, 1000, 1004]);
        assert_eq!(whole.burst_spread(gap), Duration::from_millis(4));
        assert_eq!(whole.spread(), Duration::from_millis(1004));
        // A part trickled frame by frame (33 ms apart) is one wide burst.
        let trickled = fetched(&[
            0, 33, 66, 100, 133, 166, 200, 233, 266, 300, 333, 366, 400, 433,
        ]);
        assert_eq!(trickled.burst_spread(gap), Duration::from_millis(433));
    }
}
