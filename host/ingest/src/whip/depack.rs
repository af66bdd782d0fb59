//! RTP → the pipeline's media events, for one WHIP session: H.264 access units rebuilt from
//! RTP (RFC 6184, packetization mode 1) and Opus frames handed to an [`AudioTranscoder`]
//! that turns them into AAC, each on a timeline that starts when the session started.
//!
//! Sans-IO: packets and the arrival time go in, events come out. The session (peer.rs) owns
//! the sockets and the clock.
//!
//! Timestamps: each track's RTP clock is unwrapped (32 → 64 bits) and anchored at the
//! arrival of its first packet, so video (90 kHz) and audio (48 kHz) share one origin, the
//! session's start. Lip sync is then as good as the first packets' arrival spread (a few
//! milliseconds on a LAN); RTCP sender reports would do better and are not used yet.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::media::io::sample_builder::SampleBuilder;
use rtc::rtp::codec::h264::H264Packet;
use rtc::rtp::codec::opus::OpusPacket;
use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::packet::Packet;
use tracing::debug;
use weir_media::{h264, AacConfig, Codec, H264Config, MediaEvent, Sample, Track};

/// Turns Opus into AAC for HLS: the embedding binary supplies it (weir-ingest links no codec
/// library; weir-encoder's is libavcodec's).
pub trait AudioTranscoder: Send {
    /// The AAC it writes.
    fn config(&self) -> AacConfig;
    /// One Opus packet whose first sample sits at `pts` (48 kHz ticks). Returns the AAC frames
    /// that are complete, on a continuous 48 kHz clock that starts at the first `pts` (a gap
    /// in `pts` is filled with silence).
    fn push(&mut self, pts: i64, opus: &[u8]) -> Result<Vec<Sample>, String>;
}

/// Turns a publisher's VP8 into H.264 (the binary supplies it: weir-encoder's libavcodec
/// VP8 decoder and libx264).
pub trait VideoTranscoder: Send {
    /// One VP8 frame at `pts` (90 kHz); `keyframe`: a VP8 keyframe, which becomes an IDR.
    /// Returns the H.264 samples completed (length-prefixed NAL units).
    fn push(&mut self, pts: i64, vp8: &[u8], keyframe: bool) -> Result<Vec<Sample>, String>;
    /// The `avcC` of what it writes, once its first IDR is out.
    fn config(&self) -> Option<H264Config>;
}

/// Makes an Opus transcoder for a session (`start`: the first packet's pts, 48 kHz ticks).
pub type OpusTranscoders =
    std::sync::Arc<dyn Fn(i64) -> Result<Box<dyn AudioTranscoder>, String> + Send + Sync>;
/// Makes a VP8 transcoder for a session.
pub type Vp8Transcoders =
    std::sync::Arc<dyn Fn() -> Result<Box<dyn VideoTranscoder>, String> + Send + Sync>;

/// What sessions transcode with. Without `vp8`, offers with only VP8 video are refused.
#[derive(Clone)]
pub struct Transcoders {
    pub opus: OpusTranscoders,
    pub vp8: Option<Vp8Transcoders>,
}

/// The video codec a session receives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VideoCodec {
    /// Packetization mode 1; passed through.
    H264,
    /// Turned into H.264 by a [`VideoTranscoder`].
    Vp8,
}

const VIDEO_RATE: u32 = 90_000;
const OPUS_RATE: u32 = 48_000;
/// How many sequence numbers a missing packet is waited for before its frame is given up
/// (NACK retransmissions arrive within a round trip; at 30 fps × ~10 packets a frame this is
/// about a third of a second of video).
const MAX_LATE: u16 = 128;
/// And at most this long.
const MAX_DELAY: Duration = Duration::from_millis(400);
/// An access unit larger than this is refused (a 4K IDR at a high rate is a few MB).
const MAX_ACCESS_UNIT: usize = 8 << 20;

/// Which track an RTP packet belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Video,
    Audio,
}

