//! Integration tests of weir-packager: one binary, a module per area.

#![allow(clippy::unwrap_used)]

mod boxes;
mod decode;
mod flv;
mod golden;

use std::time::Duration;

use bytes::Bytes;
use weir_media::{AacConfig, Codec, H264Config, Sample, Track};
use weir_packager::{Output, Packager, Settings};

/// 2026-11-25T16:00:00.000Z
pub const T0: u64 = 1_795_622_400_000;

/// A minimal but well-formed avcC (Baseline, one SPS, one PPS, 4-byte NAL lengths).
pub const TEST_AVCC: &[u8] = &[
    0x01, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0x00, 0x04, 0x67, 0x42, 0xc0, 0x1e, 0x01, 0x00, 0x02, 0x68,
    0xce,
];

pub fn synthetic_tracks() -> Vec<Track> {
    vec![
        Track {
            timescale: 90_000,
            codec: Codec::H264(H264Config {
                avcc: Bytes::from_static(TEST_AVCC),
                width: 1280,
                height: 720,
            }),
        },
        Track {
            timescale: 48_000,
            codec: Codec::Aac(AacConfig::from_asc(Bytes::from_static(&[0x11, 0x90])).unwrap()),
        },
    ]
}

pub fn settings(segment_ms: u64, part_ms: u64, window_s: u64) -> Settings {
    Settings {
        segment_target: Duration::from_millis(segment_ms),
        part_target: Duration::from_millis(part_ms),
        window: Duration::from_secs(window_s),
    }
}

/// Pushes 30 fps video frames `from..to` (keyframe every `gop`) with the 48 kHz AAC frames
/// interleaved by time, the wall clock advancing with the media.
pub fn feed(p: &mut Packager, from: i64, to: i64, gop: i64) {
    feed_at(p, from, to, gop, 0, T0);
}

/// `feed` for a session whose timestamps start at `dts0_ms` and whose frame 0 arrives at
/// `wall0`.
pub fn feed_at(p: &mut Packager, from: i64, to: i64, gop: i64, dts0_ms: i64, wall0: u64) {
    let mut a = (0..).take_while(|a| a * 1024 * 30 < from * 48_000).count() as i64;
    for i in from..to {
        while a * 1024 * 30 < i * 48_000 {
            let ms = (a * 1024 * 1000 / 48_000) as u64;
            let sample = Sample {
                track: 1,
                dts: dts0_ms * 48 + a * 1024,
                cts_offset: 0,
                keyframe: true,
                duration: Some(1024),
                data: Bytes::from(vec![0x21; 12]),
            };
            p.push(wall0 + ms, sample).unwrap();
            a += 1;
        }
        let sample = Sample {
            track: 0,
            dts: dts0_ms * 90 + i * 3000,
            cts_offset: 3000,
            keyframe: i % gop == 0,
            duration: None,
            data: Bytes::from(vec![0x65; 200]),
        };
        p.push(wall0 + (i * 1000 / 30) as u64, sample).unwrap();
    }
}

pub fn drain(p: &mut Packager) -> Vec<Output> {
    std::iter::from_fn(|| p.poll_output()).collect()
}
