//! Encodes an FLV file into the default ladder as fast as the machine allows and prints the
//! throughput: the weir side of `bench/encoder.sh` (which times the ffmpeg CLI doing the same
//! ladder on the same file).
//!
//! ```sh
//! cargo run --release -p weir-encoder --example ladder -- input.flv [preset]
//! ```
//!
//! The contribution is fed faster than real time; the encoder's clock then simply packs the
//! frames one frame duration apart, so every frame is decoded once and encoded per rung,
//! as in a live stream.
#![allow(clippy::unwrap_used, clippy::disallowed_methods)]

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use weir_encoder::{spawn, EncoderEvent, EncoderMetrics, EncoderSettings, Source, Start};
use weir_media::MediaEvent;

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().expect("usage: ladder INPUT.flv [preset]");
    let preset = args.next().unwrap_or_else(|| "veryfast".to_owned());
    let events = weir_ingest::flv::read_file(&std::fs::read(&path).unwrap()).unwrap();
    let video_in = events
        .iter()
        .filter(|e| matches!(e, MediaEvent::Sample(s) if s.track == 0))
        .count();
    let settings = EncoderSettings {
        preset,
        // Nothing synthesised while the file is read.
        hold: std::time::Duration::from_secs(3600),
        slate_after: std::time::Duration::from_secs(3600),
        ..EncoderSettings::default()
    };
    let (in_tx, in_rx) = mpsc::channel(256);
    let (tx, mut rx) = mpsc::channel(4096);
    let metrics = Arc::new(EncoderMetrics::default());
    let started = Instant::now();
    spawn(
        "bench",
        settings,
        Source::Contribution(in_rx),
        Start::default(),
        tx,
        Arc::clone(&metrics),
    )
    .unwrap();
    tokio::spawn(async move {
        for e in events {
            if in_tx.send(e).await.is_err() {
                break;
            }
        }
    });
    let (mut rungs, mut video_out, mut audio_out) = (0, 0u64, 0u64);
    while let Some(ev) = rx.recv().await {
        match ev {
            EncoderEvent::Ladder(l) => rungs = l.len(),
            EncoderEvent::Media {
                event: MediaEvent::Sample(s),
                rung,
            } => {
                if s.track == 0 {
                    video_out += 1;
                } else if rung == 0 {
                    audio_out += 1;
                }
            }
            EncoderEvent::Media { .. } => {}
        }
    }
    let secs = started.elapsed().as_secs_f64();
    let decoded = metrics.frames_decoded.load(Ordering::Relaxed);
    println!(
        "weir: {decoded}/{video_in} frames decoded, {video_out} encoded over {rungs} rungs, \
         {audio_out} AAC frames, in {secs:.2} s: {:.1} source frames/s",
        decoded as f64 / secs
    );
    println!("seconds={secs:.3} frames={decoded}");
}
