//! `weir check`: a conformance checker for any LL-HLS stream, Weir's or anyone else's.
//!
//! [`check`] follows a live stream the way a low-latency player does, for
//! [`Settings::duration`]: it reads the multivariant playlist (or takes a media playlist
//! directly), then, per rendition, issues blocking playlist reloads (`_HLS_msn` /
//! `_HLS_part`, every fourth one a delta update with `_HLS_skip=YES`), requests each
//! preload-hinted part as soon as it is hinted, and fetches every listed part, each
//! completed segment and each segment that just left the playlist. Every playlist is
//! compared with the one before it, every response is timed (head, first and last body
//! byte), and the parts' video samples are read (`moof/traf/trun` sample flags) to judge
//! `INDEPENDENT`.
//!
//! The result is a [`Report`]: one [`Finding`] per (rule, rendition), with a count, each
//! naming its rule (`RFC8216bis 4.4.3.8 PART-HOLD-BACK`, …) as an [`Severity::Error`]
//! (a MUST of RFC 8216bis broken) or a [`Severity::Warning`] (a SHOULD, or a MUST of
//! Apple's HLS Authoring Specification that the RFC leaves optional, or a delivery
//! practice). [`Report::to_text`] and `serde_json` render it; [`Report::passed`] is false
//! on any error. The rules and their thresholds are listed in [`rule`].
//!
//! ```
//! use weir_check::{Finding, Report, Severity};
//! let report = Report {
//!     url: "http://127.0.0.1:8080/live/test/master.m3u8".into(),
//!     duration_s: 15.0,
//!     renditions: vec![],
//!     findings: vec![Finding {
//!         severity: Severity::Warning,
//!         rule: weir_check::rule::FRAME_RATE.into(),
//!         rendition: "master.m3u8".into(),
//!         message: "src/index.m3u8 has no FRAME-RATE".into(),
//!         count: 1,
//!     }],
//!     notes: vec![],
//! };
//! assert!(report.passed());
//! assert!(report.to_text().contains("WARNING"));
//! ```
//!
//! Running it needs a live stream and a tokio runtime:
//! `weir_check::check(&Settings::new(url)).await?`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::Serialize;

mod follow;
pub mod http;
pub mod mp4;
pub mod playlist;

pub use follow::check;

