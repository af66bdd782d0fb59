// Pure logic of the cue-out plugin: config parsing and the media playlist rewrite.
// No component imports here, so `node --test` can load this module directly; the component
// entry (../plugin.js) wraps it.

/** Tag styles for the opening tag: `#EXT-X-CUE-OUT:DURATION=30.000` or `#EXT-X-CUE-OUT:30.000`. */
export const STYLES = ['duration-attr', 'plain'];

const DEFAULT_CONFIG = Object.freeze({ style: 'duration-attr' });

/**
 * Parses the plugin config: JSON `{"style": "duration-attr" | "plain"}`; an empty (or blank)
 * string means the defaults. Throws a string that says what is wrong.
 */
export function parseConfig(text) {
  if (typeof text !== 'string' || text.trim() === '') {
    return { ...DEFAULT_CONFIG };
  }
  let value;
  try {
    value = JSON.parse(text);
  } catch (e) {
    throw `cue-out: config is not valid JSON: ${e && e.message ? e.message : e}`;
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw 'cue-out: config must be a JSON object, e.g. {"style":"duration-attr"}';
  }
  const config = { ...DEFAULT_CONFIG };
  for (const [key, v] of Object.entries(value)) {
    if (key === 'style') {
      if (!STYLES.includes(v)) {
        throw `cue-out: config "style" must be one of ${STYLES.map((s) => `"${s}"`).join(', ')}, got ${JSON.stringify(v)}`;
      }
      config.style = v;
    } else {
      throw `cue-out: unknown config key ${JSON.stringify(key)} (known: "style")`;
    }
  }
  return config;
}

/** Milliseconds as seconds with exactly three decimals, the way weir writes DATERANGE durations. */
export function secs(ms) {
  const n = Math.max(0, Math.round(ms));
  return `${Math.floor(n / 1000)}.${String(n % 1000).padStart(3, '0')}`;
}

function toNumber(v) {
  return v === undefined || v === null ? undefined : Number(v);
}

/**
 * The ad breaks the cues describe: out cues only, sorted by start, without overlaps.
 * `end` is `end-ms` when the in cue has arrived, else `start-ms + duration-ms`, else open
 * (`Infinity`, closed by the next break's start). `duration` is `end - start`, or `undefined`
 * while open.
 */
export function breaksFromCues(cues) {
  const outs = [];
  for (const cue of cues || []) {
    if (!cue || !cue.outOfNetwork) continue;
    const start = toNumber(cue.startMs);
    if (!Number.isFinite(start)) continue;
    const endMs = toNumber(cue.endMs);
    const durationMs = toNumber(cue.durationMs);
    let end = Infinity;
    if (endMs !== undefined) end = endMs;
    else if (durationMs !== undefined) end = start + durationMs;
    outs.push({ id: cue.id, start, end });
  }
  outs.sort((a, b) => a.start - b.start || a.id - b.id);
  const breaks = [];
  for (const b of outs) {
    const prev = breaks[breaks.length - 1];
    if (prev) {
      if (b.start === prev.start) continue; // the same splice announced twice
      if (prev.end === Infinity) prev.end = b.start; // an open break ends where the next begins
      else if (b.start < prev.end) continue; // overlaps a break with a known end: ignore
    }
    breaks.push({ ...b });
  }
  return breaks
    .filter((b) => b.end > b.start)
    .map((b) => ({ ...b, duration: b.end === Infinity ? undefined : b.end - b.start }));
}

const PDT = '#EXT-X-PROGRAM-DATE-TIME:';
const EXTINF = '#EXTINF:';
const PART = '#EXT-X-PART:';
const TARGETDURATION = '#EXT-X-TARGETDURATION:';
// Tags after which the trailing partial segment (parts only, no URI yet) is over.
const TRAILER = ['#EXT-X-PRELOAD-HINT', '#EXT-X-RENDITION-REPORT', '#EXT-X-ENDLIST'];
// Lines that belong to a segment's own block: the first of them (or its PDT) is where tags go.
const SEGMENT_CONTENT = [
  PDT,
  '#EXT-X-DATERANGE:',
  PART,
  '#EXT-X-GAP',
  '#EXT-X-BITRATE:',
  '#EXT-X-BYTERANGE:',
  '#EXT-X-KEY:',
  EXTINF,
];

const PART_DURATION = /[:,]DURATION=([^,]*)/;

/**
 * Finds the segments of a media playlist (full or delta): for each, the line index where
 * tags for it go (its `EXT-X-PROGRAM-DATE-TIME`, else its first segment line) and its
 * time range on the PDT timeline (`start`/`end` in Unix ms, `undefined` when no PDT precedes
 * it). A trailing parts-only segment counts as a segment lasting as long as its parts.
 */
