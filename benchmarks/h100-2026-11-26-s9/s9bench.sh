for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig >/dev/null
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=/tmp
t0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for b in s9b s9c s9b s9c; do
n=$((n+1))
.bench/bfrope-$b bench --dtypes f16 --no-decode --shapes 1x4096x32x128,4x3000x32x128,16x4096x32x128 --json > $OUT/c4-$n-$b-f16.json 2> /dev/null; echo $b rc=$? $(( $(date +%s)-t0 ))s
python3 .bench/summ.py $OUT/c4-$n-$b-f16.json 2>/dev/null | grep -v "^==" | cut -c1-150
done
