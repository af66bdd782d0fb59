//! The `[encoder]` section of `weir.toml` and its one check: the live encoder's settings as
//! an operator writes them ([`EncoderConfig`]), turned into [`EncoderSettings`](crate::EncoderSettings)
//! with [`EncoderConfig::settings`]. Errors name the key (`encoder.preset = "fastest" is not a
//! libx264 preset …`).

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EncoderConfig {
    /// Transcode contributions into `ladder`. Off: each stream is passed through as its one
    /// `src` rendition (no decode, no encode). Tenants can override it (`transcode`).
    pub enabled: bool,
    /// The rungs, any order; rungs taller than the source are skipped (never upscaled).
    pub ladder: Vec<RungConfig>,
    /// libx264 preset: `ultrafast`, `superfast`, `veryfast`, `faster`, `fast`, `medium`…
    pub preset: String,
    /// `cbr` (HRD, filler: steady segment sizes for CDNs and ABR) or `capped-vbr`.
    pub rate_control: RateControlConfig,
    /// Output frame rate for rate control and for held/slate/test-pattern frames.
    pub fps: u32,
    /// No contribution frame for this long (ms): repeat the last picture.
    pub hold_ms: u64,
    /// No contribution frame for this long (ms): show the slate.
    pub slate_after_ms: u64,
    /// The slate picture (PNG or JPEG). Unset: the built-in "PLEASE STAND BY" card. With
    /// `ingest.standby_slate`, passed-through streams show it too while their contribution
    /// is lost (encoded once at startup, scaled to fit 1080p).
    pub slate_image: Option<PathBuf>,
    /// AAC bitrate, bits per second (audio is transcoded once and shared by every rung).
    pub audio_bitrate: u64,
    /// libx264 threads per rung; 0 lets libx264 choose.
    pub threads_per_rung: u32,
    /// `auto`: NVENC when the GPU has it, CUDA scaling when built with `cuda`; `cpu`: never.
    pub accel: AccelConfig,
    /// Where the rungs' keyframes (IDRs) fall: `segment`, one at the start of each segment;
    /// or `part`, one at the start of every part, so that every part is `INDEPENDENT=YES` and
    /// a player can start at any part, as close to `PART-HOLD-BACK` as it likes, instead of
    /// the last segment start before it. `part` costs bitrate (at the same bitrate, quality):
    /// an IDR costs several P-frames.
    pub keyframes: KeyframesConfig,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyframesConfig {
    Segment,
    Part,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RateControlConfig {
    Cbr,
    CappedVbr,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AccelConfig {
    Auto,
    Cpu,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RungConfig {
    /// The rendition's name in URLs: `[a-z0-9_-]`.
    pub name: String,
    pub height: u32,
    /// Video bitrate, bits per second.
    pub bitrate: u64,
}

impl Default for EncoderConfig {
    fn default() -> Self {
        let d = crate::EncoderSettings::default();
        Self {
            enabled: false,
            ladder: d
                .ladder
                .iter()
                .map(|r| RungConfig {
                    name: r.name.clone(),
                    height: r.height,
                    bitrate: r.bitrate,
                })
                .collect(),
            preset: d.preset,
            rate_control: RateControlConfig::Cbr,
            fps: d.fps,
            hold_ms: 500,
            slate_after_ms: 2000,
            slate_image: None,
            audio_bitrate: d.audio_bitrate,
            threads_per_rung: 0,
            accel: AccelConfig::Auto,
            keyframes: KeyframesConfig::Segment,
        }
    }
}

const X264_PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

impl EncoderConfig {
    /// The encoder's settings with `ladder` (a tenant's, or this one's), and the packager's
    /// segment or part target (`keyframes`) as the GOP.
    pub fn settings(
        &self,
        ladder: &[RungConfig],
        segment_target: Duration,
        part_target: Duration,
    ) -> crate::EncoderSettings {
        crate::EncoderSettings {
            ladder: ladder
                .iter()
                .map(|r| crate::RungSpec::new(&r.name, r.height, r.bitrate))
                .collect(),
            preset: self.preset.clone(),
            rate_control: match self.rate_control {
                RateControlConfig::Cbr => crate::RateControl::Cbr,
                RateControlConfig::CappedVbr => crate::RateControl::CappedVbr,
            },
            fps: self.fps,
            gop: match self.keyframes {
                KeyframesConfig::Segment => segment_target,
                KeyframesConfig::Part => part_target,
            },
            hold: Duration::from_millis(self.hold_ms),
            slate_after: Duration::from_millis(self.slate_after_ms),
            slate_image: self.slate_image.clone(),
            audio_bitrate: self.audio_bitrate,
            threads_per_rung: self.threads_per_rung,
            accel: match self.accel {
                AccelConfig::Auto => crate::Accel::Auto,
                AccelConfig::Cpu => crate::Accel::Cpu,
            },
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        validate_ladder("encoder.ladder", &self.ladder)?;
        if !X264_PRESETS.contains(&self.preset.as_str()) {
            return Err(format!(
                "encoder.preset = {:?} is not a libx264 preset ({})",
                self.preset,
                X264_PRESETS.join(", ")
            ));
        }
        if !(1..=120).contains(&self.fps) {
            return Err(format!("encoder.fps = {} must be 1 to 120", self.fps));
        }
        if self.hold_ms < 100 || self.slate_after_ms < self.hold_ms {
            return Err(format!(
                "encoder.hold_ms ({}) must be at least 100 and at most encoder.slate_after_ms ({})",
                self.hold_ms, self.slate_after_ms
            ));
        }
        if !(32_000..=512_000).contains(&self.audio_bitrate) {
            return Err(format!(
                "encoder.audio_bitrate = {} must be 32000 to 512000",
                self.audio_bitrate
            ));
        }
        if let Some(p) = &self.slate_image {
            if !p.is_file() {
                return Err(format!(
                    "encoder.slate_image {} is not a readable file",
                    p.display()
                ));
            }
        }
        Ok(())
    }
}

pub fn validate_ladder(what: &str, ladder: &[RungConfig]) -> Result<(), String> {
    if ladder.is_empty() {
        return Err(format!("{what} is empty: list at least one rung"));
    }
    for (i, r) in ladder.iter().enumerate() {
        if r.name.is_empty()
            || r.name.len() > 32
            || !r
                .name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        {
            return Err(format!(
                "{what}[{i}].name = {:?} must be [a-z0-9_-]{{1,32}}",
                r.name
            ));
        }
        if ["src", "slate", "asset-list"].contains(&r.name.as_str()) {
            return Err(format!("{what}[{i}].name = {:?} is reserved", r.name));
        }
        if ladder[..i].iter().any(|o| o.name == r.name) {
            return Err(format!("{what}[{i}].name = {:?} is used twice", r.name));
        }
        if !(16..=4320).contains(&r.height) {
            return Err(format!(
                "{what}[{i}].height = {} must be 16 to 4320",
                r.height
            ));
        }
        if !(50_000..=100_000_000).contains(&r.bitrate) {
            return Err(format!(
                "{what}[{i}].bitrate = {} must be 50000 to 100000000 bit/s",
                r.bitrate
            ));
        }
    }
    Ok(())
}
