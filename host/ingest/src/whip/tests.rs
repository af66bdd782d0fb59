#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // an epoch for the test

use super::*;

/// The shape of Chromium's offer (trimmed): audio and video, BUNDLE, H.264 mode 0 and 1.
pub(crate) const OFFER: &str = "v=0\r\n\
o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n\
s=-\r\n\
t=0 0\r\n\
a=group:BUNDLE 0 1\r\n\
a=msid-semantic: WMS\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:abcd\r\n\
a=ice-pwd:0123456789abcdefghijklmn\r\n\
a=fingerprint:sha-256 19:E2:1C:3B:4B:9F:81:E6:B8:5C:F4:A5:A8:D8:73:04:BB:05:2F:70:9F:04:A9:0E:05:E9:26:33:E8:70:88:A2\r\n\
a=setup:actpass\r\n\
a=mid:0\r\n\
a=sendonly\r\n\
a=rtcp-mux\r\n\
a=rtpmap:111 opus/48000/2\r\n\
a=fmtp:111 minptime=10;useinbandfec=1\r\n\
m=video 9 UDP/TLS/RTP/SAVPF 96 102 103\r\n\
c=IN IP4 0.0.0.0\r\n\
a=rtcp:9 IN IP4 0.0.0.0\r\n\
a=ice-ufrag:abcd\r\n\
a=ice-pwd:0123456789abcdefghijklmn\r\n\
a=fingerprint:sha-256 19:E2:1C:3B:4B:9F:81:E6:B8:5C:F4:A5:A8:D8:73:04:BB:05:2F:70:9F:04:A9:0E:05:E9:26:33:E8:70:88:A2\r\n\
a=setup:actpass\r\n\
a=mid:1\r\n\
a=sendonly\r\n\
a=rtcp-mux\r\n\
a=rtpmap:96 VP8/90000\r\n\
a=rtpmap:102 H264/90000\r\n\
a=rtcp-fb:102 nack pli\r\n\
a=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42001f\r\n\
a=rtpmap:103 H264/90000\r\n\
a=fmtp:103 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42001f\r\n";

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
