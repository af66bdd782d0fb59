//! A stream's WebRTC feed: one task per stream with viewers, however many. It follows the
//! stream's rendition in the registry as the origin does (parts as they are written, chunk
//! by chunk), reads the CMAF back into samples, turns AAC into Opus once, and broadcasts
//! frames to the viewers' sessions. Each frame carries the wall-clock time weir received it
//! (the rendition's PROGRAM-DATE-TIME), which the sessions use as the RTP clock, so a
//! viewer's RTP timestamps tell its glass-to-glass latency.

use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::broadcast;
use tracing::{debug, info, warn};
use weir_media::{Lookup, RenditionConsumer, StreamRegistry};

use super::fmp4::{self, Init};
use super::OpusEncoders;

/// A frame for the viewers.
#[derive(Debug, Clone)]
pub(crate) struct Frame {
    pub(crate) video: bool,
    /// Video: Annex B, parameter sets in front of each keyframe. Audio: one Opus packet.
    pub(crate) data: Bytes,
    pub(crate) keyframe: bool,
    /// When weir received it, Unix microseconds.
    pub(crate) wall_us: u64,
}

/// Frames a slow viewer may fall behind by before it skips to the next keyframe (about 4 s
/// of 30 fps video and its audio).
pub(crate) const QUEUE: usize = 512;

