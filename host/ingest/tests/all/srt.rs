//! The SRT listener against real libsrt callers (ffmpeg), srt-tokio callers and hostile
//! datagrams. Every refusal is checked to happen at the handshake, and every hostile test
//! checks that the listener still accepts a good caller afterwards.

use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::SinkExt;
use srt_tokio::SrtSocket;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::{mpsc, oneshot};
use weir_ingest::srt::{bind_srt, serve_srt, SrtSettings};
use weir_ingest::{ActiveKeys, PublishHandler, Refusal, RtmpSettings, SessionInfo};
use weir_media::{Codec, MediaEvent, StreamKey};

use crate::support::{collect, ffmpeg, init_tracing, read_data, split, Publisher};

const PASSPHRASE: &str = "0123456789abcdef";

/// Hands every accepted publish to the test; refuses the key `deny` as unknown.
struct Handler {
    publishes: mpsc::UnboundedSender<(StreamKey, SessionInfo, mpsc::Receiver<MediaEvent>)>,
    deny: Option<&'static str>,
    capacity: usize,
}

impl PublishHandler for Handler {
    fn authorize(&self, _: &SessionInfo, key: &StreamKey) -> Result<(), Refusal> {
        match self.deny {
            Some(bad) if key.expose() == bad => Err(Refusal::UnknownKey),
            _ => Ok(()),
        }
    }

    fn publish(
        &self,
        info: &SessionInfo,
        key: &StreamKey,
    ) -> Result<mpsc::Sender<MediaEvent>, Refusal> {
        let (tx, rx) = mpsc::channel(self.capacity);
        self.publishes
            .send((key.clone(), info.clone(), rx))
            .map_err(|_| Refusal::new("test over"))?;
        Ok(tx)
    }
}

struct SrtServer {
    addr: SocketAddr,
    handler: Arc<Handler>,
    publishes: mpsc::UnboundedReceiver<(StreamKey, SessionInfo, mpsc::Receiver<MediaEvent>)>,
    keys: ActiveKeys,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<weir_ingest::Result<()>>,
}

impl SrtServer {
    async fn start(settings: SrtSettings) -> Self {
        Self::start_with(settings, Some("unknown"), 4096).await
    }

