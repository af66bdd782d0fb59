//! WebRTC counters for `/metrics`: WHIP publishers and WHEP viewers, now and in total, and
//! what their media lost. Per-session detail (RTT, loss, frames) is in each session's end
//! log line.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rtc::peer_connection::RTCPeerConnection;
use rtc::statistics::StatsSelector;

/// One WebRTC session as the operator API shows it (`GET /api/v1/webrtc`), refreshed by
/// its task every second.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SessionStats {
    /// `whip` (a publisher) or `whep` (a viewer).
    pub kind: &'static str,
    /// The stream a viewer watches; for a publisher, its key's redacted form (`k:…`).
    pub stream: String,
    /// Where the peer's datagrams come from (`ip:port`), once any have.
    pub peer: Option<String>,
    pub connected: bool,
    /// Seconds since the session was answered.
    pub age_s: f64,
    /// ICE round-trip time (consent checks), milliseconds.
    pub rtt_ms: Option<f64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Over the last second, kbit/s.
    pub kbps_in: f64,
    pub kbps_out: f64,
    /// Publishers: RTP packets lost (missing after NACK); viewers: times it skipped to a
    /// keyframe because it fell behind.
    pub lost: u64,
    /// Publishers: video frames rebuilt; viewers: frames sent.
    pub frames: u64,
}

impl SessionStats {
    /// Refreshes the transport figures from `pc`'s selected candidate pair.
    pub(crate) fn refresh(
        &mut self,
        pc: &mut RTCPeerConnection,
        now: Instant,
        since: Instant,
        last: &mut (Instant, u64, u64),
    ) {
        let report = pc.get_stats(now, StatsSelector::None);
        let Some(pair) = report
            .candidate_pairs()
            .max_by_key(|p| p.bytes_received + p.bytes_sent)
        else {
            return;
        };
        self.age_s = now.saturating_duration_since(since).as_secs_f64();
        self.rtt_ms =
            (pair.current_round_trip_time > 0.0).then_some(pair.current_round_trip_time * 1000.0);
        self.bytes_in = pair.bytes_received;
        self.bytes_out = pair.bytes_sent;
        let dt = now.saturating_duration_since(last.0).as_secs_f64();
        if dt > 0.2 {
            self.kbps_in = (pair.bytes_received.saturating_sub(last.1)) as f64 * 8.0 / dt / 1000.0;
            self.kbps_out = (pair.bytes_sent.saturating_sub(last.2)) as f64 * 8.0 / dt / 1000.0;
            *last = (now, pair.bytes_received, pair.bytes_sent);
        }
    }
}

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
