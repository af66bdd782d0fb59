// The dashboard's WebRTC controls, as a person uses them: "Publish from this browser"
// (camera over WHIP with a stream key), then "WebRTC preview" of that stream (WHEP) in the
// player. Prints one JSON report: the statuses the page shows, the preview's latency text,
// and whether the preview's picture moves. Run inside a private network namespace.
//
//   node dashboard-webrtc.mjs --page http://10.77.0.1:8080/ --key KEY --stream NAME
import { chromium } from 'playwright-core';

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : 'true']);
    return acc;
  }, []),
);
const origin = new URL(args.page).origin;
const browser = await chromium.launch({
  executablePath: args.chromium || process.env.CHROMIUM || '/usr/bin/chromium',
  args: [
    '--use-fake-device-for-media-stream',
    '--use-fake-ui-for-media-stream',
    `--unsafely-treat-insecure-origin-as-secure=${origin}`,
    '--autoplay-policy=no-user-gesture-required',
  ],
});
const report = {};
try {
  const page = await browser.newPage();
  await page.goto(args.page);
  report.whipVisible = await page.isVisible('#whip');
  await page.fill('#whipkey', args.key);
  await page.click('#whipform button');
  await page.waitForFunction(() => /publishing|WHIP \d/.test(document.getElementById('whipstatus').textContent), null, { timeout: 15000 });
  report.whipStatus = await page.textContent('#whipstatus');
  // The stream appears once its first part is out.
  await page.waitForTimeout(4000);
  await page.fill('#url', `/live/${args.stream}/master.m3u8`);
  await page.click('#webrtc');
  await page.waitForFunction(() => /WebRTC/.test(document.getElementById('latency').textContent), null, { timeout: 15000 });
  await page.waitForTimeout(3000);
  report.status = await page.textContent('#status');
  report.latency = await page.textContent('#latency');
  const frames = () => page.evaluate(() => document.getElementById('v').getVideoPlaybackQuality().totalVideoFrames);
  const a = await frames();
  await page.waitForTimeout(2000);
  report.framesIn2s = (await frames()) - a;
  report.size = await page.evaluate(() => [document.getElementById('v').videoWidth, document.getElementById('v').videoHeight]);
  await page.click('#whipstop');
  report.whipStopped = await page.textContent('#whipstatus');
} catch (e) {
  report.error = String(e);
}
await browser.close();
console.log(JSON.stringify(report));
