//! [`Packager`], the façade: it owns one rendition's state (the tracks, the open segment and
//! part, the timeline's anchor, the [`Window`], the cues and the queue of [`Output`]s), its
//! constructor and accessors. Each concern lives in a child module that adds its part of
//! `impl Packager`, public methods included (`push` is the cutter's, `gap` and `restart` the
//! session's, `media_playlist` the assembly's):
//!
//! - `cutter`: decides where parts and segments begin (keyframes, the part and segment
//!   targets) and writes their chunks as soon as sample durations are known.
//! - `session`: publisher sessions on one timeline: where a session starts and its media ends,
//!   its dates, the gap parts that keep the cadence while the publisher is away, and the new
//!   init segment and discontinuity that a restart brings.
//! - `window`: the rolling window of completed segments that the playlist is rendered from.
//! - `assembly`: builds the [`MediaPlaylist`](crate::MediaPlaylist) value from the window and
//!   the segment in progress.

use std::collections::VecDeque;
use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use weir_media::{Codec, CueEvent, PlacedCue, Sample, Track};

use crate::cue::CueStore;
use crate::{Result, Settings};

use self::cutter::{prepare_tracks, OpenPart, OpenSegment, TrackState};
use self::session::{to_ticks, Anchor, Session};
use self::window::Window;

mod assembly;
mod cutter;
mod session;
mod window;

#[cfg(test)]
mod tests;

pub use self::cutter::CUT_TOLERANCE;

/// What the packager asks its driver to do, in order.
///
/// For one [`Packager::push`], `PartCompleted(seq)` (and `SegmentCompleted`, then
/// `WindowAdvanced`) come before `PartStarted(seq + 1)` and that part's `Chunk`s.
///
/// Gap parts ([`Packager::gap`]) have `gap: true`: each is announced and completed at once,
/// `PartStarted` then `PartCompleted` with no `Chunk` in between. They have no body: store
/// nothing for them, open no preload-hinted body for them (and abort one opened speculatively
/// for that sequence number), and answer requests for their URIs with 404. A segment made of
/// gap parts is completed with `SegmentCompleted { gap: true, .. }` and has no body either.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Part `seq` is open: readers of its URI (the preload hint) may attach now.
    /// `index` is its position within segment `msn`.
    PartStarted {
        seq: u64,
        msn: u64,
        index: u32,
        independent: bool,
        gap: bool,
    },
    /// Bytes to append to part `seq`: one CMAF chunk (`moof`+`mdat`), preceded by a `styp`
    /// when it is the first chunk of a segment.
    Chunk { seq: u64, bytes: Bytes },
    /// Part `seq` is complete.
    PartCompleted {
        seq: u64,
        msn: u64,
        index: u32,
        duration: Duration,
        independent: bool,
        gap: bool,
    },
    /// Segment `msn` is complete; its body is the concatenation of parts `parts` (none for a
    /// `gap` segment).
    SegmentCompleted {
        msn: u64,
        duration: Duration,
        parts: Range<u64>,
        gap: bool,
    },
    /// Segments below `first_msn` left the window.
    WindowAdvanced { first_msn: u64 },
    /// [`Packager::restart`] made a new init segment; serve it as
    /// [`init_uri(generation)`](crate::init_uri). Segments of older generations still in the
    /// window need theirs (see [`Packager::oldest_init_generation`]). The first generation is
    /// the one [`Packager::new`] made: [`Packager::init_segment`] returns it, and no event
    /// announces it.
    InitChanged { generation: u64, bytes: Bytes },
}

/// One rendition's CMAF packager and playlist model. See the [crate docs](crate).
#[derive(Debug)]
pub struct Packager {
    settings: Settings,
    tracks: Vec<TrackState>,
    /// Index of the track whose samples drive cutting: the first video track, else track 0.
    primary: usize,
    init: Bytes,
    init_generation: u64,

    // Targets in primary-track ticks.
    segment_target: u64,
    part_target: u64,
    tolerance: u64,

