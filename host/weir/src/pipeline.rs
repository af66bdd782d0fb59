//! Per-stream packaging: media events in, a live rendition out.
//!
//! One task per publishing session owns a [`Packager`] and the stream's
//! [`RenditionProducer`]. It writes each CMAF chunk into the open part the moment the
//! packager emits it (readers of the preload-hinted part see it at once), opens the next
//! part before publishing the playlist that hints it, and publishes one snapshot per part.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::mpsc;
use tracing::{debug, info, warn, Instrument};
use weir_media::{
    rendition_channel, MediaEvent, PartProducer, RenditionProducer, RenditionSnapshot,
    StreamProducer, StreamRegistry, Track, TrackKind,
};
use weir_packager::{MediaPlaylist, MultivariantPlaylist, Output, Packager, Settings, Variant};

/// The single rendition a passthrough stream has.
pub const SOURCE_RENDITION: &str = "src";

/// Media events buffered between an ingest session and its packager task.
pub const CHANNEL_DEPTH: usize = 1024;

#[derive(Debug, Clone)]
pub struct PipelineSettings {
    pub packager: Settings,
    /// How long an ended stream stays servable with `EXT-X-ENDLIST`.
    pub linger: Duration,
}

/// Counters exported on `/metrics`.
#[derive(Debug, Default)]
pub struct PipelineMetrics {
    pub sessions_started: AtomicU64,
    pub sessions_active: AtomicU64,
    pub parts_published: AtomicU64,
    pub segments_published: AtomicU64,
    pub samples_rejected: AtomicU64,
}

/// Starts packaging stream `name`: returns the sender an ingest session writes to.
/// The stream is live in `registry` from its first part until `linger` after the sender drops.
pub fn spawn_stream(
    registry: &StreamRegistry,
    name: &str,
    settings: PipelineSettings,
    metrics: Arc<PipelineMetrics>,
) -> mpsc::Sender<MediaEvent> {
    let (tx, rx) = mpsc::channel(CHANNEL_DEPTH);
    let stream = registry.publish(name);
    let span = tracing::info_span!("stream", name = %name);
    metrics.sessions_started.fetch_add(1, Ordering::Relaxed);
    metrics.sessions_active.fetch_add(1, Ordering::Relaxed);
    tokio::spawn(
        async move {
            let linger = settings.linger;
            let mut task = StreamTask::new(stream, settings, Arc::clone(&metrics));
            task.run(rx).await;
            metrics.sessions_active.fetch_sub(1, Ordering::Relaxed);
            // Keep the ended playlist servable for players that are still catching up.
            tokio::time::sleep(linger).await;
            debug!("stream removed");
        }
        .instrument(span),
    );
    tx
}

struct StreamTask {
    stream: StreamProducer,
    rendition: RenditionProducer,
    settings: PipelineSettings,
    metrics: Arc<PipelineMetrics>,
    packager: Option<Packager>,
    open_part: Option<(u64, PartProducer)>,
    tracks: Vec<Track>,
    version: u64,
    /// Where the next packager continues numbering after a codec change.
    next_msn: u64,
    next_part_seq: u64,
    bandwidth: Option<u64>,
}

