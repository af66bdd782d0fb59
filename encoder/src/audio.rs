//! The stream's audio, transcoded once and shared by every rung: the contribution's AAC is
//! decoded, resampled to 48 kHz stereo and re-encoded as AAC-LC on one continuous sample
//! clock, so silence (during loss) and the test tone slot in without a seam.

use bytes::Bytes;
use ffmpeg_next::format::sample::Type as SampleType;
use ffmpeg_next::format::Sample as SampleFormat;
use ffmpeg_next::software::resampling;
use ffmpeg_next::{codec, decoder, encoder, frame, ChannelLayout, Dictionary, Packet};
use weir_media::{AacConfig, Sample};

use crate::EncoderError;

pub const RATE: u32 = 48_000;
/// AAC frame length in samples.
pub const FRAME: usize = 1024;

/// AAC-LC, 48 kHz, stereo: what the encoder writes (ISO/IEC 14496-3 AudioSpecificConfig).
pub fn output_config() -> AacConfig {
    AacConfig {
        asc: Bytes::from_static(&[0x11, 0x90]),
        object_type: 2,
        sample_rate: RATE,
        channels: 2,
    }
}

/// Decodes a contribution's AAC (or Opus) frames into 48 kHz stereo planar float.
pub struct AudioDecoder {
    dec: decoder::Audio,
    /// AAC: its config, for the ADTS header each frame gets. Opus: none.
    config: Option<AacConfig>,
    resampler: Option<resampling::Context>,
}

impl AudioDecoder {
    pub fn new(config: AacConfig) -> Result<Self, EncoderError> {
        Self::open(codec::Id::AAC, "aac", Some(config))
    }

    /// An Opus decoder (RFC 7587 packets, as WebRTC carries them). Without an `OpusHead`
    /// FFmpeg's decoder takes the stream as stereo, which is what WebRTC sends (mono is
    /// decoded into both channels).
    pub fn opus() -> Result<Self, EncoderError> {
        Self::open(codec::Id::OPUS, "opus", None)
    }

    fn open(
        id: codec::Id,
        name: &'static str,
        config: Option<AacConfig>,
    ) -> Result<Self, EncoderError> {
        let codec = decoder::find(id).ok_or(EncoderError::MissingCodec(name))?;
        let dec = codec::Context::new_with_codec(codec)
            .decoder()
            .audio()
            .map_err(|e| EncoderError::Ffmpeg("audio decoder", e))?;
        Ok(Self {
            dec,
            config,
            resampler: None,
        })
    }

    /// Decodes one raw AAC frame (wrapped in ADTS here, so the decoder needs no extradata)
    /// or one Opus packet into `out` (left, right).
    pub fn decode(&mut self, raw: &[u8], out: &mut [Vec<f32>; 2]) -> Result<(), EncoderError> {
        let pkt = match &self.config {
            Some(config) => Packet::copy(&adts(config, raw)),
            None => Packet::copy(raw),
        };
        self.dec
            .send_packet(&pkt)
            .map_err(|e| EncoderError::Ffmpeg("decoding audio", e))?;
        let mut decoded = frame::Audio::empty();
        while self.dec.receive_frame(&mut decoded).is_ok() {
            let layout = match decoded.channel_layout() {
                l if l.is_empty() => ChannelLayout::default(i32::from(decoded.channels())),
                l => l,
            };
            if self.resampler.is_none() {
                self.resampler = Some(
                    resampling::Context::get(
                        decoded.format(),
                        layout,
                        decoded.rate(),
                        SampleFormat::F32(SampleType::Planar),
                        ChannelLayout::STEREO,
                        RATE,
                    )
                    .map_err(|e| EncoderError::Ffmpeg("swresample", e))?,
                );
            }
            decoded.set_channel_layout(layout);
            let cap = decoded.samples() * RATE as usize / decoded.rate().max(1) as usize + 64;
            let mut converted = frame::Audio::new(
                SampleFormat::F32(SampleType::Planar),
                cap,
                ChannelLayout::STEREO,
            );
            if let Some(r) = self.resampler.as_mut() {
                r.run(&decoded, &mut converted)
                    .map_err(|e| EncoderError::Ffmpeg("swresample", e))?;
            }
            let n = converted.samples();
            for (ch, buf) in out.iter_mut().enumerate() {
                let plane: &[f32] = converted.plane(ch);
                buf.extend_from_slice(&plane[..n.min(plane.len())]);
            }
        }
        Ok(())
    }
}

