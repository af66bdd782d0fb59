//! The FLV demuxer and file reader on real ffmpeg captures (see tests/data/README.md).

use std::time::Duration;

use bytes::Bytes;
use weir_ingest::flv::{DemuxSettings, FlvDemuxer, FlvFile, FlvTagReader, StreamHints, TagKind};
use weir_ingest::Error;
use weir_media::{Codec, MediaEvent, Sample};

use crate::support::{read_data, split, tags};

fn demux_tags(
    d: &mut FlvDemuxer,
    tags: &[weir_ingest::flv::FlvTag],
    offset_ms: u32,
) -> Vec<MediaEvent> {
    let mut out = Vec::new();
    for t in tags {
        d.push_tag(
            t.kind,
            t.timestamp_ms.wrapping_add(offset_ms),
            t.body.clone(),
        )
        .unwrap();
        out.extend(std::iter::from_fn(|| d.poll_event()));
    }
    out
}

fn of_track(samples: &[Sample], track: usize) -> Vec<&Sample> {
    samples.iter().filter(|s| s.track == track).collect()
}

#[test]
fn testsrc_tracks_and_samples() {
    let file = FlvFile::new(&read_data("testsrc.flv"), DemuxSettings::default()).unwrap();
    let events: Vec<MediaEvent> = file.collect::<Result<_, _>>().unwrap();
    let (tracks, samples) = split(&events);
    assert!(
        matches!(events[0], MediaEvent::Tracks(_)),
        "Tracks comes first"
    );
    assert_eq!(tracks.len(), 1);
    let t = &tracks[0];
    assert_eq!(t.len(), 2);
    let Codec::H264(v) = &t[0].codec else {
        panic!("video first: {t:?}")
    };
    assert_eq!((v.width, v.height, t[0].timescale), (320, 240, 90_000));
    assert!(
        v.codec_string().starts_with("avc1.64"),
        "{}",
        v.codec_string()
    );
    let Codec::Aac(a) = &t[1].codec else {
        panic!("then audio: {t:?}")
    };
    assert_eq!(
        (a.sample_rate, a.channels, t[1].timescale),
        (48_000, 1, 48_000)
    );

    let video = of_track(&samples, 0);
    let audio = of_track(&samples, 1);
    assert_eq!(video.len(), 90, "3 s at 30 fps");
    // 3 s of 48 kHz in 1024-sample frames, give or take the encoder's priming frame.
    assert!(
        (140..=142).contains(&audio.len()),
        "{} audio frames",
        audio.len()
    );

    assert!(video[0].keyframe);
    let keyframes: Vec<usize> = (0..video.len()).filter(|&i| video[i].keyframe).collect();
    assert_eq!(keyframes, vec![0, 30, 60], "-g 30");
    for w in video.windows(2) {
        let step = w[1].dts - w[0].dts;
        // 33 or 34 ms in 90 kHz ticks.
        assert!((2970..=3060).contains(&step), "video step {step}");
        assert_eq!(w[1].cts_offset, 0, "no B-frames with zerolatency");
    }
    for w in audio.windows(2) {
        assert_eq!(
            w[1].dts - w[0].dts,
            1024,
            "AAC frames are exactly 1024 apart"
        );
    }
    assert!(audio.iter().all(|s| s.duration == Some(1024) && s.keyframe));
    assert!(video.iter().all(|s| s.duration.is_none()));
    // Every video sample is a well-formed run of 4-byte length-prefixed NAL units.
    for s in &video {
        let mut rest = &s.data[..];
        while !rest.is_empty() {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            rest = &rest[4 + len..];
        }
    }
    // Audio and video start together (within a frame).
    assert!((video[0].dts / 90 - audio[0].dts * 1000 / 48_000).abs() < 50);
}

#[test]
fn bframes_carry_composition_offsets() {
    let events = FlvFile::read_all(&read_data("testsrc-bframes.flv")).unwrap();
    let (_, samples) = split(&events);
    let video = of_track(&samples, 0);
    assert_eq!(video.len(), 90);
    assert!(video.iter().any(|s| s.cts_offset > 0), "B-frames reorder");
    assert!(video.iter().all(|s| s.cts_offset >= 0));
    for w in video.windows(2) {
        assert!(w[1].dts > w[0].dts, "DTS strictly increases");
    }
    // Presentation times are the 30 fps grid, each exactly once.
    let mut pts: Vec<i64> = video
        .iter()
        .map(|s| s.dts + i64::from(s.cts_offset))
        .collect();
    pts.sort_unstable();
    pts.dedup();
    assert_eq!(pts.len(), 90);
}

#[test]
fn audio_only_capture() {
    let events = FlvFile::read_all(&read_data("audio-only.flv")).unwrap();
    let (tracks, samples) = split(&events);
    assert_eq!(tracks.len(), 1);
    assert_eq!(tracks[0].len(), 1);
    assert!(matches!(&tracks[0][0].codec, Codec::Aac(a) if a.sample_rate == 48_000));
    assert!((140..=142).contains(&samples.len()), "{}", samples.len());
    assert!(samples.iter().all(|s| s.track == 0));
}

#[test]
fn audio_only_without_header_flags_waits_then_starts() {
    // The same stream over RTMP with no metadata: no hint that video will never come.
    let mut d = FlvDemuxer::default();
    let events = demux_tags(&mut d, &tags("audio-only.flv"), 0);
    d.finish();
    let (tracks, samples) = split(&events);
    assert_eq!(tracks.len(), 1);
    assert!(
        (140..=142).contains(&samples.len()),
        "nothing lost while waiting"
    );
}