/// Counters for the session's log line and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct DepackStats {
    pub(crate) video_frames: u64,
    pub(crate) audio_frames: u64,
    /// Payloads refused before reassembly (malformed).
    pub(crate) bad_packets: u64,
    /// Packets given up on (lost, or part of a frame that was).
    pub(crate) lost_packets: u64,
    /// Frames dropped while no decodable picture was known (no keyframe yet).
    pub(crate) waiting_frames: u64,
}

/// One track's RTP clock, unwrapped and anchored on the session's timeline.
#[derive(Debug)]
struct Clock {
    rate: u32,
    /// (first RTP timestamp, its place on the session timeline in `rate` ticks)
    anchor: Option<(u32, i64)>,
    /// The last unwrapped timestamp, relative to the anchor's RTP timestamp.
    last: i64,
    last_rtp: u32,
}

impl Clock {
    fn new(rate: u32) -> Self {
        Self {
            rate,
            anchor: None,
            last: 0,
            last_rtp: 0,
        }
    }

    /// The session-timeline time of RTP timestamp `ts`, first seen `since` after the start.
    fn place(&mut self, ts: u32, since: Duration) -> i64 {
        let Some((_, at)) = self.anchor else {
            let at = i64::try_from(since.as_micros() * u128::from(self.rate) / 1_000_000)
                .unwrap_or(i64::MAX / 2);
            self.anchor = Some((ts, at));
            self.last = 0;
            self.last_rtp = ts;
            return at;
        };
        // A step back (reordering) or forward of less than half the range: the shorter way.
        let step = i64::from(ts.wrapping_sub(self.last_rtp) as i32);
        self.last += step;
        self.last_rtp = ts;
        at + self.last
    }
}

/// Reassembly for the session's video codec.
enum Builder {
    H264(SampleBuilder<H264Packet>),
    Vp8(SampleBuilder<Vp8Packet>, Option<Box<dyn VideoTranscoder>>),
}

struct VideoIn {
    builder: Builder,
    clock: Clock,
    /// The `avcC` frames go out under: from the in-band parameter sets (H.264), or from
    /// the transcoder (VP8).
    config: Option<H264Config>,
    params: h264::InBandParams,
    last_dts: Option<i64>,
    holes: Holes,
}

/// Loss, told apart from reordering and retransmission: a sequence number skipped is a hole
/// until it arrives (late, or resent after a NACK); one still missing after [`MAX_DELAY`]
/// was lost, and the frame it belonged to with it.
#[derive(Debug, Default)]
struct Holes {
    /// The highest sequence number seen, unwrapped.
    highest: Option<u64>,
    /// Missing numbers and when they were found missing.
    missing: std::collections::BTreeMap<u64, Instant>,
}

/// More holes than this at once is not jitter: they are all taken as lost.
const MAX_HOLES: usize = 512;

impl Holes {
    /// Records `seq`'s arrival; returns how many packets are now known lost.
    fn arrived(&mut self, now: Instant, seq: u16) -> u64 {
        let ext = match self.highest {
            None => u64::from(seq) + (1 << 16),
            Some(h) => {
                // The nearest unwrapped number to the highest seen.
                let delta = i64::from(seq.wrapping_sub(h as u16) as i16);
                h.saturating_add_signed(delta)
            }
        };
        match self.highest {
            Some(h) if ext > h => {
                for missing in (h + 1..ext).take(MAX_HOLES + 1) {
                    self.missing.insert(missing, now);
                }
                self.highest = Some(ext);
            }
            Some(_) => {
                self.missing.remove(&ext);
            }
            None => self.highest = Some(ext),
        }
        let mut lost = 0u64;
        if self.missing.len() > MAX_HOLES {
            lost = self.missing.len() as u64;
            self.missing.clear();
        }
        while let Some((&seq, &since)) = self.missing.first_key_value() {
            if now.saturating_duration_since(since) < MAX_DELAY {
                break;
            }
            self.missing.remove(&seq);
            lost += 1;
        }
        lost
    }
}

struct AudioIn {
    builder: SampleBuilder<OpusPacket>,
    clock: Clock,
    transcoder: Option<Box<dyn AudioTranscoder>>,
    failed: bool,
}