    /// Timeline to wall clock: `None` until the first session's first keyframe.
    anchor: Option<Anchor>,
    /// Until the first part is complete, the anchor moves earlier whenever a primary sample
    /// shows that media arrived earlier than the anchor says: a demuxer that holds samples
    /// until it knows every track (TS waits for the first audio PES) releases them in a
    /// burst, and anchoring at the burst would date the stream late (and make latency look
    /// better than it is). Nothing is dated in a published playlist before then.
    anchor_settling: bool,
    /// The session whose samples `push` takes, once it has shown a keyframe; cleared by
    /// `restart`, kept through a gap (the same publisher may resume).
    session: Option<Session>,
    segment: Option<OpenSegment>,
    /// Parts are listed as byte ranges of their segment (see [`Packager::set_byterange_parts`]).
    byterange_parts: bool,
    /// The part being written. `Some` exactly while a session's media is being cut.
    part: Option<OpenPart>,
    /// Decode time and end of the latest primary sample.
    last_primary: Option<u64>,
    /// Timeline position of the primary track's latest keyframe (see `EARLY_CUT_PARTS`).
    last_keyframe: Option<u64>,
    primary_end: u64,
    /// End of the latest completed part, real or gap: where a gap continues.
    parts_end: u64,
    /// End of the media of every track so far (timeline ticks): a new session starts at or
    /// after it, so no track's decode time goes backwards.
    media_end: u64,
    /// `gap` ran and no session has started since: no preload hint.
    gapping: bool,
    /// The next real segment starts a new session after an earlier one.
    discontinuity_pending: bool,
    /// Init generation of the latest real segment; gap segments keep it (they use no init).
    map_generation: u64,

    next_msn: u64,
    next_seq: u64,
    window: Window,
    max_segment: Duration,
    peak_bps: Option<u64>,
    /// Bits and nanoseconds of the completed segments that count for bandwidth.
    measured: (u128, u128),
    chunk_sequence: u32,
    finished: bool,
    outputs: VecDeque<Output>,
    /// Samples per track in the chunk being written, kept between chunks for its allocation.
    flush_counts: Vec<usize>,
    /// Secondary-track samples that arrived before the session's first primary keyframe.
    held: VecDeque<Sample>,
    cues: CueStore,
}

/// First media sequence number and part sequence number for a stream (re)started at
/// `now_unix_ms`, derived from the wall clock so that numbers never go backwards when Weir
/// restarts and the stream's packager is made anew (DESIGN.md, "origin restart"). Pass them
/// to [`Packager::new`].
///
/// The msn is the number of half segment targets since the Unix epoch, the part sequence the
/// number of half part targets. Halving the divisor is what makes this safe: a stream that
/// started at `t0` with these numbers reaches, by `t1`, at most `(t1 - t0) / (target / 2)`
/// more, as long as its segments (parts) average at least half their target — which they do
/// even though the cutter makes some shorter than the target (a segment closed early when the
/// publisher leaves, a part cut short by a keyframe: parts per segment are at most one more
/// than a whole number of part targets, and a part target is under a segment target), as long
/// as media does not arrive faster than the wall clock and the publisher is not replaced more
/// often than once per segment target. So `wall_clock_start(t1)` is never below what the
/// stream reached, whatever `t1` is. The numbers stay far from overflow (2^63 half-parts of
/// 25 ms is 3.6 billion years).
///
/// All this assumes the clock never steps back across the restart. A caller that can keep
/// state starts at the larger of these numbers and the ones it reserved before (weir's
/// `server.state_dir`; docs/design/003).
pub fn wall_clock_start(now_unix_ms: u64, settings: &Settings) -> (u64, u64) {
    let half = |d: Duration| u64::try_from(d.as_millis() / 2).unwrap_or(u64::MAX).max(1);
    (
        now_unix_ms / half(settings.segment_target),
        now_unix_ms / half(settings.part_target),
    )
}