/// The one AAC encoder of a stream, fed from a sample FIFO.
pub struct AudioEncoder {
    enc: encoder::Audio,
    fifo: [Vec<f32>; 2],
    /// Samples handed to the encoder so far (the next frame's PTS at 48 kHz).
    sent: i64,
    /// Packets received so far; packet `n` is output sample `first + n × 1024`.
    packets: i64,
    first: i64,
}

impl AudioEncoder {
    /// An encoder whose first output sample sits at `start` (48 kHz ticks).
    pub fn new(bitrate: u64, start: i64) -> Result<Self, EncoderError> {
        let codec = encoder::find(codec::Id::AAC).ok_or(EncoderError::MissingCodec("aac"))?;
        let mut enc = codec::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(|e| EncoderError::Ffmpeg("audio encoder", e))?;
        enc.set_rate(RATE as i32);
        enc.set_channel_layout(ChannelLayout::STEREO);
        enc.set_format(SampleFormat::F32(SampleType::Planar));
        enc.set_bit_rate(usize::try_from(bitrate).unwrap_or(128_000));
        enc.set_time_base((1, RATE as i32));
        let enc = enc
            .open_with(Dictionary::new())
            .map_err(|e| EncoderError::Ffmpeg("opening the AAC encoder", e))?;
        Ok(Self {
            enc,
            fifo: [Vec::new(), Vec::new()],
            sent: start,
            packets: 0,
            first: start,
        })
    }

    /// Where the next sample pushed will sit, in 48 kHz ticks.
    pub fn position(&self) -> i64 {
        self.sent + self.fifo[0].len() as i64
    }

    pub fn push(&mut self, samples: &mut [Vec<f32>; 2]) {
        for (fifo, s) in self.fifo.iter_mut().zip(samples.iter_mut()) {
            fifo.append(s);
        }
    }

    pub fn push_silence(&mut self, n: usize) {
        for fifo in &mut self.fifo {
            fifo.resize(fifo.len() + n, 0.0);
        }
    }

    pub fn push_mono(&mut self, samples: &[f32]) {
        for fifo in &mut self.fifo {
            fifo.extend_from_slice(samples);
        }
    }

    /// Encodes every whole frame in the FIFO; returns the AAC samples (track 1).
    pub fn drain(&mut self) -> Result<Vec<Sample>, EncoderError> {
        let mut out = Vec::new();
        while self.fifo[0].len() >= FRAME {
            let mut f = frame::Audio::new(
                SampleFormat::F32(SampleType::Planar),
                FRAME,
                ChannelLayout::STEREO,
            );
            f.set_rate(RATE);
            for (ch, fifo) in self.fifo.iter_mut().enumerate() {
                let plane: &mut [f32] = f.plane_mut(ch);
                plane[..FRAME].copy_from_slice(&fifo[..FRAME]);
                fifo.drain(..FRAME);
            }
            f.set_pts(Some(self.sent));
            self.sent += FRAME as i64;
            self.enc
                .send_frame(&f)
                .map_err(|e| EncoderError::Ffmpeg("encoding audio", e))?;
            let mut pkt = Packet::empty();
            while self.enc.receive_packet(&mut pkt).is_ok() {
                let Some(data) = pkt.data() else { continue };
                out.push(Sample {
                    track: 1,
                    dts: self.first + self.packets * FRAME as i64,
                    cts_offset: 0,
                    keyframe: true,
                    duration: Some(FRAME as u32),
                    data: Bytes::copy_from_slice(data),
                });
                self.packets += 1;
            }
        }
        Ok(out)
    }
}

