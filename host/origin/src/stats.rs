//! The origin's own counters, rendered on `GET /metrics` after the embedder's.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub(crate) struct OriginStats {
    /// Responses by status class (1xx..5xx → index 0..4).
    pub responses: [AtomicU64; 5],
    /// Blocking playlist reloads waiting right now.
    pub blocked: AtomicU64,
    /// Blocking reloads answered 503 after 3 target durations.
    pub reload_timeouts: AtomicU64,
}

/// Decrements the blocked gauge when the waiting request ends, however it ends.
pub(crate) struct BlockedGuard<'a>(&'a AtomicU64);

impl Drop for BlockedGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl OriginStats {
    pub fn blocked(&self) -> BlockedGuard<'_> {
        self.blocked.fetch_add(1, Ordering::Relaxed);
        BlockedGuard(&self.blocked)
    }

    pub fn count(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, out: &mut String, fills_in_flight: usize) {
        out.push_str("# HELP weir_http_responses_total HTTP responses by status class.\n");
        out.push_str("# TYPE weir_http_responses_total counter\n");
        for (i, n) in self.responses.iter().enumerate() {
            let _ = writeln!(
                out,
                "weir_http_responses_total{{class=\"{}xx\"}} {}",
                i + 1,
                n.load(Ordering::Relaxed)
            );
        }
        let gauge = |out: &mut String, name: &str, help: &str, kind: &str, v: u64| {
            weir_media::metrics::write_metric(out, name, kind, help, v);
        };
        gauge(
            out,
            "weir_blocking_reloads_waiting",
            "Blocking playlist reloads (_HLS_msn) waiting now.",
            "gauge",
            self.blocked.load(Ordering::Relaxed),
        );
        gauge(
            out,
            "weir_blocking_reload_timeouts_total",
            "Blocking playlist reloads answered 503 after 3 target durations.",
            "counter",
            self.reload_timeouts.load(Ordering::Relaxed),
        );
        gauge(
            out,
            "weir_cache_fills_in_flight",
            "Cache fills (segment concatenations) running now.",
            "gauge",
            fills_in_flight as u64,
        );
    }
}
