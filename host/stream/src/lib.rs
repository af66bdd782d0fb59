//! weir-stream: the stream stage, between ingest and the origin.
//!
//! A live stream outlives its publishers. Its state machine, [`StreamCore`], is sans-IO (as
//! str0m's `Rtc`): [`StreamCore::handle_input`] takes what happened with the time it
//! happened ([`Now`]), and [`StreamCore::poll_output`] says what to do. It owns the
//! packagers (one per rendition), loss detection and gap parts, the stand-by slate, a
//! returning publisher's keyframe takeover, idle end, the transcoded ladder's routing and
//! the encoder's restarts, and cue placement. It never reads the clock and never waits.
//!
//! [`Streams`] is the thin tokio driver: one task per stream reads its publisher's channel,
//! the encoder's output and a ticker, feeds them to the core, and applies its outputs to the
//! stream's [`RenditionProducer`](weir_media::RenditionProducer)s, which the origin serves.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::{Duration, Instant};
//! use weir_stream::{Input, Now, Output, StreamCore, StreamKind, StreamMetrics, StreamPolicy, StreamSettings};
//!
//! let settings = StreamSettings {
//!     packager: weir_packager::Settings::default(),
//!     loss_timeout: Duration::from_secs(2),
//!     standby: true,
//!     idle_end: Duration::from_secs(30),
//!     linger: Duration::from_secs(10),
//!     policy: StreamPolicy::default(),
//!     numbering: None,
//! };
//! let t0 = Now { at: Instant::now(), unix_ms: 1_800_000_000_000 };
//! let mut core = StreamCore::new("news", settings, StreamKind::Passthrough, Arc::new(StreamMetrics::default()), t0);
//! assert!(matches!(core.poll_output(), Some(Output::RenditionAdded { .. })));
//!
//! // Nobody publishes: 30 s later the stream ends.
//! core.handle_input(Now { at: t0.at + Duration::from_secs(30), unix_ms: t0.unix_ms + 30_000 }, Input::Tick);
//! assert!(core.is_ended());
//! ```

mod core;
mod driver;
mod ladder;
mod metrics;
mod rendition;
mod settings;
mod status;

pub use crate::core::{
    discontinuity_base, Input, Now, Output, StreamCore, StreamKind, SLATE_RENDITION,
    SOURCE_RENDITION,
};
pub use crate::driver::{AtCapacity, Clips, NoSuchStream, Playout, Streams, CHANNEL_DEPTH};
pub use crate::metrics::StreamMetrics;
pub use crate::rendition::{RenditionId, RenditionOutput};
pub use crate::settings::{
    validate_timings, StreamOptions, StreamPolicy, StreamSettings, MIN_LOSS_TIMEOUT,
};
pub use crate::status::{LastError, PublisherInfo, StreamStatus, METER_WINDOW};

/// Where renditions keep the numbering reservations that outlive a restart
/// (`server.state_dir`, docs/design/003).
///
/// This is the one effect the core performs itself rather than returning as an output: a
/// reservation must be on disk before a playlist naming its numbers is published, and
/// calling it in place keeps that order without a round trip through the driver.
pub trait Reservations: Send + Sync + std::fmt::Debug {
    /// `stream`'s `rendition`'s reservation, or `None` (numbering follows the clock alone).
    fn rendition(
        &self,
        stream: &str,
        rendition: &str,
        settings: &weir_packager::Settings,
    ) -> Option<Box<dyn Reservation>>;
}

/// One rendition's numbering reservation.
pub trait Reservation: Send {
    /// The first (msn, part sequence) for a packager starting where the clock says
    /// (`clock`): never below what an earlier run reserved.
    fn start(&mut self, clock: (u64, u64)) -> (u64, u64);
    /// Called before `(msn, part)` and every number below can reach a viewer.
    fn cover(&mut self, used: (u64, u64));
}
