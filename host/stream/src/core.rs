//! The stream core: one live stream's state machine, sans-IO.
//!
//! [`StreamCore::handle_input`] takes what happened (a publisher attached, media, a cue, the
//! encoder's output, time passing) with the time it happened; [`StreamCore::poll_output`]
//! returns what the driver must do (write parts, publish playlists, start the stand-by
//! slate, feed or restart the encoder, end). The core never reads the clock and never
//! waits, so every timing rule (loss after `loss_timeout`, gap parts on the cadence, idle
//! end, encoder restart back-off) runs in a test in microseconds on a virtual clock.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{info, warn};
use weir_encoder::{EncoderEvent, Rung, Start};
use weir_media::{CueEvent, MediaEvent, TrackKind};

use crate::ladder::Ladder;
use crate::rendition::{Cx, RenditionCore, RenditionId, RenditionOutput, RenditionSpec};
use crate::{StreamMetrics, StreamSettings};

/// The single rendition a passthrough stream has.
pub const SOURCE_RENDITION: &str = "src";

/// The hidden rendition with the slate, next to the stream's own.
pub const SLATE_RENDITION: &str = "slate";

/// A contribution's typical bitrate: a passed-through rendition's BANDWIDTH until a segment
/// has been measured.
const NOMINAL_BANDWIDTH: u64 = 3_000_000;

/// An encoder that dies within this long of starting is restarted after a growing pause.
const QUICK_DEATH: Duration = Duration::from_secs(5);

/// The time of an input, as the driver read it: `at` for timers (monotonic), `unix_ms` for
/// the packager (numbering, program date time).
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub at: Instant,
    pub unix_ms: u64,
}

/// How a stream's media reaches its renditions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// The contribution is packaged as it comes, as [`SOURCE_RENDITION`].
    Passthrough,
    /// The contribution goes through the encoder into a ladder of renditions.
    Transcoded {
        /// Added to each rung's video bitrate for its nominal BANDWIDTH.
        audio_bitrate: u64,
        /// The encoder's own test pattern is the source (it never idles out).
        pattern: bool,
    },
}

/// What happened to a stream.
#[derive(Debug)]
pub enum Input {
    /// A publisher attached; its media follows as [`Input::Media`]. A second one takes the
    /// stream over.
    Attach,
    /// The publisher's session ended.
    Detach,
    /// The publisher's media.
    Media(MediaEvent),
    /// A cue from the operator API.
    Cue(CueEvent),
    /// The stand-by slate's media (after [`Output::StartStandby`]).
    Standby(MediaEvent),
    /// The stand-by slate stopped, or could not start.
    StandbyEnded,
    /// The looped slate clip, for the [`SLATE_RENDITION`] (after [`Output::StartSlate`]).
    Slate(MediaEvent),
    /// The encoder's output (transcoded streams).
    Encoder(EncoderEvent),
    /// The encoder's output ended: after [`Output::StopEncoder`], or because it died.
    EncoderStopped,
    /// The encoder could not be started.
    EncoderFailed,
    /// The slate ladder's encoder output (after [`Output::StartSlateLadder`]).
    SlateEncoder(EncoderEvent),
    /// Time passed; the driver ticks every [`StreamSettings::tick`].
    Tick,
    /// End the stream now (a shutdown that is not a restart).
    End,
}

/// What the driver must do, in order.
#[derive(Debug)]
pub enum Output {
    /// A new rendition: register it under `name` before its first output.
    RenditionAdded { id: RenditionId, name: String },
    /// Something for rendition `id`'s producer.
    Rendition(RenditionId, RenditionOutput),
    /// The stream's multivariant playlist changed.
    Multivariant(Bytes),
    /// Start the stand-by slate with only these kinds of track; its media comes back as
    /// [`Input::Standby`].
    StartStandby(Vec<TrackKind>),
    /// Stop the stand-by slate.
    StopStandby,
    /// Start the looped slate clip; its media comes back as [`Input::Slate`].
    StartSlate,
    /// Start the encoder (`restart`: after one died); its output comes back as
    /// [`Input::Encoder`].
    StartEncoder { start: Start, restart: bool },
    /// Hand this event to the encoder. While one waits, read nothing more from the
    /// publisher: a slow encoder slows the publisher's socket.
    ToEncoder(MediaEvent),
    /// Close the encoder's input; it drains, and [`Input::EncoderStopped`] follows.
    StopEncoder,
    /// Encode the slate into these (hidden) rungs; output comes back as
    /// [`Input::SlateEncoder`].
    StartSlateLadder(Vec<Rung>),
    /// The stream ended: every rendition has `EXT-X-ENDLIST`. It lingers, then goes.
    Ended,
}

