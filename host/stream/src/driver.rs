//! The tokio driver: one task per stream runs its [`StreamCore`].
//!
//! The task reads the publisher's channel, the stand-by and slate clips, the encoders'
//! output and a ticker, hands each to the core with the time, and applies the core's
//! outputs: parts and playlists into the stream's [`RenditionProducer`]s, clips and
//! encoders started and stopped. This is the one place the stream stage reads the clock.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tracing::{debug, warn, Instrument};
use weir_encoder::{EncoderEvent, EncoderMetrics, EncoderSettings};
use weir_media::{
    rendition_channel, CueEvent, MediaEvent, PartProducer, RenditionProducer, StreamProducer,
    StreamRegistry, TrackKind,
};

use crate::core::{Input, Now, Output, StreamCore, StreamKind, SLATE_RENDITION};
use crate::rendition::RenditionOutput;
use crate::status::{self, LastError, Meter, PublisherInfo, StatusCell, StreamStatus};
use crate::{StreamMetrics, StreamSettings};

/// Media events buffered between an ingest session and its stream task.
pub const CHANNEL_DEPTH: usize = 1024;

/// A clip's playout: sends its events in real time until the receiver goes away.
pub type Playout = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The built-in clips a stream may play (the binary has them).
pub trait Clips: Send + Sync + 'static {
    /// The stand-by slate with only `kinds` of track, sending into `tx`.
    fn standby(&self, kinds: &[TrackKind], tx: mpsc::Sender<MediaEvent>)
        -> Result<Playout, String>;
    /// The slate, looped, sending into `tx`.
    fn slate(&self, tx: mpsc::Sender<MediaEvent>) -> Result<Playout, String>;
}

enum Control {
    /// A publisher for this stream: its media replaces the current publisher's.
    Attach(mpsc::Receiver<MediaEvent>, Option<PublisherInfo>),
    /// A cue from the operator API.
    Cue(CueEvent),
    /// The operator API ends the publisher's session (the stream goes on, as after a loss).
    Kick,
    /// The process is stopping for good (`server.end_streams_on_shutdown`): end the stream
    /// now, with `EXT-X-ENDLIST`.
    End,
}

/// The stream named in a cue request has no task.
#[derive(Debug)]
pub struct NoSuchStream;

/// `ingest.max_streams` streams are running.
#[derive(Debug)]
pub struct AtCapacity;

/// The live streams' tasks, by name.
#[derive(Clone)]
pub struct Streams {
    registry: StreamRegistry,
    settings: StreamSettings,
    metrics: Arc<StreamMetrics>,
    encoder_metrics: Arc<EncoderMetrics>,
    clips: Arc<dyn Clips>,
    tasks: Arc<Mutex<HashMap<String, Task>>>,
}

/// A stream's task: its control channel and its state for the operator API.
struct Task {
    ctl: mpsc::Sender<Control>,
    status: StatusCell,
}

/// How a stream is encoded: the settings, and the test pattern's size when the pattern
/// (not a contribution) is the source.
type Encode = (Arc<EncoderSettings>, Option<(u32, u32)>);

