use std::time::Duration;

/// Everything that can end an ingest session or reject an FLV file.
///
/// Each variant names what was seen, so the one log line that closes a session is enough to
/// tell a misconfigured encoder from a hostile peer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A tag body or header shorter than its format requires.
    #[error("{what} too short: {len} bytes, need at least {need}")]
    TooShort {
        what: &'static str,
        len: usize,
        need: usize,
    },
    /// A video codec other than H.264 (Sorenson, VP6, HEVC over enhanced RTMP, …).
    #[error("unsupported video codec: {0}")]
    UnsupportedVideo(String),
    /// An audio codec other than AAC (MP3, Speex, Opus over enhanced RTMP, …).
    #[error("unsupported audio codec: {0}")]
    UnsupportedAudio(String),
    /// An AVC sequence header whose avcC or SPS does not parse.
    #[error("invalid AVC sequence header: {0}")]
    BadAvcConfig(String),
    /// An AAC sequence header whose AudioSpecificConfig does not parse.
    #[error("invalid AAC AudioSpecificConfig: {0:02x?}")]
    BadAacConfig(Vec<u8>),
    /// An AVC frame whose NAL unit lengths do not add up.
    #[error("malformed AVC frame at {ms} ms: {reason}")]
    BadAvcFrame { ms: i64, reason: String },
    /// Video media ran for this long without a keyframe.
    #[error("no video keyframe within {0:?} of video")]
    NoKeyframe(Duration),
    /// Not an FLV file (the first three bytes are not `FLV`).
    #[error("not an FLV file: starts with {0:02x?}")]
    NotFlv(Vec<u8>),
    /// The FLV data ended inside a header or a tag (or a tag's DataSize runs past the end).
    #[error("FLV truncated: {0}")]
    Truncated(String),
    /// An FLV tag with the encryption (filter) bit set.
    #[error("encrypted FLV tags are not supported")]
    Encrypted,
    /// The peer's RTMP handshake was malformed.
    #[error("RTMP handshake failed: {0}")]
    Handshake(String),
    /// The peer sent RTMP chunks or messages that do not parse.
    #[error("RTMP protocol error: {0}")]
    Protocol(String),
    /// An RTMP message larger than `RtmpSettings::max_message_bytes`.
    #[error("RTMP message of {len} bytes exceeds the {max}-byte limit")]
    MessageTooLarge { len: usize, max: usize },
    /// An RTMP message other than audio or video (a command, data, shared-object or control
    /// message) larger than the guard's limit for them.
    #[error("RTMP message of type {type_id} (not audio or video) of {len} bytes exceeds the {max}-byte limit for such messages")]
    CommandTooLarge { type_id: u8, len: usize, max: usize },
    /// An RTMP command or data message whose AMF values nest deeper than the guard's limit
    /// (rml_rtmp would recurse once per level, on the session's stack).
    #[error("RTMP AMF message of type {type_id} nests objects or arrays deeper than {max} levels")]
    AmfTooDeep { type_id: u8, max: usize },
    /// An RTMP connection that used more chunk stream ids than the guard tracks.
    #[error("RTMP connection uses more than {max} chunk streams")]
    TooManyChunkStreams { max: usize },
    /// The peer asked for something this server does not do, or was refused.
    #[error("refused: {0}")]
    Refused(String),
    /// The peer was too slow (handshake, publish or idle timeout).
    #[error("timed out: {0}")]
    Timeout(&'static str),
    /// The media pipeline did not take a frame in time.
    #[error("the media pipeline did not accept a frame within {0:?}")]
    SinkStalled(Duration),
    /// A SCTE-35 splice_info_section that is damaged or announces no cue.
    #[error("SCTE-35: {0}")]
    Scte35(#[from] crate::scte35::Scte35Error),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A `[rtmp]` or `[srt]` config value out of range; the message names the key.
    #[error("{0}")]
    Config(String),
}

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
