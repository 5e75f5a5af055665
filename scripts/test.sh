#!/usr/bin/env bash
# Every check of bfrope, from a fresh Debian 12 machine: installs what the tests need (Mesa
# lavapipe for GPU tests without a GPU, GNU time, the wasm32 target, clippy/rustfmt, Chromium and the
# pinned wasm-bindgen-cli for the browser tests), then runs format, lints (native and wasm32),
# docs, every Rust test and the headless-browser test of the page.
#
#   bash scripts/test.sh             everything
#   SKIP_WEB=1 bash scripts/test.sh  without the browser build and test
#
# GPU tests fail (never skip) when CI=true and no adapter exists.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
step() { printf '\n== %s (%ss)\n' "$1" "$(( $(date +%s) - start ))"; }

sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
need=()
[ -e /usr/share/vulkan/icd.d/lvp_icd.x86_64.json ] || need+=(mesa-vulkan-drivers)
ldconfig -p 2>/dev/null | grep -q libvulkan.so.1 || need+=(libvulkan1)
# /usr/bin/time measures the peak resident memory of a 1 GiB rotation (tests/cli/memory.rs).
[ -x /usr/bin/time ] || need+=(time)
if [ "${SKIP_WEB:-0}" != 1 ]; then
  [ -x /usr/bin/chromium ] || need+=(chromium chromium-driver)
fi
if [ ${#need[@]} -gt 0 ]; then
  step "apt-get install ${need[*]}"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}" >/dev/null
fi
step "rustup: wasm32 target, clippy, rustfmt"
rustup target add wasm32-unknown-unknown >/dev/null 2>&1 || rustup target add wasm32-unknown-unknown
rustup component add clippy rustfmt >/dev/null 2>&1 || true

step "cargo fmt --check"
cargo fmt --all -- --check
step "cargo clippy (native)"
cargo clippy --locked --all-targets -- -D warnings
step "cargo clippy (wasm32-unknown-unknown)"
cargo clippy --locked --lib --target wasm32-unknown-unknown -- -D warnings
step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --locked --no-deps --lib
step "cargo test (GPU tests on the first adapter: lavapipe here)"
cargo test --locked -- --nocapture

if [ "${SKIP_WEB:-0}" != 1 ]; then
  step "web: build (wasm-bindgen pinned to Cargo.lock) and headless Chromium test"
  bash web/test.sh
fi
step "all checks passed in $(( $(date +%s) - start ))s"
