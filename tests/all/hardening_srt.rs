//! Issue 12, SRT poison: hand-made SRT packets that srt-protocol 0.4.4 (unpatched) panics on
//! in the listener task that every SRT session shares (handshake extension types 0, 6, 7
//! and 8, empty string extensions, keying material where none was announced), and the
//! PeerError / CongestionWarning control packets it has `todo!()` for, sent at 10 per second
//! from several source ports while a real ffmpeg publishes over SRT. Nothing may end: not
//! the ffmpeg session, not the listener, not a single part of the stream
//! (docs/design/008-srt-protocol-patches.md).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use weir_e2e::*;

/// SRT's packet header (RFC draft-sharabayko-srt, 3.): four 32-bit big-endian words.
///
/// ```text
/// word 0: F (1 = control) | control type (15 bits) | subtype (16 bits; the extension type of 0x7FFF)
/// word 1: type-specific information (PeerError: the error code)
/// word 2: timestamp (µs)
/// word 3: destination socket id (0 for a handshake to a listener)
/// ```
fn control(kind: u16, subtype: u16, info: u32, dest: u32, body: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(16 + body.len());
    p.extend_from_slice(&(0x8000 | kind).to_be_bytes());
    p.extend_from_slice(&subtype.to_be_bytes());
    p.extend_from_slice(&info.to_be_bytes());
    p.extend_from_slice(&0u32.to_be_bytes());
    p.extend_from_slice(&dest.to_be_bytes());
    p.extend_from_slice(body);
    p
}

const HANDSHAKE: u16 = 0x0000;
const CONGESTION_WARNING: u16 = 0x0004;
const PEER_ERROR: u16 = 0x0008;
const INDUCTION: i32 = 1;
const CONCLUSION: i32 = -1;
/// Extension flags of a conclusion (the low half of CIF word 1): HSREQ, KMREQ, CONFIG.
const EXT_HS: u16 = 1;
const EXT_KM: u16 = 2;
const EXT_CONFIG: u16 = 4;

/// A handshake's control information field (48 bytes), then its extensions.
///
/// ```text
/// version (5) | key size / 8 (16 bits) + extension flags (16 bits) | initial sequence number
/// | MTU | flow window | handshake type (1 induction, -1 conclusion) | SRT socket id
/// | SYN cookie | peer IP (16 bytes)
/// ```
///
/// Each extension is a 16-bit type, a 16-bit length in 32-bit words, and that many words.
fn handshake(
    shake: i32,
    key_size: u16,
    flags: u16,
    cookie: i32,
    exts: &[(u16, Vec<u8>)],
) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&5u32.to_be_bytes());
    b.extend_from_slice(&(key_size >> 3).to_be_bytes());
    // An induction carries SRT's magic code where a conclusion has its extension flags.
    let flags = if shake == INDUCTION { 0x4A17 } else { flags };
    b.extend_from_slice(&flags.to_be_bytes());
    b.extend_from_slice(&1000u32.to_be_bytes());
    b.extend_from_slice(&1500u32.to_be_bytes());
    b.extend_from_slice(&8192u32.to_be_bytes());
    b.extend_from_slice(&shake.to_be_bytes());
    b.extend_from_slice(&0x0bad_cafeu32.to_be_bytes());
    b.extend_from_slice(&cookie.to_be_bytes());
    b.extend_from_slice(&[127, 0, 0, 1]);
    b.extend_from_slice(&[0; 12]);
    for (kind, body) in exts {
        assert_eq!(body.len() % 4, 0);
        b.extend_from_slice(&kind.to_be_bytes());
        b.extend_from_slice(&((body.len() / 4) as u16).to_be_bytes());
        b.extend_from_slice(body);
    }
    control(HANDSHAKE, 0, 0, 0, &b)
}

/// A string extension (stream id 5, congestion controller 6, packet filter 7): 32-bit words
/// with their bytes reversed, the last one zero-padded.
fn srt_string(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for word in s.as_bytes().chunks(4) {
        let mut w = [0u8; 4];
        w[..word.len()].copy_from_slice(word);
        w.reverse();
        out.extend_from_slice(&w);
    }
    out
}

