//! The tokio driver, on tokio's paused clock: a publisher's channel in, the registry's
//! renditions out, and an ended stream that lingers before it goes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use weir_encoder::EncoderMetrics;
use weir_media::{MediaEvent, StreamRegistry, TrackKind};
use weir_stream::{Clips, Playout, StreamMetrics, Streams};

use crate::harness::*;

/// No clips: the stand-by slate cannot start (gap parts instead), and there is no slate.
struct NoClips;

impl Clips for NoClips {
    fn standby(&self, _: &[TrackKind], _: mpsc::Sender<MediaEvent>) -> Result<Playout, String> {
        Err("no clips in this test".to_owned())
    }

    fn slate(&self, _: mpsc::Sender<MediaEvent>) -> Result<Playout, String> {
        Err("no clips in this test".to_owned())
    }
}

#[allow(clippy::disallowed_methods)] // tokio's paused clock paces the synthetic publisher
async fn publish(tx: &mpsc::Sender<MediaEvent>, source: &mut Source, until: Duration) {
    let start = tokio::time::Instant::now();
    while source.due() < until {
        tokio::time::sleep_until(start + source.due()).await;
        tx.send(source.next_event()).await.unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn a_stream_is_served_while_published_then_ends_lingers_and_goes() {
    let registry = StreamRegistry::new();
    let mut s = settings(2000, 500);
    s.idle_end = Duration::from_secs(5);
    s.linger = Duration::from_secs(10);
    let metrics = Arc::new(StreamMetrics::default());
    let streams = Streams::new(
        registry.clone(),
        s,
        Arc::clone(&metrics),
        Arc::new(EncoderMetrics::default()),
        Arc::new(NoClips),
    );
    let tx = streams.attach("news");
    let mut source = Source::video(Duration::ZERO);
    publish(&tx, &mut source, secs(4.0)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let src = registry.get("news").unwrap().rendition("src").unwrap();
    let live = src
        .snapshot()
        .expect("a playlist once a segment is complete");
    assert!(!live.ended);
    assert!(registry.get("news").unwrap().multivariant().is_some());

    // A second publisher takes over; then it leaves too.
    let tx2 = streams.attach("news");
    drop(tx);
    let mut again = Source::new(vec![video_track(640, 360)], Duration::ZERO);
    publish(&tx2, &mut again, secs(2.0)).await;
    drop(tx2);
    tokio::time::sleep(Duration::from_millis(4500)).await;
    assert!(!src.snapshot().unwrap().ended, "not before idle_end");
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert!(src.snapshot().unwrap().ended, "ended after idle_end");
    assert!(registry.get("news").is_some(), "lingering");
    assert_eq!(
        metrics
            .streams_active
            .load(std::sync::atomic::Ordering::Relaxed),
        0
    );
    tokio::time::sleep(Duration::from_secs(11)).await;
    assert!(registry.get("news").is_none(), "gone after linger");
    assert_eq!(
        metrics
            .sessions_started
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[tokio::test(start_paused = true)]
async fn max_streams_refuses_a_new_stream_but_never_a_returning_publisher() {
    let streams = Streams::new(
        StreamRegistry::new(),
        settings(2000, 500),
        Arc::new(StreamMetrics::default()),
        Arc::new(EncoderMetrics::default()),
        Arc::new(NoClips),
    );
    let _a = streams.attach_within("a", 1).unwrap();
    assert!(streams.attach_within("b", 1).is_err());
    assert!(streams.attach_within("a", 1).is_ok());
    assert!(streams
        .inject_cue("b", crate::cues::splice_out(1, None))
        .is_err());
    assert!(streams
        .inject_cue("a", crate::cues::splice_out(1, None))
        .is_ok());
}
