//! The cutter: decides where parts and segments begin (a segment on a primary keyframe once
//! the segment target is reached, a part before a sample would carry it past the part
//! target), and writes each part's chunks as soon as sample durations are known. It also
//! takes the samples in: checks them, holds secondary samples until a session's first
//! keyframe, and places each on the timeline.

use std::collections::VecDeque;
use std::time::Duration;

use bytes::Bytes;
use weir_media::{Sample, Track, TrackKind};

use super::session::to_duration;
use super::window::PartRecord;
use super::{Output, Packager};
use crate::cmaf::{self, ReadySample, TrackRun};
use crate::{Error, Result};

#[cfg(test)]
mod tests;

/// Slack allowed when comparing media time against a target.
///
/// RTMP carries millisecond timestamps, so at 30 fps frames arrive 33, 33 and 34 ms apart and
/// fifteen of them sum to 499–501 ms rather than 500. Without slack, a 500 ms part would
/// sometimes take a sixteenth frame (533 ms) and a 2 s segment would sometimes wait for the
/// next GOP. 5 ms absorbs the rounding, and it is under a third of a frame even at 60 fps,
/// so it never moves a cut by a whole frame.
pub const CUT_TOLERANCE: Duration = Duration::from_millis(5);

/// A keyframe up to half a part target before the segment target already ends the segment,
/// when none came in the part target before it.
///
/// Keyframes a publisher sends when asked (WebRTC's, on weir's PLI) come a frame or two
/// after the request. Asked for at the target, they landed just after it, and every segment
/// ended with a part of one or two frames after its last whole part: hls.js 1.7.4 passes
/// over a part shorter than its `maxFragLookUpTolerance` (250 ms) in some states (at its
/// start, the part hinted when it reached the live edge), stalls at the hole that leaves
/// and only seeks over it seconds later (see hls.js issues 4919 and 5028). WHIP sessions now
/// ask a little early (`weir_ingest` sets the interval to 0.4 part target before the
/// segment target), and the cut takes the keyframe: the last part is 0.3–0.4 of a part
/// target instead. Keyframes every part, or on whole seconds, cut where they did.
const EARLY_CUT_PARTS: u32 = 2;

/// Samples of secondary tracks held while waiting for the first primary keyframe (about 5 s
/// of AAC), so audio that arrives just before the keyframe but plays after it is kept.
const MAX_HELD_BEFORE_START: usize = 256;

#[derive(Debug)]
pub(super) struct TrackState {
    pub(super) track: Track,
    pub(super) id: u32,
    /// Ticks added to this session's DTS to put its samples on the timeline.
    pub(super) offset: i64,
    /// The latest sample, waiting for its successor to learn its duration.
    pub(super) pending: Option<ReadySample>,
    /// Samples whose duration is known and that no chunk holds yet, oldest first.
    pub(super) ready: VecDeque<ReadySample>,
    pub(super) last_dts: Option<i64>,
    /// Where the next sample starts if the track is gapless; samples with an explicit
    /// duration (AAC) are laid end to end from here so millisecond jitter in their DTS does
    /// not open gaps or overlaps.
    pub(super) running: Option<u64>,
    pub(super) last_duration: Option<u32>,
    /// End of the latest sample written into a chunk, in this track's timescale.
    pub(super) end: u64,
}

#[derive(Debug)]
pub(super) struct OpenSegment {
    pub(super) msn: u64,
    pub(super) start: u64,
    pub(super) pdt_ms: u64,
    pub(super) parts: Vec<PartRecord>,
    pub(super) bytes: u64,
    /// The next chunk opens the segment and carries the `styp`.
    pub(super) needs_styp: bool,
    pub(super) gap: bool,
    pub(super) discontinuity: bool,
    pub(super) init_generation: u64,
}

#[derive(Debug)]
pub(super) struct OpenPart {
    pub(super) seq: u64,
    pub(super) index: u32,
    pub(super) start: u64,
    pub(super) independent: bool,
}

impl Packager {
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

