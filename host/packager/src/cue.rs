//! Cues (SCTE-35 splice points) placed on the program-date-time timeline, and their interim
//! rendering as `EXT-X-DATERANGE` (RFC 8216bis 4.4.5.1 and 4.4.5.1.1) until the scte35 plugin
//! takes it over.
//!
//! A cue plays one of three roles:
//!
//! - **OUT**: a `splice_insert` with `out_of_network`, or a `time_signal` whose segmentation
//!   type starts an ad break (0x22, 0x30, 0x32, 0x34, 0x36, 0x44, 0x46: the same list as
//!   `weir_ingest::scte35::segmentation_type_is_out`). Rendered
//!   `ID="splice-<id>",START-DATE,PLANNED-DURATION,SCTE35-OUT`.
//! - **IN**: a `splice_insert` without `out_of_network`, or a `time_signal` whose segmentation
//!   type ends one of those (the start type + 1). When an OUT with the same id is in the
//!   window and still open, the IN closes it: a second tag with the OUT's ID and START-DATE,
//!   `DURATION` (IN − OUT) and `SCTE35-IN`, written where the IN happens. Otherwise it stands
//!   alone: its own ID, its own START-DATE, `SCTE35-IN`.
//! - **CMD**: anything else (`splice_null`, other time signals): `SCTE35-CMD`.
//!
//! A cue without a section (an RTMP cue point, the API) is rendered the same way without the
//! `SCTE35-*` attribute: there are no bytes to carry, and inventing a section would put words
//! in the publisher's mouth.

use std::collections::VecDeque;
use std::time::Duration;

use weir_media::{CueEvent, CueKind, PlacedCue};

use crate::playlist::DateRange;

/// Cues kept at most, oldest dropped first: a runaway source cannot grow the playlist.
const MAX_CUES: usize = 256;
/// Timed cues waiting for their session's first keyframe.
const MAX_PENDING: usize = 64;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Out,
    In,
    Cmd,
}

/// Segmentation types that start an ad break (SCTE 35 table 23; ingest's
/// `segmentation_type_is_out` agrees); each one's end is the next value.
const OUT_SEGMENTATION_TYPES: [u8; 7] = [0x22, 0x30, 0x32, 0x34, 0x36, 0x44, 0x46];

fn role(cue: &CueEvent) -> Role {
    match (cue.kind, cue.segmentation_type) {
        (CueKind::SpliceInsert, _) if cue.out_of_network => Role::Out,
        (CueKind::SpliceInsert, _) => Role::In,
        (CueKind::TimeSignal, Some(t)) if OUT_SEGMENTATION_TYPES.contains(&t) => Role::Out,
        (CueKind::TimeSignal, Some(t)) if OUT_SEGMENTATION_TYPES.contains(&t.wrapping_sub(1)) => {
            Role::In
        }
        _ => Role::Cmd,
    }
}

#[derive(Clone, Debug)]
struct StoredCue {
    cue: CueEvent,
    role: Role,
    /// The `EXT-X-DATERANGE` ID, fixed when the cue is placed so it never changes while the
    /// cue is in the playlist.
    id: String,
    start_ms: u64,
    /// For an OUT: the IN that closed it, and its date.
    closed_by: Option<(CueEvent, u64)>,
}

#[derive(Debug, Default)]
pub(crate) struct CueStore {
    cues: VecDeque<StoredCue>,
    pending: Vec<CueEvent>,
}

impl CueStore {
    /// Keeps a timed cue until its session's timeline is known.
    pub(crate) fn hold(&mut self, cue: CueEvent) {
        if self.pending.len() < MAX_PENDING && !self.pending.contains(&cue) {
            self.pending.push(cue);
        }
    }

    pub(crate) fn take_pending(&mut self) -> Vec<CueEvent> {
        std::mem::take(&mut self.pending)
    }

