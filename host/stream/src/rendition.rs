//! One rendition of a stream: its packager, the part being written, loss and the stand-by
//! slate, a returning publisher, and the playlists it publishes. Sans-IO: it reads no clock
//! and writes nothing itself; what it does comes out as [`RenditionOutput`]s.

use std::collections::VecDeque;
use std::io::Write as _;
use std::ops::Range;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tracing::{info, warn};
use weir_media::{Codec, CueEvent, MediaEvent, RenditionSnapshot, Track, TrackKind};
use weir_packager::{wall_clock_start, MediaPlaylist, Output as PackagerOutput, Packager, Variant};

use crate::ladder::Ladder;
use crate::{Now, Output, Reservation, StreamMetrics};

/// A rendition's index in its stream, as outputs name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RenditionId(pub usize);

/// What one rendition asks of its driver, which owns the rendition's
/// [`RenditionProducer`](weir_media::RenditionProducer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenditionOutput {
    /// Init segment `generation` (0 when packaging starts; later ones after a discontinuity).
    Init { generation: u64, bytes: Bytes },
    /// Open part `seq`: the next playlist's preload hint names it, and readers may attach.
    OpenPart { seq: u64 },
    /// Append a CMAF chunk to the open part `seq`.
    Chunk { seq: u64, bytes: Bytes },
    /// Part `seq` is complete.
    FinishPart { seq: u64 },
    /// Part `seq` was opened as the hint but became a gap part: it has no body.
    AbortPart { seq: u64 },
    /// Segment `msn` is complete and made of parts `parts`.
    SegmentCompleted { msn: u64, parts: Range<u64> },
    /// A new version of the playlists.
    Publish(RenditionSnapshot),
}

/// Where a rendition's outputs and shared state go while it handles one input.
pub(crate) struct Cx<'a> {
    pub now: Now,
    pub out: &'a mut VecDeque<Output>,
    pub ladder: &'a mut Ladder,
    pub metrics: &'a StreamMetrics,
}

/// What a returning publisher sent before its first keyframe, while the stand-by slate
/// still plays.
#[derive(Debug, Default)]
struct Returning {
    /// A new session's tracks (a publisher resuming after a stall keeps its own).
    tracks: Option<Vec<Track>>,
    cues: Vec<CueEvent>,
    /// Its tracks cannot be packaged: the slate plays on.
    refused: bool,
}

pub(crate) struct RenditionCore {
    /// Where the packager's discontinuity sequence starts (the stream's).
    discontinuity_base: u64,
    pub id: RenditionId,
    pub name: String,
    /// In the multivariant playlist (and in its siblings' rendition reports); the slate
    /// renditions are hidden.
    listed: bool,
    /// Its events count in the exported metrics (not the slate's: it is not a contribution).
    pub counts: bool,
    /// BANDWIDTH until a segment has been measured.
    nominal_bandwidth: u64,
    settings: weir_packager::Settings,
    loss_timeout: Duration,
    /// Whether the playlist carries the packager's `EXT-X-DATERANGE` cue tags.
    cue_tags: bool,
    /// Whether the stand-by slate may take a lost publisher's place (a passed-through
    /// stream's source rendition; an encoder's rungs have their own hold and slate).
    standby_allowed: bool,
    /// Parts are listed as byte ranges of their segment.
    byterange_parts: bool,
    /// The stand-by slate plays in a lost publisher's place.
    pub standby: bool,
    packager: Option<Packager>,
    /// The part the driver holds open.
    open_part: Option<u64>,
    tracks: Vec<Track>,
    version: u64,
    bandwidth: Option<u64>,
    /// `AVERAGE-BANDWIDTH`, from the segments measured when `bandwidth` last rose.
    average_bandwidth: Option<u64>,
    /// Cues that arrived before the first tracks.
    early_cues: Vec<CueEvent>,
    /// What a returning publisher sent while the stand-by slate still plays.
    returning: Returning,
    /// Playlists wait until this part is complete: the gap before the stand-by slate is
    /// published together with the slate's first part, never as the live edge, and after a
    /// restart the old session's last segment with the new session's first part.
    hold_playlist: Option<u64>,
    /// A playlist has been published that players can start from (`startable`).
    startable: bool,
    /// The rendition's numbering reservation (with `server.state_dir`).
    numbering: Option<Box<dyn Reservation>>,
    /// Where its packager's numbering starts, when the stream chose it for a ladder of
    /// renditions (see [`Self::number_from`]); otherwise the clock when the packager starts.
    first_numbers: Option<(u64, u64)>,
    /// The last sample from its feed (never from the stand-by slate), or the last attach.
    pub last_media: Instant,
    /// The feed is past `loss_timeout`.
    lost: bool,
    /// The video's frame rate, once measured (`FRAME-RATE`).
    frame_rate: Option<f64>,
    /// (first DTS, last DTS, frames) of the current session's video, while measuring.
    fps_probe: Option<(i64, i64, u32)>,
}

