// Smoke test of the built component, not of the logic alone: transpiles
// plugins/dist/cue-out.wasm with jco and calls its four exports from node, with a fake
// `weir:plugin/host` whose `log` records the lines. Run after ./build.sh:
//   node smoke.mjs [path/to/cue-out.wasm]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';

const here = dirname(fileURLToPath(import.meta.url));
const wasm = process.argv[2] || join(here, '../../dist/cue-out.wasm');
const dir = mkdtempSync(join(tmpdir(), 'cue-out-smoke-'));
try {
  execFileSync(join(here, 'node_modules/.bin/jco'), ['transpile', wasm, '-o', dir, '--name', 'plugin', '--instantiation', 'sync', '-q']);
  const { instantiate } = await import(pathToFileURL(join(dir, 'plugin.js')));
  const logs = [];
  const host = { log: (level, message) => logs.push(`${level}: ${message}`) };
  const plugin = instantiate((path) => new WebAssembly.Module(readFileSync(join(dir, path))), {
    'weir:plugin/host': host,
    'weir:plugin/types': {},
  });
  const err = (f) => {
    try {
      f();
    } catch (e) {
      return e.payload;
    }
    assert.fail('expected an err');
  };

  // init: defaults, a style, bad config.
  assert.deepEqual(plugin.init(''), { variesOn: [], failurePolicy: 'pass-through' });
  assert.match(err(() => plugin.init('{"style":"x"}')), /"style" must be one of/);
  assert.deepEqual(plugin.init('{"style":"plain"}'), { variesOn: [], failurePolicy: 'pass-through' });
  assert.deepEqual(logs, ['info: cue-out: EXT-X-CUE-OUT/-CONT/-IN tags, style duration-attr', 'info: cue-out: EXT-X-CUE-OUT/-CONT/-IN tags, style plain']);

  const ctx = { tenant: 't', stream: 'demo', rendition: '720p', country: undefined, headers: [], query: [], nowMs: 0n };
  const t0 = Date.parse('2026-11-25T16:00:00.000Z');
  const lines = ['#EXTM3U', '#EXT-X-VERSION:9', '#EXT-X-TARGETDURATION:2', '#EXT-X-MEDIA-SEQUENCE:0', '#EXT-X-MAP:URI="init0.mp4"'];
  for (let i = 0; i < 4; i++) lines.push(`#EXT-X-PROGRAM-DATE-TIME:${new Date(t0 + i * 2000).toISOString()}`, '#EXTINF:2.00000,', `seg${i}.m4s`);
  const playlist = lines.join('\n') + '\n';
  const cue = { id: 7, kind: 'splice-insert', outOfNetwork: true, startMs: BigInt(t0 + 2000), durationMs: 4000n, endMs: undefined, segmentationType: undefined, section: new Uint8Array([0xfc]) };

  // The instance that ran init('{"style":"plain"}') renders the plain style.
  const out = plugin.transformMediaPlaylist(ctx, [cue], playlist);
  assert.deepEqual(out.split('\n').filter((l) => l.startsWith('#EXT-X-CUE')), ['#EXT-X-CUE-OUT:4.000', '#EXT-X-CUE-OUT-CONT:ElapsedTime=2.000,Duration=4.000', '#EXT-X-CUE-IN']);
  assert.equal(plugin.transformMediaPlaylist(ctx, [], playlist), playlist);
  assert.match(err(() => plugin.transformMediaPlaylist(ctx, [], 'nope')), /not an m3u8 playlist/);
  const mv = '#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-STREAM-INF:BANDWIDTH=1\n720p/index.m3u8\n';
  assert.equal(plugin.transformMultivariantPlaylist(ctx, mv), mv);
  assert.equal(err(() => plugin.resolveAssetList(ctx, 7)), 'no interstitials');
  console.log(out);
  console.log('cue-out smoke: ok (init, transform-media-playlist, transform-multivariant-playlist, resolve-asset-list; log lines:', logs.length + ')');
} finally {
  rmSync(dir, { recursive: true, force: true });
}
