use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use http::HeaderMap;
use weir_plugin_host::{PlaylistRequest, PluginSpec, Plugins, Settings, TenantSettings};

/// A built component. The tests need them: `scripts/build-plugins.sh` makes them (CI runs it
/// before the tests), so a missing one is a failure with instructions, not a skip.
pub fn component(name: &str) -> Bytes {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../plugins/dist")
        .join(format!("{name}.wasm"));
    match std::fs::read(&path) {
        Ok(b) => Bytes::from(b),
        Err(e) => panic!(
            "{}: {e}. Build the plugins first: scripts/build-plugins.sh",
            path.display()
        ),
    }
}

pub fn spec(name: &str, component_name: &str, config: &str) -> PluginSpec {
    PluginSpec {
        name: name.to_owned(),
        component: component(component_name),
        config: config.to_owned(),
    }
}

/// A host with one tenant `acme` owning stream `demo`.
pub fn host() -> Plugins {
    host_with(Settings::default())
}

/// For JavaScript and Python guests: a fresh instance of one costs about 1 ms in a release
/// build, but these tests run a debug build of the host beside other tests on two cores,
/// where instantiating an 18 MB Python component can take longer than the 10 ms default.
pub fn host_for_heavy_guests() -> Plugins {
    let mut settings = Settings::default();
    settings.limits.call_timeout = Duration::from_secs(1);
    settings.deadline = Duration::from_secs(2);
    host_with(settings)
}

pub fn host_with(settings: Settings) -> Plugins {
    let mut acme = TenantSettings::new("acme");
    acme.streams = vec!["demo".to_owned()];
    Plugins::new(settings, vec![acme]).unwrap()
}

/// A live media playlist as weir's packager writes it: `segments` complete 2 s segments
/// starting at MSN 100 (dated from 2026-11-25T19:00:00Z), then two parts of the next one.
pub fn media_playlist(first_msn: u64, segments: u64) -> String {
    let mut s = String::from(
        "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:2\n\
         #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500\n\
         #EXT-X-PART-INF:PART-TARGET=0.500\n",
    );
    s.push_str(&format!(
        "#EXT-X-MEDIA-SEQUENCE:{first_msn}\n#EXT-X-MAP:URI=\"init.mp4\"\n"
    ));
    let date = |msn: u64| {
        let secs = (msn - 100) * 2;
        format!("2026-11-25T19:{:02}:{:02}.000Z", secs / 60, secs % 60)
    };
    for msn in first_msn..first_msn + segments {
        s.push_str(&format!(
            "#EXT-X-PROGRAM-DATE-TIME:{}\n#EXTINF:2.000,\nseg{msn}.m4s\n",
            date(msn)
        ));
    }
    let next = first_msn + segments;
    s.push_str(&format!(
        "#EXT-X-PROGRAM-DATE-TIME:{}\n\
         #EXT-X-PART:DURATION=0.500,URI=\"part{}.m4s\",INDEPENDENT=YES\n\
         #EXT-X-PART:DURATION=0.500,URI=\"part{}.m4s\"\n\
         #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part{}.m4s\"\n",
        date(next),
        next * 4,
        next * 4 + 1,
        next * 4 + 2
    ));
    s
}

pub const MULTIVARIANT: &str = "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-INDEPENDENT-SEGMENTS\n\
    #EXT-X-STREAM-INF:BANDWIDTH=3000000,CODECS=\"avc1.64001f,mp4a.40.2\",RESOLUTION=1280x720\n\
    src/index.m3u8\n";

/// 2026-11-25T19:00:00Z in Unix ms, the date of MSN 100 in [`media_playlist`].
pub const T0_MS: u64 = 1_795_633_200_000;

pub async fn transform(host: &Plugins, playlist: &str, headers: &HeaderMap) -> String {
    let req = PlaylistRequest {
        stream: "demo",
        rendition: "src",
        headers,
        query: None,
        cues: &[],
    };
    let out = host
        .media_playlist(&req, Bytes::from(playlist.to_owned()))
        .await;
    String::from_utf8(out.body.to_vec()).unwrap()
}

/// Polls until the transform result differs from the input (the first request may be
/// answered by the fallback while a heavy guest's first run is still going).
pub async fn settled(host: &Plugins, playlist: &str) -> String {
    let headers = HeaderMap::new();
    for _ in 0..200 {
        let out = transform(host, playlist, &headers).await;
        if out != playlist {
            return out;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    transform(host, playlist, &headers).await
}
