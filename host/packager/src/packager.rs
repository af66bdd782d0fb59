//! The cutter: decides where parts and segments begin, writes their chunks as soon as sample
//! durations are known, and keeps the rolling window that the playlist is rendered from.

use std::collections::VecDeque;
use std::ops::Range;
use std::time::Duration;

use bytes::Bytes;
use weir_media::{Codec, Sample, Track, TrackKind};

use crate::cmaf::{self, ReadySample, TrackRun};
use crate::playlist::{MediaPlaylist, PartEntry, PartialSegment, SegmentEntry};
use crate::{part_uri, segment_uri, Error, Result, Settings, INIT_URI};

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
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Part `seq` is open: readers of its URI (the preload hint) may attach now.
    /// `index` is its position within segment `msn`.
    PartStarted {
        seq: u64,
        msn: u64,
        index: u32,
        independent: bool,
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
    },
    /// Segment `msn` is complete; its body is the concatenation of parts `parts`.
    SegmentCompleted {
        msn: u64,
        duration: Duration,
        parts: Range<u64>,
    },
    /// Segments below `first_msn` left the window.
    WindowAdvanced { first_msn: u64 },
}

#[derive(Debug)]
struct TrackState {
    track: Track,
    id: u32,
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
}

#[derive(Clone, Debug)]
struct PartRecord {
    seq: u64,
    duration: Duration,
    independent: bool,
}

#[derive(Debug)]
struct SegmentRecord {
    msn: u64,
    /// Primary-track decode times.
    start: u64,
    end: u64,
    pdt_ms: u64,
    parts: Vec<PartRecord>,
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
}

#[derive(Debug)]
struct OpenPart {
    seq: u64,
    index: u32,
    start: u64,
    independent: bool,
}

/// Where the timeline starts, fixed by the first accepted sample.
#[derive(Clone, Copy, Debug)]
struct Anchor {
    /// Primary-track decode time of the first accepted sample.
    time: u64,
    /// The wall clock the caller passed with it.
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

    // Targets in primary-track ticks.
    segment_target: u64,
    part_target: u64,
    tolerance: u64,
    window: u64,

    /// Whole seconds added to every DTS so that decode times are never negative.
    shift_secs: i64,
    anchor: Option<Anchor>,
    segment: Option<OpenSegment>,
    part: Option<OpenPart>,
    /// Decode time and end of the latest primary sample.
    last_primary: Option<u64>,
    primary_end: u64,
    /// End of the latest completed part.
    parts_end: u64,

    next_msn: u64,
    next_seq: u64,
    first_msn: u64,
    segments: VecDeque<SegmentRecord>,
    max_segment: Duration,
    peak_bps: Option<u64>,
    chunk_sequence: u32,
    finished: bool,
    outputs: VecDeque<Output>,
    /// Secondary-track samples that arrived before the first primary keyframe.
    held: VecDeque<Sample>,
}

