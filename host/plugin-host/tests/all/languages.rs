//! Plugins written in JavaScript and Python, pushed and run like any other.

use std::time::Instant;

use bytes::Bytes;
use http::HeaderMap;
use weir_plugin_host::PlaylistRequest;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn javascript_and_python_plugins_transform_playlists() {
    let host = host_for_heavy_guests();
    let started = Instant::now();
    let js = host
        .push("acme", spec("cue-out", "cue-out", r#"{"style":"plain"}"#))
        .await
        .unwrap();
    eprintln!("cue-out (JS) pushed in {:?}", started.elapsed());
    assert_eq!(js.failure_policy, "pass-through");
    let started = Instant::now();
    host.push(
        "acme",
        spec(
            "program-info",
            "program-info",
            r#"{"title":"Evening News"}"#,
        ),
    )
    .await
    .unwrap();
    eprintln!("program-info (Python) pushed in {:?}", started.elapsed());
    let list = host.list("acme").unwrap();
    assert_eq!(
        list.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["cue-out", "program-info"]
    );

    // A cue inside the window: the JS plugin marks it, the Python plugin dates the programme.
    let playlist = media_playlist(100, 4);
    let cue = weir_media::PlacedCue {
        cue: weir_media::CueEvent {
            id: 7,
            kind: weir_media::CueKind::SpliceInsert,
            out_of_network: true,
            pts: None,
            duration: Some(std::time::Duration::from_secs(4)),
            segmentation_type: None,
            section: Bytes::new(),
        },
        start_ms: T0_MS + 2_000,
        end_ms: None,
    };
    let headers = HeaderMap::new();
    let req = PlaylistRequest {
        stream: "demo",
        rendition: "src",
        headers: &headers,
        query: None,
        cues: std::slice::from_ref(&cue),
    };
    let mut out = String::new();
    for _ in 0..200 {
        let m = host
            .media_playlist(&req, Bytes::from(playlist.clone()))
            .await;
        out = String::from_utf8(m.body.to_vec()).unwrap();
        if out != playlist {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert!(out.contains("#EXT-X-CUE-OUT:4.000\n"), "{out}");
    assert!(out.contains("#EXT-X-CUE-IN\n"), "{out}");
    assert!(
        out.contains("#EXT-X-DATERANGE:ID=\"program\",CLASS=\"com.weir.program\",START-DATE=\"2026-11-25T19:00:00.000Z\",X-TITLE=\"Evening News\"\n"),
        "{out}"
    );
    // Everything else is the input, line for line.
    let kept: Vec<&str> = out
        .lines()
        .filter(|l| !l.starts_with("#EXT-X-CUE") && !l.starts_with("#EXT-X-DATERANGE"))
        .collect();
    assert_eq!(kept, playlist.lines().collect::<Vec<_>>());

    let mv = host
        .multivariant_playlist(
            &PlaylistRequest {
                rendition: "",
                cues: &[],
                ..req
            },
            Bytes::from_static(MULTIVARIANT.as_bytes()),
        )
        .await;
    let mut mv_text = String::from_utf8(mv.body.to_vec()).unwrap();
    for _ in 0..200 {
        if mv_text.contains("SESSION-DATA") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        let mv = host
            .multivariant_playlist(
                &PlaylistRequest {
                    stream: "demo",
                    rendition: "",
                    headers: &headers,
                    query: None,
                    cues: &[],
                },
                Bytes::from_static(MULTIVARIANT.as_bytes()),
            )
            .await;
        mv_text = String::from_utf8(mv.body.to_vec()).unwrap();
    }
    assert!(
        mv_text.contains(
            "#EXT-X-SESSION-DATA:DATA-ID=\"com.weir.program.title\",VALUE=\"Evening News\"\n"
        ),
        "{mv_text}"
    );
    let mut metrics = String::new();
    host.metrics().render(&mut metrics);
    assert!(metrics.contains("weir_plugin_calls_total{tenant=\"acme\",plugin=\"cue-out\",function=\"transform-media-playlist\"}"), "{metrics}");
    assert_eq!(
        host.metrics().failures_of("acme", "cue-out"),
        0,
        "{metrics}"
    );
    assert_eq!(
        host.metrics().failures_of("acme", "program-info"),
        0,
        "{metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_config_is_refused_at_push_and_the_chain_stays() {
    let host = host_for_heavy_guests();
    host.push("acme", spec("cue-out", "cue-out", ""))
        .await
        .unwrap();
    let err = host
        .push(
            "acme",
            spec("cue-out", "cue-out", r#"{"style":"sideways"}"#),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("style"), "{err}");
    assert_eq!(host.list("acme").unwrap().len(), 1);
    let err = host
        .push("nobody", spec("cue-out", "cue-out", ""))
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown tenant"), "{err}");
    let err = host
        .push(
            "acme",
            weir_plugin_host::PluginSpec {
                name: "junk".into(),
                component: Bytes::from_static(b"\0asm junk"),
                config: String::new(),
            },
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a valid Wasm component"), "{err}");
}
