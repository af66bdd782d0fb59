// Plays a live stream over WHEP (WebRTC) in headless Chromium and prints one JSON report on
// stdout: the HTTP answer, the connection state and selected ICE pair, frames shown, the
// picture size, audio packets received, and glass-to-glass latency. Run inside a private
// network namespace (tests/all/whep.rs): Chromium will not use loopback candidates.
//
//   node whep.mjs --page http://10.77.0.1:8080/ --whep http://10.77.0.1:8080/whep/STREAM \
//     --seconds 10 [--started-file PATH]
//
// Latency: weir stamps each frame's RTP timestamp from the wall clock at which it received
// the frame (90 kHz of Unix time), so for every frame shown (requestVideoFrameCallback)
// latency = display time - (RTP timestamp / 90), modulo 2^32. Same machine, same clock.
// `frames` has the frames decoded so far, once a second.
import { chromium } from 'playwright-core';
import { writeFileSync } from 'node:fs';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
    return acc;
  }, []),
);
const seconds = Number(args.seconds || 10);
const origin = new URL(args.page).origin;
const browser = await chromium.launch({
  executablePath: args.chromium || process.env.CHROMIUM || '/usr/bin/chromium',
  args: [`--unsafely-treat-insecure-origin-as-secure=${origin}`, '--autoplay-policy=no-user-gesture-required'],
});
const page = await browser.newPage();
page.on('console', (m) => process.stderr.write(`[page] ${m.text()}\n`));

async function watch({ whep }) {
  const pc = new RTCPeerConnection();
  window.__pc = pc;
  pc.addTransceiver('video', { direction: 'recvonly' });
  pc.addTransceiver('audio', { direction: 'recvonly' });
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  document.body.appendChild(video);
  const stream = new MediaStream();
  pc.ontrack = (e) => {
    stream.addTrack(e.track);
    video.srcObject = stream;
  };
  window.__lat = [];
  window.__frames = 0;
  const onFrame = (now, meta) => {
    window.__frames += 1;
    if (meta.rtpTimestamp !== undefined) {
      const shown = performance.timeOrigin + (meta.expectedDisplayTime || now);
      const now90 = Math.floor(shown * 90) % 4294967296;
      const d = (now90 - meta.rtpTimestamp + 4294967296) % 4294967296;
      window.__lat.push(d / 90);
    }
    window.__size = [meta.width, meta.height];
    video.requestVideoFrameCallback(onFrame);
  };
  video.requestVideoFrameCallback(onFrame);
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    setTimeout(resolve, 3000);
  });
  const t0 = performance.now();
  const r = await fetch(whep, { method: 'POST', headers: { 'Content-Type': 'application/sdp' }, body: pc.localDescription.sdp });
  const body = await r.text();
  const out = { status: r.status, location: r.headers.get('Location'), postMs: Math.round(performance.now() - t0) };
  if (r.status !== 201) return { ...out, body };
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
  window.__location = new URL(out.location, whep).href;
  return out;
}

async function stats() {
  const pc = window.__pc;
  const s = await pc.getStats();
  const byId = {};
  s.forEach((v) => (byId[v.id] = v));
  const out = { connectionState: pc.connectionState, frames: window.__frames, size: window.__size, pair: null, audio: null, video: null };
  s.forEach((v) => {
    if (v.type === 'transport' && v.selectedCandidatePairId) {
      const p = byId[v.selectedCandidatePairId];
      const l = byId[p.localCandidateId];
      const r = byId[p.remoteCandidateId];
      out.pair = { state: p.state, local: l && `${l.address}:${l.port}`, remote: r && `${r.address}:${r.port}` };
    }
    if (v.type === 'inbound-rtp') {
      const c = byId[v.codecId];
      out[v.kind] = { codec: c && c.mimeType, packetsReceived: v.packetsReceived, packetsLost: v.packetsLost, framesDecoded: v.framesDecoded };
    }
  });
  return out;
}

const report = {};
try {
  await page.goto(args.page);
  report.answer = await page.evaluate(watch, { whep: args.whep });
  if (report.answer.status === 201) {
    const end = Date.now() + seconds * 1000;
    let started = false;
    while (Date.now() < end) {
      await page.waitForTimeout(1000);
      const s = await page.evaluate(stats);
      report.last = s;
      (report.frames = report.frames || []).push(s.video ? s.video.framesDecoded : 0);
      if (!started && s.frames > 0) {
        started = true;
        if (args['started-file']) writeFileSync(args['started-file'], 'started\n');
      }
    }
    const lat = (await page.evaluate(() => window.__lat)).slice().sort((a, b) => a - b);
    const q = (p) => (lat.length ? Math.round(lat[Math.min(lat.length - 1, Math.floor(p * lat.length))]) : null);
    report.latencyMs = { n: lat.length, p50: q(0.5), p95: q(0.95), min: lat.length ? Math.round(lat[0]) : null };
    report.deleteStatus = await page.evaluate(async () => (await fetch(window.__location, { method: 'DELETE' })).status);
  }
} catch (e) {
  report.error = String(e);
}
await browser.close();
console.log(JSON.stringify(report));
