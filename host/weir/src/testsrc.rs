//! The built-in live test stream: a short shipped clip (testsrc2 pattern + tone, H.264/AAC,
//! one-second GOPs), looped forever with rewritten, continuous timestamps and paced by the
//! wall clock, so `weir serve` plays something with zero configuration.
//!
//! The clip is `assets/testsrc.flv`; `assets/README.md` has the ffmpeg command that made it.
//! It goes through the same FLV demuxer as RTMP ingest, and then the same pipeline.

use std::sync::OnceLock;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{info, warn};
use weir_media::{MediaEvent, Sample, Track, TrackKind};

static CLIP: &[u8] = include_bytes!("../assets/testsrc.flv");
static SLATE: &[u8] = include_bytes!("../assets/slate.flv");
static STANDBY: &[u8] = include_bytes!("../assets/standby.flv");
/// The operator's stand-by slate, when `encoder.slate_image` is set.
static OPERATOR_STANDBY: OnceLock<Clip> = OnceLock::new();

/// The decoded clip, ready to loop.
#[derive(Clone)]
pub struct Clip {
    tracks: Vec<Track>,
    samples: Vec<Sample>,
    /// Loop length in each track's timescale.
    period: Vec<i64>,
    period_dur: Duration,
}

impl Clip {
    pub fn builtin() -> anyhow::Result<Self> {
        Self::from_flv(CLIP)
    }

    /// The built-in slate ("Programme not available in your region", silence), for the
    /// `slate` rendition.
    pub fn slate() -> anyhow::Result<Self> {
        static CELL: OnceLock<Result<Clip, String>> = OnceLock::new();
        Self::decoded_once(&CELL, SLATE)
    }

    /// The stand-by slate, which takes a lost publisher's place in a passed-through stream:
    /// the operator's (see [`Clip::set_standby`]), else the built-in "Please stand by" with
    /// silence.
    pub fn standby() -> anyhow::Result<Self> {
        if let Some(clip) = OPERATOR_STANDBY.get() {
            return Ok(clip.clone());
        }
        static CELL: OnceLock<Result<Clip, String>> = OnceLock::new();
        Self::decoded_once(&CELL, STANDBY)
    }

    /// Makes `clip` (the operator's slate image, encoded at startup) the stand-by slate of
    /// every passed-through stream. Only the first call counts.
    pub fn set_standby(clip: Clip) {
        let _ = OPERATOR_STANDBY.set(clip);
    }

    /// A built-in clip, decoded on first use; every stream that needs it gets a copy whose
    /// samples share the decoded bytes.
    fn decoded_once(
        cell: &'static OnceLock<Result<Clip, String>>,
        flv: &'static [u8],
    ) -> anyhow::Result<Self> {
        cell.get_or_init(|| Self::from_flv(flv).map_err(|e| format!("{e:#}")))
            .clone()
            .map_err(anyhow::Error::msg)
    }

    /// The clip with only the tracks whose kind `keep` accepts (a stand-in for a video-only
    /// publisher must not add audio). Fails when no video track is left.
    pub fn only(mut self, keep: impl Fn(TrackKind) -> bool) -> anyhow::Result<Self> {
        let kept: Vec<usize> = (0..self.tracks.len())
            .filter(|&i| keep(self.tracks[i].kind()))
            .collect();
        if !kept
            .iter()
            .any(|&i| self.tracks[i].kind() == TrackKind::Video)
        {
            bail!("no video track left in the clip");
        }
        let new_index = |old: usize| kept.iter().position(|&k| k == old);
        self.samples.retain_mut(|s| match new_index(s.track) {
            Some(i) => {
                s.track = i;
                true
            }
            None => false,
        });
        self.period = kept.iter().map(|&i| self.period[i]).collect();
        self.tracks = kept.iter().map(|&i| self.tracks[i].clone()).collect();
        Ok(self)
    }

    pub fn from_flv(bytes: &[u8]) -> anyhow::Result<Self> {
        let events = weir_ingest::flv::read_file(bytes).context("decoding the test clip")?;
        Self::from_events(events)
    }

