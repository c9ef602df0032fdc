#!/bin/bash
# Device call 43 (round 26, ≤ 560 s): four short steps in one call, most informative first, since
# starts were scarce this round.
#  1. `qk int8` with its s32 sums made f32 by an integer add and an FADD (qk_s32_f32) beside the
#     I2F build (round 25's code renamed `<variant>I2F`), one process (bench/cuda/int8qk.sh);
#  2. the neighbourhood at 32K with the new D = 128 default (q64 k64, three blocks an SM) beside
#     round 25's (q64 k128, two blocks: the list's q64_k128_s1_b2_box_va) and Flex;
#  3. quantized decode at the true defaults (LEAN 3 for int8 / e4m3, bf16 beside, SDPA) at 32K and
#     128K — the H200 figures of issue 10's int8 / fp8 rows (call 21's first step);
#  4. the pv e4m3 set (bench/cuda/int8qk-pv.sh, today's code only), if the call's limit leaves room.
# Prepare: npm run build && node bench/cuda/int8qk-emit.mjs && node bench/cuda/int8qk-emit.mjs pv,
#   the I2F variants from an emit at 0175b33 renamed into bench/build/cuda-int8qk (index.json entries
#   with qk '<variant>I2F', names and include guards replaced); node bench/cuda/emit.mjs --engine wgmma --list
#   bench/cuda/nbhd-r25-list.mjs --out bench/build/nbhd26; node bench/cuda/quant-decode-emit.mjs
#   --only default,lean3 --cases 0,2. carry bench/build/{cuda-int8qk,cuda-int8qk-pv,nbhd26,
#   cuda-quant-decode}; returns $OUT/c43/.
set -uo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PATH:/usr/local/cuda/bin" PYTHONUNBUFFERED=1
T0=$(date +%s)
O="$OUT/${TAG:-c43}"
mkdir -p "$O/quant"
nvidia-smi --query-gpu=name,clocks.sm,clocks.max.sm,temperature.gpu --format=csv > "$O/gpu.txt"
OUT="$O/int8qk/qk" TIMEOUT=160 BUDGET=130 bash bench/cuda/int8qk.sh > "$O/int8qk-qk.txt" 2>&1
echo "== int8qk exit $? at $(($(date +%s) - T0)) s"
tail -n 30 "$O/int8qk-qk.txt"
OUT="$O/nbhd" BUILD=bench/build/nbhd26 SIZES=32768 TIME_S=120 BUDGET=90 bash bench/cuda/neighbourhood.sh > "$O/nbhd.txt" 2>&1
echo "== nbhd exit $? at $(($(date +%s) - T0)) s"
tail -n 14 "$O/nbhd.txt"
timeout 150 python3 bench/cuda/quant-decode.py --build bench/build/cuda-quant-decode --out "$O/quant" \
  --formats bf16,int8,e4m3 --knobs default,lean3 --budget 120 > "$O/quant.log" 2>&1
echo "== quant-decode exit $? at $(($(date +%s) - T0)) s"
tail -n 16 "$O/quant.log"
OUT="$O/int8qk/pv" TIMEOUT=150 BUDGET=120 bash bench/cuda/int8qk-pv.sh > "$O/int8qk-pv.txt" 2>&1
echo "== int8qk pv exit $? at $(($(date +%s) - T0)) s"
tail -n 30 "$O/int8qk-pv.txt"
