#!/bin/bash
# Device call 77 (round 35, ≤ 300 s): per-token int4 / int2 caches on the key-major tensor-core
# decode kernel (decode-mma-tokint.ts, new this round; before it they took the SIMT kernel) at its
# default (4-warp blocks capped for four an SM; symmetric, zero points, and runs of 64 channels) and
# the sweep's tok_b3 / tok_w8b2 / tok_s3 points,
# beside KIVI int4 / int2, int8, e4m3 and bf16 at their defaults and SDPA bf16 in the same process, and the
# key-major int8 / e4m3 kernel at four 4-warp blocks an SM (km_w4k16b4; round 34 timed one 8-warp block); B 4,
# H 32 / Hkv 8, D 128, one query, 32K and 128K; every variant checked against its float64 case first.
# Prepare: npm run build; node bench/cuda/quant-decode-emit.mjs --only default,tok_b3,tok_w8b2,tok_s3,km_w4k16b4
#   --cases 2 --formats bf16,int8,e4m3,int4,int2,int4t,int4tz,int4g64z,int2tz
# Carry bench/build/cuda-quant-decode (9 MB); returns $OUT/c77/.
set -uo pipefail
cd "$(dirname "$0")/../.."
O="$OUT/c77"
mkdir -p "$O"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > "$O/gpu.txt"
cat "$O/gpu.txt"
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
timeout 280 python3 bench/cuda/quant-decode.py --build bench/build/cuda-quant-decode --out "$O" --budget 250 \
  > "$O/quant.log" 2>&1
echo "quant exit $?"
grep -E "^\| (32768|131072)|FAIL|built" "$O/quant.log"
