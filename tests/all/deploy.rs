//! What deploy/ promises about the running server.

use std::collections::BTreeSet;
use std::time::Duration;

use weir_e2e::*;

/// The Grafana dashboard (deploy/grafana/weir.json) and the KEDA triggers
/// (deploy/k8s/overlays/*/scaledobject.yaml) query only metrics weir exports: every
/// `weir_*` name they use is in `/metrics`' `# HELP` lines (a histogram's `_bucket` by its
/// base name).
#[test]
fn dashboards_and_autoscalers_query_only_metrics_weir_exports() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    let weir = Weir::start(&[]).unwrap();
    wait_for_200(&weir.url("/live/test/master.m3u8"), Duration::from_secs(20)).unwrap();
    let (_, metrics) = curl(&weir.url("/metrics"), &[]).unwrap();
    let exported: BTreeSet<String> = String::from_utf8_lossy(&metrics)
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split(' ').next())
        .map(str::to_owned)
        .collect();
    assert!(exported.contains("weir_streams_active"), "{exported:?}");
    let root = repo_root();
    let mut files = vec![root.join("deploy/grafana/weir.json")];
    for overlay in ["primary", "edge"] {
        files.push(root.join(format!("deploy/k8s/overlays/{overlay}/scaledobject.yaml")));
    }
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let used: BTreeSet<String> = text
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .filter(|w| w.starts_with("weir_") && w.len() > 5)
            .map(|w| {
                ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| w.strip_suffix(s).filter(|b| exported.contains(*b)))
                    .unwrap_or(w)
                    .to_owned()
            })
            .collect();
        assert!(!used.is_empty(), "{} uses no weir metric", file.display());
        let unknown: Vec<_> = used.difference(&exported).collect();
        assert!(
            unknown.is_empty(),
            "{} queries metrics weir does not export: {unknown:?}",
            file.display()
        );
    }
}

/// `--log-format json` (or WEIR_LOG_FORMAT=json): every log line is one JSON object with a
/// timestamp, a level and a message, for a log pipeline; keys stay redacted there too.
#[test]
fn json_logs_are_one_object_per_line() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    let mut weir = Weir::start_with_env(&[], &[("WEIR_LOG_FORMAT", "json")]).unwrap();
    wait_for_200(&weir.url("/live/test/master.m3u8"), Duration::from_secs(20)).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let lines = weir.log().to_vec();
    assert!(lines.len() >= 3, "{lines:?}");
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        assert!(v["fields"]["message"].is_string(), "{line}");
    }
    assert!(lines
        .iter()
        .any(|l| l.contains("\"target\":\"weir_ingest::rtmp\"")));
}

/// `/readyz` is what the Kubernetes readiness probe asks (deploy/k8s): a primary is ready
/// once it listens; an edge only while its upstream answers, and says why not. `/healthz`
/// (liveness) stays 200 either way.
#[test]
fn readyz_follows_the_listeners_and_an_edges_upstream() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    let primary = Weir::start(&["--no-test-source"]).unwrap();
    assert_eq!(curl(&primary.url("/readyz"), &[]).unwrap().0, 200);
    // An edge whose upstream is a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let edge = Weir::start_edge(&format!("http://{closed}"), &[]).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let (code, body) = curl(&edge.url("/readyz"), &[]).unwrap();
    let body = String::from_utf8_lossy(&body);
    assert_eq!(code, 503, "{body}");
    assert!(body.contains("upstream"), "{body}");
    assert_eq!(curl(&edge.url("/healthz"), &[]).unwrap().0, 200);
    // The same edge on the live primary: ready within a check or two.
    let edge = Weir::start_edge(&primary.url(""), &[]).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(6);
    while curl(&edge.url("/readyz"), &[]).unwrap().0 != 200 {
        assert!(
            std::time::Instant::now() < deadline,
            "the edge never became ready"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `POST /api/v1/streams/{key}/kick` ends the publisher's session (ffmpeg sees its
/// connection closed and exits) and the stream goes on, as after a loss, on the stand-by
/// slate. The token is required; an unknown stream is 404.
#[test]
fn a_kicked_publisher_is_disconnected_and_the_stream_goes_on() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    const TOKEN: &str = "kick-test-token-0123456789";
    let weir = Weir::start(&["--no-test-source", "--api-token", TOKEN]).unwrap();
    let mut ffmpeg = ffmpeg_publish(&weir.rtmp_url("kickme"), 60, "640x360", 60).unwrap();
    let playlist = weir.url("/live/kickme/src/index.m3u8");
    wait_for_200(&playlist, Duration::from_secs(20)).unwrap();
    let kick = weir.url("/api/v1/streams/kickme/kick");
    let auth = format!("Authorization: Bearer {TOKEN}");
    assert_eq!(
        curl_post(&kick, &["Authorization: Bearer wrong-token-0123456789"], "")
            .unwrap()
            .0,
        401
    );
    assert_eq!(
        curl_post(&weir.url("/api/v1/streams/nobody/kick"), &[&auth], "")
            .unwrap()
            .0,
        404
    );
    assert!(ffmpeg.is_running());
    let edge_before = media_sequence_end(&curl(&playlist, &[]).unwrap().1);
    let (code, body) = curl_post(&kick, &[&auth], "").unwrap();
    assert_eq!(code, 202, "{}", String::from_utf8_lossy(&body));
    assert!(
        ffmpeg.wait_timeout(Duration::from_secs(10)).is_some(),
        "the kicked publisher is still connected"
    );
    // The stream goes on: gap parts, then the stand-by slate, on the same playlist.
    std::thread::sleep(Duration::from_secs(6));
    let (code, text) = curl(&playlist, &[]).unwrap();
    assert_eq!(code, 200);
    assert!(
        media_sequence_end(&text) >= edge_before + 2,
        "{}",
        String::from_utf8_lossy(&text)
    );
    assert!(
        String::from_utf8_lossy(&text).contains("#EXT-X-DISCONTINUITY"),
        "no slate after the kick"
    );
}

/// The msn after the last complete segment of a media playlist.
fn media_sequence_end(text: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(text);
    let first: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    first
        + text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .count() as u64
}
