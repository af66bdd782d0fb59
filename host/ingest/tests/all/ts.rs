//! The MPEG-TS demuxer on real ffmpeg captures (see tests/data/README.md), whole, in awkward
//! pieces, and damaged.

use weir_ingest::flv::FlvFile;
use weir_ingest::ts::{TsDemuxer, TsStats};
use weir_media::{Codec, MediaEvent, Sample};

use crate::support::{read_data, split};

pub const TS: usize = 188;

/// Demuxes `data` fed in pieces of the given sizes (cycled).
pub fn demux_in_pieces(data: &[u8], sizes: &[usize]) -> (Vec<MediaEvent>, TsStats) {
    let mut d = TsDemuxer::default();
    let mut events = Vec::new();
    let mut rest = data;
    for &n in sizes.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (piece, tail) = rest.split_at(n.clamp(1, rest.len()));
        d.push(piece);
        events.extend(std::iter::from_fn(|| d.poll_event()));
        rest = tail;
    }
    d.finish();
    events.extend(std::iter::from_fn(|| d.poll_event()));
    (events, d.stats())
}

pub fn demux(data: &[u8]) -> (Vec<MediaEvent>, TsStats) {
    demux_in_pieces(data, &[data.len().max(1)])
}

pub fn of_track(samples: &[Sample], track: usize) -> Vec<&Sample> {
    samples.iter().filter(|s| s.track == track).collect()
}

pub fn pid(p: &[u8]) -> u16 {
    u16::from(p[1] & 0x1f) << 8 | u16::from(p[2])
}

pub use weir_ingest::scte35::crc32_mpeg2 as crc32;

/// The PMT PID from the first PAT (ffmpeg: one program, one packet).
fn pmt_pid(data: &[u8]) -> u16 {
    let pat = data.chunks(TS).find(|p| pid(p) == 0).unwrap();
    // 4-byte header, pointer 0, then the section: program number at 8..10, PID at 10..12.
    u16::from(pat[15] & 0x1f) << 8 | u16::from(pat[16])
}

/// Rewrites the section in every PMT packet (`f` gets the section without its CRC), then
/// fixes section_length and appends a correct CRC unless `f` returns false.
fn edit_pmts(data: &[u8], f: impl Fn(&mut Vec<u8>) -> bool) -> Vec<u8> {
    let pmt = pmt_pid(data);
    let mut out = Vec::with_capacity(data.len());
    for p in data.chunks(TS) {
        if pid(p) != pmt {
            out.extend_from_slice(p);
            continue;
        }
        let len = usize::from(p[6] & 0x0f) << 8 | usize::from(p[7]);
        let mut section = p[5..5 + 3 + len - 4].to_vec();
        let crc = p[5 + 3 + len - 4..5 + 3 + len].to_vec();
        if f(&mut section) {
            let len = section.len() + 4 - 3;
            section[1] = (section[1] & 0xf0) | (len >> 8) as u8;
            section[2] = len as u8;
            let crc = crc32(&section);
            section.extend_from_slice(&crc.to_be_bytes());
        } else {
            section.extend_from_slice(&crc);
        }
        let mut packet = p[..5].to_vec();
        packet.extend_from_slice(&section);
        packet.resize(TS, 0xff);
        out.extend_from_slice(&packet);
    }
    out
}

/// The stream entries of a PMT section without CRC: (offset of stream_type, type, PID).
fn pmt_streams(section: &[u8]) -> Vec<(usize, u8, u16)> {
    let pil = usize::from(section[10] & 0x0f) << 8 | usize::from(section[11]);
    let mut i = 12 + pil;
    let mut v = Vec::new();
    while i + 5 <= section.len() {
        let pid = u16::from(section[i + 1] & 0x1f) << 8 | u16::from(section[i + 2]);
        v.push((i, section[i], pid));
        i += 5 + (usize::from(section[i + 3] & 0x0f) << 8 | usize::from(section[i + 4]));
    }
    v
}

fn well_formed(s: &Sample) -> bool {
    let mut rest = &s.data[..];
    while !rest.is_empty() {
        let Some(len) = rest.get(..4) else {
            return false;
        };
        let len = u32::from_be_bytes(len.try_into().unwrap()) as usize;
        let Some(tail) = rest.get(4 + len..) else {
            return false;
        };
        rest = tail;
    }
    true
}