/// A session's reassembly: push packets, take events.
pub(crate) struct Depack {
    start: Instant,
    video: VideoIn,
    audio: Option<AudioIn>,
    transcoders: Transcoders,
    /// The tracks last sent (video config, audio config).
    sent: Option<(H264Config, Option<AacConfig>)>,
    out: VecDeque<MediaEvent>,
    /// A keyframe is wanted (none yet, or a frame was lost): the session sends a PLI.
    want_keyframe: bool,
    stats: DepackStats,
}

impl Depack {
    /// A session that sends video, and audio when `audio` (Opus was negotiated).
    pub(crate) fn new(
        start: Instant,
        video: VideoCodec,
        audio: bool,
        transcoders: Transcoders,
    ) -> Self {
        let builder = match video {
            VideoCodec::H264 => Builder::H264(
                SampleBuilder::new(MAX_LATE, H264Packet::default(), VIDEO_RATE)
                    .with_max_time_delay(MAX_DELAY),
            ),
            VideoCodec::Vp8 => Builder::Vp8(
                SampleBuilder::new(MAX_LATE, Vp8Packet::default(), VIDEO_RATE)
                    .with_max_time_delay(MAX_DELAY),
                None,
            ),
        };
        Self {
            start,
            video: VideoIn {
                builder,
                clock: Clock::new(VIDEO_RATE),
                config: None,
                params: h264::InBandParams::default(),
                last_dts: None,
                holes: Holes::default(),
            },
            audio: audio.then(|| AudioIn {
                builder: SampleBuilder::new(MAX_LATE, OpusPacket, OPUS_RATE)
                    .with_max_time_delay(MAX_DELAY),
                clock: Clock::new(OPUS_RATE),
                transcoder: None,
                failed: false,
            }),
            transcoders,
            sent: None,
            out: VecDeque::new(),
            want_keyframe: true,
            stats: DepackStats::default(),
        }
    }

    pub(crate) fn stats(&self) -> DepackStats {
        self.stats
    }

    /// Whether a keyframe should be asked for; clears the request.
    pub(crate) fn take_keyframe_request(&mut self) -> bool {
        std::mem::take(&mut self.want_keyframe)
    }

    pub(crate) fn poll_event(&mut self) -> Option<MediaEvent> {
        self.out.pop_front()
    }

    /// One RTP packet of `kind`, arrived `now`.
    pub(crate) fn push(&mut self, now: Instant, kind: Kind, packet: Packet) {
        match kind {
            Kind::Video => {
                // An empty payload is padding (bandwidth probing): it takes its sequence
                // number, so the builder must see it or take the number for a loss.
                let framed = match &self.video.builder {
                    Builder::H264(_) => h264_payload_ok(&packet.payload),
                    Builder::Vp8(..) => vp8_payload_ok(&packet.payload),
                };
                if !packet.payload.is_empty() && !framed {
                    self.stats.bad_packets += 1;
                    return;
                }
                let lost = self.video.holes.arrived(now, packet.header.sequence_number);
                if lost > 0 {
                    self.stats.lost_packets += lost;
                    self.want_keyframe = true;
                }
                let since = now.saturating_duration_since(self.start);
                let mut frames = Vec::new();
                match &mut self.video.builder {
                    Builder::H264(b) => {
                        b.push(now, packet);
                        while let Some(s) = b.pop(now) {
                            frames.push((s.packet_timestamp, s.data));
                        }
                    }
                    Builder::Vp8(b, _) => {
                        b.push(now, packet);
                        while let Some(s) = b.pop(now) {
                            frames.push((s.packet_timestamp, s.data));
                        }
                    }
                }
                for (ts, data) in frames {
                    let dts = self.video.clock.place(ts, since);
                    if matches!(self.video.builder, Builder::H264(_)) {
                        self.video_frame(dts, &data);
                    } else {
                        self.vp8_frame(dts, &data);
                    }
                }
            }
            Kind::Audio => {
                let Some(audio) = self.audio.as_mut() else {
                    return;
                };
                if packet.payload.is_empty() {
                    self.stats.bad_packets += 1;
                    return;
                }
                audio.builder.push(now, packet);
                let since = now.saturating_duration_since(self.start);
                let mut frames = Vec::new();
                while let Some(s) = audio.builder.pop(now) {
                    frames.push((audio.clock.place(s.packet_timestamp, since), s.data));
                }
                for (pts, data) in frames {
                    self.stats.audio_frames += 1;
                    self.audio_frame(pts, &data);
                }
            }
        }
    }

