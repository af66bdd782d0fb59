//! FLV audio and video tag bodies → [`MediaEvent`]s.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use weir_media::{AacConfig, Codec, H264Config, MediaEvent, Sample, Track, TrackKind};

use crate::{Error, Result};

/// Video media that may pass without a keyframe before the session is refused.
pub const DEFAULT_NO_KEYFRAME_TIMEOUT: Duration = Duration::from_secs(10);
/// How long (in media time) to wait for a missing track's configuration before starting
/// without it.
pub const DEFAULT_TRACK_WAIT: Duration = Duration::from_secs(1);
/// Samples (and bytes) held while waiting for a track's configuration, whatever their
/// timestamps say: a publisher that never advances its clock cannot grow the queue.
const MAX_PENDING: usize = 1024;
const MAX_PENDING_BYTES: usize = 32 << 20;
/// 90 kHz video ticks per millisecond.
const VIDEO_TICKS_PER_MS: i64 = 90;
/// PCM samples in one AAC frame.
const AAC_FRAME: i64 = 1024;

/// How the demuxer decides when to start and when to give up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemuxSettings {
    /// Video media time without a keyframe after which [`Error::NoKeyframe`] is returned,
    /// before the first keyframe and between keyframes alike.
    pub no_keyframe_timeout: Duration,
    /// Media time to wait for a track that the stream announced (or might still send)
    /// before starting without it: for AAC config after the first keyframe when metadata
    /// announced audio, and for a video sequence header in a stream that so far has only audio.
    pub track_wait: Duration,
}

impl Default for DemuxSettings {
    fn default() -> Self {
        Self {
            no_keyframe_timeout: DEFAULT_NO_KEYFRAME_TIMEOUT,
            track_wait: DEFAULT_TRACK_WAIT,
        }
    }
}

/// What the publisher announced about its tracks (RTMP `onMetaData`, FLV header flags).
/// `None` means "not said".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamHints {
    pub video: Option<bool>,
    pub audio: Option<bool>,
}

/// Counters for one demuxer, for logs and metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DemuxStats {
    pub video_samples: u64,
    pub audio_samples: u64,
    /// Samples dropped: before the first `Tracks`, before a keyframe after a codec change,
    /// before their track's configuration, or empty.
    pub dropped: u64,
    /// Times the AAC sample counter was re-aligned to the RTMP clock (a gap in the audio).
    pub audio_resyncs: u64,
    pub tracks_events: u64,
}

/// The three FLV tag types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagKind {
    Audio,
    Video,
    /// AMF0 script data (`onMetaData`): ignored by the demuxer.
    Script,
}