    async fn start_with(
        settings: SrtSettings,
        deny: Option<&'static str>,
        capacity: usize,
    ) -> Self {
        init_tracing();
        let socket = bind_srt("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let addr = socket.local_addr().unwrap();
        assert_ne!(addr.port(), 0);
        let (ptx, publishes) = mpsc::unbounded_channel();
        let handler = Arc::new(Handler {
            publishes: ptx,
            deny,
            capacity,
        });
        let keys = ActiveKeys::new(Duration::from_secs(2));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve_srt(
            socket,
            settings,
            Arc::clone(&handler) as Arc<dyn PublishHandler>,
            keys.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        Self {
            addr,
            handler,
            publishes,
            keys,
            stop: Some(stop),
            task,
        }
    }

    fn url(&self, query: &str) -> String {
        format!("srt://{}?{query}", self.addr)
    }

    async fn next_publish(&mut self) -> (StreamKey, SessionInfo, mpsc::Receiver<MediaEvent>) {
        tokio::time::timeout(Duration::from_secs(10), self.publishes.recv())
            .await
            .expect("no publish within 10 s")
            .expect("server gone")
    }

    /// Asserts that no publish reached the handler.
    fn assert_no_publish(&mut self) {
        if let Ok((key, _, _)) = self.publishes.try_recv() {
            panic!("unexpected publish of {key}");
        }
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("server did not shut down")
            .unwrap()
            .unwrap();
    }
}

/// `ffmpeg … -f mpegts URL`: `seconds` of 320x240 H.264 at 30 fps with 48 kHz AAC, in real time.
fn ffmpeg_srt(url: &str, seconds: u32) -> tokio::process::Child {
    tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-nostdin", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args(["-c:v", "libx264", "-tune", "zerolatency", "-g", "30"])
        .args(["-c:a", "aac", "-f", "mpegts", url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ffmpeg")
}

/// Waits for a caller that must be refused: it exits non-zero, quickly.
async fn assert_refused(child: tokio::process::Child, what: &str) -> String {
    let started = Instant::now();
    let out = tokio::time::timeout(Duration::from_secs(8), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what}: ffmpeg still running after 8 s"))
        .unwrap();
    assert!(!out.status.success(), "{what}: ffmpeg succeeded");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    eprintln!(
        "{what}: refused after {:?}: {}",
        started.elapsed(),
        stderr.trim()
    );
    stderr
}

async fn assert_succeeded(child: tokio::process::Child, what: &str) {
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{what}: ffmpeg still running after 20 s"))
        .unwrap();
    assert!(
        out.status.success(),
        "{what}: ffmpeg {}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// What `seconds` of the ffmpeg test pattern must demux to.
fn assert_av(events: &[MediaEvent], seconds: u32, what: &str) {
    let (tracks, samples) = split(events);
    assert!(
        matches!(events.first(), Some(MediaEvent::Tracks(_))),
        "{what}: tracks first"
    );
    assert_eq!(tracks.len(), 1, "{what}: one Tracks event");
    let t = &tracks[0];
    let video = t
        .iter()
        .position(|t| matches!(&t.codec, Codec::H264(c) if (c.width, c.height) == (320, 240)))
        .unwrap_or_else(|| panic!("{what}: no 320x240 H.264 track in {t:?}"));
    let audio = t
        .iter()
        .position(|t| matches!(&t.codec, Codec::Aac(c) if c.sample_rate == 48_000))
        .unwrap_or_else(|| panic!("{what}: no 48 kHz AAC track in {t:?}"));
    let v: Vec<_> = samples.iter().filter(|s| s.track == video).collect();
    let a: Vec<_> = samples.iter().filter(|s| s.track == audio).collect();
    let frames = 30 * seconds as usize;
    // SRT may lose the last moments when the caller closes; a real-time stream must still
    // deliver nearly all of it.
    assert!(
        (frames - 10..=frames).contains(&v.len()),
        "{what}: {} video frames of {frames}",
        v.len()
    );
    let aac_frames = 48_000 * seconds as usize / 1024;
    assert!(
        (aac_frames - 20..=aac_frames + 2).contains(&a.len()),
        "{what}: {} audio frames of about {aac_frames}",
        a.len()
    );
    assert!(v[0].keyframe, "{what}: video starts on a keyframe");
    assert!(v.iter().filter(|s| s.keyframe).count() >= seconds as usize - 1);
    let vscale = i64::from(t[video].timescale) / 30;
    for w in v.windows(2) {
        let d = w[1].dts - w[0].dts;
        assert!(
            (vscale * 98 / 100..=vscale * 102 / 100).contains(&d),
            "{what}: video dts step {d}"
        );
    }
    let ascale = i64::from(t[audio].timescale) * 1024 / 48_000;
    for w in a.windows(2) {
        let d = w[1].dts - w[0].dts;
        assert!(
            (ascale - 2..=ascale + 2).contains(&d),
            "{what}: audio dts step {d}"
        );
    }
    assert!(samples.iter().all(|s| !s.data.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_in_every_streamid_convention() {
    if ffmpeg().is_none() {
        return;
    }
    let mut server = SrtServer::start(SrtSettings::default()).await;
    let ids = [
        ("key1", "streamid=#!::r=live/key1,m=publish"),
        ("key2", "streamid=key2"),
        ("key3", "streamid=publish:live/key3"),
    ];
    let mut children = Vec::new();
    for (_, query) in ids {
        children.push(ffmpeg_srt(&server.url(query), 3));
    }
    let mut sessions = Vec::new();
    for _ in ids {
        let (key, info, rx) = server.next_publish().await;
        assert_eq!(info.app, "live");
        sessions.push((key, tokio::spawn(collect(rx))));
    }
    assert_eq!(server.keys.len(), 3);
    for (i, child) in children.into_iter().enumerate() {
        assert_succeeded(child, ids[i].0).await;
    }
    sessions.sort_by(|a, b| a.0.expose().cmp(b.0.expose()));
    for ((key, events), (want, _)) in sessions.into_iter().zip(ids) {
        assert_eq!(key.expose(), want);
        let events = events.await.unwrap();
        assert_av(&events, 3, want);
    }
    // Every session is over and its key free again.
    assert!(server.keys.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passphrase_is_required_and_the_callers_key_size_is_used() {
    if ffmpeg().is_none() {
        return;
    }
    let mut server = SrtServer::start(SrtSettings {
        passphrase: Some(PASSPHRASE.into()),
        ..SrtSettings::default()
    })
    .await;

    // A wrong passphrase, an unencrypted caller: refused at the handshake.
    let wrong = ffmpeg_srt(
        &server.url("streamid=live/a&passphrase=not-the-passphrase&pbkeylen=16"),
        2,
    );
    assert_refused(wrong, "wrong passphrase").await;
    let plain = ffmpeg_srt(&server.url("streamid=live/a"), 2);
    assert_refused(plain, "unencrypted caller").await;
    server.assert_no_publish();
    assert!(server.keys.is_empty(), "a refused caller claims no key");

    // The listener still accepts, with AES-128 and AES-256.
    for pbkeylen in [16, 32] {
        let q = format!("streamid=live/aes{pbkeylen}&passphrase={PASSPHRASE}&pbkeylen={pbkeylen}");
        let child = ffmpeg_srt(&server.url(&q), 2);
        let (key, _, rx) = server.next_publish().await;
        assert_eq!(key.expose(), format!("aes{pbkeylen}"));
        let events = collect(rx).await;
        assert_succeeded(child, &q).await;
        assert_av(&events, 2, &q);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_key_passphrases() {
    if ffmpeg().is_none() {
        return;
    }
    let mut server = SrtServer::start(SrtSettings {
        passphrase_for: Some(Arc::new(|_: &SessionInfo, key: &StreamKey| {
            (key.expose() == "secure").then(|| PASSPHRASE.to_owned())
        })),
        ..SrtSettings::default()
    })
    .await;
    let encrypted = format!("passphrase={PASSPHRASE}&pbkeylen=24");
    assert_refused(
        ffmpeg_srt(&server.url("streamid=secure"), 1),
        "unencrypted caller on a key with a passphrase",
    )
    .await;
    assert_refused(
        ffmpeg_srt(&server.url(&format!("streamid=open&{encrypted}")), 1),
        "encrypted caller on a key without one",
    )
    .await;
    server.assert_no_publish();
    for q in [
        format!("streamid=secure&{encrypted}"),
        "streamid=open".into(),
    ] {
        let child = ffmpeg_srt(&server.url(&q), 1);
        let (_, _, rx) = server.next_publish().await;
        let events = collect(rx).await;
        assert_succeeded(child, &q).await;
        assert_av(&events, 1, &q);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn encrypted_caller_to_a_plain_listener_is_refused_without_a_panic() {
    if ffmpeg().is_none() {
        return;
    }
    let mut server = SrtServer::start(SrtSettings::default()).await;
    for pbkeylen in [16, 32] {
        let q = format!("streamid=live/k&passphrase={PASSPHRASE}&pbkeylen={pbkeylen}");
        assert_refused(ffmpeg_srt(&server.url(&q), 1), &q).await;
    }
    server.assert_no_publish();
    // The listener is alive: srt-protocol would have panicked in it had the caller been
    // accepted.
    let child = ffmpeg_srt(&server.url("streamid=live/k"), 1);
    let (_, _, rx) = server.next_publish().await;
    let events = collect(rx).await;
    assert_succeeded(child, "plain caller").await;
    assert_av(&events, 1, "plain caller");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stream_ids_are_refused_at_the_handshake() {
    if ffmpeg().is_none() {
        return;
    }
    let mut server = SrtServer::start(SrtSettings::default()).await;
    for (query, what) in [
        ("streamid=unknown", "key the handler does not know"),
        ("streamid=live/unknown", "unknown key with app"),
        ("streamid=other/k", "wrong application"),
        ("streamid=#!::r=live/k,m=request", "a read request"),
        ("streamid=read:live/k", "a read action"),
        ("latency=200000", "no stream id"),
    ] {
        let stderr = assert_refused(ffmpeg_srt(&server.url(query), 1), what).await;
        assert!(
            stderr.contains("reject") || stderr.contains("Connection"),
            "{what}: {stderr}"
        );
    }
    server.assert_no_publish();
    assert!(server.keys.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_publisher_per_key_across_srt_and_rtmp() {
    if ffmpeg().is_none() {
        return;
    }
    let mut server = SrtServer::start(SrtSettings::default()).await;
    // An RTMP listener beside it, with the same handler and key registry.
    let rtmp = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rtmp_addr = rtmp.local_addr().unwrap();
    let (rtmp_stop, rtmp_stopped) = oneshot::channel::<()>();
    let rtmp_task = tokio::spawn(weir_ingest::serve_rtmp_with_keys(
        rtmp,
        RtmpSettings::default(),
        Arc::clone(&server.handler) as Arc<dyn PublishHandler>,
        server.keys.clone(),
        async move {
            let _ = rtmp_stopped.await;
        },
    ));

    let first = ffmpeg_srt(&server.url("streamid=live/busy"), 4);
    let (_, _, rx) = server.next_publish().await;
    let events = tokio::spawn(collect(rx));
    // Let media flow so the key is not idle.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_refused(
        ffmpeg_srt(&server.url("streamid=live/busy"), 1),
        "second SRT publisher",
    )
    .await;
    let refused = Publisher::publish(rtmp_addr, "live", "busy").await;
    assert!(refused.is_err(), "an RTMP publisher on the same key");
    server.assert_no_publish();

    assert_succeeded(first, "first publisher").await;
    assert_av(&events.await.unwrap(), 4, "first publisher");
    assert!(server.keys.is_empty());
    let _ = rtmp_stop.send(());
    rtmp_task.await.unwrap();
    server.stop().await;
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_datagrams_do_not_stop_the_listener() {
    let mut server = SrtServer::start(SrtSettings::default()).await;
    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..2000u32 {
        let len = (xorshift(&mut state) % 1500) as usize;
        let mut d: Vec<u8> = (0..len).map(|_| xorshift(&mut state) as u8).collect();
        // Some look like SRT control packets (handshake, keepalive, shutdown, ACK, NAK,
        // and the unimplemented congestion-warning and peer-error types) addressed to
        // socket 0 or a random one.
        if i % 2 == 0 && d.len() >= 16 {
            let kinds = [
                0x0000u16, 0x0001, 0x0002, 0x0003, 0x0004, 0x0005, 0x0006, 0x7fff, 0x0008,
            ];
            let kind = kinds[(xorshift(&mut state) % kinds.len() as u64) as usize];
            d[0..2].copy_from_slice(&(0x8000 | kind).to_be_bytes());
            if i % 4 == 0 {
                d[12..16].fill(0);
            }
        }
        let _ = udp.send_to(&d, server.addr).await;
        if i % 100 == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    // A real caller afterwards (srt-tokio; ffmpeg below when it is there).
    let mut caller = SrtSocket::builder()
        .call(server.addr, Some("live/after-garbage"))
        .await
        .expect("the listener still accepts");
    let (key, _, rx) = server.next_publish().await;
    assert_eq!(key.expose(), "after-garbage");
    let events = tokio::spawn(collect(rx));
    send_ts(&mut caller, &read_data("testsrc.ts"), 1316)
        .await
        .unwrap();
    drop(caller);
    let (_, samples) = split(&events.await.unwrap());
    assert!(!samples.is_empty());

    if ffmpeg().is_some() {
        let child = ffmpeg_srt(&server.url("streamid=live/ffmpeg-after-garbage"), 1);
        let (_, _, rx) = server.next_publish().await;
        let events = collect(rx).await;
        assert_succeeded(child, "ffmpeg after garbage").await;
        assert_av(&events, 1, "ffmpeg after garbage");
    }
    server.stop().await;
}

/// Sends `ts` in `chunk`-byte messages, paced like an encoder (srt-tokio's sender drops
/// most of an unpaced burst), then waits out the latency window so the tail is delivered
/// before the caller closes.
async fn send_ts(caller: &mut SrtSocket, ts: &[u8], chunk: usize) -> std::io::Result<()> {
    for piece in ts.chunks(chunk) {
        caller
            .send((Instant::now(), Bytes::copy_from_slice(piece)))
            .await?;
        tokio::time::sleep(Duration::from_millis(4)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    caller.close().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_at_any_alignment_demux_like_the_file() {
    let mut server = SrtServer::start(SrtSettings::default()).await;
    let ts = read_data("testsrc.ts");
    let (want, _) = weir_ingest::ts::read_all(&ts);
    assert!(split(&want).1.len() > 100);
    // 1316 is what libsrt callers send (7 TS packets); 1456 is srt-live-transmit's default,
    // which splits TS packets; 1000 is arbitrary.
    for chunk in [1316, 1456, 1000] {
        let mut caller = SrtSocket::builder()
            .latency(Duration::from_millis(120))
            .call(
                server.addr,
                Some(&format!("#!::r=live/chunk{chunk},m=publish")),
            )
            .await
            .unwrap();
        let (_, _, rx) = server.next_publish().await;
        let events = tokio::spawn(collect(rx));
        send_ts(&mut caller, &ts, chunk).await.unwrap();
        assert_eq!(events.await.unwrap(), want, "{chunk}-byte messages");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_caller_is_closed_and_frees_its_key() {
    let mut server = SrtServer::start(SrtSettings {
        idle_timeout: Duration::from_secs(1),
        ..SrtSettings::default()
    })
    .await;
    let mut caller = SrtSocket::builder()
        .call(server.addr, Some("live/idle"))
        .await
        .unwrap();
    let (_, _, rx) = server.next_publish().await;
    assert!(server.keys.is_active(&StreamKey::new("idle")));
    // The session ends (its sender dropped) within the idle timeout, with no media.
    let events = collect(rx).await;
    assert!(events.is_empty());
    assert!(server.keys.is_empty());
    // The caller sees the connection closed.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        use futures_util::StreamExt;
        while let Some(Ok(_)) = caller.next().await {}
    })
    .await;
    assert!(ended.is_ok(), "the caller was not disconnected");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_pipeline_ends_the_session() {
    // A channel of one event that nobody reads.
    let mut server = SrtServer::start_with(
        SrtSettings {
            sink_timeout: Duration::from_millis(300),
            ..SrtSettings::default()
        },
        None,
        1,
    )
    .await;
    let mut caller = SrtSocket::builder()
        .call(server.addr, Some("live/stalled"))
        .await
        .unwrap();
    let (_, _, rx) = server.next_publish().await;
    // The server hangs up on it, so its sends may fail.
    let sender = tokio::spawn(async move {
        let _ = send_ts(&mut caller, &read_data("testsrc.ts"), 1316).await;
    });
    // The key is released once the session gives up on the pipeline.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !server.keys.is_empty() {
        assert!(Instant::now() < deadline, "session did not end");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(rx.is_closed(), "the session dropped its sender");
    let _ = sender.await;
    server.stop().await;
}

/// A hand-made caller whose handshake says "no encryption" but carries keying material:
/// srt-protocol 0.4.4 hits `unimplemented!("expected no secrets")` in the listener task when
/// such a caller is accepted without a key, which kills that task. libsrt never sends this;
/// an attacker can.
async fn send_poisoned_handshake(to: SocketAddr, stream_id: &str) {
    use srt_protocol::options::{KeySize, PacketCount, PacketSize, SrtVersion};
    use srt_protocol::packet::{
        ControlPacket, ControlTypes, HandshakeControlInfo, HandshakeVsInfo, HsV5Info, Packet,
        SeqNumber, ShakeType, SocketId, SocketType, SrtControlPacket, SrtHandshake, SrtShakeFlags,
        TimeStamp,
    };
    use srt_protocol::settings::{CipherSettings, KeyMaterialRefreshSettings, KeySettings};

    let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let handshake = |shake_type, syn_cookie, info| {
        Packet::Control(ControlPacket {
            timestamp: TimeStamp::from_micros(0),
            dest_sockid: SocketId(0),
            control_type: ControlTypes::Handshake(HandshakeControlInfo {
                init_seq_num: SeqNumber::new_truncate(1000),
                max_packet_size: PacketSize(1500),
                max_flow_size: PacketCount(8192),
                shake_type,
                socket_id: SocketId(0x0bad_cafe),
                syn_cookie,
                peer_addr: "127.0.0.1".parse().unwrap(),
                info,
            }),
        })
    };
    let send = |p: Packet| {
        let mut buf = Vec::new();
        p.serialize(&mut buf);
        buf
    };
    let induction = handshake(
        ShakeType::Induction,
        0,
        HandshakeVsInfo::V4(SocketType::Datagram),
    );
    udp.send_to(&send(induction), to).await.unwrap();
    let mut buf = vec![0u8; 2048];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), udp.recv_from(&mut buf))
        .await
        .expect("no induction response")
        .unwrap();
    let Ok(Packet::Control(ControlPacket {
        control_type: ControlTypes::Handshake(response),
        ..
    })) = Packet::parse(&mut std::io::Cursor::new(&buf[..n]), false)
    else {
        panic!("not a handshake response");
    };
    let cipher = CipherSettings::new_random(
        &KeySettings {
            key_size: KeySize::AES128,
            passphrase: PASSPHRASE.into(),
        },
        &KeyMaterialRefreshSettings::default(),
    );
    let conclusion = handshake(
        ShakeType::Conclusion,
        response.syn_cookie,
        HandshakeVsInfo::V5(HsV5Info {
            key_size: KeySize::Unspecified,
            ext_hs: Some(SrtControlPacket::HandshakeRequest(SrtHandshake {
                version: SrtVersion::CURRENT,
                flags: SrtShakeFlags::SUPPORTED,
                send_latency: Duration::from_millis(120),
                recv_latency: Duration::from_millis(120),
            })),
            ext_km: Some(SrtControlPacket::KeyRefreshRequest(
                cipher.wrap_keying_material().unwrap(),
            )),
            ext_group: None,
            sid: Some(stream_id.to_owned()),
        }),
    );
    udp.send_to(&send(conclusion), to).await.unwrap();
    // Whatever comes back (or nothing, if the listener died) is not the point.
    let _ = tokio::time::timeout(Duration::from_millis(500), udp.recv_from(&mut buf)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listener_killed_by_a_peer_is_bound_again() {
    let mut server = SrtServer::start(SrtSettings::default()).await;
    // A session that is running when the listener dies.
    let mut before = SrtSocket::builder()
        .call(server.addr, Some("live/before"))
        .await
        .unwrap();
    let (_, _, rx_before) = server.next_publish().await;
    before
        .send((Instant::now(), Bytes::from_static(&[0x47; 188])))
        .await
        .unwrap();

    send_poisoned_handshake(server.addr, "live/poison").await;
    // The poisoned caller is never published. The session that was running loses its
    // packet feed with the listener and ends (its sender is dropped), freeing its key.
    let ended = tokio::time::timeout(Duration::from_secs(15), collect(rx_before)).await;
    assert!(ended.is_ok(), "the running session did not end");
    server.assert_no_publish();

    // The listener is back on the same port.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = loop {
        match SrtSocket::builder()
            .call(server.addr, Some("live/after"))
            .await
        {
            Ok(s) => break s,
            Err(e) => {
                assert!(Instant::now() < deadline, "no listener after 10 s: {e}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let (key, _, rx) = server.next_publish().await;
    assert_eq!(key.expose(), "after");
    let events = tokio::spawn(collect(rx));
    send_ts(&mut after, &read_data("testsrc.ts"), 1316)
        .await
        .unwrap();
    let (_, samples) = split(&events.await.unwrap());
    assert!(!samples.is_empty());
    assert!(server.keys.is_empty());
    server.stop().await;
}
