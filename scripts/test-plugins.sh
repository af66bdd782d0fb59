#!/usr/bin/env bash
# Runs the native unit and integration tests of guest-sdk (weir-guest) and of every Rust
# plugin in plugins/ with Debian's cargo 1.96, the toolchain that builds them for Wasm.
# The plugin logic is plain Rust, so it is tested on the host; scripts/build-plugins.sh
# builds and checks the components. Extra arguments go to `cargo test`.
#
# WEIR_PLUGINS_TARGET sets the cargo target folder (default: <repo>/target/plugins).
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
export CARGO_TARGET_DIR="${WEIR_PLUGINS_TARGET:-$REPO/target/plugins}"
CARGO="${WEIR_GUEST_CARGO:-/usr/bin/cargo}"
[[ -x "$CARGO" ]] || {
    echo "test-plugins: no $CARGO: apt-get install -y rustc-web cargo-web rust-web-src" >&2
    exit 1
}

cd "$REPO/plugins"
# Debian's toolchain first, so cargo runs its rustc and not rustup's proxy.
PATH="/usr/bin:$PATH" "$CARGO" test --locked --workspace "$@"
