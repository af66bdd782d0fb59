//! Harness for Weir's end-to-end tests: it runs the real `weir` binary, real publishers
//! (the ffmpeg CLI) and real players (hls.js and Shaka in Debian Chromium, through
//! `tests/e2e/play.mjs`), all on 127.0.0.1.
//!
//! Tests call [`require_tools`] first: on a machine without ffmpeg, Chromium or the npm
//! packages it prints why and skips, unless `WEIR_E2E_REQUIRED=1` (set by `.ci/run`), in
//! which case a missing tool fails the test.

#![allow(clippy::disallowed_methods)] // tests and benches drive real peers on the real clock

use std::io::{BufRead, BufReader, Read, Write as _};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::Deserialize;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The `weir` binary: `$WEIR_BIN`, or the one cargo built next to this test binary.
pub fn weir_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("WEIR_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/all-<hash> → target/<profile>/weir
    let dir = exe.parent().and_then(Path::parent).expect("target dir");
    dir.join("weir")
}

/// Checks that the real peers every player test uses are present (ffmpeg, Node.js with the
/// npm players, Chromium, curl, openssl) and the weir binary. Returns `false` (after printing
/// why) when the test should be skipped; with `WEIR_E2E_REQUIRED=1` a missing tool fails it.
pub fn require_tools() -> bool {
    check_tools(&["ffmpeg", "ffprobe", "node", "curl", "openssl"], true)
}

pub fn chromium() -> PathBuf {
    std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from)
}

/// A child process killed on drop.
pub struct Proc {
    pub child: Child,
    pub name: String,
}

impl Proc {
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits up to `timeout` for the process to exit.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running weir server.
pub struct Weir {
    pub proc: Proc,
    pub http: SocketAddr,
    pub https: Option<SocketAddr>,
    pub rtmp: Option<SocketAddr>,
    pub srt: Option<SocketAddr>,
    /// stderr (the log), collected as it arrives.
    log: mpsc::Receiver<String>,
    log_lines: Vec<String>,
}

impl Weir {
    /// Starts `weir serve` on 127.0.0.1:0 ports with the given extra arguments. The
    /// built-in test stream is the passed-through clip (`/live/test/src/…`) unless `extra`
    /// picks one: cheap on two cores, and the pattern has its own tests (encoder.rs).
    pub fn start(extra: &[&str]) -> Result<Self> {
        Self::start_with_env(extra, &[])
    }

    /// [`Weir::start`] with HTTPS too (`weir.https_url`: HTTP/2 over TLS), on a self-signed
    /// certificate made in `dir`.
    pub fn start_tls(dir: &Path, extra: &[&str]) -> Result<Self> {
        let (cert, key) = self_signed_cert(dir)?;
        let (cert, key) = (cert.to_string_lossy(), key.to_string_lossy());
        let mut args = vec![
            "--https",
            "127.0.0.1:0",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ];
        args.extend_from_slice(extra);
        Self::start(&args)
    }

    /// [`Weir::start`] with extra environment variables (failpoints, log filters).
    pub fn start_with_env(extra: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        Self::start_on("127.0.0.1:0", extra, env)
    }

    /// [`Weir::start_with_env`] with its HTTP listener on `http` (a fixed port, for a
    /// process restarted where its clients expect it).
    pub fn start_on(http: &str, extra: &[&str], env: &[(&str, &str)]) -> Result<Self> {
        let mut cmd = Command::new(weir_bin());
        cmd.envs(env.iter().copied());
        cmd.args([
            "serve",
            "--http",
            http,
            "--rtmp",
            "127.0.0.1:0",
            "--srt",
            "127.0.0.1:0",
            "--whip-udp",
            "127.0.0.1:0",
        ])
        .args(extra)
        .args(if extra.contains(&"--test-source") {
            &[][..]
        } else {
            &["--test-source", "clip"][..]
        });
        Self::launch(cmd)
    }

