//! The cutter: decides where parts and segments begin, writes their chunks as soon as sample
//! durations are known, and keeps the rolling window that the playlist is rendered from.
//!
//! # One timeline across publisher sessions
//!
//! Everything the packager cuts lies on one timeline, counted in ticks of the primary track's
//! timescale. A *session* is one publisher's run of samples: it starts at its first primary
//! keyframe, where its DTS are mapped onto the timeline (an offset per track) and its first
//! sample is anchored to the wall clock for `EXT-X-PROGRAM-DATE-TIME`.
//!
//! When the contribution is lost ([`Packager::gap`]), the session's media is closed where it
//! ends and the timeline keeps its cadence with gap parts, which carry no bytes. When a
//! publisher comes back ([`Packager::restart`], or the same session resuming with a keyframe),
//! the next session continues the timeline where the media and the gap parts end, so every
//! track's `tfdt` keeps increasing, and its first segment carries `EXT-X-DISCONTINUITY`.

use std::collections::VecDeque;
use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use weir_media::{Codec, CueEvent, Sample, Track, TrackKind};

use crate::cmaf::{self, ReadySample, TrackRun};
use crate::cue::CueStore;
use crate::playlist::{MediaPlaylist, PartEntry, PartialSegment, SegmentEntry};
use crate::{init_uri, part_uri, segment_uri, Error, Result, Settings};
use weir_media::PlacedCue;

/// Slack allowed when comparing media time against a target.
///
/// RTMP carries millisecond timestamps, so at 30 fps frames arrive 33, 33 and 34 ms apart and
/// fifteen of them sum to 499–501 ms rather than 500. Without slack, a 500 ms part would
/// sometimes take a sixteenth frame (533 ms) and a 2 s segment would sometimes wait for the
/// next GOP. 5 ms absorbs the rounding, and it is under a third of a frame even at 60 fps,
/// so it never moves a cut by a whole frame.
pub const CUT_TOLERANCE: Duration = Duration::from_millis(5);

/// Samples of secondary tracks held while waiting for the first primary keyframe (about 5 s
/// of AAC), so audio that arrives just before the keyframe but plays after it is kept.
const MAX_HELD_BEFORE_START: usize = 256;

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
    /// window need theirs (see [`Packager::oldest_init_generation`]). Generation 0 is the one
    /// [`Packager::new`] made: [`Packager::init_segment`] returns it, and no event announces it.
    InitChanged { generation: u32, bytes: Bytes },
}

#[derive(Debug)]
struct TrackState {
    track: Track,
    id: u32,
    /// Ticks added to this session's DTS to put its samples on the timeline.
    offset: i64,
    /// The latest sample, waiting for its successor to learn its duration.
    pending: Option<ReadySample>,
    /// Samples whose duration is known and that no chunk holds yet, oldest first.
    ready: VecDeque<ReadySample>,
    last_dts: Option<i64>,
    /// Where the next sample starts if the track is gapless; samples with an explicit
    /// duration (AAC) are laid end to end from here so millisecond jitter in their DTS does
    /// not open gaps or overlaps.
    running: Option<u64>,
    last_duration: Option<u32>,
    /// End of the latest sample written into a chunk, in this track's timescale.
    end: u64,
}

#[derive(Clone, Debug)]
struct PartRecord {
    seq: u64,
    duration: Duration,
    independent: bool,
    gap: bool,
}

#[derive(Debug)]
struct SegmentRecord {
    msn: u64,
    /// Timeline ticks.
    start: u64,
    end: u64,
    pdt_ms: u64,
    parts: Vec<PartRecord>,
    gap: bool,
    discontinuity: bool,
    init_generation: u32,
}

#[derive(Debug)]
struct OpenSegment {
    msn: u64,
    start: u64,
    pdt_ms: u64,
    parts: Vec<PartRecord>,
    bytes: u64,
    /// The next chunk opens the segment and carries the `styp`.
    needs_styp: bool,
    gap: bool,
    discontinuity: bool,
    init_generation: u32,
}

#[derive(Debug)]
struct OpenPart {
    seq: u64,
    index: u32,
    start: u64,
    independent: bool,
}

/// Maps the timeline to program date time; fixed at each session's first keyframe and kept
/// through the gap that follows the session, so the gap's dates carry on from its media.
#[derive(Clone, Copy, Debug)]
struct Anchor {
    /// Timeline ticks.
    time: u64,
    /// Its program date time, in Unix milliseconds.
    wall_ms: u64,
}

/// The current session's own timeline, for placing its cues: the input DTS (primary
/// timescale) of its first keyframe, and that keyframe's program date time.
#[derive(Clone, Copy, Debug)]
struct Session {
    key_dts: i64,
    wall_ms: u64,
}

/// One rendition's CMAF packager and playlist model. See the [crate docs](crate).
#[derive(Debug)]
pub struct Packager {
    settings: Settings,
    tracks: Vec<TrackState>,
    /// Index of the track whose samples drive cutting: the first video track, else track 0.
    primary: usize,
    init: Bytes,
    init_generation: u32,

    // Targets in primary-track ticks.
    segment_target: u64,
    part_target: u64,
    tolerance: u64,
    window: u64,

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
    /// The part being written. `Some` exactly while a session's media is being cut.
    part: Option<OpenPart>,
    /// Decode time and end of the latest primary sample.
    last_primary: Option<u64>,
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
    map_generation: u32,

