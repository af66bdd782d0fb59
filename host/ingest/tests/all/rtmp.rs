//! The RTMP server against real ffmpeg, a scripted rml_rtmp client, and hostile peers.
//! Every hostile test runs a healthy publisher beside it and checks it is untouched.

use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use weir_ingest::flv::TagKind;
use weir_ingest::RtmpSettings;
use weir_media::{Codec, MediaEvent};

use crate::support::{
    closed_by_server, collect, ffmpeg, handshaken, healthy, read_data, reference, split, tags,
    Publisher, Server,
};

fn settings() -> RtmpSettings {
    RtmpSettings {
        handshake_timeout: Duration::from_secs(2),
        ..RtmpSettings::default()
    }
}

const HEALTHY_OVER: Duration = Duration::from_millis(1500);

async fn assert_healthy(task: tokio::task::JoinHandle<Vec<MediaEvent>>) {
    let got = tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .expect("healthy session did not finish")
        .unwrap();
    assert_eq!(
        got,
        reference(),
        "the healthy session got every frame, unchanged"
    );
}

fn ffmpeg_publish(url: &str, seconds: u32) -> tokio::process::Child {
    tokio::process::Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v",
            "libx264",
            "-tune",
            "zerolatency",
            "-g",
            "30",
            "-c:a",
            "aac",
        ])
        .args(["-f", "flv", url])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn ffmpeg")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publish_delivers_h264_and_aac() {
    if ffmpeg().is_none() {
        return;
    }
    let mut server = Server::start(settings()).await;
    let url = format!("rtmp://{}/live/secret-key", server.addr);
    let mut child = ffmpeg_publish(&url, 3);
    let (key, rx) = server.next_publish().await;
    assert_eq!(key.expose(), "secret-key");
    let events = collect(rx).await;
    let status = child.wait().await.unwrap();
    assert!(status.success(), "ffmpeg: {status}");

    let (tracks, samples) = split(&events);
    assert!(matches!(events[0], MediaEvent::Tracks(_)));
    assert_eq!(tracks.len(), 1, "one Tracks event");
    let t = &tracks[0];
    assert!(
        matches!(&t[0].codec, Codec::H264(c) if (c.width, c.height) == (320, 240)),
        "{t:?}"
    );
    assert!(
        matches!(&t[1].codec, Codec::Aac(c) if c.sample_rate == 48_000),
        "{t:?}"
    );
    let video: Vec<_> = samples.iter().filter(|s| s.track == 0).collect();
    let audio: Vec<_> = samples.iter().filter(|s| s.track == 1).collect();
    assert_eq!(video.len(), 90, "3 s at 30 fps");
    assert!(
        (138..=142).contains(&audio.len()),
        "{} audio frames",
        audio.len()
    );
    assert!(video[0].keyframe);
    assert_eq!(video.iter().filter(|s| s.keyframe).count(), 3);
    for w in video.windows(2) {
        assert!((2970..=3060).contains(&(w[1].dts - w[0].dts)));
    }
    for w in audio.windows(2) {
        assert_eq!(w[1].dts - w[0].dts, 1024);
    }
    // The session is over and the key free again.
    assert!(server.keys.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn replayed_capture_arrives_exactly_as_the_file_demuxes() {
    let mut server = Server::start(settings()).await;
    let task = healthy(&mut server, "k", Duration::ZERO).await;
    assert_healthy(task).await;

    // With B-frames: composition times survive the trip.
    let mut p = Publisher::publish(server.addr, "live", "b").await.unwrap();
    let (_, rx) = server.next_publish().await;
    let collector = tokio::spawn(collect(rx));
    p.replay(&tags("testsrc-bframes.flv"), Duration::ZERO)
        .await
        .unwrap();
    p.unpublish().await;
    let got = collector.await.unwrap();
    let want = weir_ingest::FlvFile::read_all(&read_data("testsrc-bframes.flv")).unwrap();
    assert_eq!(got, want);
    let (_, samples) = split(&got);
    assert!(samples.iter().any(|s| s.cts_offset > 0));
    server.stop().await;
}

#[tokio::test]
async fn truncated_and_stalled_handshakes_are_closed() {
    let mut server = Server::start(settings()).await;
    let task = healthy(&mut server, "healthy", HEALTHY_OVER).await;

    // Version byte and half of C1, then hang up.
    let mut a = TcpStream::connect(server.addr).await.unwrap();
    a.write_all(&[3u8; 700]).await.unwrap();
    drop(a);
    // A wrong version byte.
    let mut b = TcpStream::connect(server.addr).await.unwrap();
    b.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
    assert!(closed_by_server(&mut b, Duration::from_secs(2)).await);
    // Slowloris: half a handshake, then nothing. handshake_timeout is 2 s.
    let mut c = TcpStream::connect(server.addr).await.unwrap();
    c.write_all(&[3u8; 700]).await.unwrap();
    assert!(closed_by_server(&mut c, Duration::from_secs(4)).await);

    assert_healthy(task).await;
    server.stop().await;
}

#[tokio::test]
async fn garbage_after_the_handshake_is_closed() {
    let mut server = Server::start(settings()).await;
    let task = healthy(&mut server, "healthy", HEALTHY_OVER).await;

    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for _ in 0..5 {
        let (mut sock, _) = handshaken(server.addr).await;
        let garbage: Vec<u8> = (0..8192)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let _ = sock.write_all(&garbage).await;
        assert!(
            closed_by_server(&mut sock, Duration::from_secs(4)).await,
            "garbage must close the session"
        );
    }

    assert_healthy(task).await;
    server.stop().await;
}

#[tokio::test]
async fn an_oversize_message_is_refused_on_its_header() {
    let mut server = Server::start(RtmpSettings {
        max_message_bytes: 1 << 20,
        ..settings()
    })
    .await;
    let task = healthy(&mut server, "healthy", HEALTHY_OVER).await;

    let (mut sock, _) = handshaken(server.addr).await;
    // fmt 0, csid 3, timestamp 0, length 0xffffff, type 9 (video), stream 1, then a little
    // payload: the server must not wait for (or reserve) 16 MiB.
    let mut chunk = vec![0x03, 0, 0, 0, 0xff, 0xff, 0xff, 9, 1, 0, 0, 0];
    chunk.extend_from_slice(&[0x17; 128]);
    sock.write_all(&chunk).await.unwrap();
    assert!(closed_by_server(&mut sock, Duration::from_secs(2)).await);

    assert_healthy(task).await;
    server.stop().await;
}

#[tokio::test]
async fn a_panic_in_a_session_is_contained() {
    let mut server = Server::start(settings()).await;
    let task = healthy(&mut server, "healthy", HEALTHY_OVER).await;

    // rml_rtmp 0.8 computes `extended - 0xffffff` for a non-first chunk header whose
    // timestamp field is 0xffffff: an extended timestamp below that overflows (a panic in
    // debug builds). The chunk guard now refuses it before rml_rtmp sees it; either way
    // nothing else may notice.
    let (mut sock, _) = handshaken(server.addr).await;
    let mut wire = vec![
        0x03, 0xff, 0xff, 0xff, 0, 0, 1, 9, 1, 0, 0, 0, 0x01, 0, 0, 0, 0x17,
    ];
    wire.extend_from_slice(&[0x43, 0xff, 0xff, 0xff, 0, 0, 1, 9, 0, 0, 0, 5, 0x17]);
    sock.write_all(&wire).await.unwrap();
    assert!(closed_by_server(&mut sock, Duration::from_secs(2)).await);

    // The listener still accepts and serves.
    let second = healthy(&mut server, "after", Duration::ZERO).await;
    assert_healthy(second).await;
    assert_healthy(task).await;
    server.stop().await;
}

/// A `connect` command whose command object is `depth` nested AMF0 strict arrays (five
/// bytes a level), chunked by rml_rtmp.
fn amf_bomb(depth: usize) -> Vec<u8> {
    use rml_rtmp::chunk_io::ChunkSerializer;
    use rml_rtmp::messages::MessagePayload;
    use rml_rtmp::rml_amf0::{serialize, Amf0Value};
    use rml_rtmp::time::RtmpTimestamp;

    let mut amf = serialize(&vec![
        Amf0Value::Utf8String("connect".into()),
        Amf0Value::Number(1.0),
    ])
    .unwrap();
    for _ in 0..depth {
        amf.extend_from_slice(&[0x0a, 0, 0, 0, 1]);
    }
    amf.push(0x05);
    let payload = MessagePayload {
        timestamp: RtmpTimestamp::new(0),
        message_stream_id: 0,
        type_id: 20,
        data: Bytes::from(amf),
    };
    ChunkSerializer::new()
        .serialize(&payload, false, false)
        .unwrap()
        .bytes
}

/// Issue 12's process abort: rml_amf0 recurses once per nested AMF container with no
/// limit, so these messages would overflow a worker's stack (an abort of the whole test
/// binary, not a failed test) if the chunk guard let rml_rtmp decode them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amf_bombs_and_oversize_data_messages_close_only_their_session() {
    use rml_rtmp::chunk_io::ChunkSerializer;
    use rml_rtmp::messages::MessagePayload;
    use rml_rtmp::time::RtmpTimestamp;

    let mut server = Server::start(settings()).await;
    let task = healthy(&mut server, "healthy", HEALTHY_OVER).await;

    // ~1 MB of nesting right after the handshake (refused on its first chunk header), and
    // 12,000 levels in 60 KB (under the size limit: refused by the depth scan).
    for depth in [200_000, 12_000] {
        let (mut sock, _) = handshaken(server.addr).await;
        let _ = sock.write_all(&amf_bomb(depth)).await;
        assert!(
            closed_by_server(&mut sock, Duration::from_secs(2)).await,
            "depth {depth}"
        );
    }
    // A publisher in good standing, then a 70 KB data message.
    let mut p = Publisher::publish(server.addr, "live", "big")
        .await
        .unwrap();
    let (_, rx) = server.next_publish().await;
    let collector = tokio::spawn(collect(rx));
    let all = tags("testsrc.flv");
    p.replay(&all[..all.len() / 2], Duration::ZERO)
        .await
        .unwrap();
    let mut data = ChunkSerializer::new();
    // The publisher's session announced 4096-byte chunks.
    data.set_max_chunk_size(4096, RtmpTimestamp::new(0))
        .unwrap();
    let payload = MessagePayload {
        timestamp: RtmpTimestamp::new(0),
        message_stream_id: 1,
        type_id: 18,
        data: Bytes::from(vec![0x05; 70 * 1024]),
    };
    let big = data.serialize(&payload, true, false).unwrap().bytes;
    let _ = p.sock.write_all(&big).await;
    assert!(closed_by_server(&mut p.sock, Duration::from_secs(2)).await);
    // Its stream ends with what it sent before.
    let (_, samples) = split(&collector.await.unwrap());
    assert!(samples.len() > 50, "{}", samples.len());

    assert_healthy(task).await;
    server.stop().await;
}

