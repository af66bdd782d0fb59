//! A virtual clock and synthetic publishers around a [`StreamCore`]: str0m's `progress()`
//! model. Time moves only when a test says so, in the driver's tick steps, with each
//! source's media delivered at its own timestamps; a test of a 30-second loss runs in
//! milliseconds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use weir_encoder::{EncoderEvent, Rung};
use weir_media::{AacConfig, Codec, H264Config, MediaEvent, RenditionSnapshot, Sample, Track};
use weir_stream::{
    Input, Now, Output, RenditionOutput, StreamCore, StreamKind, StreamMetrics, StreamPolicy,
    StreamSettings,
};

/// A wall clock well inside the packager's range.
pub const T0_UNIX_MS: u64 = 1_800_000_000_000;

/// An SPS/PPS pair (Baseline 3.0), as ingest would hand it over in an `avcC`.
const AVCC: &[u8] = &[
    0x01, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0x00, 0x04, 0x67, 0x42, 0xc0, 0x1e, 0x01, 0x00, 0x02, 0x68,
    0xce,
];

pub fn settings(segment_ms: u64, part_ms: u64) -> StreamSettings {
    StreamSettings {
        packager: weir_packager::Settings {
            segment_target: Duration::from_millis(segment_ms),
            part_target: Duration::from_millis(part_ms),
            window: Duration::from_secs(30),
        },
        loss_timeout: Duration::from_millis(1500),
        standby: false,
        idle_end: Duration::from_secs(20),
        linger: Duration::from_secs(10),
        policy: StreamPolicy::default(),
        numbering: None,
    }
}

pub fn video_track(width: u16, height: u16) -> Track {
    Track {
        timescale: 90_000,
        codec: Codec::H264(H264Config {
            avcc: Bytes::from_static(AVCC),
            width,
            height,
        }),
    }
}

pub fn audio_track() -> Track {
    Track {
        timescale: 48_000,
        codec: Codec::Aac(AacConfig::from_asc(Bytes::from_static(&[0x11, 0x90])).unwrap()),
    }
}

/// A synthetic publisher: 30 fps video with a keyframe every `gop` frames, and AAC at
/// 48 kHz when it has an audio track, each frame due at its timestamp after `start`.
pub struct Source {
    pub tracks: Vec<Track>,
    pub gop: i64,
    /// Video frames per second (30 unless a test says otherwise).
    pub fps: i64,
    /// Virtual time of DTS 0.
    pub start: Duration,
    /// Added to every DTS (a publisher whose timestamps do not start at 0).
    pub dts_base: i64,
    pub frame: i64,
    pub aac_frame: i64,
    sent_tracks: bool,
}

impl Source {
    pub fn new(tracks: Vec<Track>, start: Duration) -> Self {
        Self {
            tracks,
            gop: 30,
            fps: 30,
            start,
            dts_base: 0,
            frame: 0,
            aac_frame: 0,
            sent_tracks: false,
        }
    }

    /// Video only, 1280x720.
    pub fn video(start: Duration) -> Self {
        Self::new(vec![video_track(1280, 720)], start)
    }

    fn video_due(&self) -> Duration {
        self.start + Duration::from_millis((self.frame * 1000 / self.fps) as u64)
    }

    fn audio_due(&self) -> Option<Duration> {
        (self.tracks.len() > 1).then(|| {
            self.start + Duration::from_micros((self.aac_frame * 1024 * 1_000_000 / 48_000) as u64)
        })
    }

    /// When its next event is due.
    pub fn due(&self) -> Duration {
        if !self.sent_tracks {
            return self.start;
        }
        match self.audio_due() {
            Some(a) => a.min(self.video_due()),
            None => self.video_due(),
        }
    }

    pub fn next_event(&mut self) -> MediaEvent {
        if !self.sent_tracks {
            self.sent_tracks = true;
            return MediaEvent::Tracks(self.tracks.clone());
        }
        if self.audio_due().is_some_and(|a| a < self.video_due()) {
            let i = self.aac_frame;
            self.aac_frame += 1;
            return MediaEvent::Sample(Sample {
                track: 1,
                dts: i * 1024,
                cts_offset: 0,
                keyframe: true,
                duration: Some(1024),
                data: Bytes::from(vec![0x21; 12]),
            });
        }
        let i = self.frame;
        self.frame += 1;
        MediaEvent::Sample(Sample {
            track: 0,
            dts: self.dts_base + i * (90_000 / self.fps),
            cts_offset: 0,
            keyframe: i % self.gop == 0,
            duration: None,
            data: Bytes::from(vec![0x65; 200]),
        })
    }
}

/// What the core did, as a driver would have applied it.
#[derive(Debug, Default)]
pub struct RenditionLog {
    pub name: String,
    /// Every published version, with the virtual time it was published.
    pub published: Vec<(Duration, RenditionSnapshot)>,
    /// Parts by sequence number: their bytes, and whether they were finished.
    pub parts: BTreeMap<u64, (Vec<u8>, bool)>,
    pub aborted: Vec<u64>,
    pub segments: Vec<(u64, std::ops::Range<u64>)>,
    pub inits: Vec<u64>,
}

