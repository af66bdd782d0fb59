// Unit tests of the pure logic: `node --test` (node 20+), no build needed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig, secs, breaksFromCues, transformMedia } from '../src/cueout.js';

const T0 = Date.parse('2026-11-25T16:00:00.000Z');
const pdt = (ms) => new Date(ms).toISOString();

/**
 * A playlist shaped like weir's: 2 s segments from T0 + 2 s * first, a PDT on every segment,
 * parts on the last `partsOn` complete segments, a parts-only segment, a preload hint and a
 * rendition report. With `skip`, the first `skip` segments are replaced by EXT-X-SKIP.
 */
function playlist({ first = 0, count = 6, partsOn = 2, partial = 2, skip = 0 } = {}) {
  const l = [
    '#EXTM3U',
    '#EXT-X-VERSION:9',
    '#EXT-X-TARGETDURATION:2',
    '#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,PART-HOLD-BACK=1.500,CAN-SKIP-UNTIL=12.000',
    '#EXT-X-PART-INF:PART-TARGET=0.50000',
    `#EXT-X-MEDIA-SEQUENCE:${first}`,
  ];
  if (skip) l.push(`#EXT-X-SKIP:SKIPPED-SEGMENTS=${skip}`);
  l.push('#EXT-X-MAP:URI="init0.mp4"');
  for (let i = skip; i < count; i++) {
    const n = first + i;
    l.push(`#EXT-X-PROGRAM-DATE-TIME:${pdt(T0 + n * 2000)}`);
    if (i >= count - partsOn) {
      for (let p = 0; p < 4; p++) l.push(`#EXT-X-PART:DURATION=0.50000,URI="seg${n}.${p}.m4s"${p === 0 ? ',INDEPENDENT=YES' : ''}`);
    }
    l.push('#EXTINF:2.00000,', `seg${n}.m4s`);
  }
  const n = first + count;
  if (partial) {
    l.push(`#EXT-X-PROGRAM-DATE-TIME:${pdt(T0 + n * 2000)}`);
    for (let p = 0; p < partial; p++) l.push(`#EXT-X-PART:DURATION=0.50000,URI="seg${n}.${p}.m4s"${p === 0 ? ',INDEPENDENT=YES' : ''}`);
  }
  l.push(`#EXT-X-PRELOAD-HINT:TYPE=PART,URI="seg${n}.${partial}.m4s"`);
  l.push(`#EXT-X-RENDITION-REPORT:URI="../src/index.m3u8",LAST-MSN=${n},LAST-PART=${partial - 1}`);
  return l.join('\n') + '\n';
}

const out = (id, startS, durS, extra = {}) => ({
  id,
  kind: 'splice-insert',
  outOfNetwork: true,
  startMs: BigInt(T0 + Math.round(startS * 1000)),
  durationMs: durS === undefined ? undefined : BigInt(Math.round(durS * 1000)),
  endMs: undefined,
  segmentationType: undefined,
  section: new Uint8Array(),
  ...extra,
});

const added = (before, after) => {
  // The inserted lines, and a check that removing them gives back the input byte for byte.
  const a = after.split('\n');
  const tags = a.filter((l) => l.startsWith('#EXT-X-CUE-'));
  assert.equal(a.filter((l) => !l.startsWith('#EXT-X-CUE-')).join('\n'), before);
  return tags;
};

/** For each segment URI (and the preload hint), the CUE tags right before its block. */
function tagsBySegment(text) {
  const result = {};
  let pending = [];
  for (const line of text.split('\n')) {
    if (line.startsWith('#EXT-X-CUE-')) pending.push(line);
    else if (line.startsWith('#EXT-X-PROGRAM-DATE-TIME:')) {
      result[line.slice(25)] = pending;
      pending = [];
    }
  }
  return result;
}

test('config: empty means defaults', () => {
  assert.deepEqual(parseConfig(''), { style: 'duration-attr' });
  assert.deepEqual(parseConfig('  \n'), { style: 'duration-attr' });
  assert.deepEqual(parseConfig('{}'), { style: 'duration-attr' });
  assert.deepEqual(parseConfig('{"style":"plain"}'), { style: 'plain' });
  assert.deepEqual(parseConfig('{"style":"duration-attr"}'), { style: 'duration-attr' });
});

test('config: bad config is rejected with a clear message', () => {
  assert.throws(() => parseConfig('{'), (e) => typeof e === 'string' && e.startsWith('cue-out: config is not valid JSON'));
  assert.throws(() => parseConfig('[]'), /must be a JSON object/);
  assert.throws(() => parseConfig('null'), /must be a JSON object/);
  assert.throws(() => parseConfig('{"style":"scte"}'), /"style" must be one of "duration-attr", "plain", got "scte"/);
  assert.throws(() => parseConfig('{"stlye":"plain"}'), /unknown config key "stlye"/);
});

test('secs: three decimals', () => {
  assert.equal(secs(30000), '30.000');
  assert.equal(secs(1500), '1.500');
  assert.equal(secs(7), '0.007');
});

