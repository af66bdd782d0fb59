//! The stream stage's counters, exported on `/metrics` by the binary.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counters of every stream's contribution (never of the slate renditions).
#[derive(Debug, Default)]
pub struct StreamMetrics {
    pub sessions_started: AtomicU64,
    pub streams_active: AtomicU64,
    pub parts_published: AtomicU64,
    pub gap_parts_published: AtomicU64,
    pub segments_published: AtomicU64,
    pub samples_rejected: AtomicU64,
    pub contribution_losses: AtomicU64,
    pub standby_starts: AtomicU64,
    pub cues: AtomicU64,
}

impl StreamMetrics {
    /// Appends the counters in the Prometheus text format.
    pub fn render(&self, out: &mut String) {
        weir_media::metrics::write_atomics(
            out,
            &[
                (
                    "weir_ingest_sessions_total",
                    "counter",
                    "Publisher sessions attached to streams.",
                    &self.sessions_started,
                ),
                (
                    "weir_streams_active",
                    "gauge",
                    "Streams being packaged now.",
                    &self.streams_active,
                ),
                (
                    "weir_parts_published_total",
                    "counter",
                    "Media parts published.",
                    &self.parts_published,
                ),
                (
                    "weir_gap_parts_published_total",
                    "counter",
                    "EXT-X-GAP parts published during contribution loss.",
                    &self.gap_parts_published,
                ),
                (
                    "weir_segments_published_total",
                    "counter",
                    "Segments published.",
                    &self.segments_published,
                ),
                (
                    "weir_samples_rejected_total",
                    "counter",
                    "Samples the packager refused (e.g. non-monotonic timestamps).",
                    &self.samples_rejected,
                ),
                (
                    "weir_contribution_losses_total",
                    "counter",
                    "Times a contribution stalled past ingest.loss_timeout_ms.",
                    &self.contribution_losses,
                ),
                (
                    "weir_standby_starts_total",
                    "counter",
                    "Times the stand-by slate took a lost publisher's place.",
                    &self.standby_starts,
                ),
                (
                    "weir_cues_total",
                    "counter",
                    "Cues (SCTE-35, RTMP cue points, API) received.",
                    &self.cues,
                ),
            ],
        );
    }

    pub(crate) fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}