    /// Files a cue at `start_ms`: closes the open OUT it answers, or stores it. Repeats
    /// (encoders send a splice several times ahead of it) are ignored.
    pub(crate) fn place(&mut self, cue: CueEvent, start_ms: u64) {
        let role = role(&cue);
        let same_event = |s: &StoredCue| s.cue.id == cue.id && s.cue.kind == cue.kind;
        match role {
            Role::Out => {
                if self
                    .cues
                    .iter()
                    .any(|s| s.role == Role::Out && same_event(s) && s.closed_by.is_none())
                {
                    return;
                }
            }
            Role::In => {
                if let Some(out) = self.cues.iter_mut().rev().find(|s| {
                    s.role == Role::Out
                        && same_event(s)
                        && s.closed_by.is_none()
                        && s.start_ms <= start_ms
                }) {
                    out.closed_by = Some((cue, start_ms));
                    return;
                }
                let repeat = self.cues.iter().any(|s| {
                    same_event(s)
                        && (s.role == Role::In
                            || s.closed_by.as_ref().is_some_and(|(c, _)| *c == cue))
                });
                if repeat {
                    return;
                }
            }
            Role::Cmd => {
                if self.cues.iter().any(|s| s.cue == cue) {
                    return;
                }
            }
        }
        let id = self.unique_id(cue.id, start_ms);
        if self.cues.len() == MAX_CUES {
            self.cues.pop_front();
        }
        self.cues.push_back(StoredCue {
            cue,
            role,
            id,
            start_ms,
            closed_by: None,
        });
    }

    /// `splice-<id>`, or when another cue in the window has that ID already (event ids are
    /// reused), `splice-<id>-<start_ms>` (then `-<n>`).
    fn unique_id(&self, event: u32, start_ms: u64) -> String {
        let taken = |id: &str| self.cues.iter().any(|s| s.id == id);
        let base = format!("splice-{event}");
        if !taken(&base) {
            return base;
        }
        let dated = format!("{base}-{start_ms}");
        let mut id = dated.clone();
        let mut n = 1;
        while taken(&id) {
            n += 1;
            id = format!("{dated}-{n}");
        }
        id
    }

    /// Forgets cues that start before `first_ms`, the date of the first segment in the window.
    /// Drops cues dated before `first_ms` (the window's start), except an OUT whose break
    /// still overlaps the window: plugins need it (a viewer joining mid-break, a blackout
    /// that lasts longer than the window). A break with neither an IN nor a declared
    /// duration is kept only while it is the latest OUT.
    pub(crate) fn evict_before(&mut self, first_ms: u64) {
        let last_out = self.cues.iter().rposition(|s| s.role == Role::Out);
        let mut index = 0;
        self.cues.retain(|s| {
            let i = index;
            index += 1;
            s.start_ms >= first_ms
                || (s.role == Role::Out
                    && match (&s.closed_by, s.cue.duration) {
                        (Some((_, end)), _) => *end >= first_ms,
                        (None, Some(d)) => {
                            s.start_ms
                                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
                                >= first_ms
                        }
                        (None, None) => Some(i) == last_out,
                    })
        });
    }

    pub(crate) fn placed(&self) -> Vec<PlacedCue> {
        let mut placed = Vec::new();
        for s in &self.cues {
            placed.push(PlacedCue {
                cue: s.cue.clone(),
                start_ms: s.start_ms,
                end_ms: s.closed_by.as_ref().map(|(_, end)| *end),
            });
            if let Some((cue, end)) = &s.closed_by {
                placed.push(PlacedCue {
                    cue: cue.clone(),
                    start_ms: *end,
                    end_ms: None,
                });
            }
        }
        placed.sort_by_key(|p| p.start_ms);
        placed
    }

