//! Packager configuration, kept apart from the packager's state.

use std::time::Duration;

use crate::{Error, Result};

/// Segment target of the reference architecture (Apple's LL-HLS defaults).
pub const DEFAULT_SEGMENT_TARGET: Duration = Duration::from_secs(2);
/// Part target of the reference architecture.
pub const DEFAULT_PART_TARGET: Duration = Duration::from_millis(500);
/// How much completed media the playlist keeps behind the live edge.
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(30);

/// Below this, parts cost more in request overhead than they save in latency.
const MIN_PART_TARGET: Duration = Duration::from_millis(50);
/// RFC 8216bis 6.2.2: a live playlist holds at least three target durations.
const MIN_WINDOW_SEGMENTS: u32 = 3;

/// How one rendition is cut and how much of it the playlist keeps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Settings {
    /// A segment ends at the first keyframe at or after this much media. Longer GOPs make
    /// longer segments (and raise `EXT-X-TARGETDURATION`).
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
    /// Checks the values against each other; the error names the offending key.
    pub fn validate(&self) -> Result<()> {
        let invalid = |msg: String| Err(Error::InvalidSettings(msg));
        if self.part_target < MIN_PART_TARGET {
            return invalid(format!(
                "part_target is {:?}, below the minimum of {MIN_PART_TARGET:?}",
                self.part_target
            ));
        }
        if self.part_target >= self.segment_target {
            return invalid(format!(
                "part_target ({:?}) must be shorter than segment_target ({:?})",
                self.part_target, self.segment_target
            ));
        }
        if self.window < self.segment_target * MIN_WINDOW_SEGMENTS {
            return invalid(format!(
                "window ({:?}) must hold at least {MIN_WINDOW_SEGMENTS} segments of segment_target ({:?})",
                self.window, self.segment_target
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
        let cases = [
            (
                Duration::from_secs(2),
                Duration::from_millis(20),
                "part_target",
            ),
            (
                Duration::from_secs(2),
                Duration::from_secs(2),
                "shorter than segment_target",
            ),
            (
                Duration::from_millis(100),
                Duration::from_millis(50),
                "window",
            ),
        ];
        for (segment_target, part_target, needle) in cases {
            let s = Settings {
                segment_target,
                part_target,
                window: if needle == "window" {
                    Duration::from_millis(250)
                } else {
                    DEFAULT_WINDOW
                },
            };
            let err = s.validate().unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
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
