//! Who may publish (issue 12, items 3 and 4), over RTMP and SRT with the real ffmpeg CLI
//! against the real binary: mapped keys, wrong keys, the stream's public name used as a
//! key, the same key twice at once, `allow_any_key` on and off, and the `on_publish`
//! callback allowing, refusing and timing out. The stream never changes hands, an unknown
//! key and a busy one read the same to the publisher, and the debug log holds no key.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weir_e2e::*;

/// The secret key that owns the public stream `news`.
const NEWS_KEY: &str = "k-news-2f9c1e77d0a4b6";

/// A publish attempt whose outcome the test reads: ffmpeg's exit and what it printed.
struct Attempt {
    what: &'static str,
    child: std::process::Child,
    stderr: Arc<Mutex<String>>,
}

impl Attempt {
    fn start(what: &'static str, url: &str) -> Self {
        let format = if url.starts_with("srt://") {
            "mpegts"
        } else {
            "flv"
        };
        let mut child = Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc2=size=320x240:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
            .args(["-t", "8", "-c:v", "libx264", "-preset", "ultrafast"])
            .args(["-tune", "zerolatency", "-g", "30", "-c:a", "aac"])
            .args(["-f", format, url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning ffmpeg");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                eprintln!("[ffmpeg {what}] {line}");
                sink.lock().unwrap().push_str(&line);
                sink.lock().unwrap().push('\n');
            }
        });
        Self {
            what,
            child,
            stderr,
        }
    }

    /// Waits for ffmpeg to give up; panics if it is still publishing after `within`.
    fn expect_refused(mut self, within: Duration) -> String {
        let end = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    !status.success(),
                    "{}: ffmpeg finished as if it published",
                    self.what
                );
                // Let the reader thread drain the last lines.
                std::thread::sleep(Duration::from_millis(100));
                return self.stderr.lock().unwrap().clone();
            }
            if Instant::now() > end {
                let _ = self.child.kill();
                panic!(
                    "{}: still publishing after {within:?}; it should be refused",
                    self.what
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The operator's publish callback: allows keys starting `k-` or `cb-ok`, never answers
/// keys starting `cb-slow` in time, refuses the rest with 403. Records every body.
struct Callback {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<serde_json::Value>>>,
}

impl Callback {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        std::thread::spawn(move || {
            for conn in listener.incoming().map_while(Result::ok) {
                let record = Arc::clone(&record);
                std::thread::spawn(move || {
                    let _ = answer(conn, &record);
                });
            }
        });
        Self { addr, seen }
    }

    fn keys_seen(&self) -> Vec<String> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .map(|v| v["key"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

fn answer(
    mut conn: std::net::TcpStream,
    record: &Mutex<Vec<serde_json::Value>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut length = 0;
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let key = json["key"].as_str().unwrap_or_default().to_owned();
    record.lock().unwrap().push(json);
    let status = if key.starts_with("k-") || key.starts_with("cb-ok") {
        "204 No Content"
    } else if key.starts_with("cb-slow") {
        std::thread::sleep(Duration::from_secs(3));
        "204 No Content"
    } else {
        "403 Forbidden"
    };
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
}

fn write_config(dir: &std::path::Path, toml: &str) -> String {
    let path = dir.join("weir.toml");
    std::fs::write(&path, toml).unwrap();
    path.to_string_lossy().into_owned()
}

/// The width of the video in a rendition's newest complete segment, and whether its
/// playlist ever switched publisher (a discontinuity or a second init).
fn current_picture(weir: &Weir, stream: &str) -> (u32, String) {
    let playlist = curl(&weir.url(&format!("/live/{stream}/src/index.m3u8")), &[])
        .unwrap()
        .1;
    let text = String::from_utf8(playlist).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let init = curl(&weir.url(&format!("/live/{stream}/src/init.mp4")), &[]).unwrap();
    assert_eq!(init.0, 200);
    let path = dir.path().join("init.mp4");
    std::fs::write(&path, &init.1).unwrap();
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=width", "-of", "csv=p=0"])
        .arg(&path)
        .output()
        .unwrap();
    let width = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    (width, text)
}

#[test]
fn publishers_only_ever_feed_the_stream_their_own_key_owns() {
    let _serial = serial();
    if !require(&["ffmpeg", "ffprobe", "curl"]) {
        return;
    }
    let callback = Callback::start();
    let dir = tempfile::tempdir().unwrap();
    // allow_any_key forced on next to a mapped key and a callback: the widest door.
    let config = write_config(
        dir.path(),
        &format!(
            r#"
[ingest]
allow_any_key = true
[[ingest.keys]]
key = "{NEWS_KEY}"
stream = "news"
[ingest.on_publish]
url = "http://{}/on_publish"
timeout_ms = 700
"#,
            callback.addr
        ),
    );
    let mut weir = Weir::start_with_env(
        &["--config", &config, "--no-test-source"],
        &[("WEIR_LOG", "debug")],
    )
    .unwrap();
    let _owner =
        ffmpeg_publish_preset(&weir.rtmp_url(NEWS_KEY), 40, "640x360", 30, "ultrafast").unwrap();
    wait_for_200(&weir.url("/live/news/master.m3u8"), Duration::from_secs(20)).unwrap();

    // Every way in that must be refused, all at once.
    let refused = [
        Attempt::start("rtmp: the public name as key", &weir.rtmp_url("news")),
        Attempt::start("srt: the public name as key", &weir.srt_url("news", None)),
        Attempt::start("rtmp: the owner's key again", &weir.rtmp_url(NEWS_KEY)),
        Attempt::start("srt: the owner's key again", &weir.srt_url(NEWS_KEY, None)),
        Attempt::start("rtmp: callback refuses", &weir.rtmp_url("zz-wrong-secret")),
        Attempt::start("srt: callback refuses", &weir.srt_url("cb-no-secret", None)),
        Attempt::start("rtmp: callback times out", &weir.rtmp_url("cb-slow-secret")),
    ];
    let allowed_rtmp =
        ffmpeg_publish_preset(&weir.rtmp_url("cb-ok-rtmp"), 20, "320x240", 30, "ultrafast")
            .unwrap();
    let allowed_srt = ffmpeg_publish_preset(
        &weir.srt_url("cb-ok-srt", None),
        20,
        "320x240",
        30,
        "ultrafast",
    )
    .unwrap();
    let mut texts = Vec::new();
    for attempt in refused {
        let what = attempt.what;
        let stderr = attempt.expect_refused(Duration::from_secs(12));
        texts.push((what, stderr));
    }
    // An unknown key and a busy one read the same to an RTMP publisher.
    let rtmp_text = |what: &str| {
        let (_, text) = texts.iter().find(|(w, _)| *w == what).unwrap();
        assert!(text.contains("publish refused"), "{what}: {text}");
        text.lines()
            .filter(|l| l.contains("publish refused"))
            .map(|l| {
                l.split_once("]")
                    .map_or(l, |(_, rest)| rest)
                    .trim()
                    .to_owned()
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        rtmp_text("rtmp: the owner's key again"),
        rtmp_text("rtmp: callback refuses"),
        "a busy key must read like an unknown one"
    );
    assert_eq!(
        rtmp_text("rtmp: the public name as key"),
        rtmp_text("rtmp: callback refuses")
    );

    // Keys the callback allows publish under their own names, over both protocols.
    wait_for_200(
        &weir.url("/live/cb-ok-rtmp/master.m3u8"),
        Duration::from_secs(20),
    )
    .unwrap();
    wait_for_200(
        &weir.url("/live/cb-ok-srt/master.m3u8"),
        Duration::from_secs(20),
    )
    .unwrap();
    drop((allowed_rtmp, allowed_srt));

    // The stream never changed hands: one publisher, its own 640-wide picture.
    let (width, playlist) = current_picture(&weir, "news");
    assert_eq!(width, 640, "news shows another publisher's picture");
    assert!(
        !playlist.lines().any(|l| l == "#EXT-X-DISCONTINUITY"),
        "news switched publisher:\n{playlist}"
    );
    for refused in ["zz-wrong-secret", "cb-no-secret", "cb-slow-secret"] {
        let (code, _) = curl(&weir.url(&format!("/live/{refused}/master.m3u8")), &[]).unwrap();
        assert_eq!(code, 404, "{refused} was published");
    }

    // The callback heard every key that got as far as it, with its protocol and address.
    let seen = callback.keys_seen();
    for key in [
        NEWS_KEY,
        "zz-wrong-secret",
        "cb-no-secret",
        "cb-slow-secret",
        "cb-ok-srt",
    ] {
        assert!(
            seen.iter().any(|k| k == key),
            "callback never asked about {key}: {seen:?}"
        );
    }
    assert!(
        !seen.iter().any(|k| k == "news"),
        "a reserved name never reaches the callback: {seen:?}"
    );
    let bodies = callback.seen.lock().unwrap().clone();
    assert!(bodies
        .iter()
        .any(|b| b["protocol"] == "srt" && b["addr"] == "127.0.0.1" && b["stream"] == "cb-ok-srt"));

    // Nothing secret in the debug log.
    let log = weir.log().join("\n");
    assert!(
        log.contains("publish not authorized"),
        "refusals are logged"
    );
    for secret in [
        NEWS_KEY,
        "zz-wrong-secret",
        "cb-no-secret",
        "cb-slow-secret",
    ] {
        assert!(!log.contains(secret), "the log shows the key {secret}");
    }
}

#[test]
fn allow_any_key_is_on_for_zero_config_and_off_once_keys_are_mapped() {
    let _serial = serial();
    if !require(&["ffmpeg", "curl"]) {
        return;
    }
    // Zero config: any key publishes under its own name.
    {
        let weir = Weir::start(&["--no-test-source"]).unwrap();
        let _ff = ffmpeg_publish_preset(&weir.rtmp_url("anykey"), 15, "320x240", 30, "ultrafast")
            .unwrap();
        wait_for_200(
            &weir.url("/live/anykey/master.m3u8"),
            Duration::from_secs(20),
        )
        .unwrap();
    }
    // A mapped key and nothing else: only it publishes, and only to its stream.
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!("[[ingest.keys]]\nkey = \"{NEWS_KEY}\"\nstream = \"news\"\n"),
    );
    let weir = Weir::start(&["--config", &config, "--no-test-source"]).unwrap();
    let refused = [
        Attempt::start("rtmp: any key", &weir.rtmp_url("anykey")),
        Attempt::start("srt: any key", &weir.srt_url("anykey", None)),
    ];
    for attempt in refused {
        attempt.expect_refused(Duration::from_secs(12));
    }
    let _owner = ffmpeg_publish_preset(
        &weir.srt_url(NEWS_KEY, None),
        15,
        "320x240",
        30,
        "ultrafast",
    )
    .unwrap();
    wait_for_200(&weir.url("/live/news/master.m3u8"), Duration::from_secs(20)).unwrap();
    let (code, _) = curl(&weir.url("/live/anykey/master.m3u8"), &[]).unwrap();
    assert_eq!(code, 404);
}
