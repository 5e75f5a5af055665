# s9conf.sh CALL "KERNEL SLICE NAME TIMEOUT" ...: conform --full --dtype f16 with bfrope-s9c
for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig >/dev/null
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=/tmp
t0=$(date +%s); c=$1; shift
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for job in "$@"; do
set -- $job
timeout $4 .bench/bfrope-s9c conform --full --dtype f16 --kernel $1 --full-slice $2 --json > $OUT/$c-conform-f16-$3.json 2> $OUT/$c-$3.err; echo f16 $1 $2 rc=$? $(( $(date +%s)-t0 ))s; tail -c 300 $OUT/$c-$3.err | tr '\r' '\n' | tail -n 2
done
