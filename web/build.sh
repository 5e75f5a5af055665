#!/usr/bin/env bash
# Builds the wasm package the page needs into web/pkg/ (not committed). web/pkg/ is also the
# npm package "bfrope": package.json from web/package.template.json with the crate's version
# from Cargo.toml, web/README.md as its README, and the licence files (`npm pack` in web/pkg/).
#   bash web/build.sh
# Installs the wasm32 target and wasm-bindgen-cli (pinned to the wasm-bindgen version in
# Cargo.lock) when missing. Size-oriented release settings apply to this build only.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target-web}"
export CARGO_PROFILE_RELEASE_OPT_LEVEL="${CARGO_PROFILE_RELEASE_OPT_LEVEL:-s}"
export CARGO_PROFILE_RELEASE_LTO="${CARGO_PROFILE_RELEASE_LTO:-fat}"
export PATH="$HOME/.cargo/bin:$PATH"

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  rustup target add wasm32-unknown-unknown
fi

want=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/[^0-9.]/, ""); print; exit }' Cargo.lock)
[ -n "$want" ] || { echo "build.sh: no wasm-bindgen in Cargo.lock" >&2; exit 1; }
have=$(wasm-bindgen --version 2>/dev/null | awk '{print $2}' || true)
if [ "$have" != "$want" ]; then
  echo "installing wasm-bindgen-cli $want (found ${have:-none})"
  cargo install wasm-bindgen-cli --version "$want"
fi

cargo build --lib --release --target wasm32-unknown-unknown
rm -rf web/pkg
# --remove-name-section: the function-name section (readable stack traces in the browser's
# console) is ~180 KB of the ~720 KB module, ~50 KB gzipped; the budget below is for the code.
wasm-bindgen --target web --remove-name-section --out-dir web/pkg \
  "$CARGO_TARGET_DIR/wasm32-unknown-unknown/release/bfrope.wasm"
if command -v wasm-opt >/dev/null; then
  wasm-opt -Os --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals -o web/pkg/bfrope_bg.wasm web/pkg/bfrope_bg.wasm
fi

# The npm package around the module: the version is the crate's, read from Cargo.toml's
# [package] table.
version=$(awk '/^\[/ { in_pkg = ($0 == "[package]") }
  in_pkg && /^version *= *"/ { sub(/^version *= *"/, ""); sub(/".*/, ""); print; exit }' Cargo.toml)
echo "$version" | grep -Eq '^[0-9]+\.[0-9]+\.[0-9]+([-+][0-9A-Za-z.+-]+)?$' \
  || { echo "build.sh: no usable version in Cargo.toml's [package] (got '$version')" >&2; exit 1; }
sed "s/@VERSION@/$version/" web/package.template.json > web/pkg/package.json
cp web/README.md LICENSE-MIT LICENSE-APACHE web/pkg/
for f in bfrope.js bfrope.d.ts bfrope_bg.wasm bfrope_bg.wasm.d.ts; do
  [ -f "web/pkg/$f" ] || { echo "build.sh: wasm-bindgen did not write web/pkg/$f" >&2; exit 1; }
done
echo "web/pkg/: npm package bfrope $version"

raw=$(stat -c %s web/pkg/bfrope_bg.wasm)
gz=$(gzip -9 -c web/pkg/bfrope_bg.wasm | wc -c)
echo "web/pkg/bfrope_bg.wasm: $raw bytes, $gz bytes gzipped ($((gz / 1024)) KiB; budget 250 KB)"
[ "$gz" -le 250000 ] || echo "warning: gzipped wasm exceeds the 250 KB budget" >&2
