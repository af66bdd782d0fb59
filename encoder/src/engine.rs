//! A stream's encoder thread: decode once, map onto the output clock, scale and encode per
//! rung, fill losses with held and slate frames.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use ffmpeg_next::{codec, decoder, frame, Packet};
use std::sync::Arc as Shared;
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use weir_media::h264::to_annex_b;
use weir_media::{Codec, CueEvent, H264Config, MediaEvent, Sample, Track};

use crate::audio::{self, AudioDecoder, AudioEncoder};
use crate::event::EncoderEvent;
use crate::ladder::{plan, Rung};
use crate::picture;
use crate::rung::{Job, Picture, RungWorker};
use crate::video::VideoCodec;
use crate::{EncoderError, EncoderMetrics, EncoderSettings, VIDEO_TIMESCALE};

/// Where the pictures come from.
pub enum Source {
    /// A contribution's media events (H.264 + AAC, as ingest demuxes them).
    Contribution(mpsc::Receiver<MediaEvent>),
    /// The built-in live test pattern and tone, at this size.
    TestPattern { width: u32, height: u32 },
    /// The slate and silence, forever, on `Start::rungs` (which must be set): a stream's
    /// slate renditions, with each rung's codec parameters, for the blackout plugin.
    Slate,
}

/// Where a (re)started encoder picks up.
#[derive(Debug, Clone, Default)]
pub struct Start {
    /// The first output video PTS (90 kHz): past the last one a crashed encoder sent.
    pub pts: i64,
    /// The rungs, when they are already fixed (a restart keeps the stream's renditions).
    pub rungs: Option<Vec<Rung>>,
}

/// Starts a stream's encoder on its own thread. It runs until the source ends (the
/// contribution channel closes) or nobody listens to its output.
pub fn spawn(
    name: &str,
    settings: EncoderSettings,
    source: Source,
    start: Start,
    out: mpsc::Sender<EncoderEvent>,
    metrics: Arc<EncoderMetrics>,
) -> Result<std::thread::JoinHandle<()>, EncoderError> {
    crate::init()?;
    let rt = tokio::runtime::Handle::try_current().ok();
    let span = tracing::info_span!("encoder", stream = %name);
    std::thread::Builder::new()
        .name(format!("enc-{name}"))
        .spawn(move || {
            let _g = span.enter();
            let paths = crate::detect(settings.accel);
            let gauges = [
                (
                    true,
                    match paths.encoder {
                        VideoCodec::X264 => &metrics.x264,
                        VideoCodec::Nvenc => &metrics.nvenc,
                    },
                ),
                (paths.cuda_scale, &metrics.cuda_scale),
                (paths.nvdec, &metrics.nvdec),
            ];
            for (on, g) in gauges {
                if on {
                    g.fetch_add(1, Ordering::Relaxed);
                }
            }
            match Engine::new(settings, start, out, Arc::clone(&metrics), paths) {
                Ok(mut engine) => engine.run(source, rt),
                Err(e) => warn!(error = %e, "encoder did not start"),
            }
            for (on, g) in gauges {
                if on {
                    g.fetch_sub(1, Ordering::Relaxed);
                }
            }
        })
        .map_err(EncoderError::Thread)
}

struct VideoIn {
    track: usize,
    timescale: u32,
    dec: decoder::Video,
    config: H264Config,
    /// Until the first keyframe (after a (re)start) nothing decodes.
    waiting_key: bool,
    errors_in_row: u32,
}

struct AudioIn {
    track: usize,
    timescale: u32,
    dec: AudioDecoder,
}