/// A length-prefixed sample without access unit delimiters, SPS and PPS (NAL types 9, 7, 8):
/// what an MP4-style stream and its Annex B remux have in common.
fn slices_only(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = data;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
        if ![7, 8, 9].contains(&(rest[4] & 0x1f)) {
            out.extend_from_slice(&rest[..4 + len]);
        }
        rest = &rest[4 + len..];
    }
    out
}

#[test]
fn testsrc_matches_ffmpegs_flv_remux_of_the_same_stream() {
    let (events, stats) = demux(&read_data("testsrc.ts"));
    assert!(matches!(events[0], MediaEvent::Tracks(_)), "Tracks first");
    let (tracks, samples) = split(&events);
    // testsrc.ts is `ffmpeg -i testsrc.flv -c copy -f mpegts`: the same encode, seen
    // through the FLV demuxer.
    let flv = FlvFile::read_all(&read_data("testsrc.flv")).unwrap();
    let (flv_tracks, flv_samples) = split(&flv);
    assert_eq!(
        tracks[0][0], flv_tracks[0][0],
        "the same avcC, built from SPS/PPS"
    );
    let (Codec::Aac(a), Codec::Aac(flv_a)) = (&tracks[0][1].codec, &flv_tracks[0][1].codec) else {
        panic!("{tracks:?}")
    };
    // ffmpeg's FLV ASC adds an SBR sync extension; ADTS carries only the first two bytes.
    assert_eq!(
        (&a.asc[..], &flv_a.asc[..2]),
        (&flv_a.asc[..2], &[0x11u8, 0x88][..])
    );
    assert_eq!(tracks[0][1].timescale, flv_tracks[0][1].timescale);
    let Codec::H264(v) = &tracks[0][0].codec else {
        panic!("{tracks:?}")
    };
    assert_eq!((v.width, v.height), (320, 240));

    let video = of_track(&samples, 0);
    let audio = of_track(&samples, 1);
    let flv_video = of_track(&flv_samples, 0);
    let flv_audio = of_track(&flv_samples, 1);
    assert_eq!(video.len(), 90, "3 s at 30 fps");
    assert_eq!(video.len(), flv_video.len());
    let keyframes: Vec<usize> = (0..video.len()).filter(|&i| video[i].keyframe).collect();
    assert_eq!(keyframes, vec![0, 30, 60], "-g 30");
    // The mpegts muxer delays everything by 1.4 s (126 000 ticks).
    for (t, f) in video.iter().zip(&flv_video) {
        assert_eq!(t.dts - 126_000, f.dts);
        assert_eq!(t.keyframe, f.keyframe);
        assert!(well_formed(t));
        assert!(
            slices_only(&t.data) == slices_only(&f.data),
            "NAL units differ"
        );
    }
    // Remuxed from FLV: 33 or 34 ms steps.
    assert!(video
        .windows(2)
        .all(|w| (2970..=3060).contains(&(w[1].dts - w[0].dts))));
    // The TS muxer interleaves the first audio PES after the first keyframe, so the TS
    // demuxer keeps a frame that FLV (audio tag before any video) dropped.
    assert_eq!(audio.len(), flv_audio.len() + 1);
    let audio = &audio[1..];
    for (t, f) in audio.iter().zip(&flv_audio) {
        assert_eq!(t.data, f.data, "same raw AAC frames");
        assert_eq!((t.duration, t.keyframe), (Some(1024), true));
    }
    assert!(audio.windows(2).all(|w| w[1].dts - w[0].dts == 1024));
    assert_eq!(audio[0].dts - 1_400 * 48, flv_audio[0].dts);
    // Audio and video start together (within two frames).
    assert!((video[0].dts / 90 - audio[0].dts * 1000 / 48_000).abs() < 50);
    assert_eq!(
        (
            stats.cc_errors,
            stats.pes_errors,
            stats.psi_errors,
            stats.dropped
        ),
        (0, 0, 0, 0),
        "{stats:?}"
    );
    assert_eq!(stats.packets as usize, read_data("testsrc.ts").len() / TS);
}

