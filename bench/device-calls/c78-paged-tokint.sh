#!/bin/bash
# Device call 78 (round 35, ≤ 240 s): the paged decode table with the symmetric per-token int4 cache
# (decode-mma-tokint.ts, new in round 35: the key-major kernel over the block table) beside bf16 and
# int8, pages of 16 / 64 / 256 against each cache's contiguous kernel (bench/cuda/paged-decode.py:
# the contiguous kernels checked against a torch reference, every paged output bit-equal to its
# contiguous one first), B 4, H 32 / Hkv 8, D 128, 32K and 128K.
# Prepare: npm run build && node bench/cuda/paged-decode-emit.mjs; carry bench/build/cuda-paged;
# returns $OUT/c78/.
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
O="$OUT/c78"
mkdir -p "$O"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > "$O/gpu.txt"
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
timeout 230 python3 bench/cuda/paged-decode.py --build bench/build/cuda-paged --out "$O" > "$O/paged.log" 2>&1
echo "paged exit $? at $(($(date +%s) - T0)) s"
grep "^|" "$O/paged.log" | grep -v "^| ---"
grep FAIL "$O/paged.log"
echo "done at $(($(date +%s) - T0)) s"