/// HSREQ (extension 1): SRT version 1.4.1, flags TSBPDSND|TSBPDRCV|HAICRYPT|REXMITFLG,
/// 120 ms latency both ways.
fn hsreq() -> (u16, Vec<u8>) {
    let mut b = Vec::new();
    b.extend_from_slice(&0x0001_0401u32.to_be_bytes());
    b.extend_from_slice(&0x27u32.to_be_bytes());
    b.extend_from_slice(&((120u32 << 16) | 120).to_be_bytes());
    (1, b)
}

/// KMREQ (extension 3): keying material for AES-128 with one (even) key, all zero.
fn kmreq() -> (u16, Vec<u8>) {
    let mut b = vec![
        0x12, // version 1, packet type 2 (keying material)
        0x20, 0x29, // signature "HAI"
        0x01, // key flags: even
    ];
    b.extend_from_slice(&0u32.to_be_bytes()); // KEKI
    b.extend_from_slice(&[2, 0, 2, 0]); // cipher AES-CTR, no auth, SRT encapsulation
    b.extend_from_slice(&[0, 0, 4, 4]); // salt 16 bytes, key 16 bytes
    b.extend_from_slice(&[0x5a; 16]); // salt
    b.extend_from_slice(&[0xa5; 24]); // wrapped key + 8 bytes of wrap IV
    (3, b)
}

/// One poisoned datagram of each kind, in the order they are sent.
fn poisons(listener_sockid: u32) -> Vec<(&'static str, Vec<u8>)> {
    let conclusion =
        |exts: &[(u16, Vec<u8>)]| handshake(CONCLUSION, 0, EXT_HS | EXT_CONFIG, 0x1234_5678, exts);
    vec![
        // Type 0 is SRT_CMD_REJECT: srt-protocol parses it, then `unimplemented!`.
        ("ext type 0", conclusion(&[hsreq(), (0, vec![0; 4])])),
        // The congestion controller ("live"): parsed, then `unimplemented!`.
        (
            "ext type 6",
            conclusion(&[hsreq(), (6, srt_string("live"))]),
        ),
        // A packet filter ("fec" configuration): parsed, then `unimplemented!`.
        (
            "ext type 7",
            conclusion(&[hsreq(), (7, srt_string("cols:4,rows:2"))]),
        ),
        // Empty string extensions: `get_u32_le` on an empty buffer (an extension that ends
        // the datagram is never read, so another one follows).
        ("empty ext type 5", conclusion(&[(5, Vec::new()), hsreq()])),
        ("empty ext type 7", conclusion(&[(7, Vec::new()), hsreq()])),
        // The group extension, empty: `get_u8` on an empty buffer.
        ("empty ext type 8", conclusion(&[(8, Vec::new()), hsreq()])),
        // An unknown extension, and one longer than the datagram (errors even unpatched).
        ("ext type 77", conclusion(&[(77, vec![0; 8])])),
        ("truncated ext", {
            let mut p = conclusion(&[(5, srt_string("live/x"))]);
            let n = p.len();
            p[n - 10..n - 8].copy_from_slice(&200u16.to_be_bytes());
            p
        }),
        // Control packets srt-protocol's connection has `todo!()` for, addressed to the
        // listener's socket id (which every one of its connections shares).
        (
            "PeerError",
            control(PEER_ERROR, 0, 4000, listener_sockid, &[0; 4]),
        ),
        (
            "CongestionWarning",
            control(CONGESTION_WARNING, 0, 0, listener_sockid, &[0; 4]),
        ),
        // A control type that does not exist, and an SRT user-defined (0x7FFF) one.
        (
            "control type 0x0123",
            control(0x0123, 0, 0, listener_sockid, &[0; 4]),
        ),
        (
            "SRT ext control 0",
            control(0x7FFF, 0, 0, listener_sockid, &[]),
        ),
    ]
}

/// Asks the listener for a cookie (an induction), as a caller does; returns the cookie and
/// the listener's socket id.
fn induction(udp: &UdpSocket, to: SocketAddr) -> Option<(i32, u32)> {
    udp.send_to(&handshake(INDUCTION, 0, 0, 0, &[]), to).ok()?;
    let mut buf = [0u8; 1500];
    let (n, _) = udp.recv_from(&mut buf).ok()?;
    if n < 64 {
        return None;
    }
    let word = |i: usize| {
        let at = 16 + 4 * i;
        u32::from_be_bytes(buf[at..at + 4].try_into().unwrap())
    };
    Some((word(7) as i32, word(6)))
}

