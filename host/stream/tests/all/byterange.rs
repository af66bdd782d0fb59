//! A tenant's `byterange_parts` reaches every rendition's packager: its parts are listed as
//! byte ranges of their segment, and other streams keep one URI per part.

use std::collections::HashMap;
use std::time::Duration;

use weir_stream::{Input, StreamOptions, StreamPolicy};

use crate::harness::*;

fn played(policy: StreamPolicy) -> String {
    let s = weir_stream::StreamSettings {
        policy,
        ..settings(2000, 500)
    };
    let mut h = Harness::passthrough(s);
    h.input(Input::Attach);
    let mut publisher = Source::video(Duration::ZERO);
    h.progress(secs(6.2), &mut [(&mut publisher, Feed::Publisher)]);
    h.rendition("src").last_text()
}

#[test]
fn byterange_parts_is_per_stream() {
    let on = StreamOptions {
        byterange_parts: true,
        ..StreamOptions::default()
    };
    // The harness's stream is named `test`.
    let text = played(StreamPolicy {
        streams: HashMap::from([("test".to_owned(), on.clone())]),
        default: StreamOptions::default(),
    });
    let parts: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("#EXT-X-PART:"))
        .collect();
    assert!(parts.len() >= 4, "{text}");
    assert!(
        parts
            .iter()
            .all(|l| l.contains("URI=\"seg") && l.contains(",BYTERANGE=")),
        "{text}"
    );
    let hint = text
        .lines()
        .find(|l| l.starts_with("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"seg"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(hint.contains(",BYTERANGE-START="), "{text}");

    let text = played(StreamPolicy {
        streams: HashMap::from([("other".to_owned(), on)]),
        default: StreamOptions::default(),
    });
    assert!(!text.contains("BYTERANGE"), "{text}");
    assert!(text.contains("URI=\"part"), "{text}");
}
