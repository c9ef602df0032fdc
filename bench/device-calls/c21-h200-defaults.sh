#!/bin/bash
# Device call 21 (round 20, ≤ 520 s of run time): what call 20 could not time as the defaults. Round
# 21 ran it on an H100 with CHECK_S 80, which left compute-sanitizer no time, so its table timed
# nothing (the table times sanitized variants only); 170 s now.
#  1. quantized decode at the TRUE defaults: the bench's build is Schedule.decodeLean 'knob', whose
#     macro default is LEAN 0, while a compiled kernel over a quantized cache takes LEAN 3 (round
#     11): the `lean3` knob set is the default for int8 / e4m3 / int4 / int2, `default` for bf16;
#  2. the forward table at the default schedules, 16K / 32K, beside Flex and SDPA (call 20's table
#     timed nothing: default-list.mjs gave no `pattern`, which table.py groups by).
# Prepare: npm run build
#   node bench/cuda/quant-decode-emit.mjs --only default,lean3 --cases 0,2   # bench/build/cuda-quant-decode
#   node bench/cuda/emit.mjs --list bench/cuda/default-list.mjs --out bench/build/cuda-default
# carry bench/build/cuda-quant-decode, bench/build/cuda-default; each step returns as $OUT/c21-*.tgz.
set -uo pipefail
cd "$(dirname "$0")/../.."
O=/tmp/o21
mkdir -p $O/quant
T0=$(date +%s)
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > $O/gpu.txt
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
timeout 130 python3 bench/cuda/quant-decode.py --build bench/build/cuda-quant-decode --out $O/quant \
  --formats bf16,int8,e4m3,int4,int2 --knobs default,lean3 --budget 110 > $O/quant.log 2>&1
echo "quant-decode exit $? at $(($(date +%s) - T0)) s"
tail -n 14 $O/quant.log
tar czf "$OUT/c21-quant.tgz" -C $O gpu.txt quant quant.log
BUILD=bench/build/cuda-default OUT=$O/table CHECK_S=170 TABLE_S=200 \
  bash bench/cuda/run-table.sh 16384,32768 > $O/table.log 2>&1
echo "table exit $? at $(($(date +%s) - T0)) s"
grep -E '^\| ' $O/table.log | tail -n 30
tar czf "$OUT/c21-table.tgz" -C $O table table.log
