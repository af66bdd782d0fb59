//! Each stream's state for the operator API (`GET /api/v1/streams`): who publishes and since
//! when, the bitrate in, the request rate and the last error. The stream's task writes it
//! (the driver, which reads the clock); readers take a copy.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Who publishes a stream: the ingest session's protocol and peer address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublisherInfo {
    pub protocol: String,
    pub addr: String,
}

/// The last thing that went wrong with a stream, and when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LastError {
    pub at_unix_ms: u64,
    pub message: String,
}

/// A copy of a stream's state.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StreamStatus {
    /// When the stream's task started.
    pub started_unix_ms: u64,
    /// `None` between publishers (after a loss, a kick, on the stand-by slate) and for the
    /// test pattern.
    pub publisher: Option<PublisherInfo>,
    pub publisher_since_unix_ms: Option<u64>,
    /// Media bytes received from publishers (samples, without container overhead).
    pub bytes_in: u64,
    /// Over the last [`METER_WINDOW`] or so.
    pub bitrate_in_bps: u64,
    /// Requests for the stream's playlists, parts and segments per second, over the last
    /// [`METER_WINDOW`] or so.
    pub requests_per_s: f64,
    pub last_error: Option<LastError>,
}

/// How often the rates are computed.
pub const METER_WINDOW: Duration = Duration::from_secs(2);

pub(crate) type StatusCell = Arc<Mutex<StreamStatus>>;

pub(crate) fn update(cell: &StatusCell, f: impl FnOnce(&mut StreamStatus)) {
    f(&mut cell.lock().unwrap_or_else(PoisonError::into_inner));
}

pub(crate) fn read(cell: &StatusCell) -> StreamStatus {
    cell.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// Turns running totals into rates once per [`METER_WINDOW`].
#[derive(Debug)]
pub(crate) struct Meter {
    at: Instant,
    bytes: u64,
    requests: u64,
}

impl Meter {
    pub(crate) fn new(at: Instant) -> Self {
        Self {
            at,
            bytes: 0,
            requests: 0,
        }
    }

    /// The rates (bits per second in, requests per second) since the last window, once a
    /// window has passed.
    pub(crate) fn tick(&mut self, now: Instant, bytes: u64, requests: u64) -> Option<(u64, f64)> {
        let elapsed = now.saturating_duration_since(self.at);
        if elapsed < METER_WINDOW {
            return None;
        }
        let secs = elapsed.as_secs_f64();
        let bits = bytes.saturating_sub(self.bytes).saturating_mul(8);
        let rates = (
            (bits as f64 / secs).round() as u64,
            requests.saturating_sub(self.requests) as f64 / secs,
        );
        *self = Self {
            at: now,
            bytes,
            requests,
        };
        Some(rates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::disallowed_methods)] // any instant will do
    fn rates_once_per_window() {
        let t0 = Instant::now();
        let mut m = Meter::new(t0);
        assert_eq!(m.tick(t0 + Duration::from_millis(1999), 500_000, 10), None);
        assert_eq!(
            m.tick(t0 + Duration::from_secs(2), 500_000, 10),
            Some((2_000_000, 5.0))
        );
        assert_eq!(m.tick(t0 + Duration::from_secs(3), 600_000, 20), None);
        assert_eq!(
            m.tick(t0 + Duration::from_secs(4), 750_000, 30),
            Some((1_000_000, 10.0))
        );
    }
}
