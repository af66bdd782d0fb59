//! One SRT caller on srt-tokio: 1316-byte MPEG-TS messages, each sent at its PCR time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::SinkExt;
use srt_tokio::SrtSocket;
use tokio::time::Instant;

use crate::clip::TsClip;
use crate::stats::{Schedule, StreamReport};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// libsrt's and weir's default; the negotiated latency is the larger of both sides'.
pub const LATENCY: Duration = Duration::from_millis(200);

pub async fn run(
    addr: SocketAddr,
    key: String,
    clip: Arc<TsClip>,
    sched: Schedule,
) -> StreamReport {
    let mut report = StreamReport::new(key.clone());
    let stream_id = format!("#!::r=live/{key},m=publish");
    let call = SrtSocket::builder()
        .latency(LATENCY)
        .call(addr, Some(&stream_id));
    match tokio::time::timeout(CONNECT_TIMEOUT, call).await {
        Ok(Ok(sock)) => {
            report.connected = true;
            if let Err(e) = stream(sock, &clip, sched, &mut report).await {
                report.error = Some(format!("{e:#}"));
            }
        }
        Ok(Err(e)) => report.error = Some(format!("connect: {e}")),
        Err(_) => report.error = Some("connect: timed out".into()),
    }
    report
}

async fn stream(
    mut sock: SrtSocket,
    clip: &TsClip,
    sched: Schedule,
    report: &mut StreamReport,
) -> anyhow::Result<()> {
    let t0 = Instant::now();
    let mut next = 0;
    loop {
        let Some(first) = clip.messages.get(next) else {
            report.clip_ended = true;
            break;
        };
        let due = t0 + first.at;
        if due >= sched.stop {
            break;
        }
        tokio::time::sleep_until(due).await;
        let now = Instant::now();
        if sched.in_window(now) {
            report.late.record(now - due);
        }
        while let Some(m) = clip.messages.get(next) {
            if t0 + m.at > now {
                break;
            }
            sock.feed((std::time::Instant::now(), m.bytes.clone()))
                .await?;
            report.bytes_sent += m.bytes.len() as u64;
            next += 1;
        }
        sock.flush().await?;
    }
    report.sending = t0.elapsed();
    // A receiver drops about one latency window of tail if the caller closes at once.
    tokio::time::sleep(LATENCY + Duration::from_millis(100)).await;
    sock.close().await?;
    Ok(())
}
