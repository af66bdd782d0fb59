//! What the encoder sends out. Its own module because both the engine thread (the ladder)
//! and the rung threads (each rung's media) send it: `engine` spawns `rung` workers, so
//! `rung` must not import from `engine`.

use weir_media::MediaEvent;

use crate::ladder::Rung;

/// What the encoder sends to the stream's packagers.
#[derive(Debug)]
pub enum EncoderEvent {
    /// The stream's rungs, highest first; sent once, before any media.
    Ladder(Vec<Rung>),
    /// Media for one rung: its tracks (video, then audio) first, then samples and cues.
    Media { rung: usize, event: MediaEvent },
}
