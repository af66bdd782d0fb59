//! Sessions, gaps and discontinuities, and the dates of the timeline they share.
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
//!
//! A restart also changes the init segment (a new generation) and may change the primary
//! timescale, in which case every stored timeline value is converted.

use std::time::Duration;

use weir_media::{Sample, Track, TrackKind};

use super::cutter::{prepare_tracks, CUT_TOLERANCE};
use super::window::PartRecord;
use super::{Output, Packager};
use crate::{Error, Result};

#[cfg(test)]
mod tests;

/// Maps the timeline to program date time; fixed at each session's first keyframe and kept
/// through the gap that follows the session, so the gap's dates carry on from its media.
#[derive(Clone, Copy, Debug)]
pub(super) struct Anchor {
    /// Timeline ticks.
    pub(super) time: u64,
    /// Its program date time, in Unix milliseconds.
    pub(super) wall_ms: u64,
}

/// The current session's own timeline, for placing its cues: the input DTS (primary
/// timescale) of its first keyframe, and that keyframe's program date time.
#[derive(Clone, Copy, Debug)]
pub(super) struct Session {
    pub(super) key_dts: i64,
    pub(super) wall_ms: u64,
}

impl Packager {
    /// Starts a session at its first primary keyframe: maps its DTS onto the timeline,
    /// anchors its date, opens its first segment and part, then takes the keyframe and the
    /// samples held for it.
    pub(super) fn start_session(&mut self, now_unix_ms: u64, key: Sample) -> Result<()> {
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
        self.last_keyframe = None;
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

    /// Moves the anchor earlier if the primary sample at timeline tick `time`, taken at
    /// `now_unix_ms`, arrived earlier than the anchor dates it.
    pub(super) fn settle_anchor(&mut self, now_unix_ms: u64, time: u64) {
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

    /// The program date time of timeline tick `t`.
    pub(super) fn pdt_at(&self, t: u64) -> u64 {
        let ts = self.primary_timescale();
        self.anchor.map_or(0, |a| {
            let ms = (i128::from(t) - i128::from(a.time)) * 1000 / i128::from(ts.max(1));
            u64::try_from((i128::from(a.wall_ms) + ms).max(0)).unwrap_or(u64::MAX)
        })
    }

    /// Where a cue that says "now" goes: the next sample's date while a session runs, else
    /// the wall clock (never before the end of the timeline).
    pub(super) fn live_edge_ms(&self, now_unix_ms: u64) -> u64 {
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
    pub(super) fn close_media(&mut self, complete: bool) {
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
        self.last_keyframe = None;
        self.discontinuity_pending = true;
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
        let offset = segment.parts.last().map_or(0, |p| p.offset + p.len);
        segment.parts.push(PartRecord {
            seq,
            duration,
            independent: false,
            gap: true,
            offset,
            len: 0,
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

    /// A new publisher session with `tracks` (possibly different codec parameters,
    /// resolution, or tracks) takes over the stream, with or without a gap before it.
    ///
    /// Numbering continues. The session in progress, if any, is closed as by
    /// [`Packager::gap`], and a gap segment in progress ends at its last part. A new init segment is made (its generation is the
    /// sequence number of the new session's first part, announced with
    /// [`Output::InitChanged`]); the first
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
        // Named by its first part's sequence number, which no earlier run of the stream
        // used either (docs/design/003): an init URI is never served with other bytes,
        // even across a restart with another publisher. A restart with no part since the
        // last one reuses that one's number; its init was never listed (no part used it).
        let generation = self.next_part_seq();
        self.init = init;
        self.init_generation = generation;
        self.outputs.push_back(Output::InitChanged {
            generation,
            bytes: self.init.clone(),
        });
        self.held.clear();
        self.session = None;
        self.last_primary = None;
        self.last_keyframe = None;
        self.gapping = false;
        self.discontinuity_pending = self.anchor.is_some();
        // Cues timed on the old session's clock that never found a date are meaningless now.
        self.cues.take_pending();
        Ok(())
    }

    /// Converts every stored timeline value when a restart changes the primary timescale.
    fn rescale(&mut self, from: u32, to: u32) {
        let r = |t: u64| {
            let t = u128::from(t) * u128::from(to) / u128::from(from.max(1));
            u64::try_from(t).unwrap_or(u64::MAX)
        };
        self.window.rescale(r, to_ticks(self.settings.window, to));
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
    }
}

pub(super) fn to_ticks(d: Duration, timescale: u32) -> u64 {
    let ticks = d.as_nanos() * u128::from(timescale) / 1_000_000_000;
    u64::try_from(ticks).unwrap_or(u64::MAX)
}

pub(super) fn to_duration(ticks: u64, timescale: u32) -> Duration {
    let nanos = u128::from(ticks) * 1_000_000_000 / u128::from(timescale.max(1));
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}