/// How a [`RenditionCore`] is made.
pub(crate) struct RenditionSpec {
    pub name: String,
    pub listed: bool,
    pub counts: bool,
    pub nominal_bandwidth: u64,
    pub cue_tags: bool,
    pub standby_allowed: bool,
    pub byterange_parts: bool,
}

impl RenditionCore {
    pub fn new(
        id: RenditionId,
        spec: RenditionSpec,
        settings: &crate::StreamSettings,
        numbering: Option<Box<dyn Reservation>>,
        now: Instant,
        discontinuity_base: u64,
    ) -> Self {
        Self {
            discontinuity_base,
            id,
            name: spec.name,
            listed: spec.listed,
            counts: spec.counts,
            nominal_bandwidth: spec.nominal_bandwidth,
            settings: settings.packager.clone(),
            loss_timeout: settings.loss_timeout,
            cue_tags: spec.cue_tags,
            standby_allowed: spec.standby_allowed,
            byterange_parts: spec.byterange_parts,
            standby: false,
            packager: None,
            open_part: None,
            tracks: Vec::new(),
            version: 0,
            bandwidth: None,
            average_bandwidth: None,
            early_cues: Vec::new(),
            returning: Returning::default(),
            hold_playlist: None,
            startable: false,
            numbering,
            first_numbers: None,
            last_media: now,
            lost: false,
            frame_rate: None,
            fps_probe: None,
        }
    }

    /// The (msn, part sequence) its packager would start from at `unix_ms`: the clock's
    /// ([`wall_clock_start`]), or above what an earlier run of this rendition reserved.
    /// Reserves them.
    pub(crate) fn reserve_numbers(&mut self, unix_ms: u64) -> (u64, u64) {
        let clock = wall_clock_start(unix_ms, &self.settings);
        match self.numbering.as_mut() {
            Some(n) => n.start(clock),
            None => clock,
        }
    }

    /// Numbers its packager from `first` (msn, part sequence) when it starts, whenever that
    /// is, rather than from the clock then: the renditions of a ladder share one numbering.
    pub(crate) fn number_from(&mut self, first: (u64, u64)) {
        self.first_numbers = Some(first);
    }

    fn emit(&self, cx: &mut Cx<'_>, event: RenditionOutput) {
        cx.out.push_back(Output::Rendition(self.id, event));
    }

    /// A new feed (publisher) attached.
    pub fn attached(&mut self, now: Instant) {
        self.last_media = now;
        self.returning = Returning::default();
    }

    /// An event from the rendition's feed: the publisher (passed through) or the encoder.
    pub fn feed(&mut self, cx: &mut Cx<'_>, event: MediaEvent) {
        if matches!(event, MediaEvent::Sample(_)) {
            if self.lost {
                info!(after = ?cx.now.at.saturating_duration_since(self.last_media), "contribution restored");
                self.lost = false;
            }
            self.last_media = cx.now.at;
        }
        if !self.standby {
            if let MediaEvent::Sample(sample) = &event {
                self.measure_frame_rate(cx, sample);
            }
            self.handle(cx, event);
            return;
        }
        if let Some(key) = self.leave_standby_at(cx, event) {
            self.standby = false;
            cx.out.push_back(Output::StopStandby);
            info!("the publisher is back; the stand-by slate ends");
            self.handle(cx, key);
        }
    }

