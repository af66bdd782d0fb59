//! Per-stream packaging: media events in, a live rendition out.
//!
//! A stream outlives its publishers. [`Streams::attach`] hands each publishing session a
//! sender into the stream's one task, which owns the [`Packager`] and the stream's
//! [`RenditionProducer`]:
//!
//! - it writes each CMAF chunk into the open part the moment the packager emits it (readers
//!   of the preload-hinted part see it at once), opens the next part before publishing the
//!   playlist that hints it, and publishes one snapshot per part;
//! - when the contribution stalls for `loss_timeout`, it keeps the timeline's cadence with
//!   `EXT-X-GAP` parts; in a passed-through stream (with `standby`) the gap covers only the
//!   time already lost, and the built-in stand-by slate follows behind an
//!   `EXT-X-DISCONTINUITY`, so players always have media ahead of a gap; when a publisher
//!   returns (on any protocol, with any codec parameters) the packager restarts behind an
//!   `EXT-X-DISCONTINUITY`, numbering and program-date-time continuing;
//! - after `idle_end` without a publisher it writes `EXT-X-ENDLIST`, lingers so players can
//!   finish, and removes the stream.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{debug, info, warn, Instrument};
use weir_encoder::{EncoderEvent, EncoderMetrics, EncoderSettings};
use weir_media::{
    rendition_channel, CueEvent, MediaEvent, PartProducer, RenditionProducer, RenditionSnapshot,
    StreamProducer, StreamRegistry, Track, TrackKind,
};
use weir_packager::{
    wall_clock_start, MediaPlaylist, MultivariantPlaylist, Output, Packager, RenditionReport,
    Settings, Variant,
};

/// The single rendition a passthrough stream has.
pub const SOURCE_RENDITION: &str = "src";

/// Media events buffered between an ingest session and its stream task.
pub const CHANNEL_DEPTH: usize = 1024;

#[derive(Debug, Clone)]
pub struct PipelineSettings {
    pub packager: Settings,
    /// No media for this long and the contribution counts as lost: gap parts follow.
    pub loss_timeout: Duration,
    /// Passed-through streams: once the contribution is lost, the gap so far is published
    /// with the stand-by slate right behind it, and the slate plays until a publisher
    /// returns. Off: gap parts for the whole loss (Shaka stops at a live edge that is all
    /// gaps; docs/design/005-contribution-loss.md).
    pub standby: bool,
    /// No publisher for this long and the stream ends (`EXT-X-ENDLIST`).
    pub idle_end: Duration,
    /// How long an ended stream stays servable with `EXT-X-ENDLIST`.
    pub linger: Duration,
    /// Per-stream choices that come from the stream's tenant.
    pub policy: StreamPolicy,
    /// Keeps each rendition's numbers above what an earlier run served, whatever the clock
    /// says (`server.state_dir`; `None`: the clock alone). docs/design/003.
    pub numbering: Option<Arc<crate::state::NumberingStore>>,
}

/// What a stream's tenant asks of its pipeline.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// The packager renders cues as `EXT-X-DATERANGE` (off when the tenant's scte35 plugin
    /// does it instead).
    pub cue_tags: bool,
    /// The stream also has a `slate` rendition (the built-in slate, looped and packaged
    /// with the stream's settings), for the blackout plugin to send viewers to.
    pub slate: bool,
    /// Transcode into this ladder; `None` passes the contribution through as `src`.
    pub encoder: Option<Arc<EncoderSettings>>,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            cue_tags: true,
            slate: false,
            encoder: None,
        }
    }
}

/// [`StreamOptions`] by stream name, with a default for the rest.
#[derive(Debug, Clone, Default)]
pub struct StreamPolicy {
    pub streams: HashMap<String, StreamOptions>,
    pub default: StreamOptions,
}

impl StreamPolicy {
    pub fn for_stream(&self, stream: &str) -> StreamOptions {
        self.streams
            .get(stream)
            .cloned()
            .unwrap_or_else(|| self.default.clone())
    }
}

/// The hidden rendition with the slate, next to the stream's own.
pub const SLATE_RENDITION: &str = "slate";

/// Counters exported on `/metrics`.
#[derive(Debug, Default)]
pub struct PipelineMetrics {
    pub sessions_started: AtomicU64,
    pub streams_active: AtomicU64,
    pub parts_published: AtomicU64,
    pub gap_parts_published: AtomicU64,
    pub segments_published: AtomicU64,
    pub samples_rejected: AtomicU64,
    pub contribution_losses: AtomicU64,
    pub standby_starts: AtomicU64,
    pub cues: AtomicU64,
}

impl weir_origin::MetricsSource for PipelineMetrics {
    fn render(&self) -> String {
        let mut out = String::with_capacity(1024);
        weir_media::metrics::write_atomics(
            &mut out,
            &[
                (
                    "weir_ingest_sessions_total",
                    "counter",
                    "Publisher sessions attached to streams.",
                    &self.sessions_started,
                ),
                (
                    "weir_streams_active",
                    "gauge",
                    "Streams being packaged now.",
                    &self.streams_active,
                ),
                (
                    "weir_parts_published_total",
                    "counter",
                    "Media parts published.",
                    &self.parts_published,
                ),
                (
                    "weir_gap_parts_published_total",
                    "counter",
                    "EXT-X-GAP parts published during contribution loss.",
                    &self.gap_parts_published,
                ),
                (
                    "weir_segments_published_total",
                    "counter",
                    "Segments published.",
                    &self.segments_published,
                ),
                (
                    "weir_samples_rejected_total",
                    "counter",
                    "Samples the packager refused (e.g. non-monotonic timestamps).",
                    &self.samples_rejected,
                ),
                (
                    "weir_contribution_losses_total",
                    "counter",
                    "Times a contribution stalled past ingest.loss_timeout_ms.",
                    &self.contribution_losses,
                ),
                (
                    "weir_standby_starts_total",
                    "counter",
                    "Times the stand-by slate took a lost publisher's place.",
                    &self.standby_starts,
                ),
                (
                    "weir_cues_total",
                    "counter",
                    "Cues (SCTE-35, RTMP cue points, API) received.",
                    &self.cues,
                ),
            ],
        );
        out
    }
}

