//! SCTE-35 cues as the host hands them to a plugin ([`CueEvent`]): what role each one
//! plays, and which OUT pairs with which IN.
//!
//! The rules are weir's (host/packager/src/cue.rs, ingest's `segmentation_type_is_out`):
//!
//! - **Out**: a `splice_insert` with `out_of_network`, or a `time_signal` whose
//!   segmentation type starts a break ([`OUT_SEGMENTATION_TYPES`]).
//! - **In**: a `splice_insert` without `out_of_network`, or a `time_signal` whose
//!   segmentation type ends one of those (the start type + 1).
//! - **Cmd**: anything else (`splice_null`, other time signals).

use crate::bindings::weir::plugin::types::{CueEvent, CueKind};

/// Segmentation types that start an ad break (SCTE 35 table 23): provider/distributor
/// advertisement, placement opportunity, provider/distributor ad block... Each one's end is
/// the next value.
pub const OUT_SEGMENTATION_TYPES: [u8; 7] = [0x22, 0x30, 0x32, 0x34, 0x36, 0x44, 0x46];

/// What a cue does to the programme.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CueRole {
    /// A break starts (`SCTE35-OUT`).
    Out,
    /// A break ends (`SCTE35-IN`).
    In,
    /// Neither (`SCTE35-CMD`).
    Cmd,
}

/// Whether a segmentation type starts a break.
pub fn segmentation_type_is_out(t: u8) -> bool {
    OUT_SEGMENTATION_TYPES.contains(&t)
}

/// Whether a segmentation type ends a break.
pub fn segmentation_type_is_in(t: u8) -> bool {
    t.checked_sub(1).is_some_and(segmentation_type_is_out)
}

/// The role of a cue, from its kind, `out-of-network` flag and segmentation type.
pub fn role(cue: &CueEvent) -> CueRole {
    match (cue.kind, cue.segmentation_type) {
        (CueKind::SpliceInsert, _) if cue.out_of_network => CueRole::Out,
        (CueKind::SpliceInsert, _) => CueRole::In,
        (CueKind::TimeSignal, Some(t)) if segmentation_type_is_out(t) => CueRole::Out,
        (CueKind::TimeSignal, Some(t)) if segmentation_type_is_in(t) => CueRole::In,
        _ => CueRole::Cmd,
    }
}

/// An ad break: an OUT cue and, once it has arrived, the IN that ended it.
#[derive(Clone, Debug, PartialEq)]
pub struct Break<'a> {
    pub out: &'a CueEvent,
    /// The IN cue the host paired with the OUT (same event id, dated at the OUT's
    /// `end-ms`), when it is in the list.
    pub r#in: Option<&'a CueEvent>,
}

impl<'a> Break<'a> {
    pub fn id(&self) -> u32 {
        self.out.id
    }

    pub fn start_ms(&self) -> u64 {
        self.out.start_ms
    }

    /// When the break ended: the IN's date, once it has arrived.
    pub fn end_ms(&self) -> Option<u64> {
        self.out.end_ms
    }

    /// The declared length (`break_duration` / `segmentation_duration`).
    pub fn planned_ms(&self) -> Option<u64> {
        self.out.duration_ms
    }

    /// The actual length once the IN has arrived, else the declared one.
    pub fn length_ms(&self) -> Option<u64> {
        self.end_ms()
            .map(|e| e.saturating_sub(self.start_ms()))
            .or(self.planned_ms())
    }

    /// When the break is expected to end: its end, else start plus the declared length.
    /// `None` while it is open with no declared length.
    pub fn expected_end_ms(&self) -> Option<u64> {
        self.end_ms()
            .or_else(|| self.planned_ms().map(|d| self.start_ms().saturating_add(d)))
    }

    /// Whether `[start, end)` overlaps the break (an open break runs forever).
    pub fn overlaps(&self, start: u64, end: u64) -> bool {
        self.start_ms() < end && self.expected_end_ms().is_none_or(|e| e > start)
    }
}

/// The breaks in a cue list (oldest first), each OUT paired with its IN. The host lists an
/// OUT with `end-ms` once its IN has arrived, and the IN itself as a separate cue dated at
/// that `end-ms`.
pub fn breaks(cues: &[CueEvent]) -> Vec<Break<'_>> {
    cues.iter()
        .filter(|c| role(c) == CueRole::Out)
        .map(|out| Break {
            out,
            r#in: out
                .end_ms
                .and_then(|end| cues.iter().find(|c| is_in_of(c, out, end))),
        })
        .collect()
}

/// Whether `cue` is the IN the host paired with `out` (same event, dated at its end).
pub fn is_paired_in(cue: &CueEvent, cues: &[CueEvent]) -> bool {
    role(cue) == CueRole::In
        && cues.iter().any(|out| {
            role(out) == CueRole::Out && out.end_ms.is_some_and(|end| is_in_of(cue, out, end))
        })
}

fn is_in_of(cue: &CueEvent, out: &CueEvent, end: u64) -> bool {
    role(cue) == CueRole::In && cue.id == out.id && cue.kind == out.kind && cue.start_ms == end
}

/// `0x…` upper-case hex of a splice_info_section, as `SCTE35-OUT`/`-IN`/`-CMD` carry it.
pub fn hex(section: &[u8]) -> String {
    crate::attr::hex(section)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn cue(id: u32, kind: CueKind, out: bool, seg: Option<u8>, start: u64) -> CueEvent {
        CueEvent {
            id,
            kind,
            out_of_network: out,
            start_ms: start,
            duration_ms: None,
            end_ms: None,
            segmentation_type: seg,
            section: vec![0xfc, 0x30],
        }
    }

    #[test]
    fn roles() {
        use CueKind::*;
        assert_eq!(role(&cue(1, SpliceInsert, true, None, 0)), CueRole::Out);
        assert_eq!(role(&cue(1, SpliceInsert, false, None, 0)), CueRole::In);
        for t in OUT_SEGMENTATION_TYPES {
            assert_eq!(role(&cue(1, TimeSignal, false, Some(t), 0)), CueRole::Out);
            assert_eq!(role(&cue(1, TimeSignal, true, Some(t + 1), 0)), CueRole::In);
        }
        assert_eq!(
            role(&cue(1, TimeSignal, false, Some(0x10), 0)),
            CueRole::Cmd
        );
        assert_eq!(role(&cue(1, TimeSignal, true, None, 0)), CueRole::Cmd);
        assert_eq!(role(&cue(0, SpliceNull, false, None, 0)), CueRole::Cmd);
        assert!(!segmentation_type_is_in(0));
    }

    #[test]
    fn pairs_outs_with_ins() {
        let mut out = cue(7, CueKind::SpliceInsert, true, None, 1000);
        out.end_ms = Some(31_000);
        out.duration_ms = Some(30_000);
        let back = cue(7, CueKind::SpliceInsert, false, None, 31_000);
        let open = cue(8, CueKind::SpliceInsert, true, None, 40_000);
        let cues = vec![out.clone(), back.clone(), open.clone()];
        let b = breaks(&cues);
        assert_eq!(b.len(), 2);
        assert_eq!(b[0].r#in, Some(&back));
        assert_eq!(b[0].length_ms(), Some(30_000));
        assert_eq!(b[1].r#in, None);
        assert_eq!(b[1].expected_end_ms(), None);
        assert!(b[1].overlaps(50_000, 52_000));
        assert!(!b[0].overlaps(31_000, 33_000));
        assert!(is_paired_in(&back, &cues));
        assert!(!is_paired_in(
            &cue(9, CueKind::SpliceInsert, false, None, 5),
            &cues
        ));
    }
}