impl Streams {
    pub fn new(
        registry: StreamRegistry,
        settings: StreamSettings,
        metrics: Arc<StreamMetrics>,
        encoder_metrics: Arc<EncoderMetrics>,
        clips: Arc<dyn Clips>,
    ) -> Self {
        Self {
            registry,
            settings,
            metrics,
            encoder_metrics,
            clips,
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
        self.attach_publisher(name, max_streams, None)
    }

    /// [`attach_within`](Self::attach_within), naming the publisher for
    /// [`status`](Self::status).
    pub fn attach_publisher(
        &self,
        name: &str,
        max_streams: usize,
        publisher: Option<PublisherInfo>,
    ) -> Result<mpsc::Sender<MediaEvent>, AtCapacity> {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        if !tasks.contains_key(name) && tasks.len() >= max_streams {
            return Err(AtCapacity);
        }
        self.metrics
            .sessions_started
            .fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
        let mut control = Control::Attach(rx, publisher);
        if let Some(task) = tasks.get(name) {
            match task.ctl.try_send(control) {
                Ok(()) => return Ok(tx),
                // The task is ending (or wedged): start a fresh one below.
                Err(mpsc::error::TrySendError::Closed(c) | mpsc::error::TrySendError::Full(c)) => {
                    control = c;
                }
            }
        }
        let (ctl_tx, ctl_rx) = mpsc::channel(16);
        let _ = ctl_tx.try_send(control);
        let status = register(&mut tasks, name, &ctl_tx);
        drop(tasks);
        let encode = self
            .settings
            .policy
            .for_stream(name)
            .encoder
            .map(|e| (e, None));
        self.spawn(name, ctl_tx, ctl_rx, status, encode);
        Ok(tx)
    }

    /// Stream `name`'s state, if it has a task.
    pub fn status(&self, name: &str) -> Option<StreamStatus> {
        let tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        tasks.get(name).map(|t| status::read(&t.status))
    }

    /// Records `message` as stream `name`'s last error (an ingest session that failed).
    pub fn note_error(&self, name: &str, message: &str) {
        let tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = tasks.get(name) {
            set_error(&t.status, now().unix_ms, message);
        }
    }

    /// Ends every stream now (`EXT-X-ENDLIST`), for a shutdown that is not a restart.
    pub fn end_all(&self) {
        let tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        for task in tasks.values() {
            let _ = task.ctl.try_send(Control::End);
        }
    }

    /// Hands a cue to stream `name`.
    pub fn inject_cue(&self, name: &str, cue: CueEvent) -> Result<(), NoSuchStream> {
        let tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        let task = tasks.get(name).ok_or(NoSuchStream)?;
        task.ctl
            .try_send(Control::Cue(cue))
            .map_err(|_| NoSuchStream)
    }

    /// Ends stream `name`'s publisher session: its channel closes, so the ingest session
    /// ends (the RTMP or SRT connection is closed), and the stream goes on as after a loss
    /// (gap, then the stand-by slate, until a publisher returns).
    pub fn kick(&self, name: &str) -> Result<(), NoSuchStream> {
        let tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        let task = tasks.get(name).ok_or(NoSuchStream)?;
        task.ctl.try_send(Control::Kick).map_err(|_| NoSuchStream)
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
        let status = register(
            &mut self.tasks.lock().unwrap_or_else(PoisonError::into_inner),
            name,
            &ctl_tx,
        );
        self.spawn(
            name,
            ctl_tx,
            ctl_rx,
            status,
            Some((encoder, Some((width, height)))),
        );
    }

    fn spawn(
        &self,
        name: &str,
        ctl_tx: mpsc::Sender<Control>,
        ctl_rx: mpsc::Receiver<Control>,
        status: StatusCell,
        encode: Option<Encode>,
    ) {
        let kind = match &encode {
            None => StreamKind::Passthrough,
            Some((e, pattern)) => StreamKind::Transcoded {
                audio_bitrate: e.audio_bitrate,
                pattern: pattern.is_some(),
            },
        };
        let core = StreamCore::new(
            name,
            self.settings.clone(),
            kind,
            Arc::clone(&self.metrics),
            now(),
        );
        let started = now();
        let stream = self.registry.publish(name);
        // The same start the operator API shows (one clock read, in `register`).
        stream.set_started_unix_ms(status::read(&status).started_unix_ms);
        // The test pattern is its own publisher.
        stream.set_publisher_live(matches!(&encode, Some((_, Some(_)))));
        let driver = Driver {
            meter: Meter::new(started.at),
            status,
            bytes_in: 0,
            core,
            stream,
            renditions: Vec::new(),
            encode,
            encoder_metrics: Arc::clone(&self.encoder_metrics),
            clips: Arc::clone(&self.clips),
            session: None,
            standby: None,
            slate: None,
            encoder_in: None,
            encoder_out: None,
            to_encoder: VecDeque::new(),
            slate_ladder: None,
        };
        let linger = self.settings.linger;
        let metrics = Arc::clone(&self.metrics);
        let tasks = Arc::clone(&self.tasks);
        let name = name.to_owned();
        // A root span: the task outlives the session that started it.
        let span = tracing::info_span!(parent: None, "stream", name = %name);
        metrics.streams_active.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(
            async move {
                let kept = driver.run(ctl_rx).await;
                {
                    let mut t = tasks.lock().unwrap_or_else(PoisonError::into_inner);
                    if t.get(&name).is_some_and(|t| t.ctl.same_channel(&ctl_tx)) {
                        t.remove(&name);
                    }
                }
                metrics.streams_active.fetch_sub(1, Ordering::Relaxed);
                // Keep the ended playlists servable for players that are still catching up,
                // unless a new publisher has taken the name over meanwhile.
                tokio::time::sleep(linger).await;
                drop(kept);
                debug!("stream removed");
            }
            .instrument(span),
        );
    }
}

/// The clock the stream stage runs on: the one place it is read.
#[allow(clippy::disallowed_methods)] // the driver is where the clock is read
fn now() -> Now {
    let unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .saturating_add_signed(clock_offset_ms());
    Now {
        at: tokio::time::Instant::now().into_std(),
        unix_ms,
    }
}

/// Test and chaos knob: `WEIR_CLOCK_OFFSET_MS=-3600000` in the environment shifts the wall
/// clock the packagers get by that many milliseconds, as a host whose clock stepped back an
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

/// A rendition's producer and the part being written.
struct RenditionIo {
    producer: RenditionProducer,
    open: Option<(u64, PartProducer)>,
}

/// A clip playing into a stream; stopped when dropped.
struct Playing {
    task: tokio::task::JoinHandle<()>,
    events: mpsc::Receiver<MediaEvent>,
}

impl Drop for Playing {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Driver {
    status: StatusCell,
    meter: Meter,
    /// Media bytes from publishers so far.
    bytes_in: u64,
    core: StreamCore,
    stream: StreamProducer,
    renditions: Vec<RenditionIo>,
    encode: Option<Encode>,
    encoder_metrics: Arc<EncoderMetrics>,
    clips: Arc<dyn Clips>,
    session: Option<mpsc::Receiver<MediaEvent>>,
    standby: Option<Playing>,
    slate: Option<Playing>,
    encoder_in: Option<mpsc::Sender<MediaEvent>>,
    encoder_out: Option<mpsc::Receiver<EncoderEvent>>,
    /// Events for the encoder that its input had no room for yet.
    to_encoder: VecDeque<MediaEvent>,
    slate_ladder: Option<mpsc::Receiver<EncoderEvent>>,
}

/// What an ended stream keeps while it lingers: its producers (the origin serves their
/// last playlists and parts).
struct Kept {
    _stream: StreamProducer,
    _renditions: Vec<RenditionIo>,
}

/// Enters stream `name`'s task in `tasks` (its control channel and a fresh status, started
/// now); returns the status for the task to keep.
fn register(
    tasks: &mut HashMap<String, Task>,
    name: &str,
    ctl: &mpsc::Sender<Control>,
) -> StatusCell {
    let status = Arc::new(std::sync::Mutex::new(StreamStatus {
        started_unix_ms: now().unix_ms,
        ..StreamStatus::default()
    }));
    tasks.insert(
        name.to_owned(),
        Task {
            ctl: ctl.clone(),
            status: Arc::clone(&status),
        },
    );
    status
}

fn set_error(cell: &StatusCell, at_unix_ms: u64, message: &str) {
    status::update(cell, |s| {
        s.last_error = Some(LastError {
            at_unix_ms,
            message: message.to_owned(),
        });
    });
}

impl Driver {
    fn publisher_gone(&self) {
        self.stream.set_publisher_live(false);
        status::update(&self.status, |s| {
            s.publisher = None;
            s.publisher_since_unix_ms = None;
        });
    }