#[tokio::test]
async fn a_publish_without_keyframes_is_closed() {
    let mut server = Server::start(RtmpSettings {
        no_keyframe_timeout: Duration::from_secs(1),
        ..settings()
    })
    .await;
    let task = healthy(&mut server, "healthy", HEALTHY_OVER).await;

    let mut p = Publisher::publish(server.addr, "live", "p-frames")
        .await
        .unwrap();
    let (_, rx) = server.next_publish().await;
    // The real sequence headers, then inter frames only, 2 s of them.
    let mut sent_frames = 0;
    for t in tags("testsrc.flv") {
        let mut body = t.body.to_vec();
        if t.kind == TagKind::Video && body[1] == 1 {
            if body[0] >> 4 == 1 {
                continue; // drop the keyframes
            }
            body[0] = 0x27;
            sent_frames += 1;
        }
        if p.send(t.kind, t.timestamp_ms, Bytes::from(body))
            .await
            .is_err()
        {
            break; // the server hung up
        }
        if t.timestamp_ms > 2000 {
            break;
        }
    }
    assert!(sent_frames > 30);
    let events = collect(rx).await;
    assert!(
        events.is_empty(),
        "nothing before a keyframe: {}",
        events.len()
    );
    assert!(closed_by_server(&mut p.sock, Duration::from_secs(2)).await);

    assert_healthy(task).await;
    server.stop().await;
}