/// The whole handshake of a caller that announces no encryption but carries keying
/// material: srt-protocol's `unimplemented!("expected no secrets")` once weir accepts it
/// without a key (libsrt never sends this).
fn secret_without_key_size(to: SocketAddr) {
    let Ok(udp) = UdpSocket::bind("127.0.0.1:0") else {
        return;
    };
    udp.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    if let Some((cookie, _)) = induction(&udp, to) {
        let p = handshake(
            CONCLUSION,
            0,
            EXT_HS | EXT_KM | EXT_CONFIG,
            cookie,
            &[hsreq(), kmreq(), (5, srt_string("live/secret"))],
        );
        let _ = udp.send_to(&p, to);
    }
}

/// Part and segment numbers in one media playlist, and whether it lists anything missing.
fn parts_and_gaps(text: &str) -> (Vec<u64>, bool) {
    let parts = text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-PART:"))
        .filter_map(|l| l.split("URI=\"part").nth(1))
        .filter_map(|r| r.split('.').next()?.parse().ok())
        .collect();
    (parts, text.contains("GAP"))
}

#[test]
fn srt_poison_ends_no_session_and_loses_no_part() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    let mut weir = Weir::start(&["--no-test-source"]).unwrap();
    let srt = weir.srt.unwrap();
    let mut ffmpeg = ffmpeg_publish_preset(
        &weir.srt_url("live/poison", None),
        60,
        "320x240",
        30,
        "ultrafast",
    )
    .unwrap();
    let playlist = weir.url("/live/poison/src/index.m3u8");
    wait_for_200(
        &weir.url("/live/poison/master.m3u8"),
        Duration::from_secs(20),
    )
    .unwrap();
    wait_for_200(&playlist, Duration::from_secs(10)).unwrap();
    std::thread::sleep(Duration::from_secs(2));

    let pool: Vec<UdpSocket> = (0..4)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    pool[0]
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let (_, sockid) = induction(&pool[0], srt).expect("the listener answers an induction");
    let poisons = poisons(sockid);

    // 10 datagrams a second for 15 s, round-robin over the pool's source ports; every
    // round also runs one whole handshake with keying material but no key size.
    let stop = Arc::new(AtomicBool::new(false));
    let poisoner = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let start = Instant::now();
            let mut sent = 0usize;
            while start.elapsed() < Duration::from_secs(15) && !stop.load(Ordering::Relaxed) {
                let (_, p) = &poisons[sent % poisons.len()];
                let _ = pool[sent % pool.len()].send_to(p, srt);
                if sent.is_multiple_of(poisons.len()) {
                    secret_without_key_size(srt);
                }
                sent += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            sent
        })
    };

    // Every part listed while the poison flows, and a little after.
    let mut parts = std::collections::BTreeSet::new();
    let mut gaps = Vec::new();
    let window = Instant::now();
    while window.elapsed() < Duration::from_secs(18) {
        let (code, text) = curl(&playlist, &[]).unwrap();
        assert_eq!(code, 200, "the playlist must stay up");
        let text = String::from_utf8(text).unwrap();
        let (listed, gap) = parts_and_gaps(&text);
        if gap {
            gaps.push(text);
        }
        parts.extend(listed);
        std::thread::sleep(Duration::from_millis(400));
    }
    stop.store(true, Ordering::Relaxed);
    let sent = poisoner.join().unwrap();

    assert!(ffmpeg.is_running(), "ffmpeg's SRT session ended");
    assert!(gaps.is_empty(), "a playlist listed a gap:\n{}", gaps[0]);
    let (first, last) = (*parts.first().unwrap(), *parts.last().unwrap());
    let missing: Vec<u64> = (first..=last).filter(|n| !parts.contains(n)).collect();
    assert!(
        missing.is_empty() && last - first >= 30,
        "parts {first}..={last}, missing {missing:?}"
    );
    let log = weir.log().join("\n");
    for bad in [
        "panicked",
        "SRT listener task stopped",
        "listening again",
        "caller closed",
        "closed: ",
    ] {
        assert!(!log.contains(bad), "weir logged {bad:?}:\n{log}");
    }
    // The caller with keying material and no key size was refused, each time.
    assert!(
        log.contains("live/secret") || log.contains("handshake failed") || log.contains("refused"),
        "the keyed caller without a key size left no trace:\n{log}"
    );
    // About 10 a second (fewer if the listener stops answering inductions).
    assert!(sent >= 140, "only {sent} poisoned datagrams were sent");
    drop(ffmpeg);
}