    /// Once per [`status::METER_WINDOW`]: the bitrate in and the request rate.
    fn meter_tick(&mut self, at: std::time::Instant) {
        let (bytes, requests) = (self.bytes_in, self.stream.requests());
        if let Some((bps, rps)) = self.meter.tick(at, bytes, requests) {
            status::update(&self.status, |s| {
                s.bytes_in = bytes;
                s.bitrate_in_bps = bps;
                s.requests_per_s = rps;
            });
        }
    }

    async fn run(mut self, mut ctl: mpsc::Receiver<Control>) -> Kept {
        let mut ticker = tokio::time::interval(self.core.tick_interval());
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            self.apply();
            if self.core.is_ended() {
                break;
            }
            let encoder_in = self.encoder_in.clone();
            let input = tokio::select! {
                c = ctl.recv() => match c {
                    Some(Control::Attach(rx, publisher)) => {
                        self.session = Some(rx);
                        self.stream.set_publisher_live(true);
                        let since = now().unix_ms;
                        status::update(&self.status, |s| {
                            s.publisher_since_unix_ms = publisher.as_ref().map(|_| since);
                            s.publisher = publisher;
                        });
                        Input::Attach
                    }
                    Some(Control::Cue(cue)) => Input::Cue(cue),
                    Some(Control::Kick) => match self.session.take() {
                        Some(_) => {
                            tracing::info!("publisher kicked (operator API)");
                            set_error(&self.status, now().unix_ms, "publisher kicked (operator API)");
                            self.publisher_gone();
                            Input::Detach
                        }
                        None => continue,
                    },
                    Some(Control::End) | None => Input::End,
                },
                // Backpressure: while the encoder has no room, the publisher is not read.
                event = next(self.session.as_mut()), if self.to_encoder.is_empty() => match event {
                    Some(event) => {
                        if let MediaEvent::Sample(s) = &event {
                            self.bytes_in += s.data.len() as u64;
                        }
                        Input::Media(event)
                    }
                    None => {
                        self.session = None;
                        self.publisher_gone();
                        Input::Detach
                    }
                },
                permit = reserve(encoder_in.as_ref()), if !self.to_encoder.is_empty() => {
                    match (permit, self.to_encoder.pop_front()) {
                        (Some(permit), Some(event)) => permit.send(event),
                        _ => self.to_encoder.clear(),
                    }
                    continue;
                },
                event = next(self.standby.as_mut().map(|s| &mut s.events)) => match event {
                    Some(event) => Input::Standby(event),
                    None => {
                        self.standby = None;
                        Input::StandbyEnded
                    }
                },
                event = next(self.slate.as_mut().map(|s| &mut s.events)) => match event {
                    Some(event) => Input::Slate(event),
                    None => {
                        self.slate = None;
                        continue;
                    }
                },
                event = next(self.encoder_out.as_mut()) => match event {
                    Some(event) => Input::Encoder(event),
                    None => {
                        self.encoder_out = None;
                        Input::EncoderStopped
                    }
                },
                event = next(self.slate_ladder.as_mut()) => match event {
                    Some(event) => Input::SlateEncoder(event),
                    None => {
                        self.slate_ladder = None;
                        continue;
                    }
                },
                _ = ticker.tick() => Input::Tick,
            };
            let now = now();
            if matches!(input, Input::Tick) {
                self.meter_tick(now.at);
            }
            self.core.handle_input(now, input);
        }
        Kept {
            _stream: self.stream,
            _renditions: self.renditions,
        }
    }

