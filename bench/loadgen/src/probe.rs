//! Looking at weir from outside: plain HTTP/1.1 GETs for playlists and /metrics, the live
//! edge of a media playlist, and CPU and memory from /proc.

use std::net::SocketAddr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, ensure, Context as _};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// One GET with `Connection: close`: the status and the body.
pub async fn get(addr: SocketAddr, path: &str) -> anyhow::Result<(u16, Vec<u8>)> {
    let fetch = async {
        let mut sock = TcpStream::connect(addr).await?;
        sock.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await?;
        let mut raw = Vec::with_capacity(8192);
        sock.read_to_end(&mut raw).await?;
        anyhow::Ok(raw)
    };
    let raw = tokio::time::timeout(HTTP_TIMEOUT, fetch)
        .await
        .context("timed out")??;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .context("no end of headers")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    let body = &raw[split + 4..];
    let body = if head.contains("transfer-encoding: chunked") {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok((status, body))
}

fn dechunk(mut b: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("bad chunk")?;
        let size_str = std::str::from_utf8(&b[..eol])?;
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        ensure!(b.len() >= size + 2, "truncated chunk");
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
}

/// Where a media playlist's live edge is: the end of the last listed part or segment, as
/// wall-clock ms, from the last `EXT-X-PROGRAM-DATE-TIME` plus the durations listed after it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Edge {
    pub end_unix_ms: f64,
    /// `EXT-X-GAP` or `GAP=YES` parts anywhere in the playlist.
    pub gaps: usize,
}

pub fn live_edge(playlist: &str) -> anyhow::Result<Edge> {
    let mut segment_start: Option<f64> = None;
    let mut parts = 0.0;
    let mut gaps = 0;
    for line in playlist.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            segment_start = Some(parse_date_ms(v.trim())?);
            parts = 0.0;
        } else if let Some(v) = line.strip_prefix("#EXT-X-PART:") {
            parts += attr_f64(v, "DURATION").context("EXT-X-PART without DURATION")? * 1000.0;
            if v.contains("GAP=YES") {
                gaps += 1;
            }
        } else if let Some(v) = line.strip_prefix("#EXTINF:") {
            let d: f64 = v.split(',').next().unwrap_or("").trim().parse()?;
            if let Some(s) = segment_start.as_mut() {
                *s += d * 1000.0;
            }
            parts = 0.0;
        } else if line.starts_with("#EXT-X-GAP") {
            gaps += 1;
        }
    }
    let Some(start) = segment_start else {
        bail!("no EXT-X-PROGRAM-DATE-TIME");
    };
    Ok(Edge {
        end_unix_ms: start + parts,
        gaps,
    })
}

fn attr_f64(attrs: &str, name: &str) -> Option<f64> {
    attrs.split(',').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k.trim() == name).then(|| v.trim().parse().ok())?
    })
}

/// `2026-11-25T17:24:01.243Z` (or `+hh:mm`) as ms since the Unix epoch.
pub fn parse_date_ms(s: &str) -> anyhow::Result<f64> {
    let num = |r: std::ops::Range<usize>| -> anyhow::Result<i64> {
        Ok(s.get(r).context("short date")?.parse::<i64>()?)
    };
    ensure!(s.len() >= 20 && &s[10..11] == "T", "bad date {s:?}");
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi) = (num(11..13)?, num(14..16)?);
    let rest = &s[17..];
    let zone_at = rest
        .find(['Z', '+', '-'])
        .with_context(|| format!("no zone in {s:?}"))?;
    let sec: f64 = rest[..zone_at].parse()?;
    let zone = &rest[zone_at..];
    let offset_min = match zone {
        "Z" => 0,
        z => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            let hh: i64 = z.get(1..3).context("bad zone")?.parse()?;
            let mm: i64 = z.get(4..6).context("bad zone")?.parse()?;
            sign * (hh * 60 + mm)
        }
    };
    let days = days_from_civil(y, mo, d);
    let secs = days * 86_400 + h * 3600 + mi * 60 - offset_min * 60;
    Ok(secs as f64 * 1000.0 + sec * 1000.0)
}

/// Howard Hinnant's days_from_civil.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

pub fn now_unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

/// A Prometheus counter or gauge without labels.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == name).then(|| v.trim().parse().ok())?
    })
}

/// utime + stime of a process, in clock ticks.
pub fn cpu_ticks(pid: &str) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let after = &stat[stat.rfind(')').context("bad stat")? + 2..];
    let f: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of proc(5); `after` starts at field 3.
    Ok(f.get(11).context("short stat")?.parse::<u64>()?
        + f.get(12).context("short stat")?.parse::<u64>()?)
}

/// Busy and total ticks of the whole machine (all cores), from /proc/stat.
pub fn machine_ticks() -> anyhow::Result<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().context("empty /proc/stat")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    // idle + iowait
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Ok((total - idle, total))
}

/// VmRSS and VmHWM in KiB.
pub fn memory_kib(pid: &str) -> anyhow::Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> Option<u64> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    Ok((
        field("VmRSS:").context("no VmRSS")?,
        field("VmHWM:").context("no VmHWM")?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dates() {
        assert_eq!(parse_date_ms("1970-01-01T00:00:00.000Z").unwrap(), 0.0);
        assert_eq!(
            parse_date_ms("2026-11-25T17:24:01.243Z").unwrap(),
            1_795_627_441_243.0
        );
        assert_eq!(
            parse_date_ms("2026-11-25T18:24:01.243+01:00").unwrap(),
            1_795_627_441_243.0
        );
    }

    #[test]
    fn finds_the_edge_after_the_last_date() {
        let p = "#EXTM3U\n#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:10.000Z\n\
            #EXT-X-PART:DURATION=0.50000,URI=\"a\"\n#EXT-X-PART:DURATION=0.50000,URI=\"b\"\n\
            #EXTINF:2.00000,\nseg1.m4s\n\
            #EXT-X-PART:DURATION=0.50000,URI=\"c\",GAP=YES\n\
            #EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"d\"\n";
        let e = live_edge(p).unwrap();
        assert_eq!(e.end_unix_ms, 12_500.0);
        assert_eq!(e.gaps, 1);
        let p = "#EXT-X-PROGRAM-DATE-TIME:1970-01-01T00:00:10.000Z\n#EXT-X-PART:DURATION=0.5,URI=\"a\"\n";
        assert_eq!(live_edge(p).unwrap().end_unix_ms, 10_500.0);
    }
}