/// Opus → AAC for a WebRTC publisher: its Opus packets decoded and re-encoded as AAC-LC
/// (48 kHz stereo) on one continuous clock. A gap in the packets' times (loss, a muted
/// sender that stopped sending) is filled with silence, so the AAC clock never drifts from
/// the publisher's.
pub struct OpusToAac {
    dec: AudioDecoder,
    enc: AudioEncoder,
    pcm: [Vec<f32>; 2],
}

/// A gap longer than this is not filled (the clock restarts after it instead of writing
/// minutes of silence for a sender that paused).
const MAX_GAP: i64 = 10 * RATE as i64;

impl OpusToAac {
    /// `start`: the first packet's time, 48 kHz ticks.
    pub fn new(bitrate: u64, start: i64) -> Result<Self, EncoderError> {
        Ok(Self {
            dec: AudioDecoder::opus()?,
            enc: AudioEncoder::new(bitrate, start)?,
            pcm: [Vec::new(), Vec::new()],
        })
    }

    /// One Opus packet whose first sample is at `pts` (48 kHz). Returns the AAC frames
    /// completed (track 1).
    pub fn push(&mut self, pts: i64, opus: &[u8]) -> Result<Vec<Sample>, EncoderError> {
        let at = self.enc.position();
        // Up to one Opus frame (20 ms) of jitter is the packet's own placement; more is a gap.
        if pts > at + 960 && pts - at <= MAX_GAP {
            self.enc
                .push_silence(usize::try_from(pts - at).unwrap_or(0));
        } else if pts + 960 <= at {
            // Entirely in the past (a late duplicate): already covered.
            return Ok(Vec::new());
        }
        self.dec.decode(opus, &mut self.pcm)?;
        self.enc.push(&mut self.pcm);
        self.enc.drain()
    }
}

/// AAC → Opus for WebRTC viewers (WHEP): a stream's AAC decoded and re-encoded with
/// libopus in 20 ms packets, once per stream whatever the number of viewers. A gap in the
/// AAC's times is filled with silence, so the Opus clock stays the stream's.
pub struct AacToOpus {
    dec: AudioDecoder,
    enc: encoder::Audio,
    pcm: [Vec<f32>; 2],
    /// The next Opus packet's first sample, 48 kHz ticks.
    next: i64,
    /// Samples decoded and not yet encoded.
    fifo: [Vec<f32>; 2],
}

/// Opus packet length: 20 ms at 48 kHz.
pub const OPUS_FRAME: usize = 960;

impl AacToOpus {
    /// `start`: the first AAC frame's time, 48 kHz ticks.
    pub fn new(config: AacConfig, bitrate: u64, start: i64) -> Result<Self, EncoderError> {
        let codec =
            encoder::find_by_name("libopus").ok_or(EncoderError::MissingCodec("libopus"))?;
        let mut enc = codec::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .map_err(|e| EncoderError::Ffmpeg("opus encoder", e))?;
        enc.set_rate(RATE as i32);
        enc.set_channel_layout(ChannelLayout::STEREO);
        enc.set_format(SampleFormat::F32(SampleType::Packed));
        enc.set_bit_rate(usize::try_from(bitrate).unwrap_or(96_000));
        enc.set_time_base((1, RATE as i32));
        let mut opts = Dictionary::new();
        opts.set("application", "lowdelay");
        opts.set("frame_duration", "20");
        let enc = enc
            .open_with(opts)
            .map_err(|e| EncoderError::Ffmpeg("opening the Opus encoder", e))?;
        Ok(Self {
            dec: AudioDecoder::new(config)?,
            enc,
            pcm: [Vec::new(), Vec::new()],
            next: start,
            fifo: [Vec::new(), Vec::new()],
        })
    }

    fn position(&self) -> i64 {
        self.next + self.fifo[0].len() as i64
    }