/// The rules the checker applies, as they are named in findings. Thresholds that the
/// specifications leave to judgement are stated beside them.
pub mod rule {
    /// Error below 2 × PART-TARGET (MUST), warning below 3 × (SHOULD).
    pub const PART_HOLD_BACK: &str = "RFC8216bis 4.4.3.8 PART-HOLD-BACK";
    /// MUST be at least 6 × the target duration.
    pub const CAN_SKIP_UNTIL: &str = "RFC8216bis 4.4.3.8 CAN-SKIP-UNTIL";
    /// MUST be at least 3 × the target duration.
    pub const HOLD_BACK: &str = "RFC8216bis 4.4.3.8 HOLD-BACK";
    /// EXTINF rounded to the nearest integer MUST be <= EXT-X-TARGETDURATION.
    pub const TARGET_DURATION: &str = "RFC8216bis 4.4.3.1 EXT-X-TARGETDURATION";
    /// EXT-X-PART-INF is REQUIRED with parts; the checker also needs CAN-BLOCK-RELOAD.
    pub const LOW_LATENCY: &str = "RFC8216bis 4.4.3.7 EXT-X-PART-INF / CAN-BLOCK-RELOAD";
    /// A part's DURATION MUST be <= PART-TARGET (1 ms of rounding allowed) and >= 85 % of
    /// it, except INDEPENDENT, GAP, before-GAP and last parts.
    pub const PART_DURATION: &str = "RFC8216bis 4.4.4.9 EXT-X-PART DURATION";
    /// INDEPENDENT=YES on a part with no sync sample is an error; a part that starts with
    /// a sync sample without it, or INDEPENDENT=YES on a part whose first video sample is
    /// not a sync sample (a player starting there cannot decode up to it), a warning.
    pub const INDEPENDENT: &str = "RFC8216bis 4.4.4.9 EXT-X-PART INDEPENDENT";
    /// A parent segment and its parts MUST hold the same media: the parts listed while the
    /// segment was at the live edge must add up to its EXTINF (within 40 % of a part).
    pub const PARTS_LISTED: &str = "RFC8216bis 3.2 every part of a segment listed";
    /// The hint's URI MUST match the part later added to the playlist.
    pub const HINT_NEXT: &str = "RFC8216bis 4.4.5.3 EXT-X-PRELOAD-HINT names the next part";
    /// A hinted resource MUST be available (answered with 200) when hinted; the checker
    /// waits 3 × the target duration. A hint the server withdraws (never listed) MAY be
    /// answered 404 (anything else: a warning), and then another URI may be listed.
    pub const HINT_AVAILABLE: &str = "RFC8216bis 6.2.6 hinted resource available";
    /// No byte of a part until all of it can go at link speed: more than
    /// max(100 ms, PART-TARGET / 4) from a part's first body byte to its last is an error.
    pub const PART_WHOLE: &str = "RFC8216bis 6.2.6 part bytes sent whole";
    /// A blocking request MUST NOT be answered before the playlist holds what it asked for;
    /// one not answered within 3 × the target duration is an error (a part MUST come
    /// within one PART-TARGET, 6.2.1), and so is one for a part already listed that is not
    /// answered 200 within 500 ms.
    pub const BLOCKING: &str = "RFC8216bis 6.2.5.2 Blocking Playlist Reload";
    /// The playlist that lists a part answers the waiting blocking request at most
    /// max(PART-TARGET, 150 ms) after the hinted part's last byte arrived.
    pub const BLOCKING_PROMPT: &str = "RFC8216bis 6.2.5.2 blocking reload answered promptly";
    /// A part index past the segment's last part MUST be treated as part 0 of the next
    /// segment (deferred until that part exists).
    pub const PART_PAST_END: &str = "RFC8216bis 6.2.5.2 _HLS_part past the segment's end";
    /// `_HLS_msn` more than 2 past the last segment, or `_HLS_part` past the Advance Part
    /// Limit, SHOULD be 400 at once (warning; the checker allows 500 ms).
    pub const ADVANCE_LIMIT: &str = "RFC8216bis 6.2.5.2 beyond the advance limit";
    /// `_HLS_part` without `_HLS_msn` MUST be 400.
    pub const PART_WITHOUT_MSN: &str = "RFC8216bis 6.2.5.2 _HLS_part without _HLS_msn";
    /// A delta update MUST skip only segments older than the skip boundary, and keep
    /// everything else; its SKIPPED-SEGMENTS must match the full playlist.
    pub const SKIP: &str = "RFC8216bis 6.2.5.1 Playlist Delta Update";
    /// LAST-MSN / LAST-PART as up to date as the playlist holding them (within one part and
    /// 250 ms of the sibling's edge as the checker saw it).
    pub const RENDITION_REPORT: &str = "RFC8216bis 4.4.5.4 EXT-X-RENDITION-REPORT";
    /// Each media playlist MUST report every other rendition (Low-Latency Server
    /// Configuration Profile).
    pub const RENDITION_REPORTS_ALL: &str = "RFC8216bis B.1 a rendition report per rendition";
    /// The only changes a server may make: append, remove from the start in order,
    /// increment MEDIA-SEQUENCE / DISCONTINUITY-SEQUENCE; a URI, duration or date already
    /// published never changes, numbers never go backwards, TARGETDURATION is held.
    pub const PLAYLIST_CHANGES: &str = "RFC8216bis 6.2.1 playlist updates";
    /// Consecutive segments without EXT-X-DISCONTINUITY: date + EXTINF = next date (warning
    /// past 100 ms).
    pub const PDT: &str = "RFC8216bis 4.4.4.6 EXT-X-PROGRAM-DATE-TIME continuous";
    /// A removed segment MUST stay available for its duration plus the playlist's; the
    /// checker fetches it as soon as it leaves.
    pub const REMOVED_AVAILABLE: &str = "RFC8216bis 6.2.2 segment available after removal";
    /// A part MUST be available for 3 target durations after its EXT-X-PART is removed.
    pub const REMOVED_PART_AVAILABLE: &str = "RFC8216bis 6.2.2 part available after removal";
    /// Every listed segment, part and map MUST be available (200).
    pub const AVAILABLE: &str = "RFC8216bis 6.2.1 listed resources available";
    /// A playlist is named .m3u8/.m3u or served as application/vnd.apple.mpegurl.
    pub const CONTENT_TYPE: &str = "RFC8216bis 4 playlist Content-Type";
    /// BANDWIDTH MUST be present.
    pub const BANDWIDTH: &str = "RFC8216bis 4.4.6.2 EXT-X-STREAM-INF BANDWIDTH";
    /// CODECS SHOULD be present (warning).
    pub const CODECS: &str = "RFC8216bis 4.4.6.2 EXT-X-STREAM-INF CODECS";
    /// RESOLUTION recommended for video (warning).
    pub const RESOLUTION: &str = "RFC8216bis 4.4.6.2 EXT-X-STREAM-INF RESOLUTION";
    /// FRAME-RATE: recommended by the RFC, required by Apple's authoring spec (warning).
    pub const FRAME_RATE: &str = "Apple HLS Authoring Spec EXT-X-STREAM-INF FRAME-RATE";
    /// AVERAGE-BANDWIDTH: optional in the RFC, required by Apple's authoring spec (warning).
    pub const AVERAGE_BANDWIDTH: &str =
        "Apple HLS Authoring Spec EXT-X-STREAM-INF AVERAGE-BANDWIDTH";
    /// Delivery practice (warning): playlists cacheable no longer than the target duration,
    /// blocking responses cacheable (CDNs collapse them), parts, segments and maps
    /// cacheable for at least a minute.
    pub const CACHE_CONTROL: &str = "LL-HLS delivery Cache-Control";
    /// LL-HLS over TLS must negotiate HTTP/2 (ALPN h2): Apple's LL-HLS delivery
    /// requirement.
    pub const HTTP2: &str = "Apple LL-HLS HTTP/2 over TLS";
}

