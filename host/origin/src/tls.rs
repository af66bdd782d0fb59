//! TLS server configuration from PEM files: rustls with ring, ALPN `h2` then `http/1.1`.
//! [`ReloadableTls`] lets the certificate be replaced while the server runs (SIGHUP).

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;

use crate::{Error, Result};

/// Loads a certificate chain and its private key (PKCS#8, PKCS#1 or SEC1) from PEM files.
/// Errors name the file and what was wrong with it.
pub fn load_tls(
    cert_path: impl AsRef<Path>,
    key_path: impl AsRef<Path>,
) -> Result<Arc<ServerConfig>> {
    let (certs, key) = read_pem(cert_path.as_ref(), key_path.as_ref())?;
    tls_config(certs, key)
}

/// Reads and parses a PEM chain and key; errors name the file.
fn read_pem(
    cert_path: &Path,
    key_path: &Path,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let read = |what, path: &Path| {
        std::fs::read(path).map_err(|source| Error::TlsFile {
            what,
            path: path.to_owned(),
            source,
        })
    };
    let cert_pem = read("certificate", cert_path)?;
    let key_pem = read("private key", key_path)?;

    let certs = rustls_pemfile::certs(&mut cert_pem.as_slice())
        .collect::<std::result::Result<Vec<CertificateDer<'static>>, _>>()
        .map_err(|source| Error::TlsFile {
            what: "certificate",
            path: cert_path.to_owned(),
            source,
        })?;
    if certs.is_empty() {
        return Err(Error::TlsPem {
            what: "certificate",
            path: cert_path.to_owned(),
            problem: "no CERTIFICATE block",
        });
    }
    let key = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|source| Error::TlsFile {
            what: "private key",
            path: key_path.to_owned(),
            source,
        })?
        .ok_or_else(|| Error::TlsPem {
            what: "private key",
            path: key_path.to_owned(),
            problem: "no PRIVATE KEY block (PKCS#8, PKCS#1 or SEC1)",
        })?;
    Ok((certs, key))
}

/// A TLS certificate that can be replaced while the server runs: new handshakes get the
/// new one, connections already open keep theirs. A reload that fails (unreadable file,
/// key that does not match the certificate) changes nothing.
#[derive(Debug)]
pub struct ReloadableTls {
    cert_path: PathBuf,
    key_path: PathBuf,
    current: Arc<RwLock<Arc<CertifiedKey>>>,
}

impl ReloadableTls {
    /// Loads the pair and returns the reloader with the server config that serves it.
    pub fn load(
        cert_path: impl Into<PathBuf>,
        key_path: impl Into<PathBuf>,
    ) -> Result<(Self, Arc<ServerConfig>)> {
        let (cert_path, key_path) = (cert_path.into(), key_path.into());
        let current = Arc::new(RwLock::new(Arc::new(certified_key(&cert_path, &key_path)?)));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Resolver(Arc::clone(&current))));
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let reloader = Self {
            cert_path,
            key_path,
            current,
        };
        Ok((reloader, Arc::new(config)))
    }

    /// Reads the files again and, when they make a valid pair, serves them from the next
    /// handshake on.
    pub fn reload(&self) -> Result<()> {
        let next = self.prepare()?;
        self.install(next);
        Ok(())
    }

    /// The first half of [`reload`](Self::reload): reads and checks the files, changes
    /// nothing (so a config reload can check everything before it swaps anything).
    pub fn prepare(&self) -> Result<PreparedCert> {
        Ok(PreparedCert(Arc::new(certified_key(
            &self.cert_path,
            &self.key_path,
        )?)))
    }

    /// The second half: serves a prepared pair from the next handshake on.
    pub fn install(&self, next: PreparedCert) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = next.0;
    }

    /// The end-entity certificate served now (for tests and logs).
    pub fn current_cert(&self) -> CertificateDer<'static> {
        let current = self.current.read().unwrap_or_else(PoisonError::into_inner);
        current.cert[0].clone()
    }
}

/// A checked certificate and key, ready for [`ReloadableTls::install`].
#[derive(Debug)]
pub struct PreparedCert(Arc<CertifiedKey>);

fn certified_key(cert_path: &Path, key_path: &Path) -> Result<CertifiedKey> {
    let (certs, key) = read_pem(cert_path, key_path)?;
    let provider = rustls::crypto::ring::default_provider();
    Ok(CertifiedKey::from_der(certs, key, &provider)?)
}

#[derive(Debug)]
struct Resolver(Arc<RwLock<Arc<CertifiedKey>>>);

impl ResolvesServerCert for Resolver {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(Arc::clone(
            &self.0.read().unwrap_or_else(PoisonError::into_inner),
        ))
    }
}

/// A server config from an already-parsed chain and key.
pub fn tls_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<Arc<ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    // h2 first: one connection then carries playlist and part requests in parallel.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