enum Control {
    /// A publisher for this stream: its media replaces the current publisher's.
    Attach(mpsc::Receiver<MediaEvent>),
    /// A cue from the operator API.
    Cue(CueEvent),
    /// The process is stopping for good (`server.end_streams_on_shutdown`): end the stream
    /// now, with `EXT-X-ENDLIST`.
    End,
}

/// The live streams' tasks, by name.
#[derive(Clone)]
pub struct Streams {
    registry: StreamRegistry,
    settings: PipelineSettings,
    metrics: Arc<PipelineMetrics>,
    encoder_metrics: Arc<EncoderMetrics>,
    tasks: Arc<Mutex<HashMap<String, mpsc::Sender<Control>>>>,
}

/// The stream named in a cue request has no task.
#[derive(Debug)]
pub struct NoSuchStream;

/// `ingest.max_streams` streams are running.
#[derive(Debug)]
pub struct AtCapacity;

impl Streams {
    pub fn new(
        registry: StreamRegistry,
        settings: PipelineSettings,
        metrics: Arc<PipelineMetrics>,
        encoder_metrics: Arc<EncoderMetrics>,
    ) -> Self {
        Self {
            registry,
            settings,
            metrics,
            encoder_metrics,
            tasks: Arc::default(),
        }
    }

    /// A new publisher for stream `name`: returns where its media goes. Starts the stream's
    /// task if it has none; otherwise the task switches to this publisher.
    pub fn attach(&self, name: &str) -> mpsc::Sender<MediaEvent> {
        match self.attach_within(name, usize::MAX) {
            Ok(tx) => tx,
            Err(AtCapacity) => unreachable!("no stream limit"),
        }
    }

    /// [`attach`](Self::attach), unless `name` has no task and `max_streams` streams are
    /// running (`ingest.max_streams`): a new stream is refused, a returning publisher of a
    /// live (or lingering) stream never is. Checked under the same lock as the attach, so
    /// racing publishers cannot overshoot the limit.
    pub fn attach_within(
        &self,
        name: &str,
        max_streams: usize,
    ) -> Result<mpsc::Sender<MediaEvent>, AtCapacity> {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        if !tasks.contains_key(name) && tasks.len() >= max_streams {
            return Err(AtCapacity);
        }
        self.metrics
            .sessions_started
            .fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let mut control = Control::Attach(rx);
        if let Some(ctl) = tasks.get(name) {
            match ctl.try_send(control) {
                Ok(()) => return Ok(tx),
                // The task is ending (or wedged): start a fresh one below.
                Err(mpsc::error::TrySendError::Closed(c) | mpsc::error::TrySendError::Full(c)) => {
                    control = c;
                }
            }
        }
        let (ctl_tx, ctl_rx) = mpsc::channel(16);
        let _ = ctl_tx.try_send(control);
        tasks.insert(name.to_owned(), ctl_tx.clone());
        drop(tasks);
        self.spawn(name, ctl_tx, ctl_rx);
        Ok(tx)
    }

    /// Ends every stream now (`EXT-X-ENDLIST`), for a shutdown that is not a restart.
    pub fn end_all(&self) {
        let tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        for ctl in tasks.values() {
            let _ = ctl.try_send(Control::End);
        }
    }

    /// Hands a cue to stream `name`.
    pub fn inject_cue(&self, name: &str, cue: CueEvent) -> Result<(), NoSuchStream> {
        let tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        let ctl = tasks.get(name).ok_or(NoSuchStream)?;
        ctl.try_send(Control::Cue(cue)).map_err(|_| NoSuchStream)
    }

    fn spawn(&self, name: &str, ctl_tx: mpsc::Sender<Control>, ctl_rx: mpsc::Receiver<Control>) {
        let options = self.settings.policy.for_stream(name);
        self.spawn_with(name, ctl_tx, ctl_rx, options.encoder.map(|e| (e, None)));
    }

    /// Starts the built-in test pattern as stream `name`, through `encoder`'s ladder.
    pub fn start_test_pattern(
        &self,
        name: &str,
        encoder: Arc<EncoderSettings>,
        width: u32,
        height: u32,
    ) {
        let (ctl_tx, ctl_rx) = mpsc::channel(16);
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(name.to_owned(), ctl_tx.clone());
        self.spawn_with(name, ctl_tx, ctl_rx, Some((encoder, Some((width, height)))));
    }

    fn spawn_with(
        &self,
        name: &str,
        ctl_tx: mpsc::Sender<Control>,
        ctl_rx: mpsc::Receiver<Control>,
        encode: Option<Encode>,
    ) {
        let stream = self.registry.publish(name);
        // A root span: the task outlives the session that started it.
        let span = tracing::info_span!(parent: None, "stream", name = %name);
        let settings = self.settings.clone();
        let metrics = Arc::clone(&self.metrics);
        let encoder_metrics = Arc::clone(&self.encoder_metrics);
        let tasks = Arc::clone(&self.tasks);
        let name = name.to_owned();
        metrics.streams_active.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(
            async move {
                let linger = settings.linger;
                let stream = Arc::new(stream);
                // Passed-through streams get the slate clip as one hidden `slate` rendition;
                // transcoded ones get `slate-<rung>` renditions from the encoder (Router).
                let slate = (encode.is_none() && settings.policy.for_stream(stream.name()).slate)
                    .then(|| spawn_slate(&stream, &settings));
                let ladder = Arc::new(Ladder::default());
                let kept = match encode {
                    Some((encoder, pattern)) => {
                        let mut task = TranscodedStream {
                            stream: Arc::clone(&stream),
                            settings,
                            encoder,
                            metrics: Arc::clone(&metrics),
                            encoder_metrics,
                            ladder,
                            pattern,
                        };
                        task.run(ctl_rx).await
                    }
                    None => {
                        let standby = settings.standby;
                        let mut task = StreamTask::new(
                            Arc::clone(&stream),
                            SOURCE_RENDITION,
                            settings,
                            Arc::clone(&metrics),
                            Some(ladder),
                        );
                        task.standby = standby;
                        task.run(ctl_rx).await;
                        vec![task]
                    }
                };
                if let Some(slate) = slate {
                    slate.abort();
                }
                {
                    let mut t = tasks.lock().unwrap_or_else(PoisonError::into_inner);
                    if t.get(&name).is_some_and(|c| c.same_channel(&ctl_tx)) {
                        t.remove(&name);
                    }
                }
                metrics.streams_active.fetch_sub(1, Ordering::Relaxed);
                // Keep the ended playlist servable for players that are still catching up,
                // unless a new publisher has taken the name over meanwhile.
                tokio::time::sleep(linger).await;
                drop(kept);
                drop(stream);
                debug!("stream removed");
            }
            .instrument(span),
        );
    }
}

