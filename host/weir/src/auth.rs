//! Who may publish, and to which stream: configured keys (compared in constant time),
//! any key under its own name (`ingest.allow_any_key`), and the operator's `on_publish`
//! HTTP callback.
//!
//! The one rule that keeps a stream from changing hands: **a stream is owned by one key**.
//! A configured key owns its stream's name; any other key publishes only under its own name
//! (`/live/<key>/…`), never under a name a configured key or the test source owns. Together
//! with one publisher per key ([`weir_ingest::ActiveKeys`]) that makes key → stream
//! one-to-one, so a stranger who publishes the stream's public name is refused instead of
//! taking the stream over.

use std::collections::HashSet;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use tracing::{debug, warn};
use weir_ingest::{Refusal, SessionInfo};
use weir_media::StreamKey;

use crate::config::{valid_stream_name, Config};

/// Publish authorization, built once from the config.
pub struct Auth {
    /// SHA-256 of each configured key, and the stream it owns.
    keys: Vec<([u8; 32], String)>,
    allow_any_key: bool,
    /// Names no key but their owner may publish to.
    reserved: HashSet<String>,
    callback: Option<Callback>,
}

struct Callback {
    url: http::Uri,
    timeout: Duration,
    client: Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
}

impl Auth {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let keys: Vec<_> = config
            .ingest
            .keys
            .iter()
            .map(|k| (digest(&k.key), k.stream.clone()))
            .collect();
        let mut reserved: HashSet<String> = keys.iter().map(|(_, s)| s.clone()).collect();
        if config.test_source.enabled {
            reserved.insert(config.test_source.name.clone());
        }
        let callback = match &config.ingest.on_publish {
            Some(cb) => Some(Callback {
                url: cb.url.parse()?,
                timeout: Duration::from_millis(cb.timeout_ms),
                client: Client::builder(TokioExecutor::new()).build_http(),
            }),
            None => None,
        };
        Ok(Self {
            keys,
            allow_any_key: config.allow_any_key(),
            reserved,
            callback,
        })
    }

    /// The stream `key` publishes to, or why it may not. Checks every configured key in
    /// constant time (no early exit; digests of equal length), so timing does not tell how
    /// much of a guess was right.
    pub fn stream_for(&self, key: &StreamKey) -> Result<String, Refusal> {
        let wanted = digest(key.expose());
        let mut found: Option<&str> = None;
        for (k, stream) in &self.keys {
            let hit = bool::from(k.ct_eq(&wanted));
            // Both branches do the same work; `found` is set at most once (keys are unique).
            found = if hit { Some(stream.as_str()) } else { found };
        }
        if let Some(stream) = found {
            return Ok(stream.to_owned());
        }
        let name = key.expose();
        if !(self.allow_any_key || self.callback.is_some()) {
            return Err(Refusal::UnknownKey);
        }
        if !valid_stream_name(name) {
            return Err(Refusal::new(
                "the key is not a valid stream name ([A-Za-z0-9_-]{1,64})",
            ));
        }
        if self.reserved.contains(name) {
            return Err(Refusal::new(
                "the key is the name of a stream another key owns",
            ));
        }
        Ok(name.to_owned())
    }

    /// The whole decision for one publish: the key maps to a stream, then (when
    /// configured) the operator's callback agrees. A key that only the callback knows
    /// publishes under its own name.
    pub async fn authorize(
        &self,
        session: &SessionInfo,
        key: &StreamKey,
    ) -> Result<String, Refusal> {
        let stream = self.stream_for(key)?;
        if let Some(cb) = &self.callback {
            cb.ask(session, key, &stream).await?;
        }
        Ok(stream)
    }
}

