// Plays an HLS URL in a real player (hls.js or Shaka) inside headless Debian Chromium and
// prints one JSON report on stdout. Used by the end-to-end tests (tests/all/) and by
// bench/latency.sh. Exits non-zero only when the harness itself fails; judging the
// report is the caller's job.
//
//   node play.mjs --url http://127.0.0.1:8080/live/test/master.m3u8 --player hls --seconds 12
//
// Options: --player hls|shaka, --seconds N (play time to observe), --timeout N (give up on
// start after N s), --chromium PATH (default /usr/bin/chromium or $CHROMIUM), --force-level N
// (hls.js: switch to level N after start), --cycle-levels (hls.js: force each level in turn,
// top to bottom, over the play time; reports levelSwitches), --catchup (hls.js maxLiveSyncPlaybackRate 1.5),
// --trace (per-500 ms playhead samples), --log-requests (each request and its end, timed, to stderr), --debug (hls.js logs to stderr), --header
// "Name: value" (an extra HTTP header on every request, e.g. a CDN's CF-IPCountry; give it
// more than once for several), --shaka-retry (Shaka: a failure callback that retries),
// --shaka-sequence-mode (Shaka: manifest.hls.sequenceMode, the workaround for Shaka 5.2's
// frozen LL-HLS picture that docs/PLAYERS.md recommends),
// --started-file PATH (write PATH once playback has started, so
// a test can act on a playing player).
//
// The report counts requests for interstitial asset lists (`/asset-list/`), assets
// (`/assets/`) and the slate rendition (`/slate/`) in `requests`, and lists hls.js's
// interstitial events (hls.js >= 1.6) in `interstitials`.
import { chromium } from 'playwright-core';
import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
    return acc;
  }, []),
);
// Every `--header "Name: value"` (the object above keeps only the last).
const headers = {};
process.argv.slice(2).forEach((a, i, all) => {
  if (a !== '--header' || all[i + 1] === undefined) return;
  const h = all[i + 1];
  const colon = h.indexOf(':');
  if (colon <= 0) {
    console.error(`--header ${JSON.stringify(h)}: expected "Name: value"`);
    process.exit(2);
  }
  headers[h.slice(0, colon).trim()] = h.slice(colon + 1).trim();
});
const url = args.url;
const player = args.player ?? 'hls';
const seconds = Number(args.seconds ?? 12);
const startTimeout = Number(args.timeout ?? 20);
const executablePath = args.chromium ?? process.env.CHROMIUM ?? '/usr/bin/chromium';
if (!url) {
  console.error('usage: node play.mjs --url URL [--player hls|shaka] [--seconds N]');
  process.exit(2);
}

// --current (or WEIR_PLAYERS=current for a whole run) plays with the current releases
// (package.json's hls.js-current and shaka-player-current) instead of the pinned older ones.
const current = args.current === 'true' || process.env.WEIR_PLAYERS === 'current';
const libs = {
  hls: require.resolve(current ? 'hls.js-current/dist/hls.min.js' : 'hls.js/dist/hls.min.js'),
  shaka: require.resolve(
    current
      ? `shaka-player-current/dist/shaka-player.compiled${args.debug ? '.debug' : ''}.js`
      : `shaka-player/dist/shaka-player.compiled${args.debug ? '.debug' : ''}.js`,
  ),
};