/// How a stream is encoded: the settings, and the test pattern's size when the pattern
/// (not a contribution) is the source.
type Encode = (Arc<EncoderSettings>, Option<(u32, u32)>);

/// The slate rendition: the built-in slate clip, looped, through its own packager (its own
/// part and segment numbers: players reach it through its own playlist, never by swapping
/// URIs inside the stream's). Ends with the stream.
fn spawn_slate(
    stream: &Arc<StreamProducer>,
    settings: &PipelineSettings,
) -> tokio::task::JoinHandle<()> {
    let mut task = StreamTask::new(
        Arc::clone(stream),
        SLATE_RENDITION,
        settings.clone(),
        // Not the exported counters: the slate is not a contribution.
        Arc::new(PipelineMetrics::default()),
        // Hidden: not in the multivariant playlist.
        None,
    );
    let (ctl_tx, ctl_rx) = mpsc::channel(4);
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let _ = ctl_tx.try_send(Control::Attach(rx));
    tokio::spawn(
        async move {
            let Ok(clip) = crate::testsrc::Clip::slate() else {
                tracing::error!("the built-in slate clip does not decode; no slate rendition");
                return;
            };
            let _ctl = ctl_tx;
            tokio::join!(task.run(ctl_rx), crate::testsrc::run(clip, tx));
        }
        .instrument(tracing::info_span!("slate")),
    )
}

/// The renditions a stream lists in its multivariant playlist, in order, and each one's
/// live edge for the others' `EXT-X-RENDITION-REPORT`s.
#[derive(Default)]
struct Ladder {
    entries: Mutex<Vec<LadderEntry>>,
}

struct LadderEntry {
    name: String,
    variant: Option<Variant>,
    /// (LAST-MSN, LAST-PART) of its newest playlist.
    edge: Option<(u64, u32)>,
}

impl Ladder {
    /// Declares the renditions (in multivariant order) before any of them publishes.
    fn declare(&self, names: &[&str]) {
        for n in names {
            self.with_entry(n, |_| ());
        }
    }

    fn with_entry<R>(&self, name: &str, f: impl FnOnce(&mut LadderEntry) -> R) -> R {
        let mut e = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let i = match e.iter().position(|x| x.name == name) {
            Some(i) => i,
            None => {
                e.push(LadderEntry {
                    name: name.to_owned(),
                    variant: None,
                    edge: None,
                });
                e.len() - 1
            }
        };
        f(&mut e[i])
    }

    /// Records `name`'s edge; returns the reports for its siblings.
    fn reports(&self, name: &str, edge: Option<(u64, u32)>) -> Vec<RenditionReport> {
        self.with_entry(name, |e| e.edge = edge);
        let e = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        e.iter()
            .filter(|x| x.name != name)
            .filter_map(|x| {
                let (last_msn, last_part) = x.edge?;
                Some(RenditionReport {
                    uri: format!("../{}/index.m3u8", x.name),
                    last_msn,
                    last_part,
                })
            })
            .collect()
    }

    /// Sets `name`'s variant; returns the multivariant playlist of every known variant.
    fn multivariant(&self, name: &str, variant: Variant) -> MultivariantPlaylist {
        self.with_entry(name, |e| e.variant = Some(variant));
        let e = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        MultivariantPlaylist {
            variants: e.iter().filter_map(|x| x.variant.clone()).collect(),
        }
    }
}

/// A transcoded stream: the contribution (or the test pattern) goes through the encoder,
/// and each rung has its own [`StreamTask`] and packager. The encoder keeps every rung on
/// cadence through a loss (held frame, then slate), so the rungs' packagers never see one;
/// an encoder that dies is restarted on the same rungs, its timestamps continuing.
struct TranscodedStream {
    stream: Arc<StreamProducer>,
    settings: PipelineSettings,
    encoder: Arc<EncoderSettings>,
    metrics: Arc<PipelineMetrics>,
    encoder_metrics: Arc<EncoderMetrics>,
    ladder: Arc<Ladder>,
    /// The test pattern's size, for the built-in source (it never ends).
    pattern: Option<(u32, u32)>,
}

struct RungTask {
    media: mpsc::Sender<MediaEvent>,
    _ctl: mpsc::Sender<Control>,
    cues: mpsc::Sender<Control>,
    done: tokio::task::JoinHandle<StreamTask>,
}

impl TranscodedStream {
    fn start_encoder(
        &self,
        start: weir_encoder::Start,
    ) -> Option<(mpsc::Sender<MediaEvent>, mpsc::Receiver<EncoderEvent>)> {
        let (in_tx, in_rx) = mpsc::channel(CHANNEL_DEPTH);
        let (out_tx, out_rx) = mpsc::channel(CHANNEL_DEPTH);
        let source = match self.pattern {
            Some((width, height)) => weir_encoder::Source::TestPattern { width, height },
            None => weir_encoder::Source::Contribution(in_rx),
        };
        match weir_encoder::spawn(
            self.stream.name(),
            (*self.encoder).clone(),
            source,
            start,
            out_tx,
            Arc::clone(&self.encoder_metrics),
        ) {
            Ok(_) => Some((in_tx, out_rx)),
            Err(e) => {
                warn!(error = %e, "cannot start the encoder");
                None
            }
        }
    }

