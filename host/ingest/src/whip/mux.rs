//! One UDP socket for every WebRTC session (so a firewall or a Kubernetes Service opens one
//! port): datagrams are routed to their session by the sender's address, and a sender not
//! seen before is routed by the ICE username in its STUN binding request (`ours:theirs`,
//! RFC 8445 7.2.2), whose first half is the ufrag weir gave that session's answer. Anything
//! else from an unknown address is dropped: a stranger's datagram reaches no session.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::BytesMut;
use rtc::peer_connection::RTCPeerConnection;
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use rtc::stun::attributes::ATTR_USERNAME;
use rtc::stun::message::Message;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tracing::debug;

/// A datagram for a session.
#[derive(Debug)]
pub(crate) struct Datagram {
    pub(crate) from: SocketAddr,
    pub(crate) at: Instant,
    pub(crate) data: BytesMut,
}

/// Sessions' routes: by ICE ufrag until a binding request arrives, then by address too.
#[derive(Default)]
pub(crate) struct Routes {
    inner: Mutex<RoutesInner>,
}

#[derive(Default)]
struct RoutesInner {
    by_ufrag: HashMap<String, mpsc::Sender<Datagram>>,
    by_addr: HashMap<SocketAddr, (String, mpsc::Sender<Datagram>)>,
}

impl Routes {
    pub(crate) fn add(&self, ufrag: &str, tx: mpsc::Sender<Datagram>) {
        self.lock().by_ufrag.insert(ufrag.to_owned(), tx);
    }

    /// A session's ufrag changed (an ICE restart): binding requests with the new one reach
    /// it, and the addresses it was reached from still do.
    pub(crate) fn rekey(&self, old: &str, new: &str) {
        let mut r = self.lock();
        if let Some(tx) = r.by_ufrag.remove(old) {
            r.by_ufrag.insert(new.to_owned(), tx);
        }
        for (u, _) in r.by_addr.values_mut() {
            if u == old {
                new.clone_into(u);
            }
        }
    }

    /// Forgets a session: its ufrag and every address it was reached from.
    pub(crate) fn remove(&self, ufrag: &str) {
        let mut r = self.lock();
        r.by_ufrag.remove(ufrag);
        r.by_addr.retain(|_, (u, _)| u != ufrag);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, RoutesInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The session a datagram from `from` goes to.
    fn route(&self, from: SocketAddr, data: &[u8]) -> Option<mpsc::Sender<Datagram>> {
        let mut r = self.lock();
        if let Some((_, tx)) = r.by_addr.get(&from) {
            return Some(tx.clone());
        }
        let ufrag = local_ufrag(data)?;
        let tx = r.by_ufrag.get(&ufrag)?.clone();
        r.by_addr.insert(from, (ufrag, tx.clone()));
        Some(tx)
    }
}

/// The local half of a STUN binding request's USERNAME (`local:remote`), if `data` is one.
pub(crate) fn local_ufrag(data: &[u8]) -> Option<String> {
    // RFC 7983: STUN's first byte is 0..=3; RFC 5389: a 20-byte header with the magic cookie.
    if data.len() < 20 || data[0] > 3 || data[4..8] != [0x21, 0x12, 0xa4, 0x42] {
        return None;
    }
    let mut m = Message::new();
    m.unmarshal_binary(data).ok()?;
    let user = m.get(ATTR_USERNAME).ok()?;
    let user = std::str::from_utf8(&user).ok()?;
    let (local, _) = user.split_once(':')?;
    (!local.is_empty()).then(|| local.to_owned())
}

/// Reads the socket and hands each datagram to its session, until the socket fails. A
/// session whose queue is full loses the datagram (as the network would), and nothing else
/// waits for it.
#[allow(clippy::disallowed_methods)] // the socket's reader stamps each datagram's arrival
pub(crate) async fn run(socket: Arc<UdpSocket>, routes: Arc<Routes>) {
    let mut buf = vec![0u8; 2048];
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                // ICMP port unreachable from a peer that went away shows up here on Linux.
                debug!(error = %e, "webrtc udp receive");
                continue;
            }
        };
        let data = &buf[..n];
        let Some(tx) = routes.route(from, data) else {
            continue;
        };
        let _ = tx.try_send(Datagram {
            from,
            at: Instant::now(),
            data: BytesMut::from(data),
        });
    }
}