struct Engine {
    settings: EncoderSettings,
    out: mpsc::Sender<EncoderEvent>,
    metrics: Arc<EncoderMetrics>,
    codec: VideoCodec,
    cuda: bool,
    nvdec: bool,
    rungs: Vec<RungWorker>,
    planned: Option<Vec<Rung>>,
    audio: AudioEncoder,
    video_in: Option<VideoIn>,
    audio_in: Option<AudioIn>,
    /// The output clock: this instant is output PTS `anchor.1`. Moved to each contribution
    /// frame as it is encoded; fixed while frames are synthesised.
    anchor: (Instant, i64),
    /// Contribution PTS (90 kHz) + offset = output PTS; `None` until (re)synced.
    offset: Option<i64>,
    last_out: Option<i64>,
    frame_dur: i64,
    last_video_in: Option<Instant>,
    last_audio_in: Option<Instant>,
    filling: Option<Fill>,
    /// Index of the GOP the last IDR started.
    gop_index: Option<i64>,
    /// The GOP grid's origin: the first output frame's PTS. The packager measures segments
    /// and parts from that frame (the first keyframe), so with one IDR per part
    /// (`keyframes = "part"`) an absolute grid would start every part of the first segment
    /// a frame or two after its IDR, none of them independent.
    gop_origin: Option<i64>,
    /// The test pattern's base picture and frame counter.
    pattern: Option<(frame::Video, u64)>,
    tone_pos: u64,
    /// A slate ladder: every frame is the slate.
    slate_only: bool,
    closed: bool,
    #[cfg(feature = "cuda")]
    gpu: Option<crate::cuda::CudaScaler>,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Fill {
    Hold,
    Slate,
}

#[allow(clippy::disallowed_methods)] // the encoder's clock is the wall clock
fn now() -> Instant {
    Instant::now()
}

#[allow(clippy::disallowed_methods)]
fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ticks(d: Duration, timescale: u32) -> i64 {
    i64::try_from(d.as_nanos() * u128::from(timescale) / 1_000_000_000).unwrap_or(i64::MAX)
}

fn rescale(v: i64, from: u32, to: u32) -> i64 {
    (i128::from(v) * i128::from(to) / i128::from(from.max(1))) as i64
}

impl Engine {
    fn new(
        settings: EncoderSettings,
        start: Start,
        out: mpsc::Sender<EncoderEvent>,
        metrics: Arc<EncoderMetrics>,
        paths: crate::Paths,
    ) -> Result<Self, EncoderError> {
        let audio = AudioEncoder::new(
            settings.audio_bitrate,
            rescale(start.pts, VIDEO_TIMESCALE, audio::RATE),
        )?;
        let frame_dur = i64::from(VIDEO_TIMESCALE / settings.fps.max(1));
        let mut engine = Self {
            settings,
            out,
            metrics,
            codec: paths.encoder,
            cuda: paths.cuda_scale,
            nvdec: paths.nvdec,
            rungs: Vec::new(),
            planned: None,
            audio,
            video_in: None,
            audio_in: None,
            anchor: (now(), start.pts),
            offset: None,
            last_out: None,
            frame_dur,
            last_video_in: None,
            last_audio_in: None,
            filling: None,
            gop_index: None,
            gop_origin: None,
            pattern: None,
            tone_pos: 0,
            slate_only: false,
            closed: false,
            #[cfg(feature = "cuda")]
            gpu: None,
        };
        if start.pts > 0 {
            engine.last_out = Some(start.pts - frame_dur);
        }
        if let Some(rungs) = start.rungs {
            engine.open_rungs(rungs)?;
        }
        Ok(engine)
    }

