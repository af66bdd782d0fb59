// Publishes Chromium's fake camera and microphone to a WHIP endpoint (RFC 9725) and prints
// one JSON report on stdout: the HTTP answer, the connection state, the selected ICE
// candidate pair and what was sent. Used by the end-to-end tests (tests/all/whip.rs), which
// run it inside a private network namespace (Chromium will not use loopback candidates).
//
//   node whip.mjs --page http://10.77.0.1:8080/ --whip http://10.77.0.1:8080/whip/KEY \
//     --codec h264 --seconds 12 [--token T] [--reload-after S] [--started-file PATH]
//
// The page is any page of the server (getUserMedia needs a secure context: the origin is
// declared one with --unsafely-treat-insecure-origin-as-secure). The offer is sent whole,
// after ICE gathering (no trickle), as OBS does. --reload-after S reloads the page S seconds
// in and publishes again, as a viewer reloading a publishing page would; the report then
// has one entry per publish. --started-file PATH is written once media flows.
// --ice-restart-after S restarts ICE S seconds into the first publish (RFC 9725 4.4.2: the
// new offer's credentials and candidates in a PATCH, weir's in its 200), as a publisher
// whose network changed does; the entry's `restart` says what came back. With --relay the
// restart first takes the STUN/TURN servers of the 201's `Link: rel="ice-server"` headers
// (RFC 9725 4.6) and relays only (iceTransportPolicy "relay"), as a publisher behind a
// strict NAT would have to.
import { chromium } from 'playwright-core';
import { writeFileSync } from 'node:fs';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
    return acc;
  }, []),
);
const page_url = args.page;
const whip = args.whip;
const codec = (args.codec || 'h264').toLowerCase();
const seconds = Number(args.seconds || 10);
const reloadAfter = args['reload-after'] ? Number(args['reload-after']) : null;
const restartAfter = args['ice-restart-after'] ? Number(args['ice-restart-after']) : null;
const origin = new URL(page_url).origin;

const browser = await chromium.launch({
  executablePath: args.chromium || process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream',
    `--unsafely-treat-insecure-origin-as-secure=${origin}`,
    '--autoplay-policy=no-user-gesture-required',
  ],
});

// Runs in the page: capture, offer, POST, answer; then reports every second to the harness.
async function publish({ whip, codec, token }) {
  const media = await navigator.mediaDevices.getUserMedia({
    video: { width: 640, height: 360, frameRate: 30 },
    audio: true,
  });
  const pc = new RTCPeerConnection();
  window.__pc = pc;
  window.__token = token;
  for (const track of media.getTracks()) {
    const t = pc.addTransceiver(track, { direction: 'sendonly', streams: [media] });
    if (track.kind === 'video') {
      // Offer the one codec asked for (and the repair formats), as a publisher configured
      // for it does: the server cannot pick another.
      const all = RTCRtpSender.getCapabilities('video').codecs;
      const want = all.filter((c) => c.mimeType.toLowerCase() === `video/${codec}`);
      const repair = all.filter((c) => ['video/rtx', 'video/red', 'video/ulpfec'].includes(c.mimeType.toLowerCase()));
      t.setCodecPreferences([...want, ...repair]);
    }
  }
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    setTimeout(resolve, 3000);
  });
  const headers = { 'Content-Type': 'application/sdp' };
  if (token) headers.Authorization = `Bearer ${token}`;
  // A publisher that reconnects may find its old session still holding the key (one that
  // ended without a DELETE holds it until it has been idle for 2 s): retry as OBS does.
  const t0 = performance.now();
  let r, body, tries = 0;
  for (;;) {
    tries += 1;
    r = await fetch(whip, { method: 'POST', headers, body: pc.localDescription.sdp });
    body = await r.text();
    if (r.status === 201 || ![401, 503].includes(r.status) || performance.now() - t0 > 10000) break;
    await new Promise((res) => setTimeout(res, 500));
  }
  const out = { status: r.status, location: r.headers.get('Location'), etag: r.headers.get('ETag'), links: r.headers.get('Link'), tries, postMs: Math.round(performance.now() - t0) };
  window.__links = out.links;
  if (r.status !== 201) return { ...out, body };
  await pc.setRemoteDescription({ type: 'answer', sdp: body });
  const location = new URL(out.location, whip).href;
  window.__location = location;
  // Leaving the page ends the session (RFC 9725 4.2), as a WHIP page should: the key is
  // free at once for the page that comes next.
  window.addEventListener('pagehide', () => {
    fetch(location, { method: 'DELETE', keepalive: true, headers: token ? { Authorization: `Bearer ${token}` } : {} });
    pc.close();
  });
  return out;
}