    fn on_primary(&mut self, sample: ReadySample) -> Result<()> {
        let t = sample.decode_time;
        // Audio-only renditions have no inter-frame dependencies: every part is independent.
        let independent =
            sample.keyframe || self.tracks[self.primary].track.kind() == TrackKind::Audio;
        let (Some(segment), Some(part)) = (&self.segment, &self.part) else {
            // push() only gets here with a session running.
            return Err(Error::Finished);
        };
        // Early only after a keyframe-less stretch of a part target or more: where keyframes
        // are dense (every part, audio-only) the next one comes soon enough.
        let early = match self.last_keyframe {
            Some(k) if t.saturating_sub(k) < self.part_target => 0,
            _ => self.part_target / u64::from(EARLY_CUT_PARTS),
        };
        let segment_cut = sample.keyframe
            && t.saturating_sub(segment.start) + self.tolerance + early >= self.segment_target;
        if sample.keyframe {
            self.last_keyframe = Some(t);
        }
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

    pub(super) fn open_segment(&mut self, t: u64, gap: bool) {
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

    pub(super) fn open_part(&mut self, t: u64, independent: bool) {
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

    pub(super) fn close_part(&mut self, end: u64) {
        let (Some(part), Some(segment)) = (self.part.take(), self.segment.as_mut()) else {
            return;
        };
        self.anchor_settling = false;
        let duration = to_duration(
            end.saturating_sub(part.start),
            self.tracks[self.primary].track.timescale,
        );
        // A segment's bytes are its parts' chunks back to back, so this part is what the
        // segment grew by since the previous one ended.
        let offset = segment.parts.last().map_or(0, |p| p.offset + p.len);
        segment.parts.push(PartRecord {
            seq: part.seq,
            duration,
            independent: part.independent,
            gap: false,
            offset,
            len: segment.bytes.saturating_sub(offset),
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

    /// Writes one chunk into the open part: every ready primary sample, and the ready samples
    /// of the other tracks that start before `edge` (a primary decode time). Samples of other
    /// tracks at or after the edge wait, so a part's audio does not run past its video.
    pub(super) fn flush(&mut self, edge: u64) -> Result<()> {
        let Some(part) = &self.part else {
            return Ok(());
        };
        let seq = part.seq;
        let primary_ts = u128::from(self.primary_timescale());
        // The chunk is written from the tracks' queues in place (each made contiguous), and
        // the samples leave them afterwards: no sample is moved or copied on the way.
        let mut counts = std::mem::take(&mut self.flush_counts);
        counts.clear();
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
            if let Some(last) = n.checked_sub(1).and_then(|l| track.ready.get(l)) {
                track.end = track.end.max(last.decode_time + u64::from(last.duration));
                track.ready.make_contiguous();
            }
            counts.push(n);
        }
        if counts.iter().all(|n| *n == 0) {
            self.flush_counts = counts;
            return Ok(());
        }
        let mut out = Vec::new();
        if let Some(segment) = self.segment.as_mut().filter(|s| s.needs_styp) {
            cmaf::write_styp(&mut out)?;
            segment.needs_styp = false;
        }
        let runs = self
            .tracks
            .iter()
            .zip(&counts)
            .filter(|(_, n)| **n > 0)
            .map(|(track, n)| TrackRun {
                track_id: track.id,
                // Made contiguous above: the first slice holds every ready sample.
                samples: track.ready.as_slices().0.get(..*n).unwrap_or_default(),
            });
        let written = cmaf::write_chunk(self.chunk_sequence, runs, &mut out);
        for (track, n) in self.tracks.iter_mut().zip(&counts) {
            track.ready.drain(..*n);
        }
        self.flush_counts = counts;
        written?;
        self.chunk_sequence = self.chunk_sequence.wrapping_add(1).max(1);
        if let Some(segment) = self.segment.as_mut() {
            segment.bytes += out.len() as u64;
        }
        self.outputs.push_back(Output::Chunk {
            seq,
            bytes: Bytes::from(out),
        });
        Ok(())
    }
}

/// Checks `tracks` and writes their init segment: (init, states, primary index).
pub(super) fn prepare_tracks(tracks: Vec<Track>) -> Result<(Bytes, Vec<TrackState>, usize)> {
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

    pub(super) fn timescale_i64(&self) -> i64 {
        i64::from(self.track.timescale)
    }
}
