#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // an epoch for the test

use super::*;

/// The shape of Chromium's offer (trimmed): audio and video, BUNDLE, H.264 mode 0 and 1.
pub(crate) const OFFER: &str = include_str!("offer.sdp");

#[test]
fn an_offer_with_h264_mode_1_is_taken_and_says_whether_it_has_opus() {
    assert!(check_offer(OFFER).unwrap());
    let no_audio = OFFER.replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 PCMU/8000");
    assert!(!check_offer(&no_audio).unwrap());
}

#[test]
fn an_offer_without_usable_video_or_not_sdp_is_refused_with_its_reason() {
    let vp8_only = OFFER
        .replace("a=rtpmap:102 H264/90000\r\n", "")
        .replace("a=rtpmap:103 H264/90000\r\n", "");
    assert!(matches!(check_offer(&vp8_only), Err(WhipError::NoCodec(_))));
    let mode0_only = OFFER.replace("packetization-mode=1", "packetization-mode=0");
    assert!(matches!(
        check_offer(&mode0_only),
        Err(WhipError::NoCodec(_))
    ));
    for garbage in [
        "",
        "hello",
        "v=0\r\n",
        "v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n",
    ] {
        assert!(
            matches!(check_offer(garbage), Err(WhipError::BadOffer(_))),
            "{garbage:?}"
        );
    }
}

#[test]
fn sdp_attributes_are_read_line_by_line() {
    assert_eq!(sdp_attr(OFFER, "ice-ufrag").as_deref(), Some("abcd"));
    assert_eq!(sdp_attr(OFFER, "nothing"), None);
    assert!(!answer_has_h264(OFFER.replace("H264", "VP9").as_str()));
}

#[test]
fn a_peer_connection_answers_a_browser_offer_with_h264_and_opus() {
    let mut pc = peer_connection(Instant::now()).unwrap();
    pc.set_remote_description(
        Instant::now(),
        RTCSessionDescription::offer(OFFER.to_owned()).unwrap(),
    )
    .unwrap();
    let answer = pc.create_answer(None).unwrap();
    let sdp = answer.sdp.clone();
    assert!(answer_has_h264(&sdp), "{sdp}");
    assert!(sdp.to_ascii_lowercase().contains("opus/48000"), "{sdp}");
    assert!(!sdp.contains("VP8"), "{sdp}");
    assert!(sdp_attr(&sdp, "ice-ufrag").is_some());
}
