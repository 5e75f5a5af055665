#!/usr/bin/env bash
# Browser test of the page: headless Chromium loads web/, the self-check must pass with
# 0 mismatches and every canvas must have drawn. Screenshot: out/web/screenshot.png. Then the
# npm package (web/pkg/) is packed, installed from its tarball into a fresh folder and used from
# Node and from a page in headless Chromium (test/package.mjs). Then the wasm library's own
# wasm-bindgen-test suite (tests/wasm.rs) runs in headless Chromium.
#   bash web/test.sh            (builds web/pkg first unless SKIP_BUILD=1)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
[ "${SKIP_BUILD:-0}" = 1 ] && [ -f web/pkg/bfrope.js ] && [ -f web/pkg/package.json ] || bash web/build.sh

if ! [ -x /usr/bin/chromium ]; then
  echo "installing chromium and chromium-driver"
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && $sudo_cmd apt-get install -y -qq chromium chromium-driver
fi
(cd web && { [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund; })

port="${PORT:-8123}"
python3 -m http.server "$port" --bind 127.0.0.1 --directory web >/tmp/bfrope-web-serve.log 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT
for _ in $(seq 50); do curl -sf "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.1; done

export OUT_DIR="${OUT_DIR:-$root/out/web}"
# The conformance vectors the page grades a results file against (the f16 set), from the CLI.
cargo build --locked --quiet --bin bfrope
vectors_tmp="$(mktemp -d)"
trap 'kill "$server" 2>/dev/null || true; rm -rf "$vectors_tmp"' EXIT
"${CARGO_TARGET_DIR:-$root/target}/debug/bfrope" vectors -o "$vectors_tmp/v" --dtype f16
export VECTORS_DIR="$vectors_tmp/v"
echo "== WebGPU (SwiftShader when there is no GPU) =="
(cd web && node test/page.mjs "http://127.0.0.1:$port/")
echo "== no WebGPU: the CPU fallback =="
(cd web && NO_WEBGPU=1 node test/page.mjs "http://127.0.0.1:$port/")
echo "== the npm package: npm pack of web/pkg, installed offline into a fresh folder, used from Node and Chromium =="
(cd web && node test/package.mjs)
echo "== wasm-bindgen-test: the wasm library in headless Chromium (tests/wasm.rs) =="
# Browser flags (WebGPU through SwiftShader) come from webdriver.json in the crate root; the
# runner is wasm-bindgen-cli's, installed by web/build.sh at the version Cargo.lock pins.
(
  unset VK_DRIVER_FILES VK_ICD_FILENAMES
  export PATH="$HOME/.cargo/bin:$PATH"
  export CARGO_TARGET_DIR="${WASM_TEST_TARGET_DIR:-$root/target-wasmtest}"
  export CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}"
  export CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner
  export WASM_BINDGEN_TEST_TIMEOUT="${WASM_BINDGEN_TEST_TIMEOUT:-300}"
  cargo test --locked --target wasm32-unknown-unknown --test wasm -- --nocapture
)