impl Packager {
    /// A packager for one rendition made of `tracks` (`Sample::track` indexes this list).
    /// `first_msn` and `first_part_seq` continue the numbering of an earlier run of the same
    /// stream, so that a restart never makes sequence numbers go backwards; see
    /// [`wall_clock_start`].
    pub fn new(
        settings: Settings,
        tracks: Vec<Track>,
        first_msn: u64,
        first_part_seq: u64,
    ) -> Result<Self> {
        settings.validate()?;
        let (init, states, primary) = prepare_tracks(tracks)?;
        let ts = states[primary].track.timescale;
        Ok(Self {
            segment_target: to_ticks(settings.segment_target, ts),
            part_target: to_ticks(settings.part_target, ts),
            tolerance: to_ticks(CUT_TOLERANCE, ts),
            window: Window::new(to_ticks(settings.window, ts), first_msn),
            settings,
            tracks: states,
            primary,
            init,
            init_generation: first_part_seq,
            anchor: None,
            anchor_settling: false,
            session: None,
            segment: None,
            byterange_parts: false,
            part: None,
            last_primary: None,
            last_keyframe: None,
            primary_end: 0,
            parts_end: 0,
            media_end: 0,
            gapping: false,
            discontinuity_pending: false,
            map_generation: first_part_seq,
            next_msn: first_msn,
            next_seq: first_part_seq,
            max_segment: Duration::ZERO,
            peak_bps: None,
            measured: (0, 0),
            chunk_sequence: 1,
            finished: false,
            outputs: VecDeque::new(),
            flush_counts: Vec::new(),
            held: VecDeque::new(),
            cues: CueStore::default(),
        })
    }

    /// The current init segment (`ftyp` + `moov` with one `trak` and `trex` per track), of
    /// generation [`Packager::init_generation`].
    pub fn init_segment(&self) -> Bytes {
        self.init.clone()
    }

    /// The generation of the current init segment: the sequence number of the first part
    /// that uses it (`first_part_seq` from [`Packager::new`], the next part's after a
    /// [`Packager::restart`]). Its URI is [`init_uri`](crate::init_uri)`(generation)`.
    pub fn init_generation(&self) -> u64 {
        self.init_generation
    }

