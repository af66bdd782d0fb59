#!/usr/bin/env bash
# Installs what Weir's tests need on Debian 12, idempotently: real peers from Debian
# (ffmpeg, Chromium, curl, openssl, nghttp2 for h2load) and the npm players (hls.js, Shaka,
# playwright-core, pinned in tests/e2e/package-lock.json). Building weir itself needs only
# Rust (cargo) and a C compiler.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

pkgs=(ffmpeg chromium curl openssl nodejs npm nghttp2-client fonts-dejavu-core ca-certificates)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if [ ! -d tests/e2e/node_modules/playwright-core ] || [ tests/e2e/package-lock.json -nt tests/e2e/node_modules/.package-lock.json ]; then
  echo "setup: npm ci in tests/e2e"
  npm ci --prefix tests/e2e --no-audit --no-fund
fi

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup" >&2; exit 1; }
echo "setup: ok"