/// What to check and how.
#[derive(Clone, Debug)]
pub struct Settings {
    /// A multivariant or media playlist URL (http or https).
    pub url: String,
    /// How long to follow the stream.
    pub duration: Duration,
    /// Accept any TLS certificate.
    pub insecure: bool,
    /// Trust the roots in this PEM file instead of the system's.
    pub ca: Option<PathBuf>,
}

impl Settings {
    pub const DEFAULT_DURATION: Duration = Duration::from_secs(30);

    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            duration: Self::DEFAULT_DURATION,
            insecure: false,
            ca: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid URL {url}: {reason}")]
    Url { url: String, reason: String },
    #[error("{url}: {reason}")]
    Http { url: String, reason: String },
    #[error("{url}: no answer within {after:?}")]
    Timeout { url: String, after: Duration },
    #[error("{url}: answered {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: not a playlist: {reason}")]
    Playlist { url: String, reason: String },
    #[error("TLS setup: {0}")]
    Tls(String),
    #[error("the bearer token is not a valid header value (visible ASCII only)")]
    BadToken,
    #[error("reading {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// One broken rule in one rendition: the first occurrence's message and how many times it
/// was seen.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub rule: String,
    /// The playlist it was seen in (relative to the checked URL).
    pub rendition: String,
    pub message: String,
    pub count: u32,
}

/// What the checker did with one rendition.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct RenditionSummary {
    pub playlist: String,
    pub reloads: u32,
    pub delta_updates: u32,
    pub past_end_requests: u32,
    pub parts_listed: u32,
    pub parts_fetched: u32,
    pub hinted_parts: u32,
    pub segments_fetched: u32,
    pub removed_segments_fetched: u32,
    /// Parts whose video samples were read and compared with their `INDEPENDENT`.
    pub independence_checked: u32,
    /// The longest first-to-last-byte time of a hinted part, ms.
    pub hinted_spread_max_ms: f64,
    /// The longest first-to-last-byte time of a part already listed, ms.
    pub listed_spread_max_ms: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Report {
    pub url: String,
    pub duration_s: f64,
    pub renditions: Vec<RenditionSummary>,
    pub findings: Vec<Finding>,
    /// What was not checked, and why.
    pub notes: Vec<String>,
}

