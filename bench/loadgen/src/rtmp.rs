//! One RTMP publisher on rml_rtmp's client session: handshake, connect, publish, then the
//! clip's tags at their timestamps, as an encoder sends them.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, ensure};
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ClientSession, ClientSessionConfig, ClientSessionEvent, ClientSessionResult, PublishRequestType,
};
use rml_rtmp::time::RtmpTimestamp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;
use weir_ingest::flv::TagKind;

use crate::clip::FlvClip;
use crate::stats::{Schedule, StreamReport};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
const APP: &str = "live";

pub async fn run(
    addr: SocketAddr,
    key: String,
    clip: Arc<FlvClip>,
    sched: Schedule,
) -> StreamReport {
    let mut report = StreamReport::new(key.clone());
    match tokio::time::timeout(CONNECT_TIMEOUT, connect(addr, &key)).await {
        Ok(Ok((sock, session))) => {
            report.connected = true;
            if let Err(e) = stream(sock, session, &clip, sched, &mut report).await {
                report.error = Some(format!("{e:#}"));
            }
        }
        Ok(Err(e)) => report.error = Some(format!("connect: {e:#}")),
        Err(_) => report.error = Some("connect: timed out".into()),
    }
    report
}

async fn connect(addr: SocketAddr, key: &str) -> anyhow::Result<(TcpStream, ClientSession)> {
    let mut sock = TcpStream::connect(addr).await?;
    sock.set_nodelay(true)?;
    let mut handshake = Handshake::new(PeerType::Client);
    sock.write_all(&handshake.generate_outbound_p0_and_p1()?)
        .await?;
    let mut buf = vec![0u8; 16 * 1024];
    let remaining = loop {
        let n = sock.read(&mut buf).await?;
        ensure!(n > 0, "closed during the handshake");
        match handshake.process_bytes(&buf[..n])? {
            HandshakeProcessResult::InProgress { response_bytes } => {
                sock.write_all(&response_bytes).await?;
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                sock.write_all(&response_bytes).await?;
                break remaining_bytes;
            }
        }
    };
    let (mut session, initial) = ClientSession::new(ClientSessionConfig::new())?;
    let mut out = Vec::new();
    let _ = absorb(&mut out, initial);
    push(&mut out, session.request_connection(APP.to_owned())?);
    let mut events = absorb(&mut out, session.handle_input(&remaining)?);
    loop {
        for event in events.drain(..) {
            match event {
                ClientSessionEvent::ConnectionRequestAccepted => push(
                    &mut out,
                    session.request_publishing(key.to_owned(), PublishRequestType::Live)?,
                ),
                ClientSessionEvent::ConnectionRequestRejected { description } => {
                    bail!("connect rejected: {description}")
                }
                ClientSessionEvent::PublishRequestAccepted => {
                    sock.write_all(&out).await?;
                    return Ok((sock, session));
                }
                ClientSessionEvent::UnhandleableAmf0Command {
                    command_name,
                    additional_values,
                    ..
                } if command_name == "_error" => bail!("refused: {additional_values:?}"),
                _ => {}
            }
        }
        sock.write_all(&out).await?;
        out.clear();
        let n = sock.read(&mut buf).await?;
        ensure!(n > 0, "closed before publish was accepted");
        events = absorb(&mut out, session.handle_input(&buf[..n])?);
    }
}

/// Sends every tag due at its clip timestamp (relative to the first send) until the
/// schedule stops. Tags due at the same moment go out in one write.
async fn stream(
    sock: TcpStream,
    mut session: ClientSession,
    clip: &FlvClip,
    sched: Schedule,
    report: &mut StreamReport,
) -> anyhow::Result<()> {
    let (mut rd, mut wr) = sock.into_split();
    let mut buf = vec![0u8; 16 * 1024];
    let mut out = Vec::with_capacity(256 * 1024);
    let t0 = Instant::now();
    let mut next = 0;
    loop {
        let Some(tag) = clip.tags.get(next) else {
            report.clip_ended = true;
            break;
        };
        let due = t0 + Duration::from_millis(u64::from(tag.timestamp_ms));
        if due >= sched.stop {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep_until(due) => {}
            r = rd.read(&mut buf) => {
                let n = r?;
                ensure!(n > 0, "weir closed the connection");
                out.clear();
                let _ = absorb(&mut out, session.handle_input(&buf[..n])?);
                wr.write_all(&out).await?;
                continue;
            }
        }
        let now = Instant::now();
        if sched.in_window(now) {
            report.late.record(now - due);
        }
        out.clear();
        while let Some(tag) = clip.tags.get(next) {
            if t0 + Duration::from_millis(u64::from(tag.timestamp_ms)) > now {
                break;
            }
            let ts = RtmpTimestamp::new(tag.timestamp_ms);
            match tag.kind {
                TagKind::Video => push(
                    &mut out,
                    session.publish_video_data(tag.body.clone(), ts, false)?,
                ),
                TagKind::Audio => push(
                    &mut out,
                    session.publish_audio_data(tag.body.clone(), ts, false)?,
                ),
                TagKind::Script => {} // dropped when the clip was loaded
            }
            next += 1;
        }
        wr.write_all(&out).await?;
        report.bytes_sent += out.len() as u64;
    }
    report.sending = t0.elapsed();
    out.clear();
    let _ = absorb(&mut out, session.stop_publishing()?);
    wr.write_all(&out).await?;
    wr.shutdown().await?;
    drop(rd);
    Ok(())
}

fn push(out: &mut Vec<u8>, r: ClientSessionResult) {
    if let ClientSessionResult::OutboundResponse(p) = r {
        out.extend_from_slice(&p.bytes);
    }
}

fn absorb(out: &mut Vec<u8>, results: Vec<ClientSessionResult>) -> Vec<ClientSessionEvent> {
    let mut events = Vec::new();
    for r in results {
        match r {
            ClientSessionResult::OutboundResponse(p) => out.extend_from_slice(&p.bytes),
            ClientSessionResult::RaisedEvent(e) => events.push(e),
            ClientSessionResult::UnhandleableMessageReceived(_) => {}
        }
    }
    events
}
