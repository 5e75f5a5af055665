for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig >/dev/null
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=/tmp
B=.bench/bfrope-s9; t0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
S=$1; N=$2
timeout 560 $B conform --full --dtype bf16 --kernel halves --full-slice $S --json > $OUT/s9-conform-bf16-halves-$N.json 2> $OUT/s9-$N.err; echo bf16 halves $S rc=$? $(( $(date +%s)-t0 ))s; tail -c 600 $OUT/s9-$N.err