impl RenditionLog {
    pub fn last(&self) -> &RenditionSnapshot {
        &self.published.last().expect("a published playlist").1
    }

    pub fn last_text(&self) -> String {
        String::from_utf8(self.last().playlist.to_vec()).unwrap()
    }

    /// Asserts `n` init segments, each named by the first part that uses it (so never
    /// reused, across restarts either): increasing, and each one a part that was written.
    pub fn assert_inits(&self, n: usize) {
        assert_eq!(self.inits.len(), n, "init generations {:?}", self.inits);
        assert!(
            self.inits.windows(2).all(|w| w[0] < w[1]),
            "{:?}",
            self.inits
        );
        for g in &self.inits {
            assert!(self.parts.contains_key(g), "init{g}.mp4 names no part");
        }
    }

    /// When the first playlist containing `needle` was published.
    pub fn first_with(&self, needle: &str) -> Option<Duration> {
        self.published
            .iter()
            .find(|(_, s)| String::from_utf8_lossy(&s.playlist).contains(needle))
            .map(|(t, _)| *t)
    }
}

/// Stream-level things the core asked for, with their virtual time.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    StartStandby(usize),
    StopStandby,
    StartSlate,
    StartEncoder {
        pts: i64,
        rungs: Option<usize>,
        restart: bool,
    },
    ToEncoder(&'static str),
    StopEncoder,
    StartSlateLadder(Vec<String>),
    Ended,
}

pub struct Harness {
    pub core: StreamCore,
    pub metrics: Arc<StreamMetrics>,
    t0: Instant,
    /// Virtual time since the start.
    pub elapsed: Duration,
    pub tick: Duration,
    pub renditions: Vec<RenditionLog>,
    pub multivariant: Option<String>,
    pub events: Vec<(Duration, Event)>,
    t0_unix_ms: u64,
}

impl Harness {
    pub fn new(settings: StreamSettings, kind: StreamKind) -> Self {
        Self::starting_at(settings, kind, T0_UNIX_MS)
    }

    /// A core whose wall clock starts at `unix_ms` (a restart, later than [`T0_UNIX_MS`]).
    pub fn starting_at(settings: StreamSettings, kind: StreamKind, unix_ms: u64) -> Self {
        let metrics = Arc::new(StreamMetrics::default());
        let tick = settings.tick();
        #[allow(clippy::disallowed_methods)] // the virtual clock's origin; it only moves by hand
        let t0 = Instant::now();
        let core = StreamCore::new(
            "test",
            settings,
            kind,
            Arc::clone(&metrics),
            Now { at: t0, unix_ms },
        );
        let mut h = Self {
            t0_unix_ms: unix_ms,
            core,
            metrics,
            t0,
            elapsed: Duration::ZERO,
            tick,
            renditions: Vec::new(),
            multivariant: None,
            events: Vec::new(),
        };
        h.drain();
        h
    }

    pub fn passthrough(settings: StreamSettings) -> Self {
        Self::new(settings, StreamKind::Passthrough)
    }

    pub fn now(&self) -> Now {
        Now {
            at: self.t0 + self.elapsed,
            unix_ms: self.t0_unix_ms + self.elapsed.as_millis() as u64,
        }
    }

    pub fn input(&mut self, input: Input) {
        self.core.handle_input(self.now(), input);
        self.drain();
    }

