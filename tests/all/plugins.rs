//! Manifest plugins end to end: WebAssembly components pushed into a running weir with
//! `weir plugin push` (or the admin API), seen through real players and plain HTTP.
//!
//! - scte35 + dai pushed while hls.js plays: an injected cue becomes a `SCTE35-OUT` date
//!   range and an HLS Interstitial, and hls.js loads the asset list and plays the ad.
//! - blackout: viewers in a blacked-out country get the slate (playlists and playback);
//!   everyone else gets the programme byte for byte.
//! - the fault plugins (trap, endless loop, memory hog, garbage, dropped media) never stall
//!   or break a playlist, and each failure is counted by kind on `/metrics`.
//! - 100 pushes while 8 clients follow the live edge: no error, no slow answer.
//!
//! The components come from `plugins/dist/` (`scripts/build-plugins.sh`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use weir_e2e::*;

/// The operator API's bearer token in these tests.
const TOKEN: &str = "plugins-e2e-token-0123456789";

/// The packager's part target (weir's default, 500 ms).
const PART_TARGET: Duration = Duration::from_millis(500);

/// A blocking playlist request (or a preload-hinted part) must be answered within one part
/// target plus this: the wait for the part itself, then at most the plugin deadline.
const SLACK: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------
// Setup

/// A weir with the operator API, an assets directory and the `default` tenant (packager
/// cue tags off, slate rendition on), in a temporary directory.
struct Origin {
    weir: Weir,
    dir: tempfile::TempDir,
}

impl Origin {
    fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let assets = dir.path().join("assets");
        std::fs::create_dir_all(&assets).unwrap();
        let config = dir.path().join("weir.toml");
        std::fs::write(
            &config,
            format!(
                "[api]\ntoken = \"{TOKEN}\"\n\n[server]\nassets_dir = \"{}\"\n\n\
                 [[tenants]]\nname = \"default\"\npackager_cue_tags = false\nslate = true\n",
                assets.display()
            ),
        )
        .unwrap();
        let mut args = vec!["--config", config.to_str().unwrap()];
        args.extend_from_slice(extra);
        let weir = Weir::start(&args).unwrap();
        Self { weir, dir }
    }

    fn server(&self) -> String {
        format!("http://{}", self.weir.http)
    }

    /// `weir plugin push` of `plugins/dist/<component>.wasm` as `name`; (success, output).
    fn push(&self, name: &str, component: &str, config: Option<&str>) -> (bool, String) {
        let mut cmd = self.cli();
        cmd.args(["push", "--tenant", "default", "--name", name])
            .arg(dist(component));
        if let Some(c) = config {
            let path = self.dir.path().join(format!("{name}.json"));
            std::fs::write(&path, c).unwrap();
            cmd.arg("--config").arg(path);
        }
        run(cmd)
    }

    /// Like [`Origin::push`], failing the test when the push is refused.
    fn push_ok(&self, name: &str, component: &str, config: Option<&str>) {
        let (ok, out) = self.push(name, component, config);
        assert!(ok, "pushing {name} ({component}) failed: {out}");
        eprintln!("pushed {name}: {}", out.trim());
    }

    /// `weir plugin remove`.
    fn remove(&self, name: &str) {
        let mut cmd = self.cli();
        cmd.args(["remove", "--tenant", "default", "--name", name]);
        let (ok, out) = run(cmd);
        assert!(ok, "removing {name} failed: {out}");
    }

    /// The chain's plugin names, in order (`weir plugin list`).
    fn chain(&self) -> Vec<String> {
        let mut cmd = self.cli();
        cmd.args(["list", "--tenant", "default"]);
        let (ok, out) = run(cmd);
        assert!(ok, "listing plugins failed: {out}");
        plugin_names(out.trim().as_bytes())
    }

    fn cli(&self) -> Command {
        let mut cmd = Command::new(weir_bin());
        cmd.args(["plugin", "--server", &self.server(), "--token", TOKEN])
            // An error is one line, not a backtrace.
            .env("RUST_BACKTRACE", "0")
            .env("RUST_LIB_BACKTRACE", "0");
        cmd
    }

    /// POSTs an out cue to the cue API.
    fn cue_out(&self, stream: &str, id: u32, duration: f64) {
        let (code, body) = curl_post(
            &self.weir.url(&format!("/api/v1/streams/{stream}/cues")),
            &[&format!("Authorization: Bearer {TOKEN}")],
            &format!(r#"{{"type":"out","duration":{duration},"id":{id}}}"#),
        )
        .unwrap();
        assert_eq!(
            code,
            202,
            "cue API refused the cue: {}",
            String::from_utf8_lossy(&body)
        );
    }

    fn metrics(&self) -> String {
        let (code, body) = curl(&self.weir.url("/metrics"), &[]).unwrap();
        assert_eq!(code, 200);
        String::from_utf8(body).unwrap()
    }
}

fn dist(component: &str) -> PathBuf {
    repo_root()
        .join("plugins/dist")
        .join(format!("{component}.wasm"))
}

/// Runs a command; (success, stdout + stderr).
fn run(mut cmd: Command) -> (bool, String) {
    let out = cmd.output().expect("running weir plugin");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Skips (or, with `WEIR_E2E_REQUIRED=1`, fails) when the components are not built.
fn require_components(names: &[&str]) -> bool {
    let missing: Vec<String> = names
        .iter()
        .filter(|n| !dist(n).exists())
        .map(|n| dist(n).display().to_string())
        .collect();
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "plugin tests need {} (run: scripts/build-plugins.sh)",
        missing.join(", ")
    );
    if std::env::var("WEIR_E2E_REQUIRED").is_ok_and(|v| v == "1") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

/// The sum of a Prometheus counter over the series that carry every label in `labels`.
fn counter(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let rest = series.strip_prefix(name)?;
            if !(rest.is_empty() || rest.starts_with('{')) {
                return None;
            }
            labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum::<f64>()
        // An empty sum is -0.0.
        + 0.0
}

/// A 6 s VOD ad (CMAF, like the programme) in `<assets>/ad/`, as an ad server would have it.
fn make_ad(assets: &Path) {
    let dir = assets.join("ad");
    std::fs::create_dir_all(&dir).unwrap();
    let st = Command::new("ffmpeg")
        .current_dir(&dir)
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30"])
        .args(["-f", "lavfi", "-i", "sine=frequency=880:sample_rate=48000"])
        .args(["-t", "6", "-c:v", "libx264", "-preset", "veryfast"])
        .args(["-pix_fmt", "yuv420p", "-g", "30", "-bf", "0", "-c:a", "aac"])
        .args(["-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod"])
        .args(["-hls_segment_type", "fmp4", "index.m3u8"])
        .status()
        .unwrap();
    assert!(st.success(), "ffmpeg could not make the ad");
}

// ---------------------------------------------------------------------------------------
// HTTP: a small keep-alive HTTP/1.1 client, so that timings are weir's and not a process
// spawn's, and response headers (`Vary`) are visible.

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// Every value of a header (lower-case name), comma lists split.
    fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k == name)
            .flat_map(|(_, v)| v.split(',').map(|s| s.trim().to_ascii_lowercase()))
            .collect()
    }
}

