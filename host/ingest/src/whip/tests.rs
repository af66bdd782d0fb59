#![allow(clippy::unwrap_used, clippy::disallowed_methods)] // an epoch for the test

use super::*;

/// The shape of Chromium's offer (trimmed): audio and video, BUNDLE, H.264 mode 0 and 1.
pub(crate) const OFFER: &str = include_str!("offer.sdp");

/// A session's peer connection for `video`, with `offer` set as the remote description.
fn offered(video: VideoCodec, offer: &str) -> rtc::peer_connection::RTCPeerConnection {
    let mut pc = peer_connection(Instant::now(), video).unwrap();
    pc.set_remote_description(
        Instant::now(),
        RTCSessionDescription::offer(offer.to_owned()).unwrap(),
    )
    .unwrap();
    pc
}

#[test]
fn an_offer_with_h264_mode_1_is_taken_and_says_whether_it_has_opus() {
    assert_eq!(check_offer(OFFER, true).unwrap(), (VideoCodec::H264, true));
    let no_audio = OFFER.replace("a=rtpmap:111 opus/48000/2", "a=rtpmap:111 PCMU/8000");
    assert_eq!(
        check_offer(&no_audio, false).unwrap(),
        (VideoCodec::H264, false)
    );
}

#[test]
fn an_offer_without_usable_video_or_not_sdp_is_refused_with_its_reason() {
    let vp8_only = OFFER
        .replace("a=rtpmap:102 H264/90000\r\n", "")
        .replace("a=rtpmap:103 H264/90000\r\n", "");
    // VP8 only: taken with a transcoder, refused without one.
    assert_eq!(
        check_offer(&vp8_only, true).unwrap(),
        (VideoCodec::Vp8, true)
    );
    assert!(matches!(
        check_offer(&vp8_only, false),
        Err(WhipError::NoCodec(_))
    ));
    let mode0_only = OFFER
        .replace("packetization-mode=1", "packetization-mode=0")
        .replace("a=rtpmap:96 VP8/90000\r\n", "");
    assert!(matches!(
        check_offer(&mode0_only, true),
        Err(WhipError::NoCodec(_))
    ));
    for garbage in [
        "",
        "hello",
        "v=0\r\n",
        "v=0\r\no=- 1 2 IN IP4 1.2.3.4\r\ns=-\r\nt=0 0\r\n",
    ] {
        assert!(
            matches!(check_offer(garbage, true), Err(WhipError::BadOffer(_))),
            "{garbage:?}"
        );
    }
}

#[test]
fn sdp_attributes_are_read_line_by_line() {
    assert_eq!(sdp_attr(OFFER, "ice-ufrag").as_deref(), Some("abcd"));
    assert_eq!(sdp_attr(OFFER, "nothing"), None);
    assert!(!answer_has(
        OFFER.replace("H264", "VP9").as_str(),
        VideoCodec::H264
    ));
}

#[test]
fn a_peer_connection_answers_a_browser_offer_with_h264_and_opus() {
    let mut pc = offered(VideoCodec::H264, OFFER);
    let answer = pc.create_answer(None).unwrap();
    let sdp = answer.sdp.clone();
    assert!(answer_has(&sdp, VideoCodec::H264), "{sdp}");
    assert!(sdp.to_ascii_lowercase().contains("opus/48000"), "{sdp}");
    assert!(!sdp.contains("VP8"), "{sdp}");
    assert!(sdp_attr(&sdp, "ice-ufrag").is_some());
}

#[test]
fn a_vp8_session_answers_vp8() {
    let vp8_only = OFFER
        .replace("a=rtpmap:102 H264/90000\r\n", "")
        .replace("a=rtpmap:103 H264/90000\r\n", "");
    let mut pc = offered(VideoCodec::Vp8, &vp8_only);
    let sdp = pc.create_answer(None).unwrap().sdp;
    assert!(answer_has(&sdp, VideoCodec::Vp8), "{sdp}");
    assert!(!answer_has(&sdp, VideoCodec::H264), "{sdp}");
}