impl TagKind {
    /// The FLV TagType byte (8, 9, 18), if it is one of the three.
    pub fn from_flv(tag_type: u8) -> Option<Self> {
        match tag_type {
            8 => Some(Self::Audio),
            9 => Some(Self::Video),
            18 => Some(Self::Script),
            _ => None,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiting {
    /// Holding video from the first keyframe until the announced AAC config arrives.
    ForAudio,
    /// Holding audio in case a video sequence header follows.
    ForVideo,
}

#[derive(Debug)]
struct Wait {
    what: Waiting,
    since_ms: i64,
}

#[derive(Debug)]
struct Video {
    config: H264Config,
    /// NAL length field size from the avcC (1, 2 or 4).
    length_size: u8,
}

/// Turns RTMP/FLV audio and video tag bodies into [`MediaEvent`]s. Sans-IO: feed tags with
/// [`push_tag`](Self::push_tag), take events with [`poll_event`](Self::poll_event).
///
/// - Video: H.264 only (`CodecID` 7). Timescale 90 000, `dts = ms × 90`,
///   `cts_offset = composition time × 90`. Samples keep 4-byte NAL lengths.
/// - Audio: AAC only (`SoundFormat` 10). Timescale = sample rate, `duration = 1024`. The DTS
///   is a running sample counter, re-aligned to the millisecond clock only when they drift
///   apart by more than one frame, so RTMP's millisecond rounding does not make durations
///   jitter.
/// - 32-bit millisecond timestamps are extended to 64 bits across wrap-around.
/// - `Tracks` comes first, at the first video keyframe (with audio if its config is known,
///   waiting up to [`DemuxSettings::track_wait`] for it when the stream announced audio), or
///   for audio-only streams at the first AAC frame once no video header came within
///   `track_wait`. A changed sequence header yields a new `Tracks` at the next keyframe.
///   Samples that cannot be placed under a `Tracks` are dropped and counted.
#[derive(Debug)]
pub struct FlvDemuxer {
    settings: DemuxSettings,
    hints: StreamHints,
    /// (last raw 32-bit timestamp, its extended value).
    clock: Option<(u32, i64)>,
    video: Option<Video>,
    audio: Option<AacConfig>,
    /// The configs of the last `Tracks` sent; `Sample::track` follows their layout.
    sent_video: Option<H264Config>,
    sent_audio: Option<AacConfig>,
    started: bool,
    wait: Option<Wait>,
    audio_wait_done: bool,
    pending: Vec<(TrackKind, Sample)>,
    pending_bytes: usize,
    first_video_ms: Option<i64>,
    last_keyframe_ms: Option<i64>,
    last_video_dts: Option<i64>,
    next_audio_dts: Option<i64>,
    out: VecDeque<MediaEvent>,
    stats: DemuxStats,
}

impl Default for FlvDemuxer {
    fn default() -> Self {
        Self::new(DemuxSettings::default())
    }
}

impl FlvDemuxer {
    pub fn new(settings: DemuxSettings) -> Self {
        Self {
            settings,
            hints: StreamHints::default(),
            clock: None,
            video: None,
            audio: None,
            sent_video: None,
            sent_audio: None,
            started: false,
            wait: None,
            audio_wait_done: false,
            pending: Vec::new(),
            pending_bytes: 0,
            first_video_ms: None,
            last_keyframe_ms: None,
            last_video_dts: None,
            next_audio_dts: None,
            out: VecDeque::new(),
            stats: DemuxStats::default(),
        }
    }

    /// Records what the publisher announced about its tracks.
    pub fn set_hints(&mut self, hints: StreamHints) {
        self.hints = hints;
    }

    pub fn stats(&self) -> DemuxStats {
        self.stats
    }

    /// The next event, in order.
    pub fn poll_event(&mut self) -> Option<MediaEvent> {
        self.out.pop_front()
    }

    /// Feeds one tag body with its 32-bit millisecond timestamp.
    pub fn push_tag(&mut self, kind: TagKind, timestamp_ms: u32, body: Bytes) -> Result<()> {
        match kind {
            TagKind::Video => self.push_video(timestamp_ms, body),
            TagKind::Audio => self.push_audio(timestamp_ms, body),
            TagKind::Script => Ok(()),
        }
    }

    /// The end of the stream: releases anything held while waiting for a track.
    pub fn finish(&mut self) {
        self.flush_pending();
    }

    /// Feeds one video tag body (an RTMP video message).
    pub fn push_video(&mut self, timestamp_ms: u32, body: Bytes) -> Result<()> {
        let b0 = *body.first().ok_or(Error::TooShort {
            what: "video tag",
            len: 0,
            need: 1,
        })?;
        if b0 & 0x80 != 0 {
            return Err(Error::UnsupportedVideo(format!(
                "enhanced RTMP video (FourCC {})",
                fourcc(body.get(1..5))
            )));
        }
        let frame_type = b0 >> 4;
        let codec = b0 & 0x0f;
        if codec != 7 {
            return Err(Error::UnsupportedVideo(video_codec_name(codec)));
        }
        if frame_type == 5 {
            // Video info/command frame: carries no picture.
            return Ok(());
        }
        if body.len() < 5 {
            return Err(Error::TooShort {
                what: "AVC video tag",
                len: body.len(),
                need: 5,
            });
        }
        let ms = self.extend(timestamp_ms);
        match body[1] {
            0 => self.on_avc_config(body.slice(5..)),
            1 => {
                let comp = i24(body[2], body[3], body[4]);
                self.on_video_frame(ms, comp, frame_type == 1, body.slice(5..))
            }
            // End of sequence.
            2 => Ok(()),
            other => Err(Error::BadAvcFrame {
                ms,
                reason: format!("unknown AVCPacketType {other}"),
            }),
        }
    }

    /// Feeds one audio tag body (an RTMP audio message).
    pub fn push_audio(&mut self, timestamp_ms: u32, body: Bytes) -> Result<()> {
        let b0 = *body.first().ok_or(Error::TooShort {
            what: "audio tag",
            len: 0,
            need: 1,
        })?;
        let format = b0 >> 4;
        if format == 9 {
            return Err(Error::UnsupportedAudio(format!(
                "enhanced RTMP audio (FourCC {})",
                fourcc(body.get(1..5))
            )));
        }
        if format != 10 {
            return Err(Error::UnsupportedAudio(audio_codec_name(format)));
        }
        if body.len() < 2 {
            return Err(Error::TooShort {
                what: "AAC audio tag",
                len: body.len(),
                need: 2,
            });
        }
        let ms = self.extend(timestamp_ms);
        match body[1] {
            0 => self.on_aac_config(body.slice(2..)),
            1 => {
                self.on_aac_frame(ms, body.slice(2..));
                Ok(())
            }
            other => Err(Error::UnsupportedAudio(format!("AACPacketType {other}"))),
        }
    }

    /// Extends a 32-bit millisecond timestamp: the difference from the previous one is read
    /// as a signed 32-bit delta, so both wrap-around and small steps back (audio and video
    /// interleave) come out right.
    fn extend(&mut self, raw: u32) -> i64 {
        let ext = match self.clock {
            None => i64::from(raw),
            // The cast is the point: a wrapped difference read as signed.
            #[allow(clippy::cast_possible_wrap)]
            Some((last_raw, last)) => last + i64::from(raw.wrapping_sub(last_raw) as i32),
        };
        self.clock = Some((raw, ext));
        ext
    }

    fn on_avc_config(&mut self, avcc: Bytes) -> Result<()> {
        if self.video.as_ref().is_some_and(|v| v.config.avcc == avcc) {
            return Ok(());
        }
        let (width, height, length_size) = parse_avcc(&avcc)?;
        self.video = Some(Video {
            config: H264Config {
                avcc,
                width,
                height,
            },
            length_size,
        });
        // Whatever was held was held under the old picture (or as audio-only): start over at
        // the next keyframe.
        self.cancel_wait();
        Ok(())
    }

    fn on_aac_config(&mut self, asc: Bytes) -> Result<()> {
        if self.audio.as_ref().is_some_and(|a| a.asc == asc) {
            return Ok(());
        }
        let config = AacConfig::from_asc(asc.clone())
            .ok_or_else(|| Error::BadAacConfig(asc.iter().take(16).copied().collect()))?;
        self.audio = Some(config);
        self.next_audio_dts = None;
        match self.wait.as_ref().map(|w| w.what) {
            Some(Waiting::ForAudio) => self.flush_pending(),
            Some(Waiting::ForVideo) => self.cancel_wait(),
            None => {}
        }
        Ok(())
    }

    fn on_video_frame(&mut self, ms: i64, comp_ms: i32, keyframe: bool, data: Bytes) -> Result<()> {
        let Some(video) = &self.video else {
            self.stats.dropped += 1;
            return Ok(());
        };
        let first = *self.first_video_ms.get_or_insert(ms);
        if keyframe {
            self.last_keyframe_ms = Some(ms);
        } else {
            let since = self.last_keyframe_ms.unwrap_or(first);
            let limit =
                i64::try_from(self.settings.no_keyframe_timeout.as_millis()).unwrap_or(i64::MAX);
            if ms.saturating_sub(since) > limit {
                return Err(Error::NoKeyframe(self.settings.no_keyframe_timeout));
            }
        }
        if data.is_empty() {
            self.stats.dropped += 1;
            return Ok(());
        }
        let data = normalize_nalus(data, video.length_size)
            .map_err(|reason| Error::BadAvcFrame { ms, reason })?;
        let mut dts = ms * VIDEO_TICKS_PER_MS;
        let mut cts_offset = comp_ms.saturating_mul(90);
        if let Some(last) = self.last_video_dts {
            if dts <= last {
                // Keep DTS strictly increasing and the picture where it was.
                let pts = dts + i64::from(cts_offset);
                dts = last + 1;
                cts_offset = i32::try_from(pts - dts).unwrap_or(0);
            }
        }
        self.last_video_dts = Some(dts);
        let sample = Sample {
            track: 0,
            dts,
            cts_offset,
            keyframe,
            duration: None,
            data,
        };
        let video_current = self.sent_video.as_ref() == Some(&video.config);
        let audio_current = self.sent_audio == self.audio;

        if self.wait.is_some() {
            self.hold(TrackKind::Video, sample, ms);
            return Ok(());
        }
        if self.started && video_current && audio_current {
            self.emit(TrackKind::Video, sample);
        } else if keyframe {
            let audio_announced = self.hints.audio == Some(true);
            if audio_announced && self.audio.is_none() && !self.audio_wait_done {
                self.wait = Some(Wait {
                    what: Waiting::ForAudio,
                    since_ms: ms,
                });
                self.hold(TrackKind::Video, sample, ms);
            } else {
                self.emit_tracks();
                self.emit(TrackKind::Video, sample);
            }
        } else if self.started && video_current {
            // Only audio changed: this frame still belongs under the tracks already sent.
            self.emit(TrackKind::Video, sample);
        } else {
            self.stats.dropped += 1;
        }
        Ok(())
    }

    fn on_aac_frame(&mut self, ms: i64, data: Bytes) {
        let Some(audio) = &self.audio else {
            self.stats.dropped += 1;
            return;
        };
        if data.is_empty() {
            self.stats.dropped += 1;
            return;
        }
        let measured = ms * i64::from(audio.sample_rate) / 1000;
        let dts = match self.next_audio_dts {
            Some(next) if measured - next <= AAC_FRAME => next,
            Some(_) => {
                self.stats.audio_resyncs += 1;
                measured
            }
            None => measured,
        };
        self.next_audio_dts = Some(dts + AAC_FRAME);
        let sample = Sample {
            track: 0,
            dts,
            cts_offset: 0,
            keyframe: true,
            duration: Some(1024),
            data,
        };
        let audio_current = self.sent_audio.as_ref() == Some(audio);

        if self.wait.is_some() {
            self.hold(TrackKind::Audio, sample, ms);
        } else if self.video.is_some() {
            if self.started && audio_current {
                self.emit(TrackKind::Audio, sample);
            } else {
                // Waiting for a video keyframe to (re)start.
                self.stats.dropped += 1;
            }
        } else if self.started && audio_current {
            self.emit(TrackKind::Audio, sample);
        } else if self.started || self.hints.video == Some(false) {
            self.emit_tracks();
            self.emit(TrackKind::Audio, sample);
        } else {
            self.wait = Some(Wait {
                what: Waiting::ForVideo,
                since_ms: ms,
            });
            self.hold(TrackKind::Audio, sample, ms);
        }
    }

    fn hold(&mut self, kind: TrackKind, sample: Sample, ms: i64) {
        self.pending_bytes += sample.data.len();
        self.pending.push((kind, sample));
        let limit = i64::try_from(self.settings.track_wait.as_millis()).unwrap_or(i64::MAX);
        let expired = self
            .wait
            .as_ref()
            .is_some_and(|w| ms.saturating_sub(w.since_ms) >= limit);
        if expired || self.pending.len() >= MAX_PENDING || self.pending_bytes >= MAX_PENDING_BYTES {
            self.flush_pending();
        }
    }

    fn cancel_wait(&mut self) {
        if self.wait.take().is_some() {
            self.stats.dropped += self.pending.len() as u64;
            self.pending.clear();
            self.pending_bytes = 0;
        }
    }

    /// Starts with the tracks known now and releases what was held.
    fn flush_pending(&mut self) {
        let Some(wait) = self.wait.take() else {
            return;
        };
        if wait.what == Waiting::ForAudio {
            self.audio_wait_done = true;
        }
        self.emit_tracks();
        self.pending_bytes = 0;
        for (kind, sample) in std::mem::take(&mut self.pending) {
            self.emit(kind, sample);
        }
    }

    fn emit_tracks(&mut self) {
        let mut tracks = Vec::with_capacity(2);
        if let Some(v) = &self.video {
            tracks.push(Track {
                timescale: 90_000,
                codec: Codec::H264(v.config.clone()),
            });
        }
        if let Some(a) = &self.audio {
            tracks.push(Track {
                timescale: a.sample_rate,
                codec: Codec::Aac(a.clone()),
            });
        }
        self.sent_video = self.video.as_ref().map(|v| v.config.clone());
        self.sent_audio = self.audio.clone();
        self.started = true;
        self.stats.tracks_events += 1;
        self.out.push_back(MediaEvent::Tracks(tracks));
    }

    fn emit(&mut self, kind: TrackKind, mut sample: Sample) {
        match kind {
            TrackKind::Video if self.sent_video.is_some() => {
                sample.track = 0;
                self.stats.video_samples += 1;
            }
            TrackKind::Audio if self.sent_audio.is_some() => {
                sample.track = usize::from(self.sent_video.is_some());
                self.stats.audio_samples += 1;
            }
            _ => {
                self.stats.dropped += 1;
                return;
            }
        }
        self.out.push_back(MediaEvent::Sample(sample));
    }
}

/// Width, height and NAL length size from an AVCDecoderConfigurationRecord.
pub(crate) fn parse_avcc(avcc: &[u8]) -> Result<(u16, u16, u8)> {
    weir_media::h264::parse_avcc(avcc).map_err(Error::BadAvcConfig)
}

/// Checks that the NAL length fields tile the frame exactly, and rewrites 1- or 2-byte length
/// fields to the 4-byte ones `Sample::data` promises.
fn normalize_nalus(data: Bytes, length_size: u8) -> std::result::Result<Bytes, String> {
    let n = usize::from(length_size);
    let mut rewritten = (n != 4).then(|| BytesMut::with_capacity(data.len() + data.len() / 4));
    let mut rest = &data[..];
    while !rest.is_empty() {
        let Some((len_bytes, tail)) = rest.split_at_checked(n) else {
            return Err(format!(
                "{} trailing bytes, too few for a {n}-byte NAL length",
                rest.len()
            ));
        };
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        let Some((nal, tail)) = tail.split_at_checked(len) else {
            return Err(format!(
                "NAL unit of {len} bytes overruns the {} bytes left",
                tail.len()
            ));
        };
        if let Some(out) = rewritten.as_mut() {
            // `len` came from at most 2 bytes here.
            out.put_u32(u32::try_from(len).unwrap_or(u32::MAX));
            out.extend_from_slice(nal);
        }
        rest = tail;
    }
    Ok(rewritten.map_or(data, BytesMut::freeze))
}

/// A signed 24-bit big-endian integer (the FLV composition time).
fn i24(a: u8, b: u8, c: u8) -> i32 {
    // Place it in the top 24 bits and shift back down to sign-extend.
    i32::from_be_bytes([a, b, c, 0]) >> 8
}

fn fourcc(bytes: Option<&[u8]>) -> String {
    match bytes {
        Some(b) => b
            .iter()
            .map(|&c| {
                if c.is_ascii_graphic() {
                    char::from(c)
                } else {
                    '?'
                }
            })
            .collect(),
        None => "missing".to_owned(),
    }
}

fn video_codec_name(id: u8) -> String {
    let name = match id {
        1 => "JPEG",
        2 => "Sorenson H.263",
        3 => "Screen video",
        4 => "On2 VP6",
        5 => "On2 VP6 with alpha",
        6 => "Screen video v2",
        12 => "HEVC (non-standard CodecID 12)",
        _ => "unknown",
    };
    format!("{name} (CodecID {id}); only H.264 (7) is supported")
}

fn audio_codec_name(id: u8) -> String {
    let name = match id {
        0 => "linear PCM, platform endian",
        1 => "ADPCM",
        2 => "MP3",
        3 => "linear PCM, little endian",
        4..=6 => "Nellymoser",
        7 => "G.711 A-law",
        8 => "G.711 mu-law",
        11 => "Speex",
        14 => "MP3 8 kHz",
        15 => "device-specific",
        _ => "unknown",
    };
    format!("{name} (SoundFormat {id}); only AAC (10) is supported")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A zero-length SPS in the avcC is an error, not h264-reader's panic: the video tag of a
    /// flv_demux fuzz find (fuzz/artifacts/flv_demux/crash-bbbb45c2…).
    #[test]
    fn an_empty_sps_in_the_avcc_is_refused() {
        let body = hex_bytes(
            "47000000460100000004010000070000000000000000000000000000119e2601ff00002f0000\
             26014600467b0004002a00d032f8083b00292c01",
        );
        let mut d = FlvDemuxer::default();
        d.set_hints(StreamHints {
            video: Some(true),
            audio: Some(false),
        });
        let e = d
            .push_tag(TagKind::Video, u32::MAX, Bytes::from(body))
            .unwrap_err()
            .to_string();
        assert!(e.contains("empty SPS"), "{e}");
    }

    fn hex_bytes(hex: &str) -> Vec<u8> {
        (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect()
    }

    const ASC_48K_MONO: [u8; 2] = [0x11, 0x88];

    fn aac_config() -> Bytes {
        let mut v = vec![0xAF, 0x00];
        v.extend_from_slice(&ASC_48K_MONO);
        Bytes::from(v)
    }

    fn aac_frame() -> Bytes {
        Bytes::from_static(&[0xAF, 0x01, 0x21, 0x10, 0x05])
    }

    fn drain(d: &mut FlvDemuxer) -> Vec<MediaEvent> {
        std::iter::from_fn(|| d.poll_event()).collect()
    }

    fn samples(events: &[MediaEvent]) -> Vec<&Sample> {
        events
            .iter()
            .filter_map(|e| match e {
                MediaEvent::Sample(s) => Some(s),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn signed_composition_time() {
        assert_eq!(i24(0x00, 0x00, 0x43), 67);
        assert_eq!(i24(0xff, 0xff, 0xff), -1);
        assert_eq!(i24(0x80, 0x00, 0x00), -(1 << 23));
    }

    #[test]
    fn timestamps_extend_across_the_32_bit_wrap() {
        let mut d = FlvDemuxer::default();
        assert_eq!(d.extend(u32::MAX - 10), i64::from(u32::MAX) - 10);
        assert_eq!(d.extend(5), i64::from(u32::MAX) + 6);
        // A small step back (audio behind video) stays a small step back.
        assert_eq!(d.extend(u32::MAX - 1), i64::from(u32::MAX) - 1);
        assert_eq!(d.extend(20), i64::from(u32::MAX) + 21);
    }

    #[test]
    fn aac_durations_do_not_jitter_with_millisecond_rounding() {
        let mut d = FlvDemuxer::default();
        d.set_hints(StreamHints {
            video: Some(false),
            audio: Some(true),
        });
        d.push_audio(0, aac_config()).unwrap();
        // 48 kHz: 21.33 ms per frame, so RTMP says 0, 21, 43, 64, 85, …
        for i in 0..100u32 {
            d.push_audio(i * 1024 * 1000 / 48_000, aac_frame()).unwrap();
        }
        let events = drain(&mut d);
        assert!(
            matches!(&events[0], MediaEvent::Tracks(t) if t.len() == 1 && t[0].timescale == 48_000)
        );
        let s = samples(&events);
        assert_eq!(s.len(), 100);
        for (i, s) in s.iter().enumerate() {
            assert_eq!(s.dts, i as i64 * 1024, "frame {i}");
            assert_eq!((s.track, s.duration, s.keyframe), (0, Some(1024), true));
        }
        assert_eq!(d.stats().audio_resyncs, 0);
    }

    #[test]
    fn aac_resyncs_after_a_gap() {
        let mut d = FlvDemuxer::default();
        d.set_hints(StreamHints {
            video: Some(false),
            audio: Some(true),
        });
        d.push_audio(0, aac_config()).unwrap();
        d.push_audio(0, aac_frame()).unwrap();
        d.push_audio(21, aac_frame()).unwrap();
        d.push_audio(1000, aac_frame()).unwrap();
        d.push_audio(1021, aac_frame()).unwrap();
        let dts: Vec<i64> = samples(&drain(&mut d)).iter().map(|s| s.dts).collect();
        assert_eq!(dts, vec![0, 1024, 48_000, 49_024]);
        assert_eq!(d.stats().audio_resyncs, 1);
    }

    #[test]
    fn audio_only_waits_for_a_video_header_then_starts() {
        let mut d = FlvDemuxer::default();
        d.push_audio(0, aac_config()).unwrap();
        for ms in (0..1100).step_by(21) {
            d.push_audio(ms, aac_frame()).unwrap();
        }
        let events = drain(&mut d);
        assert!(matches!(&events[0], MediaEvent::Tracks(t) if t.len() == 1));
        // Nothing was lost while waiting.
        assert_eq!(samples(&events).len(), (0..1100).step_by(21).count());
    }

    #[test]
    fn audio_only_held_samples_are_released_at_the_end() {
        let mut d = FlvDemuxer::default();
        d.push_audio(0, aac_config()).unwrap();
        d.push_audio(0, aac_frame()).unwrap();
        assert!(d.poll_event().is_none());
        d.finish();
        assert_eq!(drain(&mut d).len(), 2);
    }

    #[test]
    fn rejects_other_codecs_by_name() {
        let mut d = FlvDemuxer::default();
        let e = d
            .push_video(0, Bytes::from_static(&[0x22, 0, 0, 0, 0]))
            .unwrap_err();
        assert!(e.to_string().contains("Sorenson"), "{e}");
        let e = d
            .push_video(0, Bytes::from_static(&[0x90, b'h', b'v', b'c', b'1']))
            .unwrap_err();
        assert!(e.to_string().contains("hvc1"), "{e}");
        let e = d.push_audio(0, Bytes::from_static(&[0x2f, 0])).unwrap_err();
        assert!(e.to_string().contains("MP3"), "{e}");
        let e = d.push_audio(0, Bytes::from_static(&[0xAF])).unwrap_err();
        assert!(matches!(e, Error::TooShort { .. }), "{e}");
        let e = d.push_video(0, Bytes::new()).unwrap_err();
        assert!(matches!(e, Error::TooShort { .. }), "{e}");
        let e = d
            .push_video(0, Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2]))
            .unwrap_err();
        assert!(matches!(e, Error::BadAvcConfig(_)), "{e}");
        let e = d
            .push_audio(0, Bytes::from_static(&[0xAF, 0, 0xf8]))
            .unwrap_err();
        assert!(matches!(e, Error::BadAacConfig(_)), "{e}");
    }

    #[test]
    fn nal_lengths_are_checked_and_widened() {
        let ok = Bytes::from_static(&[0, 0, 0, 2, 0x65, 0xaa, 0, 0, 0, 1, 0x06]);
        assert_eq!(normalize_nalus(ok.clone(), 4).unwrap(), ok);
        assert!(normalize_nalus(Bytes::from_static(&[0, 0, 0, 9, 0x65]), 4).is_err());
        assert!(normalize_nalus(Bytes::from_static(&[0, 0, 0]), 4).is_err());
        let short = Bytes::from_static(&[0, 2, 0x65, 0xaa, 0, 1, 0x06]);
        assert_eq!(normalize_nalus(short, 2).unwrap(), ok);
    }
}
