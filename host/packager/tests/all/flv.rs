//! A minimal FLV reader for the test capture: just enough to turn an `ffmpeg -f flv` file into
//! weir-media tracks and samples the way ingest would.

use bytes::Bytes;
use weir_media::{AacConfig, Codec, H264Config, Sample, Track};

pub struct Demuxed {
    pub tracks: Vec<Track>,
    pub samples: Vec<Sample>,
}

const VIDEO: usize = 0;
const AUDIO: usize = 1;

/// Parses `data` (a whole FLV file with one H.264 and one AAC stream). The video size is not
/// in the avcC, so the caller passes it.
pub fn demux(data: &[u8], width: u16, height: u16) -> Demuxed {
    assert_eq!(&data[..3], b"FLV", "not an FLV file");
    let header_len = u32::from_be_bytes(data[5..9].try_into().unwrap()) as usize;
    let mut pos = header_len + 4; // header, PreviousTagSize0
    let mut avcc = None;
    let mut asc = None;
    let mut samples = Vec::new();
    while pos + 11 <= data.len() {
        let tag_type = data[pos] & 0x1f;
        let size = u32::from_be_bytes([0, data[pos + 1], data[pos + 2], data[pos + 3]]) as usize;
        let ms = i64::from(u32::from_be_bytes([
            data[pos + 7],
            data[pos + 4],
            data[pos + 5],
            data[pos + 6],
        ]));
        let body = &data[pos + 11..pos + 11 + size];
        pos += 11 + size + 4;
        match tag_type {
            9 => {
                let keyframe = body[0] >> 4 == 1;
                assert_eq!(body[0] & 0x0f, 7, "AVC only");
                let cts_ms = i32::from_be_bytes([body[2], body[3], body[4], 0]) >> 8;
                match body[1] {
                    0 => avcc = Some(Bytes::copy_from_slice(&body[5..])),
                    1 => samples.push(Sample {
                        track: VIDEO,
                        dts: ms * 90,
                        cts_offset: cts_ms * 90,
                        keyframe,
                        duration: None,
                        data: Bytes::copy_from_slice(&body[5..]),
                    }),
                    _ => {}
                }
            }
            8 => {
                assert_eq!(body[0], 0xaf, "AAC only");
                match body[1] {
                    0 => asc = Some(Bytes::copy_from_slice(&body[2..])),
                    1 => samples.push(Sample {
                        track: AUDIO,
                        dts: ms * 48,
                        cts_offset: 0,
                        keyframe: true,
                        duration: Some(1024),
                        data: Bytes::copy_from_slice(&body[2..]),
                    }),
                    _ => {}
                }
            }
            _ => {}
        }
    }
    let aac = AacConfig::from_asc(asc.expect("AAC sequence header")).expect("valid ASC");
    assert_eq!(aac.sample_rate, 48_000);
    Demuxed {
        tracks: vec![
            Track {
                timescale: 90_000,
                codec: Codec::H264(H264Config {
                    avcc: avcc.expect("AVC sequence header"),
                    width,
                    height,
                }),
            },
            Track {
                timescale: 48_000,
                codec: Codec::Aac(aac),
            },
        ],
        samples,
    }
}
