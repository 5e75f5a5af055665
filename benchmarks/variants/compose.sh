#!/bin/sh
# Composes each variant entry into a full module as src/shaders.rs composes rope_vec4:
# bf16.wgsl, float.wgsl, rope.wgsl, rope_contiguous.wgsl, then the entry. Usage:
# compose.sh OUTDIR  (writes OUTDIR/NAME.wgsl for every benchmarks/variants/*.wgsl)
set -e
root=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$1"
for f in "$root"/benchmarks/variants/*.wgsl; do
  n=$(basename "$f")
  cat "$root/shaders/bf16.wgsl" "$root/shaders/float.wgsl" "$root/shaders/rope.wgsl" \
      "$root/shaders/rope_contiguous.wgsl" "$f" > "$1/$n"
done