    fn video_frame(&mut self, dts: i64, annex_b: &[u8]) {
        if annex_b.len() > MAX_ACCESS_UNIT {
            self.stats.bad_packets += 1;
            self.want_keyframe = true;
            return;
        }
        let au = h264::access_unit(annex_b);
        if au.data.is_empty() {
            self.stats.bad_packets += 1;
            return;
        }
        match self.video.params.update(&au) {
            Ok(()) => self.video.config = self.video.params.config().cloned(),
            Err(e) => {
                debug!("unusable SPS/PPS: {e}");
                self.stats.bad_packets += 1;
            }
        }
        self.emit_video(dts, au.data, au.keyframe);
    }

    /// A VP8 frame: through the transcoder, then on as H.264.
    fn vp8_frame(&mut self, dts: i64, vp8: &[u8]) {
        if vp8.is_empty() || vp8.len() > MAX_ACCESS_UNIT {
            self.stats.bad_packets += 1;
            return;
        }
        // RFC 6386 9.1: the frame tag's low bit is clear on a keyframe.
        let keyframe = vp8[0] & 1 == 0;
        let Builder::Vp8(_, transcoder) = &mut self.video.builder else {
            return;
        };
        if transcoder.is_none() {
            if !keyframe {
                self.stats.waiting_frames += 1;
                self.want_keyframe = true;
                return;
            }
            let Some(make) = self.transcoders.vp8.as_ref() else {
                return;
            };
            match make() {
                Ok(t) => *transcoder = Some(t),
                Err(e) => {
                    tracing::warn!(error = %e, "no VP8 → H.264 transcoder");
                    self.stats.bad_packets += 1;
                    return;
                }
            }
        }
        let Some(t) = transcoder.as_mut() else {
            return;
        };
        let samples = match t.push(dts, vp8, keyframe) {
            Ok(s) => s,
            Err(e) => {
                debug!("undecodable VP8 frame: {e}");
                self.stats.bad_packets += 1;
                self.want_keyframe = true;
                return;
            }
        };
        if let Some(config) = t.config() {
            self.video.config = Some(config);
        }
        for s in samples {
            self.emit_video(s.dts, s.data, s.keyframe);
        }
    }

    /// One H.264 access unit (length-prefixed), under `self.video.config`.
    fn emit_video(&mut self, dts: i64, data: Bytes, keyframe: bool) {
        // Decode order must rise: a frame that goes back (a late duplicate) is dropped.
        if self.video.last_dts.is_some_and(|last| dts <= last) {
            self.stats.bad_packets += 1;
            return;
        }
        let Some(config) = self.video.config.clone() else {
            self.stats.waiting_frames += 1;
            self.want_keyframe = true;
            return;
        };
        let current = self.sent.as_ref().map(|(v, _)| v);
        if current != Some(&config) {
            // New tracks (the first, or another picture size) start at a keyframe.
            if !keyframe {
                self.stats.waiting_frames += 1;
                self.want_keyframe = true;
                return;
            }
            let audio = self
                .audio
                .as_ref()
                .and_then(|a| a.transcoder.as_ref().map(|t| t.config()))
                .or_else(|| self.audio.is_some().then(aac_placeholder));
            let mut tracks = vec![Track {
                timescale: VIDEO_RATE,
                codec: Codec::H264(config.clone()),
            }];
            if let Some(aac) = &audio {
                tracks.push(Track {
                    timescale: OPUS_RATE,
                    codec: Codec::Aac(aac.clone()),
                });
            }
            self.out.push_back(MediaEvent::Tracks(tracks));
            self.sent = Some((config, audio));
        }
        self.video.last_dts = Some(dts);
        self.stats.video_frames += 1;
        self.out.push_back(MediaEvent::Sample(Sample {
            track: 0,
            dts,
            // WebRTC's H.264 has no B-frames: presentation order is decode order.
            cts_offset: 0,
            keyframe,
            duration: None,
            data,
        }));
    }