test('breaks: out cues only, end-ms over duration-ms, overlaps and repeats dropped', () => {
  const b = breaksFromCues([
    out(1, 10, 30),
    out(2, 10, 30), // same splice again
    out(3, 20, 5), // inside break 1
    { ...out(4, 50, 30), outOfNetwork: false }, // an in cue
    out(5, 60, 30, { endMs: BigInt(T0 + 75000) }), // returned early
    out(6, 100, undefined), // open, closed by the next one
    out(7, 130, undefined), // open
  ]);
  assert.deepEqual(
    b.map((x) => [x.id, x.start - T0, x.end === Infinity ? 'open' : x.end - T0, x.duration]),
    [
      [1, 10000, 40000, 30000],
      [5, 60000, 75000, 15000],
      [6, 100000, 130000, 30000],
      [7, 130000, 'open', undefined],
    ],
  );
});

test('no cues, in cues only, or a future break: the playlist is returned unchanged', () => {
  const p = playlist();
  assert.equal(transformMedia(p, [], parseConfig('')), p);
  assert.equal(transformMedia(p, [{ ...out(1, 4, 10), outOfNetwork: false }], parseConfig('')), p);
  assert.equal(transformMedia(p, [out(1, 100, 10)], parseConfig('')), p);
});

test('a break inside the window: CUE-OUT, CUE-OUT-CONT, CUE-IN before the right segments', () => {
  const p = playlist(); // segments 0..5 at 0,2,..,10 s, parts-only segment 6 at 12 s
  const r = transformMedia(p, [out(9, 4.5, 5)], parseConfig(''));
  assert.deepEqual(added(p, r), [
    '#EXT-X-CUE-OUT:DURATION=5.000',
    '#EXT-X-CUE-OUT-CONT:ElapsedTime=1.500,Duration=5.000',
    '#EXT-X-CUE-OUT-CONT:ElapsedTime=3.500,Duration=5.000',
    '#EXT-X-CUE-IN',
  ]);
  assert.ok(r.includes('seg1.m4s\n#EXT-X-CUE-OUT:DURATION=5.000\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:04.000Z\n'), r);
  assert.ok(r.includes('seg2.m4s\n#EXT-X-CUE-OUT-CONT:ElapsedTime=1.500,Duration=5.000\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:06.000Z\n'), r);
  assert.ok(r.includes('seg3.m4s\n#EXT-X-CUE-OUT-CONT:ElapsedTime=3.500,Duration=5.000\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:08.000Z\n'), r);
  assert.ok(r.includes('seg4.m4s\n#EXT-X-CUE-IN\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:10.000Z\n'), r);
});

test('plain style', () => {
  const p = playlist();
  const r = transformMedia(p, [out(9, 4, 4)], parseConfig('{"style":"plain"}'));
  assert.deepEqual(added(p, r), ['#EXT-X-CUE-OUT:4.000', '#EXT-X-CUE-OUT-CONT:ElapsedTime=2.000,Duration=4.000', '#EXT-X-CUE-IN']);
});

test('end-ms, when the in cue has arrived, sets the duration and the CUE-IN', () => {
  const p = playlist();
  const r = transformMedia(p, [out(9, 2, 30, { endMs: BigInt(T0 + 6000) })], parseConfig(''));
  assert.deepEqual(added(p, r), ['#EXT-X-CUE-OUT:DURATION=4.000', '#EXT-X-CUE-OUT-CONT:ElapsedTime=2.000,Duration=4.000', '#EXT-X-CUE-IN']);
  assert.ok(r.includes('seg2.m4s\n#EXT-X-CUE-IN\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:06.000Z\n'), r);
});

test('the first segment of the first break goes right after the header EXT-X-MAP', () => {
  const p = playlist();
  const r = transformMedia(p, [out(9, 0, 2)], parseConfig(''));
  assert.ok(r.includes('#EXT-X-MAP:URI="init0.mp4"\n#EXT-X-CUE-OUT:DURATION=2.000\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:00.000Z\n'), r);
  assert.deepEqual(added(p, r), ['#EXT-X-CUE-OUT:DURATION=2.000', '#EXT-X-CUE-IN']);
});

test('a break that started before the window: CUE-OUT-CONT from the first segment', () => {
  const p = playlist({ first: 10 }); // segments at 20..30 s
  const r = transformMedia(p, [out(9, 15, 10)], parseConfig(''));
  assert.deepEqual(added(p, r), [
    '#EXT-X-CUE-OUT-CONT:ElapsedTime=5.000,Duration=10.000',
    '#EXT-X-CUE-OUT-CONT:ElapsedTime=7.000,Duration=10.000',
    '#EXT-X-CUE-OUT-CONT:ElapsedTime=9.000,Duration=10.000',
    '#EXT-X-CUE-IN',
  ]);
});

test('a break that ended just before the window: CUE-IN on the first segment', () => {
  const p = playlist({ first: 10 });
  assert.deepEqual(added(p, transformMedia(p, [out(9, 10, 9.5)], parseConfig(''))), ['#EXT-X-CUE-IN']);
  assert.deepEqual(added(p, transformMedia(p, [out(9, 10, 10)], parseConfig(''))), ['#EXT-X-CUE-IN']);
  // Ended more than a target duration before: nothing left to mark.
  assert.equal(transformMedia(p, [out(9, 10, 7.5)], parseConfig('')), p);
});

