#!/usr/bin/env bash
# Builds the cue-out plugin (JavaScript, componentize-js) into <repo>/plugins/dist/cue-out.wasm.
#
# Needs node 20 and npm; installs the pinned toolchain with `npm ci` (package-lock.json).
# Skips the build when the output is newer than every source; FORCE=1 rebuilds anyway.
# The component has no WASI imports: every componentize-js feature that needs WASI is
# disabled, and the build fails if the output imports anything but weir:plugin.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
name=cue-out
out="$repo/plugins/dist/$name.wasm"
sources=("$here/plugin.js" "$here/src" "$here/package.json" "$here/package-lock.json" "$here/build.sh" "$repo/wit")

size() { printf '%s: %s bytes (%s MiB)\n' "${1#"$repo"/}" "$(stat -c %s "$1")" "$(awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f", b / 1048576 }')"; }

if [[ ${FORCE:-0} != 1 && -f $out && -z "$(find "${sources[@]}" -type f -newer "$out" -print -quit)" ]]; then
  echo "$name: up to date"
  size "$out"
  exit 0
fi

command -v node >/dev/null || { echo "$name: node (20) is required" >&2; exit 1; }
command -v npm >/dev/null || { echo "$name: npm is required" >&2; exit 1; }

cd "$here"
# npm ci only when node_modules is missing or older than the lockfile.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
  npm ci --no-audit --no-fund --loglevel=error
fi

mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
start=$SECONDS
node_modules/.bin/componentize-js plugin.js --wit "$repo/wit" --world-name manifest-plugin \
  -d stdio random clocks http fetch-event -o "$tmp"

# The host accepts only the weir:plugin imports (host.log; `types` carries no functions).
wit="$(node_modules/.bin/jco wit "$tmp")"
imports="$(grep -E '^\s*import ' <<<"$wit" || true)"
if grep -vqE '^\s*import weir:plugin/(host|types)@0\.1\.[0-9]+;$' <<<"$imports"; then
  echo "$name: the component imports more than weir:plugin:" >&2
  echo "$imports" >&2
  exit 1
fi
for f in init transform-media-playlist transform-multivariant-playlist resolve-asset-list; do
  grep -qE "^\s*export $f: func" <<<"$wit" || { echo "$name: export $f is missing" >&2; exit 1; }
done

mv -f "$tmp" "$out"
trap - EXIT
echo "$name: built in $((SECONDS - start)) s"
size "$out"
