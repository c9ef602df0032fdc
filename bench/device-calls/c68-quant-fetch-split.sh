#!/bin/bash
# Device call 68 (round 32, ≤ 200 s): call 67 again with the two halves of round 32's fetch apart:
# lean3 (both: code rows from one pointer a thread, ATTNC_DEC_MMA_FETCH_RUNS 1; KIVI's scale windows
# by 16-byte copies), lean3_fetch0 (the scale windows only), and round 31's code (*_r31), all at
# LEAN 3, and lean3_k16s4 (int8, e4m3: 128-key tiles in 4 stages, added to index.json by hand); outputs checked first. Call 67 timed KIVI 18% faster and int8 / e4m3 4-8% slower with
# both. No Nsight Compute this time. Prepare as call 67 with --only lean3,lean3_fetch0.
# Carry bench/build/cuda-quant-decode; returns $OUT/c68/.
set -uo pipefail
cd "$(dirname "$0")/../.."
T0=$(date +%s)
O="$OUT/c68"
mkdir -p "$O"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > "$O/gpu.txt"
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
B=bench/build/cuda-quant-decode
timeout 170 python3 bench/cuda/quant-decode.py --build $B --out "$O" --knobs lean3,lean3_fetch0,lean3_k16s4 --budget 150 > "$O/quant.log" 2>&1
echo "quant exit $? at $(($(date +%s) - T0)) s"
grep -E "^\| (32768|131072)" "$O/quant.log"
tar -C "$OUT" -cJf "$OUT/c68.tar.xz" c68
echo "done at $(($(date +%s) - T0)) s"