enum Mode {
    Passthrough { src: RenditionId },
    Transcoded(Box<Transcoded>),
}

struct Transcoded {
    audio_bitrate: u64,
    pattern: bool,
    /// The last publisher event, attach or detach.
    last_publisher: Instant,
    /// The publisher's tracks, for a restarted encoder.
    last_tracks: Option<MediaEvent>,
    started_at: Instant,
    quick_deaths: u32,
    /// A restart waiting out its back-off pause.
    restart_at: Option<Instant>,
    /// The encoder is running (its output is open).
    running: bool,
    /// [`Output::StopEncoder`] was sent: the stream ends when the output does.
    stopping: bool,
    /// The rungs, once the encoder has announced them; a restart keeps them.
    planned: Option<Vec<Rung>>,
    /// The last video PTS out of the encoder: a restarted encoder continues after it.
    last_pts: Option<i64>,
    rungs: Vec<RenditionId>,
    slate_rungs: Vec<RenditionId>,
}

/// One live stream's state machine. See the [module docs](self).
pub struct StreamCore {
    name: String,
    settings: StreamSettings,
    cue_tags: bool,
    byterange_parts: bool,
    slate: bool,
    metrics: Arc<StreamMetrics>,
    /// Where the slate renditions count: not the exported metrics.
    unexported: StreamMetrics,
    renditions: Vec<RenditionCore>,
    ladder: Ladder,
    out: VecDeque<Output>,
    mode: Mode,
    /// A publisher is attached.
    session: bool,
    ended: bool,
    /// Every rendition's `EXT-X-DISCONTINUITY-SEQUENCE` starts here (see
    /// [`discontinuity_base`]).
    discontinuity_base: u64,
}

/// Where a stream's discontinuity sequence starts: the wall clock in tenths of a second
/// when its task starts. A stream that restarts (the process, or its task after an idle
/// end) starts above every number its earlier run could have reached, which would take
/// more than ten discontinuities a second, so the sequence never goes back for a player or
/// an edge that follows the playlist across the restart (RFC 8216bis 6.2.2), and the new
/// timeline reads as a discontinuity. Shared by all of the stream's renditions, so their
/// discontinuity numbers agree (players align renditions by them). Like the clock-derived
/// media sequence numbers (docs/design/003), this assumes the clock does not step back.
pub fn discontinuity_base(now_unix_ms: u64) -> u64 {
    now_unix_ms / 100
}

impl StreamCore {
    pub fn new(
        name: &str,
        settings: StreamSettings,
        kind: StreamKind,
        metrics: Arc<StreamMetrics>,
        now: Now,
    ) -> Self {
        let options = settings.policy.for_stream(name);
        let mut core = Self {
            name: name.to_owned(),
            cue_tags: options.cue_tags,
            byterange_parts: options.byterange_parts,
            slate: options.slate,
            settings,
            metrics,
            unexported: StreamMetrics::default(),
            renditions: Vec::new(),
            ladder: Ladder::default(),
            out: VecDeque::new(),
            mode: Mode::Passthrough {
                src: RenditionId(0),
            },
            session: false,
            ended: false,
            discontinuity_base: discontinuity_base(now.unix_ms),
        };
        match kind {
            StreamKind::Passthrough => {
                // The slate clip as one hidden `slate` rendition; transcoded streams get
                // `slate-<rung>` renditions from the encoder instead.
                if core.slate {
                    core.add_rendition(
                        RenditionSpec {
                            name: SLATE_RENDITION.to_owned(),
                            listed: false,
                            counts: false,
                            nominal_bandwidth: NOMINAL_BANDWIDTH,
                            cue_tags: core.cue_tags,
                            standby_allowed: false,
                            byterange_parts: core.byterange_parts,
                        },
                        now,
                    );
                    core.out.push_back(Output::StartSlate);
                }
                let src = core.add_rendition(
                    RenditionSpec {
                        name: SOURCE_RENDITION.to_owned(),
                        listed: true,
                        counts: true,
                        nominal_bandwidth: NOMINAL_BANDWIDTH,
                        cue_tags: core.cue_tags,
                        standby_allowed: core.settings.standby,
                        byterange_parts: core.byterange_parts,
                    },
                    now,
                );
                core.mode = Mode::Passthrough { src };
            }
            StreamKind::Transcoded {
                audio_bitrate,
                pattern,
            } => {
                core.mode = Mode::Transcoded(Box::new(Transcoded {
                    audio_bitrate,
                    pattern,
                    last_publisher: now.at,
                    last_tracks: None,
                    started_at: now.at,
                    quick_deaths: 0,
                    restart_at: None,
                    running: true,
                    stopping: false,
                    planned: None,
                    last_pts: None,
                    rungs: Vec::new(),
                    slate_rungs: Vec::new(),
                }));
                core.out.push_back(Output::StartEncoder {
                    start: Start::default(),
                    restart: false,
                });
            }
        }
        core
    }

