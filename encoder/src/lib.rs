//! Weir's live ABR encoder: one decode per stream, a scale and an H.264 encode per rung.
//!
//! [`spawn`] starts a stream's encoder on its own OS thread (libav* calls block and burn
//! CPU; they never run on tokio's workers). It reads the contribution's
//! [`MediaEvent`](weir_media::MediaEvent)s (or draws the built-in test pattern) and sends
//! [`EncoderEvent`]s: the [`Ladder`](EncoderEvent::Ladder) once, then each rung's tracks and
//! samples, ready for that rung's packager.
//!
//! - **One clock.** Output timestamps (90 kHz video, 48 kHz audio) are the encoder's own,
//!   anchored to the wall clock. The contribution's timestamps are mapped onto it, and a
//!   returning publisher is re-anchored (with any codec settings): the rungs never see a
//!   timestamp go backwards, and need no discontinuity.
//! - **Aligned GOPs.** IDRs are forced where the output PTS crosses the GOP grid (the
//!   packager's segment target), on every rung alike, so segments line up across renditions.
//! - **Continuity.** When the contribution stops for [`EncoderSettings::hold`], the encoder
//!   keeps the cadence with the last good picture, then after
//!   [`EncoderSettings::slate_after`] with the slate, and silent audio.
//! - **Audio** is decoded once, resampled to 48 kHz stereo and encoded once as AAC-LC; every
//!   rung carries the same packets.
//! - **Paths.** libx264 via ffmpeg-next on CPU; `h264_nvenc` when the GPU has an NVENC engine
//!   (detected at startup); CUDA scaling kernels behind the `cuda` feature.

mod audio;
pub mod config;
#[cfg(feature = "cuda")]
pub mod cuda;
mod engine;
mod event;
mod ladder;
pub mod picture;
mod rung;
mod still;
mod transcode;
mod video;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;
use std::time::Duration;

pub use audio::{output_config as audio_output_config, AacToOpus, OpusToAac};
pub use engine::{check_image, spawn, Source, Start};
pub use event::EncoderEvent;
pub use ladder::{default_ladder, plan, Rung, RungSpec};
pub use still::still_clip;
pub use transcode::Vp8ToH264;
pub use video::{nvenc_available, VideoCodec};

/// Video timestamps are 90 kHz, like the rest of Weir's video.
pub const VIDEO_TIMESCALE: u32 = 90_000;
/// The audio every rung carries.
pub const AUDIO_RATE: u32 = audio::RATE;

#[derive(Debug, thiserror::Error)]
pub enum EncoderError {
    #[error("{0}: {1}")]
    Ffmpeg(&'static str, ffmpeg_next::Error),
    #[error("this FFmpeg has no {0} codec")]
    MissingCodec(&'static str),
    #[error("encoder output: {0}")]
    Bitstream(String),
    #[error("slate image {path}: {reason}")]
    Slate { path: PathBuf, reason: String },
    #[error("cannot start the encoder thread: {0}")]
    Thread(std::io::Error),
}

/// How the rungs' bitrate is held.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RateControl {
    /// Constant bitrate with HRD signalling and filler: what CDNs and ABR heuristics expect.
    #[default]
    Cbr,
    /// Average bitrate capped by a one-second VBV buffer; cheaper on static pictures.
    CappedVbr,
}

/// Where scaling and encoding run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Accel {
    /// NVENC and CUDA scaling when present (and built with `cuda`), else CPU.
    #[default]
    Auto,
    /// swscale + libx264 only.
    Cpu,
}

#[derive(Debug, Clone)]
pub struct EncoderSettings {
    pub ladder: Vec<RungSpec>,
    /// libx264 preset (`ultrafast` … `veryslow`).
    pub preset: String,
    pub rate_control: RateControl,
    /// The output frame rate the rate control assumes, and the cadence of held, slate and
    /// test-pattern frames.
    pub fps: u32,
    /// IDR interval; the packager's segment target, so every segment starts with one.
    pub gop: Duration,
    /// No contribution frame for this long: repeat the last picture to keep the cadence.
    pub hold: Duration,
    /// No contribution frame for this long: show the slate instead.
    pub slate_after: Duration,
    /// The slate picture (PNG or JPEG); `None` for the built-in "PLEASE STAND BY" card.
    pub slate_image: Option<PathBuf>,
    pub audio_bitrate: u64,
    /// libx264 threads per rung (0 = libx264's choice).
    pub threads_per_rung: u32,
    pub accel: Accel,
}

impl Default for EncoderSettings {
    fn default() -> Self {
        Self {
            ladder: default_ladder(),
            preset: "veryfast".to_owned(),
            rate_control: RateControl::Cbr,
            fps: 30,
            gop: Duration::from_secs(2),
            hold: Duration::from_millis(500),
            slate_after: Duration::from_secs(2),
            slate_image: None,
            audio_bitrate: 128_000,
            threads_per_rung: 0,
            accel: Accel::Auto,
        }
    }
}