    /// Runs until the stream ends; returns the rungs' tasks, which keep the ended
    /// renditions servable while they linger.
    ///
    /// Two loops, so that neither can wait on the other: this one feeds the encoder (and may
    /// wait on it: backpressure to the publisher's socket), and [`route`](Self::route)
    /// drains the encoder into the rungs, and reports an encoder that died.
    async fn run(&mut self, mut ctl: mpsc::Receiver<Control>) -> Vec<StreamTask> {
        let Some((mut enc_in, enc_out)) = self.start_encoder(weir_encoder::Start::default()) else {
            return Vec::new();
        };
        let (outputs_tx, outputs_rx) = mpsc::channel(1);
        let _ = outputs_tx.try_send(enc_out);
        let (died_tx, mut died) = mpsc::channel(1);
        let (cues_tx, cues_rx) = mpsc::channel(64);
        let router = tokio::spawn(
            Router {
                stream: self.clone_for_router(),
                rungs: Vec::new(),
                slate: None,
                planned: None,
                last_pts: None,
            }
            .run(outputs_rx, died_tx, cues_rx)
            .in_current_span(),
        );
        let mut session: Option<mpsc::Receiver<MediaEvent>> = None;
        let mut last_tracks: Option<MediaEvent> = None;
        let mut last_publisher = Instant::now();
        let mut started_at = Instant::now();
        let mut quick_deaths = 0u32;
        let mut ticker = tokio::time::interval(Duration::from_millis(500));
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                c = ctl.recv() => match c {
                    Some(Control::Attach(rx)) => {
                        info!(
                            "{}",
                            if session.is_some() { "a new publisher takes over the stream" }
                            else { "publisher attached" }
                        );
                        session = Some(rx);
                        last_publisher = Instant::now();
                    }
                    Some(Control::Cue(cue)) => {
                        self.metrics.cues.fetch_add(1, Ordering::Relaxed);
                        let _ = cues_tx.try_send(cue);
                    }
                    Some(Control::End) | None => break,
                },
                event = next_event(session.as_mut()) => match event {
                    Some(event) => {
                        if matches!(event, MediaEvent::Tracks(_)) {
                            last_tracks = Some(event.clone());
                        }
                        if matches!(event, MediaEvent::Cue(_)) {
                            self.metrics.cues.fetch_add(1, Ordering::Relaxed);
                        }
                        last_publisher = Instant::now();
                        // Backpressure: a slow encoder slows the publisher's socket.
                        let _ = enc_in.send(event).await;
                    }
                    None => {
                        info!("publisher left; the encoder keeps the stream on the slate");
                        session = None;
                        last_publisher = Instant::now();
                    }
                },
                start = died.recv() => {
                    let Some(start) = start else { break };
                    // The encoder thread ended without being asked: restart it on the same
                    // rungs, after the last frame it sent.
                    self.encoder_metrics.restarts.fetch_add(1, Ordering::Relaxed);
                    // One that keeps dying at once (it cannot open its encoders) is retried
                    // with a growing pause, not in a busy loop.
                    quick_deaths = if started_at.elapsed() < Duration::from_secs(5) {
                        quick_deaths + 1
                    } else {
                        0
                    };
                    let pause = Duration::from_millis(250 << quick_deaths.min(5)).min(Duration::from_secs(5));
                    warn!(?pause, "encoder stopped unexpectedly; restarting it");
                    if quick_deaths > 0 {
                        tokio::time::sleep(pause).await;
                    }
                    started_at = Instant::now();
                    let Some((i, o)) = self.start_encoder(start) else { break };
                    enc_in = i;
                    if outputs_tx.send(o).await.is_err() {
                        break;
                    }
                    if let Some(t) = last_tracks.clone() {
                        let _ = enc_in.send(t).await;
                    }
                },
                _ = ticker.tick() => {
                    if self.pattern.is_none()
                        && session.is_none()
                        && last_publisher.elapsed() >= self.settings.idle_end
                    {
                        info!(idle = ?last_publisher.elapsed(), "no publisher; ending the stream");
                        break;
                    }
                }
            }
        }
        // Stop the encoder; the router then ends every rung (EXT-X-ENDLIST).
        drop(enc_in);
        drop(outputs_tx);
        drop(cues_tx);
        router.await.unwrap_or_default()
    }

    fn clone_for_router(&self) -> RouterContext {
        RouterContext {
            stream: Arc::clone(&self.stream),
            settings: self.settings.clone(),
            metrics: Arc::clone(&self.metrics),
            ladder: Some(Arc::clone(&self.ladder)),
            audio_bitrate: self.encoder.audio_bitrate,
            slate: self
                .settings
                .policy
                .for_stream(self.stream.name())
                .slate
                .then(|| Arc::clone(&self.encoder)),
        }
    }
}

/// What the router needs to start the rungs' tasks.
struct RouterContext {
    stream: Arc<StreamProducer>,
    settings: PipelineSettings,
    metrics: Arc<PipelineMetrics>,
    /// `None` for hidden renditions (the slate ladder).
    ladder: Option<Arc<Ladder>>,
    audio_bitrate: u64,
    /// Also encode the slate into `slate-<rung>` renditions with the rungs' parameters
    /// (tenant `slate = true`), once the rungs are known.
    slate: Option<Arc<EncoderSettings>>,
}

/// Moves the encoder's output into the rungs' tasks.
struct Router {
    stream: RouterContext,
    rungs: Vec<RungTask>,
    /// The slate ladder's router, when the stream has one.
    slate: Option<tokio::task::JoinHandle<Vec<StreamTask>>>,
    planned: Option<Vec<weir_encoder::Rung>>,
    /// The last video PTS sent: a restarted encoder continues after it.
    last_pts: Option<i64>,
}

impl Router {
    async fn run(
        mut self,
        mut outputs: mpsc::Receiver<mpsc::Receiver<EncoderEvent>>,
        died: mpsc::Sender<weir_encoder::Start>,
        mut cues: mpsc::Receiver<CueEvent>,
    ) -> Vec<StreamTask> {
        while let Some(mut out) = outputs.recv().await {
            loop {
                tokio::select! {
                    ev = out.recv() => match ev {
                        Some(ev) => self.route(ev).await,
                        None => break,
                    },
                    Some(cue) = cues.recv() => {
                        for r in &self.rungs {
                            let _ = r.cues.try_send(Control::Cue(cue.clone()));
                        }
                    }
                }
            }
            let start = weir_encoder::Start {
                pts: self.last_pts.map_or(0, |p| p + 3_000),
                rungs: self.planned.clone(),
            };
            if died.send(start).await.is_err() {
                break; // the stream is ending: the encoder was stopped on purpose
            }
        }
        let mut done = Vec::new();
        if let Some(slate) = self.slate.take() {
            slate.abort();
        }
        for r in self.rungs {
            drop(r.media);
            drop(r._ctl);
            drop(r.cues);
            done.push(r.done);
        }
        let mut tasks = Vec::new();
        for d in done {
            if let Ok(t) = d.await {
                tasks.push(t);
            }
        }
        tasks
    }

