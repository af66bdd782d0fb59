//! Packager configuration, kept apart from the packager's state.
//!
//! [`Settings::validate`] is the one check of these values: the binary's config calls it
//! for `[packager]` (whose keys its messages name) and [`Packager::new`](crate::Packager::new)
//! calls it again on whatever it is given.

use std::time::Duration;

use crate::{Error, Result};

/// Segment target of the reference architecture (Apple's LL-HLS defaults).
pub const DEFAULT_SEGMENT_TARGET: Duration = Duration::from_secs(2);
/// Part target of the reference architecture.
pub const DEFAULT_PART_TARGET: Duration = Duration::from_millis(500);
/// How much completed media the playlist keeps behind the live edge.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30);

/// Below this, parts cost more in request overhead than they save in latency.
pub const MIN_PART_TARGET: Duration = Duration::from_millis(100);
/// Above this, a segment is too long for a live playlist to be low-latency at all (and
/// `EXT-X-TARGETDURATION` too long for players' hold-back).
pub const MAX_SEGMENT_TARGET: Duration = Duration::from_secs(10);
/// RFC 8216bis 6.2.2: a live playlist holds at least three target durations.
const MIN_WINDOW_SEGMENTS: u32 = 3;

/// How one rendition is cut and how much of it the playlist keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// A segment ends at the first keyframe at or after this much media, or up to half a
    /// part target before it when no keyframe came in the part target before that one (see
    /// `cutter::EARLY_CUT_PARTS`). Longer GOPs make longer segments (and raise
    /// `EXT-X-TARGETDURATION`).
    pub segment_target: Duration,
    /// Parts are cut so that none is longer than this (`EXT-X-PART-INF:PART-TARGET`).
    pub part_target: Duration,
    /// Completed segments whose end is more than this behind the live edge leave the playlist.
    pub window: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            segment_target: DEFAULT_SEGMENT_TARGET,
            part_target: DEFAULT_PART_TARGET,
            window: DEFAULT_WINDOW,
        }
    }
}

impl Settings {
    /// Checks the values and their relations. The message names the `[packager]` key of
    /// `weir.toml` each value comes from (`segment_ms`, `part_ms`, `window_s`), in its units.
    pub fn validate(&self) -> Result<()> {
        let invalid = |msg: String| Err(Error::InvalidSettings(msg));
        let (segment_ms, part_ms) = (
            self.segment_target.as_millis(),
            self.part_target.as_millis(),
        );
        if self.part_target < MIN_PART_TARGET {
            return invalid(format!(
                "packager.part_ms = {part_ms} is below the {} ms minimum",
                MIN_PART_TARGET.as_millis()
            ));
        }
        if self.part_target >= self.segment_target {
            return invalid(format!(
                "packager.part_ms ({part_ms}) must be smaller than packager.segment_ms ({segment_ms})"
            ));
        }
        if self.segment_target > MAX_SEGMENT_TARGET {
            return invalid(format!(
                "packager.segment_ms = {segment_ms} is above the {} s maximum",
                MAX_SEGMENT_TARGET.as_secs()
            ));
        }
        let min_window = self.segment_target * MIN_WINDOW_SEGMENTS;
        if self.window < min_window {
            return invalid(format!(
                "packager.window_s = {} must hold at least {MIN_WINDOW_SEGMENTS} segments ({} ms)",
                self.window.as_secs(),
                min_window.as_millis()
            ));
        }
        Ok(())
    }

    /// `EXT-X-TARGETDURATION` for segments cut exactly at the target: whole seconds, rounded up.
    pub(crate) fn configured_target_secs(&self) -> u64 {
        let t = self.segment_target;
        t.as_secs() + u64::from(t.subsec_nanos() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        Settings::default().validate().unwrap();
        let low = Settings {
            segment_target: Duration::from_secs(1),
            part_target: Duration::from_millis(200),
            window: Duration::from_secs(30),
        };
        low.validate().unwrap();
        assert_eq!(low.configured_target_secs(), 1);
    }

    #[test]
    fn rejects_bad_values_by_name() {
        let ms = Duration::from_millis;
        // (segment, part, window): the key and the limit in each message.
        let cases = [
            (
                ms(2000),
                ms(20),
                ms(30_000),
                "packager.part_ms = 20 is below the 100 ms minimum",
            ),
            (
                ms(2000),
                ms(99),
                ms(30_000),
                "packager.part_ms = 99 is below the 100 ms minimum",
            ),
            (
                ms(2000),
                ms(2000),
                ms(30_000),
                "packager.part_ms (2000) must be smaller than packager.segment_ms (2000)",
            ),
            (
                ms(10_001),
                ms(500),
                ms(60_000),
                "packager.segment_ms = 10001 is above the 10 s maximum",
            ),
            (
                ms(2000),
                ms(500),
                ms(5_000),
                "packager.window_s = 5 must hold at least 3 segments (6000 ms)",
            ),
        ];
        for (segment_target, part_target, window, message) in cases {
            let s = Settings {
                segment_target,
                part_target,
                window,
            };
            assert_eq!(s.validate().unwrap_err().to_string(), message);
        }
        // The limits themselves are valid.
        Settings {
            segment_target: MAX_SEGMENT_TARGET,
            part_target: MIN_PART_TARGET,
            window: MAX_SEGMENT_TARGET * MIN_WINDOW_SEGMENTS,
        }
        .validate()
        .unwrap();
    }

    #[test]
    fn target_rounds_up() {
        let s = Settings {
            segment_target: Duration::from_millis(1500),
            ..Settings::default()
        };
        assert_eq!(s.configured_target_secs(), 2);
        assert_eq!(Settings::default().configured_target_secs(), 2);
    }
}