    fn run(&mut self, source: Source, rt: Option<tokio::runtime::Handle>) {
        match source {
            Source::TestPattern { width, height } => {
                if let Err(e) = self.start_pattern(width, height) {
                    warn!(error = %e, "test pattern did not start");
                    return;
                }
                while !self.closed {
                    self.tick();
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            Source::Slate => {
                if self.rungs.is_empty() {
                    warn!("a slate ladder needs its rungs");
                    return;
                }
                self.slate_only = true;
                while !self.closed {
                    self.tick();
                    std::thread::sleep(Duration::from_millis(5));
                }
            }
            Source::Contribution(mut rx) => {
                let Some(rt) = rt else {
                    warn!("the encoder needs a tokio runtime to read its contribution");
                    return;
                };
                let wait =
                    Duration::from_nanos(1_000_000_000 / u64::from(self.settings.fps.max(1)) / 2);
                while !self.closed {
                    match rt.block_on(async { tokio::time::timeout(wait, rx.recv()).await }) {
                        Ok(Some(event)) => self.input(event),
                        Ok(None) => {
                            self.flush_decoder();
                            break;
                        }
                        Err(_) => {}
                    }
                    self.tick();
                }
            }
        }
        debug!("encoder stopped");
    }

    fn start_pattern(&mut self, width: u32, height: u32) -> Result<(), EncoderError> {
        let (width, height) = (width.max(16) & !1, height.max(16) & !1);
        self.pattern = Some((picture::pattern_base(width, height), 0));
        self.open_rungs(plan(&self.settings.ladder, width, height))
    }

    fn open_rungs(&mut self, rungs: Vec<Rung>) -> Result<(), EncoderError> {
        if self.planned.is_none() {
            let list: Vec<String> = rungs.iter().map(ToString::to_string).collect();
            info!(
                decoder = if self.nvdec { "h264_cuvid" } else { "h264" },
                encoder = self.codec.name(),
                scaler = if self.cuda { "cuda" } else { "swscale" },
                preset = %self.settings.preset,
                rungs = %list.join(", "),
                "encoding ladder"
            );
            self.send(EncoderEvent::Ladder(rungs.clone()));
        }
        let slate = match &self.settings.slate_image {
            Some(path) => Some(Shared::new(load_image(path)?)),
            None => None,
        };
        let mut workers = Vec::with_capacity(rungs.len());
        for (i, r) in rungs.iter().enumerate() {
            workers.push(RungWorker::start(
                i,
                r.clone(),
                &self.settings,
                self.codec,
                slate.clone(),
                self.out.clone(),
                Arc::clone(&self.metrics),
            )?);
        }
        #[cfg(feature = "cuda")]
        if self.cuda {
            let sizes: Vec<(u32, u32)> = rungs.iter().map(|r| (r.width, r.height)).collect();
            match crate::cuda::CudaScaler::new(&sizes) {
                Ok(gpu) => self.gpu = Some(gpu),
                Err(e) => warn!(error = %e, "CUDA scaling unavailable; scaling on the CPU"),
            }
        }
        self.rungs = workers;
        self.planned = Some(rungs);
        Ok(())
    }

    fn send(&mut self, event: EncoderEvent) {
        if self.out.blocking_send(event).is_err() {
            self.closed = true;
        }
    }

    /// Output PTS of this instant on the output clock.
    fn now_pos(&self) -> i64 {
        self.anchor.1 + ticks(self.anchor.0.elapsed(), VIDEO_TIMESCALE)
    }

    // ---- contribution input ----

    fn input(&mut self, event: MediaEvent) {
        match event {
            MediaEvent::Tracks(tracks) => self.set_tracks(&tracks),
            MediaEvent::Sample(s) => {
                if self.video_in.as_ref().is_some_and(|v| v.track == s.track) {
                    self.video_sample(s);
                } else if self.audio_in.as_ref().is_some_and(|a| a.track == s.track) {
                    self.audio_sample(&s);
                }
            }
            MediaEvent::Cue(cue) => self.cue(cue),
        }
    }

    fn set_tracks(&mut self, tracks: &[Track]) {
        // A new publisher (or new codec settings): new decoders, and a resync of the clock.
        self.offset = None;
        self.video_in = None;
        self.audio_in = None;
        for (i, t) in tracks.iter().enumerate() {
            match &t.codec {
                Codec::H264(c) if self.video_in.is_none() => match open_video_decoder(self.nvdec) {
                    Ok(dec) => {
                        self.video_in = Some(VideoIn {
                            track: i,
                            timescale: t.timescale,
                            dec,
                            config: c.clone(),
                            waiting_key: true,
                            errors_in_row: 0,
                        });
                    }
                    Err(e) => warn!(error = %e, "no video decoder"),
                },
                Codec::Aac(c) if self.audio_in.is_none() => match AudioDecoder::new(c.clone()) {
                    Ok(dec) => {
                        self.audio_in = Some(AudioIn {
                            track: i,
                            timescale: t.timescale,
                            dec,
                        });
                    }
                    Err(e) => warn!(error = %e, "no audio decoder"),
                },
                _ => {}
            }
        }
        if self.planned.is_none() && self.video_in.is_none() {
            // Audio only: the picture is the slate, at the default size.
            let rungs = plan(&self.settings.ladder, 1280, 720);
            if let Err(e) = self.open_rungs(rungs) {
                warn!(error = %e, "cannot open the ladder");
                self.closed = true;
            }
        }
    }

    fn video_sample(&mut self, s: Sample) {
        let Some(v) = self.video_in.as_mut() else {
            return;
        };
        if v.waiting_key {
            if !s.keyframe {
                return;
            }
            v.waiting_key = false;
        }
        let mut pkt = Packet::copy(&to_annex_b(&v.config.avcc, &s.data, s.keyframe));
        let pts = rescale(
            s.dts + i64::from(s.cts_offset),
            v.timescale,
            VIDEO_TIMESCALE,
        );
        pkt.set_pts(Some(pts));
        pkt.set_dts(Some(rescale(s.dts, v.timescale, VIDEO_TIMESCALE)));
        if let Err(e) = v.dec.send_packet(&pkt) {
            self.metrics.decode_errors.fetch_add(1, Ordering::Relaxed);
            v.errors_in_row += 1;
            debug!(error = %e, "decode error");
            if v.errors_in_row >= 10 {
                // A decoder this confused is restarted, and waits for the next keyframe.
                warn!("video decoder restarted after repeated errors");
                if let Ok(dec) = open_video_decoder(self.nvdec) {
                    v.dec = dec;
                }
                v.waiting_key = true;
                v.errors_in_row = 0;
            }
            return;
        }
        v.errors_in_row = 0;
        let frames = decoded_frames(&mut v.dec, Some(pts));
        self.encode_decoded(frames);
    }

    /// The frames a decoder still holds (B-frame reordering) at the end of the input.
    fn flush_decoder(&mut self) {
        let Some(v) = self.video_in.as_mut() else {
            return;
        };
        let _ = v.dec.send_eof();
        let frames = decoded_frames(&mut v.dec, None);
        self.encode_decoded(frames);
    }

    fn encode_decoded(&mut self, frames: Vec<(frame::Video, i64)>) {
        for (f, pts) in frames {
            self.metrics.frames_decoded.fetch_add(1, Ordering::Relaxed);
            self.video_frame(f, pts);
        }
    }

    fn video_frame(&mut self, f: frame::Video, in_pts: i64) {
        failpoint_panic(self.metrics.frames_decoded.load(Ordering::Relaxed));
        if self.planned.is_none() {
            let rungs = plan(&self.settings.ladder, f.width(), f.height());
            if let Err(e) = self.open_rungs(rungs) {
                warn!(error = %e, "cannot open the ladder");
                self.closed = true;
                return;
            }
        }
        let Some(out) = self.map(in_pts) else {
            self.metrics.late_frames.fetch_add(1, Ordering::Relaxed);
            return;
        };
        if let Some(fill) = self.filling.take() {
            info!(after = ?fill, "contribution restored; live picture again");
        }
        // While the contribution is live, the output clock is its clock: a feed that runs
        // a little slow or fast (a loaded publisher, jitter) moves the clock with it, so the
        // frames that fill a loss continue from the last real one, never jumping.
        let t = now();
        self.anchor = (t, out);
        self.last_video_in = Some(t);
        let idr = self.idr_at(out);
        let mut scaled = self.scale_on_gpu(&f).into_iter();
        let source = Shared::new(f);
        for i in 0..self.rungs.len() {
            let picture = match scaled.next() {
                Some(p) => Picture::Scaled(p),
                None => Picture::Source(Shared::clone(&source)),
            };
            self.job(
                i,
                Job::Video {
                    picture,
                    pts: out,
                    idr,
                },
            );
        }
        self.last_out = Some(out);
    }

    /// Every rung's picture from the GPU scaler, or nothing (then swscale does it).
    #[cfg(feature = "cuda")]
    fn scale_on_gpu(&mut self, f: &frame::Video) -> Vec<frame::Video> {
        let Some(gpu) = self.gpu.as_mut() else {
            return Vec::new();
        };
        gpu.scale(f).unwrap_or_else(|e| {
            debug!(error = %e, "GPU scaling failed for this frame; swscale instead");
            Vec::new()
        })
    }

    #[cfg(not(feature = "cuda"))]
    fn scale_on_gpu(&mut self, _f: &frame::Video) -> Vec<frame::Video> {
        Vec::new()
    }

    /// Maps a contribution PTS (90 kHz) onto the output clock: `None` when it falls at or
    /// behind the last output frame.
    fn map(&mut self, in_pts: i64) -> Option<i64> {
        let pos = self.now_pos();
        let mut out = in_pts + self.offset(in_pts);
        let far = i64::from(VIDEO_TIMESCALE);
        // The contribution's own clock jumped (a restart without new tracks, a splice):
        // re-anchor instead of dropping or racing ahead.
        if out > pos + 2 * far || self.last_out.is_some_and(|l| out < l - far) {
            debug!(jump = out - pos, "contribution timestamps jumped; resync");
            let o = self.resync_target() - in_pts;
            self.offset = Some(o);
            out = in_pts + o;
        }
        match self.last_out {
            Some(l) if out <= l => None,
            _ => Some(out),
        }
    }

    /// Where the next contribution frame lands after a (re)sync: right after the last
    /// output frame, or now, whichever is later.
    fn resync_target(&self) -> i64 {
        let pos = self.now_pos();
        self.last_out.map_or(pos, |l| (l + self.frame_dur).max(pos))
    }

    /// The contribution → output offset, established from `in_pts` (90 kHz) if there is none.
    fn offset(&mut self, in_pts: i64) -> i64 {
        match self.offset {
            Some(o) => o,
            None => *self.offset.insert(self.resync_target() - in_pts),
        }
    }

    fn idr_at(&mut self, pts: i64) -> bool {
        let gop = ticks(self.settings.gop, VIDEO_TIMESCALE).max(1);
        let origin = *self.gop_origin.get_or_insert(pts);
        let index = (pts - origin).div_euclid(gop);
        if self.gop_index == Some(index) {
            return false;
        }
        self.gop_index = Some(index);
        true
    }

    fn job(&mut self, i: usize, job: Job) {
        if !self.rungs[i].send(job) {
            warn!(rung = i, "a rung's encoder thread is gone; stopping");
            self.closed = true;
        }
    }

    fn audio_sample(&mut self, s: &Sample) {
        let Some(a) = self.audio_in.as_mut() else {
            return;
        };
        let in90 = rescale(s.dts, a.timescale, VIDEO_TIMESCALE);
        let mut pcm = [Vec::new(), Vec::new()];
        if let Err(e) = a.dec.decode(&s.data, &mut pcm) {
            self.metrics.decode_errors.fetch_add(1, Ordering::Relaxed);
            debug!(error = %e, "audio decode error");
            return;
        }
        self.last_audio_in = Some(now());
        if self.planned.is_none() {
            return; // no ladder yet: nothing to carry it
        }
        let offset = self.offset(in90);
        let at = rescale(in90 + offset, VIDEO_TIMESCALE, audio::RATE);
        let have = self.audio.position();
        let frame = audio::FRAME as i64;
        if at > have + 2 * frame {
            self.audio
                .push_silence(usize::try_from(at - have).unwrap_or(0));
        } else if at + (pcm[0].len() as i64) < have - 2 * frame {
            return; // behind the audio clock (after a fill): drop
        }
        self.audio.push(&mut pcm);
        self.drain_audio();
    }

    fn drain_audio(&mut self) {
        let samples = match self.audio.drain() {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "audio encode failed");
                return;
            }
        };
        for s in samples {
            for i in 0..self.rungs.len() {
                self.job(i, Job::Audio(s.clone()));
            }
        }
    }

