//! TLS server configuration from PEM files: rustls with ring, ALPN `h2` then `http/1.1`.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

use crate::{Error, Result};

/// Loads a certificate chain and its private key (PKCS#8, PKCS#1 or SEC1) from PEM files.
/// Errors name the file and what was wrong with it.
pub fn load_tls(
    cert_path: impl AsRef<Path>,
    key_path: impl AsRef<Path>,
) -> Result<Arc<ServerConfig>> {
    let (cert_path, key_path) = (cert_path.as_ref(), key_path.as_ref());
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
    tls_config(certs, key)
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
