//! SRT contribution from the real ffmpeg CLI (libsrt), with and without AES, played in
//! hls.js; a wrong passphrase is refused at the handshake.

use std::time::Duration;

use weir_e2e::*;

#[test]
fn srt_publish_plays_in_hlsjs_with_and_without_passphrase() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    // Without encryption, with the access-control streamid form.
    {
        let weir = Weir::start(&["--no-test-source"]).unwrap();
        let _ff = ffmpeg_publish(
            &weir.srt_url("#!::r=live/plain,m=publish", None),
            30,
            "640x360",
            60,
        )
        .unwrap();
        let master = weir.url("/live/plain/master.m3u8");
        wait_for_200(&master, Duration::from_secs(20)).unwrap();
        let r = Player::start("hls", &master, 11).unwrap().join().unwrap();
        assert!(r.fatal.is_empty() && r.played >= 10.0, "{r:?}");
        assert!(
            r.requests.blocking > 0 && r.requests.parts > 0,
            "{:?}",
            r.requests
        );
    }
    // With a passphrase: the right one plays, a wrong one and a missing one are refused.
    let pass = "0123456789abcdef";
    let mut weir = Weir::start(&["--no-test-source", "--srt-passphrase", pass]).unwrap();
    let mut wrong = ffmpeg_publish(
        &weir.srt_url("publish:live/bad", Some("fedcba9876543210")),
        10,
        "320x240",
        30,
    )
    .unwrap();
    let st = wrong.wait_timeout(Duration::from_secs(15));
    assert!(
        st.is_some_and(|s| !s.success()),
        "a wrong passphrase was accepted"
    );
    let mut clear =
        ffmpeg_publish(&weir.srt_url("publish:live/bad", None), 10, "320x240", 30).unwrap();
    let st = clear.wait_timeout(Duration::from_secs(15));
    assert!(
        st.is_some_and(|s| !s.success()),
        "an unencrypted caller was accepted"
    );
    let (code, _) = curl(&weir.url("/live/bad/master.m3u8"), &[]).unwrap();
    assert_eq!(code, 404);

    let _ff = ffmpeg_publish(&weir.srt_url("enc", Some(pass)), 30, "640x360", 60).unwrap();
    let master = weir.url("/live/enc/master.m3u8");
    wait_for_200(&master, Duration::from_secs(20)).unwrap();
    let r = Player::start("hls", &master, 11).unwrap().join().unwrap();
    assert!(r.fatal.is_empty() && r.played >= 10.0, "{r:?}");
    let log = weir.log().join("\n");
    assert!(
        log.contains("passphrase"),
        "no log line names the passphrase refusal:\n{log}"
    );
    assert!(!log.contains("panicked"), "weir panicked:\n{log}");
}
