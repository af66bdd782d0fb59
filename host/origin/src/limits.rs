//! Connection admission: the global and per-address caps, shared by every listener of one
//! [`crate::Origin`], and the per-connection count of requests in flight that the idle
//! timeout watches.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use crate::stats::Refused;

/// Whom a per-address cap counts: an IPv4 address, or an IPv6 /64 (one subscriber's prefix;
/// counting single IPv6 addresses would let one host use 2^64 of them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ClientKey(IpAddr);

impl ClientKey {
    pub fn of(ip: IpAddr) -> Self {
        match ip.to_canonical() {
            IpAddr::V4(v4) => Self(IpAddr::V4(v4)),
            IpAddr::V6(v6) => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                Self(IpAddr::V6(Ipv6Addr::from(prefix)))
            }
        }
    }
}

#[derive(Debug, Default)]
struct Open {
    total: usize,
    by_client: HashMap<ClientKey, usize>,
}

/// Open connections, in total and per client. One lock, taken once at accept and once at
/// close, never across an await.
#[derive(Debug, Default)]
pub(crate) struct ConnectionTable {
    open: Mutex<Open>,
}

impl ConnectionTable {
    /// Takes a slot for a connection from `ip`, or says which cap is full. The slot is given
    /// back when the returned guard drops.
    pub fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        max_total: usize,
        max_per_client: usize,
    ) -> Result<ConnectionSlot, Refused> {
        let client = ClientKey::of(ip);
        let mut open = self.lock();
        if open.total >= max_total {
            return Err(Refused::Global);
        }
        let mine = open.by_client.get(&client).copied().unwrap_or(0);
        if max_per_client != 0 && mine >= max_per_client {
            return Err(Refused::PerIp);
        }
        open.total += 1;
        open.by_client.insert(client, mine + 1);
        Ok(ConnectionSlot {
            table: Arc::clone(self),
            client,
        })
    }

    /// Connections open now.
    pub fn total(&self) -> usize {
        self.lock().total
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        // The counts stay consistent even if a holder panicked: every update is one step.
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// One admitted connection; dropping it frees the slot.
#[derive(Debug)]
pub(crate) struct ConnectionSlot {
    table: Arc<ConnectionTable>,
    client: ClientKey,
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        let mut open = self.table.lock();
        open.total = open.total.saturating_sub(1);
        if let Some(n) = open.by_client.get_mut(&self.client) {
            *n -= 1;
            if *n == 0 {
                open.by_client.remove(&self.client);
            }
        }
    }
}

/// Requests in flight on one connection, from the moment hyper hands one to the service
/// until its response body is finished or dropped, and when the last one ended. The
/// connection's driver reads it when its idle timer fires; counting wakes nobody, so a
/// request costs two atomic operations here rather than two wake-ups of the connection's
/// task (which re-polled hyper's connection and re-armed a timer each time).
#[derive(Clone, Debug)]
pub(crate) struct InFlight(Arc<Counts>);

#[derive(Debug)]
struct Counts {
    n: AtomicUsize,
    /// When the count last fell to zero, in ms after `base`.
    idle_at_ms: AtomicU64,
    base: Instant,
}

impl InFlight {
    #[allow(clippy::disallowed_methods)] // the connection's own idle clock, read by its driver
    pub fn new() -> Self {
        Self(Arc::new(Counts {
            n: AtomicUsize::new(0),
            idle_at_ms: AtomicU64::new(0),
            base: Instant::now(),
        }))
    }

    /// Counts one request until the guard drops.
    pub fn begin(&self) -> RequestGuard {
        self.0.n.fetch_add(1, Ordering::AcqRel);
        RequestGuard(Arc::clone(&self.0))
    }

    /// Requests in flight now.
    pub fn count(&self) -> usize {
        self.0.n.load(Ordering::Acquire)
    }

    /// When the connection last became idle (its start if no request ever ended).
    pub fn idle_since(&self) -> Instant {
        self.0.base + Duration::from_millis(self.0.idle_at_ms.load(Ordering::Acquire))
    }
}

#[derive(Debug)]
pub(crate) struct RequestGuard(Arc<Counts>);

impl Drop for RequestGuard {
    #[allow(clippy::disallowed_methods)] // see `InFlight::new`
    fn drop(&mut self) {
        // Stamped before the count falls, so a driver that sees zero sees this end too.
        let ms = u64::try_from(self.0.base.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.0.idle_at_ms.fetch_max(ms, Ordering::AcqRel);
        self.0.n.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn caps_per_client_and_in_total() {
        let table = Arc::new(ConnectionTable::default());
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let a1 = table.admit(a, 3, 2).unwrap();
        let _a2 = table.admit(a, 3, 2).unwrap();
        assert_eq!(table.admit(a, 3, 2).unwrap_err(), Refused::PerIp);
        let _b1 = table.admit(b, 3, 2).unwrap();
        assert_eq!(table.admit(b, 3, 2).unwrap_err(), Refused::Global);
        assert_eq!(table.total(), 3);
        drop(a1);
        assert_eq!(table.total(), 2);
        let _a3 = table.admit(a, 3, 2).unwrap();
        // 0: no per-client limit.
        let table = Arc::new(ConnectionTable::default());
        let slots: Vec<_> = (0..10).map(|_| table.admit(a, 10, 0).unwrap()).collect();
        assert_eq!(table.total(), slots.len());
        drop(slots);
        assert_eq!(table.total(), 0);
        assert!(
            table.lock().by_client.is_empty(),
            "no entry outlives its slots"
        );
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_v4_as_v4() {
        let one: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let other_host: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other_net: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(ClientKey::of(one), ClientKey::of(other_host));
        assert_ne!(ClientKey::of(one), ClientKey::of(other_net));
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        assert_eq!(ClientKey::of(mapped), ClientKey::of(v4));
    }

    #[test]
    fn in_flight_counts_guards() {
        let in_flight = InFlight::new();
        let started = in_flight.idle_since();
        let a = in_flight.begin();
        let b = in_flight.begin();
        assert_eq!(in_flight.count(), 2);
        drop(a);
        assert_eq!(in_flight.count(), 1);
        std::thread::sleep(Duration::from_millis(5));
        drop(b);
        assert_eq!(in_flight.count(), 0);
        assert!(in_flight.idle_since() >= started + Duration::from_millis(5));
    }
}