/// Counters exported on `/metrics`.
#[derive(Debug, Default)]
pub struct EncoderMetrics {
    pub frames_decoded: AtomicU64,
    /// Frames encoded, summed over rungs.
    pub frames_encoded: AtomicU64,
    pub held_frames: AtomicU64,
    pub slate_frames: AtomicU64,
    pub decode_errors: AtomicU64,
    /// Contribution frames dropped because they mapped behind the output clock.
    pub late_frames: AtomicU64,
    pub restarts: AtomicU64,
    /// Encoders running on each path.
    pub x264: AtomicU64,
    pub nvenc: AtomicU64,
    /// Streams decoding with NVDEC.
    pub nvdec: AtomicU64,
    /// Streams whose scaling runs in CUDA kernels.
    pub cuda_scale: AtomicU64,
}

impl EncoderMetrics {
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::with_capacity(1024);
        weir_media::metrics::write_atomics(
            &mut out,
            &[
                (
                    "weir_encoder_frames_decoded_total",
                    "counter",
                    "Contribution video frames decoded.",
                    &self.frames_decoded,
                ),
                (
                    "weir_encoder_frames_encoded_total",
                    "counter",
                    "Video frames encoded, summed over rungs.",
                    &self.frames_encoded,
                ),
                (
                    "weir_encoder_held_frames_total",
                    "counter",
                    "Output frames repeating the last picture while the contribution is lost.",
                    &self.held_frames,
                ),
                (
                    "weir_encoder_slate_frames_total",
                    "counter",
                    "Output frames showing the slate while the contribution is lost.",
                    &self.slate_frames,
                ),
                (
                    "weir_encoder_decode_errors_total",
                    "counter",
                    "Contribution packets the decoder refused.",
                    &self.decode_errors,
                ),
                (
                    "weir_encoder_late_frames_total",
                    "counter",
                    "Contribution frames dropped behind the output clock.",
                    &self.late_frames,
                ),
                (
                    "weir_encoder_restarts_total",
                    "counter",
                    "Stream encoders restarted after a crash.",
                    &self.restarts,
                ),
            ],
        );
        let _ = writeln!(
            out,
            "# HELP weir_encoder_streams Stream encoders running, by video encoder and scaler.\n\
             # TYPE weir_encoder_streams gauge"
        );
        for (path, v) in [
            ("x264", &self.x264),
            ("nvenc", &self.nvenc),
            ("cuda_scale", &self.cuda_scale),
            ("nvdec", &self.nvdec),
        ] {
            let _ = writeln!(
                out,
                "weir_encoder_streams{{path=\"{path}\"}} {}",
                v.load(Ordering::Relaxed)
            );
        }
        out
    }
}

/// Initialises libav* once (and quiets its stderr logging to errors).
pub fn init() -> Result<(), EncoderError> {
    static INIT: Once = Once::new();
    let mut result = Ok(());
    INIT.call_once(|| {
        result = ffmpeg_next::init().map_err(|e| EncoderError::Ffmpeg("initialising FFmpeg", e));
        ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Error);
    });
    result
}

/// What the encoder runs on here: the startup log line, the per-stream one and the
/// `weir_encoder_streams{path}` gauge say the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paths {
    pub encoder: VideoCodec,
    /// Scaling in the CUDA kernels (built with `cuda`, a driver and a GPU present).
    pub cuda_scale: bool,
    /// Decoding with NVDEC (FFmpeg's `h264_cuvid` opens).
    pub nvdec: bool,
}

impl std::fmt::Display for Paths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "decode {}, scale {}, encode {}",
            if self.nvdec {
                "nvdec (h264_cuvid)"
            } else {
                "cpu (libavcodec h264)"
            },
            if self.cuda_scale { "cuda" } else { "swscale" },
            self.encoder.name()
        )
    }
}

/// Runs `f` with libav*'s logging off: probes that are expected to fail on most machines
/// (no driver) would print errors otherwise.
fn quietly<T>(f: impl FnOnce() -> T) -> T {
    let level = ffmpeg_next::util::log::get_level();
    ffmpeg_next::util::log::set_level(ffmpeg_next::util::log::Level::Quiet);
    let out = f();
    if let Ok(level) = level {
        ffmpeg_next::util::log::set_level(level);
    }
    out
}

/// Detects the paths once per process (`accel = cpu` forces the CPU ones).
pub fn detect(accel: Accel) -> Paths {
    static FOUND: std::sync::OnceLock<Paths> = std::sync::OnceLock::new();
    if accel == Accel::Cpu {
        return Paths {
            encoder: VideoCodec::X264,
            cuda_scale: false,
            nvdec: false,
        };
    }
    *FOUND.get_or_init(|| {
        let _ = init();
        let encoder = if quietly(nvenc_available) {
            VideoCodec::Nvenc
        } else {
            VideoCodec::X264
        };
        #[cfg(feature = "cuda")]
        let cuda_scale = cuda::available();
        #[cfg(not(feature = "cuda"))]
        let cuda_scale = false;
        let nvdec = quietly(|| engine::open_nvdec().is_some());
        Paths {
            encoder,
            cuda_scale,
            nvdec,
        }
    })
}