struct Client {
    addr: SocketAddr,
    conn: Option<BufReader<TcpStream>>,
}

impl Client {
    fn new(addr: SocketAddr) -> Self {
        Self { addr, conn: None }
    }

    fn get(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<Response> {
        // A kept-alive connection the server closed meanwhile fails once; retry fresh.
        let reused = self.conn.is_some();
        match self.try_get(path, headers) {
            Ok(r) => Ok(r),
            Err(_) if reused => {
                self.conn = None;
                self.try_get(path, headers)
            }
            Err(e) => Err(e),
        }
    }

    fn try_get(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<Response> {
        if self.conn.is_none() {
            let s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
            s.set_read_timeout(Some(Duration::from_secs(10)))?;
            s.set_nodelay(true)?;
            self.conn = Some(BufReader::new(s));
        }
        let result = self.exchange(path, headers);
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    fn exchange(&mut self, path: &str, headers: &[(&str, &str)]) -> Result<Response> {
        let addr = self.addr;
        let conn = self.conn.as_mut().context("no connection")?;
        let mut req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        conn.get_mut().write_all(req.as_bytes())?;
        let mut line = String::new();
        if conn.read_line(&mut line)? == 0 {
            bail!("connection closed before the status line");
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .context("status line")?
            .parse()?;
        let mut hdrs = Vec::new();
        loop {
            line.clear();
            conn.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let (k, v) = l.split_once(':').context("header line")?;
            hdrs.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
        }
        let get = |n: &str| hdrs.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let mut body = Vec::new();
        let close = get("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"));
        if get("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                line.clear();
                conn.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .context("chunk size")?;
                if size == 0 {
                    // Trailers, then the blank line.
                    loop {
                        line.clear();
                        conn.read_line(&mut line)?;
                        if line.trim_end().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                conn.read_exact(&mut body[start..])?;
                line.clear();
                conn.read_line(&mut line)?;
            }
        } else if let Some(len) = get("content-length") {
            body.resize(len.parse()?, 0);
            conn.read_exact(&mut body)?;
        } else {
            conn.read_to_end(&mut body)?;
            self.conn = None;
        }
        if close {
            self.conn = None;
        }
        Ok(Response {
            status,
            headers: hdrs,
            body,
        })
    }
}

// ---------------------------------------------------------------------------------------
// Playlists

/// (segment, part index) of the preload-hinted part: the part after the last one listed,
/// as `_HLS_msn`/`_HLS_part` name it.
fn next_part(text: &str) -> (u64, u64) {
    let mut msn: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no media sequence:\n{text}"));
    let mut parts = 0;
    for l in text.lines() {
        if l.starts_with("#EXTINF:") {
            msn += 1;
            parts = 0;
        } else if l.starts_with("#EXT-X-PART:") {
            parts += 1;
        }
    }
    (msn, parts)
}

/// Parts in the last complete segment (the programme's GOP is the segment length, so every
/// segment has as many).
fn parts_per_segment(text: &str) -> u64 {
    let mut parts = 0;
    let mut last = 0;
    for l in text.lines() {
        if l.starts_with("#EXTINF:") {
            last = parts;
            parts = 0;
        } else if l.starts_with("#EXT-X-PART:") {
            parts += 1;
        }
    }
    assert!(last > 0, "no complete segment with parts:\n{text}");
    last
}

/// The `EXT-X-PRELOAD-HINT` URI.
fn preload_hint(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("#EXT-X-PRELOAD-HINT:"))
        .and_then(|a| a.split("URI=\"").nth(1))
        .and_then(|u| u.split('"').next())
        .map(str::to_owned)
}

/// Checks a live media playlist from weir: it parses (m3u8-rs), it has a preload hint, and
/// every segment is listed, named `seg<msn>.m4s` from the media sequence on (so no plugin
/// dropped or renamed one).
fn check_media_playlist(text: &str) -> Result<()> {
    if !text.starts_with("#EXTM3U") {
        bail!("not a playlist:\n{text}");
    }
    let p = parse_media_playlist(text.as_bytes())?;
    for (i, s) in p.segments.iter().enumerate() {
        let want = format!("seg{}.m4s", p.media_sequence + i as u64);
        if s.uri != want {
            bail!("segment {i} is {:?}, expected {want:?}:\n{text}", s.uri);
        }
    }
    if preload_hint(text).is_none() {
        bail!("no EXT-X-PRELOAD-HINT:\n{text}");
    }
    Ok(())
}

/// Waits until a media playlist lists `n` complete segments; returns it.
fn wait_for_segments(url: &str, n: usize) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = String::from_utf8(wait_for_200(url, Duration::from_secs(20)).unwrap()).unwrap();
        if text.matches("#EXTINF:").count() >= n {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "{url} never listed {n} segments:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A client at the live edge, as an LL-HLS player is: each step asks for the preload-hinted
/// part and, at the same time on a second connection, for the playlist that will list it
/// (`_HLS_msn`/`_HLS_part`). Both block in weir until the part is complete.
struct LiveFollower {
    dir: String,
    playlists: Client,
    parts: Client,
    /// The last playlist.
    text: String,
}

/// One step's two answers (or errors), with their times.
struct Step {
    playlist_path: String,
    playlist: Result<Response>,
    playlist_took: Duration,
    part_path: String,
    part: Result<Response>,
    part_took: Duration,
}

impl LiveFollower {
    /// `dir` is the rendition's folder, e.g. `/live/test/src`.
    fn new(addr: SocketAddr, dir: &str) -> Result<Self> {
        let mut playlists = Client::new(addr);
        let first = playlists.get(&format!("{dir}/index.m3u8"), &[])?;
        if first.status != 200 {
            bail!("GET {dir}/index.m3u8: {}", first.status);
        }
        Ok(Self {
            dir: dir.to_owned(),
            playlists,
            parts: Client::new(addr),
            text: first.text(),
        })
    }

    fn step(&mut self) -> Step {
        let (msn, part) = next_part(&self.text);
        let playlist_path = format!("{}/index.m3u8?_HLS_msn={msn}&_HLS_part={part}", self.dir);
        let part_path = format!(
            "{}/{}",
            self.dir,
            preload_hint(&self.text).unwrap_or_default()
        );
        let (playlists, parts) = (&mut self.playlists, &mut self.parts);
        let ((playlist, playlist_took), (part, part_took)) = std::thread::scope(|s| {
            let hinted = s.spawn(|| {
                let t = Instant::now();
                (parts.get(&part_path, &[]), t.elapsed())
            });
            let t = Instant::now();
            let playlist = playlists.get(&playlist_path, &[]);
            ((playlist, t.elapsed()), hinted.join().unwrap())
        });
        match &playlist {
            Ok(r) if r.status == 200 => self.text = r.text(),
            // Start again from the current playlist.
            _ => {
                if let Ok(r) = self.playlists.get(&format!("{}/index.m3u8", self.dir), &[]) {
                    self.text = r.text();
                }
            }
        }
        Step {
            playlist_path,
            playlist,
            playlist_took,
            part_path,
            part,
            part_took,
        }
    }
}

/// Follows the live edge for `seconds` ([`LiveFollower`]). Every answer must be 200 and
/// come within the part target plus [`SLACK`]; every playlist must pass
/// [`check_media_playlist`] and `check`, and list the part it was asked for. Returns
/// (playlists, parts, slowest answer).
fn follow_live_edge(
    addr: SocketAddr,
    dir: &str,
    seconds: f64,
    check: &dyn Fn(&str) -> Result<()>,
) -> Result<(usize, usize, Duration)> {
    let mut live = LiveFollower::new(addr, dir)?;
    let (mut playlists, mut parts, mut slowest) = (0, 0, Duration::ZERO);
    let bound = PART_TARGET + SLACK;
    let end = Instant::now() + Duration::from_secs_f64(seconds);
    while Instant::now() < end {
        let asked = next_part(&live.text);
        let step = live.step();
        let path = &step.playlist_path;
        let r = step.playlist.with_context(|| format!("GET {path}"))?;
        let took = step.playlist_took;
        slowest = slowest.max(took);
        let text = r.text();
        if r.status != 200 {
            bail!("GET {path}: {} after {took:?}: {text}", r.status);
        }
        if took > bound {
            bail!("GET {path} took {took:?} (bound {bound:?})");
        }
        check_media_playlist(&text).with_context(|| format!("GET {path}"))?;
        check(&text).with_context(|| format!("GET {path}"))?;
        if next_part(&text) <= asked {
            bail!("GET {path} answered without the part it asked for:\n{text}");
        }
        playlists += 1;
        let path = &step.part_path;
        let r = step.part.with_context(|| format!("GET {path}"))?;
        let took = step.part_took;
        slowest = slowest.max(took);
        if r.status != 200 || r.body.is_empty() {
            bail!(
                "GET {path} (the preload hint): {} with {} bytes",
                r.status,
                r.body.len()
            );
        }
        if took > bound {
            bail!("GET {path} (the preload hint) took {took:?} (bound {bound:?})");
        }
        parts += 1;
    }
    Ok((playlists, parts, slowest))
}

// ---------------------------------------------------------------------------------------
// Tests

/// The player's requests that failed, less those it aborted itself (hls.js cancels the
/// primary's loads when a break starts, and closing the browser cancels what is in flight).
fn failed(r: &PlayReport) -> Vec<&String> {
    r.requests
        .failed
        .iter()
        .filter(|f| !f.ends_with("net::ERR_ABORTED"))
        .collect()
}

#[test]
fn scte35_and_dai_plugins_pushed_at_runtime() {
    scte35_and_dai_at_runtime(false);
}

/// The same with the current hls.js release (1.7.x), which appends an ad "in place" into
/// the programme's buffer unless the break says `CUE="ONCE"` (dai's default), and got that
/// wrong for a break cued at the live edge (#14 item 7).
#[test]
fn scte35_and_dai_plugins_pushed_at_runtime_with_the_current_hlsjs() {
    scte35_and_dai_at_runtime(true);
}

fn scte35_and_dai_at_runtime(current: bool) {
    let _serial = serial();
    if !require_tools() || !require_components(&["scte35", "dai"]) {
        return;
    }
    let origin = Origin::start(&[]);
    let weir = &origin.weir;
    make_ad(&origin.dir.path().join("assets"));
    let master = weir.url("/live/test/master.m3u8");
    let media = weir.url("/live/test/src/index.m3u8");
    wait_for_segments(&media, 2);

    // The player runs first, with no plugins; everything below happens while it plays.
    let started = origin.dir.path().join("started");
    let mut args = vec!["--started-file", started.to_str().unwrap()];
    if current {
        args.push("--current");
    }
    let player = Player::start_with("hls", &master, 20, &args).unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    while !started.exists() {
        assert!(
            Instant::now() < deadline,
            "hls.js did not start within 40 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    origin.push_ok("scte35", "scte35", Some(r#"{"dialect":"daterange"}"#));
    // The config names the ad by path, as plugins/dai/README.md does. hls.js 1.6.19
    // resolves an asset list's URIs against the page, not the asset list
    // (interstitial-player.ts), and the page here is on another origin, as a real site's is:
    // weir makes them absolute when it answers the asset list.
    let ad = weir.url("/assets/ad/index.m3u8");
    origin.push_ok(
        "dai",
        "dai",
        Some(r#"{"ads":{"default":[{"uri":"/assets/ad/index.m3u8","duration":6.0}]}}"#),
    );
    assert_eq!(origin.chain(), ["scte35", "dai"]);

    // A 6 s break (the ad's length) at the live edge: ahead of the playhead, which trails
    // the edge by the part hold-back.
    let id = 7;
    origin.cue_out("test", id, 6.0);

    // The playlist: the cue as SCTE-35 (scte35) and as an interstitial (dai).
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        let (code, body) = curl(&media, &[]).unwrap();
        assert_eq!(code, 200);
        text = String::from_utf8(body).unwrap();
        if dateranges(&text).len() >= 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    check_media_playlist(&text).unwrap();
    let ranges = dateranges(&text);
    let splice = ranges
        .iter()
        .find(|r| r.get("ID").map(String::as_str) == Some(&format!("splice-{id}")))
        .unwrap_or_else(|| panic!("no splice-{id} date range:\n{text}"));
    assert!(
        splice
            .get("SCTE35-OUT")
            .is_some_and(|v| v.starts_with("0xFC")),
        "splice-{id} carries no SCTE35-OUT section: {splice:?}"
    );
    assert_eq!(
        splice.get("PLANNED-DURATION").map(String::as_str),
        Some("6.000")
    );
    let break_ = ranges
        .iter()
        .find(|r| r.get("CLASS").map(String::as_str) == Some("com.apple.hls.interstitial"))
        .unwrap_or_else(|| panic!("no interstitial date range:\n{text}"));
    assert_eq!(
        break_.get("ID").map(String::as_str),
        Some(&*format!("ad-{id}"))
    );
    assert_eq!(break_.get("START-DATE"), splice.get("START-DATE"));
    let list_uri = break_
        .get("X-ASSET-LIST")
        .unwrap_or_else(|| panic!("interstitial without X-ASSET-LIST: {break_:?}"));
    assert_eq!(list_uri, &format!("../asset-list/{id}.json"));

    // The asset list (relative to the media playlist).
    let (code, body) = curl(&weir.url(&format!("/live/test/asset-list/{id}.json")), &[]).unwrap();
    assert_eq!(code, 200, "{}", String::from_utf8_lossy(&body));
    let list: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        list,
        serde_json::json!({"ASSETS": [{"URI": ad, "DURATION": 6.0}]})
    );
    let (code, _) = curl(&ad, &[]).unwrap();
    assert_eq!(code, 200, "the ad is not served from the assets directory");

    let r = player.join().unwrap();
    eprintln!("interstitial events: {:?}", r.interstitials);
    assert!(r.started, "hls.js never started: {:?}", r.errors);
    assert!(r.fatal.is_empty(), "hls.js fatal errors: {:?}", r.fatal);
    assert!(r.played >= 15.0, "hls.js played only {:.1}s", r.played);
    assert!(
        failed(&r).is_empty(),
        "failed requests: {:?}",
        r.requests.failed
    );
    assert!(
        r.requests.asset_list >= 1,
        "hls.js never asked for the asset list: {:?}",
        r.requests
    );
    assert!(
        r.requests.assets >= 3,
        "hls.js loaded too little of the ad (playlist, init, segments): {:?}",
        r.requests
    );
    let ours: Vec<&InterstitialEvent> = r
        .interstitials
        .iter()
        .filter(|e| e.id.as_deref() == Some(&*format!("ad-{id}")) || e.id.is_none())
        .collect();
    let events: Vec<&str> = ours.iter().map(|e| e.event.as_str()).collect();
    let errors: Vec<_> = r
        .interstitials
        .iter()
        .filter(|e| e.event.contains("ERROR"))
        .collect();
    assert!(errors.is_empty(), "interstitial errors: {errors:?}");
    let position = |name: &str| {
        events
            .iter()
            .position(|e| *e == name)
            .unwrap_or_else(|| panic!("no {name} in hls.js's interstitial events: {events:?}"))
    };
    // In order: the list, the break, the ad from start to end, back to the programme.
    let order = [
        position("ASSET_LIST_LOADED"),
        position("INTERSTITIAL_STARTED"),
        position("INTERSTITIAL_ASSET_STARTED"),
        position("INTERSTITIAL_ASSET_ENDED"),
        position("INTERSTITIAL_ENDED"),
        position("INTERSTITIALS_PRIMARY_RESUMED"),
    ];
    assert!(
        order.windows(2).all(|w| w[0] < w[1]),
        "interstitial events out of order: {events:?}"
    );
    assert_eq!(ours[order[2]].uri.as_deref(), Some(&*ad));
    let (start, end) = (ours[order[2]].at, ours[order[3]].at);
    assert!(
        (4.0..=9.0).contains(&(end - start)),
        "the 6 s ad played for {:.1}s",
        end - start
    );

    let m = origin.metrics();
    for (plugin, function) in [
        ("scte35", "transform-media-playlist"),
        ("dai", "transform-media-playlist"),
        ("dai", "resolve-asset-list"),
    ] {
        assert!(
            counter(
                &m,
                "weir_plugin_calls_total",
                &[("plugin", plugin), ("function", function)]
            ) > 0.0,
            "no {function} calls for {plugin} on /metrics"
        );
    }
    assert_eq!(
        counter(&m, "weir_plugin_failures_total", &[]),
        0.0,
        "plugin failures:\n{m}"
    );
}

/// A delta update (`_HLS_skip=YES`) carries every date range its full playlist carries
/// (weir does not advertise `CAN-SKIP-DATERANGES`). The dai plugin writes an interstitial
/// only while its date is inside the playlist it is given; given the delta text, it left
/// the interstitial out once its date fell among the skipped segments, and hls.js, which
/// keeps no date range across a delta update without `CAN-SKIP-DATERANGES`, took that as
/// the break being removed: a playing ad stopped, and restarted from the middle when the
/// next full playlist listed it again (#14 item 7). Now the chain runs on the full
/// playlist and the delta update is made from its output.
#[test]
fn a_delta_update_keeps_the_interstitials_of_its_full_playlist() {
    let _serial = serial();
    if !require_tools() || !require_components(&["scte35", "dai"]) {
        return;
    }
    let origin = Origin::start(&[]);
    let weir = &origin.weir;
    let media = weir.url("/live/test/src/index.m3u8");
    wait_for_segments(&media, 2);
    origin.push_ok("scte35", "scte35", Some(r#"{"dialect":"daterange"}"#));
    origin.push_ok(
        "dai",
        "dai",
        Some(r#"{"ads":{"default":[{"uri":"/assets/ad/index.m3u8","duration":6.0}]}}"#),
    );
    origin.cue_out("test", 9, 6.0);

    // Until the break's date is among the segments a delta update skips (CAN-SKIP-UNTIL is
    // 12 s: about 14 s after the cue), every version's delta update must list what its
    // full playlist lists.
    let deadline = Instant::now() + Duration::from_secs(40);
    let mut compared = 0;
    let mut skipped_break = false;
    while !skipped_break {
        assert!(
            Instant::now() < deadline,
            "the break never reached the skipped segments"
        );
        let (code, body) = curl(&media, &[]).unwrap();
        assert_eq!(code, 200);
        let full = String::from_utf8(body).unwrap();
        // The same version, twice: the next part, as a blocking request, full and delta.
        let (msn, part) = next_part(&full);
        let at = |skip: &str| {
            let url = format!("{media}?_HLS_msn={msn}&_HLS_part={part}{skip}");
            let (code, body) = curl(&url, &[]).unwrap();
            assert_eq!(code, 200, "{url}");
            String::from_utf8(body).unwrap()
        };
        let (full, delta) = (at(""), at("&_HLS_skip=YES"));
        let ids = |text: &str| -> Vec<String> {
            let mut ids: Vec<String> = dateranges(text)
                .into_iter()
                .filter_map(|r| r.get("ID").cloned())
                .collect();
            ids.sort();
            ids
        };
        if !delta.contains("#EXT-X-SKIP") || !full.contains("ad-9") {
            continue;
        }
        assert_eq!(ids(&delta), ids(&full), "full:\n{full}\ndelta:\n{delta}");
        compared += 1;
        // Is the break's date before the first segment the delta update lists?
        let start = dateranges(&full)
            .into_iter()
            .find(|r| r.get("ID").map(String::as_str) == Some("ad-9"))
            .and_then(|r| r.get("START-DATE").cloned())
            .unwrap();
        let first_listed = delta
            .lines()
            .find_map(|l| l.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:"))
            .unwrap()
            .to_owned();
        skipped_break = start < first_listed;
    }
    assert!(compared >= 3, "only {compared} versions compared");
}

/// Parses a multivariant playlist's variant URIs.
fn variant_uris(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut next = false;
    for l in text.lines() {
        if l.starts_with("#EXT-X-STREAM-INF:") {
            next = true;
        } else if next && !l.starts_with('#') && !l.trim().is_empty() {
            out.push(l.trim().to_owned());
            next = false;
        }
    }
    out
}

#[test]
fn blackout_by_country() {
    let _serial = serial();
    if !require_tools() || !require_components(&["scte35", "blackout"]) {
        return;
    }
    let origin = Origin::start(&["--no-test-source"]);
    let weir = &origin.weir;
    // The programme is 1280x720; the slate is 640x360.
    let _ffmpeg = ffmpeg_publish(&weir.rtmp_url("bo"), 90, "1280x720", 60).unwrap();
    let master = "/live/bo/master.m3u8";
    let media = "/live/bo/src/index.m3u8";
    wait_for_segments(&weir.url(media), 3);
    let slate = String::from_utf8(
        wait_for_200(
            &weir.url("/live/bo/slate/index.m3u8"),
            Duration::from_secs(20),
        )
        .unwrap(),
    )
    .unwrap();
    let slate_init = slate
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|u| u.split('"').next())
        .unwrap_or_else(|| panic!("the slate rendition has no EXT-X-MAP:\n{slate}"))
        .to_owned();

    origin.push_ok("scte35", "scte35", Some(r#"{"dialect":"daterange"}"#));
    // A long break, so that scte35 has a tag in every playlist below.
    origin.cue_out("bo", 21, 300.0);
    let now = unix_ms();
    let blackout = format!(
        r#"{{"countries":["US"],"windows":[{{"start":{},"end":{}}}],"slate_rendition":"slate","slate_init":"{slate_init}"}}"#,
        now - 60_000,
        now + 600_000
    );
    origin.push_ok("blackout", "blackout", Some(&blackout));

    let us = [("CF-IPCountry", "US")];
    let de = [("CF-IPCountry", "DE")];
    let mut http = Client::new(weir.http);

    // The multivariant playlist.
    let m_us = http.get(master, &us).unwrap();
    let m_de = http.get(master, &de).unwrap();
    assert_eq!((m_us.status, m_de.status), (200, 200));
    assert_eq!(
        variant_uris(&m_us.text()),
        ["slate/index.m3u8"],
        "a US viewer joining in the window must be sent to the slate:\n{}",
        m_us.text()
    );
    assert_eq!(
        variant_uris(&m_de.text()),
        ["src/index.m3u8"],
        "{}",
        m_de.text()
    );
    for r in [&m_us, &m_de] {
        assert!(
            r.header_values("vary").contains(&"cf-ipcountry".to_owned()),
            "the multivariant playlist must Vary on the country header: {:?}",
            r.headers
        );
    }

    // The media playlist, US and DE, at one version: both block for the same future part
    // (the chain runs once the part is there); then blackout goes, and the DE one must be
    // byte for byte what the chain without blackout makes of that version.
    let mut compared = false;
    for attempt in 1..=3 {
        if attempt > 1 {
            origin.push_ok("blackout", "blackout", Some(&blackout));
        }
        let current = http.get(media, &de).unwrap().text();
        // The part after the hinted one: at least one part time away, so that both requests
        // are waiting before it comes.
        let (msn, part) = next_part(&current);
        let (msn, part) = if part + 1 < parts_per_segment(&current) {
            (msn, part + 1)
        } else {
            (msn + 1, 0)
        };
        let path = format!("{media}?_HLS_msn={msn}&_HLS_part={part}");
        let blocking = |country: &'static str| {
            let addr = weir.http;
            let path = path.clone();
            std::thread::spawn(move || {
                Client::new(addr)
                    .get(&path, &[("CF-IPCountry", country)])
                    .unwrap()
            })
        };
        let (t_us, t_de) = (blocking("US"), blocking("DE"));
        let (p_us, p_de) = (t_us.join().unwrap(), t_de.join().unwrap());
        // Right away, within the same part: take blackout out, ask again.
        let (code, out) = curl(
            &weir.url("/api/v1/tenants/default/plugins/blackout"),
            &[
                "-X",
                "DELETE",
                "-H",
                &format!("Authorization: Bearer {TOKEN}"),
            ],
        )
        .unwrap();
        assert_eq!(code, 200, "{}", String::from_utf8_lossy(&out));
        let plain = http.get(&path, &de).unwrap();
        assert_eq!((p_us.status, p_de.status, plain.status), (200, 200, 200));
        let (us_text, de_text, plain_text) = (p_us.text(), p_de.text(), plain.text());
        if preload_hint(&plain_text) != preload_hint(&de_text) {
            eprintln!("attempt {attempt}: the playlist moved on before the comparison; again");
            continue;
        }
        check_media_playlist(&de_text).unwrap();
        assert!(
            dateranges(&de_text)
                .iter()
                .any(|r| r.get("ID").map(String::as_str) == Some("splice-21")),
            "scte35's tag is missing:\n{de_text}"
        );
        assert_ne!(us_text, de_text, "US and DE viewers got the same playlist");
        assert_eq!(
            de_text, plain_text,
            "a DE viewer's playlist must be exactly the playlist without blackout"
        );
        for r in [&p_us, &p_de] {
            assert!(
                r.header_values("vary").contains(&"cf-ipcountry".to_owned()),
                "the media playlist must Vary on the country header: {:?}",
                r.headers
            );
        }
        assert!(
            !plain
                .header_values("vary")
                .contains(&"cf-ipcountry".to_owned()),
            "without blackout nothing varies on the country: {:?}",
            plain.headers
        );
        // US: the same segments, every one (the window covers them all) from the slate.
        assert!(
            us_text.contains(&format!("#EXT-X-MAP:URI=\"../slate/{slate_init}\"")),
            "the US playlist does not map the slate's init segment:\n{us_text}"
        );
        let us_p = parse_media_playlist(us_text.as_bytes()).unwrap();
        let de_p = parse_media_playlist(de_text.as_bytes()).unwrap();
        assert_eq!(us_p.media_sequence, de_p.media_sequence);
        assert_eq!(us_p.segments.len(), de_p.segments.len());
        for (u, d) in us_p.segments.iter().zip(&de_p.segments) {
            assert_eq!(u.uri, format!("../slate/{}", d.uri), "{us_text}");
        }
        assert_eq!(
            preload_hint(&us_text),
            preload_hint(&de_text).map(|h| format!("../slate/{h}"))
        );
        assert!(!de_text.contains("slate"), "{de_text}");
        compared = true;
        break;
    }
    assert!(compared, "never got both playlists at one version");
    // The slate media a US viewer is sent to is there.
    let (code, _) = curl(&weir.url(&format!("/live/bo/slate/{slate_init}")), &[]).unwrap();
    assert_eq!(code, 200);

    // The players' page is on another origin, and CF-IPCountry is not a CORS-safelisted
    // header: every request is preflighted, and weir must allow the header.
    let (code, head) = curl(
        &weir.url(master),
        &[
            "-X",
            "OPTIONS",
            "-D",
            "-",
            "-H",
            "Origin: http://localhost:9",
            "-H",
            "Access-Control-Request-Method: GET",
            "-H",
            "Access-Control-Request-Headers: cf-ipcountry",
        ],
    )
    .unwrap();
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(
        (200..300).contains(&code)
            && head.contains("access-control-allow-headers: cf-ipcountry")
            && head.contains("access-control-allow-origin:"),
        "CORS preflight for CF-IPCountry refused ({code}):\n{head}"
    );

    // Players: a US viewer plays the slate, a DE viewer the programme.
    origin.push_ok("blackout", "blackout", Some(&blackout));
    assert_eq!(origin.chain(), ["scte35", "blackout"]);
    let url = weir.url(master);
    let p_us = Player::start_with("hls", &url, 12, &["--header", "CF-IPCountry: US"]).unwrap();
    let p_de = Player::start_with("hls", &url, 12, &["--header", "CF-IPCountry: DE"]).unwrap();
    let (r_us, r_de) = (p_us.join().unwrap(), p_de.join().unwrap());
    for (r, who) in [(&r_us, "US"), (&r_de, "DE")] {
        assert!(r.started, "{who} player never started: {:?}", r.errors);
        assert!(
            r.fatal.is_empty(),
            "{who} player fatal errors: {:?}",
            r.fatal
        );
        assert!(r.played >= 8.0, "{who} player played only {:.1}s", r.played);
        assert!(
            failed(r).is_empty(),
            "{who} player's failed requests (CORS preflight?): {:?}",
            r.requests.failed
        );
    }
    assert!(
        r_us.requests.slate > 0,
        "the US player never asked for the slate: {:?}",
        r_us.requests
    );
    assert_eq!(
        r_us.video_width,
        Some(640),
        "the US player is not showing the slate"
    );
    assert_eq!(
        r_de.requests.slate, 0,
        "the DE player asked for the slate: {:?}",
        r_de.requests
    );
    assert_eq!(
        r_de.video_width,
        Some(1280),
        "the DE player is not showing the programme"
    );
    let m = origin.metrics();
    assert_eq!(
        counter(&m, "weir_plugin_failures_total", &[]),
        0.0,
        "plugin failures:\n{m}"
    );
}

#[test]
fn fault_plugins_never_stall_media() {
    let _serial = serial();
    let faults = [
        ("fault-trap", "trap"),
        ("fault-loop", "timeout"),
        ("fault-oom", "memory"),
        ("fault-garbage", "invalid"),
        ("fault-drop", "invalid"),
    ];
    let mut components: Vec<&str> = faults.iter().map(|f| f.0).collect();
    components.extend(["fault-init-panic", "scte35"]);
    if !require(&["curl"]) || !require_components(&components) {
        return;
    }
    let origin = Origin::start(&[]);
    let weir = &origin.weir;
    wait_for_segments(&weir.url("/live/test/src/index.m3u8"), 3);

    // scte35 first in the chain, with an open break: its tag must survive every fault after
    // it (a failing plugin loses only its own edits).
    origin.push_ok("scte35", "scte35", Some(r#"{"dialect":"daterange"}"#));
    origin.cue_out("test", 31, 300.0);
    let has_tag = |text: &str| -> Result<()> {
        if text.contains("#EXT-X-DATERANGE:ID=\"splice-31\"") {
            Ok(())
        } else {
            bail!("scte35's splice-31 date range is missing:\n{text}")
        }
    };

    // A plugin whose init traps is refused, with the reason, and the chain stays.
    let (ok, out) = origin.push("panic", "fault-init-panic", None);
    assert!(!ok, "fault-init-panic was accepted: {out}");
    assert!(
        out.contains("422") && out.contains("failed init") && out.contains("trap"),
        "the refusal does not say why: {out}"
    );
    assert_eq!(origin.chain(), ["scte35"]);

    let dir = "/live/test/src";
    for (component, kind) in faults {
        let before = origin.metrics();
        let failures = |m: &str| {
            counter(
                m,
                "weir_plugin_failures_total",
                &[("plugin", component), ("kind", kind)],
            )
        };
        origin.push_ok(component, component, None);
        let t = Instant::now();
        let (playlists, parts, slowest) = follow_live_edge(weir.http, dir, 4.0, &has_tag)
            .unwrap_or_else(|e| panic!("with {component} in the chain: {e:#}"));
        let after = origin.metrics();
        eprintln!(
            "{component}: {playlists} blocking playlists, {parts} parts in {:.1}s, slowest {slowest:?}; {kind} failures {} → {}",
            t.elapsed().as_secs_f64(),
            failures(&before),
            failures(&after)
        );
        assert!(playlists >= 5, "{component}: only {playlists} playlists");
        assert!(
            failures(&after) > failures(&before),
            "{component}: no weir_plugin_failures_total{{kind=\"{kind}\"}} counted:\n{after}"
        );
        assert!(
            counter(
                &after,
                "weir_plugin_fallbacks_total",
                &[("plugin", component), ("reason", "pass-through")]
            ) > 0.0,
            "{component}: no pass-through fallback counted:\n{after}"
        );
        origin.remove(component);
        assert_eq!(origin.chain(), ["scte35"]);
    }
    // scte35 itself never failed.
    let m = origin.metrics();
    assert_eq!(
        counter(&m, "weir_plugin_failures_total", &[("plugin", "scte35")]),
        0.0
    );
}

#[test]
fn hot_reload_under_load() {
    let _serial = serial();
    if !require(&["curl"]) || !require_components(&["scte35"]) {
        return;
    }
    let origin = Origin::start(&[]);
    let weir = &origin.weir;
    let dir = "/live/test/src";
    wait_for_segments(&weir.url(&format!("{dir}/index.m3u8")), 3);
    origin.push_ok("scte35", "scte35", Some(r#"{"dialect":"daterange"}"#));
    // An open break: "daterange" writes EXT-X-DATERANGE only, "both" adds EXT-X-CUE-OUT, so
    // each answer shows which config made it.
    origin.cue_out("test", 41, 300.0);
    // 202 means queued for the stream: the load starts once the break is in the playlist.
    let playlist = weir.url(&format!("{dir}/index.m3u8"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !String::from_utf8(curl(&playlist, &[]).unwrap().1)
        .unwrap()
        .contains("splice-41")
    {
        assert!(
            Instant::now() < deadline,
            "the cue never reached the playlist"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    #[derive(Default)]
    struct Tally {
        playlists: usize,
        parts: usize,
        bad: Vec<String>,
        slow: Vec<String>,
        slowest: Duration,
        with_cue_out: usize,
        without_cue_out: usize,
    }
    impl Tally {
        /// One answer: status, time, and for a playlist its validity and which config
        /// rendered it.
        fn add(&mut self, path: &str, r: Result<Response>, took: Duration, playlist: bool) {
            self.slowest = self.slowest.max(took);
            if took > PART_TARGET + SLACK {
                self.slow.push(format!("{path}: {took:?}"));
            }
            match r {
                Ok(r) if r.status == 200 && playlist => {
                    self.playlists += 1;
                    let t = r.text();
                    if let Err(e) = check_media_playlist(&t) {
                        self.bad.push(format!("{path}: {e:#}"));
                    } else if !t.contains("splice-41") {
                        self.bad.push(format!("{path}: no splice-41 date range"));
                    } else if t.contains("#EXT-X-CUE-OUT") {
                        self.with_cue_out += 1;
                    } else {
                        self.without_cue_out += 1;
                    }
                }
                Ok(r) if r.status == 200 && !r.body.is_empty() => self.parts += 1,
                Ok(r) => self.bad.push(format!(
                    "{path}: {} ({} bytes) {}",
                    r.status,
                    r.body.len(),
                    if playlist { r.text() } else { String::new() }
                )),
                Err(e) => self.bad.push(format!("{path}: {e:#}")),
            }
        }
    }
    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let bound = PART_TARGET + SLACK;
    let mut clients: Vec<_> = (0..8)
        .map(|_| {
            let (tally, stop, addr) = (tally.clone(), stop.clone(), weir.http);
            std::thread::spawn(move || {
                let mut live = LiveFollower::new(addr, dir).unwrap();
                while !stop.load(Ordering::Relaxed) {
                    let step = live.step();
                    let mut t = tally.lock().unwrap();
                    t.add(&step.playlist_path, step.playlist, step.playlist_took, true);
                    t.add(&step.part_path, step.part, step.part_took, false);
                }
            })
        })
        .collect();
    // The followers ask for each playlist version once, right when it appears, so their
    // chain runs rarely meet a push. A poller asks every 20 ms: after each push, its next
    // request runs the new chain while the next push is under way.
    clients.push({
        let (tally, stop, addr) = (tally.clone(), stop.clone(), weir.http);
        std::thread::spawn(move || {
            let mut http = Client::new(addr);
            let path = format!("{dir}/index.m3u8");
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let r = http.get(&path, &[]);
                tally.lock().unwrap().add(&path, r, t.elapsed(), true);
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    });

    // 100 pushes, alternating configs, through the admin API.
    std::thread::sleep(Duration::from_secs(1));
    let url = weir.url("/api/v1/tenants/default/plugins/scte35");
    let wasm = dist("scte35");
    let body = format!("@{}", wasm.display());
    let auth = format!("Authorization: Bearer {TOKEN}");
    let configs = [r#"{"dialect":"both"}"#, r#"{"dialect":"daterange"}"#];
    let t = Instant::now();
    for i in 0..100 {
        let config = format!("Weir-Plugin-Config: {}", base64(configs[i % 2].as_bytes()));
        let (code, out) = curl(
            &url,
            &[
                "-X",
                "PUT",
                "-H",
                &auth,
                "-H",
                &config,
                "-H",
                "Content-Type: application/wasm",
                "--data-binary",
                &body,
            ],
        )
        .unwrap();
        assert_eq!(code, 200, "push {i}: {}", String::from_utf8_lossy(&out));
        // Let some playlists through with each config.
        std::thread::sleep(Duration::from_millis(50));
    }
    let pushing = t.elapsed();
    std::thread::sleep(Duration::from_secs(1));
    stop.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let s = tally.lock().unwrap();
    eprintln!(
        "hot reload: 100 pushes in {:.1}s; 8 followers and a poller: {} playlists ({} with EXT-X-CUE-OUT, {} without), {} parts, {} errors, {} slower than {bound:?}, slowest {:?}",
        pushing.as_secs_f64(),
        s.playlists,
        s.with_cue_out,
        s.without_cue_out,
        s.parts,
        s.bad.len(),
        s.slow.len(),
        s.slowest
    );
    assert!(s.bad.is_empty(), "bad answers: {:#?}", s.bad);
    assert!(s.slow.is_empty(), "slow answers: {:#?}", s.slow);
    assert!(
        s.playlists >= 8 * 10 + 100,
        "only {} playlists",
        s.playlists
    );
    assert!(
        s.with_cue_out > 0 && s.without_cue_out > 0,
        "the pushes never showed in the playlists"
    );
    // The last push ("daterange") is what is served now.
    let (_, text) = curl(&weir.url(&format!("{dir}/index.m3u8")), &[]).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(
        text.contains("splice-41") && !text.contains("#EXT-X-CUE-OUT"),
        "{text}"
    );
    let m = origin.metrics();
    eprintln!(
        "hot reload: {} transform runs, {} cache hits, fallbacks {}",
        counter(
            &m,
            "weir_plugin_calls_total",
            &[
                ("plugin", "scte35"),
                ("function", "transform-media-playlist")
            ]
        ),
        counter(&m, "weir_plugin_cache_hits_total", &[]),
        m.lines()
            .filter(|l| l.starts_with("weir_plugin_fallbacks_total"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert!(
        counter(
            &m,
            "weir_plugin_reloads_total",
            &[("plugin", "scte35"), ("result", "ok")]
        ) >= 101.0,
        "{m}"
    );
    assert_eq!(counter(&m, "weir_plugin_failures_total", &[]), 0.0, "{m}");
}

// ---------------------------------------------------------------------------------------
// Config reload

/// SIGHUP re-reads `[[tenants]]` and their chains: a plugin added to the file appears, a
/// file that fails (a component that does not exist) leaves the running chain as it was.
#[test]
fn sighup_reloads_the_configured_chains() {
    let _guard = serial();
    if !require(&[]) || !require_components(&["scte35", "dai"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("weir.toml");
    let write = |plugins: &[(&str, &str)]| {
        let mut text = format!("[api]\ntoken = \"{TOKEN}\"\n\n[[tenants]]\nname = \"default\"\n");
        for (name, path) in plugins {
            text.push_str(&format!(
                "\n[[tenants.plugins]]\nname = \"{name}\"\npath = \"{path}\"\n"
            ));
        }
        std::fs::write(&config, text).unwrap();
    };
    let scte35 = dist("scte35").display().to_string();
    let dai_config = dir.path().join("dai.json");
    std::fs::write(
        &dai_config,
        r#"{"ads":{"default":[{"uri":"/assets/ad/index.m3u8","duration":6.0}]}}"#,
    )
    .unwrap();
    write(&[("scte35", &scte35)]);
    let weir = Weir::start(&["--config", config.to_str().unwrap()]).unwrap();
    let origin = Origin {
        weir,
        dir: tempfile::tempdir().unwrap(),
    };
    assert_eq!(origin.chain(), ["scte35"]);
    let hup = || {
        let ok = Command::new("kill")
            .args(["-HUP", &origin.weir.proc.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -HUP failed");
    };
    let wait_for_chain = |want: &[&str]| {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let chain = origin.chain();
            if chain == want {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "chain is {chain:?}, want {want:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };

    // A plugin added to the file (with its config in a file) joins the chain.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!(
        "\n[[tenants.plugins]]\nname = \"dai\"\npath = \"{}\"\nconfig_file = \"{}\"\n",
        dist("dai").display(),
        dai_config.display()
    ));
    std::fs::write(&config, text).unwrap();
    hup();
    wait_for_chain(&["scte35", "dai"]);

    // A broken file changes nothing.
    write(&[("scte35", &scte35), ("ghost", "/nonexistent/ghost.wasm")]);
    hup();
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(origin.chain(), ["scte35", "dai"]);
    assert!(origin.weir.proc.child.id() > 0);
    let (code, _) = curl(&origin.weir.url("/healthz"), &[]).unwrap();
    assert_eq!(code, 200, "weir must survive a bad reload");

    // Taking a plugin out of the file takes it out of the chain.
    write(&[("scte35", &scte35)]);
    hup();
    wait_for_chain(&["scte35"]);
}

/// Blackout on a transcoded stream: each rung's viewers go to that rung's own slate
/// rendition (`slate-{rendition}`), which the encoder makes with the rung's size and codec
/// settings, so the switch needs no new decoder configuration.
#[test]
fn blackout_on_a_transcoded_stream_uses_each_rungs_slate() {
    let _serial = serial();
    if !require_tools() || !require_components(&["blackout"]) {
        return;
    }
    let origin = Origin::start(&["--no-test-source", "--transcode", "--preset", "ultrafast"]);
    let weir = &origin.weir;
    // 854x480: the 480p and 360p rungs, and slate-480p and slate-360p.
    let _ffmpeg =
        ffmpeg_publish_preset(&weir.rtmp_url("tbo"), 90, "854x480", 60, "ultrafast").unwrap();
    wait_for_segments(&weir.url("/live/tbo/480p/index.m3u8"), 3);
    for rung in ["480p", "360p"] {
        wait_for_segments(&weir.url(&format!("/live/tbo/slate-{rung}/index.m3u8")), 2);
    }
    let now = unix_ms();
    let blackout = format!(
        r#"{{"countries":["US"],"windows":[{{"start":{},"end":{}}}],"slate_rendition":"slate-{{rendition}}"}}"#,
        now - 60_000,
        now + 600_000
    );
    origin.push_ok("blackout", "blackout", Some(&blackout));
    let us = [("CF-IPCountry", "US")];
    let de = [("CF-IPCountry", "DE")];
    let mut http = Client::new(weir.http);

    // Joiners: every variant to its own rung's slate; the slate renditions stay hidden.
    let m_de = http.get("/live/tbo/master.m3u8", &de).unwrap().text();
    assert_eq!(variant_uris(&m_de), ["480p/index.m3u8", "360p/index.m3u8"]);
    let m_us = http.get("/live/tbo/master.m3u8", &us).unwrap().text();
    assert_eq!(
        variant_uris(&m_us),
        ["slate-480p/index.m3u8", "slate-360p/index.m3u8"]
    );

    // Viewers already playing: the rung's segments swap into its slate rendition.
    for rung in ["480p", "360p"] {
        let path = format!("/live/tbo/{rung}/index.m3u8");
        let us_text = http.get(&path, &us).unwrap().text();
        let de_text = http.get(&path, &de).unwrap().text();
        assert!(
            us_text.contains(&format!("../slate-{rung}/seg")),
            "{rung} for US:\n{us_text}"
        );
        assert!(us_text.contains(&format!("#EXT-X-MAP:URI=\"../slate-{rung}/init.mp4\"")));
        assert!(!de_text.contains("slate"), "{rung} for DE:\n{de_text}");
    }

    // The slate rung has the rung's codec parameters, and shows the slate.
    let probe = |path: &str| {
        let (code, init) = curl(&weir.url(path), &[]).unwrap();
        assert_eq!(code, 200, "{path}");
        let file = origin.dir.path().join("init.mp4");
        std::fs::write(&file, init).unwrap();
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
            .args([
                "stream=codec_name,profile,level,width,height",
                "-of",
                "csv=p=0",
            ])
            .arg(&file)
            .output()
            .unwrap();
        String::from_utf8(out.stdout).unwrap()
    };
    for rung in ["480p", "360p"] {
        let programme = probe(&format!("/live/tbo/{rung}/init.mp4"));
        let slate = probe(&format!("/live/tbo/slate-{rung}/init.mp4"));
        assert!(!programme.trim().is_empty());
        assert_eq!(programme, slate, "{rung}: same codec parameters");
    }
    let base = weir.url("/live/tbo/slate-480p");
    let (_, text) = curl(&format!("{base}/index.m3u8"), &[]).unwrap();
    let seg = String::from_utf8_lossy(&text)
        .lines()
        .rfind(|l| l.starts_with("seg"))
        .unwrap()
        .to_owned();
    let share = slate_share(origin.dir.path(), &base, &seg).unwrap();
    assert!(share > 0.6, "slate-480p shows the slate: {share:.2}");
}
