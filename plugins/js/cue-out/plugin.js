// Weir manifest plugin "cue-out": the component entry for componentize-js
// (world `manifest-plugin` of wit/plugin.wit, package weir:plugin@0.1.0).
//
// The exports follow jco's conventions: a `result<T, string>` export returns T or throws the
// error string; records are objects with camelCase fields; enums are their kebab-case names;
// variants are `{ tag, val }`; u64 values arrive as BigInt.
import { log } from 'weir:plugin/host@0.1.0';
import { parseConfig, transformMedia } from './src/cueout.js';

// The config from the last successful `init`. The host calls `init` before any transform;
// the defaults apply if it runs a transform in an instance that has not seen `init`.
let config = parseConfig('');

/** A thrown value as the `err` string (only strings cross the boundary). */
function errString(e) {
  if (typeof e === 'string') return e;
  return `cue-out: ${e && e.message ? e.message : String(e)}`;
}

export function init(text) {
  try {
    config = parseConfig(text);
  } catch (e) {
    throw errString(e);
  }
  log('info', `cue-out: EXT-X-CUE-OUT/-CONT/-IN tags, style ${config.style}`);
  return { variesOn: [], failurePolicy: 'pass-through' };
}

export function transformMediaPlaylist(_ctx, cues, playlist) {
  try {
    return transformMedia(playlist, cues, config);
  } catch (e) {
    throw errString(e);
  }
}

export function transformMultivariantPlaylist(_ctx, playlist) {
  return playlist;
}

export function resolveAssetList(_ctx, _cueId) {
  throw 'no interstitials';
}