/// Runs a stream's feed until it has no viewers (no receivers) or the stream is gone.
pub(crate) async fn run(
    registry: StreamRegistry,
    stream: String,
    tx: broadcast::Sender<Arc<Frame>>,
    opus: OpusEncoders,
) {
    let mut idle = 0;
    while tx.receiver_count() > 0 {
        let Some(rendition) = registry.get(&stream).and_then(|s| pick(&s)) else {
            // Not published (yet, or any more): look again shortly, for a while.
            idle += 1;
            if idle > 150 {
                info!(%stream, "whep feed: no stream; viewers are dropped");
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        };
        idle = 0;
        if let Err(e) = follow(rendition, &tx, &opus).await {
            warn!(%stream, error = %e, "whep feed: the rendition could not be read; starting over");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    debug!(%stream, "whep feed: no viewers left");
}

/// The rendition WebRTC viewers get: the first listed one (the top rung, or the
/// passed-through source).
fn pick(stream: &weir_media::StreamConsumer) -> Option<RenditionConsumer> {
    stream
        .renditions()
        .into_iter()
        .find(|(name, _)| !name.starts_with("slate"))
        .map(|(_, r)| r)
}

/// Follows `rendition` part by part from its live edge until it ends or breaks.
async fn follow(
    mut rendition: RenditionConsumer,
    tx: &broadcast::Sender<Arc<Frame>>,
    opus: &OpusEncoders,
) -> Result<(), String> {
    let snap = rendition.first().await.ok_or("the rendition ended")?;
    let mut seq = hinted_part(&snap.playlist).ok_or("no preload hint (byte-range parts?)")?;
    let mut version = snap.version;
    let mut init_bytes = Bytes::new();
    let mut init = Init::default();
    let mut audio: Option<(Box<dyn super::OpusEncoder>, i64)> = None;
    while tx.receiver_count() > 0 {
        let part = match rendition.part(seq) {
            Lookup::Found(p) => p,
            Lookup::Gone => {
                // Fell out of the window (a long stall): back to the live edge.
                let snap = rendition.snapshot().ok_or("the rendition ended")?;
                seq = hinted_part(&snap.playlist).ok_or("no preload hint")?;
                continue;
            }
            Lookup::Missing => {
                let snap =
                    tokio::time::timeout(Duration::from_secs(10), rendition.newer_than(version))
                        .await
                        .map_err(|_| "no new part for 10 s")?
                        .ok_or("the rendition ended")?;
                version = snap.version;
                if snap.ended {
                    return Err("the stream ended".into());
                }
                continue;
            }
        };
        // The part's place on the wall clock: its PROGRAM-DATE-TIME, once it is listed
        // (the part being written is listed when it completes; until then the previous
        // part's end is its start).
        let mut part = part;
        let current = rendition.init().unwrap_or_default();
        if current != init_bytes {
            init = fmp4::parse_init(&current)?;
            init_bytes = current;
            audio = None;
        }
        let mut anchor: Option<(u64, u64)> = None; // (first video/audio dts in µs, wall µs)
        while let Some(chunk) = part.next_chunk().await.map_err(|_| "part aborted")? {
            for s in fmp4::parse_chunks(&chunk)? {
                let (video, timescale) = match (&init.video, &init.audio) {
                    (Some((id, ts, _)), _) if *id == s.track_id => (true, *ts),
                    (_, Some((id, ts, _))) if *id == s.track_id => (false, *ts),
                    _ => continue,
                };
                let t_us = s.dts.saturating_mul(1_000_000) / u64::from(timescale.max(1));
                let (t0, wall0) = match anchor {
                    Some(a) => a,
                    None => {
                        let snap = rendition.snapshot().ok_or("the rendition ended")?;
                        let wall = part_start_us(&snap.playlist, seq).unwrap_or_else(now_us);
                        anchor = Some((t_us, wall));
                        (t_us, wall)
                    }
                };
                let wall_us = wall0 + t_us.saturating_sub(t0);
                if video {
                    let params = init.video.as_ref().map(|v| v.2.as_slice()).unwrap_or(&[]);
                    let data = annex_b(&s.data, if s.keyframe { params } else { &[] });
                    let _ = tx.send(Arc::new(Frame {
                        video: true,
                        data,
                        keyframe: s.keyframe,
                        wall_us,
                    }));
                } else if let Some((_, _, config)) = &init.audio {
                    let pts = i64::try_from(s.dts).unwrap_or(0);
                    if audio.is_none() {
                        match (opus)(config.clone(), pts) {
                            Ok(e) => audio = Some((e, pts)),
                            Err(e) => {
                                warn!(error = %e, "whep: no AAC → Opus encoder; video only");
                                continue;
                            }
                        }
                    }
                    let Some((enc, _)) = audio.as_mut() else {
                        continue;
                    };
                    match enc.push(pts, &s.data) {
                        Ok(packets) => {
                            for (p, data) in packets {
                                let off = (p - pts) * 1_000_000 / i64::from(timescale.max(1));
                                let _ = tx.send(Arc::new(Frame {
                                    video: false,
                                    data,
                                    keyframe: true,
                                    wall_us: wall_us.saturating_add_signed(off),
                                }));
                            }
                        }
                        Err(e) => debug!("whep: undecodable AAC frame: {e}"),
                    }
                }
            }
        }
        seq += 1;
    }
    Ok(())
}

#[allow(clippy::disallowed_methods)] // the feed is a driver; only a fallback when no PDT is listed
fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(0))
}

/// Length-prefixed NAL units → Annex B, `params` (SPS, PPS) first.
fn annex_b(avcc: &[u8], params: &[Bytes]) -> Bytes {
    let mut out = BytesMut::with_capacity(avcc.len() + 64);
    for p in params {
        out.put_slice(&[0, 0, 0, 1]);
        out.put_slice(p);
    }
    let mut rest = avcc;
    while rest.len() >= 4 {
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let Some(nal) = rest.get(4..4 + len) else {
            break;
        };
        out.put_slice(&[0, 0, 0, 1]);
        out.put_slice(nal);
        rest = &rest[4 + len..];
    }
    out.freeze()
}

/// The part a playlist's preload hint names (`URI="part{N}.m4s"`).
pub(crate) fn hinted_part(playlist: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(playlist).ok()?;
    let line = text
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:"))?;
    part_uri_seq(line)
}

fn part_uri_seq(line: &str) -> Option<u64> {
    let uri = line.split("URI=\"").nth(1)?.split('"').next()?;
    let name = uri.rsplit('/').next()?;
    name.strip_prefix("part")?
        .strip_suffix(".m4s")?
        .parse()
        .ok()
}

/// Where part `seq` starts on the wall clock (Unix µs), from the playlist's
/// PROGRAM-DATE-TIMEs and part durations; for the hinted part, where the last listed one ends.
pub(crate) fn part_start_us(playlist: &[u8], seq: u64) -> Option<u64> {
    let text = std::str::from_utf8(playlist).ok()?;
    let mut cursor: Option<u64> = None;
    for line in text.lines() {
        if let Some(date) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            // Whole milliseconds as weir writes them; µs keeps the sums exact.
            cursor = weir_media::date::parse_date_ms(date)
                .filter(|ms| *ms >= 0.0)
                .map(|ms| (ms * 1000.0).round() as u64);
        } else if let Some(attrs) = line.strip_prefix("#EXT-X-PART:") {
            let duration = attrs
                .split(',')
                .find_map(|a| a.strip_prefix("DURATION="))
                .and_then(|d| d.parse::<f64>().ok())?;
            if part_uri_seq(line) == Some(seq) {
                return cursor;
            }
            cursor = cursor.map(|c| c + (duration * 1e6) as u64);
        } else if line.starts_with("#EXT-X-PRELOAD-HINT:") && part_uri_seq(line) == Some(seq) {
            return cursor;
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAYLIST: &str = "#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:2026-12-07T14:25:52.163Z\n\
#EXT-X-PART:DURATION=0.45500,URI=\"part10.m4s\",INDEPENDENT=YES\n\
#EXT-X-PART:DURATION=0.50000,URI=\"part11.m4s\"\n#EXTINF:0.95500,\nseg1.m4s\n\
#EXT-X-PROGRAM-DATE-TIME:2026-12-07T14:25:53.118Z\n\
#EXT-X-PART:DURATION=0.50000,URI=\"part12.m4s\",INDEPENDENT=YES\n\
#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part13.m4s\"\n";

    #[test]
    fn parts_are_placed_on_the_wall_clock_from_the_playlist() {
        assert_eq!(hinted_part(PLAYLIST.as_bytes()), Some(13));
        let t10 = part_start_us(PLAYLIST.as_bytes(), 10).unwrap();
        assert_eq!(t10, 1_796_653_552_163_000);
        assert_eq!(part_start_us(PLAYLIST.as_bytes(), 11), Some(t10 + 455_000));
        assert_eq!(part_start_us(PLAYLIST.as_bytes(), 12), Some(t10 + 955_000));
        assert_eq!(
            part_start_us(PLAYLIST.as_bytes(), 13),
            Some(t10 + 1_455_000)
        );
        assert_eq!(part_start_us(PLAYLIST.as_bytes(), 99), None);
    }

    #[test]
    fn length_prefixed_becomes_annex_b_with_parameter_sets() {
        let out = annex_b(
            &[0, 0, 0, 2, 0x65, 0xaa, 0, 0, 0, 9],
            &[Bytes::from_static(&[0x67])],
        );
        assert_eq!(&out[..], &[0, 0, 0, 1, 0x67, 0, 0, 0, 1, 0x65, 0xaa]);
    }
}
