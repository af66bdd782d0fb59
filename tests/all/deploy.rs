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
        String::from_utf8_lossy(&text)
            .lines()
            .any(|l| l == "#EXT-X-DISCONTINUITY"),
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

/// Per-tenant API tokens (`[[tenants]] api_token`): a tenant's token lists, cues, kicks and
/// pushes only for its own streams and plugins (403 elsewhere); the admin token reaches all.
#[test]
fn a_tenants_token_cannot_touch_another_tenant() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    const ADMIN: &str = "admin-token-0123456789";
    const ACME: &str = "acme-token-0123456789";
    const BETA: &str = "beta-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weir.toml");
    std::fs::write(
        &config,
        format!(
            "[api]\ntoken = \"{ADMIN}\"\n\
             [[tenants]]\nname = \"acme\"\nstreams = [\"acme1\"]\napi_token = \"{ACME}\"\n\
             [[tenants]]\nname = \"beta\"\nstreams = [\"beta1\"]\napi_token = \"{BETA}\"\n"
        ),
    )
    .unwrap();
    let weir = Weir::start(&["--no-test-source", "--config", config.to_str().unwrap()]).unwrap();
    let _a = ffmpeg_publish(&weir.rtmp_url("acme1"), 40, "320x180", 60).unwrap();
    let _b = ffmpeg_publish(&weir.rtmp_url("beta1"), 40, "320x180", 60).unwrap();
    for s in ["acme1", "beta1"] {
        wait_for_200(
            &weir.url(&format!("/live/{s}/master.m3u8")),
            Duration::from_secs(20),
        )
        .unwrap();
    }
    let bearer = |t: &str| format!("Authorization: Bearer {t}");
    let streams = |t: &str| {
        let (code, body) = curl(&weir.url("/api/v1/streams"), &["-H", &bearer(t)]).unwrap();
        assert_eq!(code, 200);
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        v["streams"].as_array().unwrap().clone()
    };
    let listed = |t: &str| {
        streams(t)
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(listed(ACME), vec!["acme1"]);
    assert_eq!(listed(BETA), vec!["beta1"]);
    assert_eq!(listed(ADMIN), vec!["acme1", "beta1"]);
    // Each stream's state: its publisher, uptime, bitrate in, request rate, the renditions'
    // live edge. The rates are computed every 2 s: played for 5 s first.
    let _player = Player::start("hls", &weir.url("/live/acme1/master.m3u8"), 5)
        .unwrap()
        .join()
        .unwrap();
    let acme = streams(ACME)[0].clone();
    eprintln!("acme1: {acme}");
    assert_eq!(acme["tenant"], "acme");
    assert_eq!(acme["state"], "live");
    assert_eq!(acme["publisher"]["protocol"], "rtmp");
    assert!(acme["publisher"]["addr"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert!(acme["uptime_s"].as_f64().unwrap() > 4.0, "{acme}");
    assert!(
        acme["publisher"]["connected_s"].as_f64().unwrap() > 4.0,
        "{acme}"
    );
    // 320x180 ffmpeg test source: tens of kbit/s at least.
    assert!(acme["bitrate_in_bps"].as_u64().unwrap() > 20_000, "{acme}");
    assert!(acme["bytes_in"].as_u64().unwrap() > 10_000, "{acme}");
    assert!(acme["requests_total"].as_u64().unwrap() > 10, "{acme}");
    assert!(acme["requests_per_s"].as_f64().unwrap() > 0.0, "{acme}");
    let src = &acme["renditions"][0];
    assert_eq!(src["name"], "src");
    assert!(src["latest_msn"].as_u64().unwrap() > 0, "{acme}");
    assert!(acme["last_error"].is_null(), "{acme}");
    let out = r#"{"type":"out","duration":10,"id":7}"#;
    let post = |path: &str, t: &str, body: &str| {
        curl_post(&weir.url(path), &[&bearer(t)], body).unwrap().0
    };
    assert_eq!(post("/api/v1/streams/beta1/cues", ACME, out), 403);
    assert_eq!(post("/api/v1/streams/beta1/kick", ACME, ""), 403);
    assert_eq!(post("/api/v1/streams/acme1/cues", ACME, out), 202);
    assert_eq!(post("/api/v1/streams/beta1/cues", BETA, out), 202);
    let get = |path: &str, t: &str| curl(&weir.url(path), &["-H", &bearer(t)]).unwrap().0;
    assert_eq!(get("/api/v1/tenants/beta/plugins", ACME), 403);
    assert_eq!(get("/api/v1/tenants/acme/plugins", ACME), 200);
    assert_eq!(get("/api/v1/tenants/beta/plugins", ADMIN), 200);
    assert_eq!(get("/api/v1/streams", "not-a-token-0123456789"), 401);
    // The same through the CLI wrapper (`weir streams …`).
    let cli = |args: &[&str], token: &str| {
        std::process::Command::new(weir_bin())
            .args(["streams", "--server", &weir.url(""), "--token", token])
            .args(args)
            .output()
            .unwrap()
    };
    let out = cli(&["list"], ACME);
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["streams"][0]["name"], "acme1", "{v}");
    assert_eq!(v["streams"].as_array().unwrap().len(), 1, "{v}");
    let out = cli(&["kick", "beta1"], ACME);
    assert!(
        !out.status.success(),
        "a tenant kicked another tenant's publisher"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("tenant beta"));
    let out = cli(&["cue", "acme1", "--out", "5", "--id", "9"], ACME);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The admin kicks a tenant's publisher: the stream stays, with no publisher and the
    // kick as its last error.
    assert!(cli(&["kick", "beta1"], ADMIN).status.success());
    std::thread::sleep(Duration::from_millis(500));
    let beta = streams(BETA)[0].clone();
    eprintln!("beta1 after the kick: {beta}");
    assert_eq!(beta["state"], "no-publisher", "{beta}");
    assert!(beta["publisher"].is_null(), "{beta}");
    assert!(
        beta["last_error"]["message"]
            .as_str()
            .unwrap()
            .contains("kicked"),
        "{beta}"
    );
}