const browser = await chromium.launch({
  executablePath,
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required',
    '--disable-features=LocalNetworkAccessChecks,PrivateNetworkAccessSendPreflights,BlockInsecurePrivateNetworkRequests',
  ],
});
const report = {
  player, url, started: false, played: 0, fatal: [], errors: [], stalls: 0,
  latency: { samples: [] },
  requests: { total: 0, blocking: 0, parts: 0, skip: 0, assetList: 0, assets: 0, slate: 0, failed: [] },
  protocols: {}, levels: [], switchedTo: null, trace: [], interstitials: [], headers,
};
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  // Extra headers go on every request, weir's included; being non-safelisted, they make
  // each cross-origin request preflighted (OPTIONS), which weir must allow.
  if (Object.keys(headers).length) await context.setExtraHTTPHeaders(headers);
  const page = await context.newPage();
  // The page lives on its own (intercepted, loopback) origin, so every request to weir is
  // cross-origin and CORS is exercised; a loopback origin keeps Private Network Access quiet.
  await page.route('http://localhost:9/player.html', (route) =>
    route.fulfill({ contentType: 'text/html', body: '<!doctype html><video id=v muted autoplay playsinline></video>' }));
  const cdp = await context.newCDPSession(page);
  await cdp.send('Network.enable');
  cdp.on('Network.responseReceived', (e) => {
    if (!e.response.url.startsWith('http://localhost:9')) {
      const p = e.response.protocol ?? 'unknown';
      report.protocols[p] = (report.protocols[p] ?? 0) + 1;
    }
  });
  page.on('request', (r) => {
    const u = r.url();
    if (u.startsWith('http://localhost:9')) return;
    report.requests.total++;
    if (args['log-requests']) process.stderr.write(`${Date.now()} > ${u}\n`);
    if (/[?&]_HLS_msn=/.test(u)) report.requests.blocking++;
    if (/[?&]_HLS_skip=/.test(u)) report.requests.skip++;
    if (/\/part\d+\.m4s/.test(u)) report.requests.parts++;
    if (u.includes('/asset-list/')) report.requests.assetList++;
    if (u.includes('/assets/')) report.requests.assets++;
    if (u.includes('/slate/')) report.requests.slate++;
  });
  if (args['log-requests']) {
    page.on('requestfinished', async (r) => {
      if (r.url().startsWith('http://localhost:9')) return;
      const t = Date.now();
      let body = '';
      if (r.url().includes('.m3u8')) body = `\n${await (await r.response())?.text().catch(() => '') ?? ''}`;
      process.stderr.write(`${t} < ${r.url()}${body}\n`);
    });
  }
  page.on('requestfailed', (r) => {
    if (r.url().startsWith('http://localhost:9')) return;
    report.requests.failed.push(`${r.url()} ${r.failure()?.errorText ?? ''}`.slice(0, 300));
  });
  page.on('console', (m) => {
    if (m.type() === 'error') report.errors.push(`console: ${m.text()}`.slice(0, 300));
    if (args.debug) process.stderr.write(`[${player} ${m.type()}] ${m.text().slice(0, 400)}\n`);
  });
  page.on('pageerror', (e) => report.errors.push(`pageerror: ${e.message}`.slice(0, 300)));
  await page.goto('http://localhost:9/player.html');
  await page.addScriptTag({ content: readFileSync(libs[player], 'utf8') });

  await page.evaluate(({ url, player, debug, catchup, shakaRetry, shakaSequenceMode }) => {
    const video = document.getElementById('v');
    const w = window;
    if (debug) {
      // Every seek the player makes, with the element's state at the time.
      const d = Object.getOwnPropertyDescriptor(HTMLMediaElement.prototype, 'currentTime');
      Object.defineProperty(HTMLMediaElement.prototype, 'currentTime', {
        get() { return d.get.call(this); },
        set(v) {
          console.log(`weir: currentTime=${v} (was ${d.get.call(this)}, ready=${this.readyState}, paused=${this.paused})`);
          d.set.call(this, v);
        },
      });
    }
    w.weir = { switches: [], fatal: [], nonfatal: [], stalls: 0, events: [], interstitials: [], latency: () => null, levels: [], switchTo: () => null, started: false };
    video.addEventListener('playing', () => { w.weir.started = true; });
    video.addEventListener('waiting', () => {
      if (w.weir.started) w.weir.stalls++;
      w.weir.events.push(`${(performance.now() / 1000).toFixed(2)} waiting t=${video.currentTime.toFixed(2)}`);
    });
    for (const e of ['playing', 'loadedmetadata', 'seeking', 'seeked']) {
      video.addEventListener(e, () => w.weir.events.push(`${(performance.now() / 1000).toFixed(2)} ${e} t=${video.currentTime.toFixed(3)} ready=${video.readyState}`));
    }
    if (player === 'hls') {
      // --catchup: let hls.js speed playback up (up to 1.5x) to reach its target latency
      // (PART-HOLD-BACK); hls.js's default (1) never catches up after a late start.
      const hls = new w.Hls({ lowLatencyMode: true, backBufferLength: 30, debug, ...(catchup ? { maxLiveSyncPlaybackRate: 1.5 } : {}) });
      w.hls = hls;
      hls.on(w.Hls.Events.ERROR, (_, d) => {
        if (d.fatal) w.weir.fatal.push(`${d.type}/${d.details}`);
        else w.weir.nonfatal.push(`${(performance.now() / 1000).toFixed(2)} ${d.type}/${d.details}`);
      });
      hls.on(w.Hls.Events.LEVEL_SWITCHED, (_, d) => {
        const l = hls.levels[d.level];
        w.weir.switches.push({ at: performance.now() / 1000, level: d.level, width: l?.width ?? null, height: l?.height ?? null });
      });
      // HLS Interstitials (hls.js >= 1.6): what the player did with each break.
      const E = w.Hls.Events;
      const at = () => (performance.now() / 1000).toFixed(2);
      const interstitial = (name, detail) => w.weir.interstitials.push({ at: Number(at()), event: name, ...detail });
      let scheduled = '';
      hls.on(E.INTERSTITIALS_UPDATED, (_, d) => {
        // Only changes: hls.js sends this on every playlist update that touches the schedule.
        const ids = (d.events ?? []).map((i) => i.identifier);
        if (ids.join() === scheduled && !(d.removedIds ?? []).length) return;
        scheduled = ids.join();
        interstitial('INTERSTITIALS_UPDATED', { ids, removed: d.removedIds ?? [] });
      });
      hls.on(E.ASSET_LIST_LOADING, (_, d) => interstitial('ASSET_LIST_LOADING', { id: d.event?.identifier, url: String(d.event?.assetListUrl ?? '') }));
      hls.on(E.ASSET_LIST_LOADED, (_, d) => interstitial('ASSET_LIST_LOADED', {
        id: d.event?.identifier,
        assets: (d.assetListResponse?.ASSETS ?? []).map((a) => ({ uri: a.URI, duration: a.DURATION })),
      }));
      hls.on(E.INTERSTITIAL_STARTED, (_, d) => interstitial('INTERSTITIAL_STARTED', { id: d.event?.identifier }));
      hls.on(E.INTERSTITIAL_ASSET_STARTED, (_, d) => interstitial('INTERSTITIAL_ASSET_STARTED', {
        id: d.event?.identifier, uri: d.asset?.uri, index: d.assetListIndex,
      }));
      hls.on(E.INTERSTITIAL_ASSET_ENDED, (_, d) => interstitial('INTERSTITIAL_ASSET_ENDED', { id: d.event?.identifier, uri: d.asset?.uri }));
      hls.on(E.INTERSTITIAL_ASSET_ERROR, (_, d) => interstitial('INTERSTITIAL_ASSET_ERROR', {
        id: d.event?.identifier, uri: d.asset?.uri, error: String(d.error?.message ?? d.details ?? ''),
      }));
      hls.on(E.INTERSTITIAL_ENDED, (_, d) => interstitial('INTERSTITIAL_ENDED', { id: d.event?.identifier }));
      hls.on(E.INTERSTITIALS_PRIMARY_RESUMED, () => interstitial('INTERSTITIALS_PRIMARY_RESUMED', {}));
      hls.on(w.Hls.Events.MANIFEST_PARSED, (_, d) => {
        w.weir.levels = d.levels.map((l) => ({ width: l.width, height: l.height, bitrate: l.bitrate }));
      });
      hls.loadSource(url);
      hls.attachMedia(video);
      w.weir.latency = () => (hls.playingDate ? Date.now() - hls.playingDate.getTime() : null);
      w.weir.switchTo = (n) => { hls.currentLevel = n; return hls.currentLevel; };
      w.weir.level = () => hls.currentLevel;
    } else {
      w.shaka.polyfill.installAll();
      if (debug) w.shaka.log.setLevel(w.shaka.log.Level.V1);
      const p = new w.shaka.Player();
      w.shakaPlayer = p;
      p.addEventListener('error', (e) => {
        if (e.detail.severity === 2) w.weir.fatal.push(`shaka ${e.detail.code}`);
        else w.weir.nonfatal.push(`${(performance.now() / 1000).toFixed(2)} shaka ${e.detail.code}`);
      });
      // Shaka's own failure callback, as a page that configures nothing but low-latency
      // mode: what most deployments run. --shaka-retry installs one that retries streaming
      // after network errors and SEGMENT_MISSING (1011), for diagnosis.
      p.configure({
        ...(!shakaSequenceMode ? {} : { manifest: { hls: { sequenceMode: true } } }),
        streaming: {
          lowLatencyMode: true,
          ...(!shakaRetry ? {} : {
            failureCallback: (error) => {
              if (p.isLive() && [1001, 1002, 1003, 1011].includes(error.code)) p.retryStreaming(1);
            },
          }),
        },
      });
      p.attach(video).then(() => p.load(url)).catch((e) => w.weir.fatal.push(`shaka load ${e.code ?? e}`));
      w.weir.latency = () => {
        const d = p.getPlayheadTimeAsDate();
        return d ? Date.now() - d.getTime() : null;
      };
      w.weir.level = () => null;
    }
    video.play().catch(() => {});
  }, { url, player, debug: !!args.debug, catchup: !!args.catchup, shakaRetry: !!args['shaka-retry'], shakaSequenceMode: !!args['shaka-sequence-mode'] });

  const startDeadline = Date.now() + startTimeout * 1000;
  while (Date.now() < startDeadline) {
    const s = await page.evaluate(() => ({ started: window.weir.started, fatal: window.weir.fatal.length }));
    if (s.started || s.fatal) break;
    await page.waitForTimeout(100);
  }
  report.started = await page.evaluate(() => window.weir.started);
  if (report.started && args['started-file']) writeFileSync(args['started-file'], `${Date.now()}\n`);
  if (report.started) {
    const t0 = await page.evaluate(() => document.getElementById('v').currentTime);
    const end = Date.now() + seconds * 1000;
    let switched = false;
    while (Date.now() < end) {
      await page.waitForTimeout(500);
      const lat = await page.evaluate(() => window.weir.latency());
      if (lat !== null && Number.isFinite(lat)) report.latency.samples.push(lat);
      if (args.trace) {
        report.trace.push(await page.evaluate(() => {
          const v = document.getElementById('v');
          const l = window.weir.latency();
          // The picture's mean colour (a 32x18 downscale through a canvas): tells a slate
          // from the programme without knowing either.
          let rgb = null;
          try {
            const c = document.createElement('canvas');
            c.width = 32; c.height = 18;
            const g = c.getContext('2d');
            g.drawImage(v, 0, 0, 32, 18);
            const d = g.getImageData(0, 0, 32, 18).data;
            const sum = [0, 0, 0];
            for (let i = 0; i < d.length; i += 4) { sum[0] += d[i]; sum[1] += d[i + 1]; sum[2] += d[i + 2]; }
            rgb = sum.map((x) => x / (d.length / 4));
          } catch (_) { /* no picture yet */ }
          // Shaka's own view of the live timeline: its seek range and what it derives from.
          let shaka;
          const tl = window.shakaPlayer?.getManifest?.()?.presentationTimeline;
          if (tl) {
            const r = window.shakaPlayer.seekRange();
            shaka = { seek: [r.start, r.end], availEnd: tl.getSegmentAvailabilityEnd(), maxEnd: tl.getMaxSegmentEndTime(), start: tl.getPresentationStartTime(), delay: tl.getDelay(), maxDur: tl.getMaxSegmentDuration?.() };
          }
          return { wall: Date.now(), t: v.currentTime, latency: l, w: v.videoWidth, paused: v.paused, rgb, shaka };
        }));
      }
      if (args['cycle-levels']) {
        // Level k of n is forced during the k-th n-th of the play time, from the top down.
        const n = await page.evaluate(() => window.hls.levels.length);
        const k = Math.min(n - 1, Math.floor((1 - (end - Date.now()) / (seconds * 1000)) * n));
        const want = n - 1 - k;
        const cur = await page.evaluate(() => window.hls.currentLevel);
        if (want >= 0 && cur !== want) await page.evaluate((n) => window.weir.switchTo(n), want);
      }
      if (args['force-level'] !== undefined && !switched && Date.now() > end - seconds * 500) {
        report.switchedTo = await page.evaluate((n) => window.weir.switchTo(n), Number(args['force-level']));
        switched = true;
      }
    }
    const t1 = await page.evaluate(() => document.getElementById('v').currentTime);
    report.played = t1 - t0;
  }
  const w = await page.evaluate(() => ({
    switches: window.weir.switches, fatal: window.weir.fatal, nonfatal: window.weir.nonfatal, events: window.weir.events, interstitials: window.weir.interstitials, stalls: window.weir.stalls, levels: window.weir.levels, level: window.weir.level(),
    videoWidth: document.getElementById('v').videoWidth, videoHeight: document.getElementById('v').videoHeight,
    shakaStats: window.shakaPlayer ? window.shakaPlayer.getStats() : null,
  }));
  Object.assign(report, { levelSwitches: w.switches, nonfatal: w.nonfatal, events: w.events, interstitials: w.interstitials, fatal: w.fatal, stalls: w.stalls, levels: w.levels, level: w.level, videoWidth: w.videoWidth, videoHeight: w.videoHeight });
  if (w.shakaStats) report.stalls = Math.max(report.stalls, w.shakaStats.stallsDetected ?? 0);
  const sorted = [...report.latency.samples].sort((a, b) => a - b);
  const q = (p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] / 1000 : null);
  report.latency.p50 = q(0.5);
  report.latency.p95 = q(0.95);
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
