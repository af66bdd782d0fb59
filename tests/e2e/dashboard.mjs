// Drives weir's operator dashboard (the page at `/`) in headless Debian Chromium as an
// operator would: enters the API token, waits for a stream's row and its live tile, checks
// the tile shows a moving picture, and saves a screenshot. Prints one JSON report; judging
// it is the caller's job (tests/all/dashboard.rs).
//
//   node dashboard.mjs --url http://127.0.0.1:8080/ --token T --stream NAME \
//     --screenshot out.png [--seconds 6]
import { chromium } from 'playwright-core';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
    return acc;
  }, []),
);
const seconds = Number(args.seconds ?? 6);
const browser = await chromium.launch({
  executablePath: args.chromium ?? process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: [
    '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--autoplay-policy=no-user-gesture-required',
  ],
});
const report = { rows: [], tile: null, publish: {}, plugins: {}, picture: null, errors: [] };
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  page.on('pageerror', (e) => report.errors.push(String(e)));
  await page.goto(args.url);
  await page.fill('#token', args.token);
  await page.click('#savetoken');
  const row = `#streams tr[data-stream="${args.stream}"]`;
  await page.waitForSelector(row, { timeout: 20000 });
  const lat = `.tile[data-stream="${args.stream}"] .lat`;
  await page.waitForFunction((sel) => /^\d+\.\d+ s$/.test(document.querySelector(sel)?.textContent ?? ''), lat, { timeout: 30000 });
  await page.waitForTimeout(seconds * 1000);
  report.rows = await page.$$eval('#streams tbody tr', (trs) => trs.map((tr) => ({
    stream: tr.dataset.stream, cells: [...tr.cells].map((c) => c.textContent),
  })));
  report.tile = { latency: parseFloat(await page.textContent(lat)) };
  for (const id of ['obs-server', 'ffmpeg-rtmp', 'ffmpeg-srt']) {
    report.publish[id] = await page.$eval(`#${id}`, (e) => e.textContent).catch(() => null);
  }
  report.plugins = await page.$$eval('#plugins [data-tenant]', (ds) => Object.fromEntries(
    ds.map((d) => [d.dataset.tenant, [...d.querySelectorAll('[data-plugin]')].map((li) => li.dataset.plugin)]),
  ));
  // The tile's picture: two frames 1 s apart, drawn to a canvas. A live picture has detail
  // (luma spread) and changes (the test source's counter and moving patterns).
  const frame = () => page.$eval(`.tile[data-stream="${args.stream}"] video`, (v) => {
    const c = document.createElement('canvas');
    c.width = 160; c.height = 90;
    const g = c.getContext('2d');
    g.drawImage(v, 0, 0, c.width, c.height);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    const luma = [];
    for (let i = 0; i < d.length; i += 4) luma.push(0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2]);
    return { luma, playing: !v.paused && v.readyState >= 3, time: v.currentTime };
  });
  const a = await frame();
  await page.waitForTimeout(1000);
  const b = await frame();
  const mean = a.luma.reduce((s, x) => s + x, 0) / a.luma.length;
  const spread = Math.sqrt(a.luma.reduce((s, x) => s + (x - mean) ** 2, 0) / a.luma.length);
  const changed = a.luma.reduce((s, x, i) => s + Math.abs(x - b.luma[i]), 0) / a.luma.length;
  report.picture = { spread, changed, playing: b.playing, advanced: b.time - a.time };
  await page.screenshot({ path: args.screenshot, fullPage: true });
} catch (e) {
  report.errors.push(String(e));
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
