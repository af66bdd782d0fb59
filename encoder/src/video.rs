//! One rung's video: scale the picture to the rung's size, encode it (libx264, or h264_nvenc
//! where the GPU has an NVENC engine), and turn the packets into Weir samples.

use ffmpeg_next::format::Pixel;
use ffmpeg_next::software::scaling;
use ffmpeg_next::{codec, encoder, frame, picture, Dictionary, Packet};
use weir_media::{H264Config, Sample};

use crate::ladder::Rung;
use crate::{EncoderError, EncoderSettings, RateControl, VIDEO_TIMESCALE};

/// Which H.264 encoder the rungs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    X264,
    Nvenc,
}

impl VideoCodec {
    pub fn name(self) -> &'static str {
        match self {
            VideoCodec::X264 => "libx264",
            VideoCodec::Nvenc => "h264_nvenc",
        }
    }
}

/// A scaler from one source format and size to the rung's, rebuilt when the source changes.
pub struct Scaler {
    ctx: Option<(Pixel, u32, u32, scaling::Context)>,
    width: u32,
    height: u32,
}

impl Scaler {
    pub fn new(width: u32, height: u32) -> Self {
        Self {
            ctx: None,
            width,
            height,
        }
    }

    /// `src` at the rung's size in YUV 4:2:0.
    pub fn scale(&mut self, src: &frame::Video) -> Result<frame::Video, EncoderError> {
        let key = (src.format(), src.width(), src.height());
        if key == (Pixel::YUV420P, self.width, self.height) {
            return Ok(src.clone());
        }
        if self.ctx.as_ref().map(|c| (c.0, c.1, c.2)) != Some(key) {
            let ctx = scaling::Context::get(
                key.0,
                key.1,
                key.2,
                Pixel::YUV420P,
                self.width,
                self.height,
                scaling::Flags::BILINEAR,
            )
            .map_err(|e| EncoderError::Ffmpeg("swscale", e))?;
            self.ctx = Some((key.0, key.1, key.2, ctx));
        }
        let mut out = frame::Video::new(Pixel::YUV420P, self.width, self.height);
        if let Some((.., ctx)) = self.ctx.as_mut() {
            ctx.run(src, &mut out)
                .map_err(|e| EncoderError::Ffmpeg("swscale", e))?;
        }
        Ok(out)
    }
}

/// One rung's H.264 encoder.
pub struct RungEncoder {
    enc: encoder::Video,
    /// The rung's `avcC`, once the first IDR has been seen.
    pub config: Option<H264Config>,
}

impl RungEncoder {
    pub fn open(
        rung: &Rung,
        settings: &EncoderSettings,
        codec_kind: VideoCodec,
    ) -> Result<Self, EncoderError> {
        let codec = encoder::find_by_name(codec_kind.name())
            .ok_or(EncoderError::MissingCodec(codec_kind.name()))?;
        let mut enc = codec::Context::new_with_codec(codec)
            .encoder()
            .video()
            .map_err(|e| EncoderError::Ffmpeg("video encoder", e))?;
        let fps = settings.fps.max(1);
        let keyint = (settings.gop.as_secs_f64() * f64::from(fps))
            .round()
            .max(1.0) as u32;
        enc.set_width(rung.width);
        enc.set_height(rung.height);
        enc.set_format(Pixel::YUV420P);
        enc.set_time_base((1, VIDEO_TIMESCALE as i32));
        enc.set_frame_rate(Some((fps as i32, 1)));
        enc.set_max_b_frames(0);
        // Keyframes are forced on the GOP grid (the same PTS on every rung); the encoder's
        // own interval is a backstop far beyond it.
        enc.set_gop(keyint * 4);
        let bitrate = usize::try_from(rung.bitrate).unwrap_or(usize::MAX);
        enc.set_bit_rate(bitrate);
        enc.set_max_bit_rate(bitrate);
        let kbps = rung.bitrate / 1000;
        let mut opts = Dictionary::new();
        match codec_kind {
            VideoCodec::X264 => {
                opts.set("preset", &settings.preset);
                opts.set("tune", "zerolatency");
                opts.set("forced-idr", "1");
                let hrd = match settings.rate_control {
                    RateControl::Cbr => ":nal-hrd=cbr",
                    RateControl::CappedVbr => "",
                };
                opts.set(
                    "x264-params",
                    &format!(
                        "keyint={}:min-keyint={}:scenecut=0:bframes=0:rc-lookahead=0:\
                         vbv-maxrate={kbps}:vbv-bufsize={kbps}:threads={}{hrd}",
                        keyint * 4,
                        keyint * 4,
                        settings.threads_per_rung,
                    ),
                );
            }
            VideoCodec::Nvenc => {
                opts.set("preset", "p4");
                opts.set("tune", "ll");
                opts.set("zerolatency", "1");
                opts.set("forced-idr", "1");
                opts.set("bf", "0");
                opts.set(
                    "rc",
                    match settings.rate_control {
                        RateControl::Cbr => "cbr",
                        RateControl::CappedVbr => "vbr",
                    },
                );
            }
        }
        let enc = enc
            .open_with(opts)
            .map_err(|e| EncoderError::Ffmpeg("opening the video encoder", e))?;
        Ok(Self { enc, config: None })
    }

    /// Encodes `pic` (already at the rung's size) at `pts` (90 kHz); `idr` forces an IDR.
    /// Returns the finished samples (zero-latency settings: normally this frame's).
    pub fn encode(
        &mut self,
        pic: &mut frame::Video,
        pts: i64,
        idr: bool,
    ) -> Result<Vec<Sample>, EncoderError> {
        pic.set_pts(Some(pts));
        pic.set_kind(if idr {
            picture::Type::I
        } else {
            picture::Type::None
        });
        self.enc
            .send_frame(pic)
            .map_err(|e| EncoderError::Ffmpeg("encoding video", e))?;
        let mut out = Vec::with_capacity(1);
        let mut pkt = Packet::empty();
        while self.enc.receive_packet(&mut pkt).is_ok() {
            if let Some(s) = self.sample(&pkt)? {
                out.push(s);
            }
        }
        Ok(out)
    }

    fn sample(&mut self, pkt: &Packet) -> Result<Option<Sample>, EncoderError> {
        let Some(data) = pkt.data() else {
            return Ok(None);
        };
        let au = weir_media::h264::access_unit(data);
        if let (Some(sps), Some(pps)) = (&au.sps, &au.pps) {
            if self.config.is_none() {
                self.config =
                    Some(weir_media::h264::config(sps, pps).map_err(EncoderError::Bitstream)?);
            }
        }
        let (Some(pts), dts) = (pkt.pts(), pkt.dts()) else {
            return Ok(None);
        };
        let dts = dts.unwrap_or(pts);
        Ok(Some(Sample {
            track: 0,
            dts,
            cts_offset: i32::try_from(pts - dts).unwrap_or(0),
            keyframe: au.keyframe,
            duration: None,
            data: au.data,
        }))
    }
}

/// Whether `h264_nvenc` opens here (Debian's FFmpeg lists it, but it needs a driver and a
/// GPU with an NVENC engine; H100/H200 have none).
pub fn nvenc_available() -> bool {
    let Some(codec) = encoder::find_by_name(VideoCodec::Nvenc.name()) else {
        return false;
    };
    let Ok(mut enc) = codec::Context::new_with_codec(codec).encoder().video() else {
        return false;
    };
    enc.set_width(256);
    enc.set_height(144);
    enc.set_format(Pixel::YUV420P);
    enc.set_time_base((1, 30));
    enc.open().is_ok()
}
