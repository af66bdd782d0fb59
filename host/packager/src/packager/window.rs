//! The rolling window: the completed segments that the playlist lists, oldest first, with the
//! first media sequence number and the discontinuity sequence (the discontinuities that left
//! the window). A segment leaves once the newest one ends more than [`Settings::window`]
//! after it.
//!
//! `Packager::close_segment` is where a segment the cutter or a gap ends enters the window:
//! it is announced (`SegmentCompleted`), counted towards the longest segment and the peak
//! bitrate, filed, and the cues that fell out of the window are dropped with its oldest
//! segments (`WindowAdvanced`).
//!
//! [`Settings::window`]: crate::Settings::window

use std::collections::VecDeque;
use std::time::Duration;

use super::session::to_duration;
use super::{Output, Packager};

#[cfg(test)]
mod tests;

#[derive(Clone, Debug)]
pub(super) struct PartRecord {
    pub(super) seq: u64,
    pub(super) duration: Duration,
    pub(super) independent: bool,
    pub(super) gap: bool,
    /// Where its bytes lie in its segment (a gap part has none).
    pub(super) offset: u64,
    pub(super) len: u64,
}

#[derive(Debug)]
pub(super) struct SegmentRecord {
    pub(super) msn: u64,
    /// Timeline ticks.
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) pdt_ms: u64,
    pub(super) parts: Vec<PartRecord>,
    pub(super) gap: bool,
    pub(super) discontinuity: bool,
    pub(super) init_generation: u64,
}

impl Packager {
    /// Closes the open segment at `end`. `count_bandwidth`: whether its bitrate may raise the
    /// peak estimate.
    pub(super) fn close_segment(&mut self, end: u64, count_bandwidth: bool) {
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
            self.measured.0 += u128::from(segment.bytes) * 8;
            self.measured.1 += duration.as_nanos();
        }
        let advanced = self.window.push(
            SegmentRecord {
                msn: segment.msn,
                start: segment.start,
                end,
                pdt_ms: segment.pdt_ms,
                parts: segment.parts,
                gap: segment.gap,
                discontinuity: segment.discontinuity,
                init_generation: segment.init_generation,
            },
            self.next_msn,
        );
        if let Some(first_msn) = advanced {
            if let Some(first) = self.window.segments().front() {
                self.cues.evict_before(first.pdt_ms);
            }
            self.outputs.push_back(Output::WindowAdvanced { first_msn });
        }
    }
}

/// The completed segments still listed, and where the window starts.
#[derive(Debug)]
pub(super) struct Window {
    /// How long a segment stays listed after it ends, counted to the end of the newest one
    /// (primary ticks).
    length: u64,
    segments: VecDeque<SegmentRecord>,
    first_msn: u64,
    discontinuity_sequence: u64,
}

impl Window {
    /// An empty window of `length` primary ticks whose first segment will be `first_msn`.
    pub(super) fn new(length: u64, first_msn: u64) -> Self {
        Self {
            length,
            segments: VecDeque::new(),
            first_msn,
            discontinuity_sequence: 0,
        }
    }

    /// The segments in the window, oldest first.
    pub(super) fn segments(&self) -> &VecDeque<SegmentRecord> {
        &self.segments
    }

    /// The oldest media sequence number in the window.
    pub(super) fn first_msn(&self) -> u64 {
        self.first_msn
    }

    /// Before the first segment: the discontinuity sequence starts at `base`.
    pub(super) fn set_discontinuity_base(&mut self, base: u64) {
        debug_assert!(self.segments.is_empty());
        self.discontinuity_sequence = base;
    }

    /// `EXT-X-DISCONTINUITY-SEQUENCE`: the discontinuities that left the window.
    pub(super) fn discontinuity_sequence(&self) -> u64 {
        self.discontinuity_sequence
    }

    /// Adds `segment`, just completed, and evicts the segments that ended more than the
    /// window's length before it. A window left empty starts at `next_msn`. Returns the new
    /// first msn when it moved.
    pub(super) fn push(&mut self, segment: SegmentRecord, next_msn: u64) -> Option<u64> {
        let end = segment.end;
        self.segments.push_back(segment);

        let before = self.first_msn;
        while self
            .segments
            .front()
            .is_some_and(|s| end.saturating_sub(s.end) > self.length)
        {
            if self.segments.pop_front().is_some_and(|s| s.discontinuity) {
                // RFC 8216bis 4.4.3.3: counts the discontinuities that left the playlist.
                self.discontinuity_sequence += 1;
            }
        }
        self.first_msn = self.segments.front().map_or(next_msn, |s| s.msn);
        (self.first_msn != before).then_some(self.first_msn)
    }

    /// Converts the stored timeline values with `r` when a restart changes the primary
    /// timescale; `length` is the window's length in the new one.
    pub(super) fn rescale(&mut self, r: impl Fn(u64) -> u64, length: u64) {
        for s in &mut self.segments {
            s.start = r(s.start);
            s.end = r(s.end);
        }
        self.length = length;
    }
}