    next_msn: u64,
    next_seq: u64,
    first_msn: u64,
    discontinuity_sequence: u64,
    segments: VecDeque<SegmentRecord>,
    max_segment: Duration,
    peak_bps: Option<u64>,
    chunk_sequence: u32,
    finished: bool,
    outputs: VecDeque<Output>,
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
            window: to_ticks(settings.window, ts),
            settings,
            tracks: states,
            primary,
            init,
            init_generation: 0,
            anchor: None,
            anchor_settling: false,
            session: None,
            segment: None,
            part: None,
            last_primary: None,
            primary_end: 0,
            parts_end: 0,
            media_end: 0,
            gapping: false,
            discontinuity_pending: false,
            map_generation: 0,
            next_msn: first_msn,
            next_seq: first_part_seq,
            first_msn,
            discontinuity_sequence: 0,
            segments: VecDeque::new(),
            max_segment: Duration::ZERO,
            peak_bps: None,
            chunk_sequence: 1,
            finished: false,
            outputs: VecDeque::new(),
            held: VecDeque::new(),
            cues: CueStore::default(),
        })
    }

    /// The current init segment (`ftyp` + `moov` with one `trak` and `trex` per track), of
    /// generation [`Packager::init_generation`].
    pub fn init_segment(&self) -> Bytes {
        self.init.clone()
    }

    /// The generation of the current init segment: 0 from [`Packager::new`], one more per
    /// [`Packager::restart`]. Its URI is [`init_uri`](crate::init_uri)`(generation)`.
    pub fn init_generation(&self) -> u32 {
        self.init_generation
    }

    /// The oldest init generation that a segment in the window (or the one in progress)
    /// still uses: older init segments may be dropped.
    pub fn oldest_init_generation(&self) -> u32 {
        self.segments
            .front()
            .map(|s| s.init_generation)
            .or(self.segment.as_ref().map(|s| s.init_generation))
            .unwrap_or(self.init_generation)
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The part the preload hint names: the one being written, or the next one to open.
    pub fn next_part_seq(&self) -> u64 {
        self.part.as_ref().map_or(self.next_seq, |p| p.seq)
    }

    /// The oldest media sequence number in the window.
    pub fn first_msn(&self) -> u64 {
        self.first_msn
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

    /// `EXT-X-TARGETDURATION`: the configured target rounded up to whole seconds, raised
    /// when a GOP longer than the target made a longer segment (RFC 8216bis 4.4.3.1: every
    /// `EXTINF`, rounded to the nearest integer, must not exceed it).
    pub fn target_duration(&self) -> Duration {
        let longest = (self.max_segment.as_millis() + 500) / 1000;
        let longest = u64::try_from(longest).unwrap_or(u64::MAX);
        Duration::from_secs(self.settings.configured_target_secs().max(longest))
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

    /// Takes one sample. `now_unix_ms` is the caller's wall clock, used only to anchor
    /// `EXT-X-PROGRAM-DATE-TIME` at the first sample of a session.
    ///
    /// Until a session shows its first keyframe on the primary track (at the start, after
    /// [`Packager::restart`], and when the same publisher resumes after [`Packager::gap`]),
    /// primary samples are dropped and those of other tracks held; held samples that play
    /// before that keyframe are dropped then (`Ok`). A sample that cannot be packaged
    /// (unknown track, DTS not after the track's previous DTS, DTS out of range) is rejected
    /// with an error and leaves the packager as it was.
    pub fn push(&mut self, now_unix_ms: u64, sample: Sample) -> Result<()> {
        if self.finished {
            return Err(Error::Finished);
        }
        let index = sample.track;
        let Some(track) = self.tracks.get(index) else {
            return Err(Error::UnknownTrack {
                track: index,
                tracks: self.tracks.len(),
            });
        };
        if let Some(previous) = track.last_dts {
            if sample.dts <= previous {
                return Err(Error::NonMonotonicDts {
                    track: index,
                    dts: sample.dts,
                    previous,
                });
            }
        }
        let is_primary = index == self.primary;
        let (Some(session), Some(_)) = (self.session, &self.part) else {
            // Nothing is packaged until the primary track shows a keyframe.
            if !is_primary {
                if self.held.len() == MAX_HELD_BEFORE_START {
                    self.held.pop_front();
                }
                self.held.push_back(sample);
                return Ok(());
            }
            if !sample.keyframe {
                return Ok(());
            }
            return self.start_session(now_unix_ms, sample);
        };
        let primary_ts = self.primary_timescale();
        let ts = track.track.timescale;
        if !is_primary
            && i128::from(sample.dts) * i128::from(primary_ts)
                < i128::from(session.key_dts) * i128::from(ts)
        {
            // Plays before the session's first keyframe: nothing to show it with.
            return Ok(());
        }
        let out_of_range = || Error::TimestampOutOfRange {
            track: index,
            dts: sample.dts,
        };
        let time = sample
            .dts
            .checked_add(track.offset)
            .and_then(|t| u64::try_from(t).ok())
            .ok_or_else(out_of_range)?;
        let pending_duration = match &track.pending {
            Some(p) => Some(
                time.checked_sub(p.decode_time)
                    .and_then(|d| u32::try_from(d).ok())
                    .ok_or_else(out_of_range)?,
            ),
            None => None,
        };
        let duration = sample.duration.filter(|d| *d > 0);
        let decode_time = match (duration, track.running) {
            // Lay explicit-duration samples end to end unless the DTS jumped by more than
            // half a sample (a real gap or a resync).
            (Some(d), Some(running)) if time.abs_diff(running) <= u64::from(d / 2) => running,
            _ => time,
        };

        // Validated: from here on nothing fails except box encoding.
        if is_primary && self.anchor_settling {
            self.settle_anchor(now_unix_ms, time);
        }
        let track = &mut self.tracks[index];
        track.last_dts = Some(sample.dts);
        if let (Some(mut p), Some(d)) = (track.pending.take(), pending_duration) {
            p.duration = d;
            track.last_duration = Some(d);
            if is_primary {
                self.primary_end = p.decode_time + u64::from(d);
            }
            track.ready.push_back(p);
        }
        let ready = ReadySample {
            decode_time,
            duration: duration.unwrap_or(0),
            cts_offset: sample.cts_offset,
            keyframe: sample.keyframe,
            data: sample.data,
        };
        if !is_primary {
            self.tracks[index].stash(ready);
            return Ok(());
        }
        self.on_primary(ready)
    }

    /// Starts a session at its first primary keyframe: maps its DTS onto the timeline,
    /// anchors its date, opens its first segment and part, then takes the keyframe and the
    /// samples held for it.
    fn start_session(&mut self, now_unix_ms: u64, key: Sample) -> Result<()> {
        let primary_ts = i128::from(self.primary_timescale());
        let out_of_range = || Error::TimestampOutOfRange {
            track: key.track,
            dts: key.dts,
        };
        // The primary offset, in primary ticks; the others follow it in their own timescale.
        let primary_offset = match self.anchor {
            // The first session: shift by whole seconds, only as far as keeps DTS >= 0.
            None => match key.dts {
                dts if dts >= 0 => 0,
                dts => {
                    -i128::from(dts.div_euclid(self.tracks[self.primary].timescale_i64()))
                        * primary_ts
                }
            },
            // Later sessions continue where the timeline ends.
            Some(_) => i128::from(self.resume_point()) - i128::from(key.dts),
        };
        let offsets = self
            .tracks
            .iter()
            .map(|t| {
                // Rounded up, so no track starts before the end of its previous media.
                let scaled = (primary_offset * i128::from(t.track.timescale))
                    .div_euclid(primary_ts)
                    + i128::from(
                        (primary_offset * i128::from(t.track.timescale)).rem_euclid(primary_ts)
                            != 0,
                    );
                i64::try_from(scaled).map_err(|_| out_of_range())
            })
            .collect::<Result<Vec<i64>>>()?;
        let time = key
            .dts
            .checked_add(offsets[self.primary])
            .and_then(|t| u64::try_from(t).ok())
            .ok_or_else(out_of_range)?;

        // Validated: the session starts.
        for (track, offset) in self.tracks.iter_mut().zip(offsets) {
            track.offset = offset;
            track.running = None;
        }
        self.anchor_settling = self.anchor.is_none();
        let wall_ms = match self.anchor {
            None => now_unix_ms,
            // Dates never go backwards: not before the end of what the playlist already has.
            Some(_) => now_unix_ms.max(self.pdt_at(self.parts_end)),
        };
        if self.segment.is_some() {
            // The gap ends here.
            self.close_segment(self.parts_end, false);
        }
        self.anchor = Some(Anchor { time, wall_ms });
        self.session = Some(Session {
            key_dts: key.dts,
            wall_ms,
        });
        self.gapping = false;
        self.last_primary = None;
        self.primary_end = time;
        self.open_segment(time, false);
        self.open_part(time, true);
        self.push(now_unix_ms, key)?;
        for sample in std::mem::take(&mut self.held) {
            // Held samples were never checked; one that fails is dropped like any other
            // pre-keyframe sample.
            let _ = self.push(now_unix_ms, sample);
        }
        for cue in self.cues.take_pending() {
            self.push_cue(now_unix_ms, cue);
        }
        Ok(())
    }

    fn on_primary(&mut self, sample: ReadySample) -> Result<()> {
        let t = sample.decode_time;
        // Audio-only renditions have no inter-frame dependencies: every part is independent.
        let independent =
            sample.keyframe || self.tracks[self.primary].track.kind() == TrackKind::Audio;
        let (Some(segment), Some(part)) = (&self.segment, &self.part) else {
            // push() only gets here with a session running.
            return Err(Error::Finished);
        };
        let segment_cut = sample.keyframe
            && t.saturating_sub(segment.start) + self.tolerance >= self.segment_target;
        // Cut before this sample would carry the part past its target: parts never exceed
        // PART-TARGET (beyond the tolerance), as RFC 8216bis requires.
        let sample_len = match sample.duration {
            0 => self.last_primary.map_or(0, |last| t.saturating_sub(last)),
            d => u64::from(d),
        };
        let part_cut = segment_cut
            || t.saturating_sub(part.start) + sample_len > self.part_target + self.tolerance;
        if part_cut && t > part.start {
            self.flush(t)?;
            self.close_part(t);
            if segment_cut {
                self.close_segment(t, true);
                self.open_segment(t, false);
            }
            self.open_part(t, independent);
        }
        self.last_primary = Some(t);
        let primary = &mut self.tracks[self.primary];
        if sample.duration > 0 {
            self.primary_end = t + u64::from(sample.duration);
        }
        primary.stash(sample);
        self.flush(t)
    }

    /// Flushes the open part and segment: the publisher left. The last sample of each track
    /// gets the duration of the one before it. Later pushes fail with [`Error::Finished`]; the
    /// playlist ends (`EXT-X-ENDLIST`, no preload hint).
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

    /// The contribution is lost: keep the timeline's cadence with gap parts.
    ///
    /// Call it periodically (every part target or so) from when the publisher stalls until it
    /// comes back. The first call closes the part and segment in progress at the end of the
    /// last sample (a short segment). Every call then completes as many gap parts of
    /// `part_target` as the wall clock allows — a gap part is complete once its end, on the
    /// program-date-time timeline, is at or before `now_unix_ms` — and groups them into gap
    /// segments of the whole number of parts that fits in `segment_target`. Gap parts are
    /// announced with `gap: true` (see [`Output`]) and listed as `GAP=YES` parts and
    /// `EXT-X-GAP` segments. While the gap lasts the playlist has no preload hint: the next
    /// part number may well be another gap part, which has no body to wait for.
    ///
    /// The gap ends when a session starts: a keyframe from the same publisher (`push`) or
    /// from a new one (after [`Packager::restart`]). Before the first session, and after
    /// [`Packager::finish`], this does nothing.
    pub fn gap(&mut self, now_unix_ms: u64) {
        if self.finished || self.anchor.is_none() {
            return;
        }
        self.close_media(false);
        self.gapping = true;
        let per_segment = (self.segment_target + self.tolerance) / self.part_target.max(1);
        let per_segment = usize::try_from(per_segment.max(1)).unwrap_or(usize::MAX);
        loop {
            let start = self.parts_end;
            let end = start.saturating_add(self.part_target.max(1));
            if self.pdt_at(end) > now_unix_ms {
                break;
            }
            if self.segment.is_none() {
                self.open_segment(start, true);
            }
            self.gap_part(start, end);
            if self
                .segment
                .as_ref()
                .is_some_and(|s| s.parts.len() >= per_segment)
            {
                self.close_segment(end, false);
            }
        }
    }

    /// A new publisher session with `tracks` (possibly different codec parameters,
    /// resolution, or tracks) takes over the stream, with or without a gap before it.
    ///
    /// Numbering continues. The session in progress, if any, is closed as by
    /// [`Packager::gap`], and a gap segment in progress ends at its last part. A new init segment is made (generation
    /// [`Packager::init_generation`] + 1, announced with [`Output::InitChanged`]); the first
    /// segment of the new session carries `EXT-X-DISCONTINUITY` and the new `EXT-X-MAP`.
    /// When its first keyframe arrives, the new session's timestamps are offset so that it
    /// starts on the timeline where the previous media and gap end (every track's `tfdt` keeps
    /// increasing), and its date is anchored to the wall clock then, but never before the end
    /// of the gap. The new session's cues (`push_cue`) use its own DTS.
    ///
    /// Fails, leaving the packager as it was, when `tracks` cannot be packaged or after
    /// [`Packager::finish`].
    pub fn restart(&mut self, tracks: Vec<Track>) -> Result<()> {
        if self.finished {
            return Err(Error::Finished);
        }
        let (init, states, primary) = prepare_tracks(tracks)?;
        let generation = self.init_generation.saturating_add(1);

        self.close_media(false);
        // A gap segment in progress ends at its last gap part: the next part (the one the
        // preload hint names from now on) opens the new session's segment. Left open, the
        // hint would name a part of the gap segment that never comes.
        if self.segment.as_ref().is_some_and(|s| s.gap) {
            self.close_segment(self.parts_end, false);
        }
        let old_ts = self.primary_timescale();
        let new_ts = states[primary].track.timescale;
        self.tracks = states;
        self.primary = primary;
        if old_ts != new_ts {
            self.rescale(old_ts, new_ts);
        }
        self.init = init;
        self.init_generation = generation;
        self.outputs.push_back(Output::InitChanged {
            generation,
            bytes: self.init.clone(),
        });
        self.held.clear();
        self.session = None;
        self.last_primary = None;
        self.gapping = false;
        self.discontinuity_pending = self.anchor.is_some();
        // Cues timed on the old session's clock that never found a date are meaningless now.
        self.cues.take_pending();
        Ok(())
    }

    /// Takes a splice point (SCTE-35 or equivalent) and places it on the program-date-time
    /// timeline: `cue.pts` (90 kHz, the current session's DTS timeline as given to `push`)
    /// maps through the session's first keyframe; `pts: None` means the live edge (the next
    /// sample's date, or `now_unix_ms` when no session is running). A timed cue that arrives
    /// before its session's first keyframe waits for it. Repeats of a cue already placed are
    /// ignored. Cues stay while their date is in the window; see [`Packager::cues`] and
    /// [`MediaPlaylist::dateranges`].
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

    /// The current window as a playlist: completed segments (with parts for the recent
    /// ones), the segment in progress with its completed parts, the preload hint, and the
    /// cues as date ranges. Rendition reports are left for the caller, which knows the
    /// sibling renditions.
    pub fn media_playlist(&self) -> MediaPlaylist {
        let ts = self.primary_timescale();
        let target = self.target_duration();
        let parts_horizon = to_ticks(target * 3, ts);
        let skip = target * 6;
        let parts = |records: &[PartRecord]| -> Vec<PartEntry> {
            records
                .iter()
                .map(|p| PartEntry {
                    uri: part_uri(p.seq),
                    duration: p.duration,
                    independent: p.independent,
                    gap: p.gap,
                })
                .collect()
        };
        // Parts are listed only after the newest gap: hls.js 1.6 takes the first part after
        // the last one it loaded as the next to load even when it lies in another segment,
        // behind the gap and a discontinuity, and then appends it without the new init
        // segment (docs/design/005-contribution-loss.md).
        let after_gap = self
            .segments
            .iter()
            .rposition(|s| s.gap)
            .map_or(0, |i| i + 1);
        let first_generation = self.oldest_init_generation();
        let mut generation = first_generation;
        let mut map_change =
            |g: u32| (std::mem::replace(&mut generation, g) != g).then(|| init_uri(g));
        let segments: Vec<SegmentEntry> = self
            .segments
            .iter()
            .enumerate()
            .map(|(i, s)| SegmentEntry {
                msn: s.msn,
                duration: to_duration(s.end - s.start, ts),
                program_date_time_ms: s.pdt_ms,
                uri: segment_uri(s.msn),
                // Apple: parts more than three target durations old SHOULD go. A complete
                // gap segment is listed whole, without its GAP=YES parts: hls.js tracks a
                // gap fragment once, but retries a gap part at the playhead forever
                // (docs/design/005-contribution-loss.md).
                parts: if i >= after_gap && self.parts_end.saturating_sub(s.end) <= parts_horizon {
                    parts(&s.parts)
                } else {
                    Vec::new()
                },
                discontinuity: s.discontinuity,
                gap: s.gap,
                map_uri: map_change(s.init_generation),
            })
            .collect();
        let partial = self.segment.as_ref().map(|s| PartialSegment {
            msn: s.msn,
            program_date_time_ms: s.pdt_ms,
            parts: parts(&s.parts),
            discontinuity: s.discontinuity,
            map_uri: map_change(s.init_generation),
        });
        let first_date = segments
            .first()
            .map(|s| s.program_date_time_ms)
            .or(partial.as_ref().map(|p| p.program_date_time_ms));
        // No delta updates while a discontinuity is in the window: hls.js 1.6 loses the
        // discontinuity count when it merges a delta update with its previous playlist, and
        // then appends the new session's init without a codec change (fatal when the
        // picture size changed; docs/design/005-contribution-loss.md). Full playlists for
        // those few windows cost a few KB per reload.
        let discontinuity_listed = segments.iter().any(|s| s.discontinuity)
            || partial.as_ref().is_some_and(|p| p.discontinuity);
        MediaPlaylist {
            target_duration: target.as_secs(),
            part_target: self.settings.part_target,
            part_hold_back: self.settings.part_target * 3,
            can_skip_until: (self.settings.window >= skip && !discontinuity_listed).then_some(skip),
            media_sequence: self.first_msn,
            discontinuity_sequence: self.discontinuity_sequence,
            map_uri: init_uri(first_generation),
            segments,
            partial,
            preload_hint: (!self.finished && !self.gapping).then(|| part_uri(self.next_part_seq())),
            rendition_reports: Vec::new(),
            dateranges: first_date.map_or_else(Vec::new, |d| self.cues.dateranges(d)),
            ended: self.finished,
        }
    }

    fn primary_timescale(&self) -> u32 {
        self.tracks[self.primary].track.timescale
    }

    /// The program date time of timeline tick `t`.
    fn pdt_at(&self, t: u64) -> u64 {
        let ts = self.primary_timescale();
        self.anchor.map_or(0, |a| {
            let ms = (i128::from(t) - i128::from(a.time)) * 1000 / i128::from(ts.max(1));
            u64::try_from((i128::from(a.wall_ms) + ms).max(0)).unwrap_or(u64::MAX)
        })
    }

    /// Where a cue that says "now" goes: the next sample's date while a session runs, else
    /// the wall clock (never before the end of the timeline).
    fn live_edge_ms(&self, now_unix_ms: u64) -> u64 {
        match (&self.part, self.last_primary) {
            (Some(_), Some(last)) => {
                let step = self.tracks[self.primary].last_duration.unwrap_or(0);
                self.pdt_at(last + u64::from(step))
            }
            _ if self.anchor.is_some() => now_unix_ms.max(self.pdt_at(self.parts_end)),
            _ => now_unix_ms,
        }
    }

    /// Where the next session starts on the timeline: after the last part (real or gap) and
    /// after every track's media.
    fn resume_point(&self) -> u64 {
        self.parts_end.max(self.media_end)
    }

    /// Closes the session's media, if it is being cut: the last sample of each track gets the
    /// duration of the one before it, then the part and segment close at the end of the
    /// primary track's media. `complete` says the segment may count towards the peak
    /// bitrate (a segment cut short by a lost contribution would inflate it).
    fn close_media(&mut self, complete: bool) {
        if self.part.is_none() {
            return;
        }
        for (i, track) in self.tracks.iter_mut().enumerate() {
            if let Some(mut p) = track.pending.take() {
                p.duration = track
                    .last_duration
                    .unwrap_or(match track.track.kind() {
                        TrackKind::Video => track.track.timescale / 30,
                        TrackKind::Audio => 1024,
                    })
                    .max(1);
                if i == self.primary {
                    self.primary_end = p.decode_time + u64::from(p.duration);
                }
                track.ready.push_back(p);
            }
        }
        // Box encoding of samples already accepted cannot fail short of a >2 GiB chunk;
        // if it does, the part still closes so the playlist stays consistent.
        let _ = self.flush(u64::MAX);
        let end = self.primary_end;
        self.close_part(end);
        self.close_segment(end, complete);
        let primary_ts = u128::from(self.primary_timescale());
        for track in &mut self.tracks {
            let ts = u128::from(track.track.timescale.max(1));
            let end = (u128::from(track.end) * primary_ts).div_ceil(ts);
            self.media_end = self.media_end.max(u64::try_from(end).unwrap_or(u64::MAX));
            track.running = None;
        }
        self.media_end = self.media_end.max(end);
        self.last_primary = None;
        self.discontinuity_pending = true;
    }

    /// Converts every stored timeline value when a restart changes the primary timescale.
    fn rescale(&mut self, from: u32, to: u32) {
        let r = |t: u64| {
            let t = u128::from(t) * u128::from(to) / u128::from(from.max(1));
            u64::try_from(t).unwrap_or(u64::MAX)
        };
        for s in &mut self.segments {
            s.start = r(s.start);
            s.end = r(s.end);
        }
        if let Some(s) = &mut self.segment {
            s.start = r(s.start);
        }
        if let Some(a) = &mut self.anchor {
            a.time = r(a.time);
        }
        self.primary_end = r(self.primary_end);
        self.parts_end = r(self.parts_end);
        self.media_end = r(self.media_end);
        self.segment_target = to_ticks(self.settings.segment_target, to);
        self.part_target = to_ticks(self.settings.part_target, to);
        self.tolerance = to_ticks(CUT_TOLERANCE, to);
        self.window = to_ticks(self.settings.window, to);
    }

    fn open_segment(&mut self, t: u64, gap: bool) {
        let discontinuity = !gap && std::mem::take(&mut self.discontinuity_pending);
        if !gap {
            self.map_generation = self.init_generation;
        }
        self.segment = Some(OpenSegment {
            msn: self.next_msn,
            start: t,
            pdt_ms: self.pdt_at(t),
            parts: Vec::new(),
            bytes: 0,
            needs_styp: true,
            gap,
            discontinuity,
            init_generation: self.map_generation,
        });
        self.next_msn += 1;
    }

    fn open_part(&mut self, t: u64, independent: bool) {
        let Some(segment) = &self.segment else {
            return;
        };
        let part = OpenPart {
            seq: self.next_seq,
            index: u32::try_from(segment.parts.len()).unwrap_or(u32::MAX),
            start: t,
            independent,
        };
        self.next_seq += 1;
        self.outputs.push_back(Output::PartStarted {
            seq: part.seq,
            msn: segment.msn,
            index: part.index,
            independent,
            gap: false,
        });
        self.part = Some(part);
    }

    /// Moves the anchor earlier if the primary sample at timeline tick `time`, taken at
    /// `now_unix_ms`, arrived earlier than the anchor dates it.
    fn settle_anchor(&mut self, now_unix_ms: u64, time: u64) {
        let ts = i128::from(self.primary_timescale().max(1));
        let (Some(anchor), Some(session)) = (self.anchor.as_mut(), self.session.as_mut()) else {
            return;
        };
        let media_ms = (i128::from(time) - i128::from(anchor.time)) * 1000 / ts;
        let Ok(candidate) = u64::try_from(i128::from(now_unix_ms) - media_ms) else {
            return;
        };
        if candidate < anchor.wall_ms {
            anchor.wall_ms = candidate;
            session.wall_ms = candidate;
            // The open segment was dated with the old anchor.
            let anchor_time = anchor.time;
            if let Some(seg) = self.segment.as_mut() {
                if seg.start == anchor_time {
                    seg.pdt_ms = candidate;
                }
            }
        }
    }

    fn close_part(&mut self, end: u64) {
        let (Some(part), Some(segment)) = (self.part.take(), self.segment.as_mut()) else {
            return;
        };
        self.anchor_settling = false;
        let duration = to_duration(
            end.saturating_sub(part.start),
            self.tracks[self.primary].track.timescale,
        );
        segment.parts.push(PartRecord {
            seq: part.seq,
            duration,
            independent: part.independent,
            gap: false,
        });
        self.parts_end = end;
        self.outputs.push_back(Output::PartCompleted {
            seq: part.seq,
            msn: segment.msn,
            index: part.index,
            duration,
            independent: part.independent,
            gap: false,
        });
    }

    /// Announces and completes one gap part `start..end` in the open (gap) segment.
    fn gap_part(&mut self, start: u64, end: u64) {
        let ts = self.primary_timescale();
        let Some(segment) = self.segment.as_mut() else {
            return;
        };
        let seq = self.next_seq;
        self.next_seq += 1;
        let index = u32::try_from(segment.parts.len()).unwrap_or(u32::MAX);
        let duration = to_duration(end - start, ts);
        segment.parts.push(PartRecord {
            seq,
            duration,
            independent: false,
            gap: true,
        });
        self.parts_end = end;
        self.outputs.push_back(Output::PartStarted {
            seq,
            msn: segment.msn,
            index,
            independent: false,
            gap: true,
        });
        self.outputs.push_back(Output::PartCompleted {
            seq,
            msn: segment.msn,
            index,
            duration,
            independent: false,
            gap: true,
        });
    }

    /// Closes the open segment at `end`. `count_bandwidth`: whether its bitrate may raise the
    /// peak estimate.
    fn close_segment(&mut self, end: u64, count_bandwidth: bool) {
        let Some(segment) = self.segment.take() else {
            return;
        };
        let ts = self.primary_timescale();
        let duration = to_duration(end.saturating_sub(segment.start), ts);
        let parts = match (segment.parts.first(), segment.parts.last()) {
            (Some(first), Some(last)) => first.seq..last.seq + 1,
            _ => self.next_seq..self.next_seq,
        };
        self.outputs.push_back(Output::SegmentCompleted {
            msn: segment.msn,
            duration,
            parts,
            gap: segment.gap,
        });
        self.max_segment = self.max_segment.max(duration);
        let bits = u128::from(segment.bytes) * 8 * 1_000_000_000;
        if let Some(bps) = bits
            .checked_div(duration.as_nanos())
            .filter(|_| count_bandwidth && !segment.gap)
        {
            let bps = u64::try_from(bps).unwrap_or(u64::MAX);
            self.peak_bps = Some(self.peak_bps.map_or(bps, |p| p.max(bps)));
        }
        self.segments.push_back(SegmentRecord {
            msn: segment.msn,
            start: segment.start,
            end,
            pdt_ms: segment.pdt_ms,
            parts: segment.parts,
            gap: segment.gap,
            discontinuity: segment.discontinuity,
            init_generation: segment.init_generation,
        });

        let before = self.first_msn;
        while self
            .segments
            .front()
            .is_some_and(|s| end.saturating_sub(s.end) > self.window)
        {
            if self.segments.pop_front().is_some_and(|s| s.discontinuity) {
                // RFC 8216bis 4.4.3.3: counts the discontinuities that left the playlist.
                self.discontinuity_sequence += 1;
            }
        }
        self.first_msn = self.segments.front().map_or(self.next_msn, |s| s.msn);
        if self.first_msn != before {
            if let Some(first) = self.segments.front() {
                self.cues.evict_before(first.pdt_ms);
            }
            self.outputs.push_back(Output::WindowAdvanced {
                first_msn: self.first_msn,
            });
        }
    }

    /// Writes one chunk into the open part: every ready primary sample, and the ready samples
    /// of the other tracks that start before `edge` (a primary decode time). Samples of other
    /// tracks at or after the edge wait, so a part's audio does not run past its video.
    fn flush(&mut self, edge: u64) -> Result<()> {
        let Some(part) = &self.part else {
            return Ok(());
        };
        let primary_ts = u128::from(self.primary_timescale());
        let mut taken: Vec<(u32, Vec<ReadySample>)> = Vec::new();
        for (i, track) in self.tracks.iter_mut().enumerate() {
            let ts = u128::from(track.track.timescale);
            let n = if i == self.primary || edge == u64::MAX {
                track.ready.len()
            } else {
                track
                    .ready
                    .iter()
                    .take_while(|s| u128::from(s.decode_time) * primary_ts < u128::from(edge) * ts)
                    .count()
            };
            if n > 0 {
                let samples: Vec<ReadySample> = track.ready.drain(..n).collect();
                if let Some(last) = samples.last() {
                    track.end = track.end.max(last.decode_time + u64::from(last.duration));
                }
                taken.push((track.id, samples));
            }
        }
        if taken.is_empty() {
            return Ok(());
        }
        let runs: Vec<TrackRun<'_>> = taken
            .iter()
            .map(|(track_id, samples)| TrackRun {
                track_id: *track_id,
                samples,
            })
            .collect();
        let mut out = Vec::new();
        if let Some(segment) = self.segment.as_mut().filter(|s| s.needs_styp) {
            cmaf::write_styp(&mut out)?;
            segment.needs_styp = false;
        }
        cmaf::write_chunk(self.chunk_sequence, &runs, &mut out)?;
        self.chunk_sequence = self.chunk_sequence.wrapping_add(1).max(1);
        if let Some(segment) = self.segment.as_mut() {
            segment.bytes += out.len() as u64;
        }
        self.outputs.push_back(Output::Chunk {
            seq: part.seq,
            bytes: Bytes::from(out),
        });
        Ok(())
    }
}

/// Checks `tracks` and writes their init segment: (init, states, primary index).
fn prepare_tracks(tracks: Vec<Track>) -> Result<(Bytes, Vec<TrackState>, usize)> {
    if tracks.is_empty() {
        return Err(Error::NoTracks);
    }
    let mut init = Vec::new();
    cmaf::write_init(&tracks, &mut init)?;
    let primary = tracks
        .iter()
        .position(|t| t.kind() == TrackKind::Video)
        .unwrap_or(0);
    let states = tracks
        .into_iter()
        .enumerate()
        .map(|(i, track)| {
            if track.timescale == 0 {
                return Err(Error::InvalidTrack {
                    track: i,
                    reason: "timescale is 0".to_owned(),
                });
            }
            Ok(TrackState {
                track,
                id: cmaf::track_id(i)?,
                offset: 0,
                pending: None,
                ready: VecDeque::new(),
                last_dts: None,
                running: None,
                last_duration: None,
                end: 0,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((Bytes::from(init), states, primary))
}

impl TrackState {
    /// Files a sample: ready at once when its duration is known, else pending until the
    /// track's next sample arrives.
    fn stash(&mut self, sample: ReadySample) {
        if sample.duration > 0 {
            self.running = Some(sample.decode_time + u64::from(sample.duration));
            self.last_duration = Some(sample.duration);
            self.ready.push_back(sample);
        } else {
            self.running = None;
            self.pending = Some(sample);
        }
    }

    fn timescale_i64(&self) -> i64 {
        i64::from(self.track.timescale)
    }
}

fn to_ticks(d: Duration, timescale: u32) -> u64 {
    let ticks = d.as_nanos() * u128::from(timescale) / 1_000_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

fn to_duration(ticks: u64, timescale: u32) -> Duration {
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(timescale.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmaf::tests::{audio_track, video_track};
    use mp4_atom::{Any, Decode};

    const T0: u64 = 1_795_622_400_000;

    fn settings(segment_ms: u64, part_ms: u64) -> Settings {
        Settings {
            segment_target: Duration::from_millis(segment_ms),
            part_target: Duration::from_millis(part_ms),
            window: Duration::from_secs(30),
        }
    }

    fn video(i: i64, gop: i64) -> Sample {
        Sample {
            track: 0,
            dts: i * 3000,
            cts_offset: 0,
            keyframe: i % gop == 0,
            duration: None,
            data: Bytes::from(vec![0xaa; 100]),
        }
    }

    fn audio(track: usize, i: i64) -> Sample {
        Sample {
            track,
            dts: i * 1024,
            cts_offset: 0,
            keyframe: true,
            duration: Some(1024),
            data: Bytes::from(vec![0x55; 10]),
        }
    }

    #[test]
    fn a_burst_at_start_dates_the_stream_by_its_earliest_arrival() {
        // A demuxer that held 300 ms of video until it knew every track hands it over at
        // once (at T0 + 300); the frames after it arrive in real time.
        let mut p = Packager::new(settings(2000, 500), vec![video_track()], 0, 0).unwrap();
        for i in 0..9 {
            p.push(T0 + 300, video(i, 60)).unwrap();
        }
        for i in 9..40 {
            p.push(T0 + (i as u64) * 1000 / 30, video(i, 60)).unwrap();
        }
        let partial = p.media_playlist().partial.unwrap();
        assert_eq!(partial.program_date_time_ms, T0);
        // Once a part is out, the date no longer moves, even for an early sample.
        p.push(T0 + 1000, video(40, 60)).unwrap();
        p.push(T0 + 1000, video(41, 60)).unwrap();
        assert_eq!(p.media_playlist().partial.unwrap().program_date_time_ms, T0);
    }

    /// Pushes `frames` of 30 fps video (keyframe every `gop`) and the AAC frames that fall
    /// between them, interleaved by time as a muxer would.
    fn feed(p: &mut Packager, frames: i64, gop: i64, with_audio: bool) {
        let mut a = 0;
        for i in 0..frames {
            let t_ms = i * 1000 / 30;
            while with_audio && a * 1024 * 1000 / 48_000 < t_ms {
                p.push(T0 + (a * 1024 * 1000 / 48_000) as u64, audio(1, a))
                    .unwrap();
                a += 1;
            }
            p.push(T0 + t_ms as u64, video(i, gop)).unwrap();
        }
    }

    fn drain(p: &mut Packager) -> Vec<Output> {
        std::iter::from_fn(|| p.poll_output()).collect()
    }

    fn completed_parts(out: &[Output]) -> Vec<(u64, u32, Duration, bool)> {
        out.iter()
            .filter_map(|o| match o {
                Output::PartCompleted {
                    msn,
                    index,
                    duration,
                    independent,
                    ..
                } => Some((*msn, *index, *duration, *independent)),
                _ => None,
            })
            .collect()
    }

    fn completed_segments(out: &[Output]) -> Vec<(u64, Duration, Range<u64>)> {
        out.iter()
            .filter_map(|o| match o {
                Output::SegmentCompleted {
                    msn,
                    duration,
                    parts,
                    ..
                } => Some((*msn, *duration, parts.clone())),
                _ => None,
            })
            .collect()
    }

    /// Every chunk decoded: (part seq, track id, tfdt, sample count).
    fn chunk_runs(out: &[Output]) -> Vec<(u64, u32, u64, usize)> {
        let mut runs = Vec::new();
        for o in out {
            let Output::Chunk { seq, bytes } = o else {
                continue;
            };
            let mut buf = bytes.as_ref();
            while !buf.is_empty() {
                if let Any::Moof(moof) = Any::decode(&mut buf).unwrap() {
                    for traf in moof.traf {
                        runs.push((
                            *seq,
                            traf.tfhd.track_id,
                            traf.tfdt.unwrap().base_media_decode_time,
                            traf.trun[0].samples.len(),
                        ));
                    }
                }
            }
        }
        runs
    }

    #[test]
    fn cuts_2s_segments_and_500ms_parts_on_keyframes() {
        let mut p = Packager::new(
            settings(2000, 500),
            vec![video_track(), audio_track()],
            0,
            0,
        )
        .unwrap();
        feed(&mut p, 181, 30, true);
        let out = drain(&mut p);
        let segments = completed_segments(&out);
        assert_eq!(
            segments,
            vec![
                (0, Duration::from_secs(2), 0..4),
                (1, Duration::from_secs(2), 4..8),
                (2, Duration::from_secs(2), 8..12),
            ]
        );
        let parts = completed_parts(&out);
        assert_eq!(parts.len(), 12);
        for (n, (msn, index, duration, independent)) in parts.iter().enumerate() {
            assert_eq!(*msn, n as u64 / 4);
            assert_eq!(*index, n as u32 % 4);
            assert_eq!(*duration, Duration::from_millis(500));
            // Keyframes every second: parts 0 and 2 of each segment start on one.
            assert_eq!(*independent, index % 2 == 0, "part {n}");
        }
        assert_eq!(p.next_part_seq(), 12);
        assert_eq!(p.next_msn(), 3);
        assert_eq!(p.target_duration(), Duration::from_secs(2));
    }

    #[test]
    fn cuts_1s_segments_and_200ms_parts() {
        let mut p = Packager::new(
            settings(1000, 200),
            vec![video_track(), audio_track()],
            0,
            0,
        )
        .unwrap();
        feed(&mut p, 91, 30, true);
        let out = drain(&mut p);
        let segments = completed_segments(&out);
        assert_eq!(segments.len(), 3);
        for (msn, duration, parts) in &segments {
            assert_eq!(*duration, Duration::from_secs(1));
            assert_eq!(parts.end - parts.start, 5, "segment {msn}");
        }
        for (_, index, duration, independent) in completed_parts(&out) {
            assert_eq!(duration, Duration::from_millis(200));
            assert_eq!(independent, index == 0);
        }
        assert_eq!(p.target_duration(), Duration::from_secs(1));
    }

    #[test]
    fn millisecond_timestamps_still_cut_on_target() {
        // RTMP-style: DTS rounded to whole milliseconds, then scaled to 90 kHz.
        let mut p = Packager::new(settings(2000, 500), vec![video_track()], 0, 0).unwrap();
        for i in 0..121 {
            let ms = (i * 1000 + 15) / 30;
            let mut s = video(i, 60);
            s.dts = ms * 90;
            p.push(T0 + ms as u64, s).unwrap();
        }
        let out = drain(&mut p);
        let parts = completed_parts(&out);
        assert_eq!(parts.len(), 8);
        for (_, _, d, _) in &parts {
            let ms = d.as_millis();
            assert!((499..=501).contains(&ms), "{parts:?}");
        }
        assert_eq!(completed_segments(&out).len(), 2);
    }

    #[test]
    fn parts_never_exceed_the_target_at_25fps() {
        let mut p = Packager::new(settings(2000, 500), vec![video_track()], 0, 0).unwrap();
        for i in 0..101 {
            let mut s = video(i, 50);
            s.dts = i * 3600;
            p.push(T0, s).unwrap();
        }
        let out = drain(&mut p);
        for (_, _, d, _) in completed_parts(&out) {
            assert!(d <= Duration::from_millis(500), "{d:?}");
        }
        assert_eq!(
            completed_segments(&out)
                .iter()
                .map(|s| s.1)
                .collect::<Vec<_>>(),
            vec![Duration::from_secs(2), Duration::from_secs(2)]
        );
    }

    #[test]
    fn long_gops_make_long_segments_and_raise_the_target_duration() {
        let mut p = Packager::new(
            settings(2000, 500),
            vec![video_track(), audio_track()],
            0,
            0,
        )
        .unwrap();
        feed(&mut p, 271, 90, true);
        let out = drain(&mut p);
        let segments = completed_segments(&out);
        assert_eq!(segments.len(), 3);
        assert!(segments.iter().all(|s| s.1 == Duration::from_secs(3)));
        assert_eq!(p.target_duration(), Duration::from_secs(3));
        assert_eq!(p.media_playlist().target_duration, 3);
        // Parts keep their cadence; only a segment's first part is independent.
        let parts = completed_parts(&out);
        assert_eq!(parts.len(), 18);
        assert!(parts.iter().all(|p| p.3 == (p.1 == 0)));
    }

    #[test]
    fn audio_only_parts_are_all_independent() {
        let mut p = Packager::new(settings(2000, 500), vec![audio_track()], 0, 0).unwrap();
        for a in 0..300 {
            p.push(T0, audio(0, a)).unwrap();
        }
        p.finish();
        let out = drain(&mut p);
        let parts = completed_parts(&out);
        assert!(parts.iter().all(|p| p.3));
        for (_, _, d, _) in &parts {
            assert!(*d <= Duration::from_millis(505), "{d:?}");
        }
        let segments = completed_segments(&out);
        assert_eq!(segments.len(), 4, "{segments:?}");
        for (_, d, _) in &segments[..3] {
            let ms = d.as_millis();
            assert!((1995..=2030).contains(&ms), "{d:?}");
        }
        // 300 frames of 1024: every one written exactly once, end to end.
        let runs = chunk_runs(&out);
        assert_eq!(runs.iter().map(|r| r.3).sum::<usize>(), 300);
        assert_eq!(runs.first().unwrap().2, 0);
    }

    #[test]
    fn drops_everything_before_the_first_keyframe() {
        let mut p = Packager::new(
            settings(2000, 500),
            vec![video_track(), audio_track()],
            0,
            0,
        )
        .unwrap();
        // Audio, then three non-key frames, then audio that plays before (6) and after (7)
        // the keyframe at 133 ms: nothing comes out yet.
        p.push(T0, audio(1, 0)).unwrap();
        for i in 1..4 {
            p.push(T0, video(i, 1000)).unwrap();
        }
        p.push(T0, audio(1, 6)).unwrap();
        p.push(T0, audio(1, 7)).unwrap();
        assert_eq!(p.poll_output(), None);
        assert!(p.media_playlist().segments.is_empty());
        let mut key = video(4, 1000);
        key.keyframe = true;
        p.push(T0 + 133, key).unwrap();
        assert_eq!(
            p.poll_output(),
            Some(Output::PartStarted {
                seq: 0,
                msn: 0,
                index: 0,
                independent: true,
                gap: false,
            })
        );
        p.push(T0 + 166, video(5, 1000)).unwrap();
        let out = drain(&mut p);
        let runs = chunk_runs(&out);
        // The first chunk: the keyframe (tfdt 12000) and only the audio that plays after it.
        assert_eq!(runs, vec![(0, 1, 12_000, 1), (0, 2, 7 * 1024, 1)]);
        // PDT is anchored at the keyframe.
        assert_eq!(
            p.media_playlist().partial.unwrap().program_date_time_ms,
            T0 + 133
        );
    }

    #[test]
    fn non_monotonic_dts_is_an_error_and_changes_nothing() {
        let mut p = Packager::new(
            settings(2000, 500),
            vec![video_track(), audio_track()],
            0,
            0,
        )
        .unwrap();
        feed(&mut p, 10, 30, true);
        drain(&mut p);
        let err = p.push(T0, video(9, 30)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::NonMonotonicDts {
                    track: 0,
                    dts: 27_000,
                    previous: 27_000
                }
            ),
            "{err}"
        );
        let err = p.push(T0, video(3, 30)).unwrap_err();
        assert!(err.to_string().contains("does not follow"), "{err}");
        assert_eq!(p.poll_output(), None);
        // The stream goes on.
        p.push(T0, video(10, 30)).unwrap();
        assert!(matches!(
            p.poll_output(),
            Some(Output::Chunk { seq: 0, .. })
        ));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let mut p = Packager::new(settings(2000, 500), vec![video_track()], 0, 0).unwrap();
        let mut s = video(0, 1);
        s.track = 3;
        assert!(matches!(
            p.push(T0, s),
            Err(Error::UnknownTrack {
                track: 3,
                tracks: 1
            })
        ));
        p.push(T0, video(0, 1)).unwrap();
        let mut huge = video(1, 1);
        huge.dts = i64::MAX;
        assert!(matches!(
            p.push(T0, huge),
            Err(Error::TimestampOutOfRange { .. })
        ));
        let mut empty = video(1, 1);
        empty.data = Bytes::new();
        p.push(T0, empty).unwrap();
        p.finish();
        assert!(matches!(p.push(T0, video(2, 1)), Err(Error::Finished)));
        assert!(Packager::new(settings(2000, 500), vec![], 0, 0).is_err());
        assert!(Packager::new(settings(500, 500), vec![video_track()], 0, 0).is_err());
    }

    #[test]
    fn negative_dts_is_shifted_onto_a_positive_timeline() {
        let mut p = Packager::new(settings(2000, 500), vec![video_track()], 0, 0).unwrap();
        let mut s = video(0, 30);
        s.dts = -6000;
        p.push(T0, s).unwrap();
        let mut s = video(1, 30);
        s.dts = -3000;
        p.push(T0, s).unwrap();
        let runs = chunk_runs(&drain(&mut p));
        assert_eq!(runs, vec![(0, 1, 84_000, 1)]);
    }

    #[test]
    fn outputs_keep_their_order() {
        let mut p = Packager::new(
            settings(1000, 200),
            vec![video_track(), audio_track()],
            7,
            100,
        )
        .unwrap();
        feed(&mut p, 95, 30, true);
        p.finish();
        let out = drain(&mut p);
        let mut open: Option<u64> = None;
        let mut expect_styp = true;
        let mut last_msn = None;
        for o in &out {
            match o {
                Output::PartStarted {
                    seq, msn, index, ..
                } => {
                    assert_eq!(open, None, "{o:?} while a part is open");
                    open = Some(*seq);
                    expect_styp = *index == 0;
                    assert!(*msn >= 7);
                    last_msn = Some(*msn);
                }
                Output::Chunk { seq, bytes } => {
                    assert_eq!(open, Some(*seq));
                    assert_eq!(&bytes[4..8] == b"styp", expect_styp, "part {seq}");
                    expect_styp = false;
                }
                Output::PartCompleted { seq, .. } => {
                    assert_eq!(open.take(), Some(*seq));
                }
                Output::SegmentCompleted { msn, .. } => {
                    assert_eq!(open, None);
                    assert_eq!(Some(*msn), last_msn);
                }
                Output::WindowAdvanced { .. } | Output::InitChanged { .. } => {}
            }
        }
        assert_eq!(open, None);
        let parts = completed_parts(&out);
        assert_eq!(
            out.iter().find_map(|o| match o {
                Output::PartStarted { seq, .. } => Some(*seq),
                _ => None,
            }),
            Some(100)
        );
        assert_eq!(completed_segments(&out).last().unwrap().0, 10);
        // The final part ends with the last frame (its duration copied from the one before).
        assert_eq!(parts.last().unwrap().2, to_duration(5 * 3000, 90_000));
        assert!(p.media_playlist().ended);
        assert_eq!(p.media_playlist().preload_hint, None);
    }

    #[test]
    fn every_sample_lands_in_exactly_one_part_without_crossing_its_end() {
        let mut p = Packager::new(
            settings(2000, 500),
            vec![video_track(), audio_track()],
            0,
            0,
        )
        .unwrap();
        feed(&mut p, 150, 30, true);
        p.finish();
        let out = drain(&mut p);
        let runs = chunk_runs(&out);
        let video: usize = runs.iter().filter(|r| r.1 == 1).map(|r| r.3).sum();
        let audio: usize = runs.iter().filter(|r| r.1 == 2).map(|r| r.3).sum();
        assert_eq!(video, 150);
        let pushed = (0..).take_while(|a| a * 1024 * 1000 / 48_000 < 149 * 1000 / 30);
        assert_eq!(audio, pushed.count());
        // Audio in part n starts before part n+1's video does.
        for seq in 0..9u64 {
            let next_video = runs.iter().find(|r| r.0 == seq + 1 && r.1 == 1).unwrap().2;
            for r in runs.iter().filter(|r| r.0 == seq && r.1 == 2) {
                assert!(r.2 * 90_000 < next_video * 48_000, "part {seq}: {r:?}");
            }
        }
    }

    #[test]
    fn window_evicts_old_segments() {
        let s = Settings {
            segment_target: Duration::from_secs(2),
            part_target: Duration::from_millis(500),
            window: Duration::from_secs(6),
        };
        let mut p = Packager::new(s, vec![video_track(), audio_track()], 0, 0).unwrap();
        feed(&mut p, 20 * 30 + 1, 60, true);
        let out = drain(&mut p);
        let advanced: Vec<u64> = out
            .iter()
            .filter_map(|o| match o {
                Output::WindowAdvanced { first_msn } => Some(*first_msn),
                _ => None,
            })
            .collect();
        assert_eq!(advanced, (1..=6).collect::<Vec<_>>());
        assert_eq!(p.first_msn(), 6);
        let playlist = p.media_playlist();
        assert_eq!(playlist.media_sequence, 6);
        let msns: Vec<u64> = playlist.segments.iter().map(|s| s.msn).collect();
        assert_eq!(msns, vec![6, 7, 8, 9]);
        // Window shorter than 6 target durations: no delta updates offered.
        assert_eq!(playlist.can_skip_until, None);
    }

    #[test]
    fn playlist_lists_recent_parts_dates_and_the_hint() {
        let mut p = Packager::new(
            settings(2000, 500),
            vec![video_track(), audio_track()],
            0,
            0,
        )
        .unwrap();
        // 9 s + 2 parts of the next segment + one frame into the third.
        feed(&mut p, 10 * 30 + 31, 60, true);
        let pl = p.media_playlist();
        assert_eq!(pl.segments.len(), 5);
        assert_eq!(pl.media_sequence, 0);
        assert_eq!(pl.can_skip_until, Some(Duration::from_secs(12)));
        assert_eq!(pl.part_hold_back, Duration::from_millis(1500));
        let with_parts: Vec<u64> = pl
            .segments
            .iter()
            .filter(|s| !s.parts.is_empty())
            .map(|s| s.msn)
            .collect();
        // 6 s of parts history behind the live edge (10.5 s): segments ending at >= 4.5 s.
        assert_eq!(with_parts, vec![2, 3, 4]);
        for (i, s) in pl.segments.iter().enumerate() {
            assert_eq!(s.program_date_time_ms, T0 + 2000 * i as u64);
            assert_eq!(s.uri, format!("seg{i}.m4s"));
        }
        let partial = pl.partial.unwrap();
        assert_eq!(partial.msn, 5);
        assert_eq!(partial.program_date_time_ms, T0 + 10_000);
        assert_eq!(partial.parts.len(), 2);
        assert_eq!(partial.parts[0].uri, "part20.m4s");
        assert_eq!(pl.preload_hint.as_deref(), Some("part22.m4s"));
        assert_eq!(p.next_part_seq(), 22);
        assert_eq!(p.parts_done(), 2);
        assert!(p.bandwidth_estimate().unwrap() > 30 * 100 * 8);
        assert_eq!(p.codecs(), "avc1.42c01e,mp4a.40.2");
        assert_eq!(p.resolution(), Some((320, 240)));
    }

    /// Pushes `frames` of 30 fps video (keyframe every `gop`) with AAC interleaved, for a
    /// session whose timestamps start at `dts0_ms` and whose first frame arrives at `wall0`.
    fn feed_session(p: &mut Packager, frames: i64, gop: i64, dts0_ms: i64, wall0: u64) {
        let mut a = 0;
        for i in 0..frames {
            let t_ms = i * 1000 / 30;
            while a * 1024 * 1000 / 48_000 < t_ms {
                let mut s = audio(1, a);
                s.dts += dts0_ms * 48;
                p.push(wall0 + (a * 1024 * 1000 / 48_000) as u64, s)
                    .unwrap();
                a += 1;
            }
            let mut s = video(i, gop);
            s.dts += dts0_ms * 90;
            p.push(wall0 + t_ms as u64, s).unwrap();
        }
    }

    fn gap_parts(out: &[Output]) -> Vec<u64> {
        out.iter()
            .filter_map(|o| match o {
                Output::PartCompleted { seq, gap: true, .. } => Some(*seq),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn gap_keeps_the_cadence_with_wall_time() {
        let mut p = Packager::new(
            settings(2000, 500),
            vec![video_track(), audio_track()],
            0,
            0,
        )
        .unwrap();
        // 2.5 s of media (the last frame arrives at 2467 ms), then the publisher stalls.
        feed(&mut p, 75, 30, true);
        drain(&mut p);
        p.gap(T0 + 2467 + 1500);
        let out = drain(&mut p);
        // The segment in progress closes at the end of the last frame: 2.0..2.5 s.
        let segments = completed_segments(&out);
        assert_eq!(segments, vec![(1, Duration::from_millis(500), 4..5)]);
        // Gap parts 2.5..3.0 and 3.0..3.5 have ended by 3.967 s; 3.5..4.0 has not.
        assert_eq!(gap_parts(&out), vec![5, 6]);
        for pair in out[out.len() - 4..].chunks(2) {
            assert!(matches!(
                pair,
                [
                    Output::PartStarted { gap: true, seq: a, .. },
                    Output::PartCompleted { gap: true, seq: b, duration, .. },
                ] if a == b && *duration == Duration::from_millis(500)
            ));
        }
        assert!(!out
            .iter()
            .any(|o| matches!(o, Output::Chunk { seq, .. } if *seq >= 5)));
        assert!(p.in_gap());
        assert_eq!(p.media_playlist().preload_hint, None);

        // Never ahead of the wall clock, however often it is called.
        p.gap(T0 + 3999);
        assert_eq!(drain(&mut p), vec![]);
        p.gap(T0 + 6000);
        let out = drain(&mut p);
        assert_eq!(gap_parts(&out), vec![7, 8, 9, 10, 11]);
        // Four gap parts make a 2 s gap segment; the next one is in progress.
        assert_eq!(
            completed_segments(&out),
            vec![(2, Duration::from_secs(2), 5..9)]
        );
        assert!(out.iter().any(|o| matches!(
            o,
            Output::SegmentCompleted {
                msn: 2,
                gap: true,
                ..
            }
        )));
        assert_eq!(p.next_part_seq(), 12);
        assert_eq!((p.next_msn(), p.parts_done()), (3, 3));

        let pl = p.media_playlist();
        let dates: Vec<u64> = pl.segments.iter().map(|s| s.program_date_time_ms).collect();
        assert_eq!(dates, vec![T0, T0 + 2000, T0 + 2500]);
        assert!(pl.segments[2].gap && !pl.segments[1].gap);
        assert!(pl.segments[2].parts.iter().all(|p| p.gap && !p.independent));
        let partial = pl.partial.as_ref().unwrap();
        assert_eq!(partial.program_date_time_ms, T0 + 4500);
        assert!(partial.parts.iter().all(|p| p.gap));
        assert_eq!(pl.preload_hint, None);
        let text = pl.render(false);
        assert!(
            text.contains("#EXT-X-GAP\n#EXTINF:2.00000,\nseg2.m4s\n"),
            "{text}"
        );
        assert!(text.contains("URI=\"part11.m4s\",GAP=YES\n"), "{text}");
        assert!(!text.contains("PRELOAD-HINT"), "{text}");
        // Gap segments count for nothing in the peak bitrate.
        assert!(p.bandwidth_estimate().is_some());

        // The stream ends mid-gap: the gap segment closes, the playlist ends.
        p.finish();
        let out = drain(&mut p);
        assert_eq!(
            completed_segments(&out),
            vec![(3, Duration::from_millis(1500), 9..12)]
        );
        let text = p.media_playlist().render(false);
        assert!(text.ends_with("#EXT-X-ENDLIST\n"), "{text}");
        assert!(!text.contains("PRELOAD-HINT"));
    }

    #[test]
    fn gap_before_any_media_does_nothing() {
        let mut p = Packager::new(settings(2000, 500), vec![video_track()], 0, 0).unwrap();
        p.gap(T0 + 10_000);
        assert_eq!(p.poll_output(), None);
        assert!(!p.in_gap());
        assert_eq!(
            p.media_playlist().preload_hint.as_deref(),
            Some("part0.m4s")
        );
    }

    #[test]
    fn restart_with_new_tracks_continues_the_timeline() {
        let s = Settings {
            segment_target: Duration::from_secs(2),
            part_target: Duration::from_millis(500),
            window: Duration::from_secs(6),
        };
        let mut p = Packager::new(s, vec![video_track(), audio_track()], 10, 100).unwrap();
        feed(&mut p, 75, 30, true);
        p.gap(T0 + 5000);
        let before = drain(&mut p);
        let old_runs = chunk_runs(&before);
        let audio_end = old_runs
            .iter()
            .filter(|r| r.1 == 2)
            .map(|r| r.2)
            .max()
            .unwrap();
        assert_eq!(gap_parts(&before).len(), 5, "2.5..5.0 s");

        // A new publisher, at a new resolution, with its own clock.
        let mut video = video_track();
        if let Codec::H264(c) = &mut video.codec {
            c.width = 640;
            c.height = 360;
        }
        p.restart(vec![video, audio_track()]).unwrap();
        assert_eq!(p.init_generation(), 1);
        // The gap segment in progress ends at its last gap part (4.5..5.0 s) …
        assert!(matches!(
            p.poll_output(),
            Some(Output::SegmentCompleted { msn: 13, gap: true, parts, .. }) if parts == (109..110)
        ));
        let Some(Output::InitChanged {
            generation: 1,
            bytes,
        }) = p.poll_output()
        else {
            panic!("no InitChanged");
        };
        assert_eq!(bytes, p.init_segment());
        assert_eq!(p.resolution(), Some((640, 360)));
        // … so the hint, no longer in a gap, names the part that opens the new session's
        // segment, and no partial segment claims it.
        let pl = p.media_playlist();
        assert_eq!(pl.preload_hint.as_deref(), Some("part110.m4s"));
        assert!(pl.partial.is_none());
        assert!(pl.segments.last().is_some_and(|s| s.msn == 13 && s.gap));

        // Its first keyframe arrives at 5.2 s wall time, with DTS from 1000 s.
        feed_session(&mut p, 30 * 2 + 1, 30, 1_000_000, T0 + 5200);
        let out = drain(&mut p);
        let runs = chunk_runs(&out);
        // The new session starts where the gap ends (5.0 s = 450 000): tfdt never goes back.
        assert_eq!(runs[0], (110, 1, 450_000, 1));
        let first_audio = runs.iter().find(|r| r.1 == 2).unwrap();
        assert!(first_audio.2 * 90_000 >= 450_000 * 48_000);
        assert!(first_audio.2 > audio_end);

        let pl = p.media_playlist();
        let first_real = pl.segments.iter().find(|s| s.msn == 14).unwrap();
        assert!(first_real.discontinuity);
        // Parts only after the gap: none for the old session's segments.
        assert!(!first_real.parts.is_empty());
        assert!(pl
            .segments
            .iter()
            .filter(|s| s.msn < 14)
            .all(|s| s.parts.is_empty()));
        assert_eq!(first_real.map_uri.as_deref(), Some("init1.mp4"));
        // Anchored at the wall clock of its first frame, after the end of the gap (5.0 s).
        assert_eq!(first_real.program_date_time_ms, T0 + 5200);
        assert_eq!(pl.segments.iter().filter(|s| s.discontinuity).count(), 1);
        assert_eq!(pl.discontinuity_sequence, 0);
        assert_eq!(pl.map_uri, "init0.mp4");
        let text = pl.render(false);
        assert!(text.contains("#EXT-X-GAP\n#EXTINF:0.50000,\nseg13.m4s\n#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init1.mp4\"\n"), "{text}");

        feed_session_more(&mut p, 30 * 2 + 1, 30 * 12 + 1, 30, 1_000_000, T0 + 5200);
        let pl = p.media_playlist();
        // 12 s later the old session's segments and the discontinuity have left the window.
        assert_eq!(pl.media_sequence, 16);
        assert_eq!(pl.discontinuity_sequence, 1);
        assert_eq!(pl.map_uri, "init1.mp4");
        assert!(pl
            .segments
            .iter()
            .all(|s| s.map_uri.is_none() && !s.discontinuity));
        assert_eq!(p.oldest_init_generation(), 1);
        let text = pl.render(false);
        assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{text}");
    }

    #[test]
    fn discontinuity_sequence_counts_only_when_it_leaves() {
        let s = Settings {
            segment_target: Duration::from_secs(2),
            part_target: Duration::from_millis(500),
            window: Duration::from_secs(6),
        };
        let mut p = Packager::new(s, vec![video_track(), audio_track()], 0, 0).unwrap();
        feed(&mut p, 120, 30, true);
        // The publisher is swapped at once, no gap.
        p.restart(vec![video_track(), audio_track()]).unwrap();
        feed_session(&mut p, 30 * 4 + 1, 30, 0, T0 + 4000);
        let pl = p.media_playlist();
        let text = pl.render(false);
        let segment = pl.segments.iter().find(|s| s.discontinuity).unwrap();
        assert_eq!(segment.map_uri.as_deref(), Some("init1.mp4"));
        assert_eq!(pl.map_uri, "init0.mp4");
        assert_eq!(pl.discontinuity_sequence, 0);
        assert!(!text.contains("DISCONTINUITY-SEQUENCE"));
        assert!(
            text.contains(
                "#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI=\"init1.mp4\"\n#EXT-X-PROGRAM-DATE-TIME"
            ),
            "{text}"
        );
        // Dates never go backwards across it.
        let dates: Vec<u64> = pl.segments.iter().map(|s| s.program_date_time_ms).collect();
        assert!(dates.windows(2).all(|w| w[0] < w[1]), "{dates:?}");

        feed_session_more(&mut p, 30 * 4 + 1, 30 * 12 + 1, 30, 0, T0 + 4000);
        let pl = p.media_playlist();
        assert_eq!(pl.discontinuity_sequence, 1);
        assert_eq!(pl.map_uri, "init1.mp4");
    }

    /// `feed_session` continued from frame `from`.
    fn feed_session_more(p: &mut Packager, from: i64, to: i64, gop: i64, dts0_ms: i64, wall0: u64) {
        let mut a = (0..).take_while(|a| a * 1024 * 30 < from * 48_000).count() as i64;
        for i in from..to {
            let t_ms = i * 1000 / 30;
            while a * 1024 * 1000 / 48_000 < t_ms {
                let mut s = audio(1, a);
                s.dts += dts0_ms * 48;
                p.push(wall0 + (a * 1024 * 1000 / 48_000) as u64, s)
                    .unwrap();
                a += 1;
            }
            let mut s = video(i, gop);
            s.dts += dts0_ms * 90;
            p.push(wall0 + t_ms as u64, s).unwrap();
        }
    }

    #[test]
    fn restart_date_is_clamped_to_the_gap_end() {
        let tracks = || vec![video_track(), audio_track()];
        let mut p = Packager::new(settings(2000, 500), tracks(), 0, 0).unwrap();
        feed(&mut p, 61, 30, true);
        p.gap(T0 + 4000);
        drain(&mut p);
        p.restart(tracks()).unwrap();
        // Media ended at 2033 ms; gap parts to 3533 ms had ended by 4 s, and the restart
        // ended their segment.
        let pl = p.media_playlist();
        assert!(pl.partial.is_none());
        assert!(pl
            .segments
            .last()
            .is_some_and(|s| s.gap && s.parts.is_empty()));
        assert_eq!(
            pl.segments.last().map(|s| s.duration),
            Some(Duration::from_millis(1500))
        );
        // The new publisher's first frame is stamped (by a slow clock) before the gap's end.
        feed_session(&mut p, 31, 30, 0, T0 + 3000);
        let pl = p.media_playlist();
        let real = pl.partial.as_ref().unwrap();
        assert!(real.discontinuity);
        assert_eq!(real.program_date_time_ms, T0 + 3533);
    }

    #[test]
    fn the_same_publisher_resumes_at_a_keyframe() {
        let mut p = Packager::new(
            settings(2000, 500),
            vec![video_track(), audio_track()],
            0,
            0,
        )
        .unwrap();
        feed(&mut p, 75, 30, true);
        p.gap(T0 + 4000);
        drain(&mut p);
        // It comes back mid-GOP: frames wait for the keyframe at 120 (4 s of its clock).
        for i in 100..120 {
            p.push(T0 + 4100, video(i, 30)).unwrap();
        }
        assert!(drain(&mut p).is_empty());
        assert!(p.in_gap());
        for i in 120..140 {
            p.push(T0 + 4200, video(i, 30)).unwrap();
        }
        let out = drain(&mut p);
        assert!(!out.iter().any(|o| matches!(o, Output::InitChanged { .. })));
        let runs = chunk_runs(&out);
        // Continues at the end of the gap parts (2.5 + 3 × 0.5 s).
        assert_eq!(runs[0].2, 360_000);
        let pl = p.media_playlist();
        let partial = pl.partial.unwrap();
        assert!(partial.discontinuity);
        assert_eq!(partial.map_uri, None);
        assert_eq!(partial.program_date_time_ms, T0 + 4200);
        assert!(!p.in_gap());
    }

    #[test]
    fn restart_before_any_media_has_no_discontinuity() {
        let mut p = Packager::new(settings(2000, 500), vec![video_track()], 0, 0).unwrap();
        p.restart(vec![video_track(), audio_track()]).unwrap();
        assert!(matches!(
            p.poll_output(),
            Some(Output::InitChanged { generation: 1, .. })
        ));
        feed(&mut p, 31, 30, true);
        let pl = p.media_playlist();
        assert_eq!(pl.map_uri, "init1.mp4");
        let partial = pl.partial.unwrap();
        assert!(!partial.discontinuity && partial.map_uri.is_none());
        assert!(p.restart(vec![]).is_err());
        p.finish();
        assert!(matches!(
            p.restart(vec![video_track()]),
            Err(Error::Finished)
        ));
    }

    #[test]
    fn restart_to_audio_only_rescales_the_timeline() {
        let mut p = Packager::new(
            settings(2000, 500),
            vec![video_track(), audio_track()],
            0,
            0,
        )
        .unwrap();
        feed(&mut p, 61, 30, true);
        p.restart(vec![audio_track()]).unwrap();
        for a in 0..200 {
            p.push(T0 + 2100 + a as u64 * 21, audio(0, a)).unwrap();
        }
        let out = drain(&mut p);
        let runs = chunk_runs(&out);
        let restart_at = out
            .iter()
            .position(|o| matches!(o, Output::InitChanged { .. }))
            .unwrap();
        let new_runs = chunk_runs(&out[restart_at..]);
        let old_end = runs[..runs.len() - new_runs.len()]
            .iter()
            .filter(|r| r.1 == 2)
            .map(|r| r.2)
            .max()
            .unwrap();
        assert!(new_runs[0].2 > old_end, "{new_runs:?}");
        let pl = p.media_playlist();
        // Segments before the restart keep their durations in the new timescale.
        assert_eq!(pl.segments[0].duration, Duration::from_secs(2));
        assert!(pl.segments.iter().any(|s| s.discontinuity));
    }

    #[test]
    fn wall_clock_numbers_never_go_backwards() {
        for (segment_ms, part_ms) in [(2000, 500), (1000, 200), (1500, 333), (6000, 1000)] {
            let s = settings(segment_ms, part_ms);
            for start in [T0, T0 + 1, T0 + 777, T0 + segment_ms - 1] {
                let (msn, seq) = wall_clock_start(start, &s);
                let mut p = Packager::new(s.clone(), vec![video_track()], msn, seq).unwrap();
                // Keyframes as often as possible (every frame at 10 fps): segments and parts
                // come out as short as the cutter makes them.
                let frames = 10 * 60;
                for i in 0..frames {
                    let sample = Sample {
                        track: 0,
                        dts: i * 9000,
                        cts_offset: 0,
                        keyframe: true,
                        duration: None,
                        data: Bytes::from_static(&[0; 4]),
                    };
                    let now = start + i as u64 * 100;
                    p.push(now, sample).unwrap();
                    // Weir restarts now: the new numbers are beyond everything used so far.
                    let (msn2, seq2) = wall_clock_start(now, &s);
                    assert!(msn2 >= p.next_msn(), "{segment_ms}/{part_ms} at {i}");
                    assert!(seq2 >= p.next_part_seq(), "{segment_ms}/{part_ms} at {i}");
                }
            }
        }
        // Pure arithmetic: segments of exactly half the target, back to back.
        let s = Settings::default();
        let (msn0, _) = wall_clock_start(T0, &s);
        for n in 0..10_000u64 {
            let (msn, _) = wall_clock_start(T0 + n * 1000, &s);
            assert!(msn >= msn0 + n);
        }
    }

    fn splice(id: u32, out: bool, pts_ms: Option<i64>) -> CueEvent {
        CueEvent {
            id,
            kind: weir_media::CueKind::SpliceInsert,
            out_of_network: out,
            pts: pts_ms.map(|ms| ms * 90),
            duration: out.then_some(Duration::from_secs(30)),
            segmentation_type: None,
            section: Bytes::from_static(&[0xfc, 0x30, 0x11]),
        }
    }

    #[test]
    fn cues_are_dated_placed_and_paired() {
        let s = Settings {
            segment_target: Duration::from_secs(2),
            part_target: Duration::from_millis(500),
            window: Duration::from_secs(6),
        };
        let mut p = Packager::new(s, vec![video_track(), audio_track()], 0, 0).unwrap();
        // Timed before the first keyframe: waits for the session's clock.
        p.push_cue(T0, splice(1, true, Some(3000)));
        feed(&mut p, 30 * 5 + 1, 30, true);
        // Immediately: the next frame's date (frame 151 at 5033 ms).
        p.push_cue(T0 + 9999, splice(2, false, None));
        p.push_cue(T0 + 5000, splice(1, false, Some(4500)));
        p.push_cue(T0 + 5000, splice(1, false, Some(4500)));
        let mut null = splice(0, false, None);
        null.kind = weir_media::CueKind::SpliceNull;
        null.section = Bytes::new();
        null.pts = Some(9000 * 90);
        p.push_cue(T0 + 5000, null);

        let cues = p.cues();
        let dated: Vec<(u32, bool, u64, Option<u64>)> = cues
            .iter()
            .map(|c| {
                (
                    c.cue.id,
                    c.cue.out_of_network,
                    c.start_ms - T0,
                    c.end_ms.map(|e| e - T0),
                )
            })
            .collect();
        assert_eq!(
            dated,
            vec![
                (1, true, 3000, Some(4500)),
                (1, false, 4500, None),
                (2, false, 5033, None),
                (0, false, 9000, None),
            ]
        );
        let pl = p.media_playlist();
        assert_eq!(pl.dateranges.len(), 4);
        let text = pl.render(false);
        let out = "#EXT-X-DATERANGE:ID=\"splice-1\",START-DATE=\"2026-11-25T16:00:03.000Z\",PLANNED-DURATION=30.000,SCTE35-OUT=0xFC3011\n";
        let back = "#EXT-X-DATERANGE:ID=\"splice-1\",START-DATE=\"2026-11-25T16:00:03.000Z\",DURATION=1.500,SCTE35-IN=0xFC3011\n";
        let lone = "#EXT-X-DATERANGE:ID=\"splice-2\",START-DATE=\"2026-11-25T16:00:05.033Z\",SCTE35-IN=0xFC3011\n";
        let null = "#EXT-X-DATERANGE:ID=\"splice-0\",START-DATE=\"2026-11-25T16:00:09.000Z\"\n";
        // The OUT after the date of the segment that holds 3 s; the IN (4.5 s), the live-edge
        // cue and the future one in the segment in progress (from 4 s), before its parts. That
        // segment's date follows from the one before, and is not written: hls.js throws on a
        // date range inside a parts-only segment with its own PROGRAM-DATE-TIME.
        let expect = [
            format!("#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:02.000Z\n{out}"),
            format!(".m4s\n{back}{lone}{null}#EXT-X-PART"),
        ];
        for e in &expect {
            assert!(text.contains(e.as_str()), "{e}\nnot in\n{text}");
        }
        assert!(
            !text.contains("#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:04.000Z"),
            "{text}"
        );

        // Ten more seconds: the segments up to 6 s leave, and their cues with them.
        feed_session_more(&mut p, 30 * 5 + 1, 30 * 15 + 1, 30, 0, T0);
        let pl = p.media_playlist();
        assert!(pl.segments[0].program_date_time_ms > T0 + 5033);
        let ids: Vec<&str> = pl.dateranges.iter().map(|d| d.id.as_str()).collect();
        assert_eq!(ids, ["splice-0"]);
        assert_eq!(p.cues().len(), 1);
        assert!(pl.render(false).contains(null));
    }

    #[test]
    fn cues_after_a_restart_use_the_new_sessions_clock() {
        let mut p = Packager::new(
            settings(2000, 500),
            vec![video_track(), audio_track()],
            0,
            0,
        )
        .unwrap();
        feed(&mut p, 61, 30, true);
        p.gap(T0 + 4000);
        // During the gap, "now" is the wall clock.
        p.push_cue(T0 + 4000, splice(5, true, None));
        p.restart(vec![video_track(), audio_track()]).unwrap();
        // The new session's clock starts at 500 s; its first frame arrives at 4.2 s.
        p.push_cue(T0 + 4100, splice(5, false, Some(501_000)));
        feed_session(&mut p, 61, 30, 500_000, T0 + 4200);
        let cues = p.cues();
        assert_eq!(cues[0].start_ms, T0 + 4000);
        assert_eq!(cues[0].end_ms, Some(T0 + 5200));
        let text = p.media_playlist().render(false);
        assert!(text.contains("DURATION=1.200,SCTE35-IN"), "{text}");
    }
}
