#!/bin/bash
# Device call 42 (round 26, ≤ 330 s): `qk int8` on wgmma-ws with its s32 sums made f32 by an
# integer add and an FADD (qk_s32_f32) instead of I2F, which issues at the softmax ex2's quarter
# rate and so doubled the tile's MUFU-class work. The qk set (bench/cuda/int8qk.sh) carries round
# 25's code beside today's as int8wsTI2F / int8wsPI2F / int8wsFI2F (the same schedules, I2F), so the
# two are timed in one process; then the pv e4m3 set (bench/cuda/int8qk-pv.sh), today's code only,
# beside bf16 in its own process (round 10's figures are the before).
# Prepare: npm run build && node bench/cuda/int8qk-emit.mjs && node bench/cuda/int8qk-emit.mjs pv,
# then the I2F variants from an emit at 0175b33 renamed into bench/build/cuda-int8qk (index.json
# entries with qk '<variant>I2F'). carry bench/build/cuda-int8qk, bench/build/cuda-int8qk-pv;
# returns $OUT/c42/.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
T0=$(date +%s)
O="$OUT/${TAG:-c42}"
mkdir -p "$O"
OUT="$O/qk" TIMEOUT=160 BUDGET=130 bash bench/cuda/int8qk.sh > "$O/qk.txt" 2>&1
echo "qk set exit $? at $(($(date +%s) - T0)) s"
tail -n 30 "$O/qk.txt"
OUT="$O/pv" TIMEOUT=150 BUDGET=120 bash bench/cuda/int8qk-pv.sh > "$O/pv.txt" 2>&1
echo "pv set exit $? at $(($(date +%s) - T0)) s"
tail -n 30 "$O/pv.txt"