    fn cue(&mut self, mut cue: CueEvent) {
        if let (Some(pts), Some(offset)) = (cue.pts, self.offset) {
            let timescale = self
                .video_in
                .as_ref()
                .map_or(VIDEO_TIMESCALE, |v| v.timescale);
            cue.pts = Some(rescale(pts, timescale, VIDEO_TIMESCALE) + offset);
        } else {
            cue.pts = None;
        }
        for i in 0..self.rungs.len() {
            self.job(i, Job::Cue(cue.clone()));
        }
    }

    // ---- the clock: test pattern, held and slate frames ----

    fn tick(&mut self) {
        if self.rungs.is_empty() {
            return;
        }
        let pos = self.now_pos();
        let fill = if self.pattern.is_some() {
            None
        } else if self.slate_only {
            Some(Fill::Slate)
        } else {
            let silent = self.last_video_in.map_or(Duration::MAX, |t| t.elapsed());
            if silent < self.settings.hold || self.last_out.is_none() && self.video_in.is_some() {
                return;
            }
            Some(if silent < self.settings.slate_after {
                Fill::Hold
            } else {
                Fill::Slate
            })
        };
        if fill.is_some() && fill != self.filling && !self.slate_only {
            match fill {
                Some(Fill::Hold) => warn!("contribution lost; holding the last frame"),
                Some(Fill::Slate) => warn!("contribution still lost; showing the slate"),
                None => {}
            }
            self.filling = fill;
            self.offset = None;
        }
        let mut next = self.last_out.map_or(pos, |l| l + self.frame_dur);
        while next <= pos && !self.closed {
            self.synthetic_frame(next, fill);
            self.last_out = Some(next);
            next += self.frame_dur;
        }
    }