    /// A clip from a publisher's events: one set of tracks, then samples in time order.
    pub fn from_events(events: Vec<MediaEvent>) -> anyhow::Result<Self> {
        let mut tracks = None;
        let mut samples = Vec::new();
        for e in events {
            match e {
                MediaEvent::Tracks(t) if tracks.is_none() => tracks = Some(t),
                MediaEvent::Tracks(_) => bail!("the test clip changes codec parameters"),
                MediaEvent::Sample(s) => samples.push(s),
                MediaEvent::Cue(_) => {}
            }
        }
        let Some(tracks) = tracks else {
            bail!("the test clip has no tracks")
        };
        // The loop period is the video length (frame count × frame duration); audio beyond
        // it is dropped so that the loop seam never overlaps.
        let video = tracks.iter().position(|t| t.kind() == TrackKind::Video);
        let primary = video.unwrap_or(0);
        let ts: Vec<i64> = samples
            .iter()
            .filter(|s| s.track == primary)
            .map(|s| s.dts)
            .collect();
        let (Some(first), Some(last)) = (ts.first(), ts.last()) else {
            bail!("the test clip has no samples")
        };
        let n = i64::try_from(ts.len()).context("clip too long")?;
        let frame = if n > 1 { (last - first) / (n - 1) } else { 1 };
        let period_primary = last - first + frame;
        let secs = period_primary as f64 / f64::from(tracks[primary].timescale);
        let period: Vec<i64> = tracks
            .iter()
            .map(|t| (secs * f64::from(t.timescale)).round() as i64)
            .collect();
        samples.retain(|s| {
            s.dts
                - first * i64::from(tracks[s.track].timescale)
                    / i64::from(tracks[primary].timescale)
                + i64::from(s.duration.unwrap_or(0))
                <= period[s.track]
        });
        Ok(Self {
            tracks,
            samples,
            period,
            period_dur: Duration::from_secs_f64(secs),
        })
    }

    pub fn period(&self) -> Duration {
        self.period_dur
    }
}

/// Feeds the clip into `tx` in real time, forever (until the receiver goes away).
#[allow(clippy::disallowed_methods)] // the clip's playout is a driver: it paces frames by the clock
pub async fn run(clip: Clip, tx: mpsc::Sender<MediaEvent>) {
    info!(period = ?clip.period(), "looping a built-in clip");
    if tx
        .send(MediaEvent::Tracks(clip.tracks.clone()))
        .await
        .is_err()
    {
        return;
    }
    let start = Instant::now();
    for lap in 0i64.. {
        for s in &clip.samples {
            let mut s = s.clone();
            s.dts += lap * clip.period[s.track];
            let ts = clip.tracks[s.track].timescale;
            let at = Duration::from_secs_f64(s.dts.max(0) as f64 / f64::from(ts));
            tokio::time::sleep_until(start + at).await;
            if tx.send(MediaEvent::Sample(s)).await.is_err() {
                warn!("test source stopped: pipeline gone");
                return;
            }
        }
    }
}

/// The clips a stream plays in place of its publisher: the stand-by slate, and the slate
/// rendition's clip.
pub struct BuiltinClips;

impl weir_stream::Clips for BuiltinClips {
    fn standby(
        &self,
        kinds: &[TrackKind],
        tx: mpsc::Sender<MediaEvent>,
    ) -> Result<weir_stream::Playout, String> {
        let clip = Clip::standby()
            .and_then(|c| c.only(|k| kinds.contains(&k)))
            .map_err(|e| e.to_string())?;
        Ok(Box::pin(run(clip, tx)))
    }

    fn slate(&self, tx: mpsc::Sender<MediaEvent>) -> Result<weir_stream::Playout, String> {
        let clip = Clip::slate().map_err(|e| e.to_string())?;
        Ok(Box::pin(run(clip, tx)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standby_clip_keeps_only_the_publishers_kinds_of_track() {
        let full = Clip::standby().unwrap();
        assert_eq!(full.tracks.len(), 2);
        let period = full.period();
        assert!(period >= Duration::from_secs(2) && period < Duration::from_millis(2100));

        let video_only = Clip::standby()
            .unwrap()
            .only(|k| k == TrackKind::Video)
            .unwrap();
        assert_eq!(video_only.tracks.len(), 1);
        assert_eq!(video_only.tracks[0].kind(), TrackKind::Video);
        assert_eq!(video_only.period.len(), 1);
        assert!(!video_only.samples.is_empty());
        assert!(video_only.samples.iter().all(|s| s.track == 0));
        assert_eq!(
            video_only.samples.len(),
            full.samples
                .iter()
                .filter(|s| full.tracks[s.track].kind() == TrackKind::Video)
                .count()
        );
        assert!(video_only.samples[0].keyframe);

        // An audio-only stream gets no stand-by picture.
        let err = Clip::standby()
            .unwrap()
            .only(|k| k == TrackKind::Audio)
            .err()
            .unwrap();
        assert!(err.to_string().contains("no video track"), "{err}");
    }
}