impl Packager {
    /// A packager for one rendition made of `tracks` (`Sample::track` indexes this list).
    /// `first_msn` and `first_part_seq` continue the numbering of an earlier run of the same
    /// stream, so that a restart never makes sequence numbers go backwards.
    pub fn new(
        settings: Settings,
        tracks: Vec<Track>,
        first_msn: u64,
        first_part_seq: u64,
    ) -> Result<Self> {
        settings.validate()?;
        if tracks.is_empty() {
            return Err(Error::NoTracks);
        }
        let mut init = Vec::new();
        cmaf::write_init(&tracks, &mut init)?;
        let primary = tracks
            .iter()
            .position(|t| t.kind() == TrackKind::Video)
            .unwrap_or(0);
        let ts = tracks[primary].timescale;
        let tracks = tracks
            .into_iter()
            .enumerate()
            .map(|(i, track)| {
                Ok(TrackState {
                    track,
                    id: cmaf::track_id(i)?,
                    pending: None,
                    ready: VecDeque::new(),
                    last_dts: None,
                    running: None,
                    last_duration: None,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            segment_target: to_ticks(settings.segment_target, ts),
            part_target: to_ticks(settings.part_target, ts),
            tolerance: to_ticks(CUT_TOLERANCE, ts),
            window: to_ticks(settings.window, ts),
            settings,
            tracks,
            primary,
            init: Bytes::from(init),
            shift_secs: 0,
            anchor: None,
            segment: None,
            part: None,
            last_primary: None,
            primary_end: 0,
            parts_end: 0,
            next_msn: first_msn,
            next_seq: first_part_seq,
            first_msn,
            segments: VecDeque::new(),
            max_segment: Duration::ZERO,
            peak_bps: None,
            chunk_sequence: 1,
            finished: false,
            outputs: VecDeque::new(),
            held: VecDeque::new(),
        })
    }

    /// The init segment (`ftyp` + `moov` with one `trak` and `trex` per track).
    pub fn init_segment(&self) -> Bytes {
        self.init.clone()
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
    /// `EXT-X-PROGRAM-DATE-TIME` at the first accepted sample.
    ///
    /// Samples before the first keyframe of the primary track are dropped (`Ok`). A sample
    /// that cannot be packaged (unknown track, DTS not after the track's previous DTS, DTS
    /// out of range) is rejected with an error and leaves the packager as it was.
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
        let shift_secs = match self.anchor {
            Some(_) => self.shift_secs,
            // Nothing is packaged until the primary track shows a keyframe.
            None if !is_primary => {
                if self.held.len() == MAX_HELD_BEFORE_START {
                    self.held.pop_front();
                }
                self.held.push_back(sample);
                return Ok(());
            }
            None if !sample.keyframe => return Ok(()),
            None => match sample.dts {
                dts if dts >= 0 => 0,
                dts => -dts.div_euclid(i64::from(track.track.timescale)),
            },
        };
        let out_of_range = || Error::TimestampOutOfRange {
            track: index,
            dts: sample.dts,
        };
        let time = i64::from(track.track.timescale)
            .checked_mul(shift_secs)
            .and_then(|shift| sample.dts.checked_add(shift))
            .and_then(|t| u64::try_from(t).ok())
            .ok_or_else(out_of_range)?;
        let pending_duration = match &track.pending {
            Some(p) => Some(u32::try_from(time - p.decode_time).map_err(|_| out_of_range())?),
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
        self.shift_secs = shift_secs;
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
        let starting = self.anchor.is_none();
        self.on_primary(now_unix_ms, ready)?;
        if starting {
            self.release_held(decode_time, now_unix_ms);
        }
        Ok(())
    }

    /// Replays the samples held before the first keyframe (at primary decode time `start`),
    /// keeping those that play at or after it.
    fn release_held(&mut self, start: u64, now_unix_ms: u64) {
        let primary_ts = i128::from(self.primary_timescale());
        for sample in std::mem::take(&mut self.held) {
            let Some(track) = self.tracks.get(sample.track) else {
                continue;
            };
            let ts = i128::from(track.track.timescale);
            let time = i128::from(sample.dts) + i128::from(self.shift_secs) * ts;
            if time * primary_ts >= i128::from(start) * ts {
                // Held samples were never checked; one that fails is dropped like any
                // other pre-keyframe sample.
                let _ = self.push(now_unix_ms, sample);
            }
        }
    }

    fn on_primary(&mut self, now_unix_ms: u64, sample: ReadySample) -> Result<()> {
        let t = sample.decode_time;
        // Audio-only renditions have no inter-frame dependencies: every part is independent.
        let independent =
            sample.keyframe || self.tracks[self.primary].track.kind() == TrackKind::Audio;
        match (&self.anchor, &self.segment, &self.part) {
            (None, _, _) => {
                self.anchor = Some(Anchor {
                    time: t,
                    wall_ms: now_unix_ms,
                });
                self.open_segment(t);
                self.open_part(t, independent);
            }
            (Some(_), Some(segment), Some(part)) => {
                let segment_cut = sample.keyframe
                    && t.saturating_sub(segment.start) + self.tolerance >= self.segment_target;
                // Cut before this sample would carry the part past its target: parts never
                // exceed PART-TARGET (beyond the tolerance), as RFC 8216bis requires.
                let sample_len = match sample.duration {
                    0 => self.last_primary.map_or(0, |last| t.saturating_sub(last)),
                    d => u64::from(d),
                };
                let part_cut = segment_cut
                    || t.saturating_sub(part.start) + sample_len
                        > self.part_target + self.tolerance;
                if part_cut {
                    self.flush(t)?;
                    self.close_part(t);
                    if segment_cut {
                        self.close_segment(t);
                        self.open_segment(t);
                    }
                    self.open_part(t, independent);
                }
            }
            // Started but nothing open happens only after finish(), which push() refuses.
            (Some(_), _, _) => return Err(Error::Finished),
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
    /// gets the duration of the one before it. Later pushes fail with [`Error::Finished`].
    pub fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        if self.anchor.is_none() {
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
        if self.part.is_some() {
            self.close_part(end);
        }
        if self.segment.is_some() {
            self.close_segment(end);
        }
    }

    /// The next thing to do, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// The current window as a playlist: completed segments (with parts for the recent
    /// ones), the segment in progress with its completed parts, and the preload hint.
    /// Rendition reports are left for the caller, which knows the sibling renditions.
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
                    gap: false,
                })
                .collect()
        };
        MediaPlaylist {
            target_duration: target.as_secs(),
            part_target: self.settings.part_target,
            part_hold_back: self.settings.part_target * 3,
            can_skip_until: (self.settings.window >= skip).then_some(skip),
            media_sequence: self.first_msn,
            discontinuity_sequence: 0,
            map_uri: INIT_URI.to_owned(),
            segments: self
                .segments
                .iter()
                .map(|s| SegmentEntry {
                    msn: s.msn,
                    duration: to_duration(s.end - s.start, ts),
                    program_date_time_ms: s.pdt_ms,
                    uri: segment_uri(s.msn),
                    // Apple: parts more than three target durations old SHOULD go.
                    parts: if self.parts_end.saturating_sub(s.end) <= parts_horizon {
                        parts(&s.parts)
                    } else {
                        Vec::new()
                    },
                    discontinuity: false,
                    gap: false,
                })
                .collect(),
            partial: self.segment.as_ref().map(|s| PartialSegment {
                msn: s.msn,
                program_date_time_ms: s.pdt_ms,
                parts: parts(&s.parts),
                discontinuity: false,
            }),
            preload_hint: (!self.finished).then(|| part_uri(self.next_part_seq())),
            rendition_reports: Vec::new(),
            ended: self.finished,
        }
    }

    fn primary_timescale(&self) -> u32 {
        self.tracks[self.primary].track.timescale
    }

    fn open_segment(&mut self, t: u64) {
        let ts = self.primary_timescale();
        let pdt_ms = self.anchor.map_or(0, |a| {
            let since = t.saturating_sub(a.time);
            let ms = u128::from(since) * 1000 / u128::from(ts);
            a.wall_ms
                .saturating_add(u64::try_from(ms).unwrap_or(u64::MAX))
        });
        self.segment = Some(OpenSegment {
            msn: self.next_msn,
            start: t,
            pdt_ms,
            parts: Vec::new(),
            bytes: 0,
            needs_styp: true,
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
        });
        self.part = Some(part);
    }

    fn close_part(&mut self, end: u64) {
        let (Some(part), Some(segment)) = (self.part.take(), self.segment.as_mut()) else {
            return;
        };
        let duration = to_duration(
            end.saturating_sub(part.start),
            self.tracks[self.primary].track.timescale,
        );
        segment.parts.push(PartRecord {
            seq: part.seq,
            duration,
            independent: part.independent,
        });
        self.parts_end = end;
        self.outputs.push_back(Output::PartCompleted {
            seq: part.seq,
            msn: segment.msn,
            index: part.index,
            duration,
            independent: part.independent,
        });
    }

    fn close_segment(&mut self, end: u64) {
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
        });
        self.max_segment = self.max_segment.max(duration);
        let bits = u128::from(segment.bytes) * 8 * 1_000_000_000;
        if let Some(bps) = bits.checked_div(duration.as_nanos()) {
            let bps = u64::try_from(bps).unwrap_or(u64::MAX);
            self.peak_bps = Some(self.peak_bps.map_or(bps, |p| p.max(bps)));
        }
        self.segments.push_back(SegmentRecord {
            msn: segment.msn,
            start: segment.start,
            end,
            pdt_ms: segment.pdt_ms,
            parts: segment.parts,
        });

        let before = self.first_msn;
        while self
            .segments
            .front()
            .is_some_and(|s| end.saturating_sub(s.end) > self.window)
        {
            self.segments.pop_front();
        }
        self.first_msn = self.segments.front().map_or(self.next_msn, |s| s.msn);
        if self.first_msn != before {
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
                taken.push((track.id, track.ready.drain(..n).collect()));
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
                independent: true
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
                Output::WindowAdvanced { .. } => {}
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
}