#[test]
fn any_split_gives_the_same_events() {
    for name in [
        "testsrc.ts",
        "testsrc-bframes.ts",
        "pts-wrap.ts",
        "testsrc-scte35.ts",
    ] {
        let data = read_data(name);
        let (whole, stats) = demux(&data);
        assert!(whole.len() > 200, "{name}");
        let mut x = 0x9e37_79b9u32;
        let random: Vec<usize> = (0..500)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                (x % 3000) as usize + 1
            })
            .collect();
        for sizes in [
            &[1][..],
            &[187],
            &[188],
            &[189],
            &[1316],
            &[7, 376, 1, 188 * 3 + 5],
            &random,
        ] {
            let (events, split_stats) = demux_in_pieces(&data, sizes);
            assert_eq!(
                events,
                whole,
                "{name} split {:?}",
                &sizes[..sizes.len().min(4)]
            );
            assert_eq!(split_stats, stats, "{name}");
        }
    }
}

#[test]
fn bframes_carry_composition_offsets() {
    let (events, _) = demux(&read_data("testsrc-bframes.ts"));
    let (_, samples) = split(&events);
    let video = of_track(&samples, 0);
    assert_eq!(video.len(), 90);
    assert!(video.iter().any(|s| s.cts_offset > 0), "B-frames reorder");
    assert!(video.iter().all(|s| s.cts_offset >= 0));
    assert!(video.windows(2).all(|w| w[1].dts > w[0].dts));
    let mut pts: Vec<i64> = video
        .iter()
        .map(|s| s.dts + i64::from(s.cts_offset))
        .collect();
    pts.sort_unstable();
    assert!(pts.windows(2).all(|w| w[1] - w[0] == 3000), "30 fps grid");
}

#[test]
fn pts_wrap_is_unwrapped_onto_one_timeline() {
    // ffmpeg -output_ts_offset 95441: the 33-bit PTS wraps about 0.9 s in.
    let (events, stats) = demux(&read_data("pts-wrap.ts"));
    let (tracks, samples) = split(&events);
    assert_eq!(tracks.len(), 1, "a wrap is not a codec change");
    let video = of_track(&samples, 0);
    let audio = of_track(&samples, 1);
    assert_eq!(video.len(), 90);
    let wrap = 1i64 << 33;
    assert!(video[0].dts < wrap && video[89].dts > wrap, "crosses 2^33");
    assert!(video.windows(2).all(|w| w[1].dts - w[0].dts == 3000));
    assert!(audio[0].dts < wrap * 44_100 / 90_000);
    assert!(audio.windows(2).all(|w| w[1].dts - w[0].dts == 1024));
    assert_eq!(audio.last().unwrap().dts / 44_100, video[89].dts / 90_000);
    assert_eq!((stats.audio_resyncs, stats.pes_errors), (0, 0), "{stats:?}");
}

#[test]
fn continuity_errors_drop_only_the_damaged_pes() {
    let data = read_data("testsrc.ts");
    let (reference, _) = demux(&data);
    let (_, ref_samples) = split(&reference);
    // Drop one packet from the middle of video frame 45 and one audio packet.
    let video_starts: Vec<usize> = data
        .chunks(TS)
        .enumerate()
        .filter(|(_, p)| pid(p) == 0x100 && p[1] & 0x40 != 0)
        .map(|(i, _)| i)
        .collect();
    let lost_video = video_starts[45] + 1;
    assert_eq!(
        pid(&data[lost_video * TS..]),
        0x100,
        "frame 45 spans packets"
    );
    let lost_audio = data
        .chunks(TS)
        .enumerate()
        .filter(|(_, p)| pid(p) == 0x101 && p[1] & 0x40 == 0)
        .nth(20)
        .unwrap()
        .0;
    let damaged: Vec<u8> = data
        .chunks(TS)
        .enumerate()
        .filter(|(i, _)| *i != lost_video && *i != lost_audio)
        .flat_map(|(_, p)| p.to_vec())
        .collect();
    let (events, stats) = demux(&damaged);
    let (_, samples) = split(&events);
    assert_eq!(stats.cc_errors, 2, "{stats:?}");
    assert_eq!(stats.pes_errors, 2, "one video and one audio PES dropped");
    let video = of_track(&samples, 0);
    assert_eq!(video.len(), 89);
    // Every other sample is delivered unchanged.
    let lost_dts = of_track(&ref_samples, 0)[45].dts;
    assert!(video.iter().all(|s| s.dts != lost_dts));
    for s in video {
        assert!(ref_samples.contains(s), "video sample at {} changed", s.dts);
    }
    // Audio re-aligns to the next PES timestamp after the gap (within a tick of rounding).
    let ref_audio_samples = of_track(&ref_samples, 1);
    for s in of_track(&samples, 1) {
        let r = ref_audio_samples.iter().find(|r| r.data == s.data).unwrap();
        // This TS was remuxed from FLV, so its audio PTS carry millisecond rounding.
        assert!((r.dts - s.dts).abs() <= 48, "{} vs {}", r.dts, s.dts);
    }
    let audio = of_track(&samples, 1).len();
    let ref_audio = of_track(&ref_samples, 1).len();
    // One audio PES (about 15 frames here) is gone.
    assert!(
        audio < ref_audio && audio + 20 >= ref_audio,
        "{audio} {ref_audio}"
    );
}