    async fn route(&mut self, ev: EncoderEvent) {
        match ev {
            EncoderEvent::Ladder(l) => {
                if self.planned.is_none() {
                    self.rungs = self.start_rungs(&l);
                    if let Some(encoder) = self.stream.slate.take() {
                        self.slate = self.start_slate_ladder(encoder, &l);
                    }
                    self.planned = Some(l);
                }
            }
            EncoderEvent::Media { rung, event } => {
                if let MediaEvent::Sample(s) = &event {
                    if s.track == 0 {
                        self.last_pts = Some(s.dts + i64::from(s.cts_offset));
                    }
                }
                if let Some(r) = self.rungs.get(rung) {
                    let _ = r.media.send(event).await;
                }
            }
        }
    }

    /// The slate, encoded into `slate-<rung>` renditions with each rung's size and settings
    /// (so a blackout switches between renditions with the same codec parameters), by its
    /// own encoder and router. Hidden: not in the multivariant playlist.
    fn start_slate_ladder(
        &self,
        encoder: Arc<EncoderSettings>,
        rungs: &[weir_encoder::Rung],
    ) -> Option<tokio::task::JoinHandle<Vec<StreamTask>>> {
        let c = &self.stream;
        let rungs: Vec<weir_encoder::Rung> = rungs
            .iter()
            .map(|r| weir_encoder::Rung {
                name: format!("{SLATE_RENDITION}-{}", r.name),
                ..r.clone()
            })
            .collect();
        let (out_tx, out_rx) = mpsc::channel(CHANNEL_DEPTH);
        let start = weir_encoder::Start {
            pts: 0,
            rungs: Some(rungs),
        };
        if let Err(e) = weir_encoder::spawn(
            &format!("{}-{SLATE_RENDITION}", c.stream.name()),
            (*encoder).clone(),
            weir_encoder::Source::Slate,
            start,
            out_tx,
            // Not the exported counters: the slate is not a contribution.
            Arc::new(EncoderMetrics::default()),
        ) {
            warn!(error = %e, "no slate ladder");
            return None;
        }
        let (outputs_tx, outputs_rx) = mpsc::channel(1);
        let _ = outputs_tx.try_send(out_rx);
        // No restarts for the slate: its died channel has no receiver.
        let (died_tx, _) = mpsc::channel(1);
        let (_cues_tx, cues_rx) = mpsc::channel(1);
        let router = Router {
            stream: RouterContext {
                stream: Arc::clone(&c.stream),
                settings: c.settings.clone(),
                metrics: Arc::new(PipelineMetrics::default()),
                ladder: None,
                audio_bitrate: c.audio_bitrate,
                slate: None,
            },
            rungs: Vec::new(),
            slate: None,
            planned: None,
            last_pts: None,
        };
        Some(tokio::spawn(
            async move {
                let _keep = (outputs_tx, _cues_tx);
                router.run(outputs_rx, died_tx, cues_rx).await
            }
            .instrument(tracing::info_span!("slate ladder")),
        ))
    }

    fn start_rungs(&self, rungs: &[weir_encoder::Rung]) -> Vec<RungTask> {
        let c = &self.stream;
        let names: Vec<&str> = rungs.iter().map(|r| r.name.as_str()).collect();
        if let Some(ladder) = &c.ladder {
            ladder.declare(&names);
        }
        rungs
            .iter()
            .map(|r| {
                let mut task = StreamTask::new(
                    Arc::clone(&c.stream),
                    &r.name,
                    c.settings.clone(),
                    Arc::clone(&c.metrics),
                    c.ladder.clone(),
                );
                task.nominal_bandwidth = r.bitrate + c.audio_bitrate + r.bitrate / 10;
                let (ctl_tx, ctl_rx) = mpsc::channel(16);
                let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
                let _ = ctl_tx.try_send(Control::Attach(rx));
                let cues = ctl_tx.clone();
                let done = tokio::spawn(
                    async move {
                        task.run(ctl_rx).await;
                        task
                    }
                    .in_current_span(),
                );
                RungTask {
                    media: tx,
                    _ctl: ctl_tx,
                    cues,
                    done,
                }
            })
            .collect()
    }
}

struct StreamTask {
    stream: Arc<StreamProducer>,
    /// This task's rendition in the stream; only `src` publishes the multivariant playlist.
    rendition_name: String,
    rendition: RenditionProducer,
    /// The stream's listed renditions; `None` for a hidden one (the slate).
    ladder: Option<Arc<Ladder>>,
    /// BANDWIDTH until a segment has been measured.
    nominal_bandwidth: u64,
    settings: PipelineSettings,
    metrics: Arc<PipelineMetrics>,
    packager: Option<Packager>,
    open_part: Option<(u64, PartProducer)>,
    tracks: Vec<Track>,
    version: u64,
    bandwidth: Option<u64>,
    /// Cues that arrived before the first tracks.
    early_cues: Vec<CueEvent>,
    /// Whether the playlist carries the packager's `EXT-X-DATERANGE` cue tags.
    cue_tags: bool,
    /// Whether the stand-by slate may take a lost publisher's place (a passed-through
    /// stream's source rendition; an encoder's rungs have their own hold and slate).
    standby: bool,
    /// What a returning publisher sent while the stand-by slate still plays.
    returning: Returning,
    /// Playlists wait until this part is complete: the gap before the stand-by slate is
    /// published together with the slate's first part, never as the live edge.
    hold_playlist: Option<u64>,
    /// The rendition's numbering reservation (with `server.state_dir`).
    numbering: Option<crate::state::RenditionNumbering>,
}

/// The wall clock the pipeline gives the packager (numbering, program date time): the one
/// place it is read.
#[allow(clippy::disallowed_methods)] // the driver is where the wall clock is read
fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .saturating_add_signed(clock_offset_ms())
}