    /// How often the driver should send [`Input::Tick`].
    pub fn tick_interval(&self) -> Duration {
        self.settings.tick()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The stream has ended ([`Output::Ended`] was returned or is queued).
    pub fn is_ended(&self) -> bool {
        self.ended
    }

    /// The next thing for the driver to do.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    pub fn handle_input(&mut self, now: Now, input: Input) {
        if self.ended {
            return;
        }
        match input {
            Input::Attach => {
                info!(
                    "{}",
                    if self.session {
                        "a new publisher takes over the stream"
                    } else {
                        "publisher attached"
                    }
                );
                self.session = true;
                match &mut self.mode {
                    Mode::Passthrough { src } => {
                        let src = *src;
                        self.renditions[src.0].attached(now.at);
                    }
                    Mode::Transcoded(t) => t.last_publisher = now.at,
                }
            }
            Input::Detach => {
                self.session = false;
                match &mut self.mode {
                    Mode::Passthrough { .. } => info!("publisher left"),
                    Mode::Transcoded(t) => {
                        info!("publisher left; the encoder keeps the stream on the slate");
                        t.last_publisher = now.at;
                    }
                }
            }
            Input::Media(event) => {
                if matches!(event, MediaEvent::Cue(_)) {
                    StreamMetrics::add(&self.metrics.cues);
                }
                match &mut self.mode {
                    Mode::Passthrough { src } => {
                        let src = *src;
                        self.with_rendition(now, src, |r, cx| r.feed(cx, event));
                    }
                    Mode::Transcoded(t) => {
                        if matches!(event, MediaEvent::Tracks(_)) {
                            t.last_tracks = Some(event.clone());
                        }
                        t.last_publisher = now.at;
                        self.out.push_back(Output::ToEncoder(event));
                    }
                }
            }
            Input::Cue(cue) => {
                StreamMetrics::add(&self.metrics.cues);
                for id in self.listed() {
                    let cue = cue.clone();
                    self.with_rendition(now, id, |r, cx| r.cue(cx, cue));
                }
            }
            Input::Standby(event) => {
                if let Mode::Passthrough { src } = self.mode {
                    self.with_rendition(now, src, |r, cx| r.standby_feed(cx, event));
                }
            }
            Input::StandbyEnded => {
                if let Mode::Passthrough { src } = self.mode {
                    self.renditions[src.0].standby_ended();
                }
            }
            Input::Slate(event) => {
                if let Some(id) = self.find(SLATE_RENDITION) {
                    self.with_rendition(now, id, |r, cx| r.feed(cx, event));
                }
            }
            Input::Encoder(event) => self.route(now, event),
            Input::SlateEncoder(EncoderEvent::Media { rung, event }) => {
                let id = match &self.mode {
                    Mode::Transcoded(t) => t.slate_rungs.get(rung).copied(),
                    Mode::Passthrough { .. } => None,
                };
                if let Some(id) = id {
                    self.with_rendition(now, id, |r, cx| r.feed(cx, event));
                }
            }
            // The slate ladder's rungs were made from the stream's.
            Input::SlateEncoder(EncoderEvent::Ladder(_)) => {}
            Input::EncoderStopped => self.encoder_stopped(now),
            Input::EncoderFailed => {
                if let Mode::Transcoded(t) = &mut self.mode {
                    t.running = false;
                }
                self.end(now);
            }
            Input::Tick => self.tick(now),
            Input::End => self.stop(now),
        }
    }

