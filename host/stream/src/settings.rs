//! What a stream stage is configured with: timings shared by every stream, and per-stream
//! options that come from the stream's tenant.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use weir_encoder::EncoderSettings;

use crate::Reservations;

/// The stream stage's settings, shared by every stream.
#[derive(Debug, Clone)]
pub struct StreamSettings {
    pub packager: weir_packager::Settings,
    /// No media for this long and the contribution counts as lost: gap parts follow.
    pub loss_timeout: Duration,
    /// Passed-through streams: once the contribution is lost, the gap so far is published
    /// with the stand-by slate right behind it, and the slate plays until a publisher
    /// returns. Off: gap parts for the whole loss (Shaka stops at a live edge that is all
    /// gaps; docs/design/005-contribution-loss.md).
    pub standby: bool,
    /// No publisher for this long and the stream ends (`EXT-X-ENDLIST`).
    pub idle_end: Duration,
    /// How long an ended stream stays servable with `EXT-X-ENDLIST`.
    pub linger: Duration,
    /// Per-stream choices that come from the stream's tenant.
    pub policy: StreamPolicy,
    /// Keeps each rendition's numbers above what an earlier run served, whatever the clock
    /// says (`server.state_dir`; `None`: the clock alone). docs/design/003.
    pub numbering: Option<Arc<dyn Reservations>>,
}

/// The shortest `loss_timeout`: below it, ordinary jitter in a contribution would read as
/// a loss.
pub const MIN_LOSS_TIMEOUT: Duration = Duration::from_millis(200);

/// Checks the stream stage's timings, naming each value's `weir.toml` key:
/// `ingest.loss_timeout_ms` at least [`MIN_LOSS_TIMEOUT`], and `ingest.idle_end_s` no
/// shorter than it (a stream must be able to lose its publisher before it ends).
pub fn validate_timings(loss_timeout: Duration, idle_end: Duration) -> Result<(), String> {
    if loss_timeout < MIN_LOSS_TIMEOUT {
        return Err(format!(
            "ingest.loss_timeout_ms = {} is below the {} ms minimum",
            loss_timeout.as_millis(),
            MIN_LOSS_TIMEOUT.as_millis()
        ));
    }
    if idle_end < loss_timeout {
        return Err("ingest.idle_end_s must be at least ingest.loss_timeout_ms".to_owned());
    }
    Ok(())
}

impl StreamSettings {
    /// [`validate_timings`] of these settings (the packager's are its own:
    /// [`weir_packager::Settings::validate`]).
    pub fn validate(&self) -> Result<(), String> {
        validate_timings(self.loss_timeout, self.idle_end)
    }

    /// How often the driver ticks the core: often enough that gap parts and the loss
    /// timeout land within a quarter of a part of their time.
    pub fn tick(&self) -> Duration {
        (self.packager.part_target / 4).max(Duration::from_millis(20))
    }
}

/// What a stream's tenant asks of its stream stage.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// The packager renders cues as `EXT-X-DATERANGE` (off when the tenant's scte35 plugin
    /// does it instead).
    pub cue_tags: bool,
    /// The stream also has a `slate` rendition (the built-in slate, looped and packaged
    /// with the stream's settings), for the blackout plugin to send viewers to.
    pub slate: bool,
    /// Transcode into this ladder; `None` passes the contribution through as `src`.
    pub encoder: Option<Arc<EncoderSettings>>,
    /// Parts are listed as byte ranges of their segment instead of one URI each
    /// ([`Packager::set_byterange_parts`](weir_packager::Packager::set_byterange_parts)).
    pub byterange_parts: bool,
}

impl Default for StreamOptions {
    fn default() -> Self {
        Self {
            cue_tags: true,
            slate: false,
            encoder: None,
            byterange_parts: false,
        }
    }
}

/// [`StreamOptions`] by stream name, with a default for the rest.
#[derive(Debug, Clone, Default)]
pub struct StreamPolicy {
    pub streams: HashMap<String, StreamOptions>,
    pub default: StreamOptions,
}

impl StreamPolicy {
    pub fn for_stream(&self, stream: &str) -> StreamOptions {
        self.streams
            .get(stream)
            .cloned()
            .unwrap_or_else(|| self.default.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timings_are_checked_at_their_limits_and_name_the_key() {
        let ms = Duration::from_millis;
        assert!(validate_timings(ms(200), ms(200)).is_ok());
        assert_eq!(
            validate_timings(ms(199), ms(60_000)).unwrap_err(),
            "ingest.loss_timeout_ms = 199 is below the 200 ms minimum"
        );
        assert_eq!(
            validate_timings(ms(1500), ms(1000)).unwrap_err(),
            "ingest.idle_end_s must be at least ingest.loss_timeout_ms"
        );
    }
}