#[tokio::test]
async fn a_second_publisher_on_a_busy_key_is_refused() {
    let mut server = Server::start(settings()).await;
    let task = healthy(&mut server, "busy", HEALTHY_OVER).await;

    tokio::time::sleep(Duration::from_millis(300)).await;
    let refused = Publisher::publish(server.addr, "live", "busy").await;
    assert!(refused.is_err(), "second publisher accepted");

    // The first publisher keeps streaming, untouched.
    assert_healthy(task).await;
    server.stop().await;
}

#[tokio::test]
async fn an_idle_key_is_taken_over() {
    let mut server = Server::start(RtmpSettings {
        takeover_after: Duration::from_millis(300),
        ..settings()
    })
    .await;
    let task = healthy(&mut server, "healthy", HEALTHY_OVER).await;

    // The first publisher sends its headers and a second of media, then goes quiet with
    // its connection open (a hung encoder).
    let all = tags("testsrc.flv");
    let mut stale = Publisher::publish(server.addr, "live", "k").await.unwrap();
    let (_, stale_rx) = server.next_publish().await;
    let first_second: Vec<_> = all
        .iter()
        .filter(|t| t.timestamp_ms < 1000)
        .cloned()
        .collect();
    stale.replay(&first_second, Duration::ZERO).await.unwrap();
    tokio::time::sleep(Duration::from_millis(600)).await;

    let mut fresh = Publisher::publish(server.addr, "live", "k").await.unwrap();
    let (_, fresh_rx) = server.next_publish().await;
    // The stale session is closed and its stream ends.
    let stale_events = collect(stale_rx).await;
    assert!(!stale_events.is_empty());
    assert!(closed_by_server(&mut stale.sock, Duration::from_secs(2)).await);
    assert_eq!(
        server.ended("k").await.as_deref(),
        Some("another publisher took over this idle stream key")
    );
    // The newcomer streams normally.
    let collector = tokio::spawn(collect(fresh_rx));
    fresh.replay(&all, Duration::ZERO).await.unwrap();
    fresh.unpublish().await;
    assert_eq!(collector.await.unwrap(), reference());

    assert_healthy(task).await;
    server.stop().await;
}