#[test]
fn garbage_and_lost_sync_are_survived() {
    let data = read_data("testsrc.ts");
    let (reference, _) = demux(&data);
    let mut damaged = b"not a transport stream \x47\x47 at all".repeat(30);
    let cut = 400 * TS;
    damaged.extend_from_slice(&data[..cut]);
    // Junk between packets, then half a packet lost.
    damaged.extend_from_slice(&[0x47, 0x00, 0x12, 0x47, 0xff, 0x13]);
    damaged.extend_from_slice(&data[cut..cut + 50 * TS]);
    damaged.extend_from_slice(&data[cut + 50 * TS + 100..]);
    let (events, stats) = demux(&damaged);
    assert!(stats.resyncs >= 2, "{stats:?}");
    assert!(stats.skipped_bytes > 900, "{stats:?}");
    let (tracks, samples) = split(&events);
    let (ref_tracks, ref_samples) = split(&reference);
    assert_eq!(tracks, ref_tracks);
    // What follows the damage is intact.
    let tail: Vec<&Sample> = ref_samples.iter().rev().take(60).collect();
    for s in tail {
        assert!(samples.contains(s));
    }
    assert!(samples.len() + 6 >= ref_samples.len());

    // Pure garbage, then a good stream.
    let mut d = TsDemuxer::default();
    d.push(&[0x47; 5000]);
    d.push(&[0x00; 3000]);
    d.push(&data);
    d.finish();
    let events: Vec<MediaEvent> = std::iter::from_fn(|| d.poll_event()).collect();
    assert_eq!(split(&events), split(&reference));
}

#[test]
fn a_bad_pmt_is_skipped_and_counted() {
    let data = read_data("testsrc.ts");
    let (reference, _) = demux(&data);
    let pmt = pmt_pid(&data);
    let pmts = data.chunks(TS).filter(|p| pid(p) == pmt).count();
    assert!(pmts > 5, "ffmpeg repeats the PMT");

    // Every PMT with a bad CRC: nothing is selected.
    let bad = edit_pmts(&data, |s| {
        s[12] ^= 0x01;
        false
    });
    let (events, stats) = demux(&bad);
    assert!(events.is_empty());
    assert_eq!(stats.psi_errors as usize, pmts, "{stats:?}");

    // Only the first PMT damaged: the next copy (same version) is still read.
    let mut first_bad = data.clone();
    let first = data.chunks(TS).position(|p| pid(p) == pmt).unwrap();
    first_bad[first * TS + 20] ^= 0x40;
    let (events, stats) = demux(&first_bad);
    assert_eq!(stats.psi_errors, 1);
    let (tracks, samples) = split(&events);
    assert_eq!(tracks, split(&reference).0);
    // Lost: what came before the second PMT, and then up to the keyframe at 1 s.
    assert!(samples.len() > 150, "{}", samples.len());

    // An unknown video stream_type (HEVC, 0x24): audio alone.
    let hevc = edit_pmts(&data, |s| {
        for (at, ty, _) in pmt_streams(s) {
            if ty == 0x1b {
                s[at] = 0x24;
            }
        }
        true
    });
    let (events, stats) = demux(&hevc);
    let (tracks, samples) = split(&events);
    assert_eq!(tracks.len(), 1);
    assert!(matches!(&tracks[0][..], [t] if matches!(t.codec, Codec::Aac(_))));
    assert_eq!(samples.len(), of_track(&split(&reference).1, 1).len());
    assert_eq!(stats.psi_errors, 0);

    // A PMT pointing at PIDs that carry nothing, then the real stream: no panic, and the
    // good PMT (a change) takes over.
    let nowhere = edit_pmts(&data, |s| {
        for (at, _, _) in pmt_streams(s) {
            s[at + 1] = 0xe5;
            s[at + 2] ^= 0x55;
        }
        true
    });
    let (events, _) = demux(&nowhere);
    assert!(events.is_empty());
    let mut both = nowhere.clone();
    both.extend_from_slice(&data);
    let (events, stats) = demux(&both);
    assert_eq!(stats.pmt_changes, 1, "{stats:?}");
    let (tracks, samples) = split(&events);
    assert_eq!(tracks, split(&reference).0);
    assert!(samples.len() > 200);
}

