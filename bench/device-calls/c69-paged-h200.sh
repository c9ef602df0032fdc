#!/bin/bash
# Device call 69 (round 32, ≤ 150 s): call 66 again, asked of the H200 (it got an H100 again): the paged decode
# with one base a run (the default since round 32) beside round 31's rows through row() (__rows) and
# the separate lookups (__separate), bf16 and int8 pages of 16 / 64 / 256 against the contiguous
# kernel (bench/cuda/paged-decode.py, outputs checked first).
# Prepare: npm run build && node bench/cuda/paged-decode-emit.mjs; carry bench/build/cuda-paged;
# returns $OUT/c69/.
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
O="$OUT/c69"
mkdir -p "$O"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > "$O/gpu.txt"
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
timeout 150 python3 bench/cuda/paged-decode.py --build bench/build/cuda-paged --out "$O" > "$O/paged.log" 2>&1
echo "paged exit $? at $(($(date +%s) - T0)) s"
grep "^|" "$O/paged.log" | grep -v "^| ---"
tar -C "$OUT" -cJf "$OUT/c69.tar.xz" c69
echo "done at $(($(date +%s) - T0)) s"