    fn audio_frame(&mut self, pts: i64, opus: &[u8]) {
        let Some(audio) = self.audio.as_mut() else {
            return;
        };
        if audio.failed {
            return;
        }
        if audio.transcoder.is_none() {
            match (self.transcoders.opus)(pts) {
                Ok(t) => audio.transcoder = Some(t),
                Err(e) => {
                    tracing::warn!(error = %e, "no Opus → AAC transcoder: the stream goes on without audio");
                    audio.failed = true;
                    return;
                }
            }
        }
        let Some(t) = audio.transcoder.as_mut() else {
            return;
        };
        match t.push(pts, opus) {
            Ok(samples) => {
                // AAC goes out only under tracks that list it.
                if self.sent.as_ref().is_some_and(|(_, a)| a.is_some()) {
                    for mut s in samples {
                        s.track = 1;
                        self.out.push_back(MediaEvent::Sample(s));
                    }
                }
            }
            Err(e) => {
                debug!("undecodable Opus packet: {e}");
                self.stats.bad_packets += 1;
            }
        }
    }
}

/// What the transcoder writes (AAC-LC, 48 kHz, stereo), for tracks sent before its first
/// packet arrives.
pub(crate) fn aac_placeholder() -> AacConfig {
    AacConfig {
        asc: Bytes::from_static(&[0x11, 0x90]),
        object_type: 2,
        sample_rate: OPUS_RATE,
        channels: 2,
    }
}

/// Checks an H.264 RTP payload's framing before the depacketizer sees it (its STAP-A walk
/// indexes past the end of a truncated aggregate): a NAL unit header and, for STAP-A, every
/// aggregated unit's length within the payload. Types the depacketizer refuses (STAP-B,
/// MTAP, FU-B) are refused here too.
pub(crate) fn h264_payload_ok(p: &[u8]) -> bool {
    const AUD: u8 = 9;
    let Some(&b0) = p.first() else {
        return false;
    };
    match b0 & 0x1f {
        0 | 25..=27 | 29..=31 => false,
        AUD => p.len() >= 2,
        1..=23 => p.len() > 2,
        24 => {
            let mut at = 1;
            if p.len() <= 2 {
                return false;
            }
            while at < p.len() {
                let Some(len) = p.get(at..at + 2) else {
                    return false;
                };
                let len = usize::from(u16::from_be_bytes([len[0], len[1]]));
                at += 2 + len;
                if len == 0 || at > p.len() {
                    return false;
                }
            }
            true
        }
        // FU-A: indicator and header, and at least one byte of the unit.
        _ => p.len() > 2,
    }
}

/// Checks a VP8 RTP payload descriptor (RFC 7741 4.2) is whole before the depacketizer reads
/// it: the extension bytes its flags announce, and a byte of frame after them.
pub(crate) fn vp8_payload_ok(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else {
        return false;
    };
    let mut at = 1;
    if b0 & 0x80 != 0 {
        let Some(&x) = p.get(1) else {
            return false;
        };
        at = 2;
        if x & 0x80 != 0 {
            // PictureID: one byte, or two when its M bit is set.
            let Some(&pid) = p.get(at) else {
                return false;
            };
            at += if pid & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            at += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            at += 1; // TID/KEYIDX
        }
    }
    p.len() > at
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::disallowed_methods)] // an epoch for the test
mod tests {
    use super::*;
    use rtc::rtp::header::Header;
    use std::sync::{Arc, Mutex};

    /// Records what it was given and turns each Opus packet into one 1024-sample "AAC" frame.
    struct Fake(Arc<Mutex<Vec<i64>>>);

    impl AudioTranscoder for Fake {
        fn config(&self) -> AacConfig {
            aac_placeholder()
        }
        fn push(&mut self, pts: i64, opus: &[u8]) -> Result<Vec<Sample>, String> {
            self.0.lock().unwrap().push(pts);
            Ok(vec![Sample {
                track: 7,
                dts: pts,
                cts_offset: 0,
                keyframe: true,
                duration: Some(1024),
                data: Bytes::copy_from_slice(opus),
            }])
        }
    }