    /// An event from the stand-by slate.
    pub fn standby_feed(&mut self, cx: &mut Cx<'_>, event: MediaEvent) {
        if !self.standby {
            return;
        }
        match event {
            MediaEvent::Tracks(tracks) => {
                if !self.start_standby_session(cx, tracks) {
                    self.standby = false;
                    cx.out.push_back(Output::StopStandby);
                }
            }
            event @ MediaEvent::Sample(_) => self.handle(cx, event),
            MediaEvent::Cue(_) => {}
        }
    }

    /// The stand-by slate stopped by itself (or could not start).
    pub fn standby_ended(&mut self) {
        if self.standby {
            warn!("the stand-by slate stopped; gap parts until a publisher returns");
            self.standby = false;
            self.hold_playlist = None;
        }
    }

    /// Time passed: declares the feed lost after `loss_timeout`, then keeps the timeline's
    /// cadence with gap parts (or starts the stand-by slate, where allowed).
    pub fn tick(&mut self, cx: &mut Cx<'_>) {
        let silent = cx.now.at.saturating_duration_since(self.last_media);
        if self.packager.is_none() || silent < self.loss_timeout {
            return;
        }
        if !self.lost {
            self.lost = true;
            if self.counts {
                StreamMetrics::add(&cx.metrics.contribution_losses);
            }
            let kinds: Vec<TrackKind> = self.tracks.iter().map(Track::kind).collect();
            // An audio-only stream gets no stand-by picture: gap parts for the whole loss.
            if self.standby_allowed && kinds.contains(&TrackKind::Video) {
                warn!(silent = ?silent, "contribution lost; the stand-by slate follows the gap");
                if self.counts {
                    StreamMetrics::add(&cx.metrics.standby_starts);
                }
                self.standby = true;
                cx.out.push_back(Output::StartStandby(kinds));
            } else {
                warn!(silent = ?silent, "contribution lost; publishing gap parts");
            }
        }
        if !self.standby {
            // A publisher lost before its first part: nothing will end a hold, and gap
            // parts name no hint.
            self.hold_playlist = None;
            if let Some(p) = self.packager.as_mut() {
                p.gap(cx.now.unix_ms);
            }
            self.drain(cx);
        }
    }

    /// Ends the rendition: the last part and segment are completed and the playlist gets
    /// `EXT-X-ENDLIST`.
    pub fn end(&mut self, cx: &mut Cx<'_>) {
        if self.standby {
            self.standby = false;
            cx.out.push_back(Output::StopStandby);
        }
        if let Some(p) = self.packager.as_mut() {
            p.finish();
        }
        self.drain(cx);
        self.publish(cx, true);
    }

    /// Measures the feed's video frame rate over its first second, for the multivariant
    /// playlist's `FRAME-RATE` (rounded to three decimals, as RFC 8216bis asks), and
    /// republishes the multivariant playlist once it is known or has changed.
    fn measure_frame_rate(&mut self, cx: &mut Cx<'_>, sample: &weir_media::Sample) {
        let Some(track) = self
            .tracks
            .get(sample.track)
            .filter(|t| t.kind() == TrackKind::Video)
        else {
            return;
        };
        let (first, last, frames) = match self.fps_probe {
            None => (sample.dts, sample.dts, 1),
            Some((first, last, frames)) if sample.dts > last => (first, sample.dts, frames + 1),
            Some(probe) => probe,
        };
        let span = last - first;
        let ts = i64::from(track.timescale);
        if frames < 10 || span < ts {
            self.fps_probe = Some((first, last, frames));
            return;
        }
        let fps = (f64::from(frames - 1) * ts as f64 / span as f64 * 1000.0).round() / 1000.0;
        // Done for this session; a new one (another publisher) measures again.
        self.fps_probe = Some((i64::MAX, i64::MAX, 0));
        if fps.is_finite() && self.frame_rate != Some(fps) {
            self.frame_rate = Some(fps);
            self.publish_multivariant(cx);
        }
    }