    /// The oldest init generation that a segment in the window (or the one in progress)
    /// still uses: older init segments may be dropped.
    pub fn oldest_init_generation(&self) -> u64 {
        self.window
            .segments()
            .front()
            .map(|s| s.init_generation)
            .or(self.segment.as_ref().map(|s| s.init_generation))
            .unwrap_or(self.init_generation)
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Lists parts as byte ranges of their segment (`EXT-X-PART:URI="seg<msn>.m4s",
    /// BYTERANGE=<len>@<offset>`) and hints the part being written as an open-ended range
    /// (`EXT-X-PRELOAD-HINT:URI="seg<msn>.m4s",BYTERANGE-START=<offset>`), instead of one URI
    /// per part: a CDN then caches one object per segment. The bytes are the same either way
    /// (a segment is its parts back to back), so this only changes how they are addressed.
    pub fn set_byterange_parts(&mut self, on: bool) {
        self.byterange_parts = on;
    }

    /// Starts `EXT-X-DISCONTINUITY-SEQUENCE` at `base` instead of 0, before anything is
    /// packaged. A stream that restarts (the process, or its task after an idle end) gets a
    /// base above every discontinuity number its earlier run served, so a player or an edge
    /// that follows the playlist across the restart sees the numbers go on, and the new
    /// timeline as a discontinuity (RFC 8216bis 6.2.2: the sequence never goes back).
    pub fn set_discontinuity_base(&mut self, base: u64) {
        self.window.set_discontinuity_base(base);
    }

    /// The part the preload hint names: the one being written, or the next one to open.
    pub fn next_part_seq(&self) -> u64 {
        self.part.as_ref().map_or(self.next_seq, |p| p.seq)
    }

    /// The oldest media sequence number in the window.
    pub fn first_msn(&self) -> u64 {
        self.window.first_msn()
    }

    /// The media sequence number of the segment being written (or the next one to open).
    pub fn next_msn(&self) -> u64 {
        self.segment.as_ref().map_or(self.next_msn, |s| s.msn)
    }

    /// How many parts of [`Packager::next_msn`] are complete.
    pub fn parts_done(&self) -> u32 {
        self.segment
            .as_ref()
            .map_or(0, |s| u32::try_from(s.parts.len()).unwrap_or(u32::MAX))
    }

    /// Whether [`Packager::finish`] ran.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether the timeline is in a gap: [`Packager::gap`] ran and no session has started
    /// since.
    pub fn in_gap(&self) -> bool {
        self.gapping
    }

    /// The RFC 6381 `CODECS` value of the rendition, e.g. `avc1.64001f,mp4a.40.2`.
    pub fn codecs(&self) -> String {
        let codecs: Vec<String> = self
            .tracks
            .iter()
            .map(|t| t.track.codec.codec_string())
            .collect();
        codecs.join(",")
    }

    /// The video resolution, if the rendition has video.
    pub fn resolution(&self) -> Option<(u16, u16)> {
        self.tracks.iter().find_map(|t| match &t.track.codec {
            Codec::H264(c) => Some((c.width, c.height)),
            Codec::Aac(_) => None,
        })
    }

    /// Peak bitrate of the completed segments, in bits per second.
    pub fn bandwidth_estimate(&self) -> Option<u64> {
        self.peak_bps
    }

    /// Average bitrate of the completed segments so far (`AVERAGE-BANDWIDTH`), in bits per
    /// second.
    pub fn average_bandwidth_estimate(&self) -> Option<u64> {
        let (bits, nanos) = self.measured;
        (nanos > 0).then(|| u64::try_from(bits * 1_000_000_000 / nanos).unwrap_or(u64::MAX))
    }

    /// Flushes the open part and segment: the publisher left. The last sample of each track
    /// gets the duration of the one before it. Later pushes fail with
    /// [`Error::Finished`](crate::Error::Finished); the playlist ends (`EXT-X-ENDLIST`, no
    /// preload hint).
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.close_media(true);
        if self.segment.is_some() {
            self.close_segment(self.parts_end, false);
        }
        self.cues.take_pending();
    }

    /// Takes a splice point (SCTE-35 or equivalent) and places it on the program-date-time
    /// timeline: `cue.pts` (90 kHz, the current session's DTS timeline as given to `push`)
    /// maps through the session's first keyframe; `pts: None` means the live edge (the next
    /// sample's date, or `now_unix_ms` when no session is running). A timed cue that arrives
    /// before its session's first keyframe waits for it. Repeats of a cue already placed are
    /// ignored. Cues stay while their date is in the window; see [`Packager::cues`] and
    /// [`MediaPlaylist::dateranges`](crate::MediaPlaylist::dateranges).
    pub fn push_cue(&mut self, now_unix_ms: u64, cue: CueEvent) {
        if self.finished {
            return;
        }
        let start_ms = match (cue.pts, self.session) {
            (Some(pts), Some(session)) => {
                let ts = i128::from(self.primary_timescale());
                // (pts / 90 kHz - key_dts / ts) seconds after the keyframe's date.
                let num = (i128::from(pts) * ts - i128::from(session.key_dts) * 90_000) * 1000;
                let ms = i128::from(session.wall_ms) + num.div_euclid(90_000 * ts);
                u64::try_from(ms.max(0)).unwrap_or(u64::MAX)
            }
            (Some(_), None) => {
                self.cues.hold(cue);
                return;
            }
            (None, _) => self.live_edge_ms(now_unix_ms),
        };
        self.cues.place(cue, start_ms);
    }

    /// The cues in the window, with their dates, oldest first: each OUT, IN or other command
    /// once, an OUT with `end_ms` set once its IN has arrived.
    pub fn cues(&self) -> Vec<PlacedCue> {
        self.cues.placed()
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    fn primary_timescale(&self) -> u32 {
        self.tracks[self.primary].track.timescale
    }
}