#[tokio::test]
async fn wrong_app_and_unauthorized_keys_are_refused() {
    let mut server = Server::start_with(settings(), Some("bad"), 4096).await;
    let task = healthy(&mut server, "healthy", HEALTHY_OVER).await;

    let e = Publisher::publish(server.addr, "other", "k")
        .await
        .err()
        .unwrap();
    assert!(e.contains("rejected") || e.contains("closed"), "{e}");
    let e = Publisher::publish(server.addr, "live", "bad")
        .await
        .err()
        .unwrap();
    assert!(!e.is_empty());
    assert!(!server.keys.is_active(&weir_media::StreamKey::new("bad")));

    assert_healthy(task).await;
    server.stop().await;
}

#[tokio::test]
async fn a_stalled_pipeline_closes_the_session_instead_of_blocking_forever() {
    let mut server = Server::start_with(
        RtmpSettings {
            sink_timeout: Duration::from_millis(300),
            ..settings()
        },
        None,
        4,
    )
    .await;
    let mut p = Publisher::publish(server.addr, "live", "slow")
        .await
        .unwrap();
    let (_, rx) = server.next_publish().await; // never read
    let _ = p.replay(&tags("testsrc.flv"), Duration::ZERO).await;
    assert!(closed_by_server(&mut p.sock, Duration::from_secs(3)).await);
    // The operator's view of the stream says why.
    let error = server.ended("slow").await.expect("an error");
    assert!(error.contains("did not accept a frame"), "{error}");
    drop(rx);
    server.stop().await;
}