    /// The date ranges of the cues that start at or after `first_ms`.
    pub(crate) fn dateranges(&self, first_ms: u64) -> Vec<DateRange> {
        let mut ranges = Vec::new();
        for s in self.cues.iter().filter(|s| s.start_ms >= first_ms) {
            let section = (!s.cue.section.is_empty()).then(|| s.cue.section.clone());
            let mut range = DateRange {
                id: s.id.clone(),
                start_ms: s.start_ms,
                duration: None,
                planned_duration: s.cue.duration,
                scte35_cmd: None,
                scte35_out: None,
                scte35_in: None,
                position_ms: s.start_ms,
            };
            match s.role {
                Role::Out => range.scte35_out = section,
                Role::In => range.scte35_in = section,
                Role::Cmd => range.scte35_cmd = section,
            }
            ranges.push(range);
            if let Some((cue, end)) = &s.closed_by {
                ranges.push(DateRange {
                    id: s.id.clone(),
                    start_ms: s.start_ms,
                    duration: Some(Duration::from_millis(end - s.start_ms)),
                    planned_duration: None,
                    scte35_cmd: None,
                    scte35_out: None,
                    scte35_in: (!cue.section.is_empty()).then(|| cue.section.clone()),
                    position_ms: *end,
                });
            }
        }
        ranges
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    pub(crate) fn cue(id: u32, kind: CueKind, out: bool, seg: Option<u8>) -> CueEvent {
        CueEvent {
            id,
            kind,
            out_of_network: out,
            pts: None,
            duration: None,
            segmentation_type: seg,
            section: Bytes::from_static(&[0xfc, 0x30]),
        }
    }

    #[test]
    fn roles() {
        assert_eq!(role(&cue(1, CueKind::SpliceInsert, true, None)), Role::Out);
        assert_eq!(role(&cue(1, CueKind::SpliceInsert, false, None)), Role::In);
        assert_eq!(
            role(&cue(1, CueKind::TimeSignal, false, Some(0x34))),
            Role::Out
        );
        assert_eq!(
            role(&cue(1, CueKind::TimeSignal, true, Some(0x35))),
            Role::In
        );
        assert_eq!(
            role(&cue(1, CueKind::TimeSignal, false, Some(0x10))),
            Role::Cmd
        );
        assert_eq!(role(&cue(1, CueKind::TimeSignal, true, None)), Role::Cmd);
        assert_eq!(role(&cue(0, CueKind::SpliceNull, false, None)), Role::Cmd);
    }

    #[test]
    fn pairs_repeats_and_reused_ids() {
        let mut store = CueStore::default();
        let out = cue(7, CueKind::SpliceInsert, true, None);
        let back = cue(7, CueKind::SpliceInsert, false, None);
        store.place(out.clone(), 1000);
        store.place(out.clone(), 1500); // a repeat of the open OUT
        store.place(back.clone(), 31_000);
        store.place(back.clone(), 31_500); // a repeat of its IN
        assert_eq!(store.cues.len(), 1);
        let placed = store.placed();
        assert_eq!(placed.len(), 2);
        assert_eq!(placed[0].end_ms, Some(31_000));
        assert_eq!((placed[1].start_ms, placed[1].end_ms), (31_000, None));

        // The event id comes round again: a new, distinct range.
        store.place(out.clone(), 60_000);
        store.place(back, 90_000);
        let ranges = store.dateranges(0);
        let ids: Vec<&str> = ranges.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(
            ids,
            ["splice-7", "splice-7", "splice-7-60000", "splice-7-60000"]
        );
        assert_eq!(ranges[3].duration, Some(Duration::from_secs(30)));
        assert_eq!(ranges[3].start_ms, 60_000);
        assert_eq!(ranges[3].position_ms, 90_000);

        // The first break (1000–31000) still overlaps a window from 2000: plugins keep
        // seeing it, the packager's own tags start at the window.
        store.evict_before(2000);
        assert_eq!(store.cues.len(), 2);
        assert_eq!(store.dateranges(2000).len(), 2);
        store.evict_before(40_000);
        assert_eq!(store.cues.len(), 1);
        assert_eq!(store.placed()[0].start_ms, 60_000);
        // A lone IN whose OUT is gone stands alone.
        let mut store = CueStore::default();
        store.place(cue(9, CueKind::SpliceInsert, false, None), 5000);
        let ranges = store.dateranges(0);
        assert_eq!(ranges.len(), 1);
        assert!(ranges[0].scte35_in.is_some() && ranges[0].duration.is_none());
    }
}