    /// One raw AAC frame whose first sample is at `pts` (48 kHz). Returns the Opus packets
    /// completed: (first sample's time, packet).
    pub fn push(&mut self, pts: i64, aac: &[u8]) -> Result<Vec<(i64, Bytes)>, EncoderError> {
        let at = self.position();
        if pts > at + FRAME as i64 && pts - at <= MAX_GAP {
            for f in &mut self.fifo {
                f.resize(f.len() + usize::try_from(pts - at).unwrap_or(0), 0.0);
            }
        } else if pts + (FRAME as i64) <= at {
            return Ok(Vec::new());
        }
        self.dec.decode(aac, &mut self.pcm)?;
        for (fifo, pcm) in self.fifo.iter_mut().zip(self.pcm.iter_mut()) {
            fifo.append(pcm);
        }
        let mut out = Vec::new();
        while self.fifo[0].len() >= OPUS_FRAME && self.fifo[1].len() >= OPUS_FRAME {
            let mut f = frame::Audio::new(
                SampleFormat::F32(SampleType::Packed),
                OPUS_FRAME,
                ChannelLayout::STEREO,
            );
            f.set_rate(RATE);
            {
                let data = f.data_mut(0);
                for n in 0..OPUS_FRAME {
                    let (l, r) = (self.fifo[0][n].to_ne_bytes(), self.fifo[1][n].to_ne_bytes());
                    data[8 * n..8 * n + 4].copy_from_slice(&l);
                    data[8 * n + 4..8 * n + 8].copy_from_slice(&r);
                }
            }
            for fifo in &mut self.fifo {
                fifo.drain(..OPUS_FRAME);
            }
            f.set_pts(Some(self.next));
            let first = self.next;
            self.next += OPUS_FRAME as i64;
            self.enc
                .send_frame(&f)
                .map_err(|e| EncoderError::Ffmpeg("encoding opus", e))?;
            let mut pkt = Packet::empty();
            while self.enc.receive_packet(&mut pkt).is_ok() {
                if let Some(data) = pkt.data() {
                    out.push((first, Bytes::copy_from_slice(data)));
                }
            }
        }
        Ok(out)
    }
}

