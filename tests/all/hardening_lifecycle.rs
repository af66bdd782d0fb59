//! Process lifecycle (issue 12, item 7), against the real binary: a SIGHUP reload checks
//! everything before it swaps anything (keys and plugin chains together, all or nothing),
//! and a listener that dies takes the process down with a non-zero status.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use weir_e2e::*;

const TOKEN: &str = "lifecycle-token-0123456789";
const KEY_ONE: &str = "k-one-5b1e0c9a";
const KEY_TWO: &str = "k-two-93d7aa01";

fn dist(component: &str) -> String {
    repo_root()
        .join("plugins/dist")
        .join(format!("{component}.wasm"))
        .to_string_lossy()
        .into_owned()
}

/// The config: KEY_ONE → `one` (plus KEY_TWO → `two` when `second_key`), and the default
/// tenant's chain `plugins` as (name, path).
fn config(second_key: bool, plugins: &[(&str, &str)]) -> String {
    let mut c = format!(
        "[api]\ntoken = \"{TOKEN}\"\n\n[[ingest.keys]]\nkey = \"{KEY_ONE}\"\nstream = \"one\"\n"
    );
    if second_key {
        c.push_str(&format!(
            "[[ingest.keys]]\nkey = \"{KEY_TWO}\"\nstream = \"two\"\n"
        ));
    }
    c.push_str("\n[[tenants]]\nname = \"default\"\n");
    for (name, path) in plugins {
        c.push_str(&format!(
            "[[tenants.plugins]]\nname = \"{name}\"\npath = \"{path}\"\n"
        ));
    }
    c
}

/// The default tenant's chain, by name (`GET /api/v1/tenants/default/plugins`).
fn chain(weir: &Weir) -> Vec<String> {
    let auth = format!("Authorization: Bearer {TOKEN}");
    let (code, body) = curl(&weir.url("/api/v1/tenants/default/plugins"), &["-H", &auth]).unwrap();
    assert_eq!(code, 200);
    plugin_names(&body)
}

/// Whether a short RTMP publish with `key` is accepted: ffmpeg either gets refused at once
/// or streams until its 4 s are done.
fn publishes(weir: &Weir, key: &str) -> bool {
    let mut ff = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30"])
        .args([
            "-t",
            "4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "30",
        ])
        .args(["-f", "flv", &weir.rtmp_url(key)])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(status) = ff.try_wait().unwrap() {
            return status.success();
        }
        assert!(
            Instant::now() < end,
            "ffmpeg neither finished nor was refused"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn sighup_and_wait_for(weir: &mut Weir, line: &str) {
    let seen = weir.log().iter().filter(|l| l.contains(line)).count();
    let pid = weir.proc.child.id().to_string();
    assert!(Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .unwrap()
        .success());
    let end = Instant::now() + Duration::from_secs(60);
    while weir.log().iter().filter(|l| l.contains(line)).count() == seen {
        assert!(Instant::now() < end, "no {line:?} after SIGHUP");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_sighup_reload_swaps_everything_or_changes_nothing() {
    let _serial = serial();
    if !require(&["ffmpeg", "curl"]) {
        return;
    }
    let scte35 = dist("scte35");
    assert!(
        std::path::Path::new(&scte35).exists(),
        "run scripts/build-plugins.sh"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weir.toml");
    std::fs::write(&path, config(false, &[("scte35", &scte35)])).unwrap();
    let mut weir = Weir::start(&["--config", path.to_str().unwrap(), "--no-test-source"]).unwrap();
    assert_eq!(chain(&weir), ["scte35"]);
    assert!(!publishes(&weir, KEY_TWO), "KEY_TWO is not configured yet");

    // A new key and a plugin that does not compile: the reload fails as a whole, so the key
    // stays unknown and the chain stays as it was.
    let broken = dir.path().join("broken.wasm");
    std::fs::write(&broken, b"\0asm this is not a component").unwrap();
    std::fs::write(
        &path,
        config(
            true,
            &[("scte35", &scte35), ("broken", broken.to_str().unwrap())],
        ),
    )
    .unwrap();
    sighup_and_wait_for(&mut weir, "reload failed; nothing changed");
    assert_eq!(chain(&weir), ["scte35"]);
    assert!(
        !publishes(&weir, KEY_TWO),
        "a failed reload let the new key in"
    );

    // The same change with a plugin that works: everything at once.
    std::fs::write(
        &path,
        config(true, &[("scte35", &scte35), ("scte35-b", &scte35)]),
    )
    .unwrap();
    sighup_and_wait_for(&mut weir, "reload done");
    assert_eq!(chain(&weir), ["scte35", "scte35-b"]);
    assert!(publishes(&weir, KEY_TWO), "the reloaded key was refused");
    assert!(publishes(&weir, KEY_ONE));
}

#[test]
fn a_dead_listener_ends_the_process_with_a_nonzero_status() {
    let _serial = serial();
    if !require(&["curl"]) {
        return;
    }
    let mut weir = Weir::start_with_env(
        &["--no-test-source"],
        &[("WEIR_FAILPOINT_LISTENER_PANIC_MS", "1500")],
    )
    .unwrap();
    let status = weir
        .proc
        .wait_timeout(Duration::from_secs(20))
        .expect("weir kept running with a dead listener");
    assert!(!status.success(), "exited with {status}");
    let log = weir.log().join("\n");
    assert!(log.contains("a listener task panicked"), "{log}");
}