    /// The renditions in the multivariant playlist (the ones cues go to).
    fn listed(&self) -> Vec<RenditionId> {
        match &self.mode {
            Mode::Passthrough { src } => vec![*src],
            Mode::Transcoded(t) => t.rungs.clone(),
        }
    }

    fn find(&self, name: &str) -> Option<RenditionId> {
        self.renditions
            .iter()
            .find(|r| r.name == name)
            .map(|r| r.id)
    }

    fn add_rendition(&mut self, spec: RenditionSpec, now: Now) -> RenditionId {
        let id = RenditionId(self.renditions.len());
        let numbering = self
            .settings
            .numbering
            .as_ref()
            .and_then(|n| n.rendition(&self.name, &spec.name, &self.settings.packager));
        self.out.push_back(Output::RenditionAdded {
            id,
            name: spec.name.clone(),
        });
        self.renditions.push(RenditionCore::new(
            id,
            spec,
            &self.settings,
            numbering,
            now.at,
            self.discontinuity_base,
        ));
        id
    }

    fn with_rendition<R>(
        &mut self,
        now: Now,
        id: RenditionId,
        f: impl FnOnce(&mut RenditionCore, &mut Cx<'_>) -> R,
    ) -> R {
        let r = &mut self.renditions[id.0];
        let metrics = if r.counts {
            &*self.metrics
        } else {
            &self.unexported
        };
        let mut cx = Cx {
            now,
            out: &mut self.out,
            ladder: &mut self.ladder,
            metrics,
        };
        f(r, &mut cx)
    }

    /// The encoder's output into the rungs.
    fn route(&mut self, now: Now, event: EncoderEvent) {
        let Mode::Transcoded(t) = &mut self.mode else {
            return;
        };
        match event {
            EncoderEvent::Ladder(rungs) => {
                if t.planned.is_none() {
                    t.planned = Some(rungs.clone());
                    self.start_rungs(now, &rungs);
                }
            }
            EncoderEvent::Media { rung, event } => {
                if let MediaEvent::Sample(s) = &event {
                    if s.track == 0 {
                        t.last_pts = Some(s.dts + i64::from(s.cts_offset));
                    }
                }
                if let Some(id) = t.rungs.get(rung).copied() {
                    self.with_rendition(now, id, |r, cx| r.feed(cx, event));
                }
            }
        }
    }

    /// One rendition per rung, in the encoder's order (highest first); with the tenant's
    /// `slate`, the slate encoded into hidden `slate-<rung>` renditions with each rung's size
    /// and settings (so a blackout switches between renditions with the same codec
    /// parameters).
    fn start_rungs(&mut self, now: Now, rungs: &[Rung]) {
        let Mode::Transcoded(t) = &self.mode else {
            return;
        };
        let audio_bitrate = t.audio_bitrate;
        let names: Vec<&str> = rungs.iter().map(|r| r.name.as_str()).collect();
        self.ladder.declare(&names);
        let mut ids = Vec::new();
        for r in rungs {
            let id = self.add_rendition(
                RenditionSpec {
                    name: r.name.clone(),
                    listed: true,
                    counts: true,
                    nominal_bandwidth: r.bitrate + audio_bitrate + r.bitrate / 10,
                    cue_tags: self.cue_tags,
                    standby_allowed: false,
                    byterange_parts: self.byterange_parts,
                },
                now,
            );
            ids.push(id);
        }
        // One numbering for the whole ladder, chosen now. Each rung's packager starts when
        // that rung's first encoded output arrives, the rungs a few hundred milliseconds
        // apart; a clock read at each would number rungs that straddle a second boundary one
        // apart for their whole life: the same media under different media sequence
        // numbers, which rendition reports, blocking reloads with another rung's `_HLS_msn`
        // and players' switching all assume away. The encoder starts every rung on the same
        // source frame with aligned IDRs, so the same first number is the same media. After
        // a restart with `server.state_dir`, every rung starts above all of their
        // reservations.
        let first = ids
            .iter()
            .map(|id| self.renditions[id.0].reserve_numbers(now.unix_ms))
            .fold((0, 0), |a, b| (a.0.max(b.0), a.1.max(b.1)));
        for id in &ids {
            self.renditions[id.0].number_from(first);
        }
        let mut slate_ids = Vec::new();
        let mut slate_rungs = Vec::new();
        if self.slate {
            for r in rungs {
                let rung = Rung {
                    name: format!("{SLATE_RENDITION}-{}", r.name),
                    ..r.clone()
                };
                slate_ids.push(self.add_rendition(
                    RenditionSpec {
                        name: rung.name.clone(),
                        listed: false,
                        counts: false,
                        nominal_bandwidth: NOMINAL_BANDWIDTH,
                        cue_tags: self.cue_tags,
                        standby_allowed: false,
                        byterange_parts: self.byterange_parts,
                    },
                    now,
                ));
                slate_rungs.push(rung);
            }
            self.out.push_back(Output::StartSlateLadder(slate_rungs));
        }
        if let Mode::Transcoded(t) = &mut self.mode {
            t.rungs = ids;
            t.slate_rungs = slate_ids;
        }
    }

    fn encoder_stopped(&mut self, now: Now) {
        let Mode::Transcoded(t) = &mut self.mode else {
            return;
        };
        t.running = false;
        if t.stopping {
            self.end(now);
            return;
        }
        // The encoder ended without being asked: restart it on the same rungs, after the
        // last frame it sent. One that keeps dying at once (it cannot open its encoders) is
        // retried with a growing pause, not in a busy loop.
        t.quick_deaths = if now.at.saturating_duration_since(t.started_at) < QUICK_DEATH {
            t.quick_deaths + 1
        } else {
            0
        };
        let pause = Duration::from_millis(250 << t.quick_deaths.min(5)).min(QUICK_DEATH);
        warn!(?pause, "encoder stopped unexpectedly; restarting it");
        if t.quick_deaths > 0 {
            t.restart_at = Some(now.at + pause);
        } else {
            self.restart_encoder(now);
        }
    }

    fn restart_encoder(&mut self, now: Now) {
        let Mode::Transcoded(t) = &mut self.mode else {
            return;
        };
        t.restart_at = None;
        t.started_at = now.at;
        t.running = true;
        self.out.push_back(Output::StartEncoder {
            start: Start {
                pts: t.last_pts.map_or(0, |p| p + 3_000),
                rungs: t.planned.clone(),
            },
            restart: true,
        });
        if let Some(tracks) = t.last_tracks.clone() {
            self.out.push_back(Output::ToEncoder(tracks));
        }
    }

    fn tick(&mut self, now: Now) {
        for id in 0..self.renditions.len() {
            self.with_rendition(now, RenditionId(id), |r, cx| r.tick(cx));
        }
        let idle_end = self.settings.idle_end;
        match &self.mode {
            Mode::Passthrough { src } => {
                let src = &self.renditions[src.0];
                let silent = now.at.saturating_duration_since(src.last_media);
                if (!self.session || src.standby) && silent >= idle_end {
                    info!(idle = ?silent, "no publisher; ending the stream");
                    self.stop(now);
                }
            }
            Mode::Transcoded(t) => {
                if t.restart_at.is_some_and(|at| now.at >= at) && !t.stopping {
                    self.restart_encoder(now);
                }
                let Mode::Transcoded(t) = &self.mode else {
                    return;
                };
                let idle = now.at.saturating_duration_since(t.last_publisher);
                if !t.pattern && !self.session && !t.stopping && idle >= idle_end {
                    info!(idle = ?idle, "no publisher; ending the stream");
                    self.stop(now);
                }
            }
        }
    }

    /// Ends the stream: at once when passed through; a transcoded one first lets its
    /// encoder drain into the rungs.
    fn stop(&mut self, now: Now) {
        match &mut self.mode {
            Mode::Transcoded(t) if t.running => {
                if !t.stopping {
                    t.stopping = true;
                    self.out.push_back(Output::StopEncoder);
                }
            }
            _ => self.end(now),
        }
    }

    /// Every listed rendition gets `EXT-X-ENDLIST`; the slate renditions simply stop.
    fn end(&mut self, now: Now) {
        for id in self.listed() {
            self.with_rendition(now, id, |r, cx| r.end(cx));
        }
        self.ended = true;
        self.out.push_back(Output::Ended);
    }
}