/// A 7-byte ADTS header (ISO/IEC 13818-7 6.2) in front of one raw AAC frame.
fn adts(config: &AacConfig, raw: &[u8]) -> Vec<u8> {
    const RATES: [u32; 13] = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ];
    let freq = RATES
        .iter()
        .position(|r| *r == config.sample_rate)
        .unwrap_or(3) as u8;
    let profile = config.object_type.saturating_sub(1).min(3);
    let ch = config.channels & 7;
    let len = (raw.len() + 7).min(0x1fff);
    let mut out = Vec::with_capacity(len);
    out.extend_from_slice(&[
        0xff,
        0xf1,
        (profile << 6) | (freq << 2) | (ch >> 2),
        ((ch & 3) << 6) | (len >> 11) as u8,
        (len >> 3) as u8,
        (((len & 7) << 5) as u8) | 0x1f,
        0xfc,
    ]);
    out.extend_from_slice(raw);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adts_header_fields() {
        let h = adts(&output_config(), &[0u8; 100]);
        assert_eq!(&h[..3], &[0xff, 0xf1, 0x4c]);
        let len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        assert_eq!(len, 107);
    }

    #[test]
    fn encodes_whole_frames_on_a_continuous_clock() {
        crate::init().unwrap();
        let mut enc = AudioEncoder::new(128_000, 4800).unwrap();
        enc.push_mono(&crate::picture::tone(0, 3000));
        enc.push_silence(3000);
        assert_eq!(enc.position(), 4800 + 6000);
        let mut samples = enc.drain().unwrap();
        samples.extend(enc.drain().unwrap());
        // 5 whole frames went in; the encoder holds back its priming delay.
        assert!(!samples.is_empty() && samples.len() <= 5);
        for (i, s) in samples.iter().enumerate() {
            assert_eq!(s.dts, 4800 + i as i64 * 1024);
        }
        assert_eq!(enc.position(), 4800 + 6000);
    }

    #[test]
    fn opus_becomes_aac_on_a_continuous_clock_with_gaps_filled() {
        crate::init().unwrap();
        // Real Opus packets: 20 ms frames of a tone from libopus (what browsers run).
        let codec = encoder::find_by_name("libopus").unwrap();
        let mut ctx = codec::Context::new_with_codec(codec)
            .encoder()
            .audio()
            .unwrap();
        ctx.set_rate(48_000);
        ctx.set_channel_layout(ChannelLayout::STEREO);
        ctx.set_format(SampleFormat::I16(SampleType::Packed));
        ctx.set_bit_rate(64_000);
        ctx.set_time_base((1, 48_000));
        let mut opus = ctx.open_with(Dictionary::new()).unwrap();
        let mut packets = Vec::new();
        for i in 0..50i64 {
            let mut f = frame::Audio::new(
                SampleFormat::I16(SampleType::Packed),
                960,
                ChannelLayout::STEREO,
            );
            f.set_rate(48_000);
            let tone = crate::picture::tone(i as u64 * 960, 960);
            // Packed stereo: interleaved 16-bit samples in the first data plane.
            let data = f.data_mut(0);
            for (n, v) in tone.iter().enumerate() {
                let s = ((v * 8000.0) as i16).to_ne_bytes();
                data[4 * n..4 * n + 2].copy_from_slice(&s);
                data[4 * n + 2..4 * n + 4].copy_from_slice(&s);
            }
            f.set_pts(Some(i * 960));
            opus.send_frame(&f).unwrap();
            let mut pkt = Packet::empty();
            while opus.receive_packet(&mut pkt).is_ok() {
                packets.push(pkt.data().unwrap().to_vec());
            }
        }
        assert!(packets.len() >= 40, "{}", packets.len());
        let mut t = OpusToAac::new(128_000, 4800).unwrap();
        let mut out = Vec::new();
        for (i, p) in packets.iter().enumerate() {
            // Packets 20..25 are lost: their 100 ms become silence.
            if (20..25).contains(&i) {
                continue;
            }
            out.extend(t.push(4800 + i as i64 * 960, p).unwrap());
        }
        assert!(out.len() > 30, "{}", out.len());
        for (i, s) in out.iter().enumerate() {
            assert_eq!(s.dts, 4800 + i as i64 * 1024);
            assert_eq!(s.track, 1);
        }
        // Every packet's place was kept: 50 packets' worth of samples went in.
        assert_eq!(t.enc.position(), 4800 + 50 * 960);
        // A late duplicate adds nothing.
        assert!(t.push(4800, &packets[0]).unwrap().is_empty());
        assert_eq!(t.enc.position(), 4800 + 50 * 960);
    }

    #[test]
    fn aac_becomes_opus_in_20_ms_packets() {
        crate::init().unwrap();
        let mut aac = AudioEncoder::new(128_000, 0).unwrap();
        aac.push_mono(&crate::picture::tone(0, 48_000));
        let frames = aac.drain().unwrap();
        assert!(frames.len() > 40);
        let mut t = AacToOpus::new(output_config(), 64_000, 0).unwrap();
        let mut out = Vec::new();
        for f in &frames {
            out.extend(t.push(f.dts, &f.data).unwrap());
        }
        assert!(out.len() >= 40, "{}", out.len());
        for (i, (pts, p)) in out.iter().enumerate() {
            assert_eq!(*pts, i as i64 * 960);
            assert!(!p.is_empty());
        }
        // The Opus decoder reads them back.
        let mut dec = AudioDecoder::opus().unwrap();
        let mut pcm = [Vec::new(), Vec::new()];
        for (_, p) in &out {
            dec.decode(p, &mut pcm).unwrap();
        }
        assert!(pcm[0].len() >= 30 * 960);
    }
}
