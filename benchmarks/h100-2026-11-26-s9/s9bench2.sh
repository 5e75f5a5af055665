for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig >/dev/null
export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=/tmp
t0=$(date +%s)
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
for b in s9c s9d s9c s9d; do
n=$((n+1))
.bench/bfrope-$b bench --dtypes bf16,f16 --no-decode --shapes 1x4096x32x128,16x4096x32x128 --json > $OUT/c10-$n-$b.json 2> /dev/null; echo $b rc=$? $(( $(date +%s)-t0 ))s
python3 .bench/summ.py $OUT/c10-$n-$b.json 2>/dev/null | grep -v "^==" | grep contiguous | cut -c1-150
done