    pub fn rendition(&self, name: &str) -> &RenditionLog {
        self.renditions
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("no rendition {name}"))
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.iter().map(|(_, e)| e.clone()).collect()
    }

    pub fn event_time(&self, wanted: &Event) -> Option<Duration> {
        self.events
            .iter()
            .find(|(_, e)| e == wanted)
            .map(|(t, _)| *t)
    }

    fn drain(&mut self) {
        let at = self.elapsed;
        while let Some(out) = self.core.poll_output() {
            let event = match out {
                Output::RenditionAdded { id, name } => {
                    assert_eq!(id.0, self.renditions.len());
                    self.renditions.push(RenditionLog {
                        name,
                        ..RenditionLog::default()
                    });
                    continue;
                }
                Output::Rendition(id, event) => {
                    let r = &mut self.renditions[id.0];
                    match event {
                        RenditionOutput::Init { generation, .. } => r.inits.push(generation),
                        RenditionOutput::OpenPart { seq } => {
                            r.parts.insert(seq, (Vec::new(), false));
                        }
                        RenditionOutput::Chunk { seq, bytes } => {
                            let part = r.parts.get_mut(&seq).expect("a chunk for an open part");
                            assert!(!part.1, "a chunk after the part finished");
                            part.0.extend_from_slice(&bytes);
                        }
                        RenditionOutput::FinishPart { seq } => {
                            r.parts.get_mut(&seq).expect("finishing an open part").1 = true;
                        }
                        RenditionOutput::AbortPart { seq } => {
                            r.parts.remove(&seq);
                            r.aborted.push(seq);
                        }
                        RenditionOutput::SegmentCompleted { msn, parts } => {
                            r.segments.push((msn, parts));
                        }
                        RenditionOutput::Publish(s) => {
                            if let Some((_, prev)) = r.published.last() {
                                assert!(s.version > prev.version);
                                assert!(s.next_msn >= prev.next_msn, "the live edge went back");
                            }
                            r.published.push((at, s));
                        }
                    }
                    continue;
                }
                Output::Multivariant(b) => {
                    self.multivariant = Some(String::from_utf8(b.to_vec()).unwrap());
                    continue;
                }
                Output::StartStandby(kinds) => Event::StartStandby(kinds.len()),
                Output::StopStandby => Event::StopStandby,
                Output::StartSlate => Event::StartSlate,
                Output::StartEncoder { start, restart } => Event::StartEncoder {
                    pts: start.pts,
                    rungs: start.rungs.map(|r| r.len()),
                    restart,
                },
                Output::ToEncoder(e) => Event::ToEncoder(match e {
                    MediaEvent::Tracks(_) => "tracks",
                    MediaEvent::Sample(_) => "sample",
                    MediaEvent::Cue(_) => "cue",
                }),
                Output::StopEncoder => Event::StopEncoder,
                Output::StartSlateLadder(rungs) => {
                    Event::StartSlateLadder(rungs.into_iter().map(|r| r.name).collect())
                }
                Output::Ended => Event::Ended,
            };
            self.events.push((at, event));
        }
    }

    /// Moves the clock to `until`, ticking on the driver's cadence and delivering each of
    /// `sources`' events (tagged with how it enters the core) when it is due.
    pub fn progress(&mut self, until: Duration, sources: &mut [(&mut Source, Feed)]) {
        let t = self.tick.as_millis() as u64;
        let mut next_tick = Duration::from_millis((self.elapsed.as_millis() as u64 / t + 1) * t);
        loop {
            let due = sources
                .iter()
                .enumerate()
                .map(|(i, (s, _))| (s.due(), i))
                .min();
            let (at, which) = match due {
                Some((d, i)) if d < next_tick => (d, Some(i)),
                _ => (next_tick, None),
            };
            if at > until {
                break;
            }
            self.elapsed = self.elapsed.max(at);
            match which {
                Some(i) => {
                    let (source, feed) = &mut sources[i];
                    let event = source.next_event();
                    let input = match feed {
                        Feed::Publisher => Input::Media(event),
                        Feed::Standby => Input::Standby(event),
                        Feed::Slate => Input::Slate(event),
                        Feed::Rung(r) => Input::Encoder(EncoderEvent::Media { rung: *r, event }),
                    };
                    self.input(input);
                }
                None => {
                    self.input(Input::Tick);
                    next_tick += self.tick;
                }
            }
            if self.core.is_ended() {
                return;
            }
        }
        self.elapsed = self.elapsed.max(until);
    }

    /// Moves the clock to `until` with no media.
    pub fn idle(&mut self, until: Duration) {
        self.progress(until, &mut []);
    }
}

/// How a source's events enter the core.
#[derive(Debug, Clone, Copy)]
pub enum Feed {
    Publisher,
    Standby,
    Slate,
    /// Encoder output for rung `n`.
    Rung(usize),
}

pub fn rungs() -> Vec<Rung> {
    vec![
        Rung {
            name: "720p".to_owned(),
            width: 1280,
            height: 720,
            bitrate: 3_000_000,
        },
        Rung {
            name: "360p".to_owned(),
            width: 640,
            height: 360,
            bitrate: 800_000,
        },
    ]
}

/// The program-date-time (Unix ms) where a media playlist's newest media ends: its live edge.
pub fn edge_pdt_ms(playlist: &str) -> u64 {
    let mut start = 0u64;
    let mut parts = 0f64;
    let mut extinf = None;
    let mut edge = 0u64;
    for line in playlist.lines() {
        if let Some(d) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            start = parse_date_ms(d);
            parts = 0.0;
        } else if let Some(rest) = line.strip_prefix("#EXT-X-PART:DURATION=") {
            let d: f64 = rest.split(',').next().unwrap().parse().unwrap();
            parts += d;
            edge = edge.max(start + (parts * 1000.0).round() as u64);
        } else if let Some(rest) = line.strip_prefix("#EXTINF:") {
            extinf = Some(rest.trim_end_matches(',').parse::<f64>().unwrap());
        } else if !line.starts_with('#') && !line.is_empty() {
            if let Some(d) = extinf.take() {
                edge = edge.max(start + (d * 1000.0).round() as u64);
            }
            parts = 0.0;
        }
    }
    edge
}

/// `2027-01-15T08:00:00.000Z` in Unix milliseconds (weir-media's PROGRAM-DATE-TIME parser).
pub fn parse_date_ms(s: &str) -> u64 {
    let ms = weir_media::date::parse_date_ms(s).unwrap();
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // whole ms, after 1970
    let ms = ms.round() as u64;
    ms
}

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}
