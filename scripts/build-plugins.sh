#!/usr/bin/env bash
# Builds every Rust plugin in plugins/ (each folder with a Cargo.toml) to a WebAssembly
# component at plugins/dist/<name>.wasm, checks each one, then runs the JavaScript and
# Python plugins' build scripts, which also write into plugins/dist/.
#
# Checks per component: `wasm-tools validate`, and `wasm-tools component wit` shows the
# four exports of weir:plugin's manifest-plugin world and no import other than
# weir:plugin/host (plus weir:plugin/types, the interface its types live in).
#
# Idempotent and cheap on repeat runs: a component newer than everything it is built from
# (its crate, guest-sdk/, wit/, the workspace manifest and lock) is left alone, and cargo is
# not even started when all are current. A component is written to dist/ only once it has
# passed its checks.
#
# Toolchain (shared/notes/wasm-guests.md; guest-sdk/README.md has the install lines):
# Debian's rustc/cargo 1.96 (`rustc-web`, `cargo-web`, `rust-web-src`) at /usr/bin, which
# builds std for wasm32 with -Zbuild-std; wasm-ld from lld-14; wasm-tools 1.263.
#
# Environment:
#   WEIR_PLUGINS_TARGET  cargo target folder (default: <repo>/target/plugins, kept apart
#                        from the host's, which rustup's 1.95 builds)
#   WEIR_GUEST_CARGO     the cargo that builds guests (default: /usr/bin/cargo)
#   WASM_TOOLS           the wasm-tools binary (default: from PATH, else ~/.cargo/bin)
#   WEIR_PLUGINS_SKIP_OTHERS=1  do not run the JS/Python build scripts
set -euo pipefail

REPO="$(cd "$(dirname "$0")/.." && pwd)"
PLUGINS="$REPO/plugins"
DIST="$PLUGINS/dist"
export CARGO_TARGET_DIR="${WEIR_PLUGINS_TARGET:-$REPO/target/plugins}"
CARGO="${WEIR_GUEST_CARGO:-/usr/bin/cargo}"
WASM_TOOLS="${WASM_TOOLS:-$(command -v wasm-tools || echo "$HOME/.cargo/bin/wasm-tools")}"
TRIPLE=wasm32-unknown-unknown

die() {
    echo "build-plugins: $*" >&2
    exit 1
}

[[ -x "$CARGO" ]] || die "no $CARGO: apt-get install -y rustc-web cargo-web rust-web-src lld"
command -v wasm-ld >/dev/null || die "no wasm-ld: apt-get install -y lld"
[[ -x "$WASM_TOOLS" ]] || die "no wasm-tools: cargo install wasm-tools --locked"

mkdir -p "$DIST"

# Everything every plugin is built from.
SHARED=("$REPO/wit" "$REPO/guest-sdk/src" "$REPO/guest-sdk/Cargo.toml"
    "$PLUGINS/Cargo.toml" "$PLUGINS/Cargo.lock" "$PLUGINS/.cargo")

# name -> cargo package, for every plugin crate; those whose component is out of date.
names=()
stale=()
for manifest in "$PLUGINS"/*/Cargo.toml; do
    dir="$(dirname "$manifest")"
    name="$(basename "$dir")"
    names+=("$name")
    out="$DIST/$name.wasm"
    if [[ -f "$out" ]] &&
        [[ -z "$(find "${SHARED[@]}" "$dir" -path "$dir/target" -prune -o -newer "$out" -print -quit 2>/dev/null)" ]]; then
        echo "up to date  plugins/dist/$name.wasm"
    else
        stale+=("$name")
    fi
done
[[ ${#names[@]} -gt 0 ]] || die "no plugin crates in $PLUGINS"

check_component() {
    local file="$1" name="$2" wit imports export
    "$WASM_TOOLS" validate "$file" || die "$name: wasm-tools validate failed"
    wit="$("$WASM_TOOLS" component wit "$file")" || die "$name: wasm-tools component wit failed"
    # The component's own world comes first; its imports are the lines "  import ...;".
    imports="$(printf '%s\n' "$wit" | sed -n 's/^  import \(.*\);$/\1/p')"
    while IFS= read -r import; do
        case "$import" in
            "" | "weir:plugin/host@0.1.0" | "weir:plugin/types@0.1.0") ;;
            *) die "$name: imports $import (only weir:plugin/host is allowed)" ;;
        esac
    done <<<"$imports"
    for export in init transform-media-playlist transform-multivariant-playlist resolve-asset-list; do
        printf '%s\n' "$wit" | grep -q "^  export $export: func" || die "$name: does not export $export"
    done
}

if [[ ${#stale[@]} -gt 0 ]]; then
    packages=()
    for name in "${stale[@]}"; do
        packages+=(-p "weir-plugin-$name")
    done
    echo "building    ${stale[*]} (cargo, release, $TRIPLE, into $CARGO_TARGET_DIR)"
    start=$SECONDS
    (
        cd "$PLUGINS"
        # Debian's toolchain first, so cargo runs its rustc and not rustup's proxy.
        PATH="/usr/bin:$PATH" RUSTC_BOOTSTRAP=1 \
            CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld \
            "$CARGO" build --locked --release --target "$TRIPLE" \
            -Zbuild-std=std,panic_abort "${packages[@]}"
    )
    echo "built       in $((SECONDS - start)) s"
    for name in "${stale[@]}"; do
        core="$CARGO_TARGET_DIR/$TRIPLE/release/weir_plugin_${name//-/_}.wasm"
        [[ -f "$core" ]] || die "$name: cargo wrote no $core"
        tmp="$DIST/.$name.wasm.tmp"
        "$WASM_TOOLS" component new "$core" -o "$tmp" || die "$name: wasm-tools component new failed"
        check_component "$tmp" "$name"
        mv -f "$tmp" "$DIST/$name.wasm"
        echo "wrote       plugins/dist/$name.wasm ($(wc -c <"$DIST/$name.wasm") bytes)"
    done
fi

# The other languages' plugins: one build script per language, or one per plugin.
if [[ "${WEIR_PLUGINS_SKIP_OTHERS:-0}" != 1 ]]; then
    for lang in js python; do
        scripts=()
        if [[ -x "$PLUGINS/$lang/build.sh" ]]; then
            scripts=("$PLUGINS/$lang/build.sh")
        else
            for s in "$PLUGINS/$lang"/*/build.sh; do
                [[ -x "$s" ]] && scripts+=("$s")
            done
        fi
        for s in "${scripts[@]}"; do
            echo "running     ${s#"$REPO/"}"
            "$s"
        done
    done
fi
