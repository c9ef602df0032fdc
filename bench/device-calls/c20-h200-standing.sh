#!/bin/bash
# Device call 20 (round 20, ≤ 560 s of run time): the standing figures on an H200, whose last H200
# timings are from rounds 9–10 (decode, NSA routing) and 17 (the forward table); rounds 15–19 got
# H100s. Correctness first in each bench.
#  1. call 3's content: token-granular routing (NSA-style 16K / 64K × 16 / 64 query heads over 4 KV
#     heads, Flex beside it at 16K × 16, causal SDPA) and quantized decode (bf16, int8, e4m3, int4,
#     int2 at the default knobs beside SDPA bf16, B 4, H 32 / Hkv 8, 32K and 128K);
#  2. the forward table at the default schedules (every stdlib pattern, std_*__default) at 16K / 32K
#     beside Flex and SDPA: checked against the float32 reference, memcheck + racecheck.
# Prepare: npm run build
#   node bench/cuda/routing-token-emit.mjs                                  # bench/build/cuda-token
#   node bench/cuda/quant-decode-emit.mjs --only default --cases 0,2        # bench/build/cuda-quant-decode
#   node bench/cuda/emit.mjs --list bench/cuda/default-list.mjs --out bench/build/cuda-default
# carry bench/build/cuda-token, bench/build/cuda-quant-decode, bench/build/cuda-default; each step
# returns as its own $OUT/c20-*.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o20
mkdir -p $O/token $O/quant
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > $O/gpu.txt
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
timeout 130 python3 bench/cuda/quant-decode.py --build bench/build/cuda-quant-decode --out $O/quant \
  --formats bf16,int8,e4m3,int4,int2 --knobs default --budget 110 > $O/quant.log 2>&1
echo "quant-decode exit $? at $(($(date +%s) - T0)) s"
tail -n 12 $O/quant.log
tar czf "$OUT/c20-quant.tgz" -C $O gpu.txt quant quant.log
timeout 170 python3 bench/cuda/routing-token.py --build bench/build/cuda-token --out $O/token \
  --sizes 16384,65536 --heads 16,64 --flex 16384x16 --local-q '' --rank-sizes '' > $O/token.log 2>&1
echo "routing-token exit $? at $(($(date +%s) - T0)) s"
tail -n 12 $O/token.log
tar czf "$OUT/c20-token.tgz" -C $O token token.log
BUILD=bench/build/cuda-default OUT=$O/table CHECK_S=100 TABLE_S=220 \
  bash bench/cuda/run-table.sh 16384,32768 > $O/table.log 2>&1
echo "table exit $? at $(($(date +%s) - T0)) s"
grep -E '^\| ' $O/table.log | tail -n 30
tar czf "$OUT/c20-table.tgz" -C $O table table.log
