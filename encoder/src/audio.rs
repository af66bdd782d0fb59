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

/// Decodes a contribution's AAC frames into 48 kHz stereo planar float.
pub struct AudioDecoder {
    dec: decoder::Audio,
    config: AacConfig,
    resampler: Option<resampling::Context>,
}

impl AudioDecoder {
    pub fn new(config: AacConfig) -> Result<Self, EncoderError> {
        let codec = decoder::find(codec::Id::AAC).ok_or(EncoderError::MissingCodec("aac"))?;
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
    /// into `out` (left, right).
    pub fn decode(&mut self, raw: &[u8], out: &mut [Vec<f32>; 2]) -> Result<(), EncoderError> {
        let pkt = Packet::copy(&adts(&self.config, raw));
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
}
