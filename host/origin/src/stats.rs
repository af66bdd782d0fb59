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
    /// Connections closed at accept, by [`Refused`] reason.
    pub refused: [AtomicU64; Refused::ALL.len()],
    /// Connections closed because no request was in flight for `idle_timeout`.
    pub idle_closed: AtomicU64,
    /// `/api/…` requests answered before their body was read, or while it was read, by
    /// [`ApiRefused`] reason.
    pub api_refused: [AtomicU64; ApiRefused::ALL.len()],
}

/// Why a connection was closed as soon as it was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// `max_connections` connections are open.
    Global,
    /// `max_connections_per_ip` connections from this address are open.
    PerIp,
}

impl Refused {
    pub const ALL: [Refused; 2] = [Refused::Global, Refused::PerIp];

    pub fn as_str(self) -> &'static str {
        match self {
            Refused::Global => "global",
            Refused::PerIp => "per_ip",
        }
    }
}

/// Why an API request was answered without (all of) its body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ApiRefused {
    /// The handler refused the head (a missing or wrong token): 401 before the body is read.
    Unauthorized,
    /// The body was larger than the handler allows: 413.
    TooLarge,
    /// The body did not arrive within `api_body_timeout`: 408.
    SlowBody,
    /// The client broke off or reset its body: 400.
    BadBody,
}

impl ApiRefused {
    pub const ALL: [ApiRefused; 4] = [
        ApiRefused::Unauthorized,
        ApiRefused::TooLarge,
        ApiRefused::SlowBody,
        ApiRefused::BadBody,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ApiRefused::Unauthorized => "unauthorized",
            ApiRefused::TooLarge => "too_large",
            ApiRefused::SlowBody => "slow_body",
            ApiRefused::BadBody => "bad_body",
        }
    }
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

    pub fn refused(&self, why: Refused) {
        self.refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn api_refused(&self, why: ApiRefused) {
        self.api_refused[why as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn count(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.responses[class].fetch_add(1, Ordering::Relaxed);
    }

    pub fn render(&self, out: &mut String, fills_in_flight: usize, connections_open: usize) {
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
            "weir_http_connections_open",
            "HTTP connections open now, all listeners together.",
            "gauge",
            connections_open as u64,
        );
        weir_media::metrics::write_labelled(
            out,
            "weir_http_connections_refused_total",
            "counter",
            "Connections closed at accept, by limit.",
            "reason",
            Refused::ALL.iter().map(|&why| {
                (
                    why.as_str(),
                    self.refused[why as usize].load(Ordering::Relaxed),
                )
            }),
        );
        gauge(
            out,
            "weir_http_connections_idle_closed_total",
            "Connections closed after idle_timeout with no request in flight.",
            "counter",
            self.idle_closed.load(Ordering::Relaxed),
        );
        weir_media::metrics::write_labelled(
            out,
            "weir_api_requests_refused_total",
            "counter",
            "API requests answered without their body.",
            "reason",
            ApiRefused::ALL.iter().map(|&why| {
                (
                    why.as_str(),
                    self.api_refused[why as usize].load(Ordering::Relaxed),
                )
            }),
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