    /// Does what the core asked.
    fn apply(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::RenditionAdded { name, .. } => {
                    let (producer, consumer) = rendition_channel();
                    self.stream.add_rendition(&name, consumer);
                    self.renditions.push(RenditionIo {
                        producer,
                        open: None,
                    });
                }
                Output::Rendition(id, event) => {
                    if let Some(r) = self.renditions.get_mut(id.0) {
                        apply_rendition(r, event);
                    }
                }
                Output::Multivariant(playlist) => self.stream.set_multivariant(playlist),
                Output::StartStandby(kinds) => {
                    let (tx, events) = mpsc::channel(CHANNEL_DEPTH);
                    match self.clips.standby(&kinds, tx) {
                        Ok(playout) => {
                            let task = tokio::spawn(playout.in_current_span());
                            self.standby = Some(Playing { task, events });
                        }
                        Err(reason) => {
                            tracing::info!(%reason, "no stand-by slate for this stream");
                            self.core.handle_input(now(), Input::StandbyEnded);
                        }
                    }
                }
                Output::StopStandby => self.standby = None,
                Output::StartSlate => {
                    let (tx, events) = mpsc::channel(CHANNEL_DEPTH);
                    match self.clips.slate(tx) {
                        Ok(playout) => {
                            let task =
                                tokio::spawn(playout.instrument(tracing::info_span!("slate")));
                            self.slate = Some(Playing { task, events });
                        }
                        Err(reason) => {
                            tracing::error!(%reason, "the built-in slate clip does not decode; no {SLATE_RENDITION} rendition");
                        }
                    }
                }
                Output::StartEncoder { start, restart } => self.start_encoder(start, restart),
                Output::ToEncoder(event) => self.feed_encoder(event),
                Output::StopEncoder => {
                    self.encoder_in = None;
                    self.to_encoder.clear();
                    // The test pattern never ends by itself: stop reading it.
                    if self.encode.as_ref().is_some_and(|(_, p)| p.is_some())
                        && self.encoder_out.take().is_some()
                    {
                        self.core.handle_input(now(), Input::EncoderStopped);
                    }
                }
                Output::StartSlateLadder(rungs) => self.start_slate_ladder(rungs),
                Output::Ended => {
                    self.standby = None;
                    self.slate = None;
                    self.encoder_in = None;
                    self.encoder_out = None;
                    self.slate_ladder = None;
                }
            }
        }
    }

    fn feed_encoder(&mut self, event: MediaEvent) {
        let Some(tx) = self.encoder_in.as_ref() else {
            return;
        };
        if !self.to_encoder.is_empty() {
            self.to_encoder.push_back(event);
            return;
        }
        match tx.try_send(event) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(event)) => self.to_encoder.push_back(event),
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    fn start_encoder(&mut self, start: weir_encoder::Start, restart: bool) {
        let Some((settings, pattern)) = self.encode.clone() else {
            return;
        };
        if restart {
            self.encoder_metrics
                .restarts
                .fetch_add(1, Ordering::Relaxed);
        }
        let (in_tx, in_rx) = mpsc::channel(CHANNEL_DEPTH);
        let (out_tx, out_rx) = mpsc::channel(CHANNEL_DEPTH);
        let source = match pattern {
            Some((width, height)) => weir_encoder::Source::TestPattern { width, height },
            None => weir_encoder::Source::Contribution(in_rx),
        };
        match weir_encoder::spawn(
            self.stream.name(),
            (*settings).clone(),
            source,
            start,
            out_tx,
            Arc::clone(&self.encoder_metrics),
        ) {
            Ok(_) => {
                self.encoder_in = Some(in_tx);
                self.encoder_out = Some(out_rx);
                self.to_encoder.clear();
            }
            Err(e) => {
                warn!(error = %e, "cannot start the encoder");
                set_error(
                    &self.status,
                    now().unix_ms,
                    &format!("cannot start the encoder: {e}"),
                );
                self.core.handle_input(now(), Input::EncoderFailed);
            }
        }
    }

    /// The slate, encoded by its own encoder into the stream's `slate-<rung>` renditions.
    fn start_slate_ladder(&mut self, rungs: Vec<weir_encoder::Rung>) {
        let Some((settings, _)) = self.encode.clone() else {
            return;
        };
        let (out_tx, out_rx) = mpsc::channel(CHANNEL_DEPTH);
        let start = weir_encoder::Start {
            pts: 0,
            rungs: Some(rungs),
        };
        match weir_encoder::spawn(
            &format!("{}-{SLATE_RENDITION}", self.stream.name()),
            (*settings).clone(),
            weir_encoder::Source::Slate,
            start,
            out_tx,
            // Not the exported counters: the slate is not a contribution.
            Arc::new(EncoderMetrics::default()),
        ) {
            Ok(_) => self.slate_ladder = Some(out_rx),
            Err(e) => warn!(error = %e, "no slate ladder"),
        }
    }
}