    fn synthetic_frame(&mut self, pts: i64, fill: Option<Fill>) {
        let idr = self.idr_at(pts);
        if let Some((base, n)) = self.pattern.as_mut() {
            let pic = Shared::new(picture::pattern_frame(base, unix_ms(), *n));
            *n += 1;
            for i in 0..self.rungs.len() {
                let picture = Picture::Source(Shared::clone(&pic));
                self.job(i, Job::Video { picture, pts, idr });
            }
            // The tone, up to this frame's end.
            let until = rescale(pts + self.frame_dur, VIDEO_TIMESCALE, audio::RATE);
            let n = usize::try_from(until - self.audio.position()).unwrap_or(0);
            self.audio.push_mono(&picture::tone(self.tone_pos, n));
            self.tone_pos += n as u64;
            self.drain_audio();
            return;
        }
        if !self.slate_only {
            let counter = match fill {
                Some(Fill::Hold) => &self.metrics.held_frames,
                _ => &self.metrics.slate_frames,
            };
            counter.fetch_add(1, Ordering::Relaxed);
        }
        for i in 0..self.rungs.len() {
            let picture = match fill {
                Some(Fill::Hold) => Picture::Hold,
                _ => Picture::Slate,
            };
            self.job(i, Job::Video { picture, pts, idr });
        }
        // Silence, unless the contribution's audio is still coming.
        let audio_live = self
            .last_audio_in
            .is_some_and(|t| t.elapsed() < self.settings.hold);
        if !audio_live {
            let until = rescale(pts + self.frame_dur, VIDEO_TIMESCALE, audio::RATE);
            let n = usize::try_from(until - self.audio.position()).unwrap_or(0);
            self.audio.push_silence(n);
            self.drain_audio();
        }
    }
}

/// Every picture the decoder has ready, with its PTS (the packet's, `fallback`, when the
/// decoder gives none; a picture with neither is dropped).
fn decoded_frames(dec: &mut decoder::Video, fallback: Option<i64>) -> Vec<(frame::Video, i64)> {
    let mut frames = Vec::new();
    let mut decoded = frame::Video::empty();
    while dec.receive_frame(&mut decoded).is_ok() {
        if let Some(pts) = decoded.timestamp().or(decoded.pts()).or(fallback) {
            frames.push((std::mem::replace(&mut decoded, frame::Video::empty()), pts));
        }
    }
    frames
}

/// Chaos testing: with `WEIR_FAILPOINT_ENCODER_PANIC=N` in the environment, the first
/// encoder of the process to decode its N-th frame panics, once (the e2e tests use it to
/// check that a crashed encoder is restarted without breaking the timeline).
fn failpoint_panic(frames_decoded: u64) {
    use std::sync::atomic::AtomicBool;
    use std::sync::OnceLock;
    static AT: OnceLock<Option<u64>> = OnceLock::new();
    static FIRED: AtomicBool = AtomicBool::new(false);
    let at = AT.get_or_init(|| {
        std::env::var("WEIR_FAILPOINT_ENCODER_PANIC")
            .ok()
            .and_then(|v| v.parse().ok())
    });
    if at.is_some_and(|n| frames_decoded >= n) && !FIRED.swap(true, Ordering::Relaxed) {
        #[allow(clippy::panic)]
        {
            panic!(
                "failpoint WEIR_FAILPOINT_ENCODER_PANIC: encoder crash at frame {frames_decoded}"
            );
        }
    }
}

/// FFmpeg's NVDEC H.264 decoder (`h264_cuvid`), when it opens here (a driver and a GPU with
/// NVDEC). It takes the same Annex B input and returns NV12 pictures in system memory, which
/// both scalers read.
pub(crate) fn open_nvdec() -> Option<decoder::Video> {
    let codec = decoder::find_by_name("h264_cuvid")?;
    codec::Context::new_with_codec(codec).decoder().video().ok()
}

fn open_video_decoder(nvdec: bool) -> Result<decoder::Video, EncoderError> {
    if nvdec {
        if let Some(dec) = open_nvdec() {
            return Ok(dec);
        }
        warn!("NVDEC did not open for this stream; decoding on the CPU");
    }
    let codec = decoder::find(codec::Id::H264).ok_or(EncoderError::MissingCodec("h264"))?;
    let mut ctx = codec::Context::new_with_codec(codec);
    // Slice threads add no delay (frame threads would hold frames back).
    ctx.set_threading(ffmpeg_next::threading::Config {
        kind: ffmpeg_next::threading::Type::Slice,
        count: 2,
        ..Default::default()
    });
    ctx.decoder()
        .video()
        .map_err(|e| EncoderError::Ffmpeg("video decoder", e))
}

/// Checks that `path` holds a picture FFmpeg can decode (the slate), for a clear error at
/// startup rather than an encoder that cannot start.
pub fn check_image(path: &std::path::Path) -> Result<(u32, u32), EncoderError> {
    crate::init()?;
    load_image(path).map(|f| (f.width(), f.height()))
}

/// The first picture of an image file (PNG, JPEG, anything FFmpeg reads).
pub(crate) fn load_image(path: &std::path::Path) -> Result<frame::Video, EncoderError> {
    let err = |reason: String| EncoderError::Slate {
        path: path.to_owned(),
        reason,
    };
    let mut input = ffmpeg_next::format::input(path).map_err(|e| err(e.to_string()))?;
    let stream = input
        .streams()
        .best(ffmpeg_next::media::Type::Video)
        .ok_or_else(|| err("no picture in it".to_owned()))?;
    let index = stream.index();
    let mut dec = codec::Context::from_parameters(stream.parameters())
        .and_then(|c| c.decoder().video())
        .map_err(|e| err(e.to_string()))?;
    let mut pic = frame::Video::empty();
    for (s, pkt) in input.packets() {
        if s.index() != index {
            continue;
        }
        dec.send_packet(&pkt).map_err(|e| err(e.to_string()))?;
        if dec.receive_frame(&mut pic).is_ok() {
            return Ok(pic);
        }
    }
    let _ = dec.send_eof();
    if dec.receive_frame(&mut pic).is_ok() {
        return Ok(pic);
    }
    Err(err("no picture decoded".to_owned()))
}