// Runs in the page: an ICE restart over PATCH, the answer applied to the old one.
async function iceRestart({ relay }) {
  const pc = window.__pc;
  const attr = (sdp, name) => (new RegExp(`a=${name}:(.*)`).exec(sdp) || [])[1]?.trim();
  const before = attr(pc.currentRemoteDescription.sdp, 'ice-ufrag');
  let iceServers = null;
  if (relay) {
    // Link: <turn:…>; rel="ice-server"; username="u"; credential="p"; credential-type="password"
    iceServers = (window.__links || '').split(/,\s*(?=<)/).filter((l) => /rel="ice-server"/.test(l)).map((l) => {
      const param = (n) => (new RegExp(`${n}="([^"]*)"`).exec(l) || [])[1];
      const server = { urls: /<([^>]*)>/.exec(l)[1] };
      if (param('username')) Object.assign(server, { username: param('username'), credential: param('credential') });
      return server;
    });
    pc.setConfiguration({ iceServers, iceTransportPolicy: 'relay' });
  }
  pc.restartIce();
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === 'complete') return resolve();
    pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && resolve());
    setTimeout(resolve, 3000);
  });
  const offer = pc.localDescription.sdp;
  const first = offer.split(/\r?\n/);
  const m = first.findIndex((l) => l.startsWith('m='));
  const section = first.slice(m, first.findIndex((l, i) => i > m && l.startsWith('m=')) >>> 0);
  const frag = [
    `a=ice-ufrag:${attr(offer, 'ice-ufrag')}`,
    `a=ice-pwd:${attr(offer, 'ice-pwd')}`,
    section[0],
    ...section.filter((l) => l.startsWith('a=mid:') || l.startsWith('a=candidate:')),
    'a=end-of-candidates',
    '',
  ].join('\r\n');
  const headers = { 'Content-Type': 'application/trickle-ice-sdpfrag', 'If-Match': '*' };
  if (window.__token) headers.Authorization = `Bearer ${window.__token}`;
  const r = await fetch(window.__location, { method: 'PATCH', headers, body: frag });
  const text = await r.text();
  const out = { status: r.status, etag: r.headers.get('ETag'), before, ufrag: attr(text, 'ice-ufrag'), iceServers };
  if (r.status !== 200) return { ...out, body: text };
  const answer = pc.currentRemoteDescription.sdp
    .replace(/a=ice-ufrag:.*\r\n/g, `a=ice-ufrag:${attr(text, 'ice-ufrag')}\r\n`)
    .replace(/a=ice-pwd:.*\r\n/g, `a=ice-pwd:${attr(text, 'ice-pwd')}\r\n`);
  await pc.setRemoteDescription({ type: 'answer', sdp: answer });
  return out;
}

async function stats() {
  const pc = window.__pc;
  if (!pc) return null;
  const s = await pc.getStats();
  let pair = null;
  const byId = {};
  s.forEach((v) => (byId[v.id] = v));
  const out = { connectionState: pc.connectionState, video: null, audio: null, pair: null };
  s.forEach((v) => {
    if (v.type === 'transport' && v.selectedCandidatePairId) pair = byId[v.selectedCandidatePairId];
    if (v.type === 'outbound-rtp') {
      const c = byId[v.codecId];
      out[v.kind] = {
        codec: c && c.mimeType,
        bytesSent: v.bytesSent,
        packetsSent: v.packetsSent,
        framesEncoded: v.framesEncoded,
        keyFramesEncoded: v.keyFramesEncoded,
        pliCount: v.pliCount,
        nackCount: v.nackCount,
        frameWidth: v.frameWidth,
        frameHeight: v.frameHeight,
      };
    }
  });
  if (pair) {
    const l = byId[pair.localCandidateId];
    const r = byId[pair.remoteCandidateId];
    out.pair = {
      id: pair.id,
      state: pair.state,
      local: l && `${l.address}:${l.port} ${l.candidateType}`,
      remote: r && `${r.address}:${r.port} ${r.candidateType}`,
      rtt: pair.currentRoundTripTime,
    };
  }
  return out;
}

const report = { publishes: [] };
const page = await browser.newPage();
page.on('console', (m) => process.stderr.write(`[page] ${m.text()}\n`));
const token = args.token || null;

async function one(duration, restartAt) {
  await page.goto(page_url);
  const answer = await page.evaluate(publish, { whip, codec, token });
  const entry = { answer, samples: [] };
  report.publishes.push(entry);
  if (answer.status !== 201) return false;
  const t0 = Date.now();
  const end = t0 + duration * 1000;
  let started = false;
  while (Date.now() < end) {
    await page.waitForTimeout(1000);
    if (restartAt !== null && !entry.restart && Date.now() - t0 >= restartAt * 1000) {
      const at = await page.evaluate(stats);
      entry.restart = await page.evaluate(iceRestart, { relay: !!args.relay });
      entry.restart.framesBefore = at && at.video ? at.video.framesEncoded : 0;
      entry.restart.pairBefore = at && at.pair;
      entry.restart.second = entry.samples.length;
      entry.restart.wall = Date.now();
    }
    const s = await page.evaluate(stats);
    entry.samples.push(s);
    entry.last = s;
    if (!started && s && s.video && s.video.framesEncoded > 0 && s.connectionState === 'connected') {
      started = true;
      if (args['started-file']) writeFileSync(args['started-file'], 'started\n');
    }
  }
  return true;
}

try {
  if (reloadAfter !== null) {
    if (await one(reloadAfter, restartAfter)) await one(seconds - reloadAfter, null);
  } else {
    await one(seconds, restartAfter);
  }
} catch (e) {
  report.error = String(e);
}
// End the session as a publisher that leaves properly does.
try {
  const del = await page.evaluate(async () => {
    if (!window.__location) return null;
    const r = await fetch(window.__location, { method: 'DELETE', headers: window.__token ? { Authorization: `Bearer ${window.__token}` } : {} });
    return r.status;
  });
  report.deleteStatus = del;
} catch (e) {
  report.deleteError = String(e);
}
await browser.close();
for (const p of report.publishes) {
  // Frames sent each second (for a restart: did media keep flowing across it).
  p.frames = p.samples.map((x) => (x && x.video ? x.video.framesEncoded : 0));
  p.states = p.samples.map((x) => x && x.connectionState);
  delete p.samples;
}
console.log(JSON.stringify(report));
