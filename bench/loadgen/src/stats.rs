//! What each publisher records, and the run's schedule.

use std::time::Duration;

use tokio::time::Instant;

/// When the steady window runs and when every publisher stops.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    pub window_start: Instant,
    pub window_end: Instant,
    pub stop: Instant,
}

impl Schedule {
    pub fn in_window(&self, t: Instant) -> bool {
        t >= self.window_start && t <= self.window_end
    }
}

/// How late sends were against the clip's timeline, 1 ms buckets up to 2 s.
#[derive(Debug, Clone)]
pub struct Lateness {
    buckets: Vec<u64>,
    pub max: Duration,
}

const BUCKETS: usize = 2001;

impl Default for Lateness {
    fn default() -> Self {
        Self {
            buckets: vec![0; BUCKETS],
            max: Duration::ZERO,
        }
    }
}

impl Lateness {
    pub fn record(&mut self, late: Duration) {
        let ms = usize::try_from(late.as_millis()).unwrap_or(usize::MAX);
        self.buckets[ms.min(BUCKETS - 1)] += 1;
        self.max = self.max.max(late);
    }

    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    /// The `q` quantile in ms (bucket upper bound).
    pub fn quantile_ms(&self, q: f64) -> u64 {
        let n = self.count();
        if n == 0 {
            return 0;
        }
        let want = ((n as f64) * q).ceil() as u64;
        let mut seen = 0;
        for (ms, c) in self.buckets.iter().enumerate() {
            seen += c;
            if seen >= want {
                return ms as u64;
            }
        }
        (BUCKETS - 1) as u64
    }
}

/// One publisher's run.
#[derive(Debug, Default)]
pub struct StreamReport {
    pub key: String,
    pub connected: bool,
    /// Why the publisher stopped before the schedule's end, if it did.
    pub error: Option<String>,
    /// The clip ran out before the schedule's end.
    pub clip_ended: bool,
    pub bytes_sent: u64,
    /// From the first send to the last.
    pub sending: std::time::Duration,
    /// Lateness of sends inside the steady window.
    pub late: Lateness,
}

impl StreamReport {
    pub fn new(key: String) -> Self {
        Self {
            key,
            ..Self::default()
        }
    }
}