test('a delta update (EXT-X-SKIP) gets the same tags on the segments it lists', () => {
  const cues = [out(1, 2.5, 6), out(2, 14, 20)];
  for (const skip of [1, 2, 3, 4, 5]) {
    const full = transformMedia(playlist({ count: 10, partial: 3 }), cues, parseConfig(''));
    const delta = transformMedia(playlist({ count: 10, partial: 3, skip }), cues, parseConfig(''));
    const f = tagsBySegment(full);
    const d = tagsBySegment(delta);
    assert.ok(Object.keys(d).length > 0);
    for (const [date, tags] of Object.entries(d)) assert.deepEqual(tags, f[date], `skip ${skip}, segment at ${date}`);
  }
});

test('a break that starts in the parts-only segment is marked before its PDT', () => {
  const p = playlist(); // parts-only segment at 12 s with two 0.5 s parts
  const r = transformMedia(p, [out(9, 12.7, 30)], parseConfig(''));
  assert.deepEqual(added(p, r), ['#EXT-X-CUE-OUT:DURATION=30.000']);
  assert.ok(r.includes('seg5.m4s\n#EXT-X-CUE-OUT:DURATION=30.000\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:12.000Z\n#EXT-X-PART:'), r);
  // Not yet published: beyond the last part.
  assert.equal(transformMedia(p, [out(9, 13.2, 30)], parseConfig('')), p);
});

test('a parts-only segment without its own PDT still gets its tag before its first line', () => {
  const p = playlist().replace('#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:12.000Z\n', '');
  const r = transformMedia(p, [out(9, 11, 30)], parseConfig(''));
  assert.deepEqual(added(p, r), ['#EXT-X-CUE-OUT:DURATION=30.000', '#EXT-X-CUE-OUT-CONT:ElapsedTime=1.000,Duration=30.000']);
  assert.ok(r.includes('seg5.m4s\n#EXT-X-CUE-OUT-CONT:ElapsedTime=1.000,Duration=30.000\n#EXT-X-PART:DURATION=0.50000,URI="seg6.0.m4s"'), r);
});

test('tags go after EXT-X-DISCONTINUITY and EXT-X-MAP, before the PDT', () => {
  const p = playlist().replace(
    '#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:06.000Z\n',
    '#EXT-X-DISCONTINUITY\n#EXT-X-MAP:URI="init1.mp4"\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:06.000Z\n',
  );
  const r = transformMedia(p, [out(9, 6, 2)], parseConfig(''));
  assert.ok(r.includes('#EXT-X-MAP:URI="init1.mp4"\n#EXT-X-CUE-OUT:DURATION=2.000\n#EXT-X-PROGRAM-DATE-TIME:2026-11-25T16:00:06.000Z\n'), r);
});

test('an open break (no duration, no end): CUE-OUT and CONT without durations, no CUE-IN', () => {
  const p = playlist();
  const r = transformMedia(p, [out(9, 8, undefined)], parseConfig('{"style":"plain"}'));
  assert.deepEqual(added(p, r), ['#EXT-X-CUE-OUT', '#EXT-X-CUE-OUT-CONT:ElapsedTime=2.000', '#EXT-X-CUE-OUT-CONT:ElapsedTime=4.000']);
});

test('back-to-back breaks', () => {
  const p = playlist();
  // Break 1 ends at 5 s inside segment 2 [4, 6), break 2 starts at 5.5 s in the same segment.
  const r = transformMedia(p, [out(1, 0, 5), out(2, 5.5, 4)], parseConfig(''));
  assert.deepEqual(added(p, r), [
    '#EXT-X-CUE-OUT:DURATION=5.000',
    '#EXT-X-CUE-OUT-CONT:ElapsedTime=2.000,Duration=5.000',
    '#EXT-X-CUE-IN',
    '#EXT-X-CUE-OUT:DURATION=4.000',
    '#EXT-X-CUE-OUT-CONT:ElapsedTime=0.500,Duration=4.000',
    '#EXT-X-CUE-OUT-CONT:ElapsedTime=2.500,Duration=4.000',
    '#EXT-X-CUE-IN',
  ]);
});

test('CRLF line endings are kept', () => {
  const p = playlist().replace(/\n/g, '\r\n');
  const r = transformMedia(p, [out(9, 4, 2)], parseConfig(''));
  assert.ok(r.includes('seg1.m4s\r\n#EXT-X-CUE-OUT:DURATION=2.000\r\n#EXT-X-PROGRAM-DATE-TIME:'), JSON.stringify(r));
  assert.equal(r.replace(/#EXT-X-CUE-[^\r]*\r\n/g, ''), p);
});

test('not a playlist', () => {
  assert.throws(() => transformMedia('hello', [], parseConfig('')), /not an m3u8 playlist/);
});
