//! The publish contract every ingest protocol shares: who is asking ([`SessionInfo`]),
//! whether and where it may publish ([`PublishHandler`]), why not ([`Refusal`]), and the
//! per-address connection cap ([`PerIpLimit`]).
//!
//! A refused publisher learns only [`REFUSED`] (or [`OVERLOADED`]): an unknown key, a key
//! that is busy and a key the operator's callback turned down read the same on the wire, so
//! a stranger cannot probe which keys exist or are live. The precise reason goes to the log.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::mpsc;
use weir_media::{MediaEvent, StreamKey};

/// What a refused publisher is told, whatever the reason (unknown key, busy key, callback).
pub const REFUSED: &str = "publish refused";
/// What a publisher is told when the server is at a configured limit.
pub const OVERLOADED: &str = "server busy";

/// The ingest protocol a session came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    Rtmp,
    Srt,
    Whip,
}

impl Protocol {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rtmp => "rtmp",
            Self::Srt => "srt",
            Self::Whip => "whip",
        }
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who is asking to publish.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// Unique per listener, for correlating logs.
    pub id: u64,
    pub peer: SocketAddr,
    /// The application it asked for (always the configured one once accepted).
    pub app: String,
    pub protocol: Protocol,
}

/// Why a publish was refused. Its text goes to the log; the publisher is told only
/// [`Refusal::public_text`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The key is not one this server publishes.
    UnknownKey,
    /// A configured limit (streams, publishers per address) is reached.
    Overloaded(String),
    /// Refused for another reason (the operator's callback, a reserved name…).
    Other(String),
}

impl Refusal {
    pub fn new(reason: impl Into<String>) -> Self {
        Self::Other(reason.into())
    }

    /// What the publisher is told: nothing that tells an unknown key from a busy one.
    pub fn public_text(&self) -> &'static str {
        match self {
            Self::Overloaded(_) => OVERLOADED,
            Self::UnknownKey | Self::Other(_) => REFUSED,
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UnknownKey => f.write_str("unknown stream key"),
            Self::Overloaded(reason) | Self::Other(reason) => f.write_str(reason),
        }
    }
}

/// What [`PublishHandler::authorize`] returns: it may wait (an HTTP callback), bounded by
/// the handler's own timeout.
pub type AuthorizeFuture<'a> = Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send + 'a>>;

/// Decides whether and where a published stream goes. Shared by every protocol's sessions.
pub trait PublishHandler: Send + Sync + 'static {
    /// Whether `key` may publish at all (stream-key auth, the operator's callback). Called
    /// before the one-publisher-per-key check, so that a refused publisher never evicts an
    /// idle one. It may wait; it must finish within its own timeout.
    fn authorize<'a>(
        &'a self,
        session: &'a SessionInfo,
        key: &'a StreamKey,
    ) -> AuthorizeFuture<'a> {
        let _ = (session, key);
        Box::pin(std::future::ready(Ok(())))
    }

    /// The key is authorized and free (or taken over from an idle publisher by the same
    /// key): return where its media goes. The session drops the `Sender` when it ends. On a
    /// takeover the old session's `Sender` may still be alive for a moment after this
    /// returns.
    fn publish(
        &self,
        session: &SessionInfo,
        key: &StreamKey,
    ) -> Result<mpsc::Sender<MediaEvent>, Refusal>;

    /// A session that [`publish`](Self::publish) answered has ended: `error` says why when
    /// it failed (a protocol error, a stalled pipeline, a takeover), `None` when the
    /// publisher finished or went away. For the operator's view of the stream; the session
    /// logs its end itself.
    fn ended(&self, session: &SessionInfo, key: &StreamKey, error: Option<&str>) {
        let _ = (session, key, error);
    }
}

/// Caps the connections (or sessions) one address holds at once. Clone it to share the
/// count between listeners.
#[derive(Clone, Debug)]
pub struct PerIpLimit {
    max: usize,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl PerIpLimit {
    /// `max` connections per address; 0 means no limit.
    pub fn new(max: usize) -> Self {
        Self {
            max,
            open: Arc::default(),
        }
    }

    /// Counts one more connection from `ip`, or `None` when `ip` is at the limit. The count
    /// drops when the returned guard does.
    pub fn try_acquire(&self, ip: IpAddr) -> Option<PerIpGuard> {
        let ip = canonical(ip);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let n = open.entry(ip).or_insert(0);
        if self.max != 0 && *n >= self.max {
            return None;
        }
        *n += 1;
        Some(PerIpGuard {
            ip,
            open: Arc::clone(&self.open),
        })
    }

    /// Connections open from `ip` now.
    pub fn open(&self, ip: IpAddr) -> usize {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&canonical(ip)).copied().unwrap_or(0)
    }
}

/// An IPv4 peer seen through a dual-stack socket counts as its IPv4 address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One counted connection; see [`PerIpLimit::try_acquire`].
#[derive(Debug)]
pub struct PerIpGuard {
    ip: IpAddr,
    open: Arc<Mutex<HashMap<IpAddr, usize>>>,
}

impl Drop for PerIpGuard {
    fn drop(&mut self) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_limit_counts_each_address_and_frees_on_drop() {
        let limit = PerIpLimit::new(2);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let one = limit.try_acquire(a).unwrap();
        let two = limit.try_acquire(mapped).unwrap();
        assert!(
            limit.try_acquire(a).is_none(),
            "a v4-mapped peer is the same address"
        );
        let other = limit.try_acquire(b).unwrap();
        drop(one);
        let three = limit.try_acquire(a).unwrap();
        drop((two, three, other));
        assert_eq!(limit.open(a), 0);
        assert!(
            limit.open.lock().unwrap().is_empty(),
            "no entry left behind"
        );
        let unlimited = PerIpLimit::new(0);
        let held: Vec<_> = (0..100)
            .map(|_| unlimited.try_acquire(a).unwrap())
            .collect();
        assert_eq!(unlimited.open(a), 100);
        drop(held);
    }

    #[test]
    fn unknown_and_busy_read_the_same_to_the_publisher() {
        assert_eq!(Refusal::UnknownKey.public_text(), REFUSED);
        assert_eq!(Refusal::new("callback said 403").public_text(), REFUSED);
        assert_eq!(
            Refusal::Overloaded("max_streams".into()).public_text(),
            OVERLOADED
        );
    }
}
