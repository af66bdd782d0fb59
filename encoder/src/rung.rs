//! One thread per rung: scale, encode, and send the rung's media in order. The rungs of a
//! stream encode in parallel (libx264's sliced threads alone leave cores idle between a
//! frame's slices), and a slow rung holds the stream's engine back through its bounded queue
//! rather than piling up frames.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use ffmpeg_next::frame;
use tokio::sync::mpsc;
use tracing::warn;
use weir_media::{Codec, CueEvent, H264Config, MediaEvent, Sample, Track};

use crate::audio;
use crate::event::EncoderEvent;
use crate::ladder::Rung;
use crate::picture;
use crate::video::{RungEncoder, Scaler, VideoCodec};
use crate::{EncoderError, EncoderMetrics, EncoderSettings, VIDEO_TIMESCALE};

/// Frames a rung may have queued before the engine waits for it.
const QUEUE: usize = 4;

/// The picture for one output frame.
pub enum Picture {
    /// A new source picture (any size and format): scaled, encoded, and kept to hold.
    Source(Arc<frame::Video>),
    /// Already at this rung's size (the GPU scaled it): encoded and kept to hold.
    Scaled(frame::Video),
    /// The last source picture again (the slate if there was none).
    Hold,
    Slate,
}

pub enum Job {
    Video {
        picture: Picture,
        pts: i64,
        idr: bool,
    },
    /// An AAC frame (shared by every rung), sent once the rung has sent its tracks.
    Audio(Sample),
    Cue(CueEvent),
}

/// The engine's handle on a rung's thread.
pub struct RungWorker {
    jobs: SyncSender<Job>,
}

impl RungWorker {
    /// Starts rung `index`'s thread; it opens its encoder there, and reports a failure to
    /// open it before returning.
    pub fn start(
        index: usize,
        rung: Rung,
        settings: &EncoderSettings,
        codec: VideoCodec,
        slate_image: Option<Arc<frame::Video>>,
        out: mpsc::Sender<EncoderEvent>,
        metrics: Arc<EncoderMetrics>,
    ) -> Result<Self, EncoderError> {
        let (jobs, rx) = sync_channel(QUEUE);
        let (ready_tx, ready_rx) = sync_channel(1);
        let settings = settings.clone();
        let span = tracing::info_span!("rung", name = %rung.name);
        std::thread::Builder::new()
            .name(format!("enc-rung-{}", rung.name))
            .spawn(move || {
                let _g = span.enter();
                let mut state = match RungState::open(index, &rung, &settings, codec, slate_image) {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                state.run(&rx, &out, &metrics);
            })
            .map_err(EncoderError::Thread)?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self { jobs }),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(EncoderError::Bitstream("rung thread died".to_owned())),
        }
    }

    /// Queues a job; `false` when the rung's thread is gone.
    pub fn send(&self, job: Job) -> bool {
        self.jobs.send(job).is_ok()
    }
}

struct RungState {
    index: usize,
    enc: RungEncoder,
    scaler: Scaler,
    last: Option<frame::Video>,
    slate: frame::Video,
    /// Tracks sent (after the first IDR gave the `avcC`).
    started: bool,
}

impl RungState {
    fn open(
        index: usize,
        rung: &Rung,
        settings: &EncoderSettings,
        codec: VideoCodec,
        slate_image: Option<Arc<frame::Video>>,
    ) -> Result<Self, EncoderError> {
        let mut scaler = Scaler::new(rung.width, rung.height);
        let slate = match slate_image {
            Some(img) => scaler.scale(&img)?,
            None => picture::default_slate(rung.width, rung.height),
        };
        Ok(Self {
            index,
            enc: RungEncoder::open(rung, settings, codec)?,
            scaler,
            last: None,
            slate,
            started: false,
        })
    }

    fn run(
        &mut self,
        jobs: &Receiver<Job>,
        out: &mpsc::Sender<EncoderEvent>,
        metrics: &EncoderMetrics,
    ) {
        let rung = self.index;
        let send = |event: MediaEvent| {
            out.blocking_send(EncoderEvent::Media { rung, event })
                .is_ok()
        };
        while let Ok(job) = jobs.recv() {
            let events = match job {
                Job::Video { picture, pts, idr } => self.video(picture, pts, idr, metrics),
                Job::Audio(s) if self.started => vec![MediaEvent::Sample(s)],
                Job::Audio(_) => Vec::new(),
                Job::Cue(c) => vec![MediaEvent::Cue(c)],
            };
            for e in events {
                if !send(e) {
                    return;
                }
            }
        }
    }

    fn video(
        &mut self,
        picture: Picture,
        pts: i64,
        idr: bool,
        metrics: &EncoderMetrics,
    ) -> Vec<MediaEvent> {
        let mut pic = match picture {
            Picture::Source(src) => match self.scaler.scale(&src) {
                Ok(p) => p,
                Err(e) => {
                    warn!(error = %e, "scaling failed; holding the last picture");
                    self.held()
                }
            },
            Picture::Scaled(p) => p,
            Picture::Hold => self.held(),
            Picture::Slate => self.slate.clone(),
        };
        let samples = match self.enc.encode(&mut pic, pts, idr) {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "encode failed");
                return Vec::new();
            }
        };
        self.last = Some(pic);
        metrics.frames_encoded.fetch_add(1, Ordering::Relaxed);
        let mut events = Vec::with_capacity(samples.len() + 1);
        if !self.started {
            let Some(config) = self.enc.config.clone() else {
                return events;
            };
            self.started = true;
            events.push(MediaEvent::Tracks(output_tracks(config)));
        }
        events.extend(samples.into_iter().map(MediaEvent::Sample));
        events
    }

    fn held(&self) -> frame::Video {
        self.last.as_ref().unwrap_or(&self.slate).clone()
    }
}

/// An encoded output's tracks: its H.264 (`config`, track 0) and the AAC every output shares
/// (track 1).
pub(crate) fn output_tracks(config: H264Config) -> Vec<Track> {
    vec![
        Track {
            timescale: VIDEO_TIMESCALE,
            codec: Codec::H264(config),
        },
        Track {
            timescale: audio::RATE,
            codec: Codec::Aac(audio::output_config()),
        },
    ]
}
