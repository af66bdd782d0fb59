//! Playlist assembly: the [`MediaPlaylist`] value built from the window, the segment in
//! progress and the cues, and the `EXT-X-TARGETDURATION` it carries. Which parts are listed,
//! where `EXT-X-MAP` changes, and whether delta updates are offered are decided here;
//! rendering is [`MediaPlaylist::write_to`]'s.

use std::time::Duration;

use super::session::{to_duration, to_ticks};
use super::window::PartRecord;
use super::Packager;
use crate::playlist::{ByteRange, MediaPlaylist, PartEntry, PartialSegment, SegmentEntry};
use crate::{init_uri, part_uri, segment_uri};

#[cfg(test)]
mod tests;

impl Packager {
    /// The current window as a playlist: completed segments (with parts for the recent
    /// ones), the segment in progress with its completed parts, the preload hint, and the
    /// cues as date ranges. Rendition reports are left for the caller, which knows the
    /// sibling renditions.
    pub fn media_playlist(&self) -> MediaPlaylist {
        let ts = self.primary_timescale();
        let target = self.target_duration();
        let parts_horizon = to_ticks(target * 3, ts);
        let skip = target * 6;
        let byterange = self.byterange_parts;
        // A gap part has no bytes, so no range: it keeps its own (never opened) URI.
        let parts = |msn: u64, records: &[PartRecord]| -> Vec<PartEntry> {
            records
                .iter()
                .map(|p| {
                    let ranged = byterange && !p.gap;
                    PartEntry {
                        uri: if ranged {
                            segment_uri(msn)
                        } else {
                            part_uri(p.seq)
                        },
                        duration: p.duration,
                        independent: p.independent,
                        gap: p.gap,
                        byterange: ranged.then_some(ByteRange {
                            len: p.len,
                            offset: p.offset,
                        }),
                    }
                })
                .collect()
        };
        // Parts are listed only after the newest gap: hls.js 1.6 takes the first part after
        // the last one it loaded as the next to load even when it lies in another segment,
        // behind the gap and a discontinuity, and then appends it without the new init
        // segment (docs/design/005-contribution-loss.md).
        let after_gap = self
            .window
            .segments()
            .iter()
            .rposition(|s| s.gap)
            .map_or(0, |i| i + 1);
        let first_generation = self.oldest_init_generation();
        let mut generation = first_generation;
        let mut map_change =
            |g: u64| (std::mem::replace(&mut generation, g) != g).then(|| init_uri(g));
        let segments: Vec<SegmentEntry> = self
            .window
            .segments()
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
                    parts(s.msn, &s.parts)
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
            parts: parts(s.msn, &s.parts),
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
        let hinting = !self.finished && !self.gapping;
        // The part being written is the open segment's next: it starts where the segment's
        // last completed part ends (0 in a new segment), and the cutter opens a new segment
        // and its first part together, so this is never a segment that has ended.
        let ranged_hint = self
            .segment
            .as_ref()
            .filter(|_| byterange)
            .map(|s| (s.msn, s.parts.last().map_or(0, |p| p.offset + p.len)));
        MediaPlaylist {
            target_duration: target.as_secs(),
            part_target: self.settings.part_target,
            part_hold_back: self.settings.part_target * 3,
            can_skip_until: (self.settings.window >= skip && !discontinuity_listed).then_some(skip),
            media_sequence: self.window.first_msn(),
            discontinuity_sequence: self.window.discontinuity_sequence(),
            map_uri: init_uri(first_generation),
            segments,
            partial,
            preload_hint: hinting.then(|| match ranged_hint {
                Some((msn, _)) => segment_uri(msn),
                None => part_uri(self.next_part_seq()),
            }),
            preload_hint_start: ranged_hint.filter(|_| hinting).map(|(_, start)| start),
            rendition_reports: Vec::new(),
            dateranges: first_date.map_or_else(Vec::new, |d| self.cues.dateranges(d)),
            ended: self.finished,
        }
    }

    /// `EXT-X-TARGETDURATION`: the configured target rounded up to whole seconds, raised
    /// when a GOP longer than the target made a longer segment (RFC 8216bis 4.4.3.1: every
    /// `EXTINF`, rounded to the nearest integer, must not exceed it).
    pub fn target_duration(&self) -> Duration {
        let longest = (self.max_segment.as_millis() + 500) / 1000;
        let longest = u64::try_from(longest).unwrap_or(u64::MAX);
        Duration::from_secs(self.settings.configured_target_secs().max(longest))
    }
}