#[test]
fn a_codec_change_in_the_pmt_gives_new_tracks() {
    // Audio disappears from the PMT half way: the next keyframe starts video-only tracks.
    let data = read_data("testsrc.ts");
    let no_audio = edit_pmts(&data, |s| {
        let streams = pmt_streams(s);
        if let Some(&(at, _, _)) = streams.iter().find(|(_, ty, _)| *ty == 0x0f) {
            let len = 5 + (usize::from(s[at + 3] & 0x0f) << 8 | usize::from(s[at + 4]));
            s.drain(at..at + len);
            s[5] = (s[5] & 0xc1) | (((s[5] >> 1) + 1) & 0x1f) << 1; // version + 1
        }
        true
    });
    let mut joined = data[..data.len() / 2 / TS * TS].to_vec();
    joined.extend_from_slice(&no_audio[data.len() / 2 / TS * TS..]);
    let (events, stats) = demux(&joined);
    let (tracks, samples) = split(&events);
    assert_eq!(tracks.len(), 2, "{stats:?}");
    assert_eq!((tracks[0].len(), tracks[1].len()), (2, 1));
    let second = events
        .iter()
        .rposition(|e| matches!(e, MediaEvent::Tracks(_)))
        .unwrap();
    let MediaEvent::Sample(first) = &events[second + 1] else {
        panic!("a sample follows")
    };
    assert!(first.keyframe && first.track == 0);
    assert!(events[second..]
        .iter()
        .all(|e| !matches!(e, MediaEvent::Sample(s) if s.track != 0)));
    assert_eq!(stats.video_samples, 90, "video goes on throughout");
    assert!(
        stats.audio_samples < 100,
        "audio stops with the PMT change: {stats:?}"
    );
    assert_eq!(
        samples.len() as u64,
        stats.video_samples + stats.audio_samples
    );
}

/// Random damage to a real capture (a cheap stand-in for the cargo-fuzz target on stable):
/// never a panic, and the counters move.
#[test]
fn random_corruption_never_panics() {
    let data = read_data("testsrc-scte35.ts");
    let mut x = 0x2545_f491u32;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        x as usize
    };
    for round in 0..150 {
        let mut d = data.clone();
        for _ in 0..(1 + round % 40) {
            let at = next() % d.len();
            match next() % 4 {
                0 => d[at] ^= 1 << (next() % 8),
                1 => d[at] = next() as u8,
                2 => {
                    let end = (at + next() % 400).min(d.len());
                    d.drain(at..end);
                }
                _ => {
                    // Damage a packet header specifically.
                    let p = at / TS * TS;
                    d[p + 1 + next() % 3] = next() as u8;
                }
            }
        }
        let sizes = [1 + next() % 2000, 1 + next() % 300];
        let (events, _) = demux_in_pieces(&d, &sizes);
        for e in &events {
            if let MediaEvent::Sample(s) = e {
                if s.track == 0 {
                    assert!(well_formed(s));
                }
            }
        }
    }
}