fn apply_rendition(r: &mut RenditionIo, event: RenditionOutput) {
    match event {
        RenditionOutput::Init { generation, bytes } => {
            r.producer.set_init_generation(generation, bytes);
        }
        RenditionOutput::OpenPart { seq } => {
            if let Some(p) = r.producer.begin_part(seq) {
                r.open = Some((seq, p));
            }
        }
        RenditionOutput::Chunk { seq, bytes } => match &r.open {
            Some((s, p)) if *s == seq => p.push(bytes),
            _ => warn!(seq, "chunk for a part that is not open"),
        },
        RenditionOutput::FinishPart { seq } => {
            if r.open.as_ref().is_some_and(|(s, _)| *s == seq) {
                if let Some((_, p)) = r.open.take() {
                    p.finish();
                }
            }
        }
        RenditionOutput::AbortPart { seq } => {
            if r.open.as_ref().is_some_and(|(s, _)| *s == seq) {
                r.open = None;
            }
        }
        RenditionOutput::SegmentCompleted { msn, parts } => {
            r.producer.complete_segment(msn, parts);
        }
        RenditionOutput::Publish(snapshot) => r.producer.publish(snapshot),
    }
}

/// The next item from `rx`; never, without one.
async fn next<T>(rx: Option<&mut mpsc::Receiver<T>>) -> Option<T> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Room for one event in the encoder's input; `None` when it is gone.
async fn reserve(tx: Option<&mpsc::Sender<MediaEvent>>) -> Option<mpsc::Permit<'_, MediaEvent>> {
    tx?.reserve().await.ok()
}