#[allow(clippy::disallowed_methods)] // the driver is where the wall clock is read
fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl StreamTask {
    fn new(
        stream: StreamProducer,
        settings: PipelineSettings,
        metrics: Arc<PipelineMetrics>,
    ) -> Self {
        let (rendition, consumer) = rendition_channel();
        stream.add_rendition(SOURCE_RENDITION, consumer);
        Self {
            stream,
            rendition,
            settings,
            metrics,
            packager: None,
            open_part: None,
            tracks: Vec::new(),
            version: 0,
            next_msn: 0,
            next_part_seq: 0,
            bandwidth: None,
        }
    }

    async fn run(&mut self, mut rx: mpsc::Receiver<MediaEvent>) {
        while let Some(event) = rx.recv().await {
            match event {
                MediaEvent::Tracks(tracks) => self.start_packager(tracks),
                MediaEvent::Sample(sample) => {
                    let Some(packager) = self.packager.as_mut() else {
                        continue;
                    };
                    if let Err(e) = packager.push(now_unix_ms(), sample) {
                        self.metrics
                            .samples_rejected
                            .fetch_add(1, Ordering::Relaxed);
                        warn!(error = %e, "sample rejected");
                        continue;
                    }
                    self.drain();
                }
                MediaEvent::Cue(cue) => {
                    // Rendering cues as EXT-X-DATERANGE is the packager's job (SCTE-35 issue).
                    debug!(id = cue.id, kind = ?cue.kind, "cue received");
                }
            }
        }
        info!("publisher left; ending stream");
        if let Some(p) = self.packager.as_mut() {
            p.finish();
        }
        self.drain();
        self.publish(true);
    }

    fn start_packager(&mut self, tracks: Vec<Track>) {
        if let Some(p) = self.packager.as_mut() {
            if self.tracks == tracks {
                return;
            }
            // The publisher changed codec parameters: close what we have and start a new
            // packager that continues the numbering.
            p.finish();
            self.drain();
        }
        match Packager::new(
            self.settings.packager.clone(),
            tracks.clone(),
            self.next_msn,
            self.next_part_seq,
        ) {
            Ok(p) => {
                info!(tracks = %describe(&tracks), "packaging");
                self.rendition.set_init(p.init_segment());
                self.open_hint(p.next_part_seq());
                self.packager = Some(p);
                self.tracks = tracks;
                self.publish_multivariant();
            }
            Err(e) => {
                warn!(error = %e, "cannot package these tracks");
                self.packager = None;
            }
        }
    }

    /// Opens the part the next playlist's preload hint names, so that a request for it can
    /// attach and stream it as it is written.
    fn open_hint(&mut self, seq: u64) {
        if self.open_part.as_ref().is_some_and(|(s, _)| *s == seq) {
            return;
        }
        if let Some(p) = self.rendition.begin_part(seq) {
            self.open_part = Some((seq, p));
        }
    }

    fn drain(&mut self) {
        let mut published_part = false;
        while let Some(out) = self.packager.as_mut().and_then(Packager::poll_output) {
            match out {
                Output::PartStarted { seq, .. } => self.open_hint(seq),
                Output::Chunk { seq, bytes } => match &self.open_part {
                    Some((s, p)) if *s == seq => p.push(bytes),
                    _ => warn!(seq, "chunk for a part that is not open"),
                },
                Output::PartCompleted { seq, .. } => {
                    if let Some((s, p)) = self.open_part.take() {
                        if s == seq {
                            p.finish();
                        } else {
                            warn!(seq, open = s, "completed part is not the open one");
                        }
                    }
                    self.next_part_seq = seq + 1;
                    self.open_hint(seq + 1);
                    self.metrics.parts_published.fetch_add(1, Ordering::Relaxed);
                    published_part = true;
                }
                Output::SegmentCompleted { msn, parts, .. } => {
                    self.rendition.complete_segment(msn, parts);
                    self.next_msn = msn + 1;
                    self.metrics
                        .segments_published
                        .fetch_add(1, Ordering::Relaxed);
                }
                Output::WindowAdvanced { .. } => {}
            }
        }
        if published_part {
            self.publish(false);
        }
    }

    fn publish(&mut self, ended: bool) {
        let Some(packager) = self.packager.as_ref() else {
            return;
        };
        let mut playlist = packager.media_playlist();
        if ended {
            playlist.ended = true;
            playlist.preload_hint = None;
        }
        let full = render(&playlist, false);
        let skip = playlist.can_skip_until.map(|_| render(&playlist, true));
        let next_msn = playlist.media_sequence + playlist.segments.len() as u64;
        let parts_done = playlist
            .partial
            .as_ref()
            .map_or(0, |p| u32::try_from(p.parts.len()).unwrap_or(u32::MAX));
        self.version += 1;
        self.rendition.publish(RenditionSnapshot {
            version: self.version,
            first_msn: playlist.media_sequence,
            next_msn,
            parts_done,
            target_duration: Duration::from_secs(playlist.target_duration),
            part_target: playlist.part_target,
            playlist: full,
            playlist_skip: skip,
            ended,
        });
        let bw = packager.bandwidth_estimate();
        if bw.is_some() && bw != self.bandwidth {
            // BANDWIDTH is a peak: only ever raise it, so players never see it shrink.
            if bw > self.bandwidth {
                self.bandwidth = bw;
                self.publish_multivariant();
            }
        }
    }

    fn publish_multivariant(&mut self) {
        let video = self.tracks.iter().find_map(|t| match &t.codec {
            weir_media::Codec::H264(c) => Some(c),
            weir_media::Codec::Aac(_) => None,
        });
        let codecs: Vec<String> = self.tracks.iter().map(|t| t.codec.codec_string()).collect();
        let mv = MultivariantPlaylist {
            variants: vec![Variant {
                uri: format!("{SOURCE_RENDITION}/index.m3u8"),
                // Until a segment has been measured, assume a typical contribution bitrate.
                bandwidth: self.bandwidth.unwrap_or(3_000_000),
                average_bandwidth: None,
                codecs: codecs.join(","),
                resolution: video.map(|v| (v.width, v.height)),
                frame_rate: None,
            }],
        };
        let mut out = Vec::with_capacity(512);
        if mv.write_to(&mut out).is_ok() {
            self.stream.set_multivariant(Bytes::from(out));
        }
    }
}

fn render(playlist: &MediaPlaylist, skip: bool) -> Bytes {
    let mut out = Vec::with_capacity(4096);
    // Writing into a Vec cannot fail.
    let _ = playlist.write_to(&mut out, skip);
    let _ = out.flush();
    Bytes::from(out)
}

fn describe(tracks: &[Track]) -> String {
    tracks
        .iter()
        .map(|t| match &t.codec {
            weir_media::Codec::H264(c) => format!("{} {}x{}", c.codec_string(), c.width, c.height),
            weir_media::Codec::Aac(c) => {
                format!(
                    "{} {} Hz {} ch",
                    c.codec_string(),
                    c.sample_rate,
                    c.channels
                )
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
        + if tracks.iter().any(|t| t.kind() == TrackKind::Video) {
            ""
        } else {
            " (audio only)"
        }
}