#[test]
fn a_bandwidth_ceiling_goes_in_the_video_section_after_its_connection_line() {
    let sdp = with_video_bandwidth(OFFER, 800);
    let lines: Vec<&str> = sdp.lines().collect();
    let video = lines.iter().position(|l| l.starts_with("m=video")).unwrap();
    let b = lines.iter().position(|l| *l == "b=AS:800").unwrap();
    assert!(b > video && lines[b - 1].starts_with("c="), "{sdp}");
    assert_eq!(sdp.matches("b=AS").count(), 1, "audio keeps no ceiling");
    // Idempotent: a second ceiling replaces the first.
    assert_eq!(with_video_bandwidth(&sdp, 300).matches("b=AS").count(), 1);
    // A section without c= gets it right after m=.
    let bare = with_video_bandwidth("v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:1\r\n", 500);
    assert_eq!(
        bare,
        "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\nb=AS:500\r\na=mid:1\r\n"
    );
}

#[test]
fn an_ice_restart_is_the_offer_again_with_new_credentials_and_gets_new_ones() {
    // The session's steps (peer.rs `restart_ice`), on a peer connection that answered.
    let mut pc = offered(VideoCodec::H264, OFFER);
    let answer = pc.create_answer(None).unwrap();
    pc.set_local_description(Instant::now(), answer).unwrap();
    let first = pc.local_description().unwrap().sdp;

    let again = with_ice_credentials(OFFER, "newu", "0123456789abcdefghijklmz");
    assert!(again.contains("a=ice-ufrag:newu\r\n") && !again.contains("a=ice-ufrag:abcd"));
    assert!(!again.contains("a=candidate:"), "{again}");
    pc.set_remote_description(Instant::now(), RTCSessionDescription::offer(again).unwrap())
        .unwrap();
    let answer = pc.create_answer(None).unwrap();
    pc.set_local_description(Instant::now(), answer).unwrap();
    let second = pc.local_description().unwrap().sdp;
    for name in ["ice-ufrag", "ice-pwd"] {
        assert_ne!(sdp_attr(&first, name), sdp_attr(&second, name), "{name}");
    }
    // Same media, same DTLS identity: only ICE starts over.
    assert_eq!(
        sdp_attr(&first, "fingerprint"),
        sdp_attr(&second, "fingerprint")
    );
    assert!(answer_has(&second, VideoCodec::H264));

    let frag = answer_fragment(&second);
    let lines: Vec<&str> = frag.lines().collect();
    assert_eq!(
        lines[0],
        format!("a=ice-ufrag:{}", sdp_attr(&second, "ice-ufrag").unwrap())
    );
    assert!(lines[1].starts_with("a=ice-pwd:"));
    assert!(lines[2].starts_with("m="), "{frag}");
    assert!(lines.iter().any(|l| l.starts_with("a=mid:")), "{frag}");
    assert_eq!(lines.iter().filter(|l| l.starts_with("m=")).count(), 1);
}

#[test]
fn a_fragment_is_read_line_by_line_and_garbage_is_refused() {
    let f = parse_fragment(
        "a=ice-ufrag:u\r\na=ice-pwd:p\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n\
         a=candidate:1 1 udp 2122260223 192.0.2.7 50000 typ host\r\na=end-of-candidates\r\n",
    )
    .unwrap();
    assert_eq!(
        (f.ufrag.as_deref(), f.pwd.as_deref()),
        (Some("u"), Some("p"))
    );
    assert_eq!(f.candidates.len(), 1);
    assert_eq!(f.candidates[0].sdp_mid.as_deref(), Some("0"));
    assert!(matches!(
        parse_fragment("a=ice-ufrag:u\r\nhello\r\n"),
        Err(WhipError::BadFragment(_))
    ));
}