    /// [`Weir::start_on`] inside network namespace `ns` (its HTTP listener on `http`, an
    /// address of the namespace's).
    pub fn start_in(ns: &NetNs, http: &str, extra: &[&str]) -> Result<Self> {
        let mut cmd = ns.command(weir_bin());
        cmd.args([
            "serve",
            "--http",
            http,
            "--rtmp",
            "127.0.0.1:0",
            "--srt",
            "127.0.0.1:0",
        ])
        .args(extra);
        Self::launch(cmd)
    }

    /// `weir edge --upstream UPSTREAM` on 127.0.0.1 (docs/design/009-edge.md), with `extra`.
    pub fn start_edge(upstream: &str, extra: &[&str]) -> Result<Self> {
        let mut cmd = Command::new(weir_bin());
        cmd.args(["edge", "--upstream", upstream, "--http", "127.0.0.1:0"])
            .args(extra);
        Self::launch(cmd)
    }

    fn launch(mut cmd: Command) -> Result<Self> {
        cmd.env(
            "WEIR_LOG",
            std::env::var("WEIR_LOG").unwrap_or_else(|_| "info".into()),
        )
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawning {}", weir_bin().display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let stderr = child.stderr.take().context("stderr")?;
        let (tx, log) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("[weir] {line}");
                let _ = tx.send(line);
            }
        });
        let (atx, arx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = atx.send(line);
            }
        });
        let mut proc = Proc {
            child,
            name: "weir".into(),
        };
        let (mut http, mut https, mut rtmp, mut srt) = (None, None, None, None);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            match arx.recv_timeout(Duration::from_millis(100)) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("listening ") {
                        let (k, v) = rest.split_once('=').context("listening line")?;
                        let addr: SocketAddr = v.parse()?;
                        match k {
                            "http" => http = Some(addr),
                            "https" => https = Some(addr),
                            "rtmp" => rtmp = Some(addr),
                            "srt" => srt = Some(addr),
                            _ => {}
                        }
                    } else if line.starts_with("weir ") {
                        break;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if !proc.is_running() {
                        bail!("weir exited during startup");
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    bail!("weir closed stdout during startup")
                }
            }
        }
        let http = http.context("weir never printed its http address")?;
        Ok(Self {
            proc,
            http,
            https,
            rtmp,
            srt,
            log,
            log_lines: Vec::new(),
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }

    pub fn https_url(&self, path: &str) -> String {
        format!(
            "https://{}{path}",
            self.https.expect("weir started without https")
        )
    }

    pub fn rtmp_url(&self, key: &str) -> String {
        format!(
            "rtmp://{}/live/{key}",
            self.rtmp.expect("weir started without rtmp")
        )
    }

    /// An SRT caller URL for `streamid` (and a passphrase, if any).
    pub fn srt_url(&self, streamid: &str, passphrase: Option<&str>) -> String {
        let addr = self.srt.expect("weir started without srt");
        let mut u = format!("srt://{addr}?streamid={streamid}&latency=200000");
        if let Some(p) = passphrase {
            u.push_str(&format!("&passphrase={p}&pbkeylen=16"));
        }
        u
    }

    /// Every log line so far.
    pub fn log(&mut self) -> &[String] {
        while let Ok(l) = self.log.try_recv() {
            self.log_lines.push(l);
        }
        &self.log_lines
    }
}

/// Publishes a synthetic test pattern with the ffmpeg CLI, as the TESTING.md recipe does:
/// FLV to an `rtmp://` URL, MPEG-TS to an `srt://` URL.
pub fn ffmpeg_publish(url: &str, seconds: u32, size: &str, gop: u32) -> Result<Proc> {
    ffmpeg_publish_preset(url, seconds, size, gop, "veryfast")
}

/// [`ffmpeg_publish`] with another libx264 preset (`ultrafast` leaves CPU for the rest of a
/// test on two cores).
pub fn ffmpeg_publish_preset(
    url: &str,
    seconds: u32,
    size: &str,
    gop: u32,
    preset: &str,
) -> Result<Proc> {
    ffmpeg_publish_with(Command::new("ffmpeg"), url, seconds, size, gop, preset)
}