/// Test and chaos knob: `WEIR_CLOCK_OFFSET_MS=-3600000` in the environment shifts the clock
/// [`now_unix_ms`] reads by that many milliseconds, as a host whose clock stepped back an
/// hour (the e2e tests restart weir with it; docs/design/003). Not for production.
fn clock_offset_ms() -> i64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        let offset = std::env::var("WEIR_CLOCK_OFFSET_MS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        if offset != 0 {
            warn!(
                offset_ms = offset,
                "WEIR_CLOCK_OFFSET_MS shifts the packager's wall clock"
            );
        }
        offset
    })
}

impl StreamTask {
    fn new(
        stream: Arc<StreamProducer>,
        rendition_name: &str,
        settings: PipelineSettings,
        metrics: Arc<PipelineMetrics>,
        ladder: Option<Arc<Ladder>>,
    ) -> Self {
        let (rendition, consumer) = rendition_channel();
        stream.add_rendition(rendition_name, consumer);
        let cue_tags = settings.policy.for_stream(stream.name()).cue_tags;
        let numbering = settings
            .numbering
            .as_ref()
            .and_then(|n| n.rendition(stream.name(), rendition_name, &settings.packager));
        Self {
            numbering,
            cue_tags,
            standby: false,
            hold_playlist: None,
            returning: Returning::default(),
            rendition_name: rendition_name.to_owned(),
            ladder,
            // A typical contribution bitrate.
            nominal_bandwidth: 3_000_000,
            stream,
            rendition,
            settings,
            metrics,
            packager: None,
            open_part: None,
            tracks: Vec::new(),
            version: 0,
            bandwidth: None,
            early_cues: Vec::new(),
        }
    }