/// Hands a routed datagram to a session's peer connection. One the stack cannot use (a bad
/// DTLS record, an SRTP packet that fails authentication) is dropped, as the network would
/// drop it; it does not end the session: what is fatal shows as the connection state.
pub(crate) fn read_into(pc: &mut RTCPeerConnection, local: SocketAddr, d: Datagram) {
    let msg = TaggedBytesMut {
        now: d.at,
        transport: TransportContext {
            local_addr: local,
            peer_addr: d.from,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        },
        message: d.data,
    };
    if let Err(e) = pc.handle_read(msg) {
        debug!(error = %e, from = %d.from, "webrtc datagram dropped");
    }
}

/// Sends what a session's peer connection has queued, through the shared socket.
pub(crate) async fn flush(pc: &mut RTCPeerConnection, socket: &UdpSocket) {
    while let Some(msg) = pc.poll_write() {
        if let Err(e) = socket.send_to(&msg.message, msg.transport.peer_addr).await {
            debug!(error = %e, to = %msg.transport.peer_addr, "webrtc udp send");
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::disallowed_methods)] // an epoch for the test
mod tests {
    use super::*;
    use rtc::stun::message::{TransactionId, BINDING_REQUEST};
    use rtc::stun::textattrs::TextAttribute;

    fn binding(user: &str) -> Vec<u8> {
        let mut m = Message::new();
        m.build(&[
            Box::new(BINDING_REQUEST),
            Box::new(TransactionId::new()),
            Box::new(TextAttribute::new(ATTR_USERNAME, user.to_owned())),
        ])
        .unwrap();
        m.raw
    }

    #[test]
    fn a_binding_request_names_its_session_and_then_the_address_does() {
        let routes = Routes::default();
        let (tx, mut rx) = mpsc::channel(4);
        routes.add("abcd", tx);
        let a: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let b: SocketAddr = "10.0.0.3:5000".parse().unwrap();
        // DTLS from an unknown address goes nowhere.
        assert!(routes.route(a, &[22, 254, 253, 0, 0]).is_none());
        assert!(routes.route(a, &binding("nope:xyz")).is_none());
        let got = routes.route(a, &binding("abcd:xyz")).unwrap();
        got.try_send(Datagram {
            from: a,
            at: Instant::now(),
            data: BytesMut::new(),
        })
        .unwrap();
        assert!(rx.try_recv().is_ok());
        // Now the address alone routes, and only that address.
        assert!(routes.route(a, &[22, 254, 253, 0, 0]).is_some());
        assert!(routes.route(b, &[22, 254, 253, 0, 0]).is_none());
        // An ICE restart: the new ufrag routes, the old one no longer does, and the address
        // still does.
        routes.rekey("abcd", "efgh");
        assert!(routes.route(a, &[22, 254, 253, 0, 0]).is_some());
        assert!(routes.route(b, &binding("abcd:xyz")).is_none());
        assert!(routes.route(b, &binding("efgh:xyz")).is_some());
        routes.remove("efgh");
        assert!(routes.route(a, &[22, 254, 253, 0, 0]).is_none());
        assert!(routes.route(b, &[22, 254, 253, 0, 0]).is_none());
        assert!(routes.route(a, &binding("efgh:xyz")).is_none());
    }

    #[test]
    fn garbage_is_not_a_binding_request() {
        assert_eq!(local_ufrag(&[]), None);
        assert_eq!(local_ufrag(&[0; 20]), None);
        let mut b = binding("abcd:xyz");
        assert_eq!(local_ufrag(&b).as_deref(), Some("abcd"));
        b.truncate(b.len() - 3);
        assert_eq!(local_ufrag(&b), None);
        assert_eq!(local_ufrag(&binding(":xyz")), None);
    }
}