impl Report {
    pub fn errors(&self) -> usize {
        self.count(Severity::Error)
    }

    pub fn warnings(&self) -> usize {
        self.count(Severity::Warning)
    }

    fn count(&self, s: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == s).count()
    }

    /// No errors (warnings allowed).
    pub fn passed(&self) -> bool {
        self.errors() == 0
    }

    /// The findings of one rule.
    pub fn rule(&self, rule: &str) -> Vec<&Finding> {
        self.findings.iter().filter(|f| f.rule == rule).collect()
    }

    /// A human-readable report.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut s = String::new();
        let _ = writeln!(
            s,
            "weir check {} ({:.1} s, {} rendition(s))",
            self.url,
            self.duration_s,
            self.renditions.len()
        );
        for r in &self.renditions {
            let _ = writeln!(
                s,
                "  {}: {} reloads ({} delta, {} past a segment's end), {} parts listed, {} fetched ({} hinted, {} read for INDEPENDENT), {} segments, {} removed segments; part first-to-last byte max: hinted {:.0} ms, listed {:.0} ms",
                r.playlist,
                r.reloads,
                r.delta_updates,
                r.past_end_requests,
                r.parts_listed,
                r.parts_fetched,
                r.hinted_parts,
                r.independence_checked,
                r.segments_fetched,
                r.removed_segments_fetched,
                r.hinted_spread_max_ms,
                r.listed_spread_max_ms
            );
        }
        for f in &self.findings {
            let sev = match f.severity {
                Severity::Error => "ERROR  ",
                Severity::Warning => "WARNING",
            };
            let times = if f.count > 1 {
                format!(" (x{})", f.count)
            } else {
                String::new()
            };
            let _ = writeln!(
                s,
                "{sev} {} [{}]: {}{times}",
                f.rule, f.rendition, f.message
            );
        }
        for n in &self.notes {
            let _ = writeln!(s, "note: {n}");
        }
        let _ = writeln!(
            s,
            "{}: {} error(s), {} warning(s)",
            if self.passed() { "PASS" } else { "FAIL" },
            self.errors(),
            self.warnings()
        );
        s
    }
}

/// Findings gathered from many tasks, one per (rule, rendition).
#[derive(Default)]
pub(crate) struct Findings(Mutex<BTreeMap<(String, String), Finding>>);

impl Findings {
    pub(crate) fn add(
        &self,
        severity: Severity,
        rule: &str,
        rendition: &str,
        message: impl Into<String>,
    ) {
        let message = message.into();
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match map.entry((rule.to_string(), rendition.to_string())) {
            std::collections::btree_map::Entry::Occupied(mut e) => {
                let f = e.get_mut();
                f.count += 1;
                // An error outranks a warning of the same rule, and says why.
                if severity < f.severity {
                    f.severity = severity;
                    f.message = message;
                }
            }
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(Finding {
                    severity,
                    rule: rule.to_string(),
                    rendition: rendition.to_string(),
                    message,
                    count: 1,
                });
            }
        }
    }

    /// Takes the findings so far, sorted errors first.
    pub(crate) fn take_sorted(&self) -> Vec<Finding> {
        let map = std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner));
        let mut v: Vec<_> = map.into_values().collect();
        v.sort_by(|a, b| {
            (a.severity, &a.rule, &a.rendition).cmp(&(b.severity, &b.rule, &b.rendition))
        });
        v
    }
}

/// The checker is a driver: it reads the clock, here only.
pub(crate) mod clock {
    #[allow(clippy::disallowed_methods)] // the checker measures a live server's timing
    pub(crate) fn now() -> std::time::Instant {
        std::time::Instant::now()
    }
}