/// [`ffmpeg_publish`] inside network namespace `ns` (to an address of the namespace's).
pub fn ffmpeg_publish_in(
    ns: &NetNs,
    url: &str,
    seconds: u32,
    size: &str,
    gop: u32,
) -> Result<Proc> {
    ffmpeg_publish_with(ns.command("ffmpeg"), url, seconds, size, gop, "veryfast")
}

fn ffmpeg_publish_with(
    mut cmd: Command,
    url: &str,
    seconds: u32,
    size: &str,
    gop: u32,
    preset: &str,
) -> Result<Proc> {
    let format = if url.starts_with("srt://") {
        "mpegts"
    } else {
        "flv"
    };
    let child = cmd
        .args(["-hide_banner", "-loglevel", "error", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={size}:rate=30"),
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args(["-c:v", "libx264", "-preset", preset, "-tune", "zerolatency"])
        .args([
            "-g",
            &gop.to_string(),
            "-keyint_min",
            &gop.to_string(),
            "-sc_threshold",
            "0",
        ])
        .args([
            "-b:v", "1500k", "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k",
        ])
        .args(["-f", format, url])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .context("spawning ffmpeg")?;
    Ok(Proc {
        child,
        name: "ffmpeg".into(),
    })
}

/// A GET with curl; returns (status, body). `--http2-prior-knowledge` etc. go in `extra`.
pub fn curl(url: &str, extra: &[&str]) -> Result<(u16, Vec<u8>)> {
    status_and_body(url, run_curl(url, "-", "\n%{http_code}", extra)?)
}

/// Splits curl's output (`-o - -w "\n%{http_code}"`) into (status, body).
fn status_and_body(url: &str, out: std::process::Output) -> Result<(u16, Vec<u8>)> {
    if !out.status.success() {
        bail!(
            "curl {url} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut body = out.stdout;
    let nl = body
        .iter()
        .rposition(|&b| b == b'\n')
        .context("curl output")?;
    let status: u16 = std::str::from_utf8(&body[nl + 1..])?.trim().parse()?;
    body.truncate(nl);
    Ok((status, body))
}

/// Polls `url` until it answers 200, up to `timeout`.
/// Milliseconds since the Unix epoch, as the players' `Date.now()`.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

pub fn wait_for_200(url: &str, timeout: Duration) -> Result<Vec<u8>> {
    let end = Instant::now() + timeout;
    loop {
        if let Ok((200, body)) = curl(url, &[]) {
            return Ok(body);
        }
        if Instant::now() > end {
            bail!("{url} did not answer 200 within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// What `tests/e2e/play.mjs` reports.
#[derive(Debug, Deserialize)]
pub struct PlayReport {
    pub player: String,
    pub started: bool,
    pub played: f64,
    pub fatal: Vec<String>,
    pub errors: Vec<String>,
    pub stalls: Option<u64>,
    pub latency: Latency,
    pub requests: Requests,
    pub protocols: std::collections::BTreeMap<String, u64>,
    #[serde(rename = "videoWidth")]
    pub video_width: Option<u32>,
    #[serde(default)]
    pub nonfatal: Vec<String>,
    /// hls.js `LEVEL_SWITCHED` events, in order.
    #[serde(default, rename = "levelSwitches")]
    pub level_switches: Vec<LevelSwitch>,
    /// The variants hls.js parsed from the multivariant playlist.
    #[serde(default)]
    pub levels: Vec<LevelInfo>,
    #[serde(default)]
    pub trace: Vec<TracePoint>,
    /// hls.js's HLS Interstitial events, in order (hls.js only).
    #[serde(default)]
    pub interstitials: Vec<InterstitialEvent>,
    /// The video element's `playing`, `waiting`, `seeking`, `seeked` and `loadedmetadata`
    /// events: "<s since page load> <event> t=<currentTime> …".
    #[serde(default)]
    pub events: Vec<String>,
}

/// One hls.js `LEVEL_SWITCHED`: when (s since page load), which level, its size.
#[derive(Debug, Deserialize, Clone)]
pub struct LevelSwitch {
    pub at: f64,
    pub level: usize,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

/// A level as hls.js parsed it.
#[derive(Debug, Deserialize, Clone)]
pub struct LevelInfo {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub bitrate: Option<u64>,
}

/// One hls.js interstitial event (`INTERSTITIAL_ASSET_STARTED`, `ASSET_LIST_LOADED`, …).
#[derive(Debug, Deserialize, Clone)]
pub struct InterstitialEvent {
    /// Seconds since the page loaded.
    pub at: f64,
    /// The hls.js event name, e.g. `INTERSTITIAL_ASSET_STARTED`.
    pub event: String,
    /// The interstitial's `EXT-X-DATERANGE` ID.
    #[serde(default)]
    pub id: Option<String>,
    /// The asset's URI (asset events).
    #[serde(default)]
    pub uri: Option<String>,
    /// What went wrong (`INTERSTITIAL_ASSET_ERROR`).
    #[serde(default)]
    pub error: Option<String>,
}

/// One `--trace` sample: wall clock (ms), playhead, live latency (ms), decoded width.
#[derive(Debug, Deserialize, Clone)]
pub struct TracePoint {
    pub wall: u64,
    pub t: f64,
    pub latency: Option<f64>,
    pub w: u32,
    pub paused: bool,
    /// The displayed picture's mean colour (R, G, B), when there is one.
    #[serde(default)]
    pub rgb: Option<[f64; 3]>,
}

impl TracePoint {
    /// Whether the displayed picture is Weir's built-in slate (dark blue, white text):
    /// blue well above red, and dark.
    pub fn shows_slate(&self) -> bool {
        self.rgb
            .is_some_and(|[r, g, b]| b > r + 25.0 && (r + g + b) / 3.0 < 80.0)
    }

    /// Whether the displayed picture is the stand-by slate that covers a lost contribution
    /// in a passed-through stream (dark grey, "Please stand by" in white): dark, and grey.
    pub fn shows_standby(&self) -> bool {
        self.rgb.is_some_and(|[r, g, b]| {
            let (lo, hi) = (r.min(g).min(b), r.max(g).max(b));
            hi - lo < 12.0 && (r + g + b) / 3.0 < 60.0
        })
    }
}

#[derive(Debug, Deserialize)]
pub struct Latency {
    pub samples: Vec<f64>,
    pub p50: Option<f64>,
    pub p95: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct Requests {
    pub total: u64,
    pub blocking: u64,
    pub parts: u64,
    pub skip: u64,
    /// Requests for interstitial asset lists (`/asset-list/`).
    #[serde(default, rename = "assetList")]
    pub asset_list: u64,
    /// Requests under `/assets/` (ad creatives).
    #[serde(default)]
    pub assets: u64,
    /// Requests into the slate rendition (`/slate/`).
    #[serde(default)]
    pub slate: u64,
    /// Requests the browser failed (network errors, CORS), with the reason.
    #[serde(default)]
    pub failed: Vec<String>,
}

/// Starts a player in Chromium; `join` it for the report.
pub struct Player {
    proc: Proc,
    out: std::process::ChildStdout,
}

impl Player {
    pub fn start(player: &str, url: &str, seconds: u32) -> Result<Self> {
        Self::start_with(player, url, seconds, &[])
    }

    /// Like [`Player::start`], with extra play.mjs options (e.g. `--trace`).
    pub fn start_with(player: &str, url: &str, seconds: u32, extra: &[&str]) -> Result<Self> {
        Self::start_cmd(Command::new("node"), player, url, seconds, extra)
    }

    /// [`Player::start_with`] inside network namespace `ns`.
    pub fn start_in(
        ns: &NetNs,
        player: &str,
        url: &str,
        seconds: u32,
        extra: &[&str],
    ) -> Result<Self> {
        Self::start_cmd(ns.command("node"), player, url, seconds, extra)
    }

    fn start_cmd(
        mut cmd: Command,
        player: &str,
        url: &str,
        seconds: u32,
        extra: &[&str],
    ) -> Result<Self> {
        let mut child = cmd
            .current_dir(repo_root().join("tests/e2e"))
            .args([
                "play.mjs",
                "--player",
                player,
                "--url",
                url,
                "--seconds",
                &seconds.to_string(),
            ])
            .args(extra)
            .env("CHROMIUM", chromium())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawning node play.mjs")?;
        let out = child.stdout.take().context("stdout")?;
        Ok(Self {
            proc: Proc {
                child,
                name: format!("player {player}"),
            },
            out,
        })
    }

    pub fn join(mut self) -> Result<PlayReport> {
        let mut s = String::new();
        self.out.read_to_string(&mut s)?;
        let status = self.proc.wait_timeout(Duration::from_secs(60));
        if !status.is_some_and(|s| s.success()) {
            bail!("play.mjs failed ({status:?}): {s}");
        }
        let line = s.lines().last().context("play.mjs printed nothing")?;
        let report: PlayReport =
            serde_json::from_str(line).with_context(|| format!("parsing {line}"))?;
        eprintln!(
            "[{}] played {:.1}s, fatal {:?}, stalls {:?}, latency p50 {:?} p95 {:?}, requests {:?}, protocols {:?}",
            report.player,
            report.played,
            report.fatal,
            report.stalls,
            report.latency.p50,
            report.latency.p95,
            report.requests,
            report.protocols
        );
        Ok(report)
    }
}

/// Makes a self-signed certificate for 127.0.0.1/localhost with the openssl CLI.
pub fn self_signed_cert(dir: &Path) -> Result<(PathBuf, PathBuf)> {
    let cert = dir.join("cert.pem");
    let key = dir.join("key.pem");
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "1", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()?;
    if !st.success() {
        bail!("openssl req failed");
    }
    Ok((cert, key))
}

/// Parses a media playlist with m3u8-rs, failing with the text on error.
pub fn parse_media_playlist(text: &[u8]) -> Result<m3u8_rs::MediaPlaylist> {
    match m3u8_rs::parse_playlist_res(text) {
        Ok(m3u8_rs::Playlist::MediaPlaylist(p)) => Ok(p),
        Ok(m3u8_rs::Playlist::MasterPlaylist(_)) => bail!("expected a media playlist"),
        Err(e) => bail!(
            "m3u8-rs cannot parse playlist: {e:?}\n{}",
            String::from_utf8_lossy(text)
        ),
    }
}

/// Reads `_HLS_msn`-style numbers out of a playlist: (media sequence, count of segments).
pub fn live_edge(text: &[u8]) -> Result<(u64, usize)> {
    let p = parse_media_playlist(text)?;
    Ok((p.media_sequence, p.segments.len()))
}

/// End-to-end tests share two cores: run them one at a time so that players measure weir,
/// not each other.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The HTTP version curl negotiated ("1.1", "2"), with its status.
pub fn curl_version(url: &str, extra: &[&str]) -> Result<(u16, String)> {
    let out = run_curl(url, "/dev/null", "%{http_code} %{http_version}", extra)?;
    let s = String::from_utf8_lossy(&out.stdout).to_string();
    let (code, ver) = s.split_once(' ').context("curl -w output")?;
    Ok((code.parse()?, ver.to_owned()))
}

/// Runs curl the way every helper here does (silent, self-signed certificates accepted, a
/// 20 s cap), writing the body to `output` and `write_out` after it.
fn run_curl(
    url: &str,
    output: &str,
    write_out: &str,
    extra: &[&str],
) -> Result<std::process::Output> {
    Command::new("curl")
        .args([
            "-sS",
            "-k",
            "--max-time",
            "20",
            "-o",
            output,
            "-w",
            write_out,
        ])
        .args(extra)
        .arg(url)
        .output()
        .context("running curl")
}

/// Like [`require_tools`], for tests that need other peers as well: each of `extra` is a
/// command (`srt-live-transmit`) or a Python module (`python3:threefive`). Checks only
/// `extra` and the weir binary, so a test that needs no browser can call it alone.
pub fn require(extra: &[&str]) -> bool {
    check_tools(extra, false)
}

fn check_tools(tools: &[&str], browser: bool) -> bool {
    let ok = |script: &str| {
        Command::new("sh")
            .args(["-c", script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    let mut missing = Vec::new();
    for tool in tools {
        let present = match tool.strip_prefix("python3:") {
            Some(module) => ok(&format!("python3 -c 'import {module}'")),
            None => ok(&format!("command -v {tool}")),
        };
        if !present {
            missing.push((*tool).to_owned());
        }
    }
    if browser && !chromium().exists() {
        missing.push(format!("chromium ({})", chromium().display()));
    }
    if browser
        && !repo_root()
            .join("tests/e2e/node_modules/playwright-core")
            .exists()
    {
        missing.push("tests/e2e/node_modules (run: npm ci --prefix tests/e2e)".to_owned());
    }
    if !weir_bin().exists() {
        missing.push(format!(
            "{} (run: cargo build -p weir)",
            weir_bin().display()
        ));
    }
    if missing.is_empty() {
        return true;
    }
    let msg = format!(
        "end-to-end test needs: {} (run: scripts/setup.sh)",
        missing.join(", ")
    );
    if std::env::var("WEIR_E2E_REQUIRED").is_ok_and(|v| v == "1") {
        panic!("{msg}");
    }
    eprintln!("SKIPPED: {msg}");
    false
}

/// A POST with curl: the body as given, extra headers (`"Authorization: Bearer …"`) in
/// `headers`; returns (status, body).
pub fn curl_post(url: &str, headers: &[&str], body: &str) -> Result<(u16, Vec<u8>)> {
    let mut extra = vec!["-X", "POST", "-H", "Content-Type: application/json"];
    for h in headers {
        extra.extend(["-H", h]);
    }
    extra.extend(["--data-binary", body]);
    curl(url, &extra)
}

/// The `EXT-X-MAP` URIs that follow an `EXT-X-DISCONTINUITY`, in order: each publisher
/// session's (or the stand-by slate's) init segment after the first. Init URIs are named by
/// the first part that uses them (`init<seq>.mp4`), so tests find them here.
pub fn discontinuity_maps(text: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut maps: Vec<String> = Vec::new();
    for pair in lines.windows(2) {
        if pair[0] == "#EXT-X-DISCONTINUITY" {
            if let Some(uri) = pair[1]
                .strip_prefix("#EXT-X-MAP:URI=\"")
                .and_then(|s| s.split('"').next())
            {
                if !maps.iter().any(|m| m == uri) {
                    maps.push(uri.to_owned());
                }
            }
        }
    }
    maps
}

/// The first `EXT-X-MAP` URI a media playlist lists: its oldest segment's init.
pub fn first_map(text: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MAP:URI=\""))
        .and_then(|s| s.split('"').next())
        .map(str::to_owned)
}

/// Every `#EXT-X-DATERANGE` in a playlist, as its attribute list (quotes removed), in order.
pub fn dateranges(text: &str) -> Vec<std::collections::BTreeMap<String, String>> {
    text.lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-DATERANGE:"))
        .map(attributes)
        .collect()
}

/// An RFC 8216 attribute list: `NAME=value` or `NAME="quoted, with commas"`.
pub fn attributes(list: &str) -> std::collections::BTreeMap<String, String> {
    let mut out = std::collections::BTreeMap::new();
    let mut rest = list;
    while let Some((name, after)) = rest.split_once('=') {
        let (value, tail) = if let Some(q) = after.strip_prefix('"') {
            let end = q.find('"').expect("unterminated quoted attribute");
            (&q[..end], q[end + 1..].strip_prefix(',').unwrap_or(""))
        } else {
            after.split_once(',').unwrap_or((after, ""))
        };
        out.insert(name.trim().to_owned(), value.to_owned());
        rest = tail;
    }
    out
}

/// Standard base64 with padding (for the cue API and the plugin config header).
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The share of a decoded frame's luma samples within ±8 of the built-in slate's
/// background (Y = 40): near 1 for the slate, near 0 for ffmpeg's testsrc2. `uri` is a
/// segment of the rendition at `base` (one publisher session: its init is the current one,
/// `init.mp4`).
pub fn slate_share(dir: &std::path::Path, base: &str, uri: &str) -> Result<f64> {
    let (_, init) = curl(&format!("{base}/init.mp4"), &[])?;
    let (code, seg) = curl(&format!("{base}/{uri}"), &[])?;
    if code != 200 {
        bail!("{base}/{uri}: HTTP {code}");
    }
    let file = dir.join("frame.mp4");
    std::fs::write(&file, [init, seg].concat())?;
    let out = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(&file)
        .args([
            "-frames:v",
            "1",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "yuv420p",
            "-",
        ])
        .output()
        .context("running ffmpeg")?;
    if !out.status.success() || out.stdout.is_empty() {
        bail!("ffmpeg could not decode {base}/{uri}");
    }
    // The luma plane: the first two thirds of a 4:2:0 frame, as coded (no range change).
    let luma = &out.stdout[..out.stdout.len() * 2 / 3];
    let near = luma.iter().filter(|&&y| y.abs_diff(40) <= 8).count();
    Ok(near as f64 / luma.len() as f64)
}

/// The plugin names, in chain order, from a plugin list (`weir plugin list`, or
/// `GET /api/v1/tenants/{t}/plugins`).
pub fn plugin_names(list: &[u8]) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_slice(list).expect("a plugin list in JSON");
    v["plugins"]
        .as_array()
        .expect("a plugins array")
        .iter()
        .map(|p| p["name"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Runs `weir check URL --duration 12 --json --insecure` and returns the error findings
/// (`rule: message`) with the whole JSON report, which it also prints. Asserts that the
/// exit status says the same as the report.
pub fn weir_check(url: &str) -> (Vec<String>, serde_json::Value) {
    let out = Command::new(weir_bin())
        .args(["check", url, "--duration", "12", "--json", "--insecure"])
        .output()
        .expect("running weir check");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "weir check printed no JSON report ({e}): {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    eprintln!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    let errors: Vec<String> = report["findings"]
        .as_array()
        .map(|f| f.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|f| f["severity"] == "error")
        .map(|f| format!("{}: {}", f["rule"], f["message"]))
        .collect();
    assert_eq!(out.status.success(), errors.is_empty(), "{errors:?}");
    (errors, report)
}

/// nginx as a caching CDN in front of weir, run as a child process on a free port (the
/// cache key keeps the LL-HLS query).
pub struct Nginx {
    child: std::process::Child,
    pub port: u16,
    /// `$status "$request" range=… cache=HIT|MISS|…` per request.
    pub access_log: std::path::PathBuf,
}

impl Nginx {
    pub fn start(dir: &Path, upstream: std::net::SocketAddr) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let d = dir.display();
        for sub in ["cache", "tmp"] {
            std::fs::create_dir_all(dir.join(sub))?;
        }
        // The cache key keeps the LL-HLS query (`_HLS_msn`, `_HLS_part`, `_HLS_skip`).
        // With proxy_cache on, nginx does not pass Range upstream: it fills the whole
        // segment (weir answers a segment in progress once it is complete) and serves
        // every range from that one object.
        let config = format!(
            r#"daemon off;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log warn;
events {{ worker_connections 512; }}
http {{
  client_body_temp_path {d}/tmp/body;
  proxy_temp_path {d}/tmp/proxy;
  fastcgi_temp_path {d}/tmp/fastcgi;
  uwsgi_temp_path {d}/tmp/uwsgi;
  scgi_temp_path {d}/tmp/scgi;
  log_format cdn '$status "$request" range="$http_range" cache=$upstream_cache_status';
  access_log {d}/access.log cdn;
  proxy_cache_path {d}/cache keys_zone=weir:10m max_size=256m;
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://{upstream};
      proxy_http_version 1.1;
      proxy_cache weir;
      proxy_cache_key $uri$is_args$args;
      proxy_cache_lock on;
      proxy_cache_lock_timeout 10s;
      proxy_force_ranges on;
      proxy_read_timeout 30s;
    }}
  }}
}}
"#
        );
        let path = dir.join("nginx.conf");
        std::fs::File::create(&path)?.write_all(config.as_bytes())?;
        let child = Command::new("nginx")
            .arg("-c")
            .arg(&path)
            .arg("-p")
            .arg(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .context("spawning nginx (scripts/setup.sh installs it)")?;
        let nginx = Self {
            child,
            port,
            access_log: dir.join("access.log"),
        };
        wait_for_200(&nginx.url("/healthz"), Duration::from_secs(10))?;
        Ok(nginx)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Nginx {
    /// SIGTERM, so the master stops its workers (SIGKILL would orphan them, still listening
    /// and holding the test process's inherited descriptors); SIGKILL if it lingers.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private network namespace for WebRTC tests (Chromium will not use loopback ICE
/// candidates): loopback up and a veth pair, `10.77.0.1/24` and `10.77.0.2/24`, that no
/// other interface reaches. A `sleep` holds it open; dropping this ends it and everything
/// inside goes with its processes (which the tests own and kill).
pub struct NetNs {
    holder: Proc,
    path: String,
}

impl NetNs {
    /// The first address (weir's).
    pub const SERVER: &'static str = "10.77.0.1";
    /// The second (Chromium reaches weir from here too; ICE uses both).
    pub const PEER: &'static str = "10.77.0.2";

    /// Needs root (or user namespaces) and `unshare`, `nsenter`, `ip`.
    pub fn new() -> Result<Self> {
        let child = Command::new("unshare")
            .args(["--net", "--fork", "--", "sleep", "3600"])
            .stdin(Stdio::null())
            .spawn()
            .context("spawning unshare --net")?;
        let holder = Proc {
            child,
            name: "netns".into(),
        };
        // `unshare --fork` runs sleep as its child: that process is in the namespace.
        let deadline = Instant::now() + Duration::from_secs(5);
        let path = loop {
            let children = std::fs::read_to_string(format!(
                "/proc/{}/task/{}/children",
                holder.child.id(),
                holder.child.id()
            ))
            .unwrap_or_default();
            if let Some(pid) = children.split_whitespace().next() {
                break format!("/proc/{pid}/ns/net");
            }
            if Instant::now() > deadline {
                bail!("unshare --net did not start its child");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let ns = Self { holder, path };
        for script in [
            "ip link set lo up",
            "ip link add veth0 type veth peer name veth1",
            "ip addr add 10.77.0.1/24 dev veth0",
            "ip addr add 10.77.0.2/24 dev veth1",
            "ip link set veth0 up",
            "ip link set veth1 up",
        ] {
            let st = ns
                .command("sh")
                .args(["-c", script])
                .status()
                .with_context(|| format!("netns: {script}"))?;
            if !st.success() {
                bail!("netns: {script} failed ({st})");
            }
        }
        Ok(ns)
    }

    /// `program` to be run inside the namespace.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("nsenter");
        c.arg(format!("--net={}", self.path)).arg("--").arg(program);
        c
    }

    /// curl inside the namespace: (status, body).
    pub fn curl(&self, url: &str, extra: &[&str]) -> Result<(u16, Vec<u8>)> {
        let out = self
            .command("curl")
            .args(["-sS", "--max-time", "20", "-o", "-", "-w", "\n%{http_code}"])
            .args(extra)
            .arg(url)
            .output()
            .context("running curl in the namespace")?;
        status_and_body(url, out)
    }
}

impl Drop for NetNs {
    fn drop(&mut self) {
        // The holder's child (sleep) keeps the namespace; kill the process group's pair.
        let _ = Command::new("pkill")
            .args(["-P", &self.holder.child.id().to_string()])
            .status();
    }
}

/// Waits until `path` exists (a player's or publisher's `--started-file`), at most
/// `timeout`; whether it does.
pub fn wait_for_file(path: &Path, timeout: Duration) -> bool {
    let end = Instant::now() + timeout;
    while Instant::now() < end {
        if path.exists() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}
