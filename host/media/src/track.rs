use bytes::Bytes;

/// What kind of media a track carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TrackKind {
    Video,
    Audio,
}

/// H.264 decoder configuration, as carried in an RTMP sequence header or built from SPS/PPS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct H264Config {
    /// The AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1), the body of an `avcC` box.
    pub avcc: Bytes,
    pub width: u16,
    pub height: u16,
}

impl H264Config {
    /// RFC 6381 codec string, e.g. `avc1.64001f`.
    pub fn codec_string(&self) -> String {
        match self.avcc.get(1..4) {
            Some(p) => format!("avc1.{:02x}{:02x}{:02x}", p[0], p[1], p[2]),
            None => "avc1.42e01e".to_owned(),
        }
    }
}

/// AAC decoder configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AacConfig {
    /// The AudioSpecificConfig (ISO/IEC 14496-3 1.6.2.1).
    pub asc: Bytes,
    /// Audio object type (2 = AAC-LC, 5 = HE-AAC).
    pub object_type: u8,
    pub sample_rate: u32,
    pub channels: u8,
}

impl AacConfig {
    /// Parses an AudioSpecificConfig. Returns `None` when it is too short or uses an
    /// escape value this implementation does not decode.
    pub fn from_asc(asc: Bytes) -> Option<Self> {
        const RATES: [u32; 13] = [
            96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
        ];
        let b0 = *asc.first()?;
        let b1 = *asc.get(1)?;
        let object_type = b0 >> 3;
        let freq_index = ((b0 & 0x07) << 1) | (b1 >> 7);
        let channels = (b1 >> 3) & 0x0f;
        if object_type == 0 || object_type == 31 {
            return None;
        }
        let sample_rate = *RATES.get(usize::from(freq_index))?;
        Some(Self {
            asc,
            object_type,
            sample_rate,
            channels,
        })
    }

    /// RFC 6381 codec string, e.g. `mp4a.40.2`.
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Codec {
    H264(H264Config),
    Aac(AacConfig),
}

impl Codec {
    pub fn kind(&self) -> TrackKind {
        match self {
            Codec::H264(_) => TrackKind::Video,
            Codec::Aac(_) => TrackKind::Audio,
        }
    }

    pub fn codec_string(&self) -> String {
        match self {
            Codec::H264(c) => c.codec_string(),
            Codec::Aac(c) => c.codec_string(),
        }
    }
}

/// One elementary stream of a contribution.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Track {
    /// Ticks per second of this track's timestamps: 90 000 for video, the sample rate for audio.
    pub timescale: u32,
    pub codec: Codec,
}

impl Track {
    pub fn kind(&self) -> TrackKind {
        self.codec.kind()
    }
}

/// One access unit (a video frame or an audio frame).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sample {
    /// Index into the stream's track list.
    pub track: usize,
    /// Decode timestamp in the track's timescale. Monotonic within a track.
    pub dts: i64,
    /// Presentation minus decode time, in the track's timescale.
    pub cts_offset: i32,
    /// A sync sample: an IDR frame for H.264, always true for AAC.
    pub keyframe: bool,
    /// The sample's duration when the demuxer knows it (AAC: 1024 samples per frame).
    /// `None` for video: the packager derives it from the next sample's DTS.
    pub duration: Option<u32>,
    /// H.264: length-prefixed NAL units (4-byte lengths, as in `avcC`). AAC: one raw frame, no ADTS.
    pub data: Bytes,
}

/// What an ingest session hands to the packaging pipeline, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MediaEvent {
    /// The contribution's tracks. Always first; a later one means the publisher changed
    /// codec parameters mid-session (a discontinuity). `Sample::track` indexes this list.
    Tracks(Vec<Track>),
    Sample(Sample),
    /// A splice point (SCTE-35 or equivalent), in stream order with the samples.
    Cue(crate::cue::CueEvent),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_aac_lc_48k_stereo() {
        let c = AacConfig::from_asc(Bytes::from_static(&[0x11, 0x90])).unwrap();
        assert_eq!((c.object_type, c.sample_rate, c.channels), (2, 48000, 2));
        assert_eq!(c.codec_string(), "mp4a.40.2");
    }

    #[test]
    fn rejects_short_or_escaped_asc() {
        assert!(AacConfig::from_asc(Bytes::from_static(&[0x11])).is_none());
        assert!(AacConfig::from_asc(Bytes::from_static(&[0xf8, 0x00])).is_none());
        assert!(AacConfig::from_asc(Bytes::from_static(&[0x17, 0x80])).is_none());
    }

    #[test]
    fn avc_codec_string() {
        let c = H264Config {
            avcc: Bytes::from_static(&[1, 0x64, 0x00, 0x1f, 0xff]),
            width: 1280,
            height: 720,
        };
        assert_eq!(c.codec_string(), "avc1.64001f");
    }
}