export function scanSegments(lines) {
  const segments = [];
  let targetMs;
  let nextStart; // end of the previous segment, i.e. where the next one starts without a PDT
  let cur = null; // the segment being read
  const open = () => {
    if (!cur) cur = { insertAt: -1, pdtAt: -1, pdt: undefined, extinf: undefined, parts: 0 };
    return cur;
  };
  const close = (complete) => {
    const seg = cur;
    cur = null;
    if (!seg || seg.insertAt < 0) return;
    // Lines after the last segment without parts (e.g. date ranges) are no segment.
    if (!complete && seg.parts === 0) return;
    const start = seg.pdt !== undefined ? seg.pdt : nextStart;
    const dur = complete ? seg.extinf : seg.parts;
    if (dur === undefined || !Number.isFinite(dur)) {
      nextStart = undefined;
      return;
    }
    const end = start === undefined ? undefined : start + dur;
    segments.push({ insertAt: seg.pdtAt >= 0 ? seg.pdtAt : seg.insertAt, start, end, complete });
    nextStart = end;
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    if (line.startsWith(TARGETDURATION)) {
      const t = Number(line.slice(TARGETDURATION.length));
      if (Number.isFinite(t)) targetMs = t * 1000;
      continue;
    }
    if (TRAILER.some((t) => line.startsWith(t))) {
      close(false);
      continue;
    }
    if (line !== '' && !line.startsWith('#')) {
      // A segment URI: the segment is complete.
      const seg = open();
      if (seg.insertAt < 0) seg.insertAt = i;
      close(true);
      continue;
    }
    if (!SEGMENT_CONTENT.some((t) => line.startsWith(t))) continue;
    const seg = open();
    if (seg.insertAt < 0) seg.insertAt = i;
    if (line.startsWith(PDT)) {
      const t = Date.parse(line.slice(PDT.length).trim());
      if (Number.isFinite(t)) {
        seg.pdt = t;
        if (seg.pdtAt < 0) seg.pdtAt = i;
      }
    } else if (line.startsWith(EXTINF)) {
      seg.extinf = Math.round(parseFloat(line.slice(EXTINF.length)) * 1000);
    } else if (line.startsWith(PART)) {
      const m = PART_DURATION.exec(line);
      const d = m ? parseFloat(m[1]) : NaN;
      if (Number.isFinite(d)) seg.parts += Math.round(d * 1000);
    }
  }
  close(false);
  return { segments, targetMs };
}

function cueOutTag(b, style) {
  if (b.duration === undefined) return '#EXT-X-CUE-OUT';
  return style === 'plain' ? `#EXT-X-CUE-OUT:${secs(b.duration)}` : `#EXT-X-CUE-OUT:DURATION=${secs(b.duration)}`;
}

function contTag(b, at) {
  const elapsed = `ElapsedTime=${secs(at - b.start)}`;
  return b.duration === undefined ? `#EXT-X-CUE-OUT-CONT:${elapsed}` : `#EXT-X-CUE-OUT-CONT:${elapsed},Duration=${secs(b.duration)}`;
}

const CUE_IN = '#EXT-X-CUE-IN';

/**
 * The tags to insert, as [line index, [tags]] pairs in playlist order.
 *
 * - `#EXT-X-CUE-OUT` before the first segment that ends after a break's start, when the break
 *   starts inside the listed window (at or after the first listed segment's start);
 * - `#EXT-X-CUE-OUT-CONT` before each later segment that starts inside the break, including the
 *   first listed one when the break started before it (mid-break joins, delta updates);
 * - `#EXT-X-CUE-IN` before the first segment that starts at or after the break's end. For the
 *   first listed segment, when the break ended less than a target duration before it (its
 *   predecessor, listed in the full playlist or skipped in a delta update, was in the break).
 */
export function planTags(lines, cues, config) {
  const style = (config && config.style) || DEFAULT_CONFIG.style;
  const breaks = breaksFromCues(cues);
  const { segments, targetMs } = scanSegments(lines);
  const plan = [];
  if (breaks.length === 0) return plan;
  let k = 0; // next break not yet opened
  let cur = null; // the break in progress
  let first = true;
  for (const seg of segments) {
    if (seg.start === undefined) continue;
    const { start: s, end: e } = seg;
    const tags = [];
    if (first) {
      first = false;
      const reach = targetMs !== undefined ? targetMs : e - s;
      let endedJustBefore = false;
      while (k < breaks.length && breaks[k].end <= s) {
        endedJustBefore = s - breaks[k].end < reach;
        k++;
      }
      if (k < breaks.length && breaks[k].start < s) {
        cur = breaks[k++];
        tags.push(contTag(cur, s));
      } else if (endedJustBefore) {
        tags.push(CUE_IN);
      }
    } else {
      if (cur && s >= cur.end) {
        tags.push(CUE_IN);
        cur = null;
      }
      // Breaks that began and ended between two listed segments (a PDT gap): nothing to mark.
      while (k < breaks.length && breaks[k].end <= s) k++;
    }
    if (k < breaks.length && breaks[k].start < e) {
      // A break starts in this segment (or in a PDT gap just before it).
      if (cur) {
        // The break in progress ends inside this segment, and the next one starts here too.
        if (tags.length && tags[tags.length - 1].startsWith('#EXT-X-CUE-OUT-CONT')) tags.pop();
        tags.push(CUE_IN);
      }
      cur = breaks[k++];
      tags.push(cueOutTag(cur, style));
      // Shorter breaks that also start in this segment cannot be shown separately.
      while (k < breaks.length && breaks[k].start < e) k++;
    } else if (cur && !tags.length) {
      tags.push(contTag(cur, s));
    }
    if (tags.length) plan.push([seg.insertAt, tags]);
  }
  return plan;
}

/**
 * Rewrites a media playlist: inserts the EXT-X-CUE-OUT / -CONT / -IN lines and leaves every
 * other line byte-identical (line endings included).
 */
export function transformMedia(playlist, cues, config) {
  if (!playlist.startsWith('#EXTM3U')) throw 'cue-out: not an m3u8 playlist';
  const eol = playlist.includes('\r\n') ? '\r\n' : '\n';
  // Split keeping the exact text: each line is compared without its line ending.
  const lines = playlist.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  const plan = planTags(lines, cues, config);
  if (plan.length === 0) return playlist;
  const raw = playlist.split('\n');
  const out = [];
  let p = 0;
  for (let i = 0; i < raw.length; i++) {
    while (p < plan.length && plan[p][0] === i) {
      for (const tag of plan[p][1]) out.push(tag + (eol === '\r\n' ? '\r' : ''));
      p++;
    }
    out.push(raw[i]);
  }
  return out.join('\n');
}
