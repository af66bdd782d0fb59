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