impl Callback {
    async fn ask(
        &self,
        session: &SessionInfo,
        key: &StreamKey,
        stream: &str,
    ) -> Result<(), Refusal> {
        let body = serde_json::json!({
            "action": "publish",
            "protocol": session.protocol.as_str(),
            "key": key.expose(),
            "stream": stream,
            "app": session.app,
            "addr": session.peer.ip().to_string(),
            "session": session.id,
        });
        let request = http::Request::post(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("weir/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| Refusal::new(format!("on_publish request: {e}")))?;
        let call = async {
            let response = self.client.request(request).await?;
            let status = response.status();
            // Read (and drop) a bounded body so the connection can be reused.
            let _ = http_body_util::Limited::new(response.into_body(), 4096)
                .collect()
                .await;
            Ok::<_, hyper_util::client::legacy::Error>(status)
        };
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(status)) if status.is_success() => {
                debug!(%status, "on_publish allowed");
                Ok(())
            }
            Ok(Ok(status)) => Err(Refusal::new(format!("on_publish answered {status}"))),
            Ok(Err(e)) => {
                warn!(error = %e, "on_publish callback failed; refusing the publisher");
                Err(Refusal::new(format!("on_publish callback failed: {e}")))
            }
            Err(_) => {
                warn!(timeout = ?self.timeout, "on_publish callback did not answer in time; refusing the publisher");
                Err(Refusal::new("on_publish callback timed out"))
            }
        }
    }
}

/// The [`Auth`] in force; SIGHUP replaces it. Sessions that already passed keep going.
pub struct AuthHandle(std::sync::RwLock<std::sync::Arc<Auth>>);

impl AuthHandle {
    pub fn new(auth: Auth) -> Self {
        Self(std::sync::RwLock::new(std::sync::Arc::new(auth)))
    }

    pub fn get(&self) -> std::sync::Arc<Auth> {
        std::sync::Arc::clone(
            &self
                .0
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    pub fn set(&self, auth: Auth) {
        *self
            .0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = std::sync::Arc::new(auth);
    }
}

fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// Constant-time equality of two secrets of any length (a bearer token against the one
/// configured): both are hashed first, so neither the content nor the length of a wrong
/// guess shows in the timing.
pub fn secret_eq(given: &[u8], expected: &[u8]) -> bool {
    let (a, b): ([u8; 32], [u8; 32]) = (
        Sha256::digest(given).into(),
        Sha256::digest(expected).into(),
    );
    a.ct_eq(&b).into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::config::KeyConfig;

    fn config(keys: &[(&str, &str)], allow_any_key: Option<bool>) -> Config {
        let mut c = Config::default();
        c.ingest.keys = keys
            .iter()
            .map(|(k, s)| KeyConfig {
                key: (*k).to_owned(),
                stream: (*s).to_owned(),
            })
            .collect();
        c.ingest.allow_any_key = allow_any_key;
        c.validate().unwrap();
        c
    }

    fn key(k: &str) -> StreamKey {
        StreamKey::new(k)
    }

    #[test]
    fn a_stream_a_configured_key_owns_is_never_published_by_another_key() {
        // allow_any_key forced on next to configured keys: the hijack the issue found.
        let auth = Auth::new(&config(&[("s3cret-news", "news")], Some(true))).unwrap();
        assert_eq!(auth.stream_for(&key("s3cret-news")).unwrap(), "news");
        assert!(
            auth.stream_for(&key("news")).is_err(),
            "the public name is not a key"
        );
        assert!(
            auth.stream_for(&key("test")).is_err(),
            "the test source is reserved"
        );
        assert_eq!(auth.stream_for(&key("other")).unwrap(), "other");
        assert!(auth.stream_for(&key("../x")).is_err());
    }

    #[test]
    fn configuring_a_key_turns_any_key_off_by_default() {
        let open = Auth::new(&config(&[], None)).unwrap();
        assert_eq!(open.stream_for(&key("mine")).unwrap(), "mine");
        let closed = Auth::new(&config(&[("k-1234567890", "news")], None)).unwrap();
        assert_eq!(closed.stream_for(&key("mine")), Err(Refusal::UnknownKey));
        assert_eq!(closed.stream_for(&key("k-1234567890")).unwrap(), "news");
        assert_eq!(
            closed.stream_for(&key("k-123456789")),
            Err(Refusal::UnknownKey)
        );
    }

    #[test]
    fn two_keys_may_not_own_one_stream() {
        let mut c = Config::default();
        for k in ["a", "b"] {
            c.ingest.keys.push(KeyConfig {
                key: k.into(),
                stream: "news".into(),
            });
        }
        let err = c.validate().unwrap_err().to_string();
        assert!(err.contains("ingest.keys[1].stream"), "{err}");
    }

    #[test]
    fn secret_eq_compares_whole_secrets() {
        assert!(secret_eq(b"token-0123456789", b"token-0123456789"));
        assert!(!secret_eq(b"token-0123456789", b"token-012345678"));
        assert!(!secret_eq(b"", b"x"));
    }
}
