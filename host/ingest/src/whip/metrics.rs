//! WebRTC counters for `/metrics`: WHIP publishers and WHEP viewers, now and in total, and
//! what their media lost. Per-session detail (RTT, loss, frames) is in each session's end
//! log line.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct WebRtcMetrics {
    pub(crate) whip_sessions: AtomicU64,
    pub(crate) whip_sessions_total: AtomicU64,
    pub(crate) whip_frames_total: AtomicU64,
    pub(crate) whip_packets_lost_total: AtomicU64,
    pub(crate) whip_packets_bad_total: AtomicU64,
    pub(crate) whep_viewers: AtomicU64,
    pub(crate) whep_viewers_total: AtomicU64,
    pub(crate) whep_skips_total: AtomicU64,
}

impl WebRtcMetrics {
    /// Prometheus text exposition.
    pub fn render(&self, out: &mut String) {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        for (name, kind, help, v) in [
            (
                "weir_whip_sessions",
                "gauge",
                "WHIP publishers connected now",
                get(&self.whip_sessions),
            ),
            (
                "weir_whip_sessions_total",
                "counter",
                "WHIP sessions answered",
                get(&self.whip_sessions_total),
            ),
            (
                "weir_whip_frames_total",
                "counter",
                "Video frames WHIP publishers sent, rebuilt",
                get(&self.whip_frames_total),
            ),
            (
                "weir_whip_packets_lost_total",
                "counter",
                "RTP packets from WHIP publishers lost (missing after NACK)",
                get(&self.whip_packets_lost_total),
            ),
            (
                "weir_whip_packets_bad_total",
                "counter",
                "RTP payloads from WHIP publishers refused as malformed",
                get(&self.whip_packets_bad_total),
            ),
            (
                "weir_whep_viewers",
                "gauge",
                "WHEP viewers connected now",
                get(&self.whep_viewers),
            ),
            (
                "weir_whep_viewers_total",
                "counter",
                "WHEP viewers answered",
                get(&self.whep_viewers_total),
            ),
            (
                "weir_whep_skips_total",
                "counter",
                "Times a slow WHEP viewer skipped to the next keyframe",
                get(&self.whep_skips_total),
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
    }
}