#[tokio::test]
async fn an_abrupt_disconnect_ends_the_stream_and_frees_the_key() {
    let mut server = Server::start(settings()).await;
    let task = healthy(&mut server, "healthy", HEALTHY_OVER).await;

    let all = tags("testsrc.flv");
    let mut p = Publisher::publish(server.addr, "live", "k").await.unwrap();
    let (key, rx) = server.next_publish().await;
    p.replay(&all[..all.len() / 2], Duration::ZERO)
        .await
        .unwrap();
    drop(p); // no unpublish, no FIN courtesy: just gone
    let events = collect(rx).await;
    let (tracks, samples) = split(&events);
    assert_eq!(tracks.len(), 1);
    assert!(samples.len() > 50, "{}", samples.len());
    assert!(!server.keys.is_active(&key));

    assert_healthy(task).await;
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_limit_are_closed_at_once() {
    let mut server = Server::start(RtmpSettings {
        max_connections: 1,
        ..settings()
    })
    .await;
    let task = healthy(&mut server, "healthy", HEALTHY_OVER).await;

    let mut extra = TcpStream::connect(server.addr).await.unwrap();
    assert!(closed_by_server(&mut extra, Duration::from_secs(2)).await);

    assert_healthy(task).await;
    // The slot is free again.
    let again = healthy(&mut server, "again", Duration::ZERO).await;
    assert_healthy(again).await;
    server.stop().await;
}

/// AMF0 `onCuePoint` data messages (which rml_rtmp itself drops) arrive as cues after
/// `Tracks`, in order with the media.
#[tokio::test]
async fn on_cue_point_data_messages_become_cues() {
    use rml_rtmp::chunk_io::ChunkSerializer;
    use rml_rtmp::messages::MessagePayload;
    use rml_rtmp::rml_amf0::{serialize, Amf0Value};
    use rml_rtmp::time::RtmpTimestamp;
    use weir_media::CueKind;

    fn cue_point(name: &str, time: f64, duration: Option<f64>) -> Vec<Amf0Value> {
        let mut params = std::collections::HashMap::new();
        if let Some(d) = duration {
            params.insert("duration".to_owned(), Amf0Value::Number(d));
        }
        params.insert("id".to_owned(), Amf0Value::Number(42.0));
        let mut o = std::collections::HashMap::new();
        o.insert("name".to_owned(), Amf0Value::Utf8String(name.to_owned()));
        o.insert("type".to_owned(), Amf0Value::Utf8String("event".to_owned()));
        o.insert("time".to_owned(), Amf0Value::Number(time));
        o.insert("parameters".to_owned(), Amf0Value::Object(params));
        vec![
            Amf0Value::Utf8String("onCuePoint".to_owned()),
            Amf0Value::Object(o),
        ]
    }

    let mut server = Server::start(settings()).await;
    let mut p = Publisher::publish(server.addr, "live", "cues")
        .await
        .unwrap();
    let (_, rx) = server.next_publish().await;
    let collector = tokio::spawn(collect(rx));
    // A serializer of our own: data messages go on chunk stream 3, which the publisher's
    // session does not use for media.
    let mut data = ChunkSerializer::new();
    let mut send_data = |values: Vec<Amf0Value>, ms: u32| {
        let payload = MessagePayload {
            timestamp: RtmpTimestamp::new(ms),
            type_id: 18,
            message_stream_id: 1,
            data: Bytes::from(serialize(&values).unwrap()),
        };
        data.serialize(&payload, true, false).unwrap().bytes
    };
    // Before any media: held until Tracks.
    let early = send_data(cue_point("cue-out", 0.5, Some(30.0)), 0);
    p.sock.write_all(&early).await.unwrap();
    let all = tags("testsrc.flv");
    p.replay(&all[..all.len() / 2], Duration::ZERO)
        .await
        .unwrap();
    let late = send_data(cue_point("cue-in", 2.0, None), 1500);
    p.sock.write_all(&late).await.unwrap();
    // Not a cue point: ignored.
    let other = send_data(vec![Amf0Value::Utf8String("onTextData".to_owned())], 1500);
    p.sock.write_all(&other).await.unwrap();
    p.replay(&all[all.len() / 2..], Duration::ZERO)
        .await
        .unwrap();
    p.unpublish().await;
    let events = collector.await.unwrap();
    server.stop().await;

    assert!(matches!(events[0], MediaEvent::Tracks(_)));
    let cues: Vec<(usize, &weir_media::CueEvent)> = events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            MediaEvent::Cue(c) => Some((i, c)),
            _ => None,
        })
        .collect();
    assert_eq!(cues.len(), 2, "{cues:?}");
    let (_, out) = cues[0];
    assert_eq!(out.kind, CueKind::SpliceInsert);
    assert!(out.out_of_network);
    assert_eq!((out.id, out.pts), (42, Some(45_000)));
    assert_eq!(out.duration, Some(Duration::from_secs(30)));
    assert!(out.section.is_empty());
    let (at, back) = cues[1];
    assert!(!back.out_of_network);
    assert_eq!((back.pts, back.duration), (Some(180_000), None));
    // In stream order: the second cue follows the media sent before it.
    assert!(at > events.len() / 3 && at < events.len() - 10, "{at}");
    // The media is untouched.
    assert_eq!(split(&events), split(&reference()));
}