    /// A publisher's event while the stand-by slate plays. The slate plays on until the
    /// publisher's first video keyframe (a publisher that resumes after a stall starts
    /// mid-GOP): new tracks and cues wait, earlier samples are dropped. At the keyframe the
    /// packager restarts with the publisher's tracks, the waiting cues follow, and the
    /// keyframe is returned for the new session to start with.
    fn leave_standby_at(&mut self, cx: &mut Cx<'_>, event: MediaEvent) -> Option<MediaEvent> {
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
        if !self.start_packager(cx, tracks.unwrap_or_else(|| self.tracks.clone())) {
            // The slate plays on; this session's samples are dropped until it sends tracks
            // weir can package.
            self.returning.refused = true;
            return None;
        }
        for cue in std::mem::take(&mut self.returning).cues {
            self.cue(cx, cue);
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
    fn start_standby_session(&mut self, cx: &mut Cx<'_>, tracks: Vec<Track>) -> bool {
        let Some(p) = self.packager.as_mut() else {
            return false;
        };
        p.gap(cx.now.unix_ms);
        if let Err(e) = p.restart(tracks) {
            warn!(error = %e, "cannot package the stand-by slate; gap parts instead");
            self.drain(cx);
            return false;
        }
        info!("stand-by slate; discontinuity");
        self.hold_playlist = Some(p.next_part_seq());
        true
    }

    fn handle(&mut self, cx: &mut Cx<'_>, event: MediaEvent) {
        match event {
            MediaEvent::Tracks(tracks) => {
                self.start_packager(cx, tracks);
            }
            MediaEvent::Sample(sample) => {
                let Some(packager) = self.packager.as_mut() else {
                    return;
                };
                if let Err(e) = packager.push(cx.now.unix_ms, sample) {
                    if self.counts {
                        StreamMetrics::add(&cx.metrics.samples_rejected);
                    }
                    warn!(error = %e, "sample rejected");
                    return;
                }
                self.drain(cx);
            }
            MediaEvent::Cue(cue) => self.cue(cx, cue),
        }
    }

    /// Places a cue on the rendition's timeline (cues that come before the first tracks
    /// wait for them).
    pub fn cue(&mut self, cx: &mut Cx<'_>, cue: CueEvent) {
        info!(rendition = %self.name, id = cue.id, kind = ?cue.kind, out = cue.out_of_network, pts = ?cue.pts, "cue");
        match self.packager.as_mut() {
            Some(p) => {
                p.push_cue(cx.now.unix_ms, cue);
                // Make the DATERANGE visible without waiting for the next part.
                self.publish(cx, false);
            }
            None => self.early_cues.push(cue),
        }
    }

    /// Starts packaging `tracks`, or restarts the packager with them behind a
    /// discontinuity; false when they cannot be packaged.
    fn start_packager(&mut self, cx: &mut Cx<'_>, tracks: Vec<Track>) -> bool {
        if let Some(p) = self.packager.as_mut() {
            // A returning publisher (or new codec parameters): continue behind a discontinuity.
            if let Err(e) = p.restart(tracks.clone()) {
                warn!(error = %e, "cannot package the new tracks");
                return false;
            }
            info!(tracks = %describe(&tracks), "publisher resumed; discontinuity");
            // The playlist that ends the old session's segment waits for the new session's
            // first part, as the gap before the stand-by slate does: published at once, its
            // preload hint would name that part before its segment's EXT-X-DISCONTINUITY
            // and EXT-X-MAP are written. Shaka 5.2.12 loads a hinted part as soon as it is
            // hinted, with the init segment of the segment before it: the returning
            // publisher's keyframe went into the slate's decoder configuration and Chromium
            // failed it (PIPELINE_ERROR_DECODE, Shaka 3014, fatal).
            self.hold_playlist = Some(p.next_part_seq());
            self.tracks = tracks;
            self.fps_probe = None;
            self.drain(cx);
            self.publish_multivariant(cx);
            return true;
        }
        let (msn, seq) = match self.first_numbers.take() {
            Some(first) => first,
            None => self.reserve_numbers(cx.now.unix_ms),
        };
        match Packager::new(self.settings.clone(), tracks.clone(), msn, seq) {
            Ok(mut p) => {
                p.set_byterange_parts(self.byterange_parts);
                p.set_discontinuity_base(self.discontinuity_base);
                info!(rendition = %self.name, tracks = %describe(&tracks), first_msn = msn, "packaging");
                let init = RenditionOutput::Init {
                    generation: p.init_generation(),
                    bytes: p.init_segment(),
                };
                self.emit(cx, init);
                let hint = p.next_part_seq();
                self.packager = Some(p);
                self.open_hint(cx, hint);
                self.tracks = tracks;
                self.publish_multivariant(cx);
                for cue in std::mem::take(&mut self.early_cues) {
                    self.cue(cx, cue);
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
    fn open_hint(&mut self, cx: &mut Cx<'_>, seq: u64) {
        if self.open_part == Some(seq) {
            return;
        }
        if let (Some(n), Some(p)) = (self.numbering.as_mut(), self.packager.as_ref()) {
            n.cover((p.next_msn(), seq));
        }
        self.open_part = Some(seq);
        self.emit(cx, RenditionOutput::OpenPart { seq });
    }

    fn drain(&mut self, cx: &mut Cx<'_>) {
        let mut published_part = false;
        while let Some(out) = self.packager.as_mut().and_then(Packager::poll_output) {
            match out {
                PackagerOutput::PartStarted {
                    seq, gap: false, ..
                } => self.open_hint(cx, seq),
                PackagerOutput::PartStarted { seq, gap: true, .. } => {
                    // No body for a gap part: abort one opened speculatively as the hint.
                    if self.open_part == Some(seq) {
                        self.open_part = None;
                        self.emit(cx, RenditionOutput::AbortPart { seq });
                    }
                }
                PackagerOutput::Chunk { seq, bytes } => {
                    if self.open_part == Some(seq) {
                        self.emit(cx, RenditionOutput::Chunk { seq, bytes });
                    } else {
                        warn!(seq, "chunk for a part that is not open");
                    }
                }
                PackagerOutput::PartCompleted { seq, gap, .. } => {
                    if self.open_part == Some(seq) {
                        self.open_part = None;
                        self.emit(cx, RenditionOutput::FinishPart { seq });
                    }
                    if gap {
                        if self.counts {
                            StreamMetrics::add(&cx.metrics.gap_parts_published);
                        }
                    } else {
                        if self.counts {
                            StreamMetrics::add(&cx.metrics.parts_published);
                        }
                        self.open_hint(cx, seq + 1);
                        if self.hold_playlist.is_some_and(|first| seq >= first) {
                            self.hold_playlist = None;
                        }
                    }
                    published_part = true;
                }
                PackagerOutput::SegmentCompleted {
                    msn, parts, gap, ..
                } => {
                    if !gap {
                        self.emit(cx, RenditionOutput::SegmentCompleted { msn, parts });
                    }
                    if self.counts {
                        StreamMetrics::add(&cx.metrics.segments_published);
                    }
                }
                PackagerOutput::WindowAdvanced { .. } => {}
                PackagerOutput::InitChanged { generation, bytes } => {
                    self.emit(cx, RenditionOutput::Init { generation, bytes });
                }
            }
        }
        if published_part {
            self.publish(cx, false);
        }
    }

    fn publish(&mut self, cx: &mut Cx<'_>, ended: bool) {
        let Some(packager) = self.packager.as_ref() else {
            return;
        };
        if self.hold_playlist.is_some() && !ended {
            return;
        }
        let mut playlist = packager.media_playlist();
        // Requests for a stream's first playlist wait for it (the origin's first-playlist
        // wait) until a player can start there: see `startable`.
        if !self.startable && !ended {
            if !startable(&playlist) {
                return;
            }
            self.startable = true;
        }
        if let Some(n) = self.numbering.as_mut() {
            n.cover((packager.next_msn(), packager.next_part_seq()));
        }
        if !self.cue_tags {
            playlist.dateranges.clear();
        }
        if ended {
            playlist.ended = true;
            playlist.preload_hint = None;
        }
        if self.listed {
            playlist.rendition_reports = cx.ladder.reports(&self.name, live_edge(&playlist));
        }
        let full = render(&playlist, false);
        let skip = playlist.can_skip_until.map(|_| render(&playlist, true));
        let next_msn = playlist.media_sequence + playlist.segments.len() as u64;
        let parts_done = playlist
            .partial
            .as_ref()
            .map_or(0, |p| u32::try_from(p.parts.len()).unwrap_or(u32::MAX));
        self.version += 1;
        let snapshot = RenditionSnapshot {
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
        };
        // BANDWIDTH is a peak: only ever raise it, so players never see it shrink.
        let bw = packager.bandwidth_estimate();
        self.emit(cx, RenditionOutput::Publish(snapshot));
        if bw > self.bandwidth {
            self.bandwidth = bw;
            // Updated with the peak only, so the multivariant playlist changes rarely.
            self.average_bandwidth = packager.average_bandwidth_estimate();
            self.publish_multivariant(cx);
        }
    }

    fn publish_multivariant(&mut self, cx: &mut Cx<'_>) {
        if !self.listed {
            return;
        }
        let video = self.tracks.iter().find_map(|t| match &t.codec {
            Codec::H264(c) => Some(c),
            Codec::Aac(_) => None,
        });
        let codecs: Vec<String> = self.tracks.iter().map(|t| t.codec.codec_string()).collect();
        let mv = cx.ladder.multivariant(
            &self.name,
            Variant {
                uri: format!("{}/index.m3u8", self.name),
                // Until a segment has been measured, the nominal bitrate.
                bandwidth: self.bandwidth.unwrap_or(self.nominal_bandwidth),
                // Never above BANDWIDTH (the peak): an average from the segments so far.
                average_bandwidth: self
                    .average_bandwidth
                    .map(|a| a.min(self.bandwidth.unwrap_or(a))),
                codecs: codecs.join(","),
                resolution: video.map(|v| (v.width, v.height)),
                frame_rate: self.frame_rate.filter(|_| video.is_some()),
            },
        );
        let mut out = Vec::with_capacity(512);
        if mv.write_to(&mut out).is_ok() {
            cx.out.push_back(Output::Multivariant(Bytes::from(out)));
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

/// Whether players can start from a stream's first playlist: it lists a complete segment,
/// and a player that starts PART-HOLD-BACK from its end (RFC 8216bis 4.4.3.8) starts at an
/// independent part after the stream's first one.
///
/// - Shaka 4.16 fails to load a live playlist whose only segment is still in parts (a
///   TypeError in its HLS parser).
/// - Shaka 4.16 seeks to its start position when the first init segment is appended; with
///   no media appended yet Chromium has nothing seekable and drops that seek. Starting at
///   the stream's first part, presentation time 0, an autoplaying video then plays from 0 on
///   its own, Shaka's retry sees the time moved and stops, and its playhead never counts as
///   started: it reports a frozen PROGRAM-DATE-TIME, stops buffering 10 s after its start
///   position and stalls there for about 18 s. Starting later, nothing plays before the
///   retried seek. Current Shaka, hls.js and later joins are unaffected.
///
/// With segments cut at keyframes this delays the first playlist by PART-HOLD-BACK at most.
fn startable(playlist: &MediaPlaylist) -> bool {
    if playlist.segments.is_empty() {
        return false;
    }
    let mut t = Duration::ZERO;
    let mut second_independent = None;
    let mut mark = |t: Duration| {
        if t > Duration::ZERO {
            second_independent.get_or_insert(t);
        }
    };
    for s in &playlist.segments {
        if s.parts.is_empty() {
            // Parts no longer listed: the segment starts with a keyframe.
            mark(t);
            t += s.duration;
        }
        for p in &s.parts {
            if p.independent {
                mark(t);
            }
            t += p.duration;
        }
    }
    for p in playlist.partial.iter().flat_map(|p| &p.parts) {
        if p.independent {
            mark(t);
        }
        t += p.duration;
    }
    second_independent.is_some_and(|s| s + playlist.part_hold_back <= t)
}

fn render(playlist: &MediaPlaylist, skip: bool) -> Bytes {
    let mut out = Vec::with_capacity(4096);
    // Writing into a Vec cannot fail.
    let _ = playlist.write_to(&mut out, skip);
    let _ = out.flush();
    Bytes::from(out)
}

pub(crate) fn describe(tracks: &[Track]) -> String {
    let mut s = tracks
        .iter()
        .map(|t| match &t.codec {
            Codec::H264(c) => format!("{} {}x{}", c.codec_string(), c.width, c.height),
            Codec::Aac(c) => {
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