    async fn run(&mut self, mut ctl: mpsc::Receiver<Control>) {
        let mut session: Option<mpsc::Receiver<MediaEvent>> = None;
        // The stand-by slate, while it plays in a lost publisher's place.
        let mut standby: Option<Standby> = None;
        // The last sample from a publisher (never the stand-by slate).
        let mut last_media = Instant::now();
        let mut lost = false;
        let tick = (self.settings.packager.part_target / 4).max(Duration::from_millis(20));
        let mut ticker = tokio::time::interval(tick);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                c = ctl.recv() => match c {
                    Some(Control::Attach(rx)) => {
                        if session.is_some() {
                            info!("a new publisher takes over the stream");
                        } else {
                            info!("publisher attached");
                        }
                        session = Some(rx);
                        last_media = Instant::now();
                        self.returning = Returning::default();
                    }
                    Some(Control::Cue(cue)) => self.cue(cue),
                    Some(Control::End) | None => break,
                },
                event = next_event(session.as_mut()) => match event {
                    Some(event) => {
                        if matches!(event, MediaEvent::Sample(_)) {
                            if lost {
                                info!(after = ?last_media.elapsed(), "contribution restored");
                                lost = false;
                            }
                            last_media = Instant::now();
                        }
                        if standby.is_some() {
                            match self.leave_standby_at(event) {
                                Some(key) => {
                                    standby = None;
                                    info!("the publisher is back; the stand-by slate ends");
                                    self.handle(key);
                                }
                                None => continue,
                            }
                        } else {
                            self.handle(event);
                        }
                    }
                    None => {
                        info!("publisher left");
                        session = None;
                    }
                },
                event = next_event(standby.as_mut().map(|s| &mut s.events)) => match event {
                    Some(MediaEvent::Tracks(tracks)) => {
                        if !self.start_standby_session(tracks) {
                            standby = None;
                        }
                    }
                    Some(event @ MediaEvent::Sample(_)) => self.handle(event),
                    Some(MediaEvent::Cue(_)) => {}
                    None => {
                        warn!("the stand-by slate stopped; gap parts until a publisher returns");
                        standby = None;
                        self.hold_playlist = None;
                    }
                },
                _ = ticker.tick() => {
                    let silent = last_media.elapsed();
                    if self.packager.is_some() && silent >= self.settings.loss_timeout {
                        if !lost {
                            self.metrics.contribution_losses.fetch_add(1, Ordering::Relaxed);
                            lost = true;
                            standby = self.standby.then(|| self.spawn_standby()).flatten();
                            if standby.is_some() {
                                warn!(silent = ?silent, "contribution lost; the stand-by slate follows the gap");
                                self.metrics.standby_starts.fetch_add(1, Ordering::Relaxed);
                            } else {
                                warn!(silent = ?silent, "contribution lost; publishing gap parts");
                            }
                        }
                        if standby.is_none() {
                            if let Some(p) = self.packager.as_mut() {
                                p.gap(now_unix_ms());
                            }
                            self.drain();
                        }
                    }
                    if (session.is_none() || standby.is_some()) && silent >= self.settings.idle_end {
                        info!(idle = ?silent, "no publisher; ending the stream");
                        break;
                    }
                }
            }
        }
        drop(standby);
        if let Some(p) = self.packager.as_mut() {
            p.finish();
        }
        self.drain();
        self.publish(true);
    }

    /// Starts the built-in stand-by slate, with only the kinds of track the publisher had;
    /// `None` (gap parts for the whole loss) for an audio-only stream.
    fn spawn_standby(&self) -> Option<Standby> {
        let kinds: Vec<TrackKind> = self.tracks.iter().map(Track::kind).collect();
        let clip = crate::testsrc::Clip::standby().and_then(|c| c.only(|k| kinds.contains(&k)));
        match clip {
            Ok(clip) => {
                let (tx, events) = mpsc::channel(CHANNEL_DEPTH);
                let task = tokio::spawn(crate::testsrc::run(clip, tx).in_current_span());
                Some(Standby { task, events })
            }
            Err(e) => {
                info!(reason = %e, "no stand-by slate for this stream");
                None
            }
        }
    }

    /// A publisher's event while the stand-by slate plays. The slate plays on until the
    /// publisher's first video keyframe (a publisher that resumes after a stall starts
    /// mid-GOP): new tracks and cues wait, earlier samples are dropped. At the keyframe the
    /// packager restarts with the publisher's tracks, the waiting cues follow, and the
    /// keyframe is returned for the new session to start with.
    fn leave_standby_at(&mut self, event: MediaEvent) -> Option<MediaEvent> {
        let sample = match event {
            MediaEvent::Tracks(tracks) => {
                self.returning.tracks = Some(tracks);
                self.returning.refused = false;
                return None;
            }
            MediaEvent::Cue(cue) => {
                self.returning.cues.push(cue);
                return None;
            }
            MediaEvent::Sample(_) if self.returning.refused => return None,
            MediaEvent::Sample(sample) => sample,
        };
        let tracks = self.returning.tracks.as_ref().unwrap_or(&self.tracks);
        let has_video = tracks.iter().any(|t| t.kind() == TrackKind::Video);
        let is_video = tracks
            .get(sample.track)
            .is_some_and(|t| t.kind() == TrackKind::Video);
        if has_video && !(is_video && sample.keyframe) {
            return None;
        }
        let tracks = self.returning.tracks.clone();
        if !self.start_packager(tracks.unwrap_or_else(|| self.tracks.clone())) {
            // The slate plays on; this session's samples are dropped until it sends tracks
            // weir can package.
            self.returning.refused = true;
            return None;
        }
        for cue in std::mem::take(&mut self.returning).cues {
            self.cue(cue);
        }
        Some(MediaEvent::Sample(sample))
    }

    /// The stand-by slate's session takes over from the lost publisher. The gap so far is
    /// completed on the part grid and its segment ends; the slate's first segment follows
    /// behind `EXT-X-DISCONTINUITY`. The playlist that first lists the gap waits for the
    /// slate's first part, so the gap is never the live edge (Shaka stops there) and the
    /// preload hint never names a part whose segment's tags are not written yet. The
    /// publisher's tracks stay the stream's (multivariant playlist, resumption). False when
    /// the packager cannot take the slate.
    fn start_standby_session(&mut self, tracks: Vec<Track>) -> bool {
        let Some(p) = self.packager.as_mut() else {
            return false;
        };
        p.gap(now_unix_ms());
        if let Err(e) = p.restart(tracks) {
            warn!(error = %e, "cannot package the stand-by slate; gap parts instead");
            self.drain();
            return false;
        }
        info!("stand-by slate; discontinuity");
        self.hold_playlist = Some(p.next_part_seq());
        true
    }

    fn handle(&mut self, event: MediaEvent) {
        match event {
            MediaEvent::Tracks(tracks) => {
                self.start_packager(tracks);
            }
            MediaEvent::Sample(sample) => {
                let Some(packager) = self.packager.as_mut() else {
                    return;
                };
                if let Err(e) = packager.push(now_unix_ms(), sample) {
                    self.metrics
                        .samples_rejected
                        .fetch_add(1, Ordering::Relaxed);
                    warn!(error = %e, "sample rejected");
                    return;
                }
                self.drain();
            }
            MediaEvent::Cue(cue) => self.cue(cue),
        }
    }

    fn cue(&mut self, cue: CueEvent) {
        self.metrics.cues.fetch_add(1, Ordering::Relaxed);
        info!(id = cue.id, kind = ?cue.kind, out = cue.out_of_network, pts = ?cue.pts, "cue");
        match self.packager.as_mut() {
            Some(p) => {
                p.push_cue(now_unix_ms(), cue);
                // Make the DATERANGE visible without waiting for the next part.
                self.publish(false);
            }
            None => self.early_cues.push(cue),
        }
    }

    /// Starts packaging `tracks`, or restarts the packager with them behind a
    /// discontinuity; false when they cannot be packaged.
    fn start_packager(&mut self, tracks: Vec<Track>) -> bool {
        if let Some(p) = self.packager.as_mut() {
            // A returning publisher (or new codec parameters): continue behind a discontinuity.
            if let Err(e) = p.restart(tracks.clone()) {
                warn!(error = %e, "cannot package the new tracks");
                return false;
            }
            info!(tracks = %describe(&tracks), "publisher resumed; discontinuity");
            self.tracks = tracks;
            self.drain();
            self.publish_multivariant();
            return true;
        }
        let clock = wall_clock_start(now_unix_ms(), &self.settings.packager);
        let (msn, seq) = match self.numbering.as_mut() {
            Some(n) => n.start(clock),
            None => clock,
        };
        match Packager::new(self.settings.packager.clone(), tracks.clone(), msn, seq) {
            Ok(p) => {
                info!(tracks = %describe(&tracks), first_msn = msn, "packaging");
                self.rendition
                    .set_init_generation(p.init_generation(), p.init_segment());
                self.open_hint(p.next_part_seq());
                self.packager = Some(p);
                self.tracks = tracks;
                self.publish_multivariant();
                for cue in std::mem::take(&mut self.early_cues) {
                    self.cue(cue);
                }
                true
            }
            Err(e) => {
                warn!(error = %e, "cannot package these tracks");
                false
            }
        }
    }

    /// Opens the part the next playlist's preload hint names, so that a request for it can
    /// attach and stream it as it is written.
    fn open_hint(&mut self, seq: u64) {
        if self.open_part.as_ref().is_some_and(|(s, _)| *s == seq) {
            return;
        }
        if let (Some(n), Some(p)) = (self.numbering.as_mut(), self.packager.as_ref()) {
            n.cover((p.next_msn(), seq));
        }
        if let Some(p) = self.rendition.begin_part(seq) {
            self.open_part = Some((seq, p));
        }
    }

    fn drain(&mut self) {
        let mut published_part = false;
        while let Some(out) = self.packager.as_mut().and_then(Packager::poll_output) {
            match out {
                Output::PartStarted {
                    seq, gap: false, ..
                } => self.open_hint(seq),
                Output::PartStarted { seq, gap: true, .. } => {
                    // No body for a gap part: abort one opened speculatively as the hint.
                    if self.open_part.as_ref().is_some_and(|(s, _)| *s == seq) {
                        self.open_part = None;
                    }
                }
                Output::Chunk { seq, bytes } => match &self.open_part {
                    Some((s, p)) if *s == seq => p.push(bytes),
                    _ => warn!(seq, "chunk for a part that is not open"),
                },
                Output::PartCompleted { seq, gap, .. } => {
                    if let Some((s, p)) = self.open_part.take() {
                        if s == seq {
                            p.finish();
                        } else {
                            self.open_part = Some((s, p));
                        }
                    }
                    if gap {
                        self.metrics
                            .gap_parts_published
                            .fetch_add(1, Ordering::Relaxed);
                    } else {
                        self.metrics.parts_published.fetch_add(1, Ordering::Relaxed);
                        self.open_hint(seq + 1);
                        if self.hold_playlist.is_some_and(|first| seq >= first) {
                            self.hold_playlist = None;
                        }
                    }
                    published_part = true;
                }
                Output::SegmentCompleted {
                    msn, parts, gap, ..
                } => {
                    if !gap {
                        self.rendition.complete_segment(msn, parts);
                    }
                    self.metrics
                        .segments_published
                        .fetch_add(1, Ordering::Relaxed);
                }
                Output::WindowAdvanced { .. } => {}
                Output::InitChanged { generation, bytes } => {
                    self.rendition.set_init_generation(generation, bytes);
                }
            }
        }
        if published_part {
            self.publish(false);
        }
    }

    fn publish(&mut self, ended: bool) {
        let Some(packager) = self.packager.as_ref() else {
            return;
        };
        // The first playlist waits for the first complete segment: Shaka 4.16 fails to load
        // a live playlist whose only segment is still in parts (a TypeError in its HLS
        // parser); requests wait for it (the origin's first-playlist wait).
        let starting = packager.next_msn() <= packager.first_msn();
        if (self.hold_playlist.is_some() || starting) && !ended {
            return;
        }
        if let Some(n) = self.numbering.as_mut() {
            n.cover((packager.next_msn(), packager.next_part_seq()));
        }
        let mut playlist = packager.media_playlist();
        if !self.cue_tags {
            playlist.dateranges.clear();
        }
        if ended {
            playlist.ended = true;
            playlist.preload_hint = None;
        }
        if let Some(ladder) = self.ladder.as_ref() {
            playlist.rendition_reports = ladder.reports(&self.rendition_name, live_edge(&playlist));
        }
        let full = render(&playlist, false);
        let skip = playlist.can_skip_until.map(|_| render(&playlist, true));
        let next_msn = playlist.media_sequence + playlist.segments.len() as u64;
        let parts_done = playlist
            .partial
            .as_ref()
            .map_or(0, |p| u32::try_from(p.parts.len()).unwrap_or(u32::MAX));
        self.version += 1;
        self.rendition.publish(RenditionSnapshot {
            version: self.version,
            first_msn: playlist.media_sequence,
            next_msn,
            parts_done,
            target_duration: Duration::from_secs(playlist.target_duration),
            part_target: playlist.part_target,
            playlist: full,
            playlist_skip: skip,
            ended,
            cues: packager.cues().into(),
        });
        // BANDWIDTH is a peak: only ever raise it, so players never see it shrink.
        let bw = packager.bandwidth_estimate();
        if bw > self.bandwidth {
            self.bandwidth = bw;
            self.publish_multivariant();
        }
    }

    fn publish_multivariant(&mut self) {
        let Some(ladder) = self.ladder.as_ref() else {
            return;
        };
        let video = self.tracks.iter().find_map(|t| match &t.codec {
            weir_media::Codec::H264(c) => Some(c),
            weir_media::Codec::Aac(_) => None,
        });
        let codecs: Vec<String> = self.tracks.iter().map(|t| t.codec.codec_string()).collect();
        let mv = ladder.multivariant(
            &self.rendition_name,
            Variant {
                uri: format!("{}/index.m3u8", self.rendition_name),
                // Until a segment has been measured, the nominal bitrate.
                bandwidth: self.bandwidth.unwrap_or(self.nominal_bandwidth),
                average_bandwidth: None,
                codecs: codecs.join(","),
                resolution: video.map(|v| (v.width, v.height)),
                frame_rate: None,
            },
        );
        let mut out = Vec::with_capacity(512);
        if mv.write_to(&mut out).is_ok() {
            self.stream.set_multivariant(Bytes::from(out));
        }
    }
}

