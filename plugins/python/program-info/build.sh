#!/usr/bin/env bash
# Builds the program-info plugin (Python, componentize-py) into <repo>/plugins/dist/program-info.wasm.
#
# Needs python3 (>= 3.11) with the venv module; makes plugins/python/.venv (shared by the
# Python plugins, gitignored) with the pinned componentize-py from requirements.txt.
# Skips the build when the output is newer than every source; FORCE=1 rebuilds anyway.
# `--stub-wasi` leaves the component without WASI imports; the build fails if it imports
# anything but weir:plugin.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
name=program-info
out="$repo/plugins/dist/$name.wasm"
venv="$here/../.venv"
sources=("$here/src" "$here/requirements.txt" "$here/build.sh" "$repo/wit")

size() { printf '%s: %s bytes (%s MiB)\n' "${1#"$repo"/}" "$(stat -c %s "$1")" "$(awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f", b / 1048576 }')"; }

if [[ ${FORCE:-0} != 1 && -f $out && -z "$(find "${sources[@]}" -type f -newer "$out" -not -name "*.pyc" -print -quit)" ]]; then
  echo "$name: up to date"
  size "$out"
  exit 0
fi

python="${PYTHON:-python3}"
command -v "$python" >/dev/null || { echo "$name: $python is required" >&2; exit 1; }

# The venv: made once, (re)installed when requirements.txt changes.
if [[ ! -x $venv/bin/python ]] || ! "$venv/bin/python" -c '' 2>/dev/null; then
  rm -rf "$venv"
  "$python" -m venv "$venv"
fi
if ! cmp -s "$here/requirements.txt" "$venv/.requirements.txt"; then
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/.requirements.txt"
fi

mkdir -p "$(dirname "$out")"
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT
start=$SECONDS
# VIRTUAL_ENV: componentize-py looks for site-packages there (the venv's own, not the system's).
VIRTUAL_ENV="$(cd "$venv" && pwd)" "$venv/bin/componentize-py" -d "$repo/wit" -w manifest-plugin \
  componentize --stub-wasi -p "$here/src" app -o "$tmp" >/dev/null

# The host accepts only the weir:plugin imports (host.log; `types` carries no functions).
# componentize-py also exports an internal `exports` interface, which the host ignores.
if command -v wasm-tools >/dev/null; then
  wit="$(wasm-tools component wit "$tmp")"
  imports="$(grep -E '^\s*import ' <<<"$wit" || true)"
  if grep -vqE '^\s*import weir:plugin/(host|types)@0\.1\.[0-9]+;$' <<<"$imports"; then
    echo "$name: the component imports more than weir:plugin:" >&2
    echo "$imports" >&2
    exit 1
  fi
  for f in init transform-media-playlist transform-multivariant-playlist resolve-asset-list; do
    grep -qE "^\s*export $f: func" <<<"$wit" || { echo "$name: export $f is missing" >&2; exit 1; }
  done
else
  echo "$name: wasm-tools not found: imports not checked (cargo install wasm-tools --locked)"
fi

mv -f "$tmp" "$out"
trap - EXIT
echo "$name: built in $((SECONDS - start)) s"
size "$out"