    // A 320x240 constrained-baseline SPS and its PPS, from `ffmpeg … -c:v libx264 -profile:v baseline`.
    const SPS: &[u8] = &[
        0x67, 0x42, 0xc0, 0x0d, 0xd9, 0x01, 0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10,
        0x00, 0x00, 0x03, 0x03, 0xc0, 0xf1, 0x42, 0xa4, 0x80,
    ];
    const PPS: &[u8] = &[0x68, 0xcb, 0x83, 0xcb, 0x20];

    fn packet(seq: u16, ts: u32, marker: bool, payload: Vec<u8>) -> Packet {
        Packet {
            header: Header {
                version: 2,
                marker,
                payload_type: 102,
                sequence_number: seq,
                timestamp: ts,
                ssrc: 1,
                ..Default::default()
            },
            payload: Bytes::from(payload),
        }
    }

    fn stap_a(units: &[&[u8]]) -> Vec<u8> {
        let mut p = vec![24];
        for u in units {
            p.extend_from_slice(&(u.len() as u16).to_be_bytes());
            p.extend_from_slice(u);
        }
        p
    }

    fn depack() -> (Depack, Arc<Mutex<Vec<i64>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = Arc::clone(&seen);
        let transcoders = Transcoders {
            opus: Arc::new(move |_| Ok(Box::new(Fake(Arc::clone(&s))) as Box<dyn AudioTranscoder>)),
            vp8: None,
        };
        let d = Depack::new(Instant::now(), VideoCodec::H264, true, transcoders);
        (d, seen)
    }

    fn events(d: &mut Depack) -> Vec<MediaEvent> {
        std::iter::from_fn(|| d.poll_event()).collect()
    }

    #[test]
    fn frames_wait_for_a_keyframe_with_parameter_sets_then_carry_rising_timestamps() {
        let (mut d, _) = depack();
        let t0 = d.start;
        // A P frame first: nothing decodes, a keyframe is asked for.
        d.push(
            t0,
            Kind::Video,
            packet(1, 1000, true, vec![0x41, 0x9a, 1, 2]),
        );
        // (The sample builder releases a frame when the next one starts.)
        d.push(t0, Kind::Video, packet(2, 4000, false, stap_a(&[SPS, PPS])));
        d.push(
            t0,
            Kind::Video,
            packet(3, 4000, true, vec![0x65, 0x88, 1, 2]),
        );
        d.push(
            t0,
            Kind::Video,
            packet(4, 7000, true, vec![0x41, 0x9a, 3, 4]),
        );
        d.push(
            t0,
            Kind::Video,
            packet(5, 10000, true, vec![0x41, 0x9a, 5, 6]),
        );
        assert!(d.take_keyframe_request());
        let ev = events(&mut d);
        let MediaEvent::Tracks(tracks) = &ev[0] else {
            panic!("tracks first: {ev:?}")
        };
        assert_eq!(tracks.len(), 2);
        assert!(matches!(&tracks[0].codec, Codec::H264(c) if (c.width, c.height) == (320, 240)));
        assert!(matches!(&tracks[1].codec, Codec::Aac(_)));
        let samples: Vec<&Sample> = ev
            .iter()
            .filter_map(|e| match e {
                MediaEvent::Sample(s) => Some(s),
                _ => None,
            })
            .collect();
        assert_eq!(samples.len(), 2, "{ev:?}");
        assert!(samples[0].keyframe && !samples[1].keyframe);
        assert_eq!(samples[1].dts - samples[0].dts, 3000);
        // Length-prefixed, parameter sets kept in the keyframe.
        assert_eq!(&samples[0].data[..4], &[0, 0, 0, SPS.len() as u8]);
        assert!(!d.take_keyframe_request());
    }

    #[test]
    fn rtp_timestamps_unwrap_across_the_32_bit_boundary() {
        let mut c = Clock::new(90_000);
        let a = c.place(u32::MAX - 1499, Duration::from_secs(1));
        assert_eq!(a, 90_000);
        assert_eq!(c.place(1500, Duration::ZERO), 90_000 + 3000);
        // Reordering: a step back is a step back, not a wrap forward.
        assert_eq!(c.place(0, Duration::ZERO), 90_000 + 1500);
    }

