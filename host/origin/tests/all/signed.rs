//! Signed playback URLs: the token segment is taken out before routing, checked by the
//! embedding binary's `PlaybackAuth`, and refused with 403 and `no-store`.

use std::sync::Arc;

use weir_media::StreamRegistry;
use weir_origin::signed::{self, Denied, PlaybackAuth};
use weir_origin::{Origin, OriginSettings};

use crate::support::{get, snapshot, Live};

const KEY: &[u8] = b"a-playback-key-of-32-bytes-long!";

/// Stream `locked` needs a token good until t = 1000; every other stream is open.
struct Keys;

impl PlaybackAuth for Keys {
    fn authorize(
        &self,
        stream: &str,
        token: Option<&str>,
        _request: &http::request::Parts,
    ) -> Result<(), Denied> {
        if stream != "locked" {
            return Ok(());
        }
        signed::verify(&[KEY], stream, token.ok_or(Denied::Missing)?, 500)
    }
}

#[tokio::test]
async fn a_locked_stream_plays_only_through_a_valid_token() {
    let registry = StreamRegistry::new();
    let locked = Live::publish(&registry, "locked");
    locked.rendition.publish(snapshot(1, 0, 3, 1));
    locked.part(7, "part seven");
    let open = Live::publish(&registry, "open");
    open.rendition.publish(snapshot(1, 0, 3, 1));
    let origin = Arc::new(
        Origin::new(OriginSettings::default(), registry)
            .unwrap()
            .with_playback_auth(Arc::new(Keys)),
    );

    let good = signed::token(KEY, "locked", 1000);
    let got = get(&origin, &format!("/live/locked/{good}/720p/index.m3u8")).await;
    assert_eq!(got.status, 200);
    assert_eq!(got.text(), "#EXTM3U\n#version 1\n");
    let got = get(&origin, &format!("/live/locked/{good}/720p/part7.m4s")).await;
    assert_eq!((got.status.as_u16(), got.text()), (200, "part seven"));

    let expired = signed::token(KEY, "locked", 400);
    let forged = signed::token(b"not the key, but also 32 bytes!!", "locked", 1000);
    let other_stream = signed::token(KEY, "open", 1000);
    for (path, why) in [
        (
            "/live/locked/720p/index.m3u8".to_owned(),
            "this stream needs a signed playback URL",
        ),
        (
            format!("/live/locked/{expired}/720p/index.m3u8"),
            "playback token expired",
        ),
        (
            format!("/live/locked/{forged}/720p/part7.m4s"),
            "playback token does not match",
        ),
        (
            format!("/live/locked/{other_stream}/720p/index.m3u8"),
            "playback token does not match",
        ),
        (
            "/live/locked/~7/master.m3u8".to_owned(),
            "malformed playback token",
        ),
    ] {
        let got = get(&origin, &path).await;
        assert_eq!(got.status, 403, "{path}");
        assert_eq!(got.text(), format!("{why}\n"), "{path}");
        assert_eq!(got.header("cache-control"), "no-store", "{path}");
    }

    // An open stream plays with or without one; a token segment elsewhere names nothing.
    assert_eq!(get(&origin, "/live/open/720p/index.m3u8").await.status, 200);
    let got = get(
        &origin,
        &format!("/live/open/{other_stream}/720p/index.m3u8"),
    )
    .await;
    assert_eq!(got.status, 200);
    let got = get(
        &origin,
        &format!("/live/open/720p/{other_stream}/index.m3u8"),
    )
    .await;
    assert_eq!(got.status, 404);
}
