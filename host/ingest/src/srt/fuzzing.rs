//! Entry points for the fuzz targets in `fuzz/` (`srt_streamid`, `srt_packet`): weir's
//! stream id parser, and srt-protocol (the vendored, patched copy; docs/design/008) as the
//! listener task drives it, from arbitrary datagrams.

use std::collections::HashMap;
use std::io::Cursor;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use srt_protocol::connection::DuplexConnection;
use srt_protocol::listener::{
    AccessControlResponse, Action, Input, MultiplexListener, ResultOf, SessionId,
};
use srt_protocol::options::KeySize;
use srt_protocol::packet::{
    ControlPacket, ControlTypes, Packet, RejectReason, ServerRejectReason, ShakeType,
};
use srt_protocol::settings::{ConnInitSettings, KeySettings};

/// Parses `data` as a stream id and checks what the listener relies on: a parsed key is
/// never empty and is part of the stream id as sent; an application has no `/`.
pub fn stream_id(data: &[u8]) {
    let Ok(id) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(request) = super::streamid::parse(Some(id)) {
        assert!(!request.key.is_empty(), "empty key from {id:?}");
        assert!(id.contains(&request.key), "key not in {id:?}");
        if let Some(app) = &request.app {
            assert!(
                !app.is_empty() && !app.contains('/'),
                "app {app:?} from {id:?}"
            );
        }
    }
    let _ = super::streamid::parse(None);
}

/// Datagrams from `data` fed to srt-protocol's listener state machine exactly as srt-tokio's
/// listener task feeds it, with every connection it opens driven like a session's task.
///
/// `data` is a list of datagrams, each a control byte then a big-endian `u16` length and
/// that many bytes. The control byte picks the source address (two callers), how long
/// passes before the datagram (0 to 127 ms), and how a pending access request is answered
/// (accept plain, accept with AES-128, refuse). Every datagram is parsed (and what parses
/// is serialized back); everything the listener or a connection sends is serialized. A
/// conclusion gets the cookie of the listener's last induction answer, so that the fuzzer
/// reaches the access request and the connections behind it.
#[allow(clippy::disallowed_methods)] // the fuzz driver: its virtual clock starts at one real instant and moves only by hand
pub fn packets(data: &[u8]) {
    let start = Instant::now();
    let mut now = start;
    let local: SocketAddr = ([127, 0, 0, 1], 4000).into();
    let mut listener = MultiplexListener::new(now, local, ConnInitSettings::default());
    let mut connections: HashMap<SessionId, DuplexConnection> = HashMap::new();
    let mut cookie = None;
    let mut rest = data;
    while let [control, hi, lo, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (datagram, next) = tail.split_at(len);
        rest = next;
        now += Duration::from_millis(u64::from(control & 0x7f));
        let from: SocketAddr = ([127, 0, 0, 1], 5000 + u16::from(control >> 7)).into();
        let Ok(mut packet) = Packet::parse(&mut Cursor::new(datagram), false) else {
            continue;
        };
        serialize(&packet);
        if let (Some(c), Some(hs)) = (cookie, handshake(&mut packet)) {
            if hs.shake_type == ShakeType::Conclusion {
                hs.syn_cookie = c;
            }
        }
        let answer = || match control % 3 {
            0 => AccessControlResponse::Accepted(None),
            1 => AccessControlResponse::Accepted(Some(KeySettings {
                key_size: KeySize::AES128,
                passphrase: "0123456789abcdef".into(),
            })),
            _ => {
                AccessControlResponse::Rejected(RejectReason::Server(ServerRejectReason::Forbidden))
            }
        };
        let mut input = Input::Packet(Ok((packet, from)));
        // Each action's result is the next input, as in srt-tokio's `run_loop`; a bound
        // keeps a state machine that never settles from hanging the fuzzer (it would show
        // as a timeout).
        for _ in 0..64 {
            let action = listener.handle_input(now, input);
            input = match action {
                Action::WaitForInput | Action::Close => break,
                Action::SendPacket((mut p, to)) => {
                    serialize(&p);
                    cookie = handshake(&mut p).map(|hs| hs.syn_cookie).or(cookie);
                    Input::Success(ResultOf::SendPacket(to))
                }
                Action::RequestAccess(id, _) => Input::AccessResponse(Some((id, answer()))),
                Action::RejectConnection(id, p) => {
                    if let Some((p, _)) = p {
                        serialize(&p);
                    }
                    Input::Success(ResultOf::RejectConnection(id))
                }
                Action::OpenConnection(id, opened) => {
                    let (p, connection) = *opened;
                    if let Some((p, _)) = p {
                        serialize(&p);
                    }
                    connections.insert(id, DuplexConnection::new(connection));
                    Input::Success(ResultOf::OpenConnection(id))
                }
                Action::DelegatePacket(id, p) => {
                    if let Some(c) = connections.get_mut(&id) {
                        c.handle_packet_input(now, Ok(p));
                    }
                    Input::Success(ResultOf::DelegatePacket(id))
                }
                Action::DropConnection(id) => {
                    connections.remove(&id);
                    Input::Success(ResultOf::DropConnection(id))
                }
                Action::UpdateStatistics(_) => Input::Success(ResultOf::UpdateStatistics),
            };
        }
        for c in connections.values_mut() {
            let _ = c.check_timers(now);
            for _ in 0..64 {
                let Some((p, _)) = c.next_packet(now) else {
                    break;
                };
                serialize(&p);
            }
            for _ in 0..64 {
                if c.next_data(now).is_none() {
                    break;
                }
            }
        }
    }
}

fn handshake(p: &mut Packet) -> Option<&mut srt_protocol::packet::HandshakeControlInfo> {
    match p {
        Packet::Control(ControlPacket {
            control_type: ControlTypes::Handshake(hs),
            ..
        }) => Some(hs),
        _ => None,
    }
}

fn serialize(p: &Packet) {
    let mut out = Vec::new();
    p.serialize(&mut out);
    let _ = p.wire_size();
}
