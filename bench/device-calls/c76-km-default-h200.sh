#!/bin/bash
# Device call 76 (round 34, ≤ 120 s): the key-major decode default (KIVI: 4-warp blocks capped for
# three an SM; e4m3: 8 warps) on the H200, where issue 10's targets are set, beside the query-major
# kernel (lean3_qm: -DATTNC_DEC_MMA_KM=0) in the same process; int8 and bf16 at their defaults;
# B 4, H 32 / Hkv 8, D 128, one query, 32K and 128K, SDPA bf16 beside, outputs checked first.
# Prepare: npm run build; node bench/cuda/quant-decode-emit.mjs --only lean3,lean3_qm --cases 2
#   --formats bf16,int8,e4m3,int4,int2.
# Carry bench/build/cuda-quant-decode; returns $OUT/c76/.
set -uo pipefail
cd "$(dirname "$0")/../.."
O="$OUT/c76"
mkdir -p "$O"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > "$O/gpu.txt"
cat "$O/gpu.txt"
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
timeout 110 python3 bench/cuda/quant-decode.py --build bench/build/cuda-quant-decode --out "$O" --budget 95 \
  > "$O/quant.log" 2>&1
echo "quant exit $?"
grep -E "^\| (32768|131072)|FAIL|built" "$O/quant.log"
