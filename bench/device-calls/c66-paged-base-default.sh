#!/bin/bash
# Device call 66 (round 32, ≤ 150 s): the paged decode with one base a run as the default
# (ATTNC_KV_PAGE_BASE 1, timed on int8 in call 65) beside round 31's rows through row() (__rows)
# and the separate lookups (__separate), bf16 and int8 pages of 16 / 64 / 256 against the
# contiguous kernel (bench/cuda/paged-decode.py, outputs checked first); then call 65's Nsight
# Compute report (carried in bench/build/ncu) printed per CUDA source line, to see where the int8
# and KIVI int4 decode kernels' instructions go.
# Prepare: npm run build && node bench/cuda/paged-decode-emit.mjs; copy call 65's quant.ncu-rep to
# bench/build/ncu/; carry bench/build/cuda-paged, bench/build/ncu; returns $OUT/c66/, $OUT/c66.tar.xz.
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
O="$OUT/c66"
mkdir -p "$O/src"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > "$O/gpu.txt"
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
timeout 150 python3 bench/cuda/paged-decode.py --build bench/build/cuda-paged --out "$O" > "$O/paged.log" 2>&1
echo "paged exit $? at $(($(date +%s) - T0)) s"
grep "^|" "$O/paged.log" | grep -v "^| ---"
if [ -f bench/build/ncu/quant.ncu-rep ]; then
  ncu -i bench/build/ncu/quant.ncu-rep --page source --csv --print-source cuda > "$O/src/cuda.csv" 2>&1
  echo "ncu source exit $?"
fi
tar -C "$OUT" -cJf "$OUT/c66.tar.xz" c66
echo "done at $(($(date +%s) - T0)) s"