#[test]
fn byte_stream_split_at_awkward_boundaries() {
    let bytes = read_data("testsrc-bframes.flv");
    let whole = FlvFile::read_all(&bytes).unwrap();
    for piece in [1, 2, 3, 10, 11, 12, 15, 4096, 65_537] {
        let mut reader = FlvTagReader::new();
        let mut d = FlvDemuxer::default();
        let mut events = Vec::new();
        for chunk in bytes.chunks(piece) {
            reader.push(chunk);
            if d.stats().tracks_events == 0 {
                if let Some(h) = reader.header() {
                    d.set_hints(h.hints());
                }
            }
            while let Some(tag) = reader.next_tag().unwrap() {
                d.push_tag(tag.kind, tag.timestamp_ms, tag.body).unwrap();
                events.extend(std::iter::from_fn(|| d.poll_event()));
            }
        }
        reader.finish().unwrap();
        d.finish();
        events.extend(std::iter::from_fn(|| d.poll_event()));
        assert_eq!(events, whole, "fed in pieces of {piece}");
    }
}

#[test]
fn truncation_anywhere_is_an_error_or_a_clean_prefix() {
    let bytes = read_data("testsrc.flv");
    let whole = FlvFile::read_all(&bytes).unwrap();
    for cut in (0..bytes.len())
        .step_by(997)
        .chain([1, 8, 9, 12, 13, 14, 24])
    {
        match FlvFile::read_all(&bytes[..cut]) {
            Ok(events) => assert!(events.len() <= whole.len()),
            Err(Error::Truncated(_)) => {}
            Err(e) => panic!("cut at {cut}: unexpected {e}"),
        }
    }
}

#[test]
fn a_tag_with_a_lying_data_size_is_truncated() {
    let mut bytes = read_data("testsrc.flv");
    // The first tag header starts after the 9-byte header and PreviousTagSize0; make the
    // tag after it claim 16 MiB.
    let first_size = u32::from_be_bytes([0, bytes[14], bytes[15], bytes[16]]) as usize;
    let second = 13 + 11 + first_size + 4;
    bytes[second + 1..second + 4].copy_from_slice(&[0xff, 0xff, 0xff]);
    let err = FlvFile::read_all(&bytes).unwrap_err();
    assert!(
        matches!(err, Error::Truncated(ref m) if m.contains("16777215")),
        "{err}"
    );
}

#[test]
fn corrupted_bytes_never_panic() {
    let clean = read_data("testsrc.flv");
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..200 {
        let mut bytes = clean.clone();
        for _ in 0..8 {
            let at = (next() % bytes.len() as u64) as usize;
            bytes[at] = next() as u8;
        }
        // Any outcome but a panic (or a hang) is fine.
        let _ = FlvFile::read_all(&bytes);
    }
}

#[test]
fn p_frames_only_is_no_keyframe() {
    let settings = DemuxSettings {
        no_keyframe_timeout: Duration::from_secs(1),
        ..DemuxSettings::default()
    };
    let mut d = FlvDemuxer::new(settings);
    let mut result = Ok(());
    for t in tags("testsrc.flv") {
        let mut body = t.body.to_vec();
        if t.kind == TagKind::Video && body[1] == 1 {
            body[0] = 0x27; // inter frame
        }
        result = d.push_tag(t.kind, t.timestamp_ms, Bytes::from(body));
        if result.is_err() {
            break;
        }
    }
    assert!(matches!(result, Err(Error::NoKeyframe(_))), "{result:?}");
    assert_eq!(d.stats().tracks_events, 0);
    assert_eq!(d.stats().video_samples, 0);
}

#[test]
fn timestamps_continue_across_the_32_bit_wrap() {
    let tags = tags("testsrc.flv");
    let plain = demux_tags(&mut FlvDemuxer::default(), &tags, 0);
    // Start 1.5 s before the wrap: the stream crosses it half way.
    let offset = u32::MAX - 1499;
    let wrapped = demux_tags(&mut FlvDemuxer::default(), &tags, offset);
    let (_, a) = split(&plain);
    let (_, b) = split(&wrapped);
    assert_eq!(a.len(), b.len());
    let base_v = b[0].dts - a[0].dts;
    for (x, y) in a.iter().zip(&b).filter(|(x, _)| x.track == 0) {
        assert_eq!(y.dts - x.dts, base_v, "video shifted by a constant");
    }
    let audio: Vec<_> = b.iter().filter(|s| s.track == 1).collect();
    for w in audio.windows(2) {
        assert_eq!(w[1].dts - w[0].dts, 1024);
    }
}

#[test]
fn a_new_sequence_header_mid_stream_is_a_new_tracks_event() {
    let mut d = FlvDemuxer::default();
    d.set_hints(StreamHints {
        video: Some(true),
        audio: Some(true),
    });
    let mut events = demux_tags(&mut d, &tags("testsrc.flv"), 0);
    // The publisher restarts its encoder with B-frames, timestamps carrying on.
    events.extend(demux_tags(&mut d, &tags("testsrc-bframes.flv"), 3100));
    let (tracks, samples) = split(&events);
    assert_eq!(tracks.len(), 2, "{:?}", d.stats());
    assert_ne!(tracks[0][0], tracks[1][0], "the avcC changed");
    // After the second Tracks, the first video sample is a keyframe.
    let second = events
        .iter()
        .rposition(|e| matches!(e, MediaEvent::Tracks(_)))
        .unwrap();
    let first_video_after = events[second..].iter().find_map(|e| match e {
        MediaEvent::Sample(s) if s.track == 0 => Some(s),
        _ => None,
    });
    assert!(first_video_after.unwrap().keyframe);
    assert_eq!(of_track(&samples, 0).len(), 180);
}
