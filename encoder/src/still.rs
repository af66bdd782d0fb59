//! A still picture as a short, loopable H.264 + AAC clip, encoded once, as fast as the CPU
//! allows: the stand-by slate a passed-through stream shows in a lost publisher's place,
//! from the operator's slate image (`encoder.slate_image`).

use std::path::Path;

use weir_media::{MediaEvent, Sample};

use crate::audio::{self, AudioEncoder};
use crate::engine::load_image;
use crate::rung::output_tracks;
use crate::video::{RungEncoder, Scaler, VideoCodec};
use crate::{EncoderError, EncoderSettings, Rung, VIDEO_TIMESCALE};

/// The largest still: a bigger image is scaled down to fit, keeping its aspect.
const MAX_SIZE: (u32, u32) = (1920, 1080);
/// A still needs few bits; this keeps its first frame sharp.
const STILL_BITRATE: u64 = 1_000_000;

/// Encodes the image at `path` into `seconds` of video at `settings.fps`, an IDR every
/// second, with as much silent AAC (48 kHz stereo): what a publisher would send, tracks
/// first, then the samples in time order (video is track 0, audio track 1).
pub fn still_clip(
    path: &Path,
    settings: &EncoderSettings,
    seconds: u32,
) -> Result<Vec<MediaEvent>, EncoderError> {
    crate::init()?;
    let seconds = seconds.max(1);
    let image = load_image(path)?;
    let (width, height) = fit(image.width(), image.height());
    let rung = Rung {
        name: "standby".to_owned(),
        width,
        height,
        bitrate: STILL_BITRATE,
    };
    let mut pic = Scaler::new(width, height).scale(&image)?;
    let mut encoder = RungEncoder::open(&rung, settings, VideoCodec::X264)?;
    let fps = settings.fps.max(1);
    let frames = seconds * fps;
    let mut samples: Vec<Sample> = Vec::with_capacity(frames as usize * 2);
    for i in 0..frames {
        let pts = i64::from(i) * i64::from(VIDEO_TIMESCALE) / i64::from(fps);
        samples.extend(encoder.encode(&mut pic, pts, i % fps == 0)?);
    }
    if samples.len() != frames as usize {
        return Err(EncoderError::Bitstream(format!(
            "the still's encoder gave {} frames for {frames}",
            samples.len()
        )));
    }
    let config = encoder
        .config
        .clone()
        .ok_or_else(|| EncoderError::Bitstream("the still has no SPS/PPS".to_owned()))?;

    let mut aac = AudioEncoder::new(settings.audio_bitrate, 0)?;
    // A few frames more than the clip: the encoder's delay holds the last ones back.
    aac.push_silence((seconds * audio::RATE) as usize + 4 * audio::FRAME);
    samples.extend(aac.drain()?);

    let tracks = output_tracks(config);
    // Time order across the two timescales, as a muxer interleaves them.
    samples.sort_by_key(|s| i128::from(s.dts) * 1_000_000 / i128::from(tracks[s.track].timescale));
    let mut events = Vec::with_capacity(samples.len() + 1);
    events.push(MediaEvent::Tracks(tracks));
    events.extend(samples.into_iter().map(MediaEvent::Sample));
    Ok(events)
}

/// The still's size: the image's, scaled down to fit [`MAX_SIZE`] (aspect kept), even.
fn fit(width: u32, height: u32) -> (u32, u32) {
    let (w, h) = (u64::from(width.max(2)), u64::from(height.max(2)));
    let (mw, mh) = (u64::from(MAX_SIZE.0), u64::from(MAX_SIZE.1));
    let (w, h) = if w > mw || h > mh {
        // The tighter of the two limits.
        if w * mh > h * mw {
            (mw, h * mw / w)
        } else {
            (w * mh / h, mh)
        }
    } else {
        (w, h)
    };
    let even = |v: u64| u32::try_from(v.max(2) & !1).unwrap_or(2);
    (even(w), even(h))
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn stills_fit_in_1080p_with_their_aspect_and_even_sizes() {
        assert_eq!(fit(640, 360), (640, 360));
        assert_eq!(fit(641, 361), (640, 360));
        assert_eq!(fit(3840, 2160), (1920, 1080));
        assert_eq!(fit(4000, 1000), (1920, 480));
        assert_eq!(fit(1000, 4000), (270, 1080));
        assert_eq!(fit(1, 1), (2, 2));
    }
}
