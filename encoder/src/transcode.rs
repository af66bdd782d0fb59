//! A WebRTC publisher's VP8, made H.264 for HLS: each frame decoded (libavcodec's VP8) and
//! encoded again at the picture's own size (libx264, the rungs' settings), one IDR for each
//! VP8 keyframe so segments start where the publisher's keyframes are. One per WHIP session
//! whose offer has no H.264; the stream's own ladder (if any) then works on H.264 as from
//! any other publisher.

use ffmpeg_next::{codec, decoder, frame, Packet};
use weir_media::{H264Config, Sample};

use crate::ladder::Rung;
use crate::video::{RungEncoder, Scaler, VideoCodec};
use crate::{EncoderError, EncoderSettings};

pub struct Vp8ToH264 {
    dec: decoder::Video,
    settings: EncoderSettings,
    /// The encoder for the current picture size, and its scaler (format conversion; the
    /// size is kept, rounded down to even numbers).
    enc: Option<(u32, u32, RungEncoder, Scaler)>,
    /// The next frame must be an IDR (a new size, or a VP8 keyframe).
    idr: bool,
}

impl Vp8ToH264 {
    pub fn new(settings: EncoderSettings) -> Result<Self, EncoderError> {
        crate::init()?;
        let codec = decoder::find(codec::Id::VP8).ok_or(EncoderError::MissingCodec("vp8"))?;
        let mut ctx = codec::Context::new_with_codec(codec);
        // One frame out per frame in: no frame threads.
        ctx.set_threading(ffmpeg_next::threading::Config {
            kind: ffmpeg_next::threading::Type::Slice,
            count: 1,
            ..Default::default()
        });
        let dec = ctx
            .decoder()
            .video()
            .map_err(|e| EncoderError::Ffmpeg("vp8 decoder", e))?;
        Ok(Self {
            dec,
            settings,
            enc: None,
            idr: true,
        })
    }

    /// The `avcC` of what it writes, once its first IDR is out.
    pub fn config(&self) -> Option<H264Config> {
        self.enc.as_ref().and_then(|(.., e, _)| e.config.clone())
    }

    /// One VP8 frame at `pts` (90 kHz); `keyframe`: it is a VP8 keyframe (an IDR follows).
    /// Returns the H.264 samples completed (track 0).
    pub fn push(
        &mut self,
        pts: i64,
        vp8: &[u8],
        keyframe: bool,
    ) -> Result<Vec<Sample>, EncoderError> {
        self.idr |= keyframe;
        let mut pkt = Packet::copy(vp8);
        pkt.set_pts(Some(pts));
        self.dec
            .send_packet(&pkt)
            .map_err(|e| EncoderError::Ffmpeg("decoding vp8", e))?;
        let mut out = Vec::new();
        let mut decoded = frame::Video::empty();
        while self.dec.receive_frame(&mut decoded).is_ok() {
            let (w, h) = (
                (decoded.width() & !1).max(2),
                (decoded.height() & !1).max(2),
            );
            if self
                .enc
                .as_ref()
                .is_none_or(|(ew, eh, ..)| (*ew, *eh) != (w, h))
            {
                let rung = Rung {
                    name: "src".to_owned(),
                    width: w,
                    height: h,
                    bitrate: bitrate(w, h),
                };
                let enc = RungEncoder::open(&rung, &self.settings, VideoCodec::X264)?;
                self.enc = Some((w, h, enc, Scaler::new(w, h)));
                self.idr = true;
            }
            let Some((_, _, enc, scaler)) = self.enc.as_mut() else {
                continue;
            };
            let mut pic = scaler.scale(&decoded)?;
            let at = decoded.pts().unwrap_or(pts);
            out.extend(enc.encode(&mut pic, at, std::mem::take(&mut self.idr))?);
        }
        Ok(out)
    }
}

/// A bitrate for a picture size: 0.1 bit per pixel at 30 fps (640x360: 0.7 Mbit/s,
/// 1280x720: 2.8 Mbit/s), between 0.4 and 8 Mbit/s.
fn bitrate(w: u32, h: u32) -> u64 {
    (u64::from(w) * u64::from(h) * 3).clamp(400_000, 8_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ffmpeg_next::format::Pixel;
    use ffmpeg_next::{encoder, Dictionary};

    #[test]
    fn vp8_frames_become_h264_with_an_idr_for_each_vp8_keyframe() {
        crate::init().unwrap();
        // Real VP8: libvpx, as browsers run it, 320x240, a keyframe every 10 frames.
        let codec = encoder::find_by_name("libvpx").unwrap();
        let mut ctx = codec::Context::new_with_codec(codec)
            .encoder()
            .video()
            .unwrap();
        ctx.set_width(320);
        ctx.set_height(240);
        ctx.set_format(Pixel::YUV420P);
        ctx.set_time_base((1, 90_000));
        ctx.set_gop(10);
        ctx.set_bit_rate(300_000);
        let mut opts = Dictionary::new();
        opts.set("deadline", "realtime");
        opts.set("lag-in-frames", "0");
        let mut vpx = ctx.open_with(opts).unwrap();
        let base = crate::picture::pattern_base(320, 240);
        let mut packets = Vec::new();
        for i in 0..30i64 {
            let mut f = crate::picture::pattern_frame(&base, i as u64 * 33, i as u64);
            f.set_pts(Some(i * 3000));
            vpx.send_frame(&f).unwrap();
            let mut pkt = Packet::empty();
            while vpx.receive_packet(&mut pkt).is_ok() {
                packets.push((
                    pkt.pts().unwrap(),
                    pkt.is_key(),
                    pkt.data().unwrap().to_vec(),
                ));
            }
        }
        vpx.send_eof().unwrap();
        let mut pkt = Packet::empty();
        while vpx.receive_packet(&mut pkt).is_ok() {
            packets.push((
                pkt.pts().unwrap(),
                pkt.is_key(),
                pkt.data().unwrap().to_vec(),
            ));
        }
        assert_eq!(packets.len(), 30);

        let mut t = Vp8ToH264::new(EncoderSettings::default()).unwrap();
        let mut out = Vec::new();
        for (pts, key, data) in &packets {
            // A VP8 keyframe has the low bit of its first byte clear (RFC 6386 9.1).
            assert_eq!(*key, data[0] & 1 == 0);
            out.extend(t.push(*pts, data, *key).unwrap());
        }
        assert_eq!(out.len(), 30, "zero-latency x264: a sample per frame");
        let config = t.config().unwrap();
        assert_eq!((config.width, config.height), (320, 240));
        let idrs: Vec<i64> = out.iter().filter(|s| s.keyframe).map(|s| s.dts).collect();
        let vp8_keys: Vec<i64> = packets.iter().filter(|p| p.1).map(|p| p.0).collect();
        assert_eq!(idrs, vp8_keys);
        assert!(out.windows(2).all(|w| w[1].dts > w[0].dts));
    }
}