    #[test]
    fn opus_becomes_track_one_once_the_tracks_are_out_on_the_sessions_clock() {
        let (mut d, seen) = depack();
        let t0 = d.start;
        // Audio before any picture: transcoded (its clock runs) but not sent.
        d.push(t0, Kind::Audio, packet(10, 500, true, vec![0xfc, 1]));
        d.push(t0, Kind::Audio, packet(11, 1460, true, vec![0xfc, 2]));
        d.push(t0, Kind::Video, packet(1, 1000, false, stap_a(&[SPS, PPS])));
        d.push(
            t0,
            Kind::Video,
            packet(2, 1000, true, vec![0x65, 0x88, 1, 2]),
        );
        d.push(
            t0,
            Kind::Video,
            packet(3, 4000, true, vec![0x41, 0x9a, 3, 4]),
        );
        d.push(
            t0 + Duration::from_millis(40),
            Kind::Audio,
            packet(12, 2420, true, vec![0xfc, 3]),
        );
        d.push(
            t0 + Duration::from_millis(40),
            Kind::Audio,
            packet(13, 3380, true, vec![0xfc, 4]),
        );
        let ev = events(&mut d);
        let audio: Vec<&Sample> = ev
            .iter()
            .filter_map(|e| match e {
                MediaEvent::Sample(s) if s.track == 1 => Some(s),
                _ => None,
            })
            .collect();
        assert!(!audio.is_empty(), "{ev:?}");
        // Audio anchored at the session start (0), each packet 960 ticks (20 ms) on.
        let pts = seen.lock().unwrap().clone();
        assert_eq!(&pts[..3], &[0, 960, 1920]);
    }

    #[test]
    fn malformed_payloads_are_refused_before_the_depacketizer() {
        assert!(!h264_payload_ok(&[]));
        assert!(!h264_payload_ok(&[24, 0]));
        // A STAP-A whose second length is cut: the depacketizer would index past the end.
        assert!(!h264_payload_ok(&[24, 0, 1, 0x67, 0]));
        assert!(!h264_payload_ok(&[24, 0, 5, 0x67]));
        assert!(!h264_payload_ok(&[25, 1, 2, 3]));
        assert!(h264_payload_ok(&stap_a(&[SPS, PPS])));
        assert!(h264_payload_ok(&[28, 0x85, 1]));
        let (mut d, _) = depack();
        let t0 = d.start;
        d.push(t0, Kind::Video, packet(1, 0, true, vec![24, 0, 1, 0x67, 0]));
        assert_eq!(d.stats().bad_packets, 1);
    }

    #[test]
    fn reordering_and_resends_are_not_loss_but_a_hole_that_stays_is() {
        let mut h = Holes::default();
        let t0 = Instant::now();
        assert_eq!(h.arrived(t0, 65534), 0);
        assert_eq!(h.arrived(t0, 1), 0); // across the wrap: 65535 and 0 missing
        assert_eq!(h.arrived(t0, 65535), 0); // late, not lost
        assert_eq!(h.arrived(t0 + MAX_DELAY, 2), 1, "0 never came");
        assert_eq!(
            h.arrived(t0 + MAX_DELAY, 0),
            0,
            "too late to matter: no double count"
        );
        assert!(h.missing.is_empty());
    }

    #[test]
    fn vp8_descriptors_are_whole_before_the_depacketizer() {
        assert!(!vp8_payload_ok(&[]));
        assert!(!vp8_payload_ok(&[0x10])); // S bit, no frame byte
        assert!(vp8_payload_ok(&[0x10, 0x9d]));
        // X set: the extension byte, then a two-byte PictureID, then the frame.
        assert!(!vp8_payload_ok(&[0x90, 0x80, 0x81]));
        assert!(!vp8_payload_ok(&[0x90, 0x80, 0x81, 0x02]));
        assert!(vp8_payload_ok(&[0x90, 0x80, 0x81, 0x02, 0x9d]));
        // TL0PICIDX and TID announced but cut.
        assert!(!vp8_payload_ok(&[0x90, 0x60, 0x01]));
    }
}
