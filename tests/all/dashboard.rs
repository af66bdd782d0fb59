//! The operator dashboard at `/` (issue 16): with the admin token it lists the live streams
//! with their state, plays each in a tile with its latency, shows the publish URLs for OBS
//! and ffmpeg with this server's ports, and each tenant's plugins. Driven in Chromium by
//! tests/e2e/dashboard.mjs, which also checks the tile shows a moving picture and saves a
//! screenshot.

use std::process::Command;
use std::time::Duration;

use weir_e2e::*;

#[test]
fn the_dashboard_shows_streams_players_publish_urls_and_plugins() {
    let _serial = serial();
    if !require_tools() {
        return;
    }
    const ADMIN: &str = "dashboard-admin-token-0123";
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weir.toml");
    let scte35 = repo_root().join("plugins/dist/scte35.wasm");
    std::fs::write(
        &config,
        format!(
            "[api]\ntoken = \"{ADMIN}\"\n\
             [[tenants]]\nname = \"acme\"\nstreams = [\"show\"]\npackager_cue_tags = false\n\
             [[tenants.plugins]]\nname = \"scte35\"\npath = \"{}\"\n",
            scte35.display()
        ),
    )
    .unwrap();
    let weir = Weir::start(&["--no-test-source", "--config", config.to_str().unwrap()]).unwrap();
    let _ffmpeg = ffmpeg_publish(&weir.rtmp_url("show"), 60, "640x360", 60).unwrap();
    wait_for_200(&weir.url("/live/show/master.m3u8"), Duration::from_secs(20)).unwrap();

    let shot = dir.path().join("dashboard.png");
    let out = Command::new("node")
        .current_dir(repo_root().join("tests/e2e"))
        .args(["dashboard.mjs", "--url", &weir.url("/"), "--token", ADMIN])
        .args(["--stream", "show", "--seconds", "6", "--screenshot"])
        .arg(&shot)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    eprintln!("dashboard: {report}");
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");

    // The row: the stream, its tenant, live, its RTMP publisher.
    let row = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["stream"] == "show")
        .unwrap();
    let cells: Vec<&str> = row["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(&cells[..3], ["show", "acme", "live"], "{cells:?}");
    assert!(cells[3].starts_with("rtmp 127.0.0.1:"), "{cells:?}");
    assert!(cells[4].ends_with("Mbit/s"), "{cells:?}");

    // The tile plays live, at a latency a person would expect.
    let latency = report["tile"]["latency"].as_f64().unwrap();
    assert!(latency > 0.0 && latency < 10.0, "tile latency {latency}");
    let picture = &report["picture"];
    assert!(picture["playing"].as_bool().unwrap(), "{picture}");
    assert!(picture["advanced"].as_f64().unwrap() > 0.5, "{picture}");
    assert!(
        picture["spread"].as_f64().unwrap() > 10.0,
        "a flat picture: {picture}"
    );
    assert!(
        picture["changed"].as_f64().unwrap() > 0.5,
        "a frozen picture: {picture}"
    );

    // Publish URLs with this server's real ports.
    let rtmp = weir.rtmp.unwrap().port();
    let srt = weir.srt.unwrap().port();
    assert_eq!(
        report["publish"]["obs-server"],
        format!("rtmp://127.0.0.1:{rtmp}/live")
    );
    assert!(report["publish"]["ffmpeg-rtmp"]
        .as_str()
        .unwrap()
        .contains(&format!("rtmp://127.0.0.1:{rtmp}/live/KEY")));
    assert!(report["publish"]["ffmpeg-srt"]
        .as_str()
        .unwrap()
        .contains(&format!("srt://127.0.0.1:{srt}?streamid=KEY")));

    // Plugins per tenant.
    assert_eq!(
        report["plugins"]["acme"],
        serde_json::json!(["scte35"]),
        "{report}"
    );
    assert_eq!(
        report["plugins"]["default"],
        serde_json::json!([]),
        "{report}"
    );

    // The screenshot: a full page, PNG.
    let png = std::fs::read(&shot).unwrap();
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 20_000,
        "{} bytes",
        png.len()
    );
    if let Ok(keep) = std::env::var("WEIR_DASHBOARD_SHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
}
