//! The multivariant playlist describes each variant as Apple's authoring spec asks:
//! FRAME-RATE, measured from the video, and AVERAGE-BANDWIDTH beside the peak BANDWIDTH.

use std::time::Duration;

use weir_stream::Input;

use crate::harness::*;

fn attribute(mv: &str, name: &str) -> Option<String> {
    let line = mv.lines().find(|l| l.starts_with("#EXT-X-STREAM-INF:"))?;
    let at = line.find(&format!("{name}="))? + name.len() + 1;
    Some(line[at..].split(',').next()?.to_owned())
}

#[test]
fn frame_rate_and_average_bandwidth_are_measured_and_follow_a_new_publisher() {
    let mut h = Harness::passthrough(settings(2000, 500));
    h.input(Input::Attach);
    // Before a second of video: no FRAME-RATE yet.
    let mut publisher = Source::new(vec![video_track(1280, 720), audio_track()], Duration::ZERO);
    h.progress(secs(0.5), &mut [(&mut publisher, Feed::Publisher)]);
    assert_eq!(
        attribute(h.multivariant.as_deref().unwrap(), "FRAME-RATE"),
        None
    );
    h.progress(secs(8.0), &mut [(&mut publisher, Feed::Publisher)]);
    let mv = h.multivariant.clone().unwrap();
    assert_eq!(
        attribute(&mv, "FRAME-RATE").as_deref(),
        Some("30.000"),
        "{mv}"
    );
    let peak: u64 = attribute(&mv, "BANDWIDTH").unwrap().parse().unwrap();
    let average: u64 = attribute(&mv, "AVERAGE-BANDWIDTH")
        .unwrap()
        .parse()
        .unwrap();
    assert!(average > 0 && average <= peak, "{mv}");

    // Another publisher at 25 fps: measured again.
    h.input(Input::Detach);
    h.input(Input::Attach);
    let mut slower = Source::new(vec![video_track(1280, 720)], secs(8.0));
    slower.fps = 25;
    h.progress(secs(12.0), &mut [(&mut slower, Feed::Publisher)]);
    let mv = h.multivariant.clone().unwrap();
    assert_eq!(
        attribute(&mv, "FRAME-RATE").as_deref(),
        Some("25.000"),
        "{mv}"
    );
}