/// (LAST-MSN, LAST-PART) of a playlist: its newest part.
fn live_edge(playlist: &MediaPlaylist) -> Option<(u64, u32)> {
    if let Some(p) = playlist.partial.as_ref().filter(|p| !p.parts.is_empty()) {
        return Some((p.msn, u32::try_from(p.parts.len() - 1).unwrap_or(0)));
    }
    let last = playlist.segments.last()?;
    Some((
        last.msn,
        u32::try_from(last.parts.len().saturating_sub(1)).unwrap_or(0),
    ))
}

/// The next event from `rx`; never, without one.
async fn next_event(rx: Option<&mut mpsc::Receiver<MediaEvent>>) -> Option<MediaEvent> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// What a returning publisher sent before its first keyframe, while the stand-by slate
/// still plays.
#[derive(Default)]
struct Returning {
    /// A new session's tracks (a publisher resuming after a stall keeps its own).
    tracks: Option<Vec<Track>>,
    cues: Vec<CueEvent>,
    /// Its tracks cannot be packaged: the slate plays on.
    refused: bool,
}

/// The built-in stand-by slate playing in a lost publisher's place (stopped when dropped).
struct Standby {
    task: tokio::task::JoinHandle<()>,
    events: mpsc::Receiver<MediaEvent>,
}

impl Drop for Standby {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn render(playlist: &MediaPlaylist, skip: bool) -> Bytes {
    let mut out = Vec::with_capacity(4096);
    // Writing into a Vec cannot fail.
    let _ = playlist.write_to(&mut out, skip);
    let _ = out.flush();
    Bytes::from(out)
}

fn describe(tracks: &[Track]) -> String {
    let mut s = tracks
        .iter()
        .map(|t| match &t.codec {
            weir_media::Codec::H264(c) => format!("{} {}x{}", c.codec_string(), c.width, c.height),
            weir_media::Codec::Aac(c) => {
                format!(
                    "{} {} Hz {} ch",
                    c.codec_string(),
                    c.sample_rate,
                    c.channels
                )
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    if !tracks.iter().any(|t| t.kind() == TrackKind::Video) {
        s.push_str(" (audio only)");
    }
    s
}
